"""Scale-out without stuck work (issue 19): sidecars sharing one queue on a real
redis-server reclaim the work of a sidecar that died (heartbeats, `node-timeout`), keep a
retrying or scheduled task's state on the upstream (its attempts survive the death of
the sidecar that ran it), and follow a Sentinel failover without losing an acknowledged
push. Everything runs on loopback: redis-server, redis-sentinel, the HTTP sink and the
sidecars are started here on free ports."""
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, RedisServer, Respq, _Process, cpu_seconds, free_port,  # noqa: E402
                     parse_info, RawConn, run_tests, wait_until)
from link_helpers import Results, shared_info  # noqa: E402

Q = "jobs"


def shared(up_port, node, *extra, concurrency=4, node_timeout=1, retries=3, backoff=(0.2, 0.4), **kw):
    """A sidecar sharing Q on the upstream at up_port (or through Sentinel: up_port=None
    and the --upstream-sentinel arguments in extra)."""
    link = ["--upstream", "127.0.0.1", str(up_port)] if up_port else []
    return Respq(*link, "--node-id", node, "--loglevel", "verbose", "--node-timeout", str(node_timeout),
                 "--http-queue", "tasks", "off", "--http-queue", Q, "shared", "yes", "concurrency", str(concurrency),
                 "retries", str(retries), "backoff-min", str(backoff[0]), "backoff-max", str(backoff[1]), *extra, **kw)


def task(ep, tid, path="/t", **query):
    return json.dumps({"url": ep.url(path, **query), "id": tid})


def ok_ids(ep):
    """Ids the endpoint answered 2xx at least once."""
    return {r["h"].get("x-task-id") for r in ep.requests() if 200 <= r["status"] < 300}


def hits(ep):
    return Counter(r["h"].get("x-task-id") for r in ep.requests())


def mirror_section(respq):
    with RawConn(respq.port) as c:
        reply = c.cmd("INFO", "mirror")
    return parse_info(reply.split(b"\r\n", 1)[1]).get("mirror", {})


def settled(u, *sidecars):
    """Nothing left on the upstream (queue, processing lists, retry and scheduled sets) nor
    held by a running sidecar."""
    if u.llen(Q) or u.zcard(f"{Q}:retry") or u.zcard(f"{Q}:scheduled"):
        return False
    if any(u.llen(k) for k in u.keys(f"{Q}:processing:*")):
        return False
    for s in sidecars:
        if not s.alive():
            continue
        i = shared_info(s, Q)
        if i["in_flight"] != "0" or i["waiting"] != "0" or i["finishing"] != "0" or s.client().llen(Q):
            return False
    return True


def stop_all(*procs):
    """Stops them all; a sidecar that was running must exit 0 (under ASan a report of
    its own at exit makes it fail)."""
    bad = []
    for p in procs:
        running = p.alive()
        rc = p.stop()
        if running and isinstance(p, Respq) and rc != 0:
            bad.append((rc, p.log_text()[-2000:]))
        p.cleanup()
    assert not bad, bad


def test_directives_in_help_and_config():
    import harness
    out = harness.run([harness.SERVER, "--help"]).stdout
    assert any(l.split()[:2] == ["node-timeout", "15"] for l in out.splitlines()), out
    for d in ("upstream-sentinel", "upstream-master-name", "upstream-wait-replicas", "upstream-wait-timeout"):
        assert any(l.split()[:1] == [d] for l in out.splitlines()), d
    with RedisServer() as up, shared(up.port, "A", node_timeout=3) as a:
        c = a.client()
        assert c.config_get("node-timeout") == {"node-timeout": "3"}
        c.config_set("node-timeout", "4.5")
        assert c.config_get("node-timeout") == {"node-timeout": "4.5"}
        # The next beat writes the new TTL.
        wait_until(lambda: up.client().pttl("respq:node:A") > 3000, timeout=5, what="a beat with the new TTL")
        try:
            c.config_set("node-timeout", "0")
            raise AssertionError("node-timeout 0 accepted")
        except Exception as e:
            assert "between 0.5 and 86400" in str(e), e


