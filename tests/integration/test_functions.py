"""Redis 7.0 functions as an operator and an app meet them: libraries loaded with FUNCTION
LOAD survive a restart through the AOF and an AOF rewrite (which writes the libraries
first and leaves deleted ones behind); a runaway function is stopped by FUNCTION KILL from
another connection (SCRIPT KILL refuses it, FUNCTION KILL refuses a script), with every
reply compared with a real redis-server running the same steps; CLIENT PAUSE WRITE holds
an FCALL of a function that may write but not one of a no-writes function; redis-py and
phpredis call functions; FUNCTION DUMP and RESTORE move libraries from redis-server to
respq and back."""
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RawConn, RedisServer, Respq, info_field, run_tests, wait_busy, wait_until  # noqa: E402

AOF = ("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "off")
THRESHOLD_MS = "100"

WRITER = ("#!lua name=writer\n"
          "redis.register_function('put', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n"
          "redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end,"
          " flags={'no-writes'}, description='reads a key'}")


def lib(name, fn, body="return 1", flags=""):
    flag_part = f", flags={{{flags}}}" if flags else ""
    return (f"#!lua name={name}\n"
            f"redis.register_function{{function_name='{fn}', callback=function(keys, args) {body} end{flag_part}}}")


def library_names(c):
    return sorted(entry[1] for entry in c.execute_command("FUNCTION", "LIST"))


def test_libraries_survive_a_restart_and_an_aof_rewrite():
    with Respq(*AOF) as r:
        c = r.client()
        assert c.execute_command("FUNCTION", "LOAD", WRITER) == b"writer"
        assert c.execute_command("FUNCTION", "LOAD", lib("gone", "g1")) == b"gone"
        assert c.execute_command("FUNCTION", "LOAD", lib("flushed", "x1")) == b"flushed"
        assert c.execute_command("FUNCTION", "FLUSH") == b"OK"
        assert c.execute_command("FUNCTION", "LOAD", WRITER) == b"writer"
        assert c.execute_command("FUNCTION", "LOAD", lib("gone", "g1")) == b"gone"
        assert c.execute_command("FUNCTION", "DELETE", "gone") == b"OK"
        assert c.execute_command("FUNCTION", "LOAD", "REPLACE", lib("kept", "k1", "return 'v1'")) == b"kept"
        # In another database: the library is the server's, not the database's.
        c.execute_command("SELECT", "3")
        assert c.execute_command("FUNCTION", "LOAD", "REPLACE", lib("kept", "k1", "return 'v2'")) == b"kept"
        assert c.execute_command("FCALL", "put", "1", "key", "value") == b"OK"
        # FLUSHALL empties the keyspace, not the libraries (as Redis 7.0).
        c.execute_command("FLUSHALL")
        c.execute_command("SELECT", "0")
        assert c.execute_command("FCALL", "put", "1", "key", "again") == b"OK"

        r.restart()
        c = r.client()
        assert library_names(c) == [b"kept", b"writer"]
        assert c.execute_command("FCALL", "k1", "0") == b"v2"
        assert c.execute_command("FCALL_RO", "peek", "1", "key") == b"again"
        assert c.execute_command("FUNCTION", "LIST", "LIBRARYNAME", "writer", "WITHCODE")[0][-1] == WRITER.encode()

        assert c.execute_command("BGREWRITEAOF")
        wait_until(lambda: info_field(r.port, "persistence", "aof_rewrite_in_progress") == "0" and
                   info_field(r.port, "persistence", "aof_rewrite_scheduled") == "0",
                   timeout=30, what="the AOF rewrite to end")
        assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
        with open(os.path.join(r.dir, "appendonly.aof"), "rb") as f:
            data = f.read()
        # Rewritten: the live libraries, loaded once each, before the keys; nothing of the
        # deleted or flushed ones, nor the first version of the replaced one.
        assert data.count(b"FUNCTION") == 2, data
        assert data.index(b"FUNCTION") < data.index(b"key")
        assert b"gone" not in data and b"flushed" not in data and b"v1" not in data
        # Written after the rewrite: appended as effects.
        assert c.execute_command("FUNCTION", "LOAD", lib("later", "l1", "return 'later'")) == b"later"

        r.restart()
        c = r.client()
        assert library_names(c) == [b"kept", b"later", b"writer"]
        assert c.execute_command("FCALL", "l1", "0") == b"later"
        assert c.execute_command("FCALL", "k1", "0") == b"v2"
        assert c.get("key") == b"again"
        assert int(info_field(r.port, "memory", "number_of_libraries")) == 3
        assert int(info_field(r.port, "memory", "number_of_functions")) == 4


def test_libraries_move_between_redis_and_respq_with_dump_and_restore():
    with RedisServer() as redis, Respq(*AOF) as r:
        d, c = redis.client(), r.client()
        # From redis-server to respq: three libraries, one payload (in redis's own order).
        for code in (WRITER, lib("second", "s1", "return 'two'"), lib("big", "b1", "return '" + "x" * 500 + "'")):
            d.execute_command("FUNCTION", "LOAD", code)
        payload = d.execute_command("FUNCTION", "DUMP")
        assert c.execute_command("FUNCTION", "LOAD", lib("second", "other", "return 0")) == b"second"
        try:
            c.execute_command("FUNCTION", "RESTORE", payload)
            raise AssertionError("APPEND over a library of the same name must fail")
        except Exception as e:  # noqa: BLE001 - the server's error
            assert "Library second already exists" in str(e), e
        assert library_names(c) == [b"second"], "a refused RESTORE changes nothing"
        assert c.execute_command("FUNCTION", "RESTORE", payload, "REPLACE") == b"OK"
        assert library_names(c) == [b"big", b"second", b"writer"]
        assert c.execute_command("FCALL", "s1", "0") == b"two"
        assert c.execute_command("FCALL", "b1", "0") == b"x" * 500
        assert c.execute_command("FCALL", "put", "1", "k", "v") == b"OK"
        # Persisted: RESTORE is in the AOF.
        r.restart()
        c = r.client()
        assert library_names(c) == [b"big", b"second", b"writer"]
        assert c.execute_command("FCALL_RO", "peek", "1", "k") == b"v"
        # And back: respq's payload restores on redis-server, which then runs them.
        back = c.execute_command("FUNCTION", "DUMP")
        assert d.execute_command("FUNCTION", "RESTORE", back, "FLUSH") == b"OK"
        assert library_names(d) == [b"big", b"second", b"writer"]
        assert d.execute_command("FCALL", "b1", "0") == b"x" * 500
        # A corrupt payload is refused by both with the same text, and changes nothing.
        bad = back[:-1] + bytes([back[-1] ^ 1])
        errors = []
        for conn in (d, c):
            try:
                conn.execute_command("FUNCTION", "RESTORE", bad, "FLUSH")
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
        assert errors == ["DUMP payload version or checksum are wrong"] * 2, errors
        assert library_names(c) == [b"big", b"second", b"writer"]


def test_restore_leaves_the_libraries_that_stay_as_they_are():
    counter = "#!lua name=ctr\nlocal n = 0\nredis.register_function('inc', function() n = n + 1 return n end)"
    with RedisServer() as redis, Respq() as r:
        d, c = redis.client(), r.client()
        d.execute_command("FUNCTION", "LOAD", lib("other", "o1", "return 'o'"))
        other = d.execute_command("FUNCTION", "DUMP")
        d.execute_command("FUNCTION", "LOAD", counter)
        both = d.execute_command("FUNCTION", "DUMP")
        for conn in (d, c):
            conn.execute_command("FUNCTION", "FLUSH")
            conn.execute_command("FUNCTION", "LOAD", counter)
        steps = [("FCALL", "inc", "0"), ("FUNCTION", "RESTORE", other), ("FCALL", "inc", "0"),
                 ("FUNCTION", "RESTORE", other), ("FCALL", "inc", "0"), ("FUNCTION", "RESTORE", both),
                 ("FCALL", "inc", "0"), ("FUNCTION", "RESTORE", both, "REPLACE"), ("FCALL", "inc", "0")]
        replies = {}
        for name, conn in (("redis", d), ("respq", c)):
            out = []
            for step in steps:
                try:
                    out.append(conn.execute_command(*step))
                except Exception as e:  # noqa: BLE001 - the server's error
                    out.append(str(e))
            # Restoring both libraries onto both: the one named is the first of the
            # payload's in a table's order, which Redis seeds at random at each start.
            if out[5] in ("Library ctr already exists", "Library other already exists"):
                out[5] = "Library ctr or other already exists"
            replies[name] = out
        assert replies["respq"] == replies["redis"], replies
        # The counter went on through the RESTOREs, refused or not, until REPLACE put in a
        # fresh copy of its library.
        assert [x for x in replies["redis"] if isinstance(x, int)] == [1, 2, 3, 4, 1], replies


def test_a_library_may_register_many_functions():
    # FUNCTION LOAD has 500 ms. 50,000 functions: a duplicate check walking the names
    # registered so far (1.25 * 10^9 compares) would take seconds. Under ASan a correct
    # load of 50,000 takes 0.7 s, so that build registers 10,000.
    n = 10000 if os.environ.get("RESPQ_SANITIZED") else 50000
    code = ("#!lua name=many\nfor i = 1, %d do redis.register_function('f_' .. i, function() return i end) end" % n)
    with Respq() as r:
        c = r.client()
        assert c.execute_command("FUNCTION", "LOAD", code) == b"many"
        assert c.execute_command("FCALL", f"f_{n}", "0") == n
        assert int(info_field(r.port, "memory", "number_of_functions")) == n


class Runner:
    """Sends one command on a connection of its own in a thread; the reply is kept."""

    def __init__(self, port, *cmd):
        self.conn = RawConn(port, timeout=30)
        self.reply = None
        self.thread = threading.Thread(target=self._run, args=cmd, daemon=True)
        self.thread.start()

    def _run(self, *cmd):
        self.reply = self.conn.cmd(*cmd)

    def join(self):
        self.thread.join(20)
        assert not self.thread.is_alive(), "the caller got no answer"
        self.conn.close()
        return self.reply


SPIN = "local i = 0 while true do i = i + 1 end"


def kill_scenario(port):
    """The replies of a FUNCTION KILL session, in order; FUNCTION STATS apart (its
    duration differs from run to run)."""
    out, stats = [], []
    with RawConn(port) as c:
        out.append(c.cmd("FUNCTION", "FLUSH"))
        out.append(c.cmd("FUNCTION", "LOAD", lib("spin", "spin", "pcall(function() " + SPIN + " end) " + SPIN)))
        out.append(c.cmd("FUNCTION", "STATS"))
        runner = Runner(port, "FCALL", "spin", "1", "k", "a")
        wait_busy(port)
        out.append(c.cmd("PING"))
        out.append(c.cmd("SCRIPT", "KILL"))
        stats.append(c.cmd("FUNCTION", "STATS"))
        out.append(c.cmd("FUNCTION", "KILL"))
        out.append(runner.join())
        out.append(c.cmd("FUNCTION", "KILL"))
        # A script: FUNCTION KILL and FUNCTION STATS refuse it, SCRIPT KILL stops it.
        runner = Runner(port, "EVAL", SPIN, "0")
        wait_busy(port)
        out.append(c.cmd("PING"))
        out.append(c.cmd("FUNCTION", "KILL"))
        out.append(c.cmd("FUNCTION", "STATS"))
        out.append(c.cmd("SCRIPT", "KILL"))
        out.append(runner.join())
        out.append(c.cmd("PING"))
    return out, stats


def test_function_kill_matches_redis():
    with RedisServer("--busy-reply-threshold", THRESHOLD_MS) as redis:
        expected, _ = kill_scenario(redis.port)
    with Respq("--busy-reply-threshold", THRESHOLD_MS) as r:
        got, stats = kill_scenario(r.port)
        assert "You can try killing the script using the FUNCTION KILL command. Script name is: spin." in r.log_text()
    assert got == expected, f"respq {got}\nredis {expected}"
    assert b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n" in got
    # running_script: name, the caller's command, a duration; then the engine's counts.
    s = stats[0]
    assert s.startswith(b"*4\r\n$14\r\nrunning_script\r\n*6\r\n$4\r\nname\r\n$4\r\nspin\r\n$7\r\ncommand\r\n"
                        b"*5\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\na\r\n$11\r\nduration_ms\r\n:"), s
    assert s.endswith(b"$7\r\nengines\r\n*2\r\n$3\r\nLUA\r\n*4\r\n$15\r\nlibraries_count\r\n:1\r\n"
                      b"$15\r\nfunctions_count\r\n:1\r\n"), s


def read_reply(conn, timeout):
    conn.sock.settimeout(timeout)
    try:
        return conn.read_reply()
    except OSError:
        return None


def test_client_pause_write_holds_what_may_write():
    with Respq() as r:
        c = r.client()
        c.execute_command("FUNCTION", "LOAD", WRITER)
        c.set("key", "v")
        assert c.execute_command("CLIENT", "PAUSE", "100000", "WRITE") == b"OK"
        with RawConn(r.port) as other:
            # No-writes functions run through FCALL and FCALL_RO alike.
            assert other.cmd("FCALL", "peek", "1", "key") == b"$1\r\nv\r\n"
            assert other.cmd("FCALL_RO", "peek", "1", "key") == b"$1\r\nv\r\n"
        held = RawConn(r.port)
        held.send(RawConn.encode("FCALL", "put", "1", "key", "w"))
        unknown = RawConn(r.port)  # FCALL of no function: may replicate, as FCALL's own flags say
        unknown.send(RawConn.encode("FCALL", "nosuch", "0"))
        assert read_reply(held, 0.5) is None
        assert read_reply(unknown, 0.1) is None
        assert c.get("key") == b"v"
        assert c.execute_command("CLIENT", "UNPAUSE") == b"OK"
        assert read_reply(held, 5) == b"+OK\r\n"
        assert read_reply(unknown, 5) == b"-ERR Function not found\r\n"
        held.close()
        unknown.close()
        assert c.get("key") == b"w"


def test_redis_py_and_phpredis_call_functions():
    with Respq() as r:
        c = r.client(decode_responses=True)
        assert c.function_load(WRITER) == "writer"
        assert c.fcall("put", 1, "k", "from python") == "OK"
        assert c.fcall_ro("peek", 1, "k") == "from python"
        listed = c.function_list(library="writ*")
        assert listed[0][1] == "writer" and len(listed[0][5]) == 2
        php = ("$r = new Redis(); $r->connect('127.0.0.1', (int)$argv[1]);"
               "var_dump($r->rawCommand('FCALL', 'put', 1, 'k', 'from php'));"
               "var_dump($r->rawCommand('FCALL_RO', 'peek', 1, 'k'));"
               "var_dump($r->rawCommand('FCALL', 'nosuch', 0));"
               "var_dump($r->getLastError());")
        p = subprocess.run(["php", "-r", php, str(r.port)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split("\n")[:4] == ['bool(true)', 'string(8) "from php"', 'bool(false)',
                                            'string(22) "ERR Function not found"'], p.stdout
        assert c.function_delete("writer")
        assert c.function_list() == []


if __name__ == "__main__":
    run_tests(globals())
