"""The mirror (issue 5): every write respq accepts on a mirrored key, and every PUBLISH, is
replayed on a real redis-server, in order, exactly once; it survives link cuts, upstream
restarts, backlog overflow and respq restarts, and never blocks clients."""
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, RedisServer, run_tests, wait_until  # noqa: E402
from link_helpers import (assert_same_keys, eventually_same, kill_link, link_clients, mirror_info,  # noqa: E402
                          sidecar, wait_caught_up)
from persistence_helpers import groups_state  # noqa: E402

MIRROR = ("--mirror", "yes", "--http-queue", "tasks", "off")


def test_mirror_replays_every_kind_of_write():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        c = r.client()
        c.rpush("l1", *[f"v{i}" for i in range(20)])
        c.lpush("l2", "a", "b", "c")
        c.lpop("l1")
        c.rpop("l1", 3)
        c.lrem("l1", 1, "v5")
        c.ltrim("l1", 1, 10)
        c.lset("l1", 0, "first")
        c.linsert("l2", "BEFORE", "b", "ins")
        c.lmove("l1", "l3", "LEFT", "RIGHT")
        c.rpoplpush("l2", "l3")
        c.rename("l3", "l4")
        c.set("s", "text")
        c.incr("counter")
        c.hset("h", mapping={"f1": "1", "f2": "2"})
        c.hdel("h", "f1")
        c.delete("l2")
        c.rpush("gone", "x")
        c.unlink("gone")
        p = c.pipeline(transaction=True)
        p.rpush("tx", "1", "2")
        p.lpop("tx")
        p.rpush("l4", "from-tx")
        p.execute()
        # A served blocking pop is replayed as the pop it was.
        got = []
        t = threading.Thread(target=lambda: got.append(r.client().blpop("bq", timeout=10)))
        t.start()
        wait_until(lambda: r.client().info("clients")["blocked_clients"] == 1, what="BLPOP blocked")
        c.rpush("bq", "one", "two")
        t.join()
        assert got == [(b"bq", b"one")]
        mine = eventually_same(r, up)
        assert mine["bq"] == [b"two"] and mine["tx"] == [b"2"] and "l2" not in mine, mine
        m = mirror_info(r)
        assert m["mirror_enabled"] == "1" and m["node_id"] == "n1", m
        assert int(m["applied_offset"]) == int(m["stream_offset"]) > 0, m


def test_publish_is_mirrored_in_order():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        ps = up.client().pubsub()
        ps.subscribe("news")
        wait_until(lambda: ps.get_message(timeout=0.1) is not None, what="SUBSCRIBE confirmation")
        wait_caught_up(r)
        c = r.client()
        for i in range(200):
            c.publish("news", f"m{i}")
        got = []
        deadline = time.time() + 10
        while len(got) < 200 and time.time() < deadline:
            m = ps.get_message(timeout=0.5)
            if m and m["type"] == "message":
                got.append(m["data"].decode())
        time.sleep(0.3)
        while True:
            m = ps.get_message(timeout=0.1)
            if not m:
                break
            if m["type"] == "message":
                got.append(m["data"].decode())
        assert got == [f"m{i}" for i in range(200)], got[:10]
        ps.close()


def test_mirror_keys_filter_and_start_resync():
    with RedisServer() as up:
        u = up.client()
        u.rpush("other", "stays")        # not mirrored: never touched
        u.rpush("m:stale", "old")        # mirrored but respq doesn't hold it: deleted at start
        with sidecar(up, "n1", "--mirror", "yes", "--mirror-keys", "m:*", "k1", "--http-queue", "tasks", "off") as r:
            c = r.client()
            c.rpush("m:a", "1", "2", "3")
            c.rpush("x", "p", "q")
            c.rpush("k1", "z")
            c.rpush("k2", "not mirrored")
            c.lmove("x", "m:a", "RIGHT", "LEFT")       # into a mirrored list: refreshed
            c.lmove("m:a", "x", "RIGHT", "LEFT")       # out of it: the pop
            c.delete("k1", "k2")                       # mixed DEL
            c.rename("x", "m:b")                       # renamed into the mirror
            mine = eventually_same(r, up, match=lambda k: k.startswith("m:") or k == "k1")
            assert mine == {"m:a": [b"q", b"1", b"2"], "m:b": [b"3", b"p"]}, mine
            # ... and the unmirrored key on the upstream is untouched.
            assert u.lrange("other", 0, -1) == [b"stays"]
            assert not u.exists("m:stale", "k2", "x")


