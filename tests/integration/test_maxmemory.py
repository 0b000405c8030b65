"""maxmemory with maxmemory-policy noeviction, compared with redis-server 7.0: over the
limit, commands flagged denyoom get Redis's exact -OOM error (and, inside MULTI, every
command, so EXEC aborts); reads, deletes and pops work; freeing memory lets writes in
again at once. The HTTP task lifecycle's own moves (into the in-flight hash, to a retry,
to the dead letters) are never refused: a task in respq's custody is not lost. Memory a
FLUSHALL freed goes back to the system (used_memory_rss falls) within seconds."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HttpEndpoint, RedisServer, Respq, Skip, run_tests, wait_until  # noqa: E402

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"

# Sent one by one on one connection once maxmemory is 1 byte (so every server is over).
OVER_LIMIT_SCRIPT = [
    ("SET", "k", "v2"), ("GET", "k"), ("LPOP", "l"), ("RPOP", "l"), ("RPOPLPUSH", "l", "l2"),
    ("LMOVE", "l", "l2", "LEFT", "LEFT"), ("LPUSH", "l", "x"), ("RPUSHX", "l", "x"), ("INCR", "n"),
    ("HSET", "h", "a", "b"), ("HGET", "h", "f"), ("APPEND", "k", "x"), ("SETNX", "z", "1"),
    ("SADD", "s", "m"), ("ZADD", "zz", "1", "m"), ("EXPIRE", "k", "100"), ("PERSIST", "k"),
    ("PUBLISH", "c", "m"), ("PING",), ("EXISTS", "k"), ("LLEN", "l"), ("LRANGE", "l", "0", "-1"),
    ("DEL", "h"), ("UNLINK", "nothing"), ("SELECT", "1"), ("SET", "k", "1"), ("SELECT", "0"),
    ("MULTI",), ("GET", "k"), ("EXEC",),
    ("MULTI",), ("DEL", "k"), ("DISCARD",),
    ("MULTI",), ("EXEC",),
    ("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory-policy"),
    ("CONFIG", "SET", "maxmemory-policy", "bogus"),
    ("CONFIG", "SET", "maxmemory", "0"), ("SET", "k", "v3"), ("GET", "k"), ("LPUSH", "l", "y"),
]


def run_script(server):
    with server.raw() as c:
        assert c.cmd("RPUSH", "l", "a", "b", "c") == b":3\r\n"
        assert c.cmd("SET", "k", "v") == b"+OK\r\n"
        assert c.cmd("HSET", "h", "f", "v") == b":1\r\n"
        assert c.cmd("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
        return [(args, c.cmd(*args)) for args in OVER_LIMIT_SCRIPT]


def test_over_the_limit_the_same_commands_are_refused_as_on_redis():
    with RedisServer() as redis, Respq() as r:
        want = run_script(redis)
        got = run_script(r)
    for (args, w), (_, g) in zip(want, got):
        assert g == w, f"{args}: redis-server answered {w!r}, respq {g!r}"
    replies = dict((a, b) for a, b in want)
    assert replies[("SET", "k", "v2")] == OOM  # the reference itself: the limit did apply
    assert replies[("LPOP", "l")] == b"$1\r\na\r\n"


# Scripts over the limit (maxmemory 1), as Redis 7.0: a script without a shebang line runs
# and its first denyoom command before any write is refused; a "#!lua" script without
# allow-oom or no-writes is refused before it runs.
SCRIPTS_OVER_LIMIT = [
    ("EVAL", "return redis.call('set', KEYS[1], 'y')", "1", "k"),
    ("EVAL", "return redis.pcall('set', KEYS[1], 'y')", "1", "k"),
    ("EVAL", "local t = redis.pcall('lpush', KEYS[1], 'y') return t['err']", "1", "l"),
    ("EVAL", "return redis.call('get', KEYS[1])", "1", "k"),
    ("EVAL", "redis.call('lpop', KEYS[1]) return redis.call('lpush', KEYS[1], 'z')", "1", "l"),
    ("EVAL", "#!lua\nreturn 1", "0"),
    ("EVAL_RO", "#!lua\nreturn 1", "0"),
    ("EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'allowed')", "1", "k"),
    ("EVAL", "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "1", "k"),
    ("EVAL_RO", "return redis.call('set', KEYS[1], 'y')", "1", "k"),
    ("EVAL", "return redis.call('nosuchcommand')", "0"),
    ("EVAL", "return redis.pcall('select', 99)", "0"),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("EVAL", "#!lua\nreturn redis.call('set', KEYS[1], 'after')", "1", "k"),
]


def scripted_counters(c):
    """INFO errorstats, and calls / rejected_calls / failed_calls of each command run."""
    errors = c.cmd("INFO", "errorstats").decode().split("\r\n", 1)[1]
    stats = {}
    for line in c.cmd("INFO", "commandstats").decode().split("\r\n"):
        if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info", "cmdstat_config")):
            name, fields = line.split(":", 1)
            kv = dict(f.split("=") for f in fields.split(","))
            stats[name] = (kv["calls"], kv["rejected_calls"], kv["failed_calls"])
    return errors, stats


def test_scripts_over_the_limit_are_refused_and_counted_as_on_redis():
    def run(server):
        with server.raw() as c:
            assert c.cmd("SET", "k", "v") == b"+OK\r\n" and c.cmd("RPUSH", "l", "a") == b":1\r\n"
            assert c.cmd("CONFIG", "RESETSTAT") == b"+OK\r\n"
            assert c.cmd("CONFIG", "SET", "maxmemory", "1") == b"+OK\r\n"
            replies = [(args, c.cmd(*[a.replace("\\n", "\n") for a in args])) for args in SCRIPTS_OVER_LIMIT]
            return replies, c.cmd("GET", "k"), scripted_counters(c)

    with RedisServer() as redis, Respq() as r:
        want, want_k, want_counters = run(redis)
        got, got_k, got_counters = run(r)
    for (args, w), (_, g) in zip(want, got):
        assert g == w, f"{args}: redis-server answered {w!r}, respq {g!r}"
    assert got_k == want_k == b"$5\r\nafter\r\n", (got_k, want_k)
    # The reference itself: the limit applied to scripts.
    assert want[0][1].startswith(OOM[:-3]) and want[5][1] == OOM, want[:6]
    # Each refusal counted once, under OOM or ERR; the refused command's rejected_calls,
    # EVAL's failed_calls, and the commands the scripts ran, as Redis counts them.
    assert got_counters == want_counters, f"redis-server: {want_counters}\nrespq: {got_counters}"


def test_info_and_config_show_the_limit():
    with Respq("--maxmemory", "100mb") as r:
        c = r.client()
        assert c.config_get("maxmemory") == {"maxmemory": str(100 * 1024 * 1024)}
        assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        mem = c.info("memory")
        assert mem["maxmemory"] == 100 * 1024 * 1024 and mem["maxmemory_policy"] == "noeviction"
        with r.raw() as raw:
            reply = raw.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
            assert reply.startswith(b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
                                    b"respq supports only maxmemory-policy noeviction"), reply
            assert raw.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction") == b"+OK\r\n"
    # A config file naming another policy does not start.
    with Respq("--maxmemory-policy", "allkeys-lru", start=False) as r:
        r.start(wait=False)
        assert r.proc.wait(timeout=20) == 1
        assert "maxmemory-policy noeviction" in r.log_text(), r.log_text()


def fill_until_oom(server, value_size=10000, most=100000):
    """SETs fresh keys until the server answers OOM; returns how many went in."""
    with server.raw() as c:
        value = "x" * value_size
        for i in range(most):
            reply = c.cmd("SET", f"fill:{i}", value)
            if reply == OOM:
                return i
            assert reply == b"+OK\r\n", reply
    raise AssertionError(f"no OOM after {most} SETs")


def check_fill_free_fill(server):
    c = server.client()
    used = int(c.info("memory")["used_memory"])
    c.config_set("maxmemory", used + 2 * 1024 * 1024)
    n = fill_until_oom(server)
    # About 2 MB of 10 KB values: the limit is the configured one, give or take overheads.
    assert 100 <= n <= 260, f"{n} values of 10 KB went in under a 2 MB margin"
    with server.raw() as raw:
        assert raw.cmd("GET", "fill:0")[:6] == b"$10000"
        assert raw.cmd("SET", "one-more", "v") == OOM
        # 200 KB freed (Redis counts client buffers too, so a few keys are not enough there).
        assert raw.cmd("DEL", *[f"fill:{i}" for i in range(20)]) == b":20\r\n"
        # Room again at once: the next write goes in.
        assert raw.cmd("SET", "one-more", "v") == b"+OK\r\n"
    return n


def test_filling_stops_at_the_limit_and_a_delete_makes_room_at_once():
    with RedisServer() as redis:
        check_fill_free_fill(redis)
    with Respq() as r:
        check_fill_free_fill(r)


def test_the_task_lifecycle_moves_are_never_refused():
    # One attempt and one retry, both answered 500: the task goes in flight, to retrying
    # (the in-flight hash), in flight again, then to hq:dead, all while over maxmemory.
    with HttpEndpoint() as ep, Respq("--http-queue", "hq", "retries", "1", "backoff-min", "0.2",
                                     "backoff-max", "0.2") as r:
        c = r.client()
        url = ep.url("/status/500", sleep=1)
        c.lpush("hq", json.dumps({"url": url, "id": "kept-1"}))
        ep.wait_requests(1, path="/status/500")  # in flight now
        c.config_set("maxmemory", 1)
        with r.raw() as raw:
            assert raw.cmd("LPUSH", "hq", json.dumps({"url": url})) == OOM
        wait_until(lambda: c.llen("hq:dead") == 1, timeout=20, what="the task in hq:dead")
        assert len(ep.requests(path="/status/500")) == 2
        dead = json.loads(c.lindex("hq:dead", 0))
        assert dead.get("id") == "kept-1" and dead.get("attempts") == 2, dead
        assert c.hlen("hq:inflight") == 0
        with r.raw() as raw:
            assert raw.cmd("SET", "still", "refused") == OOM
        # Replaying the dead letter is a denyoom move (LMOVE): refused until there is room.
        with r.raw() as raw:
            assert raw.cmd("LMOVE", "hq:dead", "hq", "RIGHT", "LEFT") == OOM
        assert c.llen("hq:dead") == 1


def test_memory_a_flush_freed_goes_back_to_the_system():
    # The allocator is asked once a second to collect what was freed (MEMORY PURGE asks
    # at once); without that, mimalloc kept the whole of it resident while idle. Only
    # where respq runs on mimalloc: the sanitizer builds bring their own allocator.
    with Respq() as r:
        c = r.client()
        mem = c.info("memory")
        if not str(mem["mem_allocator"]).startswith("mimalloc"):
            raise Skip(f"allocator {mem['mem_allocator']}")
        empty = mem["used_memory_rss"]
        value = "x" * 1000
        pipe = c.pipeline(transaction=False)
        for i in range(200_000):
            pipe.set(f"k{i}", value)
            if i % 1000 == 999:
                pipe.execute()
        full = c.info("memory")["used_memory_rss"]
        assert full - empty > 200 * 1000 * 1000, (empty, full)
        assert c.flushall()
        wait_until(lambda: c.info("memory")["used_memory_rss"] < empty + (full - empty) / 2, timeout=15,
                   what=f"RSS back under half of the {full - empty} bytes the keys took")
        assert c.execute_command("MEMORY", "PURGE")


if __name__ == "__main__":
    run_tests(globals())
