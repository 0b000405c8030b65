"""HTTP workers: hosts that fail. A circuit breaker per destination host (host:port) of a
queue: after host-failures-to-open consecutive failures it opens, the tasks for that host
wait without spending attempts, a probe after host-cooldown half-opens it and an answer
closes it, while another host's tasks keep flowing at full speed. A 429 with Retry-After
holds the host (no request reaches it before the time) and costs no attempt. The cap on
attempts in flight per host shrinks under 429s and grows back (AIMD). INFO hosts,
/api/hosts and /metrics (promtool) show it all.

Endpoints are http_sink.py listeners on loopback ports; "connection refused" is a free
port with nothing listening, which later starts listening (the host recovers).
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RawConn, RedisServer, Respq, free_port, parse_info,  # noqa: E402
                     run_tests, task_info, wait_until)
from link_helpers import sidecar  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

COOLDOWN = 1.5


class Servers:
    def __init__(self):
        self.good = HttpEndpoint(server="python")
        self.admin = free_port()
        try:
            self.r = Respq("--admin-port", str(self.admin),
                           "--host-failures-to-open", "3", "--host-cooldown", str(COOLDOWN),
                           # flow: one host fails, the other must not notice
                           "--http-queue", "flow", "per-host", "8", "retries", "3",
                           "backoff-min", "0.05", "backoff-max", "0.1",
                           "--http-queue", "baseline", "per-host", "8",
                           "--http-queue", "held", "per-host", "8",
                           "--http-queue", "stubborn", "retries", "0",
                           "--http-queue", "aimd", "per-host", "8", "retries", "20",
                           "backoff-min", "0.02", "backoff-max", "0.05",
                           "--loglevel", "verbose")
        except Exception:
            self.good.stop()
            raise
        self.c = self.r.client()

    def dump_log(self):
        self.r.dump_log()
        self.good.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)
        self.good.__exit__(None, None, None)


def hosts(c):
    """INFO hosts -> (summary dict, {(queue, host): fields dict})."""
    with RawConn(c.connection_pool.connection_kwargs["port"]) as raw:
        reply = raw.cmd("INFO", "hosts")
    assert reply.startswith(b"$"), reply
    sec = parse_info(reply.split(b"\r\n", 1)[1]).get("hosts", {})
    summary = dict(kv.split("=", 1) for kv in sec.get("hosts", "").split(",") if kv)
    out = {}
    for k, v in sec.items():
        if not k.startswith("host_"):
            continue
        f = {}
        for kv in v.split(","):
            a, _, b = kv.partition("=")
            f[a] = b
        out[(f["queue"], f["addr"])] = f
    return summary, out


def host(c, queue, addr):
    return hosts(c)[1].get((queue, addr))


def push(c, queue, tasks):
    c.lpush(queue, *[json.dumps(t) for t in tasks])


def delivery_rate(s, queue, n, tag):
    """Pushes n tasks for the good host, returns deliveries per second until all are in."""
    before = int(task_info(s.r.port, queue)["delivered"])
    t0 = time.time()
    push(s.c, queue, [{"url": s.good.url(f"/{tag}", sleep=0.02), "id": f"{tag}-{i}"} for i in range(n)])
    wait_until(lambda: int(task_info(s.r.port, queue)["delivered"]) >= before + n, timeout=60,
               interval=0.02, what=f"{n} deliveries on {queue}")
    return n / (time.time() - t0)


def admin_get(port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# ---- breaker ----------------------------------------------------------------------------

def test_a_failing_host_opens_its_circuit_without_spending_attempts_while_the_other_flows(s):
    n = 400
    rate_alone = delivery_rate(s, "baseline", n, "alone")

    bad_port = free_port()   # nothing listens: connection refused
    bad_addr = f"127.0.0.1:{bad_port}"
    bad = [{"url": f"http://127.0.0.1:{bad_port}/down", "id": f"bad-{i}"} for i in range(20)]
    with Outcomes(s.r, "flow") as out:
        push(s.c, "flow", bad)
        wait_until(lambda: (host(s.c, "flow", bad_addr) or {}).get("state") == "open", timeout=10,
                   what="the failing host's circuit to open")
        opened_at = time.time()
        h = host(s.c, "flow", bad_addr)
        assert int(h["failures"]) >= 3 and "connect" in h["last_error"].lower(), h  # refused, or couldn't connect
        assert int(h["waiting"]) > 0, f"tasks wait for the host: {h}"

        # The other host, meanwhile: at full speed (generous margin for a shared machine).
        rate_beside = delivery_rate(s, "flow", n, "beside")
        assert rate_beside >= 0.5 * rate_alone, \
            f"the healthy host slowed down beside a failing one: {rate_beside:.0f}/s vs {rate_alone:.0f}/s alone"
        good_host = host(s.c, "flow", f"127.0.0.1:{s.good.port}")
        assert good_host["state"] == "closed" and good_host["failures"] == "0", good_host

        # Three more cool-downs with the host still down: only the probes spend attempts.
        time.sleep(3 * COOLDOWN)
        window = time.time() - opened_at
        failed = [o for o in out.all() if o["id"].startswith("bad-") and o["status"] in ("retrying", "dead")]
        # Before it opened: the per-host cap's 8, and the 2 slots its first two failures freed.
        first_burst = 10
        probes = int(window / COOLDOWN) + 2
        assert len(failed) <= first_burst + probes, \
            f"{len(failed)} attempts spent in {window:.1f} s with the circuit open (at most {first_burst} + {probes})"
        assert not [o for o in failed if o["status"] == "dead"], "no task may die while its host's circuit is open"
        envelopes = {k.decode(): json.loads(v) for k, v in s.c.hgetall("flow:inflight").items()}
        assert len(envelopes) == 20, f"every task stays in custody: {sorted(envelopes)}"
        spent = sum(e["attempts"] for e in envelopes.values())
        assert len(failed) <= spent <= len(failed) + 1, (spent, len(failed))  # + a probe under way
        st = host(s.c, "flow", bad_addr)
        assert st["state"] in ("open", "half_open") and int(st["opened"]) >= 2, f"probes failed and reopened: {st}"

        # The host recovers: the next probe closes the circuit and every task goes through.
        with HttpEndpoint(server="python", port=bad_port) as back:
            for i in range(20):
                out.wait(id=f"bad-{i}", status="delivered", timeout=COOLDOWN * 4 + 10)
            assert host(s.c, "flow", bad_addr)["state"] == "closed"
            reqs = back.requests(path="/down")
            assert len(reqs) == 20, f"each task delivered once after the recovery: {len(reqs)}"
            attempts = [int(r["h"]["x-task-attempt"]) for r in reqs]
            assert max(attempts) <= 4, f"no task went past its 4 attempts: {attempts}"
    assert s.c.llen("flow:dead") == 0
    assert s.c.exists("flow:inflight") == 0


def test_tasks_waiting_for_an_open_host_are_seen_deleted_and_cancelled_as_retrying():
    """Tasks that wait in an open host's line: TASK GET says retrying (not in flight) with
    the time the circuit lets a probe through as next_run, a
    client's HDEL of an envelope takes the task out of the line (and its id may be pushed
    again), TASK CANCEL takes another out; INFO's waiting_host follows each step."""
    bad_port = free_port()  # nothing listens: connection refused
    with Respq("--host-failures-to-open", "3", "--host-cooldown", "60",
               "--http-queue", "lines", "per-host", "8", "retries", "5",
               "backoff-min", "0.05", "backoff-max", "0.1") as r:
        c = r.client()
        ids = [f"w-{i}" for i in range(5)]
        push(c, "lines", [{"url": f"http://127.0.0.1:{bad_port}/down", "id": i} for i in ids])
        wait_until(lambda: task_info(r.port, "lines").get("waiting_host") == "5", timeout=15,
                   what="every task waiting for the open host")
        for i in ids:
            reply = c.execute_command("TASK", "GET", i)
            got = dict(zip(reply[0::2], reply[1::2])) if isinstance(reply, list) else reply
            state = got.get(b"state", got.get("state"))
            assert state in (b"retrying", "retrying"), (i, got)
            # Its next try is when the circuit lets a probe through, not a time gone by.
            next_run = float(got.get(b"next_run", got.get("next_run")))
            assert time.time() < next_run <= time.time() + 60, (i, got)

        c.hdel("lines:inflight", "w-0")
        assert task_info(r.port, "lines")["waiting_host"] == "4"
        assert c.execute_command("TASK", "GET", "w-0") is None
        push(c, "lines", [{"url": f"http://127.0.0.1:{bad_port}/down", "id": "w-0"}])  # not a duplicate now
        wait_until(lambda: c.hexists("lines:inflight", "w-0"), timeout=5, what="w-0 back in custody")
        wait_until(lambda: task_info(r.port, "lines").get("waiting_host") == "5", timeout=5,
                   what="the pushed-again w-0 in the line")

        assert c.execute_command("TASK", "CANCEL", "w-1") == 1
        assert task_info(r.port, "lines")["waiting_host"] == "4"
        assert not c.hexists("lines:inflight", "w-1")
        assert sorted(k.decode() for k in c.hkeys("lines:inflight")) == ["w-0", "w-2", "w-3", "w-4"]