def test_mirror_converges_under_repeated_link_kills():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        wait_caught_up(r)
        stop = threading.Event()
        errors = []
        keys = [f"q{i}" for i in range(6)]

        def producer(seed):
            rng = random.Random(seed)
            c = r.client()
            n = 0
            try:
                while not stop.is_set():
                    k, k2 = rng.choice(keys), rng.choice(keys)
                    op = rng.randrange(7)
                    if op <= 2:
                        c.lpush(k, *[f"{seed}-{n}-{j}" for j in range(rng.randint(1, 3))])
                    elif op == 3:
                        c.rpop(k)
                    elif op == 4:
                        c.lmove(k, k2, "RIGHT", "LEFT")
                    elif op == 5:
                        p = c.pipeline(transaction=True)
                        p.rpoplpush(k, k2)
                        p.lrem(k2, 1, f"{seed}-{n - 1}-0")
                        p.execute()
                    else:
                        c.ltrim(k, 0, 200)
                    n += 1
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        kills = [0]

        def killer():
            rng = random.Random(7)
            while not stop.is_set():
                time.sleep(rng.uniform(0.05, 0.15))
                kills[0] += kill_link(up)

        threads = [threading.Thread(target=producer, args=(s,)) for s in (1, 2)] + [threading.Thread(target=killer)]
        for t in threads:
            t.start()
        # At least 4 s of cuts, and on until one of them has hit a batch in flight (the
        # moment a cut lands is random): that is the case the resume has to get right.
        deadline = time.time() + 20
        time.sleep(4)
        while int(mirror_info(r)["resume_resent_commands"]) == 0 and time.time() < deadline:
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        assert kills[0] >= 10, kills
        mine = eventually_same(r, up)
        assert sum(len(v) for v in mine.values()) > 0
        m = mirror_info(r)
        assert int(m["reconnects"]) >= 10, m
        # Exactness came from resuming after the upstream's offset, not from resyncing.
        assert m["resyncs"] == "1", m
        # The cuts hit batches in flight: some were sent again after the reconnect.
        assert int(m["resume_resent_commands"]) > 0, m
        print(f"  {kills[0]} link kills, {m['reconnects']} reconnects, {m['stream_offset']} commands, "
              f"{m['resume_resent_commands']} resent and {m['resume_skipped_commands']} not resent after cuts")


def test_a_lost_exec_reply_is_not_applied_twice():
    """The batch ran on the upstream but its EXEC reply never came back: after the
    reconnect the offset read back says so, and the batch is not sent again."""
    from harness import Respq
    from link_proxy import LinkProxy
    with RedisServer() as up, LinkProxy(up.port) as px:
        r = Respq("--upstream", "127.0.0.1", str(px.port), "--node-id", "n1", *MIRROR)
        try:
            c = r.client()
            c.rpush("a", "before")
            wait_caught_up(r)
            px.lose_next_reply("respq-link")
            c.rpush("a", *range(100))
            mine = eventually_same(r, up)
            assert mine["a"] == [b"before"] + [str(i).encode() for i in range(100)]
            m = mirror_info(r)
            assert [n for n, _ in px.losses()] == ["respq-link:n1"]
            assert int(m["resume_skipped_commands"]) >= 1 and m["resume_resent_commands"] == "0", m
            assert m["resyncs"] == "1" and int(m["reconnects"]) == 1, m
        finally:
            r.stop()
            r.cleanup()


