"""HRANDFIELD with a positive count below the size, on a small hash: as Redis's listpack
(lpRandomPairsUnique), the fields come in the hash's order, distinct, and every field is
drawn about equally often; checked on redis-server and respq alike. (Everything about a
small hash's order that is not random is compared byte for byte with redis-server by
tests/compat/scripts/hashes_order.txt.)"""
import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, run_tests  # noqa: E402


def setup():
    return RedisAndRespq()


def test_hrandfield_of_a_small_hash_keeps_its_order(pair):
    for srv in (pair.redis, pair.respq):
        c = srv.client()
        c.delete("h")
        fields = [f"f{i:02d}" for i in range(30)][::-1]   # added in an order that is not sorted
        for f in fields:
            c.hset("h", f, "v")
        assert [k.decode() for k in c.hkeys("h")] == fields
        drawn = Counter()
        for _ in range(300):
            got = [k.decode() for k in c.hrandfield("h", 5)]
            assert len(set(got)) == 5, got
            positions = [fields.index(f) for f in got]
            assert positions == sorted(positions), (srv.name, got)
            drawn.update(got)
            pairs = c.hrandfield("h", 3, withvalues=True)
            assert len(pairs) == 6 and all(v == b"v" for v in pairs[1::2])
        # 1,500 draws over 30 fields: 50 each on average.
        assert len(drawn) == 30 and min(drawn.values()) > 15 and max(drawn.values()) < 100, drawn


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
