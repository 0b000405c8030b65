"""BullMQ 6.7 and Bull 4.16 (Node, from npm as tests/integration/jobs/node/package-lock.json
pins them; scripts/test installs them), unchanged, against the broker. Both keep their
queues in Lua scripts that unpack the job options with `cmsgpack` (Redis's own copy in
respq), BullMQ publishes its events on a stream read with XREAD BLOCK, and its workers
wait on a sorted set with BZPOPMIN.

The drivers (jobs/node/bullmq_run.js, bull_run.js) print what the library saw as JSON;
the same runs give the same lines on redis-server (RESPQ_TEST_TARGET=redis).
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, Skip, run, run_tests  # noqa: E402

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobs", "node")


def setup():
    if shutil.which("node") is None:
        raise Skip("node is not installed (scripts/deps)")
    for lib in ("bullmq", "bull"):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", lib)):
            raise Skip(f"{lib} is not installed: scripts/npm-ci tests/integration/jobs/node (scripts/test does)")
    return None


def node(script, *args, timeout=90):
    p = run(["node", os.path.join(NODE_DIR, script)] + [str(a) for a in args], timeout=timeout, check=False)
    assert p.returncode == 0, f"{script} {args} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_bullmq_runs_plain_prioritised_delayed_failing_and_flow_jobs():
    with Respq() as r:
        out = node("bullmq_run.js", r.port, "lifecycle")
        order = out["order"]
        # Waiting jobs first in the order added, then the prioritised ones by priority;
        # the child before its parent, the delayed job after its second.
        assert order.index("send") < order.index("high"), order
        assert order.index("high") < order.index("low"), order
        assert order.index("child") < order.index("parent"), order
        assert order[-1] == "delayed", order
        assert out["delayedWaitedMs"] >= 995, out
        assert out["countsBefore"] == {"active": 0, "completed": 0, "delayed": 1, "failed": 0,
                                       "prioritized": 2, "waiting": 3, "waiting-children": 1}, out
        assert out["countsAfter"] == {"active": 0, "completed": 6, "delayed": 0, "failed": 1,
                                      "prioritized": 0, "waiting": 0, "waiting-children": 0}, out
        assert out["plainReturn"] == {"sent": "a@example.org"}
        assert out["highReturn"] == {"sent": "high"} and out["lowReturn"] == {"sent": "low"}
        assert out["parentReturn"] == {"children": [{"sent": "c"}]}
        # Retried once after its fixed backoff, then failed for good.
        assert out["failures"] == [["fail", 1, "boom 0"], ["fail", 2, "boom 1"]], out
        assert out["failedReason"] == "boom 1" and out["failedAttempts"] == 2
        # Progress and completions reach QueueEvents through the events stream.
        assert out["progress"] == [["1", 50]], out
        assert out["completedEvents"] == 6, out
        # obliterate removed every key of the queue.
        assert r.client().keys("bull:mail:*") == []


def test_bullmq_jobs_added_before_a_restart_run_after_it():
    with Respq("--appendonly", "yes") as r:
        ids = node("bullmq_run.js", r.port, "produce", 5)["ids"]
        assert ids == ["1", "2", "3", "4", "5"], ids
        c = r.client()
        assert c.llen("bull:durable:wait") == 4 and c.zcard("bull:durable:delayed") == 1
        r.restart()
        out = node("bullmq_run.js", r.port, "consume", 5)
        assert out["done"] == [0, 1, 2, 3, 4], out
        assert out["counts"]["completed"] == 5 and out["counts"]["waiting"] == 0, out
        assert r.client().hget("bull:durable:5", "returnvalue") == b"8"


def test_bull_runs_plain_prioritised_delayed_and_failing_jobs():
    with Respq() as r:
        out = node("bull_run.js", r.port)
        assert out["order"] == ["high", "low", "send", "fail", "fail", "delayed"], out
        assert out["delayedWaitedMs"] >= 795, out
        assert out["countsBefore"] == {"waiting": 4, "active": 0, "completed": 0, "failed": 0,
                                       "delayed": 1, "paused": 0}, out
        assert out["countsAfter"] == {"waiting": 0, "active": 0, "completed": 4, "failed": 1,
                                      "delayed": 0, "paused": 0}, out
        assert out["failures"] == [["fail", 1, "boom 0"], ["fail", 2, "boom 1"]], out
        assert out["failedReason"] == "boom 1"
        assert out["progress"] == [["high", 50], ["low", 50], ["send", 50], ["delayed", 50]], out
        assert (out["plainReturn"], out["lowReturn"], out["highReturn"]) == ({"sent": "a"}, {"sent": "low"}, {"sent": "high"})
        assert all(v == 0 for v in out["countsCleaned"].values()), out


if __name__ == "__main__":
    run_tests(globals(), setup)
