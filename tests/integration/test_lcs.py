"""LCS against a real redis-server: random strings over small alphabets (many matches,
ties between the two walks back) and every option, the same on both, every reply
compared byte for byte (the edge cases one by one are in tests/compat/scripts/lcs.txt);
and its "keymiss" events."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, keyspace_events, run_tests  # noqa: E402


def setup():
    return RedisAndRespq()


def random_string(rng):
    alphabet = rng.choice([b"ab", b"abc", b"ACGT", bytes(range(256)), b"a"])
    return bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, rng.randrange(40), rng.randrange(300)])))


def random_options(rng):
    opts = []
    for _ in range(rng.randrange(4)):
        o = rng.choice(["IDX", "LEN", "WITHMATCHLEN", "MINMATCHLEN", "idx", "withmatchlen"])
        opts.append(o)
        if o == "MINMATCHLEN":
            opts.append(rng.choice([0, 1, 2, 3, 5, -1, rng.randrange(20)]))
    return opts


def test_random_lcs_match_redis(pair):
    for seed in range(4):
        rng = random.Random(seed)
        with pair.respq.raw() as r, pair.redis.raw() as d:
            for c in (r, d):
                assert c.cmd("FLUSHALL") == b"+OK\r\n"
            for i in range(800):
                if rng.random() < 0.3:
                    cmd = ["SET", rng.choice(["x", "y"]), random_string(rng)]
                else:
                    cmd = ["LCS", rng.choice(["x", "y", "none"]), rng.choice(["x", "y", "none"])] + random_options(rng)
                got, want = r.cmd(*cmd), d.cmd(*cmd)
                assert got == want, f"seed {seed} step {i}: {cmd}\nrespq: {got!r}\nredis: {want!r}"


def test_keyspace_events_match_redis(pair):
    script = [["SET", "a", "hello"], ["LCS", "a", "nokey"], ["LCS", "nokey", "a", "LEN"], ["LCS", "a", "a", "IDX"]]
    events = {name: keyspace_events(srv, script) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:keymiss", "nokey") in events["redis"]


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
