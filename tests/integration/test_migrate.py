"""MIGRATE run on respq, compared with MIGRATE run on a real redis-server: each scenario
is played on both sources against the same kind of target, and the replies (byte for
byte), what the source keeps and what the target received must be the same. Covered:
one key, COPY, REPLACE, BUSYKEY, KEYS with missing keys, NOKEY, another database, time
to live carried over, every type (streams with their groups too), values over the
64 KB a write sends at once, argument errors, AUTH and AUTH2 (right and wrong), a
refused connection, a target that does not answer in time, a cached connection that
the target closed (retried once on a new one), INFO migrate_cached_sockets and its
10-second idle close, the "del" event and WATCH on the source, the AOF (the keys that
moved are logged as DEL, COPY logs nothing), passwords redacted in MONITOR and SLOWLOG,
and respq as both source and target."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Monitor, RedisServer, Respq, info_field, key_contents, keyspace_events, run_tests,  # noqa: E402
                     wait_until)


class Sources:
    """A redis-server and a respq as sources, each with a redis-server target of its own."""

    def __init__(self):
        self.procs = []
        try:
            self.redis = self._keep(RedisServer())
            self.respq = self._keep(Respq("--http-queue", "tasks", "off"))
            self.redis_target = self._keep(RedisServer())
            self.respq_target = self._keep(RedisServer())
        except Exception:
            self.__exit__()
            raise

    def _keep(self, p):
        self.procs.append(p)
        return p

    def pairs(self):
        """(source, its target) for redis-server, then for respq."""
        return [(self.redis, self.redis_target), (self.respq, self.respq_target)]

    def dump_log(self):
        self.respq.dump_log()

    def __exit__(self, *a):
        for p in reversed(self.procs):
            p.__exit__(None, None, None)


def setup():
    return Sources()


def reset(src, dst):
    for s in (src, dst):
        c = s.client()
        c.config_set("requirepass", "")
        c.flushall()


def play(srv, script, target_port):
    """Runs the commands on a raw connection to srv, "PORT" replaced by the target's port;
    the raw replies."""
    out = []
    with srv.raw() as r:
        for cmd in script:
            out.append(r.cmd(*[target_port if a == "PORT" else a for a in cmd]))
    return out


def state(srv, db=0):
    """Every key of a database: its type and value, and whether it has a TTL."""
    c = srv.client(db=db)
    return {k: (key_contents(c, k), c.pttl(k) > 0) for k in sorted(c.keys("*"))}


def compare(sources, setup_cmds, script, dbs=(0,)):
    """The script's replies and the sources' and targets' contents after it, on both."""
    seen = []
    for src, dst in sources.pairs():
        reset(src, dst)
        play(src, setup_cmds, dst.port)
        replies = play(src, script, dst.port)
        seen.append((replies, [state(src, d) for d in dbs], [state(dst, d) for d in dbs]))
    assert seen[0] == seen[1], f"redis-server {seen[0]!r}\nrespq {seen[1]!r}"
    return seen[1]


FILL = [["SET", "s", "v"], ["RPUSH", "l", "a", "b", "c"], ["SADD", "st", "x", "y"], ["ZADD", "z", "1", "a", "2.5", "b"],
        ["HSET", "h", "f", "v", "g", "w"], ["XADD", "x", "1-1", "f", "v"], ["XADD", "x", "2-1", "g", "w"],
        ["XGROUP", "CREATE", "x", "grp", "0"], ["XREADGROUP", "GROUP", "grp", "c1", "COUNT", "1", "STREAMS", "x", ">"],
        ["SET", "n", "12345"], ["SET", "t", "soon", "EX", "1000"]]


def test_one_key_copy_replace_and_busykey(sources):
    replies, src, dst = compare(sources, FILL, [
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "5000"],
        ["MIGRATE", "127.0.0.1", "PORT", "l", "0", "5000", "COPY"],
        ["MIGRATE", "127.0.0.1", "PORT", "l", "0", "5000"],            # BUSYKEY: the target has it
        ["MIGRATE", "127.0.0.1", "PORT", "l", "0", "5000", "COPY", "REPLACE"],
        ["MIGRATE", "127.0.0.1", "PORT", "nope", "0", "5000"],         # NOKEY
        ["MIGRATE", "127.0.0.1", "PORT", "t", "0", "5000"],            # its TTL goes too
    ])
    assert replies[0] == b"+OK\r\n" and replies[2].startswith(b"-ERR Target instance replied with error: BUSYKEY")
    assert replies[4] == b"+NOKEY\r\n"
    assert b"s" not in src[0] and b"l" in src[0] and dst[0][b"s"] == (("string", b"v"), False)
    assert dst[0][b"t"] == (("string", b"soon"), True) and b"t" not in src[0]


