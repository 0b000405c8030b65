"""HTTP workers: graceful shutdown with requests in flight.

On SIGTERM (or SHUTDOWN) the server stops dispatching, gives the requests in flight
`shutdown-grace` seconds, then puts the unfinished tasks back at the head of their queue
(the end the dispatcher takes next, in the order they started) and exits 0. Requests
that finish within the grace are delivered as usual. With --appendonly yes, a restart on
the same dir finds the requeued tasks at the head of the queue and a task that was
waiting to retry still waiting. The endpoint is http_sink.py, which
serves every connection at once (slow requests must really be in flight together).
"""
import glob
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Outcomes, Respq, Skip, run_tests, task_info, wait_until  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)


def exit_after_sigterm(r, timeout=15):
    """Sends SIGTERM; returns (exit code, seconds until the process exited)."""
    t0 = time.time()
    r.signal(signal.SIGTERM)
    try:
        code = r.proc.wait(timeout=timeout)
    except Exception:
        raise AssertionError(f"server still running {timeout}s after SIGTERM")
    return code, time.time() - t0


def has_aof(r):
    """True when the server wrote an append-only file in its dir."""
    return any("appendonly" in os.path.basename(f) for f in glob.glob(os.path.join(r.dir, "*")))


def slow_tasks(ep, names, sleep=6):
    return {n: json.dumps({"url": ep.url("/shutdown/slow", sleep=sleep, name=n), "id": n}) for n in names}


def push_in_order(c, payloads):
    for p in payloads:   # one LPUSH each: the first pushed is the oldest (rightmost)
        c.lpush("tasks", p)


def test_sigterm_with_slow_requests_in_flight_exits_0_and_puts_them_back():
    with HttpEndpoint(server="python") as ep, \
            Respq("--shutdown-grace", "1", "--http-queue", "tasks", "concurrency", "2") as r:
        c = r.client()
        tasks = slow_tasks(ep, ["s1", "s2", "s3", "s4"])
        push_in_order(c, tasks.values())
        ep.wait_requests(2, path="/shutdown/slow")
        wait_until(lambda: (lambda i: i["in_flight"] == "2" and i["pending"] == "2")(task_info(r.port)),
                   what="2 in flight, 2 pending")
        c.close()
        code, took = exit_after_sigterm(r)
        log = r.log_text()
        assert code == 0, f"exit code {code}\n{log}"
        assert 0.9 <= took < 4, f"--shutdown-grace 1 with requests of 6 s in flight: exited after {took:.2f} s"
        assert re.search(r"Waiting up to 1(\.0*)?s for 2 HTTP requests in flight", log), log
        assert re.search(r"Grace period over: 2 unfinished HTTP tasks go back to the head of their queues", log), log
        sent = sorted(q["h"]["x-task-id"] for q in ep.requests(path="/shutdown/slow"))
        assert sent == ["s1", "s2"], f"after SIGTERM nothing new is dispatched: {sent}"


def test_unfinished_tasks_are_at_the_head_of_the_queue_after_a_restart():
    with HttpEndpoint(server="python") as ep, \
            Respq("--shutdown-grace", "1", "--appendonly", "yes", "--appendfsync", "always",
                  "--http-queue", "tasks", "concurrency", "2") as r:
        c = r.client()
        tasks = slow_tasks(ep, ["p1", "p2", "p3", "p4"])
        push_in_order(c, tasks.values())
        ep.wait_requests(2, path="/shutdown/slow")
        c.close()
        code, took = exit_after_sigterm(r)
        assert code == 0 and took < 4, (code, took)
        if not has_aof(r):
            raise Skip("--appendonly yes wrote no append-only file: persistence is not available, "
                       "so the requeued tasks can't be seen after a restart")
        # Restart on the same dir with the list left alone, to read it as it was saved.
        r.restart("--http-queue", "tasks", "off")
        c = r.client()
        assert c.lrange("tasks", 0, -1) == [tasks[n].encode() for n in ("p4", "p3", "p2", "p1")], \
            f"unfinished p1, p2 at the head (right end, p1 next), then p3, p4: {c.lrange('tasks', 0, -1)}"
        assert not c.exists("tasks:inflight"), c.hgetall("tasks:inflight")
        c.close()
        # Back as an HTTP queue: the unfinished tasks are sent again (at least once), then the rest.
        r.restart("--http-queue", "tasks", "concurrency", "4")
        again = ep.wait_requests(6, path="/shutdown/slow", timeout=10)
        assert sorted(q["h"]["x-task-id"] for q in again) == ["p1", "p1", "p2", "p2", "p3", "p4"], \
            [q["h"]["x-task-id"] for q in again]


