"""Laravel 8's Redis queue, unchanged, over phpredis and over Predis: respq must run it
exactly as redis-server does.

php/laravel_queue.php drives the real Illuminate\\Queue\\RedisQueue and Worker (Debian's
php-illuminate-queue and php-illuminate-redis 8.83, php-predis 1.1, php-redis 5.3):
push, pushRaw, later, bulk, size, pop, release with and without delay, delete, clear,
the migration of delayed and of expired reserved jobs (Lua scripts run through EVAL),
a blocking pop (block_for) woken by another process, and a worker daemon that runs the
jobs. The same scenario runs against redis-server and against respq, both started here;
the step results, the keys after each step (payloads byte for byte, as Lua's cjson
re-encoded them) and the jobs the worker ran must be the same.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, run_tests  # noqa: E402

SCENARIO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "laravel_queue.php")

# The worker's runs in the order that does not depend on timing: the jobs ready at once
# (pushed, pushed raw, bulk) run in queue order; what was released or delayed comes after.
READY_FIRST = [["a1", 1, "ran"], ["a2", 1, "ran"], ["a3", 1, "ran"], ["raw1", 1, "ran"],
               ["b1", 1, "ran"], ["b2", 1, "ran"], ["f1", 1, "ran"]]
LATER = [["a2", 2, "ran"], ["f1", 2, "ran"], ["f1", -1, "failed"], ["d1", 1, "ran"],
         ["a3", 2, "ran"], ["d2", 1, "ran"]]
REPORTED = ["RuntimeException: a2 fails its first attempt", "RuntimeException: f1 always fails",
            "RuntimeException: f1 always fails"]


def run_both(s, client):
    """Runs the scenario against redis-server and respq at the same time; returns both
    outputs, decoded."""
    procs = {}
    with tempfile.TemporaryDirectory(prefix="respq-laravel-") as tmp:
        for name, srv in (("redis", s.redis), ("respq", s.respq)):
            d = os.path.join(tmp, name)
            os.mkdir(d)
            procs[name] = subprocess.Popen(["php", SCENARIO, str(srv.port), client, d], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
        out = {}
        for name, p in procs.items():
            try:
                stdout, stderr = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                stdout, stderr = p.communicate()
            assert p.returncode == 0, (f"the Laravel scenario over {client} against {name} exited {p.returncode}\n"
                                       f"stdout: {stdout[-3000:]}\nstderr: {stderr[-3000:]}")
            out[name] = json.loads(stdout)
    return out["redis"], out["respq"]


def check_worker(worker, who):
    runs = worker["runs"]
    assert runs[:len(READY_FIRST)] == READY_FIRST, f"{who}: the ready jobs ran as {runs}"
    rest = runs[len(READY_FIRST):]
    assert sorted(rest) == sorted(LATER), f"{who}: the released and delayed jobs ran as {rest}"
    pos = {tuple(r): i for i, r in enumerate(rest)}
    # Due earlier, migrated no later: d1 (1 s) before d2 (2 s); a2, released at once,
    # before a3, released for 1 s; f1 fails only after its second attempt.
    assert pos[("d1", 1, "ran")] < pos[("d2", 1, "ran")], f"{who}: {rest}"
    assert pos[("a2", 2, "ran")] < pos[("a3", 2, "ran")], f"{who}: {rest}"
    assert pos[("f1", 2, "ran")] < pos[("f1", -1, "failed")], f"{who}: {rest}"
    assert worker["reported"] == REPORTED, f"{who}: {worker['reported']}"
    assert worker["status"] == 0, f"{who}: worker status {worker['status']}"


def compare(client, ref, got):
    assert [st[0] for st in got["steps"]] == [st[0] for st in ref["steps"]]
    for (name, ref_value, ref_keys), (_, value, keys) in zip(ref["steps"], got["steps"]):
        assert value == ref_value, (f"{client}, step {name!r}: respq returned {value!r}, "
                                    f"redis-server {ref_value!r}")
        assert keys == ref_keys, (f"{client}, step {name!r}: the keys differ\n"
                                  f"respq:        {json.dumps(keys, indent=1)[:4000]}\n"
                                  f"redis-server: {json.dumps(ref_keys, indent=1)[:4000]}")
    check_worker(ref["worker"], f"{client} on redis-server")
    check_worker(got["worker"], f"{client} on respq")
    # What the steps must show on either server, spelled out.
    steps = {st[0]: st for st in got["steps"]}
    assert steps["size"][1] == 9
    assert steps["after the worker"][1] == 0
    assert steps["after the worker"][2] == {"laravel_database_jobs:ran": ["string", "12"]}
    assert steps["pop after retry_after"][1] == ["x1", 2, "default", True]
    assert steps["clear"][1] == 3 and steps["size after clear"][1] == 0
    assert steps["blocking pop woken by a push"][1] == ["w1", 1, "blocking"]
    delayed = steps["later 1 s d1"][2]["laravel_database_queues:default:delayed"]
    assert delayed[0] == "zset" and sorted(score for _, score in delayed[1]) == [1, 2], delayed
    reserved = steps["pop x1, then the worker dies"][2]["laravel_database_queues:default:reserved"]
    assert reserved[1][0][1] == 2 and '"attempts":1' in reserved[1][0][0], reserved


def test_laravel_queue_over_phpredis_runs_as_on_redis_server(s):
    ref, got = run_both(s, "phpredis")
    compare("phpredis", ref, got)


def test_laravel_queue_over_predis_runs_as_on_redis_server(s):
    ref, got = run_both(s, "predis")
    compare("predis", ref, got)


if __name__ == "__main__":
    run_tests(globals(), setup=RedisAndRespq)