def test_every_type_and_many_keys_into_another_database(sources):
    replies, src, dst = compare(sources, FILL, [
        ["MIGRATE", "127.0.0.1", "PORT", "", "3", "5000", "KEYS", "s", "l", "st", "z", "h", "x", "n", "missing", "t"],
        ["MIGRATE", "127.0.0.1", "PORT", "", "3", "5000", "KEYS", "missing", "gone"],
    ], dbs=(0, 3))
    assert replies == [b"+OK\r\n", b"+NOKEY\r\n"]
    assert src[0] == {} and len(dst[1]) == 8, (src, dst)
    assert dst[1][b"x"][0][1][7] == [[(b"1-1", b"c1", 1)]], dst[1][b"x"]   # the pending entry


def test_large_values_over_several_writes(sources):
    big = "v" * 300_000
    fields = [a for i in range(5000) for a in (f"field:{i}", f"value:{i}" * 8)]
    replies, src, dst = compare(sources, [["SET", "big", big], ["HSET", "bh", *fields]], [
        ["MIGRATE", "127.0.0.1", "PORT", "", "0", "5000", "KEYS", "big", "bh"]])
    assert replies == [b"+OK\r\n"] and dst[0][b"big"][0][1] == big.encode() and len(dst[0][b"bh"][0][1]) == 5000


def test_argument_errors_as_redis(sources):
    replies, _, _ = compare(sources, FILL, [
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "5000", "KEYS", "l"],   # key not empty with KEYS
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "5000", "AUTH"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "5000", "AUTH2", "u"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "5000", "BOGUS"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "soon"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "zero", "5000"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0"],
        ["MIGRATE", "127.0.0.1", "PORT", "s", "0", "0"],                  # timeout 0: 1000 ms
        ["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "COPY", "AUTH2", "u", "p", "KEYS", "a", "b"],
        ["COMMAND", "GETKEYSANDFLAGS", "MIGRATE", "h", "1", "k", "0", "5"],
        ["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "5", "KEYS", "a"],
    ])
    assert all(r.startswith(b"-") for r in replies[:7]), replies
    assert replies[7] == b"+OK\r\n"


def test_auth_and_auth2_right_and_wrong(sources):
    for src, dst in sources.pairs():
        reset(src, dst)
    outcomes = []
    for src, dst in sources.pairs():
        c = src.client()
        c.rpush("list", "a", "b")
        c.set("k", "v")
        c.set("k2", "v2")
        dst.client().config_set("requirepass", "s3cret")
        outcomes.append(play(src, [
            ["MIGRATE", "127.0.0.1", "PORT", "list", "0", "5000", "AUTH", "s3cret"],
            ["MIGRATE", "127.0.0.1", "PORT", "k", "0", "5000", "AUTH", "wrong"],
            ["MIGRATE", "127.0.0.1", "PORT", "k", "0", "5000", "AUTH2", "default", "s3cret"],
            ["MIGRATE", "127.0.0.1", "PORT", "k2", "0", "5000"],   # the cached connection is authenticated
        ], dst.port))
        d = dst.client(password="s3cret")
        outcomes.append((sorted(c.keys("*")), d.lrange("list", 0, -1), d.get("k"), d.get("k2")))
        d.config_set("requirepass", "")
    assert outcomes[0] == outcomes[2] and outcomes[1] == outcomes[3], outcomes
    # As Redis: a wrong AUTH on the connection the right one opened is refused, and the
    # RESTORE after it still runs there (the connection stays authenticated), so the
    # source keeps "k" and the AUTH2 attempt then meets BUSYKEY.
    assert outcomes[2][0] == b"+OK\r\n" and b"WRONGPASS" in outcomes[2][1], outcomes[2]
    assert b"BUSYKEY" in outcomes[2][2] and outcomes[2][3] == b"+OK\r\n", outcomes[2]
    assert outcomes[3] == ([b"k"], [b"a", b"b"], b"v", b"v2"), outcomes[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_and_a_target_that_does_not_answer(sources):
    closed = free_port()
    results = []
    for src, dst in sources.pairs():
        reset(src, dst)
        c = src.client()
        c.set("k", "v")
        refused = play(src, [["MIGRATE", "127.0.0.1", str(closed), "k", "0", "500"]], dst.port)
        # The target busy for 3 s; MIGRATE waits 300 ms for it.
        with dst.raw() as busy:
            busy.send(busy.encode("DEBUG", "SLEEP", "3"))
            time.sleep(0.5)
            t0 = time.time()
            late = play(src, [["MIGRATE", "127.0.0.1", "PORT", "k", "0", "300"]], dst.port)
            took = time.time() - t0
            assert busy.read_reply() == b"+OK\r\n"
        assert took < 2.9, took
        results.append((refused, late, c.get("k")))
    assert results[0] == results[1], results
    assert results[1][0] == [b"-IOERR error or timeout writing to target instance\r\n"]
    assert results[1][1] == [b"-IOERR error or timeout reading to target instance\r\n"]
    assert results[1][2] == b"v"


def test_a_closed_cached_connection_is_retried_once(sources):
    for src, dst in sources.pairs():
        reset(src, dst)
    cached = []
    for src, dst in sources.pairs():
        c = src.client()
        c.mset({"a": "1", "b": "2"})
        assert src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, "a", "0", "5000") in (b"OK", "OK")
        cached.append(int(info_field(src.port, "stats", "migrate_cached_sockets")))
        # The target drops every client: the cached connection is closed under the source.
        dst.client().execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, "b", "0", "5000") in (b"OK", "OK")
        assert dst.client().mget("a", "b") == [b"1", b"2"] and c.keys("*") == []
    assert cached == [1, 1]
    # Unused for more than 10 seconds: closed by the cron, on both.
    for src, _ in sources.pairs():
        wait_until(lambda: int(info_field(src.port, "stats", "migrate_cached_sockets")) == 0, timeout=30,
                   interval=0.5, what="the idle cached connection closed")


