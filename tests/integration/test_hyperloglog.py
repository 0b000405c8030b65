"""HyperLogLog (PFADD PFCOUNT PFMERGE PFDEBUG) against a real redis-server: the same
random elements added to both, in random batches, across the sparse form, its promotion
and the dense form, with every reply and the bytes of every value compared (so a
HyperLogLog moves between respq and Redis unchanged); counts within Redis's error of
the true cardinality; keyspace events; and the values surviving a restart from the AOF.
The edge cases one by one are in tests/compat/scripts/hyperloglog.txt."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, Respq, keyspace_events, run_tests  # noqa: E402


def setup():
    return RedisAndRespq()


def both(pair, *cmd):
    with pair.respq.raw() as r, pair.redis.raw() as d:
        return r.cmd(*cmd), d.cmd(*cmd)


def test_random_adds_and_merges_match_redis_byte_for_byte(pair):
    rng = random.Random(7)
    keys = ["h1", "h2", "h3"]
    with pair.respq.raw() as r, pair.redis.raw() as d:
        for c in (r, d):
            assert c.cmd("FLUSHALL") == b"+OK\r\n"
        for step in range(400):
            k = rng.choice(keys)
            roll = rng.random()
            if roll < 0.7:
                n = rng.choice([1, 2, 5, 20, 200])
                elems = [rng.choice([f"e{rng.randrange(30000)}", os.urandom(rng.randrange(0, 20)).hex(),
                                     bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))])
                         for _ in range(n)]
                cmd = ["PFADD", k, *elems]
            elif roll < 0.8:
                cmd = ["PFCOUNT", *rng.sample(keys + ["none"], rng.randint(1, 3))]
            elif roll < 0.9:
                cmd = ["PFMERGE", rng.choice(keys + ["m"]), *rng.sample(keys + ["none"], rng.randint(0, 3))]
            else:
                cmd = ["CONFIG", "SET", "hll-sparse-max-bytes", rng.choice(["3000", "300", "60", "100000"])]
            got, want = r.cmd(*cmd), d.cmd(*cmd)
            assert got == want, f"step {step}: {cmd[:4]}...\nrespq: {got[:200]!r}\nredis: {want[:200]!r}"
            for key in keys + ["m"]:
                assert r.cmd("GET", key) == d.cmd("GET", key), f"step {step}: {key} differs after {cmd[:3]}"
        # The run went through the promotion: some key ended dense.
        assert b"+dense\r\n" in {r.cmd("PFDEBUG", "ENCODING", k) for k in keys}


def test_planted_values_get_redis_answers_and_never_crash(pair):
    # Values a client wrote with SET: a HYLL header over random opcodes (sparse) or random
    # registers (dense), truncated and overlong ones; every command on them answers what
    # Redis answers, and both hold the same bytes afterwards.
    rng = random.Random(11)
    with pair.respq.raw() as r, pair.redis.raw() as d:
        for step in range(600):
            enc = rng.choice([0, 1, 1, 2])
            if enc == 0:
                body = bytes(rng.randrange(256) for _ in range(rng.choice([12288, 12287, 100])))
            else:
                ops = []
                for _ in range(rng.randrange(0, 12)):
                    kind = rng.randrange(3)
                    if kind == 0:
                        ops.append(rng.randrange(64))
                    elif kind == 1:
                        ops += [0x40 | rng.randrange(64), rng.randrange(256)]
                    else:
                        ops.append(0x80 | rng.randrange(128))
                roll = rng.random()
                if roll < 0.3:  # an XZERO of 16,384 more: past the registers unless ops is empty
                    ops += [0x40 | 0x3f, 0xff]
                elif roll < 0.7:  # a valid cover: runs of any kind, up to exactly 16,384 registers
                    ops, left = [], 16384
                    while left:
                        kind = rng.randrange(3)
                        if kind == 0:
                            n = min(left, rng.randint(1, 64))
                            ops.append(n - 1)
                        elif kind == 1:
                            n = min(left, rng.randint(1, 3000))
                            ops += [0x40 | ((n - 1) >> 8), (n - 1) & 0xff]
                        else:
                            n = min(left, rng.randint(1, 4))
                            ops.append(0x80 | (rng.randrange(32) << 2) | (n - 1))
                        left -= n
                body = bytes(ops)
            card = bytes(rng.randrange(256) for _ in range(8))
            value = b"HYLL" + bytes([enc, 0, 0, 0]) + card + body
            cmds = [["SET", "p", value], rng.choice([["PFCOUNT", "p"], ["PFADD", "p", f"x{step}", "y"],
                                                    ["PFMERGE", "q", "p"], ["PFCOUNT", "p", "q"],
                                                    ["PFDEBUG", "GETREG", "p"], ["PFDEBUG", "DECODE", "p"],
                                                    ["PFDEBUG", "TODENSE", "p"]]), ["GET", "p"], ["DEL", "q"]]
            for cmd in cmds:
                got, want = r.cmd(*cmd), d.cmd(*cmd)
                assert got == want, f"step {step}: {cmd[:3]} on {value[:40]!r}...\nrespq: {got[:200]!r}\nredis: {want[:200]!r}"
        assert r.cmd("PING") == b"+PONG\r\n"


def test_counts_are_close_to_the_true_cardinality(pair):
    for srv in (pair.respq, pair.redis):
        c = srv.client()
        c.config_set("hll-sparse-max-bytes", 3000)  # the default (the random test changes it)
        c.delete("big")
        for start in range(0, 200_000, 10_000):
            c.pfadd("big", *[f"user:{i}" for i in range(start, start + 10_000)])
    n = pair.respq.client().pfcount("big")
    assert abs(n - 200_000) / 200_000 < 0.02, n  # Redis's standard error is 0.81%
    assert both(pair, "PFCOUNT", "big") == (b":%d\r\n" % n,) * 2
    assert both(pair, "GET", "big")[0] == both(pair, "GET", "big")[1]
    assert pair.respq.client().execute_command("PFDEBUG", "ENCODING", "big") == b"dense"


def test_keyspace_events_match_redis(pair):
    script = [["PFADD", "k", "a"], ["PFADD", "k", "a"], ["PFADD", "k2"], ["PFCOUNT", "nokey"],
              ["PFCOUNT", "k"], ["PFMERGE", "d", "k", "nokey"], ["PFCOUNT", "k", "nokey"]]
    events = {name: keyspace_events(srv, script) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:pfadd", "d") in events["redis"]


def test_values_survive_a_restart_from_the_aof():
    with Respq("--http-queue", "tasks", "off", "--appendonly", "yes") as r:
        c = r.client()
        c.pfadd("visits", *[f"v{i}" for i in range(50)])
        c.pfadd("dense", *[f"d{i}" for i in range(5000)])
        c.execute_command("PFMERGE", "all", "visits", "dense")
        counts = {k: c.pfcount(k) for k in ("visits", "dense", "all")}  # caches the counts
        values = {k: c.get(k) for k in ("visits", "dense", "all")}
        r.restart()
        c = r.client()
        # The counts PFCOUNT cached are in the AOF too: the values come back byte for byte.
        assert {k: c.get(k) for k in values} == values
        assert {k: c.pfcount(k) for k in counts} == counts


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
