"""Durability with appendfsync always: kill -9 during a pipelined LPUSH load loses no
acknowledged push, and HTTP tasks that were in flight or retrying when the server was
killed are delivered after the restart (at least once), while tasks delivered before the
crash are not delivered again."""
import json
import os
import sys
import tempfile
import shutil
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, run_tests, wait_until, info_field  # noqa: E402
from persistence_helpers import Endpoint, Pusher, check_pushes  # noqa: E402

ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")


def test_kill9_during_pipelined_lpush_with_always_loses_no_acknowledged_push():
    d = tempfile.mkdtemp(prefix="respq-aof-kill9-")
    try:
        with Respq(*ALWAYS, "--http-queue", "tasks", "off", dir=d) as r:
            pushers = [Pusher(r.port, f"p{i}") for i in range(6)]
            for p in pushers:
                p.start()
            wait_until(lambda: all(p.acked >= 200 for p in pushers), timeout=30, what="pushes acknowledged")
            time.sleep(0.5)
            r.kill9()
            for p in pushers:
                p.join(timeout=10)
            assert not any(p.errors for p in pushers), [p.errors for p in pushers]
            acked = sum(p.acked + 1 for p in pushers)
            r.start()
            elements = r.client().lrange("q", 0, -1)
            found = check_pushes(elements, pushers)
            print(f"  acknowledged {acked} pushes, {len(elements)} survived the kill -9 "
                  f"({len(elements) - acked} persisted but not yet acknowledged)", flush=True)
            assert sum(k + 1 for k in found.values()) == len(elements)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_http_tasks_in_flight_at_a_kill9_are_delivered_after_restart_and_done_ones_are_not_repeated():
    d = tempfile.mkdtemp(prefix="respq-aof-tasks-")
    ep = Endpoint().up()
    try:
        # The breaker off: this is about attempts kept across a crash, and an open circuit
        # would hold the tasks without spending any.
        args = ALWAYS + ("--host-failures-to-open", "0",
                         "--http-queue", "tasks", "retries", "1000", "backoff-min", "0.2", "backoff-max", "0.5",
                         "timeout", "5")
        with Respq(*args, dir=d) as r:
            c = r.client()
            url = f"http://127.0.0.1:{ep.port}/hook"
            before = [f"before-{i}" for i in range(20)]
            for i in before:
                c.lpush("tasks", json.dumps({"url": url, "id": i}))
            # Delivered and recorded (the HDEL is in the file before this read is answered).
            wait_until(lambda: set(before) <= set(ep.ids()) and c.hlen("tasks:inflight") == 0,
                       timeout=20, what="first tasks delivered")
            delivered_before = len(ep.ids())

            ep.down()
            during = [f"during-{i}" for i in range(30)]
            for i in during:
                c.lpush("tasks", json.dumps({"url": url, "id": i}))
            wait_until(lambda: c.hlen("tasks:inflight") == 30 and c.llen("tasks") == 0, timeout=20,
                       what="all new tasks dispatched and failing")
            time.sleep(1.0)  # some retries happen
            r.kill9()

            ep.up()
            r.start()
            wait_until(lambda: set(during) <= set(ep.ids()), timeout=30, what="tasks delivered after restart")
            wait_until(lambda: c.hlen("tasks:inflight") == 0, timeout=10, what="in-flight table empty")
            ids = ep.ids()
            again = [i for i in ids[delivered_before:] if i in before]
            assert not again, f"delivered again after the restart: {again}"
            for i in during:
                assert i in ids, f"{i} lost"
            # The attempt count survived: every task had one failed attempt before the crash.
            first_attempt = {}
            for tid, attempt, _ in ep.entries()[delivered_before:]:
                first_attempt.setdefault(tid, int(attempt))
            low = {t: a for t, a in first_attempt.items() if a < 2}
            assert not low, f"attempt counts not restored: {low}"
            assert info_field(r.port, "persistence", "aof_last_write_status") == "ok"
    finally:
        ep.down()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