# ---- a slow host does not hold the others back -------------------------------------------

def test_tasks_beyond_a_slow_hosts_cap_do_not_hold_back_other_hosts_tasks():
    """A healthy host that answers slowly never opens its circuit: with far more of its
    tasks pending than its cap, the task behind them for another host still goes at once.
    The slow host's tasks wait in its line in custody (counted as scheduled), and each is
    delivered once when it answers."""
    with HttpEndpoint(server="python") as slow, HttpEndpoint(server="python") as fast, \
            Respq("--http-queue", "hol", "concurrency", "16", "per-host", "4") as r:
        c = r.client()
        n = 60
        push(c, "hol", [{"url": slow.url("/slow", hold="a"), "id": f"slow-{i}"} for i in range(n)])
        slow.wait_requests(4, path="/slow")
        t0 = time.time()
        push(c, "hol", [{"url": fast.url("/fast"), "id": "fast"}])
        fast.wait_requests(1, timeout=5, path="/fast")
        assert time.time() - t0 < 2, "the other host's task waited behind the slow host's"
        info = task_info(r.port, "hol")
        assert info["pending"] == "0" and info["in_flight"] == "4", info
        assert info["waiting_host"] == str(n - 4) and info["scheduled"] == str(n - 4), info
        assert c.hlen("hol:inflight") == n, "custody holds each of the slow host's tasks"
        reply = c.execute_command("TASK", "GET", f"slow-{n - 1}")
        got = dict(zip(reply[0::2], reply[1::2]))
        assert got[b"state"] == b"scheduled" and got[b"attempts"] == 0, got
        assert len(slow.requests(path="/slow")) == 4, "no more than the host's cap at once"
        admin_get(slow.port, "/_release/a")
        wait_until(lambda: int(task_info(r.port, "hol")["delivered"]) == n + 1, timeout=30,
                   what="every task delivered")
        ids = sorted(q["h"]["x-task-id"] for q in slow.requests(path="/slow"))
        assert ids == sorted(f"slow-{i}" for i in range(n)), "each slow task sent once"
        info = task_info(r.port, "hol")
        assert info["waiting_host"] == "0" and info["scheduled"] == "0", info
        assert c.exists("hol:inflight") == 0


