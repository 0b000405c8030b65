"""Streams survive restarts: after kill -9 with the append-only file, and after
BGREWRITEAOF and a restart, every stream has the same entries, last id, entries-added and
max-deleted id, and the ids generated next are still greater than every id handed out
before (the log holds XADD with the generated id, the rewrite XADD per entry plus XSETID,
as Redis 7 writes them). The rewritten file replayed into redis-server gives the same
streams."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, info_field, run_tests, wait_until  # noqa: E402
from persistence_helpers import dataset  # noqa: E402

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
            before = dataset(c)
            assert before[b"jobs"][1][0] >= 300 and before[b"emptied"][1][0] == 0
            assert before[b"emptied"][1][1] == b"50-0"
            r.kill9()
            r.start()
            c = r.client()
            assert dataset(c) == before, "the streams after an AOF restart differ"
            check_next_ids(c, before)
            live = dataset(c)
            c.bgrewriteaof()
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=30,
                       what="rewrite finished")
            assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
            r.kill9()
            r.start()
            c = r.client()
            assert dataset(c) == live, "the streams after a rewrite and restart differ"
            check_next_ids(c, live)
            live = dataset(c)
            r.stop()
            aof = os.path.join(d, "appendonly.aof")
            with RedisServer() as redis:
                with open(aof, "rb") as f:
                    p = subprocess.run(["redis-cli", "-p", str(redis.port), "--pipe"], stdin=f,
                                       capture_output=True, timeout=60)
                assert b"errors: 0" in p.stdout, p.stdout + p.stderr
                assert dataset(redis.client()) == live, "redis-server reads other streams from the file"
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
