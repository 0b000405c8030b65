"""Keyspace notifications (notify-keyspace-events), compared with redis-server 7.0: the
same commands, run one by one on both servers, publish the same events on the same
channels in the same order (__keyspace@<db>__:<key> and __keyevent@<db>__:<event>), for
every class: generic, string, list, set, hash, sorted set, stream, expired, new keys and
key misses. A blocked client served by a push, a script's calls and a transaction's
commands notify as they run. The setting reads back as Redis writes it, and with it off
nothing is published."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, run_tests  # noqa: E402

# Run in order on one connection (database 0 unless SELECTed); every reply is compared too.
SCRIPT = [
    # generic
    ("SET", "k", "v"), ("DEL", "k", "nokey"), ("SET", "a", "1"), ("RENAME", "a", "b"), ("RENAMENX", "b", "b"),
    ("SET", "c", "1"), ("RENAME", "b", "c"), ("COPY", "c", "d"), ("COPY", "c", "d", "REPLACE"),
    ("COPY", "c", "d", "DB", "1"), ("MOVE", "d", "2"), ("EXPIRE", "c", "100"), ("PEXPIRE", "c", "100000"),
    ("EXPIREAT", "c", "4000000000"), ("PERSIST", "c"), ("PERSIST", "c"), ("EXPIRE", "c", "-1"),
    ("EXPIRE", "nokey", "10"), ("UNLINK", "d"),
    # strings
    ("SET", "s", "1", "EX", "100"), ("SET", "s", "2", "KEEPTTL"), ("SET", "s", "3", "NX"), ("SETNX", "s2", "x"),
    ("SETEX", "s3", "100", "v"), ("PSETEX", "s4", "100000", "v"), ("GETSET", "s", "4"), ("MSET", "m1", "1", "m2", "2"),
    ("MSETNX", "m3", "3", "m1", "x"), ("MSETNX", "m4", "4", "m5", "5"), ("INCR", "n"), ("INCRBY", "n", "5"),
    ("DECR", "n"), ("DECRBY", "n", "2"), ("INCRBYFLOAT", "f", "1.5"), ("APPEND", "s", "x"), ("APPEND", "ap", "y"),
    ("SETRANGE", "s", "1", "zz"), ("SETRANGE", "sr", "0", ""), ("SETRANGE", "sr", "2", "q"), ("GETDEL", "sr"),
    ("GETEX", "s", "EX", "100"), ("GETEX", "s", "PERSIST"), ("GETEX", "s", "PERSIST"), ("GETEX", "s2", "PXAT", "1"),
    ("SET", "g", "v", "GET"), ("SET", "g", "w", "XX", "GET"),
    # lists
    ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "nol", "x"), ("RPUSHX", "l", "d"),
    ("LINSERT", "l", "BEFORE", "a", "z"), ("LINSERT", "l", "BEFORE", "nothere", "z"), ("LSET", "l", "0", "y"),
    ("LREM", "l", "0", "nothere"), ("LREM", "l", "1", "y"), ("LPOP", "l"), ("RPOP", "l", "2"), ("LPOP", "l", "0"),
    ("RPUSH", "l", "1", "2", "3", "4"), ("LTRIM", "l", "1", "-1"), ("LTRIM", "l", "5", "6"),
    ("RPUSH", "src", "1", "2"), ("RPOPLPUSH", "src", "dst"), ("LMOVE", "src", "dst", "LEFT", "RIGHT"),
    ("LMOVE", "dst", "dst", "LEFT", "RIGHT"), ("LMPOP", "2", "nol", "dst", "RIGHT", "COUNT", "5"),
    ("RPUSH", "bl", "x"), ("BLPOP", "bl", "0"), ("RPUSH", "bl", "x", "y"), ("BRPOP", "bl", "0"),
    ("BLMOVE", "bl", "bl2", "LEFT", "LEFT", "0"), ("RPUSH", "bl", "q"), ("BLMPOP", "0", "1", "bl", "LEFT"),
    ("LRANGE", "nol", "0", "-1"), ("LLEN", "nol"),
    # sets
    ("SADD", "st", "a", "b", "c"), ("SADD", "st", "a"), ("SREM", "st", "nothere"), ("SREM", "st", "a"),
    ("SMOVE", "st", "st2", "b"), ("SMOVE", "st", "st2", "nothere"), ("SMOVE", "st", "st2", "c"),
    ("SADD", "x1", "1", "2", "3"), ("SADD", "x2", "2", "3", "4"), ("SINTERSTORE", "x3", "x1", "x2"),
    ("SUNIONSTORE", "x3", "x1", "x2"), ("SDIFFSTORE", "x3", "x1", "x2"), ("SINTERSTORE", "x3", "x1", "nos"),
    ("SINTERSTORE", "x3", "x1", "nos"), ("SPOP", "x2", "10"), ("SADD", "one", "m"), ("SPOP", "one"),
    ("SMEMBERS", "nos"), ("SISMEMBER", "nos", "a"),
    # hashes
    ("HSET", "h", "f", "1", "g", "2"), ("HSET", "h", "f", "1"), ("HSETNX", "h", "f", "x"), ("HSETNX", "h", "n", "x"),
    ("HMSET", "h", "m", "1"), ("HINCRBY", "h", "f", "2"), ("HINCRBYFLOAT", "h", "g", "0.5"), ("HDEL", "h", "nothere"),
    ("HDEL", "h", "f", "g", "n"), ("HDEL", "h", "m"), ("HGET", "noh", "f"), ("HGETALL", "noh"),
    # sorted sets
    ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), ("ZADD", "z", "1", "a"), ("ZADD", "z", "XX", "5", "a"),
    ("ZADD", "z", "NX", "9", "a"), ("ZINCRBY", "z", "1", "b"), ("ZADD", "z", "INCR", "1", "c"), ("ZREM", "z", "nothere"),
    ("ZREM", "z", "a"), ("ZREMRANGEBYSCORE", "z", "100", "200"), ("ZREMRANGEBYSCORE", "z", "0", "3"),
    ("ZADD", "z", "1", "e", "2", "f"), ("ZREMRANGEBYRANK", "z", "0", "0"), ("ZREMRANGEBYLEX", "z", "-", "+"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "5"), ("ZPOPMIN", "nz"),
    ("ZADD", "z1", "1", "a", "2", "b"), ("ZADD", "z2", "1", "b", "3", "c"), ("ZUNIONSTORE", "z3", "2", "z1", "z2"),
    ("ZINTERSTORE", "z3", "2", "z1", "z2"), ("ZDIFFSTORE", "z3", "2", "z1", "z2"), ("ZINTERSTORE", "z3", "2", "z1", "nz"),
    ("ZRANGESTORE", "z4", "z1", "0", "-1"), ("ZRANGESTORE", "z4", "nz", "0", "-1"), ("ZMPOP", "1", "z1", "MIN"),
    ("ZADD", "bz", "1", "a"), ("BZPOPMIN", "bz", "0"), ("ZADD", "bz", "1", "a", "2", "b"), ("BZMPOP", "0", "1", "bz", "MAX", "COUNT", "5"),
    ("ZSCORE", "nz", "a"), ("ZRANGE", "nz", "0", "-1"),
    # streams
    ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "v"), ("XADD", "x", "MAXLEN", "1", "3-1", "f", "v"),
    ("XADD", "nx", "NOMKSTREAM", "*", "f", "v"), ("XTRIM", "x", "MAXLEN", "5"), ("XADD", "x", "4-1", "f", "v"),
    ("XTRIM", "x", "MAXLEN", "1"), ("XDEL", "x", "1-1"), ("XDEL", "x", "4-1"), ("XSETID", "x", "9-9"),
    ("XGROUP", "CREATE", "x", "g", "0"), ("XGROUP", "CREATE", "xs", "g", "$", "MKSTREAM"),
    ("XGROUP", "SETID", "x", "g", "0"), ("XGROUP", "CREATECONSUMER", "x", "g", "c1"),
    ("XGROUP", "CREATECONSUMER", "x", "g", "c1"), ("XADD", "x", "10-1", "f", "v"),
    ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"), ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "x", ">"),
    ("XCLAIM", "x", "g", "c3", "0", "10-1"), ("XAUTOCLAIM", "x", "g", "c4", "0", "0"), ("XACK", "x", "g", "10-1"),
    ("XGROUP", "DELCONSUMER", "x", "g", "c1"), ("XGROUP", "DELCONSUMER", "x", "g", "nobody"),
    ("XGROUP", "DESTROY", "x", "g"), ("XGROUP", "DESTROY", "x", "g"), ("XRANGE", "nx", "-", "+"), ("XLEN", "nx"),
    # key misses: reads report them, writes, OBJECT and WATCH do not
    ("GET", "miss"), ("MGET", "miss", "s", "miss2"), ("EXISTS", "miss"), ("TYPE", "miss"), ("TTL", "miss"),
    ("STRLEN", "miss"), ("OBJECT", "ENCODING", "miss"), ("WATCH", "miss"), ("UNWATCH",), ("TOUCH", "miss"),
    ("SUNION", "miss", "x1"), ("ZCARD", "miss"), ("DEL", "miss"), ("LPOP", "miss"),
    # write commands that read a key first, as Redis's lookupKeyRead
    ("GETDEL", "miss3"), ("GETEX", "miss3"), ("GETSET", "gs", "v"), ("SET", "g2", "v", "GET"), ("COPY", "miss3", "cp"),
    ("XREAD", "STREAMS", "miss3", "0"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "miss3", ">"),
    ("XACK", "miss3", "g", "1-1"), ("XCLAIM", "miss3", "g", "c", "0", "1-1"), ("XAUTOCLAIM", "miss3", "g", "c", "0", "0"),
    ("SUNIONSTORE", "su", "miss3"), ("ZUNIONSTORE", "zu", "1", "miss3"), ("ZRANGESTORE", "zr", "miss3", "0", "-1"),
    ("SRANDMEMBER", "miss3"), ("LINDEX", "miss3", "0"), ("HINCRBY", "miss4", "f", "1"), ("RPOPLPUSH", "miss3", "x"),
    # commands without key arguments look up nothing for reading
    ("DBSIZE",), ("KEYS", "miss*"),
    # in a transaction and in a script
    ("MULTI",), ("SET", "t", "1"), ("INCR", "t"), ("DEL", "t"), ("EXEC",),
    ("EVAL", "redis.call('set', KEYS[1], 'v'); redis.call('get', KEYS[2]); return redis.call('del', KEYS[1])",
     "2", "e", "emiss"),
    # other databases
    ("SELECT", "3"), ("SET", "k3", "v"), ("DEL", "k3"), ("SELECT", "0"),
    ("FLUSHDB",), ("SWAPDB", "0", "1"),
]

PATTERN = "__key*__:*"
END = "__keyevent@15__:end-of-script"  # published last: what the listener reads up to


class Listener:
    """A connection subscribed to every keyspace channel, read raw."""

    def __init__(self, server):
        self.c = server.raw()
        self.c.cmd("PSUBSCRIBE", PATTERN)

    def read_until_end(self):
        got = []
        while True:
            kind, _, channel, message = bulks(self.c.read_reply())
            assert kind == "pmessage"
            if channel == END:
                return got
            got.append((channel, message))


def bulks(raw):
    """The bulk strings of a flat RESP array (a pub/sub message), decoded."""
    lines = raw.split(b"\r\n")
    assert lines[0][:1] in (b"*", b">"), raw
    return [lines[i].decode() for i in range(2, len(lines) - 1, 2)]


def events(server, classes, script=SCRIPT):
    """(replies, events) of running `script` with notify-keyspace-events `classes`."""
    control = server.raw()
    assert control.cmd("CONFIG", "SET", "notify-keyspace-events", classes) == b"+OK\r\n"
    listen = Listener(server)
    replies = [control.cmd(*args) for args in script]
    control.cmd("PUBLISH", END, "x")
    got = listen.read_until_end()
    return replies, got


def compare(classes, script=SCRIPT):
    with RedisServer() as redis, Respq() as r:
        want_replies, want = events(redis, classes, script)
        got_replies, got = events(r, classes, script)
    for args, w, g in zip(script, want_replies, got_replies):
        assert g == w, f"{args}: redis-server answered {w!r}, respq {g!r}"
    assert got == want, "\n".join(
        [f"events differ with {classes!r}:"] +
        [f"  {i}: redis {w!r} respq {g!r}" for i, (w, g) in
         enumerate(zip(want + [None] * (len(got) - len(want)), got + [None] * (len(want) - len(got)))) if w != g][:20])
    return want


def test_every_class_publishes_what_redis_publishes():
    want = compare("AKEnm")
    channels = {c.split(":", 1)[1] for c, _ in want if c.startswith("__keyevent@")}
    # The reference itself covers every class: one event of each, at least ("expired":
    # test_a_served_blocked_client_and_expiry_notify).
    for event in ("del", "rename_from", "copy_to", "move_to", "expire", "persist", "set", "incrby", "append",
                  "setrange", "lpush", "rpop", "linsert", "lset", "lrem", "ltrim", "sadd", "srem", "spop",
                  "sinterstore", "hset", "hdel", "hincrbyfloat", "zadd", "zincr", "zrem", "zremrangebylex",
                  "zpopmax", "zunionstore", "zrangestore", "xadd", "xtrim", "xdel", "xsetid", "xgroup-create",
                  "xgroup-createconsumer", "xgroup-delconsumer", "xgroup-destroy", "new", "keymiss"):
        assert event in channels, f"redis-server published no {event!r}: the script does not cover it"


def test_classes_filter_events_as_on_redis():
    for classes in ("KA", "EA", "Kg", "E$", "Kl", "Es", "Kh", "Ez", "Kt", "Ex", "En", "Km", "KEg$lshzxt"):
        compare(classes)


def test_a_served_blocked_client_and_expiry_notify():
    script = [("SET", "soon", "v", "PX", "1")]
    with RedisServer() as redis, Respq() as r:
        results = []
        for server in (redis, r):
            control = server.raw()
            assert control.cmd("CONFIG", "SET", "notify-keyspace-events", "KEA") == b"+OK\r\n"
            listen = Listener(server)
            waiter = server.raw()
            waiter.send(waiter.encode("BLMOVE", "q", "q2", "RIGHT", "LEFT", "0"))
            time.sleep(0.2)
            control.cmd("LPUSH", "q", "a", "b")
            assert waiter.read_reply() == b"$1\r\na\r\n"
            for args in script:
                control.cmd(*args)
            time.sleep(0.3)  # expired by the server's own cycle, or at the lookup below
            control.cmd("GET", "soon")
            control.cmd("PUBLISH", END, "x")
            results.append(listen.read_until_end())
        assert results[1] == results[0], f"redis {results[0]!r}\nrespq {results[1]!r}"
        assert ("__keyevent@0__:expired", "soon") in results[0]


def test_respq_s_own_reads_and_queue_commands():
    # INFO and TASK GET read the queues' keys (empty lists are absent keys): no "keymiss".
    # QUEUE PAUSE and RESUME publish the SET and DEL of <queue>:paused.
    with Respq() as r:
        _, got = events(r, "KEAm", [("INFO",), ("INFO", "tasks"), ("TASK", "GET", "nope"), ("QUEUE", "PAUSE", "tasks"),
                                    ("QUEUE", "RESUME", "tasks")])
    assert got == [("__keyspace@0__:tasks:paused", "set"), ("__keyevent@0__:set", "tasks:paused"),
                   ("__keyspace@0__:tasks:paused", "del"), ("__keyevent@0__:del", "tasks:paused")], got


def test_the_setting_reads_back_as_redis_writes_it_and_off_publishes_nothing():
    values = ["", "A", "KEA", "gKE", "$lshzxeKE", "Ag$lshzxeKEtmdn", "KA", "n", "Ex", "zzz", "AAm", "d", "m"]
    with RedisServer() as redis, Respq() as r:
        for server in (redis, r):
            server.answers = []
            c = server.raw()
            for v in values:
                server.answers.append((c.cmd("CONFIG", "SET", "notify-keyspace-events", v),
                                       c.cmd("CONFIG", "GET", "notify-keyspace-events")))
            server.answers.append(c.cmd("CONFIG", "SET", "notify-keyspace-events", "KEx!"))
        assert r.answers == redis.answers
        # Off: nothing on any keyspace channel.
        _, got = events(r, "", [("SET", "k", "v"), ("DEL", "k"), ("GET", "k")])
        assert got == []


if __name__ == "__main__":
    run_tests(globals())