def test_the_inflight_hash_expiring_while_a_hosts_line_drains_leaves_the_server_whole():
    """<queue>:inflight can carry a deadline (RENAME of a key that has one onto it). When
    it expires as the line of a host whose cool-down ended is read back, the lines empty
    under the drain: nothing may be used after it is gone (the ASan build checks)."""
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "q", "retries", "0", "per-host", "8",
                  "--host-failures-to-open", "1", "--host-cooldown", "1.5") as r:
        c = r.client()
        push(c, "q", [{"url": ep.url("/status/500"), "id": "f1"}])
        wait_until(lambda: (host(c, "q", f"127.0.0.1:{ep.port}") or {}).get("state") == "open", timeout=10,
                   what="the circuit to open")
        push(c, "q", [{"url": ep.url("/ok"), "id": f"w{i}"} for i in range(3)])
        wait_until(lambda: task_info(r.port, "q")["waiting_host"] == "3", timeout=5, what="three in the line")
        assert c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"OK"
        c.copy("q:inflight", "tmp")
        c.pexpire("tmp", 300)
        c.rename("tmp", "q:inflight")
        # Commands move the clock on; the cool-down's end drains the line.
        deadline = time.time() + 5
        while time.time() < deadline:
            task_info(r.port, "q")
            time.sleep(0.1)
        info = task_info(r.port, "q")
        assert info["waiting_host"] == "0" and info["scheduled"] == "0" and info["in_flight"] == "0", info
        assert c.exists("q:inflight") == 0 and c.ping()
        assert not ep.requests(path="/ok"), "the tasks went with their envelopes"