def test_writes_during_resyncs_converge():
    """Resyncs (here forced by FLUSHALL) while a producer keeps writing: the snapshot and
    the writes around it must neither drop nor double anything."""
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        wait_caught_up(r)
        stop = threading.Event()
        errors = []

        def producer():
            rng = random.Random(11)
            c = r.client()
            n = 0
            try:
                while not stop.is_set():
                    k = f"w{rng.randrange(4)}"
                    p = c.pipeline(transaction=False)
                    for _ in range(rng.randint(1, 20)):
                        p.rpush(k, n)
                        n += 1
                    if rng.random() < 0.3:
                        p.lpop(k)
                    p.execute()
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=producer)
        t.start()
        c = r.client()
        for i in range(20):
            time.sleep(0.06)
            c.flushall()
            if i % 3 == 2:
                kill_link(up)
        time.sleep(0.3)
        stop.set()
        t.join()
        assert not errors, errors
        mine = eventually_same(r, up)
        assert mine, "the producer wrote nothing after the last FLUSHALL"
        assert int(mirror_info(r)["resyncs"]) >= 10


def test_clients_are_never_blocked_by_a_stalled_upstream():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        wait_caught_up(r)
        c = r.client()
        up.signal(signal.SIGSTOP)
        try:
            t0 = time.time()
            for i in range(2000):
                c.lpush("fast", i)
            elapsed = time.time() - t0
            m = mirror_info(r)
        finally:
            up.signal(signal.SIGCONT)
        assert elapsed < 5, elapsed
        assert int(m["lag_commands"]) > 0 and int(m["backlog_bytes"]) > 0, m
        mine = eventually_same(r, up)
        assert len(mine["fast"]) == 2000


def test_graceful_shutdown_drains_what_the_upstream_has_not_applied():
    from harness import Respq
    from link_proxy import LinkProxy
    with RedisServer() as up, LinkProxy(up.port) as px:
        r = Respq("--upstream", "127.0.0.1", str(px.port), "--node-id", "n1", *MIRROR)
        try:
            c = r.client()
            c.rpush("a", *range(100))
            wait_caught_up(r)
            # The link's connection goes silent: nothing more reaches the upstream on it.
            px.stall("respq-link")
            c.rpush("a", *range(100, 600))
            c.lpop("a", 50)
            c.rpush("b", "x")
            m = mirror_info(r)
            assert m["link_status"] == "up" and int(m["lag_commands"]) > 0, m
            assert up.client().llen("a") == 100
            r.stop()
            assert "mirror drained" in r.log_text(), r.log_text()
            u = up.client()
            assert u.lrange("a", 0, -1) == [str(i).encode() for i in range(50, 600)]
            assert u.lrange("b", 0, -1) == [b"x"]
        finally:
            r.stop()
            r.cleanup()


def test_consumer_groups_are_mirrored_and_rebuilt_by_a_resync():
    """Group reads, acks, claims and XGROUP reach the upstream as Redis propagates them
    (XCLAIM ... LASTID, XGROUP SETID / CREATECONSUMER); a resync rebuilds the groups as
    Redis's AOF rewrite writes them, entries-read included (which the live effects, like
    Redis's own, do not carry)."""
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        c = r.client()
        for i in range(1, 9):
            c.xadd("st", {"n": i}, id=f"{i}-0")
        c.xgroup_create("st", "g", id="0")
        c.xgroup_create("st", "quiet", id="$")
        c.xreadgroup("g", "alice", {"st": ">"}, count=3)
        c.xreadgroup("g", "bob", {"st": ">"}, count=2, noack=True)
        c.xack("st", "g", "2-0")
        c.execute_command("XCLAIM", "st", "g", "carol", "0", "3-0", "TIME", "1000", "RETRYCOUNT", "4")
        c.xgroup_createconsumer("st", "quiet", "idle")
        c.xgroup_create("fresh", "g", id="$", mkstream=True)
        eventually_same(r, up)
        uc = up.client()
        assert groups_state(uc, counters=False) == groups_state(c, counters=False)
        assert groups_state(c)[b"st"][0][3] == 2  # g: 1-0 alice, 3-0 carol
        up.kill9()
        up.start()
        c.xadd("st", {"n": 9}, id="9-0")
        eventually_same(r, up)
        assert groups_state(uc) == groups_state(c)
        assert mirror_info(r)["resyncs"] == "2"


