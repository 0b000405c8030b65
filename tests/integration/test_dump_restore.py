"""DUMP and RESTORE between a real redis-server 7.0 and respq: random values of every type
(strings, lists, sets, sorted sets, hashes, streams with consumer groups; small and large
encodings) dumped by one and
restored into the other, both ways, with the same contents; byte-identical payloads where
respq keeps the value as Redis does; MIGRATE run on redis-server with respq as the target
(one key, COPY, REPLACE, KEYS, another database, AUTH); hostile payloads (truncated,
changed bytes with the checksum made right, lying lengths) answered with errors while
the server lives on; the "restore" keyspace event; WATCH; restored keys surviving a
restart with the append-only file."""
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, RedisServer, Respq, keyspace_events, run_tests, wait_until  # noqa: E402
from harness import key_contents as contents  # noqa: E402
from link_helpers import eventually_same, sidecar  # noqa: E402


def setup():
    return RedisAndRespq()


def crc64(data):
    """Redis's crc64 (Jones, reflected), to make a changed payload's checksum right."""
    poly = 0x95AC9329AC4BC9B5
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def fix_crc(p):
    p = bytes(p)
    return p[:-8] + struct.pack("<Q", crc64(p[:-8]))


def random_element(rng):
    kind = rng.random()
    if kind < 0.3:
        return str(rng.choice([rng.randrange(-200, 200), rng.randrange(-(2 ** 40), 2 ** 40), rng.randrange(100000)]))
    if kind < 0.4:
        return "".join(rng.choice("ab") for _ in range(rng.choice([21, 40, 100, 300])))
    return "".join(rng.choice("abcdefghij") for _ in range(rng.choice([0, 1, 5, 10, 20, 63, 64, 65, 200])))


def random_value(rng, c, key):
    """Writes a random value at key with ordinary commands; returns (type, same_bytes):
    whether redis-server's DUMP of it must equal respq's byte for byte."""
    t = rng.choice(["string", "list", "set", "intset", "zset", "hash", "stream"])
    big = rng.random() < 0.3
    n = rng.randrange(200, 3000) if big else rng.randrange(1, 20)
    if t == "string":
        c.set(key, random_element(rng) if not big else "x" * rng.randrange(100, 20000))
        return t, True
    if t == "list":
        c.rpush(key, *[random_element(rng) for _ in range(n)])
        return t, True
    if t == "intset":
        wide = rng.choice([100, 70000, 2 ** 40])
        c.sadd(key, *[rng.randrange(-wide, wide) for _ in range(min(n, 500))])
        return "set", True
    if t == "set":
        c.sadd(key, *[random_element(rng) + "s" for _ in range(n)])
        return t, c.scard(key) == 1
    if t == "zset":
        members = {random_element(rng) + "m": rng.choice([rng.randrange(-50, 50), rng.uniform(-1e6, 1e6), 0.5,
                                                          float("inf"), float("-inf"), 1e300]) for _ in range(n)}
        c.zadd(key, members)
        return t, True
    if t == "stream":
        ids = []
        for i in range(n):
            fields = {"n": i} if rng.random() < 0.7 else {random_element(rng) + "f": random_element(rng) for _ in range(3)}
            ids.append(c.xadd(key, fields, id=f"{i // 3 + 1}-{i % 3}"))
        deleted = False
        if rng.random() < 0.3:
            c.xdel(key, *rng.sample(ids, min(len(ids), 3)))
            deleted = True
        if rng.random() < 0.5:
            c.xgroup_create(key, "g", id="0")
            c.xgroup_create(key, "h", id="$")
            c.xreadgroup("g", "alice", {key: ">"}, count=rng.randrange(1, 10))
            c.xreadgroup("g", "bob", {key: ">"}, count=rng.randrange(1, 10))
            c.xack(key, "g", ids[0])
        return t, not deleted
    fields = {random_element(rng) + "f": random_element(rng) for _ in range(n)}
    c.hset(key, mapping=fields)
    return "hash", c.hlen(key) == 1