# ---- Retry-After hold -------------------------------------------------------------------

def test_a_429_with_retry_after_holds_the_host_and_costs_no_attempt(s):
    with HttpEndpoint(server="python") as ep, Outcomes(s.r, "held") as out:
        addr = f"127.0.0.1:{ep.port}"
        push(s.c, "held", [{"url": ep.url("/slow-down", fail_first=1, fail_status=429, retry_after=2),
                            "id": "limited"}])
        first = ep.wait_requests(1, path="/slow-down")[0]
        out.wait(id="limited", status="retrying")
        h = wait_until(lambda: (lambda x: x if x and float(x["held_until"]) > 0 else None)(host(s.c, "held", addr)),
                       timeout=5, what="INFO hosts to show the hold")
        assert 1.5 < float(h["held_until"]) - first["t"] < 3, h
        # Other tasks for the same host: none reaches it before the Retry-After's time.
        push(s.c, "held", [{"url": ep.url("/other"), "id": f"other-{i}"} for i in range(5)])
        for i in range(5):
            out.wait(id=f"other-{i}", status="delivered", timeout=10)
        out.wait(id="limited", status="delivered", timeout=10)
        later = [r for r in ep.requests() if r["t"] > first["t"]]
        assert len(later) == 6, later
        early = [r for r in later if r["t"] < first["t"] + 1.95]
        assert not early, f"requests reached the held host before its Retry-After: {early}"
        retry = [r for r in later if r["path"] == "/slow-down"]
        assert retry and retry[0]["h"]["x-task-attempt"] == "1", \
            f"the 429 with Retry-After cost no attempt: {[r['h'].get('x-task-attempt') for r in retry]}"
        assert out.wait(id="limited", status="delivered")["attempts"] == 1


def test_an_endpoint_that_always_says_later_gets_ten_free_holds_then_the_task_dies(s):
    """429 with Retry-After for ever: 10 answers cost no attempt, the 11th is the attempt
    it is, and with no retry left the task is dead (it used to retry for ever)."""
    with HttpEndpoint(server="python") as ep, Outcomes(s.r, "stubborn") as out:
        push(s.c, "stubborn", [{"url": ep.url("/later", fail_first=1000, fail_status=429, retry_after=1),
                                "id": "stubborn"}])
        o = out.wait(id="stubborn", status="dead", timeout=60)
        reqs = ep.requests(path="/later")
        assert len(reqs) == 11, [r["h"].get("x-task-attempt") for r in reqs]
        assert {r["h"]["x-task-attempt"] for r in reqs} == {"1"}
        assert o["attempts"] == 1 and o["code"] == 429, o


# ---- adaptive cap -----------------------------------------------------------------------

def test_the_cap_shrinks_under_429s_and_grows_back(s):
    assert s.c.config_set("host-failures-to-open", "0")  # only the cap here, no breaker
    try:
        with HttpEndpoint(server="python") as ep:
            addr = f"127.0.0.1:{ep.port}"
            n = 16
            push(s.c, "aimd", [{"url": ep.url("/busy", fail_first=4, fail_status=429, key=f"k{i}", sleep=0.05),
                                "id": f"busy-{i}"} for i in range(n)])
            lowest = [99]

            def all_delivered():
                h = host(s.c, "aimd", addr)
                if h:
                    lowest[0] = min(lowest[0], int(h["cap"]))
                return int(task_info(s.r.port, "aimd")["delivered"]) >= n
            wait_until(all_delivered, timeout=60, interval=0.01, what="the 429ed tasks delivered")
            assert lowest[0] <= 2, f"the cap did not shrink under 429s (lowest {lowest[0]})"
            # Clean answers: the cap grows back to per-host.
            before = int(task_info(s.r.port, "aimd")["delivered"])
            push(s.c, "aimd", [{"url": ep.url("/fine"), "id": f"fine-{i}"} for i in range(120)])
            wait_until(lambda: int(task_info(s.r.port, "aimd")["delivered"]) >= before + 120, timeout=60,
                       what="the clean tasks delivered")
            h = host(s.c, "aimd", addr)
            assert int(h["cap"]) == 8 and h["max_cap"] == "8", f"the cap grew back to per-host: {h}"
            assert h["state"] == "closed", h
    finally:
        s.c.config_set("host-failures-to-open", "3")


