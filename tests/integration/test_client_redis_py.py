"""redis-py (the system python3-redis) against the broker, as a Python worker or an
operator's script uses it."""
import inspect
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis  # noqa: E402
from harness import Respq, Skip, run_tests, wait_blocked, wait_until  # noqa: E402


class Server:
    def __init__(self):
        self.r = Respq()

    def dump_log(self):
        self.r.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)


def raises(fn, exc, text):
    try:
        fn()
    except exc as e:
        assert str(e) == text, f"error text {str(e)!r}, want {text!r}"
        return
    raise AssertionError(f"expected {exc.__name__}({text!r})")


def test_list_commands_behave_like_redis_lists(s):
    c = s.r.client()
    c.delete("py:l", "py:l2")
    assert c.rpush("py:l", "a", "b", "c") == 3
    assert c.lpush("py:l", "z") == 4
    assert c.lrange("py:l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert c.llen("py:l") == 4
    assert c.lindex("py:l", -1) == b"c"
    assert c.lindex("py:l", 10) is None
    assert c.lset("py:l", 0, "Z") is True
    raises(lambda: c.lset("py:missing", 0, "x"), redis.ResponseError, "no such key")
    raises(lambda: c.lset("py:l", 10, "x"), redis.ResponseError, "index out of range")
    assert c.linsert("py:l", "AFTER", "a", "a2") == 5
    assert c.rpush("py:l", "a") == 6
    assert c.lpos("py:l", "a") == 1
    assert c.lpos("py:l", "a", rank=2) == 5
    assert c.lpos("py:l", "a", count=0) == [1, 5]
    assert c.lpos("py:l", "nope") is None
    assert c.lrem("py:l", -1, "a") == 1
    assert c.lrange("py:l", 0, -1) == [b"Z", b"a", b"a2", b"b", b"c"]
    assert c.lmove("py:l", "py:l2", "RIGHT", "LEFT") == b"c"
    assert c.rpoplpush("py:l", "py:l2") == b"b"
    assert c.lrange("py:l2", 0, -1) == [b"b", b"c"]
    assert c.ltrim("py:l", 1, -1) is True
    assert c.lpop("py:l", 5) == [b"a", b"a2"]
    assert c.exists("py:l") == 0
    assert c.lpop("py:l") is None
    assert c.lpop("py:l", 2) is None
    assert c.rpop("py:l2", 1) == [b"c"]
    assert c.lpushx("py:l", "x") == 0 and c.rpushx("py:l2", "d") == 2
    assert c.type("py:l2") == b"list" and c.type("py:l") == b"none"
    assert c.rename("py:l2", "py:l") is True
    assert c.lrange("py:l", 0, -1) == [b"b", b"d"]
    assert c.delete("py:l", "py:l2") == 1
    raises(lambda: c.execute_command("LPUSH", "py:l"), redis.ResponseError,
           "wrong number of arguments for 'lpush' command")
    raises(lambda: c.execute_command("LRANGE", "py:l", "a", "1"), redis.ResponseError,
           "value is not an integer or out of range")


def test_pipeline_with_and_without_transaction_returns_replies_in_order(s):
    c = s.r.client()
    c.delete("py:p")
    with c.pipeline(transaction=True) as p:
        p.rpush("py:p", "a").rpush("py:p", "b").llen("py:p").lrange("py:p", 0, -1).lpop("py:p")
        assert p.execute() == [1, 2, 2, [b"a", b"b"], b"a"]
    with c.pipeline(transaction=False) as p:
        for i in range(1000):
            p.rpush("py:p", i)
        p.llen("py:p")
        res = p.execute()
    assert res[:1000] == list(range(2, 1002)) and res[1000] == 1001, res[-3:]
    # A runtime error inside EXEC fails only its own command.
    with c.pipeline(transaction=True) as p:
        p.rpush("py:p", "x").lset("py:missing", 0, "v").llen("py:p")
        res = p.execute(raise_on_error=False)
    assert res[0] == 1002 and isinstance(res[1], redis.ResponseError) and res[2] == 1002, res
    # A command refused while queueing aborts the whole transaction (EXECABORT).
    with c.pipeline(transaction=True) as p:
        p.rpush("py:p", "never").execute_command("LPUSH", "py:p")
        try:
            p.execute()
            raise AssertionError("a transaction with a wrong-arity command ran")
        except redis.ResponseError as e:
            assert "wrong number of arguments for 'lpush' command" in str(e), e
    assert c.llen("py:p") == 1002 and c.lindex("py:p", -1) == b"x"
    c.delete("py:p")


def test_pubsub_subscribe_psubscribe_and_get_message(s):
    c = s.r.client()
    p = c.pubsub()
    p.subscribe("py:ch")
    assert p.get_message(timeout=5) == {"type": "subscribe", "pattern": None, "channel": b"py:ch", "data": 1}
    p.psubscribe("py:news.*")
    assert p.get_message(timeout=5) == {"type": "psubscribe", "pattern": None, "channel": b"py:news.*", "data": 2}
    assert c.pubsub_channels("py:*") == [b"py:ch"]
    assert c.pubsub_numsub("py:ch", "py:none") == [(b"py:ch", 1), (b"py:none", 0)]
    assert c.pubsub_numpat() == 1
    assert c.publish("py:ch", "hello") == 1
    assert p.get_message(timeout=5) == {"type": "message", "pattern": None, "channel": b"py:ch", "data": b"hello"}
    assert c.publish("py:news.today", "n1") == 1
    assert p.get_message(timeout=5) == {"type": "pmessage", "pattern": b"py:news.*",
                                        "channel": b"py:news.today", "data": b"n1"}
    assert p.get_message(timeout=0.2) is None
    p.ping()
    assert p.get_message(timeout=5) == {"type": "pong", "pattern": None, "channel": None, "data": b""}
    p.unsubscribe("py:ch")
    assert p.get_message(timeout=5) == {"type": "unsubscribe", "pattern": None, "channel": b"py:ch", "data": 1}
    p.punsubscribe()
    assert p.get_message(timeout=5) == {"type": "punsubscribe", "pattern": None, "channel": b"py:news.*", "data": 0}
    assert c.publish("py:ch", "nobody") == 0
    p.close()


def test_blpop_times_out_to_none_and_is_served_by_another_client(s):
    c = s.r.client()
    c.delete("py:b")
    t = time.time()
    assert c.blpop(["py:b"], timeout=1) is None
    assert 0.9 <= time.time() - t < 3, time.time() - t
    assert c.info("clients")["blocked_clients"] == 0
    result = {}

    def waiter():
        result["v"] = s.r.client().blpop(["py:none", "py:b"], timeout=20)

    th = threading.Thread(target=waiter)
    th.start()
    try:
        wait_until(lambda: c.info("clients")["blocked_clients"] == 1, what="the waiter blocks")
        assert c.rpush("py:b", "job-1", "job-2") == 2
        th.join(10)
        assert not th.is_alive(), "blpop was not served"
    finally:
        if th.is_alive():
            c.rpush("py:b", "unblock")
            th.join(10)
    assert result["v"] == (b"py:b", b"job-1"), result
    assert c.lrange("py:b", 0, -1) == [b"job-2"]
    assert c.blpop(["py:b"], timeout=1) == (b"py:b", b"job-2")
    assert c.info("clients")["blocked_clients"] == 0


def test_client_setname_list_id_and_kill_act_on_the_right_connection(s):
    a, b = s.r.client(), s.r.client()
    assert a.client_setname("py-worker-1") is True
    assert a.client_getname() == "py-worker-1"
    aid = a.client_id()
    assert isinstance(aid, int) and aid > 0
    assert b.client_id() != aid
    mine = [e for e in b.client_list() if e["name"] == "py-worker-1"]
    assert len(mine) == 1 and mine[0]["id"] == str(aid), mine
    assert mine[0]["addr"].startswith("127.0.0.1:"), mine
    assert b.client_kill(mine[0]["addr"]) is True
    raises(lambda: b.client_kill("127.0.0.1:1"), redis.ResponseError, "No such client")
    wait_until(lambda: not [e for e in b.client_list() if e["id"] == str(aid)], what="killed client gone")
    # redis-py reconnects on the next command: a new connection, a new id, no name.
    assert a.client_id() != aid
    assert a.client_getname() is None
    assert b.client_kill_filter(_id=a.client_id()) == 1
    assert b.client_kill_filter(_id=999999999) == 0


def test_info_parses_into_server_and_clients_sections(s):
    c = s.r.client()
    server = c.info("server")
    assert isinstance(server["redis_version"], str) and server["redis_version"].count(".") == 2, server
    assert server["tcp_port"] == s.r.port, server
    clients = c.info("clients")
    assert clients["connected_clients"] >= 1 and clients["blocked_clients"] == 0, clients
    others = [s.r.client() for _ in range(3)]
    for o in others:
        o.ping()
    assert c.info("clients")["connected_clients"] == clients["connected_clients"] + 3
    for o in others:
        o.close()
    everything = c.info()
    for key in ("redis_version", "connected_clients", "blocked_clients", "uptime_in_seconds"):
        assert key in everything, (key, sorted(everything))
    assert "redis_version" not in c.info("clients")


def test_config_get_with_a_glob_returns_matching_settings(s):
    c = s.r.client()
    got = c.config_get("max*")
    assert "maxclients" in got, got
    assert all(k.startswith("max") for k in got), got
    assert int(got["maxclients"]) == c.info("clients")["maxclients"]
    assert c.config_get("timeout") == {"timeout": "0"}
    assert c.config_get("no-such-setting*") == {}


def test_scan_iter_with_match_count_and_type_visits_every_key_once_or_more(s):
    c = s.r.client()
    c.flushdb()
    with c.pipeline(transaction=False) as p:
        for i in range(300):
            p.rpush(f"py:scan:{i}", "x")
        for i in range(50):
            p.rpush(f"py:other:{i}", "x")
        p.execute()
    assert c.dbsize() == 350
    want = {f"py:scan:{i}".encode() for i in range(300)}
    got = list(c.scan_iter(match="py:scan:*", count=10))
    assert set(got) == want, len(got)
    assert set(c.scan_iter(match="py:scan:1?", count=1000)) == {f"py:scan:1{i}".encode() for i in range(10)}
    assert set(c.scan_iter(count=7, _type="list")) == want | {f"py:other:{i}".encode() for i in range(50)}
    assert list(c.scan_iter(_type="string")) == []
    cursor, keys = c.scan(0, match="py:nomatch:*", count=1000)
    assert keys == [] or cursor != 0, (cursor, keys)
    c.flushdb()
    assert c.dbsize() == 0


def test_resp3_client_with_protocol_3(s):
    if "protocol" not in inspect.signature(redis.Redis.__init__).parameters:
        raise Skip(f"redis-py {redis.__version__} has no protocol=3 (RESP3 is covered by raw HELLO 3)")
    c = s.r.client(protocol=3)
    c.delete("py:r3")
    assert c.rpush("py:r3", "a") == 1
    assert c.lpop("py:none") is None
    assert c.blpop(["py:none"], timeout=0.1) is None
    assert c.config_get("timeout") == {"timeout": "0"} or c.config_get("timeout") == {b"timeout": b"0"}
    assert c.lrange("py:r3", 0, -1) == [b"a"]


def test_resp3_reply_shapes_after_hello_3(s):
    raw = s.r.raw()
    hello = raw.cmd("HELLO", "3")
    assert hello.startswith(b"%"), hello
    assert b"$5\r\nproto\r\n:3\r\n" in hello, hello
    assert b"$7\r\nversion\r\n" in hello, hello
    assert raw.cmd("DEL", "py:r3raw") in (b":0\r\n", b":1\r\n")
    assert raw.cmd("LPOP", "py:r3raw") == b"_\r\n"
    assert raw.cmd("LPOP", "py:r3raw", "2") == b"_\r\n"
    assert raw.cmd("BLPOP", "py:r3raw", "0.05") == b"_\r\n"
    assert raw.cmd("BRPOPLPUSH", "py:r3raw", "py:r3dst", "0.05") == b"_\r\n"
    assert raw.cmd("CONFIG", "GET", "timeout") == b"%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    assert raw.cmd("RPUSH", "py:r3raw", "a") == b":1\r\n"
    assert raw.cmd("LRANGE", "py:r3raw", "0", "-1") == b"*1\r\n$1\r\na\r\n"
    assert raw.cmd("SUBSCRIBE", "py:r3ch") == b">3\r\n$9\r\nsubscribe\r\n$7\r\npy:r3ch\r\n:1\r\n"
    assert s.r.client().publish("py:r3ch", "m") == 1
    assert raw.read_reply() == b">3\r\n$7\r\nmessage\r\n$7\r\npy:r3ch\r\n$1\r\nm\r\n"
    # RESP3 allows normal commands while subscribed.
    assert raw.cmd("LLEN", "py:r3raw") == b":1\r\n"
    assert raw.cmd("HELLO", "2").startswith(b"*14\r\n")
    raw.close()
    s.r.client().delete("py:r3raw")


if __name__ == "__main__":
    run_tests(globals(), setup=Server)