def test_upstream_restart_then_resync():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        c = r.client()
        c.rpush("a", *range(10))
        wait_caught_up(r)
        up.kill9()
        for i in range(300):
            c.rpush("a", f"while-down-{i}")
            if i % 3 == 0:
                c.lpop("a")
        m = mirror_info(r)
        assert m["link_status"] in ("down", "connecting"), m
        assert int(m["lag_commands"]) >= 300, m
        up.start()
        mine = eventually_same(r, up)
        assert len(mine["a"]) == 10 + 300 - 100
        m = mirror_info(r)
        # The restarted upstream lost everything, offset included: a resync rebuilt it.
        assert m["resyncs"] == "2" and "no offset" in m["last_resync_reason"], m
        assert int(m["reconnects"]) >= 1, m


def test_backlog_overflow_drops_the_backlog_and_resyncs():
    with RedisServer("--appendonly", "yes", "--appendfsync", "always") as up, \
            sidecar(up, "n1", "--mirror-backlog-size", "4kb", *MIRROR) as r:
        c = r.client()
        c.rpush("keep", "1", "2")
        c.rpush("gone", "x")
        wait_caught_up(r)
        up.kill9()  # its AOF keeps "gone" and the old offset
        c.delete("gone")
        for i in range(400):
            c.rpush("big", f"element-{i:05d}")
        m = mirror_info(r)
        assert int(m["backlog_overflows"]) >= 1 and m["resync_pending"] == "1", m
        assert int(m["backlog_bytes"]) <= 4096, m
        assert m["backlog_limit"] == "4096", m
        up.start()

        def reloaded():
            import redis
            try:
                return up.client().exists("keep")
            except redis.exceptions.BusyLoadingError:  # it listens while it loads
                return False

        wait_until(reloaded, what="upstream reloaded its AOF")
        mine = eventually_same(r, up)
        assert not up.client().exists("gone")
        assert len(mine["big"]) == 400
        m = mirror_info(r)
        assert m["resyncs"] == "2" and "overflow" in m["last_resync_reason"], m
        assert int(m["last_resync_stale_deleted"]) == 1, m


def test_backlog_size_changes_at_run_time():
    with RedisServer() as up, sidecar(up, "n1", *MIRROR) as r:
        c = r.client()
        assert c.config_set("mirror-backlog-size", "1mb")
        wait_until(lambda: mirror_info(r)["backlog_limit"] == str(1024 * 1024), what="new backlog limit")


def test_respq_restart_resyncs_to_what_it_loaded():
    with RedisServer() as up:
        r = sidecar(up, "n1", "--appendonly", "yes", "--appendfsync", "always", *MIRROR)
        try:
            c = r.client()
            c.rpush("a", "1", "2", "3")
            c.rpush("b", "x")
            wait_caught_up(r)
            r.stop()
            # While respq is away someone changes the mirrored keys upstream.
            u = up.client()
            u.rpush("a", "stray")
            u.rpush("c", "stray key")
            u.delete("b")
            r.start()
            mine = eventually_same(r, up)
            assert mine == {"a": [b"1", b"2", b"3"], "b": [b"x"]}, mine
            assert mirror_info(r)["resyncs"] == "1"
        finally:
            r.stop()
            r.cleanup()