def test_redis_dumps_restore_into_respq_and_back(pair):
    rc, qc = pair.redis.client(), pair.respq.client()
    for seed in range(6):
        rng = random.Random(seed)
        rc.flushall()
        qc.flushall()
        for i in range(40):
            key = f"k{i}"
            _, same = random_value(rng, rc, key)
            payload = rc.dump(key)
            ttl = rng.choice([0, 0, 100000])
            qc.restore(key, ttl, payload)
            assert contents(qc, key) == contents(rc, key), (seed, i)
            if ttl:
                assert 99 <= qc.ttl(key) <= 100
            back = qc.dump(key)
            if same:
                assert back == payload, (seed, i, contents(rc, key)[0])
            rc.restore(key + ":back", 0, back)
            assert contents(rc, key + ":back") == contents(rc, key), (seed, i)
            assert rc.object("encoding", key + ":back") == qc.object("encoding", key), (seed, i)
            if contents(rc, key)[0] == "stream":
                # The pending entries' delivery times and counts came along too.
                for g in rc.execute_command("XINFO", "GROUPS", key):
                    want = rc.xpending_range(key, g[1], "-", "+", 1000)
                    got = qc.xpending_range(key, g[1], "-", "+", 1000)
                    assert [(e["message_id"], e["consumer"], e["times_delivered"]) for e in got] == \
                        [(e["message_id"], e["consumer"], e["times_delivered"]) for e in want]
                    for a, b in zip(got, want):  # idle times: the same delivery time, read a moment apart
                        assert abs(a["time_since_delivered"] - b["time_since_delivered"]) < 1000


def test_respq_values_dump_into_redis(pair):
    """Values built on respq (LPUSH, deletes, a hash grown then shrunk) read back the same
    on redis-server."""
    rc, qc = pair.redis.client(), pair.respq.client()
    rng = random.Random(7)
    qc.flushall()
    rc.flushall()
    qc.lpush("l", *[random_element(rng) for _ in range(5000)])
    qc.ltrim("l", 10, 4000)
    qc.hset("h", mapping={f"f{i}": "v" * (i % 90) for i in range(300)})
    for i in range(290):
        qc.hdel("h", f"f{i}")
    qc.sadd("s", *range(600))
    qc.zadd("z", {f"m{i}": i / 3 for i in range(1000)})
    qc.set("n", 12345)
    qc.incrbyfloat("n", 0.5)
    for key in ("l", "h", "s", "z", "n"):
        rc.restore(key, 0, qc.dump(key))
        assert contents(rc, key) == contents(qc, key), key


def test_migrate_from_redis_into_respq(pair):
    rc, qc = pair.redis.client(), pair.respq.client()
    rc.flushall()
    qc.flushall()
    port = pair.respq.port
    rc.rpush("list", *range(100))
    rc.set("str", "value", px=500000)
    rc.zadd("z", {"a": 1, "b": 2})
    assert rc.execute_command("MIGRATE", "127.0.0.1", port, "list", 0, 5000) == b"OK"
    assert rc.exists("list") == 0
    assert qc.lrange("list", 0, -1) == [str(i).encode() for i in range(100)]
    assert rc.execute_command("MIGRATE", "127.0.0.1", port, "str", 0, 5000, "COPY") == b"OK"
    assert rc.get("str") == b"value" and qc.get("str") == b"value"
    assert 495000 <= qc.pttl("str") <= 500000
    # Without REPLACE the target refuses an existing key (Redis's BUSYKEY, passed on).
    try:
        rc.execute_command("MIGRATE", "127.0.0.1", port, "str", 0, 5000, "COPY")
        raise AssertionError("MIGRATE onto an existing key succeeded")
    except Exception as e:  # noqa: BLE001 - redis-py's ResponseError
        assert "BUSYKEY" in str(e), e
    rc.set("str", "newer")
    assert rc.execute_command("MIGRATE", "127.0.0.1", port, "str", 0, 5000, "REPLACE") == b"OK"
    assert qc.get("str") == b"newer"
    rc.set("a", 1)
    rc.sadd("b", "x", "y")
    assert rc.execute_command("MIGRATE", "127.0.0.1", port, "", 3, 5000, "KEYS", "a", "b", "z") == b"OK"
    q3 = pair.respq.client(db=3)
    assert q3.get("a") == b"1" and sorted(q3.smembers("b")) == [b"x", b"y"]
    assert q3.zrange("z", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0)]
    assert rc.dbsize() == 0