# ---- shared queues ----------------------------------------------------------------------

def test_a_shared_queue_keeps_the_same_host_state():
    """The same breaker for a queue shared through an upstream Redis: its failing host
    opens, its tasks wait without spending attempts, the other host's tasks go on, and
    the probe closes it once the host answers."""
    bad_port = free_port()
    bad_addr = f"127.0.0.1:{bad_port}"
    with RedisServer() as up, HttpEndpoint(server="python") as good, \
            sidecar(up, "A", "--http-queue", "tasks", "off", "--http-queue", "sq", "shared", "yes", "per-host", "4",
                    "retries", "3", "backoff-min", "0.05", "backoff-max", "0.1",
                    "--host-failures-to-open", "3", "--host-cooldown", str(COOLDOWN)) as a:
        c = a.client()
        with Outcomes(a, "sq") as out:
            c.lpush("sq", *[json.dumps({"url": f"http://127.0.0.1:{bad_port}/down", "id": f"sbad-{i}"})
                            for i in range(10)])
            wait_until(lambda: (host(c, "sq", bad_addr) or {}).get("state") == "open", timeout=15,
                       what="the shared queue's failing host to open")
            opened_at = time.time()
            c.lpush("sq", *[json.dumps({"url": good.url("/fine"), "id": f"sgood-{i}"}) for i in range(50)])
            for i in range(50):
                out.wait(id=f"sgood-{i}", status="delivered", timeout=15)
            time.sleep(2 * COOLDOWN)
            window = time.time() - opened_at
            failed = [o for o in out.all() if o["id"].startswith("sbad-") and o["status"] in ("retrying", "dead")]
            probes = int(window / COOLDOWN) + 2
            assert len(failed) <= 4 + 2 + probes, \
                f"{len(failed)} attempts spent in {window:.1f} s with the circuit open (at most 6 + {probes})"
            assert not [o for o in failed if o["status"] == "dead"], failed
            st = host(c, "sq", bad_addr)
            assert st["state"] in ("open", "half_open") and int(st["opened"]) >= 2, st
            assert task_info(a.port, "sq")["waiting_host"] != "0" or st["state"] == "half_open", task_info(a.port, "sq")
            with HttpEndpoint(server="python", port=bad_port) as back:
                for i in range(10):
                    out.wait(id=f"sbad-{i}", status="delivered", timeout=COOLDOWN * 4 + 15)
                assert host(c, "sq", bad_addr)["state"] == "closed"
                assert len(back.requests(path="/down")) == 10
        assert up.client().llen("sq:dead") == 0


# ---- host-rate ------------------------------------------------------------------------

def assert_spaced(times, n, window):
    """At most n of the arrival times in any `window` seconds (less a little for the
    loopback's jitter between a start and its arrival)."""
    times = sorted(times)
    for i in range(len(times) - n):
        assert times[i + n] - times[i] >= window - 0.15, \
            f"{n + 1} requests within {times[i + n] - times[i]:.3f} s (host-rate allows {n} per {window} s)"


