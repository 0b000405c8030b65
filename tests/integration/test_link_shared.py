"""Shared queues (issue 5): `http-queue jobs shared yes` makes the queue live on a real
redis-server; the sidecars of several hosts take from it (BLMOVE into their own
processing list), deliver to a real HTTP endpoint, and recover what they held after a
crash. Pushes to a sidecar are spooled locally while the upstream is down."""
import json
import os
import random
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RawConn, RedisServer, Respq, parse_info,  # noqa: E402
                     run_tests, wait_until)
from link_helpers import Results, kill_link, link_clients, shared_info, sidecar  # noqa: E402

Q = "jobs"


def shared(up, node, *extra, concurrency=4, **kw):
    return sidecar(up, node, "--http-queue", "tasks", "off", "--http-queue", Q, "shared", "yes", "concurrency",
                   str(concurrency), "retries", "2", "backoff-min", "0.1", "backoff-max", "0.2", *extra, **kw)


def task(ep, tid, path="/t", **query):
    return json.dumps({"url": ep.url(path, **query), "id": tid})


def delivered_ids(ep, path="/t"):
    return Counter(r["h"].get("x-task-id") for r in ep.requests(path=path))



def quiet(up, *sidecars):
    """Nothing left anywhere: shared queue, processing lists, spools, in-flight work."""
    u = up.client()
    if u.llen(Q) or any(u.llen(k) for k in u.keys(f"{Q}:processing:*")):
        return False
    for s in sidecars:
        i = shared_info(s, Q)
        if s.client().llen(Q) or i["in_flight"] != "0" or i["waiting"] != "0" or i["finishing"] != "0":
            return False
    return True


def test_two_sidecars_share_one_queue_and_deliver_each_task_once():
    with RedisServer() as up, HttpEndpoint(workers=8) as ep, shared(up, "A") as a, shared(up, "B") as b:
        res = Results(up, Q)
        n = 90
        ids = [f"t-{i}" for i in range(n)]
        targets = [a.client(), b.client(), up.client()]
        for i, tid in enumerate(ids):
            targets[i % 3].lpush(Q, task(ep, tid, sleep=0.02))
        wait_until(lambda: len(res.of("delivered")) >= n, timeout=60, what="every outcome")
        wait_until(lambda: quiet(up, a, b), timeout=10, what="everything settled")
        time.sleep(0.3)
        got = delivered_ids(ep)
        assert set(got) == set(ids), sorted(set(ids) - set(got))[:10]
        assert all(v == 1 for v in got.values()), [k for k, v in got.items() if v != 1]
        outcomes = res.of("delivered")
        assert sorted(o["id"] for o in outcomes) == sorted(ids)
        by_node = Counter(o["node"] for o in outcomes)
        ia, ib = shared_info(a, Q), shared_info(b, Q)
        assert by_node["A"] == int(ia["delivered"]) > 0 and by_node["B"] == int(ib["delivered"]) > 0, (ia, ib)
        assert int(ia["forwarded"]) == n // 3 and int(ib["forwarded"]) == n // 3, (ia, ib)
        # No duplicates and nothing left behind on the upstream.
        u = up.client()
        assert u.llen(f"{Q}:dead") == 0
        assert set(k.decode() for k in u.keys("*")) <= {"respq:spool:A:jobs", "respq:spool:B:jobs",
                                                        "respq:node:A", "respq:node:B"}
        res.close()


def test_exactly_once_under_repeated_link_kills():
    with RedisServer() as up, HttpEndpoint(workers=8) as ep, shared(up, "A") as a, shared(up, "B") as b:
        res = Results(up, Q)
        n = 150
        ids = [f"k-{i}" for i in range(n)]
        stop = threading.Event()
        kills = [0]

        def killer():
            rng = random.Random(3)
            while not stop.is_set():
                time.sleep(rng.uniform(0.03, 0.1))
                kills[0] += kill_link(up, prefix="respq-")

        t = threading.Thread(target=killer)
        t.start()
        try:
            targets = [a.client(), b.client(), up.client()]
            for i, tid in enumerate(ids):
                targets[i % 3].lpush(Q, task(ep, tid, sleep=0.01))
                time.sleep(0.01)
            wait_until(lambda: len(set(delivered_ids(ep))) >= n, timeout=60, what="every task at the endpoint")
        finally:
            stop.set()
            t.join()
        wait_until(lambda: quiet(up, a, b), timeout=30, what="everything settled")
        time.sleep(0.3)
        got = delivered_ids(ep)
        assert set(got) == set(ids)
        assert all(v == 1 for v in got.values()), [k for k, v in got.items() if v != 1]
        assert kills[0] >= 10, kills
        ia, ib = shared_info(a, Q), shared_info(b, Q)
        stats = {k: int(ia[k]) + int(ib[k]) for k in ("recovered", "forward_resends", "forward_deduped",
                                                      "finish_resends")}
        print(f"  {kills[0]} link kills; {stats}")
        delivered = Counter(o["id"] for o in res.of("delivered"))
        # An outcome is published by the script that removes the task: at most once each.
        assert all(v == 1 for v in delivered.values()), delivered.most_common(3)
        res.close()


