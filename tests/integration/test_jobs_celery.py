"""Celery 5.2 (Debian's python3-celery, kombu 5.2, redis-py 4.3), unchanged, against the
broker as both Celery's broker and its result backend (redis:// URLs, databases 0 and 1):
a real `celery worker` process runs tasks sent with delay, apply_async and send_task,
results come back through the backend (GET and pub/sub), a countdown task waits for its
ETA, a failing task reports its exception, a retried task succeeds, and group and chord
(the backend's counter and list per chord) give their results. The worker answers
remote-control pings over the broker's pub/sub and stops cleanly on TERM.

redis-py's Lock, which Celery's redis code and apps use, runs its Lua scripts through
EVALSHA (loading them on NOSCRIPT): the same sequence of acquire, extend, reacquire and
release is run on the broker and on redis-server and must give the same outcomes.

The tasks are in jobs/celery_tasks.py.
"""
import gc
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "jobs")
sys.path.insert(0, HERE)
sys.path.insert(0, JOBS)
from harness import JobWorker, RedisServer, Respq, run_tests, wait_until  # noqa: E402

import redis  # noqa: E402
from redis.exceptions import LockError  # noqa: E402


class Setup:
    def __init__(self):
        self.r = Respq()
        broker = f"redis://127.0.0.1:{self.r.port}/0"
        backend = f"redis://127.0.0.1:{self.r.port}/1"
        os.environ["CELERY_BROKER_URL"] = broker
        os.environ["CELERY_RESULT_BACKEND"] = backend
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [JOBS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        import celery_tasks
        self.tasks = celery_tasks
        self.app = celery_tasks.app
        self.worker = None

    def dump_log(self):
        self.r.dump_log()
        if self.worker is not None:
            self.worker.dump_log()

    def __exit__(self, *a):
        if self.worker is not None:
            self.worker.__exit__(None, None, None)
        # Results the tests dropped unsubscribe from their channels when collected: while
        # the server is still there, not at exit, where each would retry a connection.
        gc.collect()
        try:
            self.app.close()
        except Exception:
            pass
        self.r.__exit__(None, None, None)


def test_the_worker_starts_and_answers_a_remote_control_ping(s):
    s.worker = JobWorker("celery-worker", [
        sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool=solo",
        "--loglevel=INFO", "--hostname=w1@respq-test"], env=s.env)
    s.worker.wait_log("w1@respq-test ready.", timeout=60)
    replies = wait_until(lambda: s.app.control.ping(timeout=1.0), timeout=20, interval=0.1,
                         what="a ping reply")
    assert replies == [{"w1@respq-test": {"ok": "pong"}}], replies
    # kombu declared the queue's binding in the broker's database 0.
    c = s.r.client(db=0)
    assert b"celery" in {m.split(b"\x06\x16")[-1] for m in c.smembers("_kombu.binding.celery")}


def test_delay_and_send_task_results_come_back(s):
    t = s.tasks
    r1 = t.add.delay(2, 3)
    r2 = s.app.send_task("celery_tasks.add", args=(40, 2))
    r3 = t.add.apply_async((1,), {"y": 1}, queue="celery")
    assert r1.get(timeout=20) == 5
    assert r2.get(timeout=20) == 42
    assert r3.get(timeout=20) == 2
    assert r1.state == "SUCCESS" and r1.successful()
    # The result lives in the backend's database 1, as Celery's JSON meta.
    meta = s.r.client(db=1).get(f"celery-task-meta-{r1.id}")
    assert meta is not None and b'"status": "SUCCESS"' in meta and b'"result": 5' in meta, meta
    assert s.r.client(db=1).ttl(f"celery-task-meta-{r1.id}") > 500
    # Many at once, results collected in order.
    results = [t.add.delay(i, i) for i in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(20)]


def test_a_countdown_task_runs_at_its_eta_not_before(s):
    t0 = time.time()
    res = s.tasks.stamp.apply_async(("eta",), countdown=2)
    # The worker holds it (reserved, unacknowledged) until its ETA.
    wait_until(lambda: s.r.client(db=0).hlen("unacked") == 1, timeout=5,
               what="the ETA task in kombu's unacked hash")
    assert res.state == "PENDING"
    out = res.get(timeout=30)
    assert out["tag"] == "eta"
    # Celery's timer fires at the ETA; allow its scheduling a few milliseconds.
    assert out["at"] >= t0 + 2 - 0.05, (out, t0)
    assert out["at"] < t0 + 15, (out, t0)
    wait_until(lambda: s.r.client(db=0).hlen("unacked") == 0, timeout=10,
               what="the ETA task acknowledged")


def test_a_failing_task_reports_its_exception(s):
    res = s.tasks.fail.delay("boom-7")
    try:
        res.get(timeout=20)
        raise AssertionError("get() should have raised")
    except ValueError as e:
        assert str(e) == "boom-7"
    assert res.state == "FAILURE" and res.failed()
    assert "ValueError: boom-7" in res.traceback, res.traceback


def test_a_retried_task_succeeds_on_its_second_run(s):
    key = f"flaky:{time.time()}"
    res = s.tasks.flaky.delay(key)
    assert res.get(timeout=30) == {"attempt": 2, "retries": 1}
    assert s.r.client(db=0).get(key) == b"2"


def test_group_and_chord_results(s):
    from celery import chord, group
    t = s.tasks
    g = group(t.add.s(i, i) for i in range(5))()
    assert g.get(timeout=30) == [0, 2, 4, 6, 8]
    c = chord((t.add.s(i, 1) for i in range(4)), t.total.s())()
    assert c.get(timeout=30) == 1 + 2 + 3 + 4


def test_term_stops_the_worker_with_a_warm_shutdown(s):
    code = s.worker.stop(timeout=30)
    log = s.worker.log_text()
    assert code == 0, f"celery worker exited {code}:\n{log[-4000:]}"
    assert "Warm shutdown" in log, log[-4000:]
    # The only error it logged is the failing task's.
    errors = [line for line in log.splitlines() if ": ERROR/" in line]
    assert len(errors) == 1 and "Task celery_tasks.fail[" in errors[0], errors
    # Nothing left reserved: kombu acknowledged or restored every message it held. A
    # message restored to the queue at shutdown (a chord's callback the worker had
    # prefetched again, which redis-server shows as well) is marked redelivered and is a
    # task whose result is already in the backend: at-least-once, nothing lost.
    c = s.r.client(db=0)
    assert c.hlen("unacked") == 0, c.hgetall("unacked")
    for raw in c.lrange("celery", 0, -1):
        m = json.loads(raw)
        assert m["properties"]["delivery_info"]["redelivered"] is True, m
        meta = s.r.client(db=1).get("celery-task-meta-" + m["headers"]["id"])
        assert meta and json.loads(meta)["status"] == "SUCCESS", (m["headers"], meta)


def lock_sequence(c):
    """redis-py's Lock on one server; returns each step's outcome (values and error types)."""
    out = []

    def step(name, fn):
        try:
            v = fn()
            out.append((name, v))
        except (LockError, redis.RedisError) as e:
            out.append((name, type(e).__name__))

    c.delete("lk", "lk2", "lk3")
    a = c.lock("lk", timeout=2)
    b = c.lock("lk", timeout=2)
    step("a.acquire", lambda: a.acquire(blocking=False))
    step("b.acquire", lambda: b.acquire(blocking=False))
    step("b.acquire(0.2s)", lambda: b.acquire(blocking_timeout=0.2))
    step("locked/owned", lambda: (a.locked(), a.owned(), b.owned()))
    step("pttl<=2000", lambda: 0 < c.pttl("lk") <= 2000)
    step("a.extend(3)", lambda: a.extend(3))
    step("pttl>2000", lambda: 2000 < c.pttl("lk") <= 5000)
    step("a.extend(5,replace)", lambda: a.extend(5, replace_ttl=True))
    step("pttl(4000,5000]", lambda: 4000 < c.pttl("lk") <= 5000)
    step("a.reacquire", lambda: a.reacquire())
    step("pttl reset", lambda: 1000 < c.pttl("lk") <= 2000)
    # A holder whose token is not the one stored: every script refuses it.
    b.local.token = b"not-the-owner"
    step("b.release", lambda: b.release())
    b.local.token = b"not-the-owner"
    step("b.extend", lambda: b.extend(1))
    step("b.reacquire", lambda: b.reacquire())
    step("still a's", lambda: c.get("lk") == a.local.token)
    step("a.release", lambda: a.release())
    step("gone", lambda: c.exists("lk"))
    step("a.release again", lambda: a.release())
    # An expired lock: another holder takes it; the first can no longer release it.
    x = c.lock("lk2", timeout=0.3)
    y = c.lock("lk2", timeout=5)
    step("x.acquire", lambda: x.acquire(blocking=False))
    t0 = time.time()
    step("y.acquire after expiry", lambda: y.acquire(blocking_timeout=3, blocking=True))
    step("waited", lambda: time.time() - t0 > 0.1)
    step("x.release", lambda: x.release())
    step("y.release", lambda: y.release())
    # The context manager, with a blocking waiter released by the holder.
    got = []
    with c.lock("lk3", timeout=5, blocking_timeout=2):
        th = threading.Thread(target=lambda: got.append(c.lock("lk3", blocking_timeout=3).acquire()))
        th.start()
        time.sleep(0.3)
        out.append(("waiter blocked", got == []))
    th.join(5)
    out.append(("waiter got it", got == [True]))
    c.delete("lk3")
    return out


def script_stats(c):
    """calls, failed_calls of EVALSHA and SCRIPT LOAD, from INFO commandstats."""
    info = c.info("commandstats")
    return {name: (info.get(f"cmdstat_{name}", {}).get("calls", 0),
                   info.get(f"cmdstat_{name}", {}).get("failed_calls", 0))
            for name in ("evalsha", "script|load", "eval")}


def test_redis_py_lock_behaves_as_on_redis_server(s):
    c = s.r.client()
    c.script_flush()
    c.config_resetstat()
    got = lock_sequence(c)
    got_stats = script_stats(c)
    with RedisServer() as ref:
        want = lock_sequence(ref.client())
        want_stats = script_stats(ref.client())
    assert got == want, f"respq: {got}\nredis-server: {want}"
    assert dict(got) == {
        "a.acquire": True, "b.acquire": False, "b.acquire(0.2s)": False,
        "locked/owned": (True, True, False), "pttl<=2000": True, "a.extend(3)": True,
        "pttl>2000": True, "a.extend(5,replace)": True, "pttl(4000,5000]": True,
        "a.reacquire": True, "pttl reset": True, "b.release": "LockNotOwnedError",
        "b.extend": "LockNotOwnedError", "b.reacquire": "LockNotOwnedError", "still a's": True,
        "a.release": None, "gone": 0, "a.release again": "LockError", "x.acquire": True,
        "y.acquire after expiry": True, "waited": True, "x.release": "LockNotOwnedError",
        "y.release": None, "waiter blocked": True, "waiter got it": True}, got
    # The lock's scripts ran as EVALSHA, each loaded with SCRIPT LOAD after its first
    # EVALSHA failed with NOSCRIPT: the same counts as on redis-server.
    assert got_stats == want_stats, (got_stats, want_stats)
    evalsha, load = got_stats["evalsha"], got_stats["script|load"]
    assert evalsha[0] >= 8 and evalsha[1] == load[0] >= 1 and got_stats["eval"][0] == 0, got_stats


if __name__ == "__main__":
    run_tests(globals(), setup=Setup)