def test_host_rate_spaces_one_hosts_attempts_while_another_host_flows():
    """host-rate 4: at most 4 attempts start in any second to a host, whatever its cap; the
    tasks over it wait in custody without an attempt spent, and another host's tasks go
    at once. The option reads back through CONFIG GET and the admin API, and CONFIG SET
    lifts it."""
    admin = free_port()
    with HttpEndpoint(server="python") as limited, HttpEndpoint(server="python") as other, \
            Respq("--admin-port", str(admin), "--http-queue", "rl", "per-host", "32", "host-rate", "4") as r:
        c = r.client()
        n = 13
        t0 = time.time()
        push(c, "rl", [{"url": limited.url("/limited"), "id": f"rl-{i}"} for i in range(n)])
        push(c, "rl", [{"url": other.url("/other"), "id": f"other-{i}"} for i in range(5)])
        other.wait_requests(5, timeout=5, path="/other")
        assert time.time() - t0 < 2, "the other host's tasks waited behind the limited host's rate"
        info = task_info(r.port, "rl")
        assert int(info["waiting_host"]) >= n - 8 and int(info["scheduled"]) >= n - 8, info
        # rl-4 .. rl-12 wait in line: rl-8, fifth, goes about 2 s after the first four,
        # rl-12 a second later. TASK GET counts the tasks ahead of each (4 a second), not
        # only the time the host next admits one.
        runs = {}
        for i in (8, n - 1):
            reply = c.execute_command("TASK", "GET", f"rl-{i}")
            got = dict(zip(reply[0::2], reply[1::2]))
            assert got[b"state"] == b"scheduled" and got[b"attempts"] == 0, got
            runs[i] = float(got[b"next_run"])
        assert 0.9 <= runs[n - 1] - runs[8] <= 1.1 and t0 + 1.5 < runs[8] < t0 + 2.6, (t0, runs)
        got_all = limited.wait_requests(n, timeout=15, path="/limited")
        times = [q["t"] for q in got_all]
        assert_spaced(times, 4, 1.0)
        assert max(times) - min(times) >= 2.8, f"13 tasks at 4 a second took {max(times) - min(times):.2f} s"
        assert sorted(q["h"]["x-task-id"] for q in got_all) == sorted(f"rl-{i}" for i in range(n)), "each sent once"
        wait_until(lambda: task_info(r.port, "rl")["delivered"] == str(n + 5), what="every task delivered")
        assert "host-rate 4" in c.config_get("http-queue")["http-queue"]
        status, body = admin_get(admin, "/api/queues")
        assert status == 200 and [q for q in json.loads(body)["queues"] if q["name"] == "rl"][0]["options"]["host_rate"] == 4
        # Lifted: the next burst goes at once.
        c.config_set("http-queue", "rl per-host 32 host-rate 0")
        assert "host-rate" not in c.config_get("http-queue")["http-queue"]
        t1 = time.time()
        push(c, "rl", [{"url": limited.url("/free"), "id": f"free-{i}"} for i in range(12)])
        limited.wait_requests(12, timeout=5, path="/free")
        assert time.time() - t1 < 1.5, "host-rate 0 still spaced the attempts"
        for bad in ("-1", "1e-11", "10001", "x"):
            try:
                c.config_set("http-queue", f"rl host-rate {bad}")
                raise AssertionError(f"host-rate {bad} was accepted")
            except redis.ResponseError as e:
                assert "host-rate must be" in str(e), e
        c.config_set("http-queue", "rl host-rate 2.9999999")  # read back as written: 2 a window
        assert "host-rate 2.9999999 " in c.config_get("http-queue")["http-queue"]


def test_a_shared_queue_spaces_its_hosts_attempts_the_same_way():
    """Tasks over the rate wait here for their turns (each looked at about once), not in a
    line that counts against taking: with more of them than the queue's concurrency,
    another host's tasks pushed after them still go at once."""
    with RedisServer() as up, HttpEndpoint(server="python") as limited, HttpEndpoint(server="python") as other, \
            sidecar(up, "A", "--http-queue", "tasks", "off",
                    "--http-queue", "srl", "shared", "yes", "concurrency", "4", "per-host", "16",
                    "host-rate", "2") as a:
        c = a.client()
        n = 7
        c.lpush("srl", *[json.dumps({"url": limited.url("/slimited"), "id": f"srl-{i}"}) for i in range(n)])
        limited.wait_requests(2, timeout=5, path="/slimited")
        # Waiting in the host's line: scheduled (as INFO counts it), at its turn, a step
        # (half a second) after the task ahead of it.
        runs = {}
        for i in (4, 5):
            reply = c.execute_command("TASK", "GET", f"srl-{i}")
            got = dict(zip(reply[0::2], reply[1::2]))
            assert got[b"state"] == b"scheduled" and got[b"attempts"] == 0, got
            runs[i] = float(got[b"next_run"])
        assert 0.4 <= runs[5] - runs[4] <= 0.6 and runs[4] > time.time(), runs
        t0 = time.time()
        c.lpush("srl", *[json.dumps({"url": other.url("/sother"), "id": f"sother-{i}"}) for i in range(3)])
        other.wait_requests(3, timeout=5, path="/sother")
        assert time.time() - t0 < 1.5, "the other host's tasks waited behind the limited host's rate"
        got_all = limited.wait_requests(n, timeout=20, path="/slimited")
        times = [q["t"] for q in got_all]
        assert_spaced(times, 2, 1.0)
        assert max(times) - min(times) >= 2.8, f"7 tasks at 2 a second took {max(times) - min(times):.2f} s"
        assert sorted(q["h"]["x-task-id"] for q in got_all) == sorted(f"srl-{i}" for i in range(n))
        wait_until(lambda: task_info(a.port, "srl")["delivered"] == str(n + 3), what="every task delivered")


