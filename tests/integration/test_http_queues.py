"""HTTP workers: queues and their caps.

`--http-queue <name> [option value ...]` creates queues, CONFIG SET http-queue changes
them at run time (CONFIG GET http-queue shows them); concurrency, per-host and rate caps
are measured at a PHP endpoint that counts the requests it serves at once; outcomes of a
queue go to <queue>:results; and dispatch is immediate: push -> request latency is
measured for a few hundred tasks (a polling loop would show in its p99). The endpoint is
http_sink.py, which serves every connection at once and counts requests in progress.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Outcomes, Respq, dead_records, run_tests, task_info, wait_until  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)


class Servers:
    def __init__(self):
        self.ep = HttpEndpoint(server="python")
        try:
            self.r = Respq("--http-queue", "jobs", "retries", "1", "backoff-min", "0.05", "backoff-max", "0.1",
                           "--http-queue", "capped", "concurrency", "3",
                           "--http-queue", "hostcap", "per-host", "2",
                           "--http-queue", "rated", "rate", "20")
        except Exception:
            self.ep.stop()
            raise
        self.c = self.r.client()

    def dump_log(self):
        self.r.dump_log()
        self.ep.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)
        self.ep.__exit__(None, None, None)


def queue_config(c):
    """CONFIG GET http-queue -> {name: {option: value}}."""
    text = c.config_get("http-queue")["http-queue"]
    out = {}
    for item in text.split(", "):
        words = item.split()
        out[words[0]] = dict(zip(words[1::2], words[2::2]))
    return out


def max_in_progress(reqs):
    return max(r["in_progress"] for r in reqs)


def test_http_queue_directive_creates_another_queue_next_to_tasks(s):
    qs = queue_config(s.c)
    assert "tasks" in qs, f"the default queue stays: {qs}"
    assert qs["jobs"]["retries"] == "1" and qs["jobs"]["backoff-min"] == "0.05", qs["jobs"]
    assert qs["tasks"]["retries"] == "5", "other queues keep the defaults"
    for name in ("tasks", "jobs", "capped", "hostcap", "rated"):
        assert task_info(s.r.port, name) is not None, f"INFO tasks has no line for {name}"
    with Outcomes(s.r, "jobs") as out:
        s.c.lpush("jobs", json.dumps({"url": s.ep.url("/jobs/ok"), "id": "jobs-ok"}))
        s.c.lpush("jobs", json.dumps({"url": s.ep.url("/jobs/fail", status=500), "id": "jobs-fail"}))
        out.wait(id="jobs-ok", status="delivered")
        o = out.wait(id="jobs-fail", status="dead")
    assert o["queue"] == "jobs" and o["attempts"] == 2, f"jobs has retries 1: {o}"
    assert [r["h"]["x-task-attempt"] for r in s.ep.requests(path="/jobs/fail")] == ["1", "2"]
    d = dead_records(s.c, "jobs")
    assert [x["id"] for x in d] == ["jobs-fail"] and d[0]["queue"] == "jobs", d
    assert s.c.llen("tasks:dead") == 0, "a queue's dead letters go to its own <queue>:dead"
    assert task_info(s.r.port, "jobs")["delivered"] == "1"


def test_concurrency_cap_is_respected(s):
    n = 12
    s.c.lpush("capped", *[json.dumps({"url": s.ep.url("/cap", sleep=0.4, group="cap3", n=i)}) for i in range(n)])
    peak_info = 0
    deadline = time.time() + 20
    while len(s.ep.requests(path="/cap")) < n and time.time() < deadline:
        peak_info = max(peak_info, int(task_info(s.r.port, "capped")["in_flight"]))
        time.sleep(0.02)
    reqs = s.ep.wait_requests(n, path="/cap")
    wait_until(lambda: task_info(s.r.port, "capped")["delivered"] == str(n), timeout=10, what="all delivered")
    peak = max_in_progress(reqs)
    print(f"  concurrency 3: at most {peak} requests at the endpoint at once, INFO in_flight at most {peak_info}")
    assert peak <= 3, f"concurrency 3: the endpoint served {peak} requests of the queue at once"
    assert peak >= 2, f"concurrency 3: never more than {peak} at once (the cap should be reached)"
    assert peak_info <= 3, f"INFO tasks showed in_flight={peak_info} with concurrency 3"


def test_per_host_connection_cap_is_respected(s):
    n = 8
    s.c.lpush("hostcap", *[json.dumps({"url": s.ep.url("/hostcap", sleep=0.4, group="host2", n=i)}) for i in range(n)])
    reqs = s.ep.wait_requests(n, path="/hostcap", timeout=20)
    peak = max_in_progress(reqs)
    print(f"  per-host 2: at most {peak} requests at the endpoint at once")
    assert 1 <= peak <= 2, f"per-host 2: the endpoint served {peak} requests at once"


def test_config_set_http_queue_changes_a_queue_at_run_time(s):
    n = 8
    s.c.lpush("jobs", *[json.dumps({"url": s.ep.url("/rt/before", sleep=0.5, group="rt-before", n=i)})
                        for i in range(n)])
    before = s.ep.wait_requests(n, path="/rt/before", timeout=20)
    assert max_in_progress(before) >= 3, \
        f"jobs (concurrency 64) served only {max_in_progress(before)} of {n} slow requests at once"

    assert s.c.config_set("http-queue", "jobs concurrency 2") is True
    qs = queue_config(s.c)
    assert qs["jobs"]["concurrency"] == "2", qs["jobs"]
    assert qs["jobs"]["retries"] == "1", f"CONFIG SET changes only the options it names: {qs['jobs']}"
    assert task_info(s.r.port, "jobs")["concurrency"] == "2"
    wait_until(lambda: task_info(s.r.port, "jobs")["in_flight"] == "0", timeout=10, what="jobs idle")
    s.c.lpush("jobs", *[json.dumps({"url": s.ep.url("/rt/after", sleep=0.3, group="rt-after", n=i)})
                        for i in range(n)])
    after = s.ep.wait_requests(n, path="/rt/after", timeout=20)
    assert 1 <= max_in_progress(after) <= 2, \
        f"after CONFIG SET concurrency 2: {max_in_progress(after)} requests at once"
    assert s.c.config_set("http-queue", "jobs concurrency 64")


def test_config_set_http_queue_creates_and_removes_queues(s):
    assert s.c.config_set("http-queue", "newq retries 0 timeout 5")
    assert queue_config(s.c)["newq"]["timeout"] == "5"
    with Outcomes(s.r, "newq") as out:
        s.c.lpush("newq", json.dumps({"url": s.ep.url("/newq"), "id": "newq-1"}))
        out.wait(id="newq-1", status="delivered")
    assert s.c.config_set("http-queue", "newq off")
    assert "newq" not in queue_config(s.c)
    assert task_info(s.r.port, "newq") is None
    s.c.lpush("newq", json.dumps({"url": s.ep.url("/newq"), "id": "newq-2"}))
    time.sleep(0.5)
    assert s.c.llen("newq") == 1, "a list that is no longer an HTTP queue is left alone"
    assert len(s.ep.requests(path="/newq")) == 1
    s.c.delete("newq")


def test_config_set_http_queue_rejects_bad_options(s):
    import redis
    for bad in ("jobs concurrency 0", "jobs rate -1", "jobs colour blue", "jobs retries", "jobs timeout 0"):
        try:
            s.c.config_set("http-queue", bad)
        except redis.ResponseError:
            continue
        raise AssertionError(f"CONFIG SET http-queue {bad!r} was accepted")
    assert queue_config(s.c)["jobs"]["concurrency"] == "64", "a refused CONFIG SET changes nothing"


def test_rate_cap_spaces_dispatches(s):
    n = 60
    t0 = time.time()
    s.c.lpush("rated", *[json.dumps({"url": s.ep.url("/rate", n=i)}) for i in range(n)])
    try:
        reqs = s.ep.wait_requests(n, path="/rate", timeout=30)
    except AssertionError as e:
        # Where the tasks are, for a failure seen once under heavy load (no request at all).
        raise AssertionError(f"{e}\nrated: {task_info(s.r.port, 'rated')}\n"
                             f"hosts: {s.c.execute_command('INFO', 'hosts')}") from None
    times = sorted(r["t"] for r in reqs)
    span = times[-1] - times[0]
    assert span >= 2.5, f"rate 20/s: {n} tasks dispatched within {span:.2f} s (at least 2.95 s expected)"
    busiest = max(sum(1 for t in times if a <= t < a + 1.0) for a in times)
    assert busiest <= 30, f"rate 20/s: {busiest} requests arrived within one second"
    assert times[-1] - t0 < 20, "a rate cap delays tasks, it does not stall them"


def test_rate_cap_wakes_the_queue_after_a_slow_turn(s):
    """The gate's next opening is armed even when computing it comes after that time: a
    client's DEBUG SLEEP (70 ms, more than the 50 ms between two dispatches at rate 20)
    in the same turn as a dispatch once left a queue with nothing in flight waiting for
    its next push (a few of 60 tasks delivered in 15 s)."""
    assert s.c.config_set("http-queue", "slowturn rate 20")
    stop = threading.Event()

    def sleeper():
        c = s.r.client()
        while not stop.is_set():
            c.execute_command("DEBUG", "SLEEP", "0.07")

    th = threading.Thread(target=sleeper)
    th.start()
    try:
        n = 60
        s.c.lpush("slowturn", *[json.dumps({"url": s.ep.url("/slowturn", n=i)}) for i in range(n)])
        wait_until(lambda: int(task_info(s.r.port, "slowturn")["delivered"]) >= n, timeout=20,
                   what=f"{n} rate-capped tasks delivered while another client's commands take 70 ms each")
    finally:
        stop.set()
        th.join()
        s.c.config_set("http-queue", "slowturn off")


def test_connections_to_an_endpoint_are_reused(s):
    n = 40
    for i in range(n):
        s.c.lpush("tasks", json.dumps({"url": s.ep.url("/keepalive", n=i)}))
        time.sleep(0.01)
    reqs = s.ep.wait_requests(n, path="/keepalive")
    conns = len({r["peer"] for r in reqs})
    print(f"  {n} requests over {conns} connection(s)")
    assert conns <= 4, f"{n} requests, one after the other, used {conns} connections (keep-alive)"


def measure_dispatch_latency(s, n, tag):
    """Pushes n tasks at about 100 per second, one LPUSH each; returns the push -> request
    received latencies in ms, sorted."""
    pushed = {}
    for i in range(n):
        body = json.dumps({"url": s.ep.url("/latency", run=tag, n=i)})
        pushed[f"run={tag}&n={i}"] = time.time()
        s.c.lpush("tasks", body)
        time.sleep(0.008)
    reqs = s.ep.wait_requests(n, path="/latency", where=lambda r: r["query"].startswith(f"run={tag}&"), timeout=30)
    return sorted((r["t"] - pushed[r["query"]]) * 1000 for r in reqs)


def test_dispatch_is_immediate_with_no_polling_interval(s):
    # A polling loop of interval P shows as latencies spread over [0, P]; the bound is loose
    # (p99 < 50 ms) for a noisy machine. A machine stall can still spoil one run of 300,
    # so up to three runs are made and the first good one passes; a polling loop fails all.
    measure_dispatch_latency(s, 10, "warm-up")
    for run in (1, 2, 3):
        lat = measure_dispatch_latency(s, 300, f"r{run}")
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
        print(f"  run {run}: push -> request received: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms")
        if p99 < 50:
            break
    assert p99 < 50, f"push -> request p99 is {p99:.1f} ms (p50 {p50:.1f} ms) in three runs: dispatch is not immediate"
    info = task_info(s.r.port, "tasks")
    assert float(info["latency_p99_ms"]) < 50, f"INFO tasks dispatch latency: {info}"


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