def test_a_dead_sidecars_tasks_are_reclaimed_by_another():
    """Three sidecars; one killed with -9 and never restarted: another moves its processing
    list back to the queue within 2 x node-timeout, and every task is delivered."""
    nt = 2.0
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a, b, c = (shared(up.port, n, concurrency=3, node_timeout=nt) for n in "ABC")
        try:
            res = Results(up, Q)
            wait_until(lambda: all(u.exists(f"respq:node:{n}") for n in "ABC"), what="three heartbeats")
            assert 0 < u.pttl("respq:node:A") <= nt * 1000
            ids = [f"r-{i}" for i in range(24)]
            for tid in ids:
                u.lpush(Q, task(ep, tid, sleep=1.5))
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 3, timeout=10, what="A holds three tasks")
            held_by_a = sorted(json.loads(x)["id"] for x in u.lrange(f"{Q}:processing:A", 0, -1))
            wait_until(lambda: all(hits(ep)[t] == 1 for t in held_by_a), what="A's requests at the endpoint")
            a.kill9()
            killed = time.time()
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 0, timeout=3 * nt, interval=0.02,
                       what="A's processing list reclaimed")
            took = time.time() - killed
            assert took <= 2 * nt, f"reclaimed {took:.2f} s after the kill (node-timeout {nt})"
            assert not u.exists("respq:node:A")
            wait_until(lambda: {o["id"] for o in res.of("delivered")} == set(ids), timeout=60,
                       what="every task delivered")
            wait_until(lambda: settled(u, b, c), timeout=10, what="everything settled")
            by_id = {o["id"]: o for o in res.of("delivered")}
            assert all(by_id[t]["node"] in ("B", "C") for t in held_by_a), {t: by_id[t]["node"] for t in held_by_a}
            reclaimed = int(shared_info(b, Q)["reclaimed"]) + int(shared_info(c, Q)["reclaimed"])
            assert reclaimed == 3, (shared_info(b, Q), shared_info(c, Q))
            assert sum(f"moved its 3 tasks from {Q}:processing:A" in s.log_text() for s in (b, c)) == 1
            got = hits(ep)
            # A's three were in flight when it died: sent again (at least once); the rest once.
            assert all(got[t] == 2 for t in held_by_a), got
            assert all(got[t] == 1 for t in ids if t not in held_by_a), got
            print(f"  reclaimed {took:.2f} s after kill -9 (node-timeout {nt} s)")
            res.close()
        finally:
            stop_all(a, b, c)