def test_del_event_and_watch_on_the_source(sources):
    events = {}
    for name, (src, dst) in zip(("redis", "respq"), sources.pairs()):
        reset(src, dst)
        script = [["SET", "a", "1"], ["SET", "b", "2"], ["SET", "c", "3"],
                  ["MIGRATE", "127.0.0.1", str(dst.port), "", "0", "5000", "KEYS", "a", "b"],
                  ["MIGRATE", "127.0.0.1", str(dst.port), "c", "0", "5000", "COPY"]]
        events[name] = keyspace_events(src, script, classes="KEA")
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:del", "a") in events["redis"]
    outcomes = []
    for src, dst in sources.pairs():
        reset(src, dst)
        c = src.client()
        c.set("w", "1")
        c.set("u", "1")
        p = c.pipeline()
        p.watch("w")
        p.multi()
        p.set("w", "2")
        src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, "w", "0", "5000", "COPY")
        copy_kept = p.execute()
        p.watch("u")
        p.multi()
        p.set("u", "2")
        src.client().execute_command("MIGRATE", "127.0.0.1", dst.port, "u", "0", "5000")
        try:
            p.execute()
            moved = "committed"
        except Exception as e:  # redis-py raises WatchError
            moved = type(e).__name__
        outcomes.append((copy_kept, moved))
    assert outcomes[0] == outcomes[1] == ([True], "WatchError"), outcomes