def test_lost_replies_neither_lose_nor_duplicate_tasks():
    """Each idempotency mechanism, hit on purpose: a forward batch, a BLMOVE and a removal
    that all ran on the upstream while their replies were lost."""
    from link_proxy import LinkProxy
    with RedisServer() as up, HttpEndpoint(workers=4) as ep, LinkProxy(up.port) as px:
        u = up.client()
        a = Respq("--upstream", "127.0.0.1", str(px.port), "--node-id", "A", "--loglevel", "verbose",
                  "--http-queue", "tasks", "off", "--http-queue", Q, "shared", "yes", "concurrency", "2")
        try:
            res = Results(up, Q)
            wait_until(lambda: shared_info(a, Q)["taker"] == "up" and len(link_clients(up, "respq-")) == 2,
                       what="both connections up")
            # 1. The spool's forward ran upstream, its reply was lost: resent with the same
            # batch id, skipped by the upstream.
            px.lose_next_reply("respq-link", after=b"respq:spool:")
            a.client().lpush(Q, task(ep, "fwd"))
            wait_until(lambda: res.of("delivered"), timeout=10, what="the forwarded task delivered")
            i = shared_info(a, Q)
            assert i["forward_resends"] == "1" and i["forward_deduped"] == "1", i
            # 2. A BLMOVE moved a task, its reply was lost: adopted by the recovery.
            px.lose_next_reply("respq-take")
            u.lpush(Q, task(ep, "moved"))
            wait_until(lambda: len(res.of("delivered")) == 2, timeout=10, what="the moved task delivered")
            assert shared_info(a, Q)["recovered"] == "1"
            # 3. The removal of a delivered task ran, its reply was lost: resent, and the
            # script neither publishes nor dead-letters twice.
            resends = int(shared_info(a, Q)["finish_resends"])
            u.lpush(Q, task(ep, "removed", sleep=0.5))
            wait_until(lambda: shared_info(a, Q)["in_flight"] == "1", what="in flight")
            px.lose_next_reply("respq-link", after=b"LREM")
            wait_until(lambda: quiet(up, a), timeout=10, what="everything settled")
            assert int(shared_info(a, Q)["finish_resends"]) == resends + 1, (shared_info(a, Q), px.losses())
            time.sleep(0.3)
            assert sorted(o["id"] for o in res.of("delivered")) == ["fwd", "moved", "removed"]
            assert delivered_ids(ep) == Counter({"fwd": 1, "moved": 1, "removed": 1})
            assert [n for n, _ in px.losses()] == ["respq-link:A", "respq-take:A:jobs", "respq-link:A"]
            res.close()
        finally:
            a.stop()
            a.cleanup()


def test_killed_sidecar_recovers_its_tasks_on_restart():
    with RedisServer() as up, HttpEndpoint(workers=12) as ep:
        a = shared(up, "A", concurrency=3)
        b = shared(up, "B", concurrency=3)
        try:
            res = Results(up, Q)
            u = up.client()
            ids = [f"slow-{i}" for i in range(6)]
            for tid in ids:
                u.lpush(Q, task(ep, tid, sleep=1))
            # Each sidecar takes up to its concurrency: three each.
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 3 and u.llen(f"{Q}:processing:B") == 3,
                       timeout=10, what="both sidecars hold three tasks")
            held_by_a = sorted(json.loads(x)["id"] for x in u.lrange(f"{Q}:processing:A", 0, -1))
            assert shared_info(a, Q)["in_flight"] == "3"
            a.kill9()
            # B finishes its own tasks and never touches A's processing list.
            wait_until(lambda: len(res.of("delivered")) == 3, timeout=30, what="B's tasks")
            assert sorted(o["id"] for o in res.of("delivered")) == sorted(set(ids) - set(held_by_a))
            assert sorted(json.loads(x)["id"] for x in u.lrange(f"{Q}:processing:A", 0, -1)) == held_by_a
            a.start()
            wait_until(lambda: len(res.of("delivered")) == 6, timeout=30, what="A's recovered tasks delivered")
            assert sorted(o["id"] for o in res.of("delivered")) == sorted(ids)
            assert [o["node"] for o in res.of("delivered")[3:]] == ["A"] * 3
            assert shared_info(a, Q)["recovered"] == "3"
            assert "recovered 3 tasks" in a.log_text()
            got = delivered_ids(ep)
            # A's tasks ran again (at least once in all); B's exactly once.
            assert all(got[t] >= 1 for t in held_by_a), got
            assert all(got[t] == 1 for t in ids if t not in held_by_a), got
            wait_until(lambda: quiet(up, a, b), timeout=10, what="everything settled")
            res.close()
        finally:
            for s in (a, b):
                s.stop()
                s.cleanup()


