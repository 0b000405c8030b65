"""SORT and SORT_RO against a real redis-server beyond the reply bytes the compat script
compares (tests/compat/scripts/sort.txt): the keyspace events of STORE, WATCH on the
destination and on the sorted key, a BLPOP served by a STORE that creates its list, and
the stored list surviving a restart from the AOF."""
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, Respq, keyspace_events, run_tests, wait_blocked  # noqa: E402


def setup():
    return RedisAndRespq()


def test_keyspace_events_match_redis(pair):
    script = [["RPUSH", "l", "3", "1", "2"], ["SORT", "l", "STORE", "d"], ["SORT", "nokey", "STORE", "d"],
              ["SORT", "nokey"], ["SORT_RO", "nokey"], ["SORT", "l", "BY", "w_*", "GET", "o_*"],
              ["SORT", "l", "STORE", "d2"], ["SORT", "l", "LIMIT", "0", "0", "STORE", "d2"]]
    events = {name: keyspace_events(srv, script) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:sortstore", "d") in events["redis"]


def test_a_store_over_an_expired_destination_expires_it_first_as_redis(pair):
    # The destination's deadline has passed (respq's active expiry off, so no cycle removed
    # it): storing over it tells "expired", then "new", as Redis's write lookup does (and
    # as Redis's own expiry cycle does if it runs first: DEBUG is off in that redis-server).
    script = [["DEBUG", "SET-ACTIVE-EXPIRE", "0"], ["SADD", "o", "a"], ["ZADD", "z", "1", "a"]]
    for i, store in enumerate([["SINTERSTORE", "k0", "o"], ["ZUNIONSTORE", "k1", "1", "z"],
                               ["ZRANGESTORE", "k2", "z", "0", "-1"], ["BITOP", "OR", "k3", "o2"],
                               ["SORT", "o", "ALPHA", "STORE", "k4"]]):
        script += [["SET", f"k{i}", "v", "PX", "1"], ["SET", "o2", "x"], ["sleep", 0.01], store]
    script.append(["DEBUG", "SET-ACTIVE-EXPIRE", "1"])
    events = {name: keyspace_events(srv, script, "KEAn") for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:expired", "k0") in events["redis"]


def test_watch_sees_the_destination_not_the_source(pair):
    for srv in (pair.respq, pair.redis):
        c = srv.client()
        c.flushall()
        c.rpush("l", 2, 1)
        for watched, aborted in (("dst", True), ("l", False)):
            p = c.pipeline(transaction=True)
            p.watch(watched)
            srv.client().sort("l", store="dst")
            p.multi()
            p.ping()
            try:
                p.execute()
                got = False
            except Exception:  # noqa: BLE001 - WatchError: the transaction was aborted
                got = True
            assert got == aborted, (srv, watched)


def test_a_store_that_creates_a_list_serves_blpop(pair):
    c = pair.respq.client()
    c.flushall()
    c.rpush("src", "b", "a")
    got = {}
    t = threading.Thread(target=lambda: got.update(v=pair.respq.client().blpop(["made"], timeout=5)))
    t.start()
    wait_blocked(pair.respq.port, 1)
    assert c.sort("src", alpha=True, store="made") == 2
    t.join(5)
    assert got["v"] == (b"made", b"a") and c.lrange("made", 0, -1) == [b"b"]


def test_stored_lists_survive_a_restart_from_the_aof():
    with Respq("--http-queue", "tasks", "off", "--appendonly", "yes") as r:
        c = r.client()
        c.sadd("s", "z", "x", "y")
        c.mset({"w_x": 3, "w_y": 1, "w_z": 2})
        assert c.sort("s", by="w_*", store="byw") == 3
        assert c.sort("s", by="nosort", store="fixed") == 3  # a set BY a constant stored: ALPHA
        r.restart()
        c = r.client()
        assert c.lrange("byw", 0, -1) == [b"y", b"z", b"x"]
        assert c.lrange("fixed", 0, -1) == [b"x", b"y", b"z"]


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