def test_a_shared_queue_holds_a_bounded_backlog_over_the_host_rate():
    """A sidecar takes at most max(1,024, 4 x concurrency) tasks over a host's rate into its
    custody; the rest stay on the upstream list for it (or another sidecar) to take later."""
    with RedisServer() as up, HttpEndpoint(server="python") as limited, \
            sidecar(up, "A", "--http-queue", "tasks", "off",
                    "--http-queue", "sbl", "shared", "yes", "concurrency", "8", "host-rate", "1") as a:
        n = 1500
        up.client().lpush("sbl", *[json.dumps({"url": limited.url("/b"), "id": f"sbl-{i}"}) for i in range(n)])
        wait_until(lambda: int(task_info(a.port, "sbl")["taken"]) >= 1024, timeout=20, what="1,024 taken")
        time.sleep(1)
        taken = int(task_info(a.port, "sbl")["taken"])
        assert 1024 <= taken <= 1024 + 16, f"the sidecar took {taken} of {n} tasks over a rate of 1 a second"
        assert up.client().llen("sbl") >= n - taken, up.client().llen("sbl")
        assert len(limited.requests(path="/b")) <= 3


def test_a_shared_queue_with_a_queue_rate_lets_its_host_lines_go():
    """The queue's `rate` and a host-rate together: the tasks waiting in the host's line
    get the queue's tokens as the host's window opens (a token is spent when an attempt
    starts, not when a task is taken), so delivery never stops while a backlog is taken."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep, \
            sidecar(up, "A", "--http-queue", "tasks", "off",
                    "--http-queue", "sqr", "shared", "yes", "rate", "4", "host-rate", "2") as a:
        n = 40
        up.client().lpush("sqr", *[json.dumps({"url": ep.url("/qr"), "id": f"sqr-{i}"}) for i in range(n)])
        time.sleep(4)
        got = ep.requests(path="/qr")
        assert len(got) >= 6, f"{len(got)} requests in 4 s at host-rate 2"
        assert_spaced([q["t"] for q in got], 2, 1.0)
        wait_until(lambda: len(ep.requests(path="/qr")) >= 10, timeout=10, what="10 requests")


# ---- an operator's reset -----------------------------------------------------------------

def test_hostreset_ends_a_hold_and_closes_a_circuit_and_the_waiting_tasks_go():
    """QUEUE HOSTRESET (and POST /api/queues/<q>/hosts/<host>/reset): a host held for ten
    minutes by a Retry-After, or whose circuit is open for a minute, is trusted afresh at
    once, and the tasks waiting for it are sent; a local and a shared queue alike."""
    admin = free_port()
    with HttpEndpoint(server="python") as ep, RedisServer() as up, \
            sidecar(up, "A", "--admin-port", str(admin), "--host-failures-to-open", "2", "--host-cooldown", "60",
                    "--http-queue", "tasks", "off",
                    "--http-queue", "lq", "retries", "5", "backoff-min", "0.05", "backoff-max", "0.1",
                    "--http-queue", "sq", "shared", "yes", "retries", "5", "backoff-min", "0.05",
                    "backoff-max", "0.1") as r:
        c = r.client()
        addr = f"127.0.0.1:{ep.port}"
        for q in ("lq", "sq"):
            with Outcomes(r, q) as out:
                # Held: a 429 asking for ten minutes; two more tasks wait behind it.
                push(c, q, [{"url": ep.url(f"/{q}/held", fail_first=1, fail_status=429, retry_after=600,
                                           key=f"{q}-held"), "id": f"{q}-held"}])
                wait_until(lambda: float((host(c, q, addr) or {}).get("held_until", 0)) > time.time() + 500,
                           timeout=10, what=f"{q}: the hold")
                push(c, q, [{"url": ep.url(f"/{q}/after"), "id": f"{q}-after-{i}"} for i in range(2)])
                time.sleep(0.3)
                assert not ep.requests(path=f"/{q}/after"), "nothing goes to a held host"
                with RawConn(r.port) as raw:
                    assert raw.cmd("QUEUE", "HOSTRESET", q, addr.upper()) == b":1\r\n"
                # A local queue's held task goes now too; a shared queue's waits for its
                # retry on the upstream (<queue>:retry), out of this sidecar's hands.
                for tid in ([f"{q}-held"] if q == "lq" else []) + [f"{q}-after-0", f"{q}-after-1"]:
                    out.wait(id=tid, status="delivered", timeout=10)
                h = host(c, q, addr)
                assert h["state"] == "closed" and float(h["held_until"]) < time.time(), h
        # Open for a minute: two refused connections; reset through the admin API.
        bad = free_port()
        with Outcomes(r, "lq") as out:
            push(c, "lq", [{"url": f"http://127.0.0.1:{bad}/x", "id": f"down-{i}"} for i in range(3)])
            wait_until(lambda: (host(c, "lq", f"127.0.0.1:{bad}") or {}).get("state") == "open", timeout=10,
                       what="the circuit to open")
            with HttpEndpoint(server="python", port=bad) as back:
                time.sleep(0.3)
                assert not back.requests(), "nothing goes through an open circuit"
                st, body = admin_get(admin, f"/api/queues/lq/hosts/127.0.0.1:{bad}/reset", "POST")
                assert st == 200 and json.loads(body) == {"queue": "lq", "host": f"127.0.0.1:{bad}", "reset": True}
                for i in range(3):
                    out.wait(id=f"down-{i}", status="delivered", timeout=10)
        with RawConn(r.port) as raw:
            assert raw.cmd("QUEUE", "HOSTRESET", "lq", "nowhere:1") == b":0\r\n"
            assert raw.cmd("QUEUE", "HOSTRESET", "nope", addr) == b"-ERR no such HTTP queue 'nope'\r\n"
            assert raw.cmd("QUEUE", "HOSTRESET", "lq").startswith(b"-ERR wrong number of arguments")
        st, body = admin_get(admin, "/api/queues/lq/hosts/nowhere:1/reset", "POST")
        assert st == 404, (st, body)


# ---- config, admin ----------------------------------------------------------------------

def test_directives_config_get_set_and_the_admin_views(s):
    assert s.c.config_get("host-*") == {"host-failures-to-open": "3", "host-cooldown": str(COOLDOWN),
                                         "host-info-max": "20"}
    assert s.c.config_set("host-cooldown", "2.5") and s.c.config_get("host-cooldown")["host-cooldown"] == "2.5"
    s.c.config_set("host-cooldown", str(COOLDOWN))
    try:
        s.c.config_set("host-cooldown", "-1")
        raise AssertionError("a negative cool-down was accepted")
    except Exception as e:  # redis.ResponseError
        assert "seconds" in str(e), e
    # INFO hosts is bounded by host-info-max, the busiest first.
    summary, lines = hosts(s.c)
    assert int(summary["count"]) >= 4 and int(summary["shown"]) == min(20, int(summary["count"])), summary
    assert s.c.config_set("host-info-max", "1")
    summary, lines = hosts(s.c)
    assert summary["shown"] == "1" and len(lines) == 1, (summary, lines)

    status, body = admin_get(s.admin, "/api/hosts")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["total"] == int(summary["count"]) and len(doc["hosts"]) == 1, doc
    h = doc["hosts"][0]
    assert {"host", "queue", "state", "in_flight", "waiting", "cap", "max_cap", "failures", "last_error"} <= set(h), h

    status, body = admin_get(s.admin, "/metrics")
    assert status == 200
    text = body.decode()
    named = [l for l in text.splitlines() if l.startswith("respq_host_in_flight{")]
    assert any('host="other"' in l for l in named), named
    assert len([l for l in named if 'host="other"' not in l]) == 1, named
    s.c.config_set("host-info-max", "20")
    status, body = admin_get(s.admin, "/metrics")
    text = body.decode()
    for want in ("respq_host_failures_total{", "respq_host_concurrency_cap{", "respq_host_circuit_opened_total{"):
        assert want in text, want
    assert f'respq_host_circuit{{queue="flow",host="127.0.0.1:{s.good.port}",state="closed"}} 1' in text
    if shutil.which("promtool"):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (p.returncode, p.stdout, p.stderr)


run_tests(globals(), setup=Servers)
