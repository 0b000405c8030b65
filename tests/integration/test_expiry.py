"""Key expiry over real time: an expired key is never returned (lazy expiry) and untouched
keys are removed by the server's cron (active expiry), both counted in INFO stats
expired_keys; INFO keyspace expires= and avg_ttl=; the AOF holds absolute deadlines (as
Redis 7.0 propagates them: PEXPIREAT, SET ... PXAT, DEL for a deadline already past, SET
... KEEPTTL for INCRBYFLOAT), so that a restart, a restart after BGREWRITEAOF and a key
that expired while the server was down all come out right; the mirror carries deadlines
to a real Redis and deletes there what expires here; phpredis lock idioms; WATCH on a key
that expires, compared with redis-server.

Timing is generous everywhere: waits poll (wait_until) with long timeouts, and no
assertion depends on how fast the server answers. Reply bytes and error texts are
compared with Redis by tests/compat/scripts/expire.txt. With RESPQ_TEST_TARGET=redis
everything but the mirror runs against redis-server."""
import math
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, Monitor, RedisServer, Respq, Skip, info_field, php, run_tests,  # noqa: E402
                     wait_until)

AOF = ("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "off")
MIRROR = ("--mirror", "yes", "--http-queue", "tasks", "off")
FAR = 4102444800            # 2100-01-01, in seconds
PHP_COMMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "common.php")


def now_ms():
    """The wall clock in whole milliseconds, rounded down (the server's deadlines are
    milliseconds of the same clock)."""
    return math.floor(time.time() * 1000)


def pexpiretime(client, key):
    return client.execute_command("PEXPIRETIME", key)


def keyspace(port):
    """INFO keyspace's db0 line as {keys, expires, avg_ttl} ints; {} when db0 is absent."""
    line = info_field(port, "keyspace", "db0")
    if line is None:
        return {}
    return {k: int(v) for k, v in (kv.split("=", 1) for kv in line.split(","))}


def expired_keys(port):
    return int(info_field(port, "stats", "expired_keys"))


def dump(client):
    """{key: (type, value, PEXPIRETIME)} of every key."""
    out = {}
    for k in client.keys("*"):
        t = client.type(k)
        if t == b"list":
            v = client.lrange(k, 0, -1)
        elif t == b"hash":
            v = client.hgetall(k)
        elif t == b"string":
            v = client.get(k)
        else:
            v = None
        out[k] = (t, v, pexpiretime(client, k))
    return out