def test_pushes_are_spooled_while_the_upstream_is_down_and_survive_a_crash():
    with RedisServer("--appendonly", "yes") as up, HttpEndpoint(workers=4) as ep:
        a = shared(up, "A", "--appendonly", "yes", "--appendfsync", "always", concurrency=1)
        try:
            ids = [f"sp-{i}" for i in range(10)]
            up.kill9()
            for tid in ids:
                a.client().lpush(Q, task(ep, tid))
            assert a.client().llen(Q) == 10
            assert shared_info(a, Q)["spool"] == "10"
            # The spool is in respq's AOF: a crash loses none of it, nor does a shutdown,
            # which says what it leaves there.
            a.kill9()
            a.start()
            assert a.client().llen(Q) == 10
            a.stop()
            assert ("Shutdown: 10 pushes acknowledged by this sidecar are still in its spool (the upstream may "
                    "not have them): the AOF keeps them for the next start") in a.log_text(), a.log_text()[-2000:]
            a.start()
            assert a.client().llen(Q) == 10
            up.start()
            wait_until(lambda: len(delivered_ids(ep)) == 10, timeout=20, what="spooled tasks delivered")
            wait_until(lambda: quiet(up, a), timeout=10, what="everything settled")
            got = delivered_ids(ep)
            assert set(got) == set(ids) and all(v == 1 for v in got.values()), got
            # Oldest first, as pushed.
            order = [r["h"]["x-task-id"] for r in ep.requests(path="/t")]
            assert order == ids, order
            assert a.client().llen(Q) == 0
        finally:
            a.stop()
            a.cleanup()


def test_dead_letters_retries_and_outcomes_live_on_the_upstream():
    with RedisServer() as up, HttpEndpoint(workers=4) as ep, shared(up, "A") as a:
        res = Results(up, Q)
        local = a.client().pubsub()
        local.subscribe(f"{Q}:results")
        c = a.client()
        c.lpush(Q, task(ep, "gone", path="/status/404"))
        c.lpush(Q, task(ep, "flaky", fail_first=1))
        c.lpush(Q, task(ep, "down", path="/status/503"))
        c.lpush(Q, "not a task")
        wait_until(lambda: len(res.of("dead")) == 3 and len(res.of("delivered")) == 1, timeout=20,
                   what="outcomes")
        dead = {d["id"] if d["id"] in ("gone", "down") else "invalid": d
                for d in (json.loads(x) for x in up.client().lrange(f"{Q}:dead", 0, -1))}
        assert set(dead) == {"gone", "down", "invalid"}, dead
        assert dead["gone"]["reason"] == "HTTP 404 is final" and dead["gone"]["attempts"] == 1
        assert dead["down"]["reason"] == "attempts exhausted (3)" and dead["down"]["code"] == 503
        assert json.loads(dead["down"]["response"])["status"] == 503, dead["down"]  # the answer's body
        assert dead["invalid"]["payload"] == "not a task" and dead["invalid"]["queue"] == Q
        assert json.loads(dead["gone"]["payload"])["id"] == "gone"
        assert len([o for o in res.of("retrying") if o["id"] == "down"]) == 2
        flaky = [r for r in ep.requests(path="/t") if r["h"].get("x-task-id") == "flaky"]
        assert [r["h"].get("x-task-attempt") for r in flaky] == ["1", "2"]
        # The same outcomes reach respq's own subscribers.
        seen = []
        deadline = time.time() + 5
        while len(seen) < 7 and time.time() < deadline:
            m = local.get_message(timeout=0.2)
            if m and m["type"] == "message":
                seen.append(json.loads(m["data"])["status"])
        assert Counter(seen) == Counter({"dead": 3, "delivered": 1, "retrying": 3}), seen
        # A dead letter moved back into the queue runs again, unwrapped to its task and id.
        oldest = json.loads(up.client().lindex(f"{Q}:dead", -1))
        up.client().lmove(f"{Q}:dead", Q, "RIGHT", "LEFT")
        wait_until(lambda: len(res.of("dead")) == 4, timeout=20, what="the replayed dead letter dead again")
        assert res.of("dead")[-1]["id"] == oldest["id"]
        assert json.loads(up.client().lindex(f"{Q}:dead", 0))["payload"] == oldest["payload"]
        local.close()
        res.close()