def test_a_task_waiting_to_retry_survives_a_restart():
    with HttpEndpoint(server="python") as ep, \
            Respq("--appendonly", "yes", "--http-queue", "tasks", "backoff-min", "1", "backoff-max", "1") as r:
        c = r.client()
        c.lpush("tasks", json.dumps({"url": ep.url("/shutdown/retry", fail_first=1), "id": "r1"}))
        wait_until(lambda: json.loads(c.hget("tasks:inflight", "r1") or b"{}").get("state") == "retrying",
                   what="r1 waiting to retry")
        c.close()
        code, took = exit_after_sigterm(r)
        assert code == 0 and took < 4, (code, took)
        if not has_aof(r):
            raise Skip("--appendonly yes wrote no append-only file: persistence is not available")
        r.restart()
        reqs = ep.wait_requests(2, path="/shutdown/retry", timeout=10)
        assert [(q["h"]["x-task-id"], q["status"]) for q in reqs] == [("r1", 503), ("r1", 200)], reqs
        assert reqs[1]["h"].get("x-task-attempt") == "2", "the attempt before the restart counts"
        wait_until(lambda: not r.client().exists("tasks:inflight"), what="r1 delivered after the restart")


def test_sigterm_waits_for_requests_that_finish_within_the_grace():
    with HttpEndpoint(server="python") as ep, \
            Respq("--shutdown-grace", "5", "--http-queue", "tasks", "concurrency", "1") as r:
        c = r.client()
        with Outcomes(r) as out:
            push_in_order(c, [json.dumps({"url": ep.url("/shutdown/quick", sleep=0.8, n=i), "id": f"q{i}"})
                              for i in range(3)])
            ep.wait_requests(1, path="/shutdown/quick")
            c.close()
            t0 = time.time()
            r.signal(signal.SIGTERM)
            o = out.wait(id="q0", status="delivered", timeout=8)
            assert o["code"] == 200, o
            try:
                code = r.proc.wait(timeout=15)
            except Exception:
                raise AssertionError("server still running 15 s after SIGTERM")
            took = time.time() - t0
        log = r.log_text()
        assert code == 0, f"exit code {code}\n{log}"
        assert took < 4.5, f"a 0.8 s request in flight and a 5 s grace: exited after {took:.2f} s"
        assert "Waiting up to 5" in log and "Grace period over" not in log, log
        sent = [q["h"]["x-task-id"] for q in ep.requests(path="/shutdown/quick")]
        assert sent == ["q0"], f"after SIGTERM nothing new is dispatched: {sent}"


def test_shutdown_command_honours_shutdown_grace_set_at_run_time():
    with HttpEndpoint(server="python") as ep, Respq() as r:
        c = r.client()
        assert c.config_set("shutdown-grace", "0.5")
        assert c.config_get("shutdown-grace") == {"shutdown-grace": "0.5"}
        c.lpush("tasks", json.dumps({"url": ep.url("/shutdown/cmd", sleep=6), "id": "cmd-1"}))
        ep.wait_requests(1, path="/shutdown/cmd")
        t0 = time.time()
        raw = r.raw()
        raw.send(raw.encode("SHUTDOWN", "NOSAVE"))
        assert raw.closed_by_peer(timeout=10), "SHUTDOWN closes the connection"
        raw.close()
        try:
            code = r.proc.wait(timeout=15)
        except Exception:
            raise AssertionError("server still running 15 s after SHUTDOWN")
        took = time.time() - t0
        log = r.log_text()
        assert code == 0, f"exit code {code}\n{log}"
        assert took < 4, f"shutdown-grace 0.5 with a 6 s request in flight: exited after {took:.2f} s"
        assert "Grace period over: 1 unfinished HTTP tasks go back" in log, log


if __name__ == "__main__":
    run_tests(globals())