def test_a_task_without_an_id_keeps_its_generated_id_when_another_sidecar_runs_it():
    """A producer's task that names no id gets one from the sidecar that takes it; the id
    is written into its element on the upstream, so the sidecar that reclaims it after a
    kill -9 sends the same X-Task-Id, and the endpoint can tell the attempt in flight at
    the kill from a new task."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", concurrency=2, node_timeout=1)
        b = None
        try:
            res = Results(up, Q)
            for i in range(2):
                u.lpush(Q, json.dumps({"url": ep.url("/t", n=f"g{i}", sleep=1.5), "param": {"i": i}}))
            wait_until(lambda: len(ep.requests()) == 2, what="A runs both")
            held = u.lrange(f"{Q}:processing:A", 0, -1)
            assert len(held) == 2 and all(json.loads(e)["id"] for e in held), held  # stamped
            b = shared(up.port, "B", concurrency=2, node_timeout=1)
            a.kill9()
            wait_until(lambda: len(res.of("delivered")) == 2, timeout=15, what="B delivers both")
            wait_until(lambda: settled(u, b), timeout=10, what="everything settled")
            for i in range(2):
                got = ep.requests(where=lambda r, i=i: f"n=g{i}" in r["uri"])
                assert len(got) == 2, got  # A's attempt, in flight at the kill, and B's
                assert got[0]["h"]["x-task-id"] == got[1]["h"]["x-task-id"], got
                # The producer's bytes reach the endpoint as sent: the form body.
                assert all(f"i={i}" in r["uri"] for r in got), got
            ids = {o["id"] for o in res.of("delivered")}
            assert ids == {r["h"]["x-task-id"] for r in ep.requests()}, (ids, ep.requests())
            res.close()
        finally:
            stop_all(*([b] if b else []))
            a.cleanup()


def test_a_recovered_task_without_an_id_is_stamped_too():
    """An id-less element a sidecar finds in its processing list at start (its stamp never
    landed, or an older version took it) gets its id written in before it runs."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        raw = json.dumps({"url": ep.url("/t", sleep=1)})
        u.rpush(f"{Q}:processing:A", raw)
        a = shared(up.port, "A", concurrency=2, node_timeout=2)
        try:
            wait_until(lambda: len(ep.requests()) == 1, what="the recovered task running")
            held = u.lrange(f"{Q}:processing:A", 0, -1)
            assert len(held) == 1 and json.loads(held[0])["payload"] == raw, held
            assert json.loads(held[0])["id"] == ep.requests()[0]["h"]["x-task-id"], (held, ep.requests())
            wait_until(lambda: settled(u, a), timeout=10, what="delivered")
        finally:
            stop_all(a)


def test_a_sidecar_taken_for_dead_gives_up_what_was_reclaimed():
    """A sidecar frozen (SIGSTOP) for longer than node-timeout is taken for dead: another
    reclaims and delivers its task. When it wakes, its heartbeat finds the lapse, and it
    gives the task up: its own attempt, already in flight, is the at-least-once window,
    but it records no second outcome upstream."""
    import signal
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", concurrency=1, node_timeout=1)
        b = None
        try:
            res = Results(up, Q)
            u.lpush(Q, task(ep, "x", sleep=3))
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 1 and hits(ep)["x"] == 1, what="A runs x")
            b = shared(up.port, "B", concurrency=1, node_timeout=1)
            a.signal(signal.SIGSTOP)
            try:
                wait_until(lambda: u.llen(f"{Q}:processing:A") == 0, timeout=5, what="B reclaims x")
                wait_until(lambda: res.of("delivered", "x"), timeout=10, what="B delivers x")
            finally:
                a.signal(signal.SIGCONT)
            wait_until(lambda: shared_info(a, Q)["lost_to_reclaim"] == "1", timeout=10,
                       what="A gives x up")
            wait_until(lambda: shared_info(a, Q)["in_flight"] == "0", timeout=10, what="A's attempt ended")
            assert "reclaimed by another sidecar" in a.log_text()
            assert "Heartbeat: this node's key respq:node:A had expired" in a.log_text()
            wait_until(lambda: settled(u, a, b), timeout=10, what="everything settled")
            time.sleep(0.3)
            assert [o["node"] for o in res.of("delivered", "x")] == ["B"], res.of("delivered")
            assert hits(ep)["x"] == 2  # A's request was in flight when it froze
            assert shared_info(b, Q)["reclaimed"] == "1"
            res.close()
        finally:
            stop_all(a, *([b] if b else []))


