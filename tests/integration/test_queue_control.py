"""Queue control from redis-cli: QUEUE PAUSE/RESUME/REPLAY/DELDEAD and TASK GET/CANCEL.

- A paused queue dispatches nothing new (the key <queue>:paused holds the pause): pending
  tasks stay in the list, a retry waits past its time, an attempt in flight finishes;
  RESUME releases them all. INFO tasks shows paused=1.
- The pause survives a restart with the AOF on, also after BGREWRITEAOF.
- TASK GET finds a task pending, in flight, retrying, scheduled, dead, delivered (among
  the queue's recent outcomes, task-history-max-len of them) and cancelled.
- TASK CANCEL removes a task in each state of custody, in flight included (its attempt is
  not retried), publishes the outcome "cancelled" and counts it.
- QUEUE REPLAY moves dead letters back (all, by id, by code, by host) at replay-rate;
  QUEUE DELDEAD deletes one by id.
- CONFIG SET http-queue "<queue> concurrency 16" changes that option only.
The endpoint is http_sink.py: `hold=NAME` keeps a request in flight until released,
/status/500 makes a task retry.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RedisServer, Respq, dead_records, free_port, info_field,  # noqa: E402
                     run_tests, task_info, wait_until)
from link_helpers import link_clients, shared_info, sidecar, wait_caught_up  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: queue control is respq's own (target: {TARGET})")
    sys.exit(0)


def task_get(c, task_id):
    """TASK GET as a dict (str values), or None."""
    reply = c.execute_command("TASK", "GET", task_id)
    if reply is None:
        return None
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[0::2], reply[1::2]))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in items}


def release(ep, name):
    urllib.request.urlopen(ep.url(f"/_release/{name}"), timeout=10).read()


def task(ep, task_id, path="/ok", **query):
    return json.dumps({"url": ep.url(path, **query), "id": task_id})


def barrier(c, ep, queue, name):
    """Pushes a task on another queue and waits until it reached the endpoint: whatever
    respq would have dispatched before it has been dispatched by then."""
    c.lpush(queue, task(ep, name, "/barrier"))
    ep.wait_requests(1, where=lambda r: r["h"].get("x-task-id") == name)


def requests_for(ep, task_id):
    return ep.requests(where=lambda r: r["h"].get("x-task-id") == task_id)


def test_pause_stops_dispatch_and_resume_releases():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "retries", "3", "backoff-min", "0.2", "backoff-max", "0.2",
                  "--http-queue", "other") as r, Outcomes(r, "tasks") as out:
        c = r.client()
        # One attempt in flight and one retrying when the pause comes.
        c.lpush("tasks", task(ep, "held", hold="h1"))
        # Its retry comes after a Retry-After of 1 s: long after the pause.
        c.lpush("tasks", task(ep, "flaky", "/x", fail_first=1, retry_after=1))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "held")
        out.wait(id="flaky", status="retrying")
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        assert c.exists("tasks:paused") == 1
        assert task_info(r.port)["paused"] == "1"
        assert task_info(r.port, "other")["paused"] == "0"
        for i in range(3):
            c.lpush("tasks", task(ep, f"p{i}"))
        # The retry's time passes while paused: it waits.
        flaky = task_get(c, "flaky")
        assert flaky["state"] == "retrying", flaky
        wait_until(lambda: time.time() > float(flaky["next_run"]) + 0.3, timeout=5, what="the retry's time")
        barrier(c, ep, "other", "b1")
        # The attempt in flight finishes while paused.
        release(ep, "h1")
        out.wait(id="held", status="delivered")
        barrier(c, ep, "other", "b2")
        assert c.llen("tasks") == 3
        assert len(requests_for(ep, "flaky")) == 1
        assert task_get(c, "flaky")["state"] == "retrying"
        assert all(not requests_for(ep, f"p{i}") for i in range(3))
        info = task_info(r.port)
        assert info["pending"] == "3" and info["retrying"] == "1" and info["in_flight"] == "0", info
        # Pausing twice is fine; RESUME releases everything.
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        assert c.execute_command("QUEUE", "RESUME", "tasks") == b"OK"
        assert c.exists("tasks:paused") == 0
        for i in range(3):
            out.wait(id=f"p{i}", status="delivered")
        out.wait(id="flaky", status="delivered")
        assert task_info(r.port)["paused"] == "0"
        # DEL of the key resumes too, SET pauses: the key is the pause.
        c.set("tasks:paused", "1")
        assert task_info(r.port)["paused"] == "1"
        c.lpush("tasks", task(ep, "after-set"))
        barrier(c, ep, "other", "b3")
        assert not requests_for(ep, "after-set")
        c.delete("tasks:paused")
        out.wait(id="after-set", status="delivered")


def test_pause_of_an_unknown_queue_and_arity_are_errors():
    with Respq() as r, r.raw() as raw:
        assert raw.cmd("QUEUE", "PAUSE", "nope") == b"-ERR no such HTTP queue 'nope'\r\n"
        assert raw.cmd("QUEUE", "REPLAY", "nope") == b"-ERR no such HTTP queue 'nope'\r\n"
        assert raw.cmd("QUEUE", "PAUSE") == b"-ERR wrong number of arguments for 'queue|pause' command\r\n"
        assert raw.cmd("QUEUE", "FOO").startswith(b"-ERR unknown subcommand 'FOO'. Try QUEUE HELP.")
        assert raw.cmd("TASK", "GET") == b"-ERR wrong number of arguments for 'task|get' command\r\n"
        assert raw.cmd("QUEUE", "REPLAY", "tasks", "CODE", "abc").startswith(b"-ERR CODE must be")
        assert raw.cmd("QUEUE", "REPLAY", "tasks", "ID") == b"-ERR syntax error\r\n"
        assert raw.cmd("TASK", "GET", "none") == b"$-1\r\n"
        assert raw.cmd("TASK", "CANCEL", "none") == b":0\r\n"
        help_text = raw.cmd("QUEUE", "HELP").decode()
        for word in ("PAUSE", "RESUME", "REPLAY", "DELDEAD"):
            assert word in help_text
        assert b"CANCEL" in raw.cmd("TASK", "HELP")
        # COMMAND INFO / DOCS know them, with their subcommands.
        info = raw.cmd("COMMAND", "INFO", "queue")
        for name in (b"queue|pause", b"queue|resume", b"queue|replay", b"queue|deldead", b"queue|hostreset"):
            assert name in info, info
        docs = raw.cmd("COMMAND", "DOCS", "task")
        assert b"task|get" in docs and b"task|cancel" in docs, docs


def test_pause_survives_a_restart_and_a_rewrite_with_the_aof_on():
    with HttpEndpoint(server="python") as ep, \
            Respq("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "other") as r:
        c = r.client()
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        c.lpush("tasks", task(ep, "t1"))
        r.stop()
        r.start()
        c = r.client()
        assert task_info(r.port)["paused"] == "1"
        barrier(c, ep, "other", "b1")
        assert c.llen("tasks") == 1 and not requests_for(ep, "t1")
        # The rewrite keeps the key, so the pause.
        assert c.bgrewriteaof()
        wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1"
                   and info_field(r.port, "persistence", "aof_rewrite_in_progress") == "0",
                   timeout=30, what="the rewrite to finish")
        r.stop()
        r.start()
        c = r.client()
        assert task_info(r.port)["paused"] == "1"
        barrier(c, ep, "other", "b2")
        assert not requests_for(ep, "t1")
        assert c.execute_command("QUEUE", "RESUME", "tasks") == b"OK"
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "t1")
        # And the resume survives too.
        wait_until(lambda: c.hlen("tasks:inflight") == 0, what="t1 delivered")
        r.stop()
        r.start()
        assert task_info(r.port)["paused"] == "0"


def test_task_get_finds_a_task_in_every_state():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "retries", "2", "backoff-min", "600", "backoff-max", "600",
                  "--http-queue", "held", "retries", "4") as r, Outcomes(r, "tasks") as out:
        c = r.client()
        assert c.execute_command("QUEUE", "PAUSE", "held") == b"OK"
        pending = json.dumps({"url": ep.url("/p"), "id": "pend", "retries": 1})
        c.lpush("held", pending)
        inflight = task(ep, "fly", hold="g1")
        retrying = task(ep, "retry", "/status/500")
        scheduled = json.dumps({"url": ep.url("/later"), "id": "sched", "delay": 3600})
        dead = task(ep, "gone", "/status/404")
        done = task(ep, "done")
        for p in (inflight, retrying, scheduled, dead, done):
            c.lpush("tasks", p)
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "fly")
        out.wait(id="retry", status="retrying")
        out.wait(id="gone", status="dead")
        out.wait(id="done", status="delivered")

        g = task_get(c, "pend")
        assert g["queue"] == "held" and g["state"] == "pending" and g["attempts"] == 0, g
        assert g["max_attempts"] == 2 and g["payload"] == pending, g
        g = task_get(c, "fly")
        assert g["queue"] == "tasks" and g["state"] == "in_flight" and g["attempts"] == 1, g
        assert g["max_attempts"] == 3 and g["payload"] == inflight and g["next_run"] == "0", g
        g = task_get(c, "retry")
        assert g["state"] == "retrying" and g["attempts"] == 1 and g["last_code"] == 500, g
        assert float(g["next_run"]) > time.time() + 500 and g["payload"] == retrying, g
        g = task_get(c, "sched")
        assert g["state"] == "scheduled" and g["attempts"] == 0, g
        assert abs(float(g["next_run"]) - (time.time() + 3600)) < 60 and g["payload"] == scheduled, g
        g = task_get(c, "gone")
        assert g["state"] == "dead" and g["last_code"] == 404 and g["attempts"] == 1, g
        assert g["max_attempts"] == 3, g  # as its outcome was remembered (retries 2)
        assert "404" in g["last_error"] and g["payload"] == dead and float(g["finished_at"]) > 0, g
        g = task_get(c, "done")
        assert g["state"] == "delivered" and g["last_code"] == 200 and g["attempts"] == 1, g
        assert g["payload"] == done and float(g["finished_at"]) > time.time() - 60, g
        # A dead letter deleted is still found among the recent outcomes, as dead.
        assert c.execute_command("QUEUE", "DELDEAD", "tasks", "gone") == 1
        g = task_get(c, "gone")
        assert g["state"] == "dead" and g["payload"] == dead and g["last_code"] == 404, g
        assert g["max_attempts"] == 3, g
        assert task_get(c, "nothing") is None
        # RESP3 answers a map.
        with r.raw() as raw:
            assert raw.cmd("HELLO", "3").startswith(b"%")
            reply = raw.cmd("TASK", "GET", "done")
            assert reply.startswith(b"%11\r\n$2\r\nid\r\n$4\r\ndone\r\n$5\r\nqueue\r\n$5\r\ntasks\r\n"
                                    b"$5\r\nstate\r\n$9\r\ndelivered\r\n"), reply
        # The history is bounded: with task-history-max-len 1 only the newest is kept.
        assert c.config_set("task-history-max-len", "1")
        assert c.config_get("task-history-max-len") == {"task-history-max-len": "1"}
        for i in range(3):
            c.lpush("tasks", task(ep, f"h{i}"))
            out.wait(id=f"h{i}", status="delivered")
        assert task_get(c, "h2")["state"] == "delivered"
        assert task_get(c, "h0") is None and task_get(c, "done") is None
        release(ep, "g1")
        out.wait(id="fly", status="delivered")


def test_task_cancel_in_every_state_including_in_flight():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "retries", "3", "backoff-min", "600", "backoff-max", "600",
                  "--http-queue", "held") as r, Outcomes(r, "tasks") as out, Outcomes(r, "held") as held_out:
        c = r.client()
        assert c.execute_command("QUEUE", "PAUSE", "held") == b"OK"
        c.lpush("held", task(ep, "pend"), task(ep, "other-pending"))
        c.lpush("tasks", json.dumps({"url": ep.url("/later"), "id": "sched", "delay": 3600}))
        c.lpush("tasks", task(ep, "retry", "/status/500"))
        out.wait(id="retry", status="retrying")
        # In flight: an attempt that will answer 500, with retries left and no backoff.
        c.config_set("http-queue", "tasks backoff-min 0 backoff-max 0.05")
        c.lpush("tasks", task(ep, "fly", "/status/500", hold="c1"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "fly")

        assert c.execute_command("TASK", "CANCEL", "pend") == 1
        assert c.lrange("held", 0, -1) == [task(ep, "other-pending").encode()]
        o = held_out.wait(id="pend", status="cancelled")
        assert o["queue"] == "held" and o["attempts"] == 0, o
        assert c.execute_command("TASK", "CANCEL", "sched") == 1
        assert c.execute_command("TASK", "CANCEL", "retry") == 1
        assert not c.hexists("tasks:inflight", "sched") and not c.hexists("tasks:inflight", "retry")
        out.wait(id="sched", status="cancelled")
        o = out.wait(id="retry", status="cancelled")
        assert o["attempts"] == 1, o
        assert c.execute_command("TASK", "CANCEL", "fly") == 1
        assert c.execute_command("TASK", "CANCEL", "fly") == 0  # once
        out.wait(id="fly", status="cancelled")
        assert not c.hexists("tasks:inflight", "fly")
        info = task_info(r.port)
        assert info["in_flight"] == "1" and info["cancelled"] == "3", info  # its attempt still runs
        # Its attempt ends with a 500: not retried, no other outcome.
        release(ep, "c1")
        wait_until(lambda: task_info(r.port)["in_flight"] == "0", what="the cancelled attempt to end")
        c.lpush("tasks", task(ep, "after"))
        out.wait(id="after", status="delivered")
        info = task_info(r.port)
        assert info["retrying"] == "0" and info["scheduled"] == "0" and info["in_flight"] == "0", info
        assert c.hlen("tasks:inflight") == 0
        assert len(requests_for(ep, "fly")) == 1
        assert [o["status"] for o in out.all(id="fly")] == ["cancelled"]
        assert task_info(r.port, "held")["cancelled"] == "1"
        for tid in ("pend", "sched", "retry", "fly"):
            g = task_get(c, tid)
            assert g["state"] == "cancelled", g
        assert task_get(c, "retry")["last_code"] == 500
        # Nothing cancelled ever reaches the endpoint afterwards.
        assert c.execute_command("QUEUE", "RESUME", "held") == b"OK"
        held_out.wait(id="other-pending", status="delivered")
        assert not requests_for(ep, "pend") and not requests_for(ep, "sched")
        assert task_get(c, "nothing") is None and c.execute_command("TASK", "CANCEL", "nothing") == 0


def make_dead(c, ep, out, n404, n500):
    ids = []
    for i in range(n404):
        c.lpush("tasks", task(ep, f"d404-{i}", "/status/404"))
        ids.append(f"d404-{i}")
    for i in range(n500):
        c.lpush("tasks", task(ep, f"d500-{i}", "/status/500"))
        ids.append(f"d500-{i}")
    wait_until(lambda: c.llen("tasks:dead") == n404 + n500, timeout=30, what="the dead letters")
    return ids


def test_replay_all_by_id_by_code_and_by_host_at_the_configured_rate():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "retries", "0", "--replay-rate", "20",
                  # the breaker off: ten 500s in a row would open the host's circuit and
                  # hold the last of them for a cool-down before they die
                  "--host-failures-to-open", "0") as r, \
            Outcomes(r, "tasks") as out:
        c = r.client()
        make_dead(c, ep, out, 30, 10)
        before = {d["id"]: d for d in dead_records(c)}
        order = [d["id"] for d in dead_records(c)]  # oldest first (the order they died in)
        # Paused, so what the replay moves stays in the list where it can be counted.
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "ID", "d404-7") == 1
        wait_until(lambda: c.llen("tasks") == 1, what="the replay by id")
        moved = json.loads(c.lindex("tasks", 0))
        assert moved == before["d404-7"], moved  # the dead record itself, as LMOVE leaves it
        assert "d404-7" not in {d["id"] for d in dead_records(c)}
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "ID", "nope") == 0
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "HOST", "elsewhere.example") == 0
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "CODE", "500", "HOST", "elsewhere.example") == 0
        t0 = time.time()
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "CODE", "500") == 10
        # Asked again while they move back: none is selected twice.
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "CODE", "500") == 0
        assert int(task_info(r.port)["replaying"]) <= 10
        wait_until(lambda: c.llen("tasks") == 11, what="the replay by code")
        assert {json.loads(x)["id"] for x in c.lrange("tasks", 0, -1)} == \
            {"d404-7"} | {f"d500-{i}" for i in range(10)}
        assert c.llen("tasks:dead") == 29
        # All the rest, by host and port, as INFO hosts names it (they all went there), at
        # 20 per second: 29 take about (29 - 2 of burst) / 20 = 1.35 s.
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "HOST", f"127.0.0.1:{free_port()}") == 0
        t1 = time.time()  # before the command: its reply may come late on a loaded machine
        assert c.execute_command("QUEUE", "REPLAY", "tasks", "HOST", f"127.0.0.1:{ep.port}") == 29
        assert int(task_info(r.port)["replaying"]) > 0
        wait_until(lambda: c.llen("tasks") == 40, timeout=20, what="the replay of all")
        elapsed = time.time() - t1
        assert elapsed >= 1.0, elapsed
        assert c.llen("tasks:dead") == 0 and task_info(r.port)["replaying"] == "0"
        # Each replay moves the oldest dead letter first: the queue's right end (taken next)
        # holds the one replayed first.
        ids = [json.loads(x)["id"] for x in reversed(c.lrange("tasks", 0, -1))]
        assert ids == ["d404-7"] + [i for i in order if i.startswith("d500-")] + \
            [i for i in order if i.startswith("d404-") and i != "d404-7"], (ids, order)
        # Resumed, they run again with their own ids (and die again: same endpoints).
        assert c.execute_command("QUEUE", "RESUME", "tasks") == b"OK"
        wait_until(lambda: c.llen("tasks:dead") == 40, timeout=30, what="the replayed tasks to run")
        assert len(requests_for(ep, "d500-3")) == 2
        # Replay all without a filter, then the rate holds for a larger set too.
        c.config_set("replay-rate", "100")
        t2 = time.time()
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        assert c.execute_command("QUEUE", "REPLAY", "tasks") == 40
        wait_until(lambda: c.llen("tasks") == 40, timeout=20, what="the second replay")
        assert time.time() - t2 >= 0.25
        assert t0 < t1 < t2


def test_deldead_deletes_one_dead_letter_by_id():
    with HttpEndpoint(server="python") as ep, Respq("--http-queue", "tasks", "retries", "0") as r, \
            Outcomes(r, "tasks") as out:
        c = r.client()
        make_dead(c, ep, out, 3, 0)
        assert c.execute_command("QUEUE", "DELDEAD", "tasks", "d404-1") == 1
        assert c.execute_command("QUEUE", "DELDEAD", "tasks", "d404-1") == 0
        assert sorted(d["id"] for d in dead_records(c)) == ["d404-0", "d404-2"]
        assert c.execute_command("QUEUE", "DELDEAD", "tasks", "d404-0") == 1
        assert c.execute_command("QUEUE", "DELDEAD", "tasks", "d404-2") == 1
        assert c.exists("tasks:dead") == 0
        with r.raw() as raw:
            assert raw.cmd("QUEUE", "DELDEAD", "nope", "x") == b"-ERR no such HTTP queue 'nope'\r\n"


def test_config_set_http_queue_changes_only_the_options_it_names():
    with Respq("--http-queue", "tasks", "retries", "7", "timeout", "12", "rate", "5", "per-host", "3") as r:
        c = r.client()
        assert c.config_set("http-queue", "tasks concurrency 16")
        got = c.config_get("http-queue")["http-queue"]
        assert got == "tasks concurrency 16 rate 5 per-host 3 timeout 12 retries 7 backoff-min 1 " \
                      "backoff-max 300 shared no", got
        assert task_info(r.port)["concurrency"] == "16" and task_info(r.port)["rate"] == "5"
        assert c.config_set("http-queue", "tasks rate 0 backoff-max 60")
        got = c.config_get("http-queue")["http-queue"]
        assert got == "tasks concurrency 16 rate 0 per-host 3 timeout 12 retries 7 backoff-min 1 " \
                      "backoff-max 60 shared no", got
        # A bad option changes nothing.
        with r.raw() as raw:
            assert raw.cmd("CONFIG", "SET", "http-queue", "tasks concurrency 0").startswith(b"-ERR")
        assert c.config_get("http-queue")["http-queue"] == got
        # A new queue starts from the defaults.
        assert c.config_set("http-queue", "jobs retries 1")
        assert "jobs concurrency 64 rate 0 per-host 32 timeout 30 retries 1" in c.config_get("http-queue")["http-queue"]


def test_a_paused_shared_queue_stops_taking_from_the_upstream():
    with RedisServer() as up, HttpEndpoint(server="python") as ep, \
            sidecar(up, "A", "--http-queue", "tasks", "off", "--http-queue", "jobs", "shared", "yes") as a:
        c, u = a.client(), up.client()
        wait_until(lambda: shared_info(a, "jobs")["taker"] == "up", timeout=20, what="the taking connection")
        u.lpush("jobs", task(ep, "before"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "before")
        assert c.execute_command("QUEUE", "PAUSE", "jobs") == b"OK"
        assert shared_info(a, "jobs")["paused"] == "1"

        def taking():
            # Blocked (flags b) in a BLMOVE; "cmd" stays the last command run.
            return [f for f in link_clients(up, "respq-take:") if "b" in f.get("flags", "")]
        # The BLMOVE that was waiting when the pause came ends (2 s at most), and no other follows.
        wait_until(lambda: not taking(), timeout=10, what="the taker to stop waiting in BLMOVE")
        u.lpush("jobs", task(ep, "p1"), task(ep, "p2"))
        deadline = time.time() + 1.5
        while time.time() < deadline:
            assert not taking() and u.llen("jobs") == 2
            time.sleep(0.05)
        assert not requests_for(ep, "p1") and not requests_for(ep, "p2")
        assert c.execute_command("QUEUE", "RESUME", "jobs") == b"OK"
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "p1")
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "p2")
        assert shared_info(a, "jobs")["paused"] == "0"
        with a.raw() as raw:
            assert raw.cmd("QUEUE", "REPLAY", "jobs").startswith(b"-ERR the dead letters of shared queue 'jobs'")


def test_the_mirror_receives_the_pause_and_the_control_effects():
    with RedisServer() as up, HttpEndpoint(server="python") as ep, \
            sidecar(up, "M", "--mirror", "yes", "--http-queue", "tasks", "retries", "0") as m:
        c, u = m.client(), up.client()
        wait_caught_up(m)
        assert c.execute_command("QUEUE", "PAUSE", "tasks") == b"OK"
        c.lpush("tasks", task(ep, "keep"), task(ep, "drop"))
        assert c.execute_command("TASK", "CANCEL", "drop") == 1
        wait_caught_up(m)
        assert u.exists("tasks:paused") == 1
        assert u.lrange("tasks", 0, -1) == c.lrange("tasks", 0, -1) == [task(ep, "keep").encode()]
        assert c.execute_command("QUEUE", "RESUME", "tasks") == b"OK"
        wait_until(lambda: c.hlen("tasks:inflight") == 0 and c.llen("tasks") == 0, what="keep delivered")
        wait_caught_up(m)
        assert u.exists("tasks:paused") == 0 and u.llen("tasks") == 0


def test_redis_cli_pauses_finds_and_cancels():
    with HttpEndpoint(server="python") as ep, Respq() as r:
        assert r.cli("QUEUE", "PAUSE", "tasks").stdout.strip() == "OK"
        payload = task(ep, "cli-1")
        assert r.cli("LPUSH", "tasks", payload).stdout.strip() == "1"
        lines = r.cli("TASK", "GET", "cli-1").stdout.splitlines()
        fields = dict(zip(lines[0::2], lines[1::2]))
        assert fields["queue"] == "tasks" and fields["state"] == "pending" and fields["payload"] == payload, fields
        assert r.cli("INFO", "tasks").stdout.count("paused=1") == 1
        assert r.cli("TASK", "CANCEL", "cli-1").stdout.strip() == "1"
        assert r.cli("LLEN", "tasks").stdout.strip() == "0"
        assert r.cli("TASK", "GET", "cli-1").stdout.splitlines()[5] == "cancelled"
        assert r.cli("QUEUE", "RESUME", "tasks").stdout.strip() == "OK"
        assert "paused=0" in r.cli("INFO", "tasks").stdout
        assert r.cli("CONFIG", "SET", "http-queue", "tasks concurrency 16").stdout.strip() == "OK"
        assert "tasks concurrency 16 " in r.cli("CONFIG", "GET", "http-queue").stdout


if __name__ == "__main__":
    run_tests(globals())
