"""Symfony Messenger's Redis transport, unchanged, over phpredis: respq must run it exactly
as redis-server does.

php/symfony_messenger.php drives the real RedisTransport and Connection (Debian's
php-symfony-messenger and php-symfony-redis-messenger 5.4, php-redis 5.3), whose queue is
a stream with a consumer group plus a sorted set for delayed messages: XGROUP CREATE ...
MKSTREAM, XADD, XREADGROUP (history id 0, then >), XACK, XDEL, XPENDING + XCLAIM to take
over a dead consumer's message, XINFO GROUPS, ZADD / ZCOUNT / ZPOPMIN. The scenario runs
against redis-server and against respq, both started here; every step's outcome and the
stream, group and delayed-queue figures after it must be the same.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import run_tests  # noqa: E402
from test_laravel_queue import Servers  # noqa: E402

SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "symfony_messenger.php")


def run_both(s):
    """Runs the scenario against both servers at the same time; returns both outputs."""
    procs = {name: subprocess.Popen(["php", SCENARIO, str(srv.port)], stdout=subprocess.PIPE,
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


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