def test_a_sidecar_taken_for_dead_starts_none_of_the_tasks_it_held_waiting():
    """A holds x in flight and y waiting for its host when it freezes past node-timeout; B
    reclaims and delivers both. When A wakes, x's answer frees the host before its
    heartbeat has told it of the lapse: y must not start there (it ran on B), only the
    attempt that was in flight is the at-least-once window."""
    import signal
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", "per-host", "1", concurrency=2, node_timeout=1)
        b = None
        try:
            res = Results(up, Q)
            u.lpush(Q, task(ep, "x", sleep=2))
            wait_until(lambda: hits(ep)["x"] == 1, what="A runs x")
            u.lpush(Q, task(ep, "y"))
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 2, what="A holds y waiting")
            b = shared(up.port, "B", concurrency=2, node_timeout=1)
            a.signal(signal.SIGSTOP)
            try:
                wait_until(lambda: res.of("delivered", "x") and res.of("delivered", "y"), timeout=15,
                           what="B delivers x and y")
                time.sleep(0.5)  # x's answer to A is waiting in its socket
            finally:
                a.signal(signal.SIGCONT)
            wait_until(lambda: shared_info(a, Q)["lost_to_reclaim"] == "2", timeout=10, what="A gives x and y up")
            wait_until(lambda: settled(u, a, b), timeout=10, what="everything settled")
            time.sleep(0.5)
            assert hits(ep)["y"] == 1, ep.requests()
            assert hits(ep)["x"] == 2  # A's request was in flight when it froze
            assert [o["node"] for o in res.of("delivered", "y")] == ["B"], res.of("delivered")
            res.close()
        finally:
            stop_all(a, *([b] if b else []))


def test_tasks_held_past_their_time_wait_without_spinning():
    """Three tasks recovered from A's processing list with one slot: two wait, due, while
    the first runs. They start when it ends (not on a timer armed for "now", which spun
    the loop at a core's worth of CPU for as long as the slot was taken)."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        u.rpush(f"{Q}:processing:A", *[task(ep, f"h{i}", sleep=2.5) for i in range(3)])
        a = shared(up.port, "A", concurrency=1, node_timeout=2)
        try:
            wait_until(lambda: len(ep.requests()) == 1, what="the first running")
            used = cpu_seconds(a.proc.pid)
            time.sleep(1.5)
            used = cpu_seconds(a.proc.pid) - used
            assert used < 0.5, f"{used:.2f} s of CPU in 1.5 s with two tasks waiting for the slot"
            wait_until(lambda: len({r["h"].get("x-task-id") for r in ep.requests()}) == 3, timeout=20,
                       what="all three run")
        finally:
            stop_all(a)


def test_a_reclaimed_task_taken_back_by_its_own_sidecar_is_not_dropped_as_a_duplicate():
    """A's heartbeat key expires while A runs x, and x is reclaimed (moved back to the queue
    and the reclaim marker set, as another sidecar's reclaim script does). A's own
    blocking take gets x back at once, while its first copy of x is still in flight and
    before A's next beat notices the lapse. That copy is x's custody now: A must not drop
    it as a duplicate of the one it holds (which it gives up when it notices the lapse,
    and whose failed attempt can then record nothing). x is delivered."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        # Beats every second: the reclaim below lands well between two of them.
        a = shared(up.port, "A", concurrency=2, node_timeout=3)
        try:
            res = Results(up, Q)
            u.lpush(Q, task(ep, "x", sleep=1.5, fail_first=1))
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 1 and hits(ep)["x"] == 1, what="A runs x")
            p = u.pipeline(transaction=True)
            p.delete("respq:node:A")
            p.lmove(f"{Q}:processing:A", Q, "LEFT", "RIGHT")
            p.set(f"respq:reclaimed:A:{Q}", 1, px=300000)
            p.execute()
            wait_until(lambda: "respq:node:A had expired" in a.log_text(), timeout=10, what="A notices the lapse")
            wait_until(lambda: res.of("delivered", "x"), timeout=20,
                       what=f"x delivered (endpoint: {hits(ep)}, A: {shared_info(a, Q)})")
            assert int(shared_info(a, Q)["taken"]) >= 2, shared_info(a, Q)
            wait_until(lambda: settled(u, a), timeout=10, what="everything settled")
            assert 200 in {r["status"] for r in ep.requests() if r["h"].get("x-task-id") == "x"}
            res.close()
        finally:
            stop_all(a)


