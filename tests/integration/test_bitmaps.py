"""Bitmap commands (SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO) against a
real redis-server: random commands over a few keys, the same on both, every reply and
every value compared (the edge cases one by one are in tests/compat/scripts/bitmaps.txt);
their keyspace events; and what they write surviving a restart from the AOF."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, Respq, keyspace_events, run_tests  # noqa: E402

KEYS = ["b1", "b2", "b3", "dst"]


def setup():
    return RedisAndRespq()


def random_command(rng):
    k = rng.choice(KEYS)
    small = lambda: rng.choice([rng.randint(-70, 70), rng.randint(-3, 3), rng.randint(0, 300)])  # noqa: E731
    kind = rng.randrange(12)
    if kind == 0:
        return ["SETBIT", k, rng.randint(0, 200), rng.choice([0, 1, 1])]
    if kind == 1:
        return ["GETBIT", k, rng.randint(0, 220)]
    if kind == 2:
        cmd = ["BITCOUNT", k]
        if rng.random() < 0.8:
            cmd += [small(), small()] + ([rng.choice(["BIT", "BYTE", "bit"])] if rng.random() < 0.6 else [])
        return cmd
    if kind == 3:
        cmd = ["BITPOS", k, rng.choice([0, 1])]
        n = rng.randrange(4)
        if n >= 1:
            cmd.append(small())
        if n >= 2:
            cmd.append(small())
        if n == 3:
            cmd.append(rng.choice(["BIT", "BYTE"]))
        return cmd
    if kind == 4:
        op = rng.choice(["AND", "OR", "XOR", "NOT"])
        srcs = [rng.choice(KEYS + ["nokey"])] if op == "NOT" else rng.sample(KEYS + ["nokey"], rng.randint(1, 4))
        return ["BITOP", op, rng.choice(KEYS)] + srcs
    if kind == 5:
        return ["SET", k, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))]
    if kind in (6, 7, 8):
        cmd = ["BITFIELD_RO" if kind == 8 else "BITFIELD", k]
        for _ in range(rng.randint(1, 4)):
            t = rng.choice(["i", "u"]) + str(rng.choice([1, 2, 3, 5, 7, 8, 13, 16, 31, 32, 33, 63] +
                                                        ([64] if rng.random() < 0.5 else [])))
            if t == "u64":
                t = "i64"
            off = str(rng.randint(0, 120)) if rng.random() < 0.7 else f"#{rng.randint(0, 6)}"
            what = rng.choice(["GET", "GET", "SET", "INCRBY", "OVERFLOW"]) if kind != 8 else "GET"
            if what == "OVERFLOW":
                cmd += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL"])]
            elif what == "GET":
                cmd += ["GET", t, off]
            else:
                bits = int(t[1:])
                big = 2 ** (bits + 1)
                val = rng.choice([rng.randint(-big, big), rng.randint(-3, 3), 2 ** 63 - 1, -(2 ** 63),
                                  rng.randint(-(2 ** 63), 2 ** 63 - 1)])
                cmd += [what, t, off, val]
        return cmd
    if kind == 9:
        return ["GET", k]
    if kind == 10:
        return ["DEL", k]
    return ["STRLEN", k]


def test_random_commands_match_redis(pair):
    for seed in range(6):
        rng = random.Random(seed)
        with pair.respq.raw() as r, pair.redis.raw() as d:
            for c in (r, d):
                assert c.cmd("FLUSHALL") == b"+OK\r\n"
            for i in range(1500):
                cmd = random_command(rng)
                got, want = r.cmd(*cmd), d.cmd(*cmd)
                assert got == want, f"seed {seed} step {i}: {cmd}\nrespq: {got!r}\nredis: {want!r}"
            for k in KEYS:
                assert r.cmd("GET", k) == d.cmd("GET", k), (seed, k)


def test_keyspace_events_match_redis(pair):
    script = [
        ["SETBIT", "k", 9, 1], ["SETBIT", "k", 9, 1], ["SETBIT", "k", 9, 0], ["SETBIT", "k", 30, 0],
        ["GETBIT", "nokey", 1], ["BITCOUNT", "nokey"], ["BITPOS", "nokey", 1],
        ["BITOP", "OR", "d", "k", "nokey"], ["BITOP", "AND", "d", "nokey"], ["BITOP", "AND", "d", "nokey"],
        ["BITFIELD", "f", "SET", "u8", 0, 5], ["BITFIELD", "f", "SET", "u8", 0, 5], ["BITFIELD", "f", "GET", "u8", 0],
        ["BITFIELD", "nokey", "GET", "u8", 0], ["BITFIELD_RO", "nokey", "GET", "u8", 0],
        ["BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", 0, 300], ["BITFIELD", "g", "INCRBY", "u2", 0, 0],
    ]
    events = {name: keyspace_events(srv, script) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:setbit", "k") in events["redis"] and ("__keyevent@0__:keymiss", "nokey") in events["redis"]


def test_bitmaps_survive_a_restart_from_the_aof():
    with Respq("--http-queue", "tasks", "off", "--appendonly", "yes") as r:
        c = r.client()
        c.setbit("s", 100, 1)
        assert c.execute_command("BITFIELD", "f", "SET", "i16", "#2", -300, "INCRBY", "u4", 3, 7) == [0, 7]
        c.set("a", b"\x0f\xf0")
        assert c.execute_command("BITOP", "XOR", "x", "a", "f") == 6
        c.set("gone", "v")
        assert c.execute_command("BITOP", "AND", "gone", "nokey") == 0
        before = {k: c.get(k) for k in ("s", "f", "a", "x", "gone")}
        assert before["gone"] is None and before["f"] == b"\x0e\x00\x00\x00\xfe\xd4", before
        r.restart()
        c = r.client()
        assert {k: c.get(k) for k in before} == before
        assert c.execute_command("BITFIELD_RO", "f", "GET", "i16", "#2") == [-300]
        assert c.getbit("s", 100) == 1 and c.strlen("s") == 13


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
