"""The append-only file on disk: a torn tail is repaired on start with a clear log line,
a corrupt record in the middle stops the start naming its offset, BGREWRITEAOF while
writes continue keeps every write, and redis-cli --pipe replays the file into a real
redis-server giving the same data."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, info_field, run_tests, wait_until  # noqa: E402
from persistence_helpers import Pusher, dataset  # noqa: E402

AOF = ("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "off")


class DataDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="respq-aof-files-")
        self.aof = os.path.join(self.path, "appendonly.aof")

    def __enter__(self):
        return self

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


def fill(r):
    c = r.client()
    c.rpush("q", *[f"v{i}" for i in range(50)])
    c.rpush("bin", b"\x00\r\n\xff", b"", b"x" * 70000)
    c.hset("h", mapping={"a": "1", "b": "2"})
    c.set("s", "text")
    c.lpop("q", 5)
    c.sadd("ints", *range(20))
    c.sadd("words", "a", "b", b"\x00bin")
    c.zadd("z", {"one": 1, "third": 1 / 3, "neg": -2.5e-10, "big": 1e300})
    c.zadd("bigz", {f"m{i}": i * 0.1 for i in range(300)})
    # Streams: generated ids, a deleted entry, an approximate trim, an emptied stream.
    for i in range(120):
        c.xadd("st", {"n": i, "pad": "p" * (i % 5)}, maxlen=110, approximate=True)
    c.xadd("st", {"x": "y"}, id="99999999999999-*")
    c.xdel("st", c.xrange("st", count=3)[2][0])
    c.xadd("empty", {"f": "v"}, id="5-5")
    c.xdel("empty", "5-5")
    # A script's writes reach the file as the commands it ran.
    c.eval("redis.call('rpush', KEYS[1], ARGV[1]); redis.call('sadd', KEYS[2], ARGV[1]); "
           "return redis.call('zincrby', KEYS[3], 2, ARGV[1])", 3, "q", "words", "z", "from-lua")
    return dataset(c)


def test_a_torn_tail_is_truncated_with_a_log_line_naming_the_offset():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            before = fill(r)
            r.stop()
            size = os.path.getsize(d.aof)
            with open(d.aof, "ab") as f:
                f.write(b"*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$9\r\nhalf-writ")
            r.start()
            log = r.log_text()
            assert "short read while loading the AOF file" in log, log
            assert f"Truncating the AOF appendonly.aof at offset {size}" in log, log
            assert "loaded anyway because aof-load-truncated is enabled" in log, log
            assert os.path.getsize(d.aof) == size
            assert dataset(r.client()) == before
            # Appending continues after the cut, on a record boundary.
            r.client().rpush("q", "after")
            r.kill9()
            r.start()
            assert r.client().rpop("q") == b"after"


def test_a_torn_tail_with_aof_load_truncated_no_refuses_to_start():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            fill(r)
            r.stop()
            with open(d.aof, "ab") as f:
                f.write(b"*2\r\n$4\r\nLPOP")
            r.args += ["--aof-load-truncated", "no"]
            r.start(wait=False)
            assert r.proc.wait(timeout=20) == 1
            assert "Unexpected end of file reading the append only file" in r.log_text()


def test_a_corrupt_record_in_the_middle_refuses_to_start_and_names_the_offset():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            fill(r)
            r.stop()
            data = open(d.aof, "rb").read()
            # Corrupt the header of the second record.
            second = data.index(b"*", 1)
            while data[second - 2:second] != b"\r\n":
                second = data.index(b"*", second + 1)
            broken = data[:second] + b"?" + data[second + 1:]
            with open(d.aof, "wb") as f:
                f.write(broken)
            r.start(wait=False)
            assert r.proc.wait(timeout=20) == 1, "the server must not start"
            log = r.log_text()
            assert "Bad file format reading the append only file" in log, log
            assert f"at byte offset {second}" in log, log
            assert open(d.aof, "rb").read() == broken, "a corrupt file must be left as it is"


def test_a_nul_in_a_header_near_the_end_is_corruption_not_a_cut_off_end():
    """On the network a header line holding a NUL waits for ever (Redis's strchr never
    sees its CR); in the file it is a record that does not parse. Read as a cut-off end,
    the valid records after it were dropped and the file truncated."""
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            c = r.client()
            for i in range(100):
                c.set(f"k{i}", f"v{i}")
            r.stop()
            data = open(d.aof, "rb").read()
            for corruption in (b"\x00", b"\xff"):
                at = data.index(b"k50\r\n") + 5  # the next header line: "$3" becomes "?3"
                broken = data[:at] + corruption + data[at + 1:]
                with open(d.aof, "wb") as f:
                    f.write(broken)
                r.start(wait=False)
                assert r.proc.wait(timeout=20) == 1, "the server must not start"
                log = r.log_text()
                record = data.rindex(b"*3\r\n$3\r\nSET\r\n", 0, at)
                assert f"at byte offset {record} " in log, log
                assert "Bad file format reading the append only file" in log, log
                assert "got '\\x%02x'" % corruption[0] in log, log
                assert "short read" not in log, log
                assert open(d.aof, "rb").read() == broken, "a corrupt file must be left as it is"
            with open(d.aof, "wb") as f:
                f.write(data)
            r.start()
            assert r.client().dbsize() == 100


def test_a_directory_redis_wrote_is_named_in_the_log_with_how_to_bring_it_over():
    """respq does not read Redis's multi-part AOF (appendonlydir/) nor dump.rdb: it
    starts without their data, and the log says so instead of nothing."""
    with DataDir() as d:
        os.mkdir(os.path.join(d.path, "appendonlydir"))
        with open(os.path.join(d.path, "dump.rdb"), "wb") as f:
            f.write(b"REDIS0010")
        with Respq(*AOF, dir=d.path) as r:
            assert r.client().dbsize() == 0
            log = r.log_text()
            assert "This directory holds Redis's data (appendonlydir/, dump.rdb), which respq does not read" in log, log
            assert "MIGRATE" in log and "aof-use-rdb-preamble no" in log, log
            # Once respq has its own AOF there, the next start loads it and says nothing more.
            r.client().set("k", "v")
            r.restart()
            assert r.client().get("k") == b"v"
            assert r.log_text().count("This directory holds Redis's data") == 1


def test_bgrewriteaof_while_writes_continue_keeps_every_write():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            c = r.client()
            # Enough data for the rewrite to take many slices (about 4 MB each).
            payload = "x" * 100
            pipe = c.pipeline(transaction=False)
            for i in range(200000):
                pipe.rpush(f"big{i % 4}", f"{i}-{payload}")
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            pushers = [Pusher(r.port, f"w{i}", key=f"big{i}", batch=8) for i in range(4)]
            stop = threading.Event()

            def churn():
                cc = r.client()
                n = 0
                while not stop.is_set():
                    cc.rpop(f"big{n % 4}")
                    cc.hset("h", f"f{n % 50}", n)
                    cc.lmove(f"big{n % 4}", f"big{(n + 1) % 4}", "RIGHT", "LEFT")
                    n += 1

            t = threading.Thread(target=churn, daemon=True)
            for p in pushers:
                p.start()
            t.start()
            time.sleep(0.3)
            size_before = int(info_field(r.port, "persistence", "aof_current_size"))
            assert c.bgrewriteaof() in (True, b"Background append only file rewriting started",
                                        "Background append only file rewriting started")
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrite_in_progress") == "1"
                       or info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=5,
                       what="rewrite started")
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=60,
                       what="rewrite finished")
            time.sleep(0.3)  # writes go on into the new file
            stop.set()
            for p in pushers:
                p.stop_flag = True
                p.join(timeout=10)
            t.join(timeout=10)
            assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
            assert not any(p.errors for p in pushers)
            live = dataset(c)
            r.kill9()
            r.start()
            assert dataset(r.client()) == live, "the dataset after restart differs from the live one"
            assert os.path.getsize(d.aof) < size_before * 2


def all_databases(r, n=16):
    return {db: dataset(r.client(db=db)) for db in range(n)}


def test_keys_in_several_databases_survive_restart_and_bgrewriteaof():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            for db in (0, 2, 3, 15):
                c = r.client(db=db)
                c.rpush("q", *[f"db{db}-{i}" for i in range(100)])
                c.set("s", f"in-{db}")
                c.hset("h", mapping={"db": str(db)})
                c.set("ttl", "x", ex=1000)
                c.sadd("st", *range(10), f"w{db}")
                c.zadd("z", {f"m{i}": i / 7 for i in range(db + 3)})
            # Large encodings (hashtable set, skiplist sorted set) in a database of their own.
            c = r.client(db=12)
            c.sadd("bigset", *[f"e{i}" for i in range(2000)])
            c.zadd("bigz", {f"e{i}": i * 1.5 for i in range(2000)})
            c.eval("redis.call('srem', KEYS[1], 'e1'); return redis.call('zrem', KEYS[2], 'e2')", 2, "bigset", "bigz")
            # A transaction that switches databases, MOVE, SWAPDB and FLUSHDB.
            with r.raw() as raw:
                for cmd in (("MULTI",), ("SET", "tx", "0"), ("SELECT", "5"), ("SET", "tx", "5"), ("EXEC",)):
                    raw.cmd(*cmd)
            r.client(db=2).move("s", 7)
            r.client().swapdb(3, 9)
            r.client(db=15).flushdb()
            before = all_databases(r)
            assert before[7][b"s"] == ("string", b"in-2") and before[9][b"s"] == ("string", b"in-3")
            assert before[5][b"tx"] == ("string", b"5") and before[0][b"tx"] == ("string", b"0")
            assert before[3] == {} and before[15] == {}
            r.kill9()
            r.start()
            assert all_databases(r) == before, "the databases after an AOF restart differ"
            assert 0 < r.client(db=9).ttl("ttl") <= 1000
            # The rewrite snapshots database by database, while writes go on in several.
            c = r.client(db=4)
            pipe = c.pipeline(transaction=False)
            for i in range(50000):
                pipe.rpush(f"big{i % 3}", f"{i}-" + "y" * 50)
            pipe.execute()
            stop = threading.Event()

            def churn():
                n = 0
                cs = [r.client(db=db) for db in (0, 4, 9)]
                while not stop.is_set():
                    cc = cs[n % 3]
                    cc.rpush(f"big{n % 3}", f"churn-{n}")
                    cc.lpop("q")
                    cc.hset("h", f"f{n % 20}", n)
                    n += 1

            t = threading.Thread(target=churn, daemon=True)
            t.start()
            time.sleep(0.2)
            r.client().bgrewriteaof()
            r.client().swapdb(6, 9)  # most likely while the snapshot is being written
            r.client().swapdb(4, 1)
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=60,
                       what="rewrite finished")
            time.sleep(0.2)
            stop.set()
            t.join(timeout=10)
            assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
            live = all_databases(r)
            assert live[6] and live[1]
            r.kill9()
            r.start()
            assert all_databases(r) == live, "the databases after a rewrite and restart differ"


def test_redis_cli_pipe_replays_the_file_into_redis_server():
    with DataDir() as d:
        with Respq(*AOF, dir=d.path) as r:
            live = fill(r)
            r.stop()
            with RedisServer() as redis:
                with open(d.aof, "rb") as f:
                    p = subprocess.run(["redis-cli", "-p", str(redis.port), "--pipe"], stdin=f,
                                       capture_output=True, timeout=60)
                assert p.returncode == 0, p.stdout + p.stderr
                assert b"errors: 0" in p.stdout, p.stdout
                assert dataset(redis.client()) == live
            # The rewritten file too.
            r.start()
            r.client().bgrewriteaof()
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1", timeout=20,
                       what="rewrite finished")
            r.stop()
            with RedisServer() as redis:
                with open(d.aof, "rb") as f:
                    p = subprocess.run(["redis-cli", "-p", str(redis.port), "--pipe"], stdin=f,
                                       capture_output=True, timeout=60)
                assert b"errors: 0" in p.stdout, p.stdout
                assert dataset(redis.client()) == live


if __name__ == "__main__":
    run_tests(globals())