def open_circuit(u, ep, sidecar):
    """Two 500s (retries 0, host-failures-to-open 2): the sidecar's circuit for the
    endpoint's host opens. Returns the time it was seen open."""
    for i in range(2):
        u.lpush(Q, json.dumps({"url": ep.url("/status/500"), "id": f"bad-{i}"}))
    wait_until(lambda: "circuit of host" in sidecar.log_text() and u.llen(f"{Q}:dead") == 2, timeout=10,
               what="the circuit open")
    return time.time()


def test_tasks_waiting_for_an_open_host_run_when_it_closes_on_an_idle_sidecar():
    """Tasks taken while the sidecar's circuit for their host is open wait without an
    attempt; nothing else happens on that sidecar (no other traffic, an empty queue), and
    once the cool-down ends a probe goes, the circuit closes and every one of them runs."""
    cooldown = 3
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", "--host-failures-to-open", "2", "--host-cooldown", str(cooldown), concurrency=10,
                   node_timeout=3, retries=0)
        try:
            opened = open_circuit(u, ep, a)
            ids = [f"ok-{i}" for i in range(10)]
            u.lpush(Q, *[task(ep, t) for t in ids])
            wait_until(lambda: u.llen(Q) == 0 and shared_info(a, Q)["waiting_host"] == "10", timeout=10,
                       what=f"A holds the ten for their host ({shared_info(a, Q)})")
            wait_until(lambda: all(hits(ep)[t] for t in ids), timeout=cooldown + 10,
                       what=f"the ten delivered after the cool-down ({shared_info(a, Q)})")
            first = min(r["t"] for r in ep.requests(path="/t"))
            assert first >= opened + cooldown - 0.5, f"sent {first - opened:.2f} s after the circuit opened"
            wait_until(lambda: settled(u, a), timeout=10, what="everything settled")
            got = hits(ep)
            assert all(got[t] == 1 for t in ids), got
            assert "circuit of host" in a.log_text() and " closed" in a.log_text(), a.log_text()[-2000:]
        finally:
            stop_all(a)


def test_tasks_waiting_for_an_open_host_are_reclaimed_when_their_sidecar_dies():
    """Tasks A holds for its open host stay in A's processing list: when A is killed, B
    reclaims them and delivers them long before A's cool-down would have ended."""
    cooldown = 60
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", "--host-failures-to-open", "2", "--host-cooldown", str(cooldown), concurrency=10,
                   node_timeout=1, retries=0)
        b = None
        try:
            opened = open_circuit(u, ep, a)
            ids = [f"ok-{i}" for i in range(10)]
            u.lpush(Q, *[task(ep, t) for t in ids])
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 10 and shared_info(a, Q)["waiting_host"] == "10",
                       timeout=10, what=f"A holds the ten for their host ({shared_info(a, Q)})")
            assert not any(hits(ep)[t] for t in ids)
            a.kill9()
            b = shared(up.port, "B", concurrency=4, node_timeout=1)
            wait_until(lambda: all(hits(ep)[t] for t in ids), timeout=15, what="B delivers the ten")
            assert time.time() - opened < cooldown
            wait_until(lambda: settled(u, b), timeout=10, what="everything settled")
            assert shared_info(b, Q)["reclaimed"] == "10", shared_info(b, Q)
            got = hits(ep)
            assert all(got[t] == 1 for t in ids), got
        finally:
            stop_all(a, *([b] if b else []))