def test_flushall_deletes_only_the_mirrored_keys_upstream():
    with RedisServer() as up, sidecar(up, "n1", "--mirror", "yes", "--mirror-keys", "m:*",
                                      "--http-queue", "tasks", "off") as r:
        up.client().rpush("keep", "mine")
        c = r.client()
        c.rpush("m:1", "a")
        c.rpush("m:2", "b")
        c.rpush("local", "c")
        wait_caught_up(r)
        assert up.client().exists("m:1", "m:2") == 2
        c.flushall()
        c.rpush("m:3", "after")
        eventually_same(r, up, match=lambda k: k.startswith("m:"))
        assert up.client().lrange("keep", 0, -1) == [b"mine"]
        assert up.client().lrange("m:3", 0, -1) == [b"after"]


def test_each_database_is_mirrored_to_the_same_number_upstream():
    with RedisServer() as up:
        up.client(db=2).set("stale", "x")  # the start's resync covers every database
        with sidecar(up, "n1", *MIRROR) as r:
            r.client().set("k", "zero")
            r.client(db=2).rpush("l", "a", "b")
            r.client(db=2).set("k", "two")
            r.client(db=2).rpush("l", "c")
            with r.raw() as raw:
                for cmd in (("MULTI",), ("SET", "tx", "0"), ("SELECT", "4"), ("RPUSH", "tx", "4"), ("EXEC",)):
                    raw.cmd(*cmd)
            r.client().set("after", "tx")

            def same():
                wait_caught_up(r)
                for db in range(6):
                    assert_same_keys(_Db(r, db), _Db(up, db))

            same()
            assert up.client(db=2).lrange("l", 0, -1) == [b"a", b"b", b"c"]
            assert up.client(db=2).get("stale") is None
            assert up.client(db=4).lrange("tx", 0, -1) == [b"4"] and up.client().get("after") == b"tx"
            # MOVE, SWAPDB and FLUSHDB resync: the upstream follows.
            r.client(db=2).move("l", 5)
            same()
            assert up.client(db=5).lrange("l", 0, -1) == [b"a", b"b", b"c"]
            r.client().swapdb(0, 5)
            same()
            assert up.client().lrange("l", 0, -1) == [b"a", b"b", b"c"]
            r.client(db=2).flushdb()
            same()
            assert up.client(db=2).dbsize() == 0


class _Db:
    """A server seen through one database, for assert_same_keys."""

    def __init__(self, server, db):
        self.server, self.db = server, db

    def client(self, **kw):
        return self.server.client(db=self.db, **kw)


def test_link_uses_password_and_db():
    with RedisServer("--requirepass", "sekret") as up, \
            sidecar(up, "n1", "--upstream-password", "sekret", "--upstream-db", "3", *MIRROR) as r:
        r.client().rpush("a", "1")
        wait_caught_up(r)
        u = up.client(password="sekret", db=3)
        assert u.lrange("a", 0, -1) == [b"1"]
        assert up.client(password="sekret", db=0).exists("a") == 0
        assert [f["db"] for f in link_clients(up, password="sekret")] == ["3"]


def test_wrong_password_keeps_retrying_and_reports_it():
    with RedisServer("--requirepass", "sekret") as up, \
            sidecar(up, "n1", "--upstream-password", "wrong", *MIRROR) as r:
        r.client().rpush("a", "1")
        wait_until(lambda: "AUTH" in mirror_info(r)["link_last_error"], what="AUTH error reported")
        assert mirror_info(r)["link_status"] != "up"
        assert r.client().lrange("a", 0, -1) == [b"1"]  # clients unaffected


def test_mirror_without_upstream_is_a_start_error():
    from harness import start_error
    log = start_error("--mirror", "yes")
    assert "needs an upstream" in log, log


if __name__ == "__main__":
    if TARGET == "redis":
        print("SKIP all: the Redis link is respq's own (RESPQ_TEST_TARGET=redis)")
        sys.exit(0)
    run_tests(globals())
