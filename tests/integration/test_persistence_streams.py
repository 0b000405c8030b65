"""Streams survive restarts: after kill -9 with the append-only file, and after
BGREWRITEAOF and a restart, every stream has the same entries, last id, entries-added and
max-deleted id, and the ids generated next are still greater than every id handed out
before (the log holds XADD with the generated id, the rewrite XADD per entry plus XSETID,
as Redis 7 writes them). The rewritten file replayed into redis-server gives the same
streams.

Consumer groups too: groups with their last id and entries-read, every pending entry
(owner, delivery time, delivery count) and every consumer come back after a restart from
the log (XREADGROUP logged as XCLAIM ... LASTID, NOACK reads as XGROUP SETID), after a
rewrite (XGROUP CREATE ... ENTRIESREAD, XCLAIM per pending entry, XGROUP CREATECONSUMER),
and in redis-server fed the rewritten file. Consumers' seen-times are not compared: Redis
does not log them either."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, info_field, run_tests, wait_until  # noqa: E402
from persistence_helpers import dataset, groups_state  # noqa: E402

AOF = ("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "off")


def parse_id(i):
    ms, seq = i.split(b"-")
    return int(ms), int(seq)


def write_streams(c):
    ids = []
    for i in range(350):
        ids.append(c.xadd("jobs", {"n": i, "body": "x" * (i % 50)}, maxlen=300, approximate=True))
    ids.append(c.xadd("jobs", {"late": 1}, id="99999999999999-*"))
    c.xdel("jobs", ids[-2], ids[-5])
    c.xadd("exact", {"a": 1}, id="1-1")
    c.xadd("exact", {"a": 2}, id="1-*")
    c.xadd("exact", {"a": 3}, id="2-*")
    c.xtrim("exact", maxlen=2)
    c.xadd("emptied", {"f": "v"}, id="7-7")
    c.xdel("emptied", "7-7")
    c.execute_command("XSETID", "emptied", "50-0", "ENTRIESADDED", "9", "MAXDELETEDID", "40-0")
    c.xadd("minid", {"f": 1}, id="10-0")
    c.xadd("minid", {"f": 2}, id="20-0", minid="15")
    return ids


def write_groups(c):
    for i in range(1, 11):
        c.xadd("work", {"n": i}, id=f"{i}-0")
    c.xgroup_create("work", "g", id="0")
    c.xgroup_create("work", "late", id="$")
    c.xgroup_create("work", "old", id="3-0")
    c.execute_command("XGROUP", "CREATE", "work", "counted", "5-0", "ENTRIESREAD", "5")
    c.xreadgroup("g", "alice", {"work": ">"}, count=3)
    c.xreadgroup("g", "bob", {"work": ">"}, count=4)
    c.xack("work", "g", "2-0", "5-0")
    c.execute_command("XCLAIM", "work", "g", "carol", "0", "3-0", "TIME", "1000", "RETRYCOUNT", "4")
    c.execute_command("XAUTOCLAIM", "work", "g", "dave", "0", "6-0", "COUNT", "1")
    c.xreadgroup("old", "erin", {"work": ">"}, count=2, noack=True)
    c.xreadgroup("counted", "frank", {"work": ">"})
    c.xgroup_createconsumer("work", "g", "idle")
    c.xgroup_createconsumer("work", "old", "gone")
    c.xgroup_delconsumer("work", "old", "gone")
    c.xgroup_create("work", "doomed", id="0")
    c.xreadgroup("doomed", "x", {"work": ">"}, count=1)
    c.xgroup_destroy("work", "doomed")
    c.xgroup_create("work", "reset", id="0")
    c.xreadgroup("reset", "y", {"work": ">"}, count=5)
    c.xgroup_setid("work", "reset", id="2-0")
    c.xgroup_create("fresh", "g", id="$", mkstream=True)


def groups_state_masked(groups):
    return {k: [g[:2] + (None,) + g[3:] for g in v] for k, v in groups.items()}


def check_next_ids(c, before):
    # A generated id is greater than every id the stream had.
    for key in (b"jobs", b"exact", b"emptied", b"minid"):
        last = parse_id(before[key][1][1])
        new = parse_id(c.xadd(key, {"after": "restart"}))
        assert new > last, (key, new, last)


def test_streams_survive_kill9_and_rewrite():
    d = tempfile.mkdtemp(prefix="respq-aof-streams-")
    try:
        with Respq(*AOF, dir=d) as r:
            c = r.client()
            write_streams(c)
            write_groups(c)
            groups = groups_state(c)
            assert [g[0] for g in groups[b"work"]] == [b"counted", b"g", b"late", b"old", b"reset"]
            assert groups[b"work"][1][3] == 5 and len(groups[b"work"][1][5]) == 5  # g: 5 pending, 5 consumers
            before = dataset(c)
            assert before[b"jobs"][1][0] >= 300 and before[b"emptied"][1][0] == 0
            assert before[b"emptied"][1][1] == b"50-0"
            r.kill9()
            r.start()
            c = r.client()
            assert dataset(c) == before, "the streams after an AOF restart differ"
            # The log does not carry entries-read (Redis's XCLAIM ... LASTID neither):
            # test_group_counters_after_restart_as_redis compares those with Redis.
            assert groups_state(c, counters=False) == groups_state_masked(groups), \
                "the consumer groups after an AOF restart differ"
            check_next_ids(c, before)
            live = dataset(c)
            groups = groups_state(c)
            c.bgrewriteaof()
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=30,
                       what="rewrite finished")
            assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
            r.kill9()
            r.start()
            c = r.client()
            assert dataset(c) == live, "the streams after a rewrite and restart differ"
            assert groups_state(c) == groups, "the consumer groups after a rewrite and restart differ"
            check_next_ids(c, live)
            live = dataset(c)
            groups = groups_state(c)
            r.stop()
            aof = os.path.join(d, "appendonly.aof")
            with RedisServer() as redis:
                with open(aof, "rb") as f:
                    p = subprocess.run(["redis-cli", "-p", str(redis.port), "--pipe"], stdin=f,
                                       capture_output=True, timeout=60)
                assert b"errors: 0" in p.stdout, p.stdout + p.stderr
                assert dataset(redis.client()) == live, "redis-server reads other streams from the file"
                assert groups_state(redis.client()) == groups, "redis-server reads other groups from the file"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_group_counters_after_restart_as_redis():
    """After a restart from the log, groups' entries-read and lag (which the log does not
    carry) and the pending entries (times aside: they are each server's clock) are what
    redis-server has after reloading its own log of the same commands."""
    d = tempfile.mkdtemp(prefix="respq-aof-groups-")
    try:
        with RedisServer("--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes") as redis:
            rc = redis.client()
            write_groups(rc)
            rc.execute_command("DEBUG", "LOADAOF")
            expected = groups_state(rc, times=False)
        with Respq(*AOF, dir=d) as r:
            write_groups(r.client())
            r.kill9()
            r.start()
            assert groups_state(r.client(), times=False) == expected
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
