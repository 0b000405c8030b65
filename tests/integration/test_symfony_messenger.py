"""Symfony Messenger's Redis transport, unchanged, over phpredis: respq must run it exactly
as redis-server does.

php/symfony_messenger.php drives the real RedisTransport and Connection (Debian's
php-symfony-messenger and php-symfony-redis-messenger 5.4, php-redis 5.3), whose queue is
a stream with a consumer group plus a sorted set for delayed messages: XGROUP CREATE ...
MKSTREAM, XADD, XREADGROUP (history id 0, then >), XACK, XDEL, XPENDING + XCLAIM to take
over a dead consumer's message, XINFO GROUPS, ZADD / ZCOUNT / ZPOPMIN. The scenario runs
against redis-server and against respq, both started here; every step's outcome and the
stream, group and delayed-queue figures after it must be the same.

php/symfony_messenger_retry.php adds what a Symfony application's worker does when a
handler throws: Symfony's Worker with its retry listener (a MultiplierRetryStrategy, the
retries going through the delayed queue), the error-details stamp and the failure
transport (a second stream), then a worker on the failure transport retrying the message
as `messenger:failed:retry` does. Every worker event, the stamps each attempt carried and
both streams' figures must be the same on both servers.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, run_tests  # noqa: E402

PHP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php")
SCENARIO = os.path.join(PHP, "symfony_messenger.php")
RETRY_SCENARIO = os.path.join(PHP, "symfony_messenger_retry.php")


def run_both(s, scenario=SCENARIO):
    """Runs a scenario against both servers at the same time; returns both outputs."""
    procs = {name: subprocess.Popen(["php", scenario, str(srv.port)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, srv in (("redis", s.redis), ("respq", s.respq))}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, f"{name}: exit {p.returncode}\n{stdout}\n{stderr}"
        out[name] = json.loads(stdout)
    return out["redis"], out["respq"]


def test_symfony_messenger_redis_transport_runs_as_on_redis_server(s):
    ref, got = run_both(s)
    # The reference itself must show the scenario happened: each message received once,
    # in order, the delayed one only after its time, the dead consumer's one claimed.
    assert ref["get1"] == ["m1"] and ref["get2"] == ["m2"], ref
    assert ref["delayed_early"] == [] and ref["delayed_late"] == ["m3"], ref
    assert ref["dying_gone"]["pending_by_consumer"] == [["dying", "1"]], ref
    assert ref["claimed"] == ["m4"] and ref["claimed_state"]["pending_by_consumer"] == [["bob", "1"]], ref
    assert ref["final"]["pending"] == 0 and ref["nothing_left"] == [], ref
    for step in ref:
        assert got.get(step) == ref[step], f"step {step}: redis {ref[step]!r}, respq {got.get(step)!r}"
    assert got == ref


def test_symfony_messenger_retries_then_failure_transport_as_on_redis_server(s):
    ref, got = run_both(s, RETRY_SCENARIO)
    # The reference shows the whole path: "bad" failed three times (retries 1 and 2 through
    # the delayed queue, each attempt carrying its RedeliveryStamp and the last error),
    # "ok" was handled once, the third failure went to the failure transport, and the
    # worker on it handled the message, which then left it.
    failures = [e for e in ref["phase1_log"] if e[0] == "failed"]
    assert failures == [["failed", "messages", "bad", 0, True], ["failed", "messages", "bad", 1, True],
                        ["failed", "messages", "bad", 2, False]], ref["phase1_log"]
    assert [e for e in ref["phase1_log"] if e[0] == "retried"] == [["retried", "messages", "bad", 1],
                                                                    ["retried", "messages", "bad", 2]]
    assert ["handled", "messages", "ok"] in ref["phase1_log"] and ["deadline"] not in ref["phase1_log"]
    assert [(n, st["retry_count"], st["error"]) for n, st in ref["phase1_seen"] if n == "bad"] == [
        ("bad", 0, None), ("bad", 1, "cannot handle bad"), ("bad", 2, "cannot handle bad")]
    assert ref["phase1_failed"]["xlen"] == 1 and ref["phase1_messages"]["pending"] == 0, ref
    assert ref["phase1_messages"]["delayed"] == 0, ref
    assert ref["phase2_log"] == [["handled", "failed", "bad"]], ref["phase2_log"]
    assert ref["phase2_seen"][0][1]["sent_to_failure_from"] == "messages", ref["phase2_seen"]
    assert ref["phase2_failed"]["pending"] == 0 and ref["nothing_left"] == [0, 0], ref
    for step in ref:
        assert got.get(step) == ref[step], f"step {step}: redis {ref[step]!r}, respq {got.get(step)!r}"
    assert got == ref


if __name__ == "__main__":
    run_tests(globals(), setup=RedisAndRespq)