def test_the_aof_logs_the_keys_moved_as_del(sources):
    target = sources.respq_target
    target.client().flushall()
    with Respq("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "off") as r:
        c = r.client()
        c.set("moved", "1")
        c.set("copied", "2")
        c.set("stays", "3")
        assert c.execute_command("MIGRATE", "127.0.0.1", target.port, "moved", "0", "5000") == b"OK"
        assert c.execute_command("MIGRATE", "127.0.0.1", target.port, "copied", "0", "5000", "COPY") == b"OK"
        aof = b"".join(open(os.path.join(dp, f), "rb").read() for dp, _, fs in os.walk(r.dir)
                       for f in fs if ".aof" in f and not f.endswith(".manifest"))
        assert b"MIGRATE" not in aof.upper() and b"$3\r\nDEL\r\n$5\r\nmoved\r\n" in aof, aof[-300:]
        r.restart()
        assert sorted(r.client().keys("*")) == [b"copied", b"stays"]
    assert target.client().mget("moved", "copied") == [b"1", b"2"]


def test_passwords_redacted_in_monitor_and_slowlog(sources):
    src, dst = sources.respq, sources.respq_target
    reset(src, dst)
    c = src.client()
    c.set("k", "v")
    c.config_set("slowlog-log-slower-than", "0")
    try:
        with Monitor(src.port) as m:
            try:   # no such user on the target: refused there, redacted here all the same
                c.execute_command("MIGRATE", "127.0.0.1", dst.port, "k", "0", "5000", "COPY", "AUTH2", "user1", "pw-secret")
            except Exception as e:
                assert "WRONGPASS" in str(e), e
            line = m.wait_for(lambda l: "MIGRATE" in l.upper())
        assert "pw-secret" not in line and "user1" not in line and line.count("(redacted)") == 2, line
        logged = [e for e in c.slowlog_get(20) if b"MIGRATE" in (e["command"] or b"").upper()]
        assert logged and all(b"pw-secret" not in e["command"] for e in logged), logged
    finally:
        c.config_set("slowlog-log-slower-than", "10000")


class FakeTarget:
    """A target that answers every connection with the same bytes once the request has
    come, one byte every `delay` seconds, then keeps the connection open."""

    def __init__(self, reply, delay=0.0):
        self.reply, self.delay = reply, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(65536)
            if self.delay:
                for i in range(len(self.reply)):
                    conn.sendall(self.reply[i:i + 1])
                    time.sleep(self.delay)
            else:
                conn.sendall(self.reply)
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_hostile_and_slow_targets_as_redis(sources):
    cases = [
        # (reply, delay, command): each byte within the timeout of the one before is enough
        (b"+OK\r\n+OK\r\n", 0.15, ["MIGRATE", "127.0.0.1", "PORT", "k1", "0", "600"]),
        # a bare line feed is no reply: IOERR (after one retry), the key stays
        (b"\n\n", 0, ["MIGRATE", "127.0.0.1", "PORT", "k1", "0", "300"]),
        # a line over 1023 bytes is read as two
        (b"+" + b"x" * 2000 + b"\r\n", 0, ["MIGRATE", "127.0.0.1", "PORT", "", "0", "300", "KEYS", "k1", "k2"]),
        (b"+OK\r\n-" + b"E" * 2000 + b"\r\n", 0, ["MIGRATE", "127.0.0.1", "PORT", "k1", "0", "300"]),
        (b"+OK\r\n-ERR a\x00b\r\n", 0, ["MIGRATE", "127.0.0.1", "PORT", "k1", "0", "300"]),
        # a timeout past what the clock can add
        (b"+OK\r\n+OK\r\n", 0, ["MIGRATE", "127.0.0.1", "PORT", "k2", "0", "9223372036854775807"]),
    ]
    for reply, delay, cmd in cases:
        seen = []
        for src, _ in sources.pairs():
            target = FakeTarget(reply, delay)
            try:
                c = src.client()
                c.flushall()
                c.mset({"k1": "a", "k2": "b"})
                got = play(src, [cmd], str(target.port))
                seen.append((got, sorted(c.keys("*"))))
            finally:
                target.close()
        assert seen[0] == seen[1], (reply[:40], cmd, seen)


def test_port_and_getkeys_read_as_redis(sources):
    seen = []
    for src, dst in sources.pairs():
        reset(src, dst)
        c = src.client()
        c.mset({"a": "1", "b": "2", "c": "3"})
        p = str(dst.port)
        seen.append((play(src, [
            ["MIGRATE", "127.0.0.1", p + "abc", "a", "0", "1000"],      # atoi: the port's digits
            ["MIGRATE", "127.0.0.1", p + "9", "b", "0", "1000"],        # printed into 5 characters
            ["MIGRATE", "127.0.0.1", "0x10", "c", "0", "300"],          # port 0
            ["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "5", "KEYS"],
            ["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "COPY", "KEYS"],
            ["COMMAND", "GETKEYSANDFLAGS", "MIGRATE", "h", "1", "", "0", "5", "KEYS", "x", "y"],
        ], dst.port), sorted(c.keys("*")), sorted(dst.client().keys("*"))))
    assert seen[0] == seen[1], seen
    assert seen[1][1] == [b"c"] and seen[1][2] == [b"a", b"b"], seen[1]


def test_respq_migrates_into_respq():
    with Respq("--http-queue", "tasks", "off") as a, Respq("--http-queue", "tasks", "off") as b:
        ca, cb = a.client(), b.client()
        ca.zadd("z", {"m1": 1, "m2": 2})
        ca.xadd("x", {"f": "v"}, id="5-1")
        ca.set("ttl", "x", px=60000)
        assert ca.execute_command("MIGRATE", "127.0.0.1", b.port, "", "2", "5000", "KEYS", "z", "x", "ttl") == b"OK"
        assert ca.keys("*") == []
        cb2 = b.client(db=2)
        assert cb2.zrange("z", 0, -1, withscores=True) == [(b"m1", 1.0), (b"m2", 2.0)]
        assert cb2.xrange("x") == [(b"5-1", {b"f": b"v"})]
        assert 0 < cb2.pttl("ttl") <= 60000
        assert cb.dbsize() == 0


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