def test_a_shared_queues_failed_callback_goes_again_as_a_local_queues_does():
    with RedisServer() as up, HttpEndpoint(workers=4) as ep, shared(up, "A") as a:
        c = a.client()
        c.lpush(Q, json.dumps({"url": ep.url("/t"), "id": "cbs",
                               "callback": ep.url("/cb", fail_first=2, fail_status=500, key="cbs-callback")}))
        reqs = ep.wait_requests(3, path="/cb", timeout=15)
        assert len({r["body"] for r in reqs}) == 1 and json.loads(reqs[0]["body"])["status"] == "delivered"
        c.lpush(Q, json.dumps({"url": ep.url("/t"), "id": "cbs-final", "callback": ep.url("/cb-final", status=400)}))
        ep.wait_requests(1, path="/cb-final")
        wait_until(lambda: shared_info(a, Q)["callbacks_failed"] == "1", timeout=10, what="the 400 counted")
        time.sleep(0.5)
        assert len(ep.requests(path="/cb")) == 3 and len(ep.requests(path="/cb-final")) == 1
        assert shared_info(a, Q)["callbacks_retrying"] == "0"


def test_task_held_across_an_upstream_restart_still_gets_its_dead_letter():
    with RedisServer() as up, HttpEndpoint(workers=4) as ep, shared(up, "A") as a:
        up.client().lpush(Q, task(ep, "held", path="/status/404", sleep=1))
        wait_until(lambda: shared_info(a, Q)["in_flight"] == "1", what="A holds the task")
        up.kill9()
        up.start()  # empty: no queue, no processing list
        wait_until(lambda: up.client().llen(f"{Q}:dead") == 1, timeout=15, what="the dead letter upstream")
        d = json.loads(up.client().lindex(f"{Q}:dead", 0))
        assert d["id"] == "held" and d["reason"] == "HTTP 404 is final", d
        wait_until(lambda: quiet(up, a), timeout=10, what="everything settled")


def test_graceful_shutdown_hands_held_tasks_back():
    """Requests still running when the grace period ends: their tasks go back upstream."""
    with RedisServer() as up, HttpEndpoint(workers=4) as ep:
        a = shared(up, "A", "--shutdown-grace", "1", concurrency=2)
        try:
            for tid in ("h-1", "h-2"):
                up.client().lpush(Q, task(ep, tid, sleep=30))
            wait_until(lambda: shared_info(a, Q)["in_flight"] == "2", timeout=10, what="A holds both")
            a.stop()
            assert "Grace period over" not in a.log_text()  # that line is about local tasks
            assert "handed 2 unfinished tasks back" in a.log_text(), a.log_text()
            u = up.client()
            assert u.llen(f"{Q}:processing:A") == 0
            # In their order: h-1, the older, at the end the queue is taken from (RIGHT).
            assert [json.loads(x)["id"] for x in u.lrange(Q, 0, -1)] == ["h-2", "h-1"]
        finally:
            a.stop()
            a.cleanup()


def test_graceful_shutdown_lets_requests_in_flight_finish():
    """SIGTERM: the grace period waits for the shared queue's requests in flight as for a
    local queue's; nothing new is taken meanwhile, and what finished is not handed back."""
    with RedisServer() as up, HttpEndpoint(workers=4) as ep:
        a = shared(up, "A", "--shutdown-grace", "5", concurrency=2)
        results = Results(up, Q)
        try:
            for tid in ("g-1", "g-2"):
                up.client().lpush(Q, task(ep, tid, sleep=1))
            wait_until(lambda: shared_info(a, Q)["in_flight"] == "2", timeout=10, what="A holds both")
            for tid in ("g-3", "g-4"):
                up.client().lpush(Q, task(ep, tid))
            t0 = time.time()
            assert a.stop() == 0
            took = time.time() - t0
            log = a.log_text()
            assert took < 4.5, f"two 1 s requests in flight and a 5 s grace: stopped after {took:.2f} s\n{log}"
            assert "Waiting up to 5" in log and "unfinished tasks back" not in log, log
            assert sorted(o["id"] for o in results.of("delivered")) == ["g-1", "g-2"]
            assert sorted(delivered_ids(ep)) == ["g-1", "g-2"], "nothing new is sent during the grace period"
            u = up.client()
            assert u.llen(f"{Q}:processing:A") == 0
            assert sorted(json.loads(x)["id"] for x in u.lrange(Q, 0, -1)) == ["g-3", "g-4"]
        finally:
            results.close()
            a.stop()
            a.cleanup()