def test_a_retrying_task_keeps_its_attempts_across_a_sidecar_kill():
    """A task fails twice then succeeds; the sidecar that ran its first attempt is killed
    while the task waits for its retry: the retry lives in jobs:retry on the upstream, the
    other sidecar runs it with the attempts counted so far. A scheduled task (delay) waits
    in jobs:scheduled the same way."""
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        a = shared(up.port, "A", node_timeout=2, retries=5, backoff=(1.5, 1.5))
        b = None
        try:
            res = Results(up, Q)
            u.lpush(Q, task(ep, "flaky", fail_first=2))
            a.client().lpush(Q, json.dumps({"url": ep.url("/later"), "id": "later", "delay": 3}))
            wait_until(lambda: res.of("retrying", "flaky"), timeout=10, what="the first attempt failed")
            wait_until(lambda: u.zcard(f"{Q}:scheduled") == 1, timeout=10, what="the delayed task parked upstream")
            a.kill9()
            retry = [json.loads(x) for x in u.zrange(f"{Q}:retry", 0, -1)]
            assert len(retry) == 1 and retry[0]["id"] == "flaky" and retry[0]["attempts"] == 1, retry
            assert retry[0]["state"] == "retrying" and retry[0]["max_attempts"] == 6, retry
            assert json.loads(retry[0]["payload"])["id"] == "flaky"
            sched = [json.loads(x) for x in u.zrange(f"{Q}:scheduled", 0, -1)]
            assert sched[0]["id"] == "later" and sched[0]["state"] == "scheduled", sched
            b = shared(up.port, "B", node_timeout=2, retries=5, backoff=(1.5, 1.5))
            wait_until(lambda: res.of("delivered", "flaky") and res.of("delivered", "later"), timeout=30,
                       what="both delivered by B")
            done = res.of("delivered", "flaky")[0]
            assert done["attempts"] >= 3 and done["node"] == "B", done
            attempts = [r["h"]["x-task-attempt"] for r in ep.requests(path="/t")]
            assert attempts == ["1", "2", "3"], attempts
            later = ep.requests(path="/later")
            assert len(later) == 1 and later[0]["h"]["x-task-attempt"] == "1"
            assert res.of("delivered", "later")[0]["node"] == "B"
            wait_until(lambda: settled(u, b), timeout=10, what="everything settled")
            i = shared_info(b, Q)
            assert int(i["moved_due"]) >= 1, i
            res.close()
        finally:
            stop_all(a, *([b] if b else []))


class Sentinel(_Process):
    """redis-sentinel on a free port, monitoring `master` (a RedisServer) as mymaster."""
    name = "sentinel"

    def __init__(self, master_port, quorum=2):
        super().__init__()
        self.port = free_port()
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\ndaemonize no\n"
                    f"sentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\n"
                    "sentinel down-after-milliseconds mymaster 2000\n"
                    "sentinel failover-timeout mymaster 10000\n"
                    "sentinel parallel-syncs mymaster 1\n")
        self.start()

    def start(self, wait=True):
        return self._spawn(["redis-sentinel", self.conf], wait=wait)

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port)