class DataDir:
    def __init__(self, prefix="respq-expiry-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def __enter__(self):
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


class AofServer(Respq):
    """Respq; when a redis-server stands in for it, one that writes its rewritten AOF as
    commands (not an RDB preamble), so that the same assertions read both files."""

    def _redis_argv(self):
        return super()._redis_argv() + ["--aof-use-rdb-preamble", "no"]


# ---- the append-only file as a list of commands -------------------------------------------

def parse_commands(data, where):
    """RESP multibulk commands of an AOF -> [[bytes, ...], ...] (the whole file must parse)."""
    out, p = [], 0
    while p < len(data):
        assert data[p:p + 1] == b"*", f"{where}: no command at offset {p}: {data[p:p + 40]!r}"
        e = data.index(b"\r\n", p)
        n = int(data[p + 1:e])
        p = e + 2
        args = []
        for _ in range(n):
            assert data[p:p + 1] == b"$", f"{where}: no bulk at offset {p}: {data[p:p + 40]!r}"
            e = data.index(b"\r\n", p)
            ln = int(data[p + 1:e])
            args.append(data[e + 2:e + 2 + ln])
            assert data[e + 2 + ln:e + 4 + ln] == b"\r\n", f"{where}: bad bulk end at {e + 2 + ln}"
            p = e + 4 + ln
        out.append(args)
    return out


def aof_commands(d):
    """Every command in the server's AOF, in order: respq's dir/appendonly.aof, or Redis 7's
    appendonlydir (base then incremental files, as the manifest lists them)."""
    single = os.path.join(d, "appendonly.aof")
    if os.path.isfile(single):
        with open(single, "rb") as f:
            return parse_commands(f.read(), single)
    adir = os.path.join(d, "appendonlydir")
    manifest = [f for f in os.listdir(adir) if f.endswith(".manifest")]
    assert len(manifest) == 1, os.listdir(adir)
    files = []
    with open(os.path.join(adir, manifest[0])) as f:
        for line in f:
            w = line.split()
            files.append((0 if w[5] == "b" else 1, int(w[3]), w[1]))
    out = []
    for _, _, name in sorted(files):
        assert not name.endswith(".rdb"), f"{name}: an RDB base cannot be read as commands"
        with open(os.path.join(adir, name), "rb") as f:
            out += parse_commands(f.read(), name)
    return out


def upper(b):
    return b.upper().decode("latin-1")


def deadline_commands(cmds, key):
    """The absolute deadlines the AOF gives `key`: PEXPIREAT key ms [...] and
    SET key value ... PXAT ms ..."""
    out = []
    for c in cmds:
        name = upper(c[0])
        if name == "PEXPIREAT" and c[1] == key:
            out.append(int(c[2]))
        elif name == "SET" and c[1] == key:
            opts = [upper(a) for a in c[3:]]
            if "PXAT" in opts:
                out.append(int(c[3 + opts.index("PXAT") + 1]))
    return out


def assert_no_relative_expiry(cmds):
    """No command in the file whose effect depends on when it is replayed."""
    relative = {"EXPIRE", "PEXPIRE", "EXPIREAT", "SETEX", "PSETEX", "GETEX", "INCRBYFLOAT"}
    for c in cmds:
        name = upper(c[0])
        assert name not in relative, f"relative or non-deterministic command in the AOF: {c!r}"
        if name == "SET":
            opts = {upper(a) for a in c[3:]}
            assert not opts & {"EX", "PX", "EXAT"}, f"SET with a non-PXAT expiry in the AOF: {c!r}"


def deletes(cmds, key):
    return [c for c in cmds if upper(c[0]) in ("DEL", "UNLINK") and key in c[1:]]


# ---- lazy and active expiry ---------------------------------------------------------------

def test_an_expired_key_is_never_returned_and_is_counted_once():
    with Respq() as r:
        c = r.client()
        assert expired_keys(r.port) == 0
        assert c.set("lazy", "v", px=200) is True
        dl = pexpiretime(c, "lazy")
        t = now_ms()
        assert t - 5000 < dl <= t + 200, (dl, t)
        # Read it until it is gone: a GET sent after the deadline must not see the value.
        seen_after = []

        def gone():
            sent = now_ms()
            v = c.get("lazy")
            if sent > dl and v is not None:
                seen_after.append((sent, v))
            return v is None
        wait_until(gone, timeout=10, interval=0.005, what="the key with PX 200 to read as missing")
        assert not seen_after, f"GET sent after the deadline {dl} returned the value: {seen_after[:3]}"
        assert c.exists("lazy") == 0
        assert c.ttl("lazy") == -2 and c.pttl("lazy") == -2
        assert pexpiretime(c, "lazy") == -2
        wait_until(lambda: expired_keys(r.port) == 1, timeout=10, what="expired_keys == 1")
        assert c.keys("*") == []


def test_every_kind_of_access_sees_an_expired_key_as_missing():
    with Respq() as r:
        c = r.client()
        p = c.pipeline(transaction=False)
        p.set("s", "text", px=100)
        p.set("n", "41", px=100)
        p.rpush("l", "a", "b")
        p.pexpire("l", 100)
        p.hset("h", "f", "v")
        p.pexpire("h", 100)
        p.set("a", "abc", px=100)
        p.set("g", "v", px=100)
        p.set("keep", "v", px=100)
        p.execute()
        deadline = max(pexpiretime(c, k) for k in ("s", "n", "l", "h", "a", "g", "keep"))
        wait_until(lambda: now_ms() > deadline + 20, timeout=10, what="the deadlines to pass")
        assert c.get("s") is None
        assert c.type("s") == b"none"
        assert c.incr("n") == 1, "INCR on an expired counter starts from 0"
        assert c.ttl("n") == -1, "the new counter has no TTL"
        assert c.lrange("l", 0, -1) == []
        assert c.lpush("l", "c") == 1
        assert c.ttl("l") == -1
        assert c.hgetall("h") == {}
        assert c.append("a", "xy") == 2 and c.get("a") == b"xy"
        assert c.set("g", "new", nx=True) is True, "SET NX on an expired key succeeds"
        assert c.execute_command("SET", "keep", "new", "KEEPTTL") is True
        assert c.ttl("keep") == -1, "KEEPTTL keeps no TTL from a key that had expired"
        assert sorted(c.keys("*")) == [b"a", b"g", b"keep", b"l", b"n"]
        wait_until(lambda: expired_keys(r.port) == 7, timeout=10, what="expired_keys == 7")


def test_untouched_keys_are_removed_by_active_expiry():
    with Respq() as r:
        c = r.client()
        t0 = now_ms()   # no act:* deadline is earlier than t0 + 200
        p = c.pipeline(transaction=False)
        for i in range(200):
            p.set(f"act:{i}", "v", px=200)
        for i in range(5):
            p.set(f"ttl:{i}", "v", ex=1000)
        for i in range(3):
            p.rpush(f"plain:{i}", "x")
        p.execute()
        ks = keyspace(r.port)
        if now_ms() < t0 + 200:   # answered before any deadline: everything still counted
            assert ks["keys"] == 208 and ks["expires"] == 205 and ks["avg_ttl"] >= 0, ks
        long_deadlines = {i: pexpiretime(c, f"ttl:{i}") for i in range(5)}
        # No command touches an act:* key from here on: only the cron can remove them.
        wait_until(lambda: c.dbsize() == 8, timeout=15, interval=0.05,
                   what="DBSIZE to fall to the 8 keys that do not expire yet")
        assert expired_keys(r.port) == 200
        ks = keyspace(r.port)
        assert ks["keys"] == 8 and ks["expires"] == 5, ks
        assert {i: pexpiretime(c, f"ttl:{i}") for i in range(5)} == long_deadlines
        assert c.keys("act:*") == []


def test_debug_set_active_expire_0_leaves_expiry_to_lookups():
    # DEBUG SET-ACTIVE-EXPIRE 0, as Redis's tests use it: keys past their deadline stay
    # (DBSIZE counts them) until a command looks them up or active expiry is back on.
    with Respq() as r:
        c = r.client()
        assert c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") in (b"OK", "OK", True)
        for i in range(20):
            c.set(f"k:{i}", "v", px=50)
        time.sleep(0.6)   # several cron ticks past every deadline
        assert c.dbsize() == 20
        assert c.get("k:0") is None and c.dbsize() == 19   # a lookup removes its key
        assert c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1") in (b"OK", "OK", True)
        wait_until(lambda: c.dbsize() == 0, timeout=15, interval=0.05,
                   what="active expiry to remove the other 19 keys")
        assert expired_keys(r.port) == 20


def test_info_keyspace_counts_keys_with_a_ttl_and_estimates_their_average():
    with Respq() as r:
        c = r.client()
        assert keyspace(r.port) == {}, "no db0 line for an empty database"
        c.set("a", "v")
        c.set("b", "v", ex=1000)
        c.rpush("c", "x")
        c.expire("c", 2000)
        c.hset("d", "f", "v")
        c.execute_command("EXPIREAT", "d", FAR)
        ks = keyspace(r.port)
        assert ks["keys"] == 4 and ks["expires"] == 3 and ks["avg_ttl"] >= 0, ks
        # avg_ttl is an estimate (in ms) kept up by the cron: eventually positive and no
        # more than the largest TTL.
        far_ms = FAR * 1000 - now_ms()
        wait_until(lambda: keyspace(r.port)["avg_ttl"] > 0, timeout=15, interval=0.05, what="avg_ttl > 0")
        assert keyspace(r.port)["avg_ttl"] <= far_ms, keyspace(r.port)
        assert c.persist("b") is True
        assert c.persist("a") is False
        ks = keyspace(r.port)
        assert ks["keys"] == 4 and ks["expires"] == 2, ks
        c.set("c", "overwritten")
        assert keyspace(r.port)["expires"] == 1
        c.delete("d")
        ks = keyspace(r.port)
        assert ks["keys"] == 3 and ks["expires"] == 0 and ks["avg_ttl"] >= 0, ks


# ---- the append-only file ---------------------------------------------------------------

def write_ttl_dataset(c):
    """Keys given deadlines in every way there is, and keys whose TTL was removed. Returns
    {key: key whose command in the AOF carries the deadline} (RENAME moves one)."""
    c.set("set:ex", "v", ex=1000)
    c.set("set:px", "v", px=1000000)
    c.set("set:exat", "v", exat=FAR)
    c.set("set:pxat", "v", pxat=FAR * 1000 + 123)
    c.set("set:get", "old")
    assert c.set("set:get", "new", ex=1000, get=True) == b"old"
    assert c.set("set:nx", "v", nx=True, px=2000000) is True
    c.setex("setex", 1000, "v")
    c.psetex("psetex", 1000000, "v")
    c.rpush("list", "a", "b")
    c.expire("list", 1000)
    c.hset("hash", "f", "v")
    c.pexpire("hash", 3000000)
    c.set("expireat", "v")
    c.execute_command("EXPIREAT", "expireat", FAR)
    c.set("pexpireat", "v")
    c.execute_command("PEXPIREAT", "pexpireat", FAR * 1000 + 999)
    c.set("opts", "v")
    assert c.execute_command("EXPIRE", "opts", 5000, "NX") == 1
    assert c.execute_command("EXPIRE", "opts", 4000, "GT") == 0
    assert c.execute_command("EXPIRE", "opts", 4000, "LT") == 1
    assert c.execute_command("PEXPIRE", "opts", 6000000, "XX", "GT") == 1
    for k, how in (("getex:ex", ("EX", 1000)), ("getex:px", ("PX", 1000000)),
                   ("getex:exat", ("EXAT", FAR)), ("getex:pxat", ("PXAT", FAR * 1000 + 7))):
        c.set(k, "v")
        assert c.execute_command("GETEX", k, *how) == b"v"
    c.set("keepttl", "v", ex=1000)
    c.execute_command("SET", "keepttl", "w", "KEEPTTL")
    c.set("float", "1.5", ex=1000)
    assert c.incrbyfloat("float", 1) == 2.5
    c.set("counter", "1", ex=1000)
    c.incr("counter")
    c.append("counter", "0")
    c.set("renamed:src", "v", ex=1000)
    c.set("renamed", "old", exat=FAR + 100)
    c.rename("renamed:src", "renamed")
    # TTLs removed: PERSIST, GETEX PERSIST, an overwrite by SET, GETSET, MSET.
    for k in ("persist", "getex:persist", "overwritten", "getset", "mset"):
        c.set(k, "v", ex=1000)
    assert c.persist("persist") is True
    assert c.execute_command("GETEX", "getex:persist", "PERSIST") == b"v"
    c.set("overwritten", "w")
    assert c.getset("getset", "w") == b"v"
    c.mset({"mset": "w"})
    # Deadlines already past: the keys are deleted at once.
    for k in ("past:expire", "past:pexpire", "past:expireat", "past:getex"):
        c.set(k, "v")
    assert c.expire("past:expire", -1) is True
    assert c.pexpire("past:pexpire", 0) is True
    assert c.execute_command("EXPIREAT", "past:expireat", 1) == 1
    assert c.execute_command("GETEX", "past:getex", "EXAT", 1) == b"v"
    assert c.set("past:set", "v", exat=1) is True
    return {b"renamed": b"renamed:src"}


def check_ttl_dataset(before):
    """The dataset write_ttl_dataset made, as Redis leaves it."""
    with_ttl = {k for k, v in before.items() if v[2] >= 0}
    assert with_ttl == {b"set:ex", b"set:px", b"set:exat", b"set:pxat", b"set:get", b"set:nx", b"setex",
                        b"psetex", b"list", b"hash", b"expireat", b"pexpireat", b"opts", b"getex:ex",
                        b"getex:px", b"getex:exat", b"getex:pxat", b"keepttl", b"float", b"counter",
                        b"renamed"}, sorted(with_ttl)
    assert {k for k, v in before.items() if v[2] == -1} == {
        b"persist", b"getex:persist", b"overwritten", b"getset", b"mset"}
    assert not any(k.startswith(b"past:") for k in before)
    assert before[b"set:exat"][2] == FAR * 1000
    assert before[b"set:pxat"][2] == FAR * 1000 + 123
    assert before[b"expireat"][2] == FAR * 1000
    assert before[b"pexpireat"][2] == FAR * 1000 + 999
    assert before[b"getex:pxat"][2] == FAR * 1000 + 7
    assert before[b"float"][1] == b"2.5" and before[b"counter"][1] == b"20"
    assert before[b"renamed"][1] == b"v" and before[b"renamed"][2] < (FAR + 100) * 1000
    for k in (b"set:ex", b"set:px", b"setex", b"psetex", b"list", b"hash", b"opts", b"keepttl", b"renamed"):
        assert now_ms() < before[k][2] < now_ms() + 7000 * 1000, (k, before[k])


def test_deadlines_are_logged_as_absolute_times_and_survive_a_restart():
    with DataDir() as d:
        with AofServer(*AOF, dir=d) as r:
            c = r.client()
            moved = write_ttl_dataset(c)
            before = dump(c)
            check_ttl_dataset(before)
            r.kill9()
            r.start()
            assert dump(r.client()) == before, "the dataset or a deadline changed over a restart"
            r.stop()
            cmds = aof_commands(d)
            assert_no_relative_expiry(cmds)
            for k, (_, _, dl) in before.items():
                if dl >= 0:
                    logged = deadline_commands(cmds, moved.get(k, k))
                    assert dl in logged, f"{k!r}: deadline {dl} not in the AOF as PEXPIREAT or SET PXAT: {logged}"
            # INCRBYFLOAT as the SET of its result, keeping the TTL.
            assert [b"SET", b"float", b"2.5", b"KEEPTTL"] in [[upper(c_[0]).encode()] + c_[1:] for c_ in cmds], \
                [c_ for c_ in cmds if b"float" in c_[1:2]]
            # Deadlines already past: DEL (or UNLINK), and nothing that could bring them back.
            for k in (b"past:expire", b"past:pexpire", b"past:expireat", b"past:getex"):
                assert deletes(cmds, k), f"no DEL of {k!r} in the AOF: {[c_ for c_ in cmds if k in c_]}"
            r.start()
            c = r.client()
            assert c.exists("past:expire", "past:pexpire", "past:expireat", "past:getex", "past:set") == 0
            assert dump(c) == before


def test_a_key_that_expires_while_the_server_is_down_is_gone_after_restart():
    with DataDir() as d:
        with AofServer(*AOF, dir=d) as r:
            c = r.client()
            c.set("short", "v", px=3000)
            c.rpush("short:list", "a")
            c.pexpire("short:list", 3000)
            c.set("long", "v", ex=1000)
            c.set("plain", "v")
            dl = max(pexpiretime(c, "short"), pexpiretime(c, "short:list"))
            long_dl = pexpiretime(c, "long")
            alive = c.exists("short", "short:list")
            alive_at_stop = now_ms() < dl - 2000    # the deadline is 3 s away: normally true
            r.stop()
            if alive_at_stop:
                # They really expire while the server is down: the file does not delete them.
                assert alive == 2
                cmds = aof_commands(d)
                assert not deletes(cmds, b"short") and not deletes(cmds, b"short:list"), cmds
            wait_until(lambda: now_ms() > dl + 200, timeout=20, interval=0.05, what="the short deadline to pass")
            r.start()
            c = r.client()
            assert c.get("short") is None and c.lrange("short:list", 0, -1) == []
            assert c.exists("short", "short:list") == 0
            assert sorted(c.keys("*")) == [b"long", b"plain"]
            wait_until(lambda: c.dbsize() == 2, timeout=10, what="DBSIZE 2 after the load")
            assert pexpiretime(c, "long") == long_dl
            assert c.ttl("plain") == -1
            if not alive_at_stop:
                print("  (slow: the short keys were close to their deadline before the stop; "
                      "whether they expired while down was not checked)")


def test_bgrewriteaof_writes_pexpireat_and_keeps_every_deadline():
    with DataDir() as d:
        with AofServer(*AOF, dir=d) as r:
            c = r.client()
            moved = write_ttl_dataset(c)
            # Churn on the same keys, which the rewrite compacts away.
            for i in range(50):
                c.expire("list", 1000 + i)
                c.persist("hash")
                c.pexpire("hash", 3000000)
            c.expire("list", 1000)
            before = dump(c)
            check_ttl_dataset(before)
            assert c.bgrewriteaof()
            wait_until(lambda: info_field(r.port, "persistence", "aof_rewrites") == "1"
                       and info_field(r.port, "persistence", "aof_rewrite_in_progress") == "0",
                       timeout=30, what="the rewrite to finish")
            assert info_field(r.port, "persistence", "aof_last_bgrewrite_status") == "ok"
            r.stop()
            cmds = aof_commands(d)
            assert_no_relative_expiry(cmds)
            for k, (_, _, dl) in before.items():
                pexpireats = [int(x[2]) for x in cmds if upper(x[0]) == "PEXPIREAT" and x[1] == k]
                if dl >= 0:
                    assert pexpireats == [dl], f"{k!r}: rewritten as {pexpireats}, deadline {dl}"
                else:
                    assert pexpireats == [], f"{k!r} has no TTL but the rewrite gives it {pexpireats}"
            assert not [x for x in cmds if upper(x[0]) == "PERSIST"], "a rewrite needs no PERSIST"
            assert moved[b"renamed"] not in {x[1] for x in cmds if len(x) > 1}, "the file was not rewritten"
            r.start()
            assert dump(r.client()) == before
            r.kill9()
            r.start()
            assert dump(r.client()) == before


# ---- the mirror to a real Redis ---------------------------------------------------------

def mirrored_deadlines(r, up, keys):
    mine = {k: pexpiretime(r.client(), k) for k in keys}
    theirs = {k: pexpiretime(up.client(), k) for k in keys}
    assert mine == theirs, f"deadlines differ: respq {mine}, upstream {theirs}"
    return mine


def test_mirror_carries_deadlines_and_deletes_what_expires_here():
    if TARGET == "redis":
        raise Skip("the Redis link is respq's own")
    from link_helpers import assert_same_keys, sidecar, wait_caught_up
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        c = r.client()
        write_ttl_dataset(c)
        wait_caught_up(r)
        mine = assert_same_keys(r, up)
        d = mirrored_deadlines(r, up, list(mine))
        assert d["set:exat"] == FAR * 1000 and d["persist"] == -1 and d["overwritten"] == -1, d
        assert d["float"] > 0 and d["renamed"] > 0, d
        assert not up.client().keys("past:*")
        # Later changes to a deadline follow.
        c.persist("set:exat")
        c.execute_command("PEXPIREAT", "persist", FAR * 1000 + 1)
        c.execute_command("EXPIRE", "list", 5000, "GT")
        c.execute_command("SET", "keepttl", "x", "KEEPTTL")
        c.set("set:ex", "plain now")
        wait_caught_up(r)
        d = mirrored_deadlines(r, up, ["set:exat", "persist", "list", "keepttl", "set:ex"])
        assert d["set:exat"] == -1 and d["persist"] == FAR * 1000 + 1 and d["set:ex"] == -1, d
        assert up.client().get("keepttl") == b"x"
        # What expires on respq is deleted upstream by respq (MONITOR on the upstream shows
        # the link's DEL; the upstream's own expiry of the key would not show there).
        with Monitor(up.port) as mon:
            c.set("exp:lazy", "v", px=300)
            c.rpush("exp:active", "a")
            c.pexpire("exp:active", 300)
            wait_caught_up(r)
            dl = max(pexpiretime(c, "exp:lazy"), pexpiretime(c, "exp:active"))
            assert mirrored_deadlines(r, up, ["exp:lazy", "exp:active"])["exp:lazy"] > 0
            wait_until(lambda: now_ms() > dl + 20, timeout=10, what="the deadlines to pass")
            assert c.get("exp:lazy") is None
            mon.wait_for(lambda line: re.search(r'"(?i:del|unlink)" "exp:lazy"', line), timeout=15)
            # exp:active is never touched on respq: the cron expires it, the mirror deletes it.
            mon.wait_for(lambda line: re.search(r'"(?i:del|unlink)" "exp:active"', line), timeout=15)
        wait_caught_up(r)
        assert up.client().exists("exp:lazy", "exp:active") == 0
        assert_same_keys(r, up)


def test_a_resync_carries_the_deadlines():
    if TARGET == "redis":
        raise Skip("the Redis link is respq's own")
    from link_helpers import assert_same_keys, sidecar, wait_caught_up
    with DataDir() as d, RedisServer() as up:
        r = Respq(*AOF, dir=d)   # not `with`: leaving it would delete the directory
        try:
            write_ttl_dataset(r.client())
            before = dump(r.client())
        finally:
            r.stop()
        # respq comes back with the link: the start resync copies keys and deadlines.
        r = sidecar(up, "n1", *AOF, *MIRROR, dir=d)
        try:
            wait_caught_up(r)
            mine = assert_same_keys(r, up)
            assert set(mine) == {k.decode() for k in before}, (sorted(mine), sorted(before))
            d_ = mirrored_deadlines(r, up, list(mine))
            assert d_ == {k.decode(): v[2] for k, v in before.items()}, d_
        finally:
            r.stop()
            r.cleanup()


# ---- phpredis ---------------------------------------------------------------------------

PHP_LOCK = r"""<?php
require '@COMMON@';
$r = connect_to((int)$argv[1]);
$r->del('lock', 'k', 'pk', 'missing', 'lock2', 'lock3');

// A lock as apps write it: SET NX EX.
eq($r->set('lock', 'owner-1', ['nx', 'ex' => 10]), true, 'set nx ex on a free lock');
eq($r->set('lock', 'owner-2', ['nx', 'ex' => 10]), false, 'set nx ex on a held lock');
eq($r->get('lock'), 'owner-1', 'the lock keeps its first owner');
$ttl = $r->ttl('lock');
check(is_int($ttl) && $ttl >= 1 && $ttl <= 10, 'ttl of the lock in 1..10: ' . show($ttl));
$pttl = $r->pttl('lock');
check(is_int($pttl) && $pttl >= 1 && $pttl <= 10000, 'pttl of the lock in 1..10000: ' . show($pttl));
eq($r->set('lock2', 'v', ['xx', 'px' => 5000]), false, 'set xx px on a missing key');
eq($r->exists('lock2'), 0, 'set xx did not create the key');

// A lock that is not released frees itself.
eq($r->set('lock3', 'a', ['nx', 'px' => 300]), true, 'set nx px 300');
$deadline = microtime(true) + 10;
while ($r->get('lock3') !== false && microtime(true) < $deadline) {
    usleep(20000);
}
eq($r->get('lock3'), false, 'the lock expired');
eq($r->set('lock3', 'b', ['nx', 'px' => 300]), true, 'an expired lock can be taken again');

// setex / psetex / expire / pexpire / persist / expireAt / pexpireAt.
eq($r->setex('k', 100, 'v'), true, 'setex');
$ttl = $r->ttl('k');
check($ttl >= 1 && $ttl <= 100, 'ttl after setex in 1..100: ' . show($ttl));
eq($r->psetex('pk', 100000, 'v'), true, 'psetex');
$pttl = $r->pttl('pk');
check($pttl >= 1 && $pttl <= 100000, 'pttl after psetex in 1..100000: ' . show($pttl));
eq($r->expire('k', 50), true, 'expire');
$ttl = $r->ttl('k');
check($ttl >= 1 && $ttl <= 50, 'ttl after expire in 1..50: ' . show($ttl));
eq($r->pexpire('k', 40000), true, 'pexpire');
$pttl = $r->pttl('k');
check($pttl >= 1 && $pttl <= 40000, 'pttl after pexpire in 1..40000: ' . show($pttl));
eq($r->expire('missing', 50), false, 'expire on a missing key');
eq($r->ttl('missing'), -2, 'ttl of a missing key');
eq($r->pttl('missing'), -2, 'pttl of a missing key');
eq($r->persist('k'), true, 'persist');
eq($r->ttl('k'), -1, 'ttl after persist');
eq($r->pttl('k'), -1, 'pttl after persist');
eq($r->persist('k'), false, 'persist without a TTL');
eq($r->expireAt('k', 4102444800), true, 'expireAt');
eq($r->rawCommand('EXPIRETIME', 'k'), 4102444800, 'EXPIRETIME after expireAt');
eq($r->pexpireAt('k', 4102444800123), true, 'pexpireAt');
eq($r->rawCommand('PEXPIRETIME', 'k'), 4102444800123, 'PEXPIRETIME after pexpireAt');
eq($r->set('k', 'v2', ['xx', 'keepttl']), true, 'set xx keepttl');
eq($r->rawCommand('PEXPIRETIME', 'k'), 4102444800123, 'keepttl kept the deadline');
eq($r->set('k', 'v3'), true, 'a plain set');
eq($r->ttl('k'), -1, 'a plain set removes the TTL');
eq($r->rawCommand('GETEX', 'k', 'EXAT', '4102444800'), 'v3', 'GETEX EXAT');
eq($r->rawCommand('EXPIRETIME', 'k'), 4102444800, 'EXPIRETIME after GETEX EXAT');
eq($r->rawCommand('EXPIRE', 'k', '10', 'NX'), 0, 'EXPIRE NX on a key with a TTL');

// Errors come back as false with Redis's text.
eq($r->setex('k', 0, 'v'), false, 'setex 0');
eq(last_error($r), "ERR invalid expire time in 'setex' command", 'setex 0 error');
$r->clearLastError();
// (phpredis itself refuses set() with 'ex' => 0 before sending it.)
eq($r->rawCommand('SET', 'k', 'v', 'EX', '0'), false, 'SET EX 0');
eq(last_error($r), "ERR invalid expire time in 'set' command", 'SET EX 0 error');
$r->clearLastError();
eq($r->get('k'), 'v3', 'the failed writes changed nothing');
eq($r->rawCommand('EXPIRETIME', 'k'), 4102444800, 'nor the deadline');

// In a transaction.
$m = $r->multi()->set('k', 'tx', ['ex' => 1000])->ttl('k')->persist('k')->ttl('k')->exec();
eq($m, [true, 1000, true, -1], 'multi with set ex, ttl, persist');
echo "ok lock\n";
"""


def test_phpredis_lock_and_ttl_calls():
    with Respq() as r:
        p = php(PHP_LOCK.replace("@COMMON@", PHP_COMMON), r.port, check=False)
        assert p.returncode == 0 and "ok lock" in p.stdout, \
            f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"


# ---- WATCH on a key that expires --------------------------------------------------------

def watch_scenario(server, kind):
    """WATCH k, then k expires (or not), then MULTI ... EXEC touching k. Returns what the
    transaction gave (its replies, or "aborted") and k's value after it.
      untouched             k expires while watched, nobody reads it
      touched-by-other      ... and another client reads it (deleting it) before EXEC
      reaped                ... and active expiry removes it before EXEC
      read-only             like untouched, with a transaction that only reads k
      long                  k does not expire before EXEC
      expired-before-watch  k had already expired when WATCH ran"""
    import redis
    c = server.client()
    other = server.client()
    c.flushall()
    ttl_ms = {"long": 1000000, "expired-before-watch": 1}.get(kind, 500)
    for _ in range(5):
        c.set("k", "v", px=ttl_ms)
        dl = pexpiretime(c, "k")
        if kind == "expired-before-watch":
            wait_until(lambda: now_ms() > dl + 20, timeout=10, what="k to expire")
        p = c.pipeline(transaction=True)
        p.watch("k")
        # Read after WATCH (PTTL writes nothing): proves k was alive when it was watched.
        alive = p.pttl("k")
        if kind == "expired-before-watch" or alive > 0:
            break
        p.reset()
    else:
        raise AssertionError("k expired before WATCH five times in a row")
    if kind not in ("long", "expired-before-watch"):
        # Wait for the deadline without touching k.
        wait_until(lambda: now_ms() > dl + 20, timeout=10, what="k to expire")
        if kind == "touched-by-other":
            assert other.get("k") is None
        elif kind == "reaped":
            # DBSIZE does not touch k: only the cron can bring it to 0.
            wait_until(lambda: other.dbsize() == 0, timeout=15, interval=0.05, what="active expiry of k")
    p.multi()
    if kind == "read-only":
        p.get("k")
    else:
        p.set("k", "new")
        p.get("k")
    try:
        res = p.execute()
    except redis.WatchError:
        res = "aborted"
    return res, c.get("k")


def test_watch_on_a_key_that_expires_behaves_as_in_redis():
    expected = {
        "untouched": ("aborted", None),
        "touched-by-other": ("aborted", None),
        "reaped": ("aborted", None),
        "read-only": ("aborted", None),
        "long": ([True, b"new"], b"new"),
        "expired-before-watch": ([True, b"new"], b"new"),
    }
    with Respq() as r, RedisServer() as ref:
        for kind, want in expected.items():
            theirs = watch_scenario(ref, kind)
            assert theirs == want, f"{kind}: redis-server gave {theirs}, the test expects {want}"
            mine = watch_scenario(r, kind)
            assert mine == theirs, f"{kind}: {r.name} gave {mine}, redis-server {theirs}"


# ---- one time per command ------------------------------------------------------------------

def test_a_transaction_sees_one_time_as_in_redis():
    """Redis fixes its time for a whole command, EXEC included: a key whose deadline passes
    while EXEC runs is still there for the rest of the transaction."""
    if TARGET == "redis":
        raise Skip("compares respq with redis-server itself")
    def run(server):
        c = server.client()
        c.flushall()
        c.set("k", "v", px=150)
        c.rpush("l", "a", "b")
        c.pexpire("l", 150)
        p = c.pipeline(transaction=True)
        p.get("k")
        p.execute_command("DEBUG", "SLEEP", "0.3")
        p.get("k")
        p.exists("k")
        p.rpush("l", "c")
        p.llen("l")
        res = p.execute()
        wait_until(lambda: c.exists("k", "l") == 0, timeout=10, what="k and l to expire after EXEC")
        return res
    with Respq("--http-queue", "tasks", "off") as r, RedisServer("--enable-debug-command", "yes") as ref:
        theirs = run(ref)
        assert theirs == [b"v", b"OK", b"v", 1, 3, 3], theirs
        mine = run(r)
        assert mine == theirs, f"{r.name}: {mine}, redis-server: {theirs}"


def test_the_record_of_tasks_in_flight_cannot_expire():
    """<queue>:inflight is what a restart recovers the tasks in flight from: an expiry on it
    would drop the records of tasks dispatched later, so it is refused."""
    if TARGET == "redis":
        raise Skip("an HTTP queue is respq's")
    with Respq("--http-queue", "jobs") as r:
        c = r.client()
        assert c.expire("jobs:inflight", 10) == 0  # no such key yet: as for any key
        c.hset("jobs:inflight", "x", "{}")
        for cmd in (("EXPIRE", "jobs:inflight", "10"), ("PEXPIREAT", "jobs:inflight", "4102444800000")):
            try:
                c.execute_command(*cmd)
                raise AssertionError(f"{cmd} was accepted")
            except Exception as e:  # redis.ResponseError
                assert "records the tasks in flight of HTTP queue 'jobs'" in str(e), e
        assert c.ttl("jobs:inflight") == -1
        c.rpush("other:inflight", "a")  # not a queue's record: an ordinary key
        assert c.expire("other:inflight", 10) == 1


if __name__ == "__main__":
    run_tests(globals())