def test_info_tasks_lists_shared_and_local_queues_with_the_same_fields():
    """One lifecycle: a sidecar's local and shared queues show in INFO tasks with the same
    fields (INFO mirror keeps only link figures), and their outcomes carry the same fields."""
    with RedisServer() as up, HttpEndpoint(workers=4) as ep, \
            sidecar(up, "A", "--http-queue", "tasks", "retries", "0",
                    "--http-queue", Q, "shared", "yes", "retries", "1", "backoff-min", "30",
                    "backoff-max", "30") as a:
        c = a.client()
        with Outcomes(a, "tasks") as local_out, Outcomes(a, Q) as shared_out:
            c.lpush("tasks", json.dumps({"url": ep.url("/l/ok"), "id": "l-ok"}),
                    json.dumps({"url": ep.url("/l/404", status=404), "id": "l-dead"}))
            c.lpush(Q, task(ep, "s-ok", path="/s/ok"), task(ep, "s-dead", path="/status/404"),
                    task(ep, "s-retry", path="/status/503"))
            outcomes = {}
            for out, tid, status in ((local_out, "l-ok", "delivered"), (local_out, "l-dead", "dead"),
                                     (shared_out, "s-ok", "delivered"), (shared_out, "s-dead", "dead"),
                                     (shared_out, "s-retry", "retrying")):
                outcomes[tid] = out.wait(id=tid, status=status, timeout=20)
        for status, lid, sid in (("delivered", "l-ok", "s-ok"), ("dead", "l-dead", "s-dead")):
            assert set(outcomes[lid]) == set(outcomes[sid]), \
                f"{status} outcome fields differ: {outcomes[lid]} vs {outcomes[sid]}"
        assert outcomes["l-ok"]["node"] == outcomes["s-ok"]["node"] == "A", outcomes
        # A failing answer's body, the same on both kinds of queue.
        assert outcomes["l-dead"]["response"] and outcomes["s-dead"]["response"] == outcomes["l-dead"]["response"], \
            outcomes
        assert "response" not in outcomes["s-ok"] and "response" in outcomes["s-retry"], outcomes
        assert outcomes["s-retry"]["next_run"] > time.time() + 20, outcomes["s-retry"]

        def lines():
            with RawConn(a.port) as raw:
                text = raw.cmd("INFO", "tasks").split(b"\r\n", 1)[1].decode()
            out = {}
            for line in text.split("\r\n")[1:]:
                if line:
                    name, fields = line.split(":", 1)
                    out[name] = dict(kv.split("=", 1) for kv in fields.split(","))
            return out
        wait_until(lambda: lines()[Q]["dead_list"] == "1" and lines()[Q]["pending"] == "0"
                   and lines()[Q]["retrying"] == "1", timeout=10,
                   what="the upstream's dead list, queue and retry set read into INFO tasks")
        info = lines()
        assert set(info) == {"tasks", Q}, info
        local, shared_line = info["tasks"], info[Q]
        assert set(local) <= set(shared_line), f"fields a shared queue lacks: {set(local) - set(shared_line)}"
        assert local["shared"] == "0" and shared_line["shared"] == "1"
        assert (local["delivered"], local["dead"], local["dead_list"], local["failed"]) == ("1", "1", "1", "1"), local
        assert (shared_line["delivered"], shared_line["dead"], shared_line["failed"], shared_line["retrying"],
                shared_line["in_flight"], shared_line["dispatched"]) == ("1", "1", "2", "1", "0", "3"), shared_line
        assert shared_line["node"] == "A" and shared_line["taker"] == "up", shared_line
        with RawConn(a.port) as raw:
            mirror = parse_info(raw.cmd("INFO", "mirror").split(b"\r\n", 1)[1]).get("mirror", {})
        assert mirror.get("shared_queues") == "1", mirror
        assert not [k for k in mirror if k.startswith("shared_") and k != "shared_queues"], mirror


if __name__ == "__main__":
    if TARGET == "redis":
        print("SKIP all: the Redis link is respq's own (RESPQ_TEST_TARGET=redis)")
        sys.exit(0)
    run_tests(globals())
