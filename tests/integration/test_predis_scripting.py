"""Predis 1.1 (Debian's php-predis) and Lua scripting: respq must answer as redis-server.

php/predis_scripting.php runs EVAL (every Lua reply type and every kind of script
error, with Predis throwing and with exceptions off), SCRIPT LOAD / EXISTS / FLUSH /
KILL, EVALSHA with and without NOSCRIPT, Predis's ScriptCommand (EVALSHA, then EVAL
on NOSCRIPT), eval in pipelines and transactions and EVAL_RO, against both servers. Its
output (every reply and error text, and the calls and failed calls INFO commandstats
counted for EVAL, EVALSHA and each SCRIPT subcommand) must be the same.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, php, run_tests  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "predis_scripting.php")


def replies(port, who):
    p = php(SCRIPT, port, timeout=120, check=False)
    assert p.returncode == 0, f"predis_scripting.php against {who} exited {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr}"
    return json.loads(p.stdout)


def test_predis_eval_evalsha_and_script_replies_match_redis_server():
    with RedisServer() as redis, Respq() as respq:
        ref = replies(redis.port, "redis-server")
        got = replies(respq.port, "respq")
    assert [label for label, _ in got] == [label for label, _ in ref]
    diffs = [f"{label}:\n  respq:        {json.dumps(g)}\n  redis-server: {json.dumps(r)}"
             for (label, g), (_, r) in zip(got, ref) if g != r]
    assert not diffs, f"{len(diffs)} of {len(ref)} differ:\n" + "\n".join(diffs)
    # The points of the scenario, spelled out (on both servers, as they are equal).
    out = dict(got)
    assert out["evalsha of an unknown sha"] == ["exception", "Predis\\Response\\ServerException",
                                                "NOSCRIPT No matching script. Please use EVAL."]
    assert out["ScriptCommand after flush (EVALSHA, NOSCRIPT, EVAL)"] == 7
    assert out["ScriptCommand a third time"] == [10, "10"]
    assert out["ScriptCommand sha is cached"] == [1]
    stats = out["commandstats"]
    assert stats["cmdstat_evalsha"][1] >= 1 and stats["cmdstat_eval"][0] > 0, stats


if __name__ == "__main__":
    run_tests(globals())