def test_sentinel_failover_in_a_stream_of_pushes_loses_no_acknowledged_task():
    """Master + replica + 3 sentinels; two sidecars find the master through the sentinels
    and forward with upstream-wait-replicas 1. SENTINEL FAILOVER in the middle of a stream
    of pushes: the sidecars follow +switch-master, and every push they acknowledged is
    delivered."""
    with RedisServer() as master, HttpEndpoint(server="python", workers=8) as ep:
        replica = RedisServer("--replicaof", "127.0.0.1", str(master.port))
        sentinels = []
        sidecars = []
        try:
            wait_until(lambda: master.client().info("replication")["connected_slaves"] == 1
                       and replica.client().info("replication")["master_link_status"] == "up",
                       timeout=20, what="the replica in sync")
            sentinels = [Sentinel(master.port) for _ in range(3)]

            def replica_known():
                for s in sentinels:
                    reps = s.client().execute_command("SENTINEL", "REPLICAS", "mymaster")
                    if not reps:
                        return False
                    f = dict(zip(*[iter(x.decode() if isinstance(x, bytes) else x for x in reps[0])] * 2))
                    if f.get("master-link-status") != "ok" or "s_down" in f.get("flags", ""):
                        return False
                return True
            wait_until(replica_known, timeout=30, interval=0.2, what="every sentinel knows the replica")
            spec = []
            for s in sentinels:
                spec += ["127.0.0.1", str(s.port)]
            for n in ("A", "B"):
                sidecars.append(shared(None, n, "--upstream-sentinel", *spec, "--upstream-master-name", "mymaster",
                                       "--upstream-wait-replicas", "1", "--upstream-wait-timeout", "0.5",
                                       node_timeout=3, concurrency=8))
            for s in sidecars:
                wait_until(lambda s=s: mirror_section(s).get("sentinel_master") == f"127.0.0.1:{master.port}"
                           and shared_info(s, Q)["taker"] == "up", timeout=20, what="the sidecar on the master")
            acked, refused = [], []
            stop = threading.Event()

            def producer():
                i = 0
                clients = [s.client() for s in sidecars]
                while not stop.is_set():
                    tid = f"f-{i}"
                    try:
                        clients[i % 2].lpush(Q, task(ep, tid))
                        acked.append(tid)
                    except Exception as e:  # not acknowledged: not promised
                        refused.append((tid, repr(e)))
                    i += 1
                    time.sleep(0.01)
            t = threading.Thread(target=producer)
            t.start()
            try:
                wait_until(lambda: len(acked) >= 100, timeout=20, what="pushes before the failover")
                assert sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "mymaster") in (b"OK", True)
                new = f"127.0.0.1:{replica.port}"
                for s in sidecars:
                    wait_until(lambda s=s: mirror_section(s).get("sentinel_master") == new, timeout=30,
                               interval=0.05, what="the sidecar follows +switch-master")
                wait_until(lambda: replica.client().info("replication")["role"] == "master", what="promoted")
                n_at_switch = len(acked)
                wait_until(lambda: len(acked) >= n_at_switch + 100, timeout=20, what="pushes after the failover")
            finally:
                stop.set()
                t.join()
            assert not refused, refused[:3]
            wait_until(lambda: set(acked) <= ok_ids(ep), timeout=60, interval=0.1,
                       what=f"every acknowledged push delivered ({len(acked)})")
            for s in sidecars:
                m = mirror_section(s)
                assert m["master_switches"] == "1" and m["link_status"] == "up", m
            nu = replica.client()
            wait_until(lambda: settled(nu, *sidecars), timeout=30, what="everything settled on the new master")
            got = hits(ep)
            dup = sum(1 for v in got.values() if v > 1)
            print(f"  {len(acked)} pushes acknowledged, all delivered; {dup} delivered more than once")
        finally:
            stop_all(*sidecars, *sentinels, replica)