def test_migrate_with_auth():
    with Respq("--requirepass", "s3cret") as q, RedisServer() as r:
        rc = r.client()
        rc.hset("h", mapping={"f": "v", "g": "w"})
        assert rc.execute_command("MIGRATE", "127.0.0.1", q.port, "h", 0, 5000, "AUTH", "s3cret") == b"OK"
        assert q.client(password="s3cret").hgetall("h") == {b"f": b"v", b"g": b"w"}
        rc.set("x", 1)
        try:
            rc.execute_command("MIGRATE", "127.0.0.1", q.port, "x", 0, 5000, "AUTH", "wrong")
            raise AssertionError("MIGRATE with a wrong password succeeded")
        except Exception as e:  # noqa: BLE001
            assert "WRONGPASS" in str(e) or "invalid" in str(e), e
        assert rc.get("x") == b"1"


def hostile_variants(payload, rng):
    body = len(payload) - 10
    for cut in range(0, body, max(1, body // 40)):
        yield fix_crc(payload[:cut] + payload[body:])
    for _ in range(300):
        p = bytearray(payload)
        p[rng.randrange(body)] ^= 1 << rng.randrange(8)
        yield fix_crc(p)
    for _ in range(100):
        p = bytearray(payload)
        i = rng.randrange(body)
        p[i:i + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x80\x7f\xff\xff", b"\x00\x00\x00\x00", b"\xc3\xff"])
        yield fix_crc(p[:len(payload) - 8] + b"\0" * 8)


def test_hostile_payloads_answer_errors(pair):
    rc, qc = pair.redis.client(), pair.respq.client()
    rng = random.Random(3)
    rc.flushall()
    qc.flushall()
    rc.rpush("l", *[random_element(rng) for _ in range(300)])
    rc.zadd("z", {f"m{i}": i * 1.5 for i in range(50)})
    rc.hset("h", mapping={f"f{i}": f"v{i}" for i in range(20)})
    rc.sadd("i", *range(40))
    rc.set("s", "abc" * 50)
    for i in range(30):
        rc.xadd("x", {"n": i, "body": "b" * (i % 7)}, id=f"{i + 1}-0")
    rc.xgroup_create("x", "g", id="0")
    rc.xreadgroup("g", "c1", {"x": ">"}, count=5)
    rc.xreadgroup("g", "c2", {"x": ">"}, count=5)
    refused = 0
    for key in ("l", "z", "h", "i", "s", "x"):
        payload = rc.dump(key)
        for p in hostile_variants(payload, rng):
            try:
                qc.restore("target", 0, p, replace=True)
            except Exception as e:  # noqa: BLE001
                msg = str(e)
                assert msg in ("Bad data format", "DUMP payload version or checksum are wrong") or \
                    msg.startswith("Bad data format:"), msg
                refused += 1
                assert qc.exists("target") == 0  # never a partly created key
                continue
            qc.delete("target")
    assert refused > 500
    assert qc.ping()
    # Lengths that claim far more than the payload holds.
    for body in (b"\x00\x81\x00\x00\x00\x10\x00\x00\x00\x00", b"\x01\x81\x7f\xff\xff\xff\xff\xff\xff\xff",
                 b"\x12\x80\xff\xff\xff\xff", b"\x00\xc3\x01\x80\xff\xff\xff\xff\x00",
                 b"\x10\x80\xff\xff\xff\xf0" + b"\x00" * 20):
        p = fix_crc(body + b"\x0a\x00" + b"\0" * 8)
        try:
            qc.restore("target", 0, p)
            raise AssertionError(f"accepted {body!r}")
        except Exception as e:  # noqa: BLE001
            assert str(e) == "Bad data format", e
    assert qc.ping()


def test_restore_event_and_watch_match_redis(pair):
    rc = pair.redis.client()
    rc.flushall()
    rc.rpush("src", "a", "b")
    payload = rc.dump("src")
    script = [["SET", "k", "old"], ["RESTORE", "k", "0", payload, "REPLACE"], ["RESTORE", "n", "100000", payload],
              ["RESTORE", "n", "1", payload, "ABSTTL", "REPLACE"]]
    events = {name: keyspace_events(srv, script) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
    assert events["respq"] == events["redis"], events
    assert ("__keyevent@0__:restore", "k") in events["redis"]
    qc = pair.respq.client()
    qc.set("w", "x")
    with qc.pipeline() as p:
        p.watch("w")
        pair.respq.client().restore("w", 0, payload, replace=True)
        p.multi()
        p.get("w")
        try:
            p.execute()
            raise AssertionError("EXEC ran after RESTORE changed a watched key")
        except Exception as e:  # noqa: BLE001 - WatchError
            assert "Watched" in type(e).__name__ or "watched" in str(e).lower(), e


def test_restore_is_a_write_for_maxmemory_and_client_pause(pair):
    """Over maxmemory RESTORE is refused with Redis's OOM error (it may grow memory), and
    under CLIENT PAUSE WRITE it waits for the pause to end, as on redis-server."""
    for srv in (pair.redis, pair.respq):
        c = srv.client()
        c.flushall()
        c.set("src", "x" * 100)
        payload = c.dump("src")
        c.config_set("maxmemory", 1)
        try:
            c.restore("new", 0, payload)
            raise AssertionError(f"{srv.name}: RESTORE ran over maxmemory")
        except Exception as e:  # noqa: BLE001
            assert "command not allowed when used memory > 'maxmemory'" in str(e), (srv.name, e)
        finally:
            c.config_set("maxmemory", 0)
        assert c.exists("new") == 0
        c.execute_command("CLIENT", "PAUSE", 300, "WRITE")
        t0 = time.time()
        srv.client().restore("new", 0, payload)
        assert time.time() - t0 >= 0.2, srv.name
        assert c.get("new") == b"x" * 100


def test_restored_keys_survive_a_restart_with_the_aof():
    with RedisServer() as r, Respq("--appendonly", "yes", "--appendfsync", "always") as q:
        rc, qc = r.client(), q.client()
        rng = random.Random(11)
        keys = []
        for i in range(30):
            random_value(rng, rc, f"k{i}")
            qc.restore(f"k{i}", rng.choice([0, 1000000]), rc.dump(f"k{i}"))
            keys.append(f"k{i}")
        qc.restore("k0", 0, rc.dump("k1"), replace=True)
        qc.restore("gone", 1, rc.dump("k2"), absttl=True)
        before = {k: (contents(qc, k), qc.pexpiretime(k)) for k in keys}
        q.restart()
        qc = q.client()
        after = {k: (contents(qc, k), qc.pexpiretime(k)) for k in keys}
        assert after == before
        assert qc.exists("gone") == 0
        qc.execute_command("BGREWRITEAOF")
        wait_until(lambda: qc.info("persistence")["aof_rewrite_in_progress"] == 0, timeout=30)
        q.restart()
        qc = q.client()
        assert {k: (contents(qc, k), qc.pexpiretime(k)) for k in keys} == before


def test_restore_is_mirrored_upstream():
    """With the mirror on, a RESTORE reaches the upstream redis-server as the same value
    (its TTL as the absolute deadline), and so does an already expired one (a DEL)."""
    with RedisServer() as src, RedisServer() as up, sidecar(up, "n1", "--mirror", "yes", "--http-queue", "tasks",
                                                             "off") as q:
        sc, qc = src.client(), q.client()
        rng = random.Random(5)
        for i in range(20):
            random_value(rng, sc, f"k{i}")
            qc.restore(f"k{i}", rng.choice([0, 1000000]), sc.dump(f"k{i}"))
        qc.restore("k0", 1, sc.dump("k1"), absttl=True, replace=True)
        mine = eventually_same(q, up)
        assert "k0" not in mine and "k1" in mine
        uc = up.client()
        for i in range(1, 20):
            assert contents(uc, f"k{i}") == contents(qc, f"k{i}")
            assert abs(uc.pexpiretime(f"k{i}") - qc.pexpiretime(f"k{i}")) <= 0


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