def test_load_with_random_kills_and_restarts_loses_nothing_and_leaves_nothing_stuck():
    """Three sidecars on one upstream for about 60 s; every few seconds one is killed with
    -9 and restarted (sometimes before node-timeout: it recovers its own list; sometimes
    after: another reclaimed it), or paused (SIGSTOP) for longer than node-timeout: taken
    for dead, its list is reclaimed while it still holds the tasks, and when it wakes its
    takes (the reclaimed tasks are taken next) race its heartbeat noticing the lapse.
    Tasks are pushed to the upstream and to the sidecars (whose spools are in an AOF with
    appendfsync always), some fail once first. Every acknowledged task is delivered, and
    nothing stays in a queue, processing list or set."""
    nt = 1.0
    duration = float(os.environ.get("RESPQ_SCALEOUT_LOAD_S", "60"))
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        sidecars = [shared(up.port, n, "--appendonly", "yes", "--appendfsync", "always", concurrency=8,
                           node_timeout=nt, retries=10, backoff=(0.1, 0.3)) for n in "ABC"]
        acked = []
        lock = threading.Lock()
        stop = threading.Event()
        kills = Counter()
        pauses = Counter()

        def producer(seed):
            rng = random.Random(seed)
            i = 0
            while not stop.is_set():
                tid = f"L{seed}-{i}"
                i += 1
                q = {"sleep": round(rng.uniform(0, 0.2), 3)}
                if rng.random() < 0.2:
                    q["fail_first"] = 1
                body = task(ep, tid, **q)
                target = rng.randrange(4)
                try:
                    if target == 3:
                        u.lpush(Q, body)
                    else:
                        s = sidecars[target]
                        if not s.alive():
                            continue
                        s.client(socket_timeout=2).lpush(Q, body)
                    with lock:
                        acked.append(tid)
                except Exception:
                    pass  # a sidecar killed under the push: not acknowledged
                time.sleep(rng.uniform(0.005, 0.02))

        def killer():
            rng = random.Random(7)
            while not stop.is_set():
                if stop.wait(rng.uniform(1.5, 3)):
                    break
                s = rng.choice(sidecars)
                if rng.random() < 1 / 3:
                    s.signal(signal.SIGSTOP)
                    stop.wait(rng.uniform(1.2, 2) * nt)
                    s.signal(signal.SIGCONT)
                    pauses[s.args[s.args.index("--node-id") + 1]] += 1
                    continue
                s.kill9()
                kills[s.args[s.args.index("--node-id") + 1]] += 1
                # Back before its heartbeat expires, or well after (reclaimed by another).
                stop.wait(rng.choice([0.2, 2.5 * nt]))
                s.start()

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(2)] + [threading.Thread(target=killer)]
        try:
            for t in threads:
                t.start()
            time.sleep(duration)
            stop.set()
            for t in threads:
                t.join()
            for s in sidecars:
                if not s.alive():
                    s.start()
            try:
                wait_until(lambda: set(acked) <= ok_ids(ep), timeout=120, interval=0.2,
                           what=f"every acknowledged task delivered ({len(acked)})")
            except AssertionError:
                # Where the missing ones are, for the report.
                missing = sorted(set(acked) - ok_ids(ep))
                h = hits(ep)
                where = {k.decode(): u.type(k).decode() for k in u.keys("*")}
                print(f"  missing {len(missing)}: {missing[:20]}; their requests: {[h[m] for m in missing[:20]]}; "
                      f"upstream keys: {where}; sidecars: {[shared_info(s, Q) if s.alive() else 'down' for s in sidecars]}")
                for s in sidecars:
                    s.dump_log()
                raise
            wait_until(lambda: settled(u, *sidecars), timeout=30, interval=0.1, what="nothing stuck")
            import re
            # The logs span every restart: how often a dead node's list was moved back, and
            # how often a restarted node found its own list.
            logs = "".join(s.log_text() for s in sidecars)
            reclaims = [int(n) for n in re.findall(r"moved its (\d+) tasks from", logs)]
            recoveries = [int(n) for n in re.findall(r"recovered (\d+) tasks from", logs)]
            ok = Counter(r["h"].get("x-task-id") for r in ep.requests() if 200 <= r["status"] < 300)
            print(f"  {len(acked)} tasks, {sum(kills.values())} kills {dict(kills)}, {sum(pauses.values())} pauses "
                  f"{dict(pauses)}, {logs.count('had expired')} lapses noticed; reclaimed {sum(reclaims)} tasks "
                  f"in {len(reclaims)} reclaims, recovered {sum(recoveries)} in {len(recoveries)} restarts; "
                  f"delivered more than once: {sum(1 for t in acked if ok[t] > 1)}")
            assert sum(kills.values()) >= 4, kills
            # A pause past node-timeout is a lapse its sidecar notices when it wakes.
            assert sum(pauses.values()) >= 1 and "had expired" in logs, (pauses, logs[-3000:])
            assert len(acked) > 500, len(acked)
            # The kills hit sidecars holding work: their lists were reclaimed or recovered.
            assert reclaims or recoveries, logs[-3000:]
        finally:
            stop.set()
            stop_all(*sidecars)


if __name__ == "__main__":
    if TARGET == "redis":
        print("SKIP all: the Redis link is respq's own (RESPQ_TEST_TARGET=redis)")
        sys.exit(0)
    run_tests(globals())
