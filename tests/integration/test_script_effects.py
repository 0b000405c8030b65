"""Where a Lua script's writes go: a task a script pushes onto an HTTP queue is delivered,
and dispatched only after the script (inside it the queue still holds it); the upstream
Redis of the mirror receives the script's writes as the commands it ran, in one MULTI/EXEC
(effects replication, as Redis 7), including the random and time-dependent ones; MONITOR
shows them as run by "lua", after the EVAL itself, as Redis does."""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Outcomes, RawConn, RedisServer, Respq, run_tests, wait_until  # noqa: E402
from link_helpers import eventually_same, sidecar, wait_caught_up  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP queues and the mirror are respq's own (target: {TARGET})")
    sys.exit(0)

# Laravel 8's push script (Illuminate\Queue\LuaScripts::push): the shape real apps send.
LARAVEL_PUSH = ("redis.call('rpush', KEYS[1], ARGV[1])\n"
                "redis.call('rpush', KEYS[2], 1)")


def test_task_pushed_by_a_script_is_delivered_after_the_script():
    with HttpEndpoint() as ep, Respq("--http-queue", "tasks", "retries", "0") as r, Outcomes(r, "tasks") as out:
        c = r.client()
        task = json.dumps({"id": "from-lua", "url": ep.url("/hook"), "param": {"n": 1}})
        # Inside the script the task is still on the list: nothing is dispatched mid-script.
        seen = c.eval("redis.call('lpush', KEYS[1], ARGV[1]) return redis.call('llen', KEYS[1])", 1, "tasks", task)
        assert seen == 1, seen
        o = out.wait(id="from-lua", status="delivered")
        assert o["code"] == 200, o
        reqs = ep.wait_requests(1, path="/hook")
        assert reqs[0]["h"]["x-task-id"] == "from-lua", reqs[0]
        # Laravel's push script onto an HTTP queue: the task goes out, the notify list stays.
        task2 = json.dumps({"id": "laravel-shaped", "url": ep.url("/hook2")})
        c.eval(LARAVEL_PUSH, 2, "tasks", "tasks:notify", task2)
        out.wait(id="laravel-shaped", status="delivered")
        assert c.lrange("tasks:notify", 0, -1) == [b"1"]
        wait_until(lambda: c.llen("tasks") == 0, what="the queue to empty")


def test_mirror_receives_the_commands_the_script_ran():
    with RedisServer() as up, sidecar(up, "n1", "--mirror", "yes", "--http-queue", "tasks", "off") as r:
        c = r.client()
        c.eval("redis.call('set', KEYS[1], 'a') redis.call('rpush', KEYS[2], 'x', 'y') "
               "redis.call('sadd', KEYS[3], 'm1', 'm2', 'm3') redis.call('spop', KEYS[3]) "
               "redis.call('zadd', KEYS[4], 1, 'one', 2, 'two') redis.call('expire', KEYS[1], 1000) "
               "redis.call('hset', KEYS[5], 'f', redis.call('time')[1])", 5, "s", "l", "set", "z", "h")
        c.eval(LARAVEL_PUSH, 2, "queues:default", "queues:default:notify", '{"job":"x"}')
        c.evalsha(c.script_load("return redis.call('incrby', KEYS[1], ARGV[1])"), 1, "counter", 5)
        wait_caught_up(r)
        mine = eventually_same(r, up)  # TIME: the upstream got what respq did
        assert mine["counter"] == b"5" and mine["h"][b"f"] == up.client().hget("h", "f"), mine
        # SPOP chose at random: the upstream removed the same member.
        assert up.client().smembers("set") == c.smembers("set") and len(c.smembers("set")) == 2
        assert up.client().zrange("z", 0, -1, withscores=True) == [(b"one", 1.0), (b"two", 2.0)]
        assert 990 <= up.client().ttl("s") <= 1000
        # A script that fails half-way keeps what it wrote before the error (as in Redis),
        # and the upstream gets exactly that.
        try:
            c.eval("redis.call('set', KEYS[1], 'written') redis.call('incr', KEYS[2])", 2, "half", "s")
        except Exception as e:  # noqa: BLE001 - INCR on 'a' fails
            assert "not an integer" in str(e), e
        wait_caught_up(r)
        eventually_same(r, up)
        assert up.client().get("half") == b"written"


def test_monitor_shows_the_scripts_commands():
    def monitor_lines(port, run):
        lines = []
        with RawConn(port) as mon:
            assert mon.cmd("MONITOR") == b"+OK\r\n"
            run()
            while len(lines) < 3:
                lines.append(mon.read_reply().decode())
        # "+<time> [<db> <addr or lua>] "<command>" ...": keep the source and the command.
        return [(l.split("[", 1)[1].split("]")[0].split()[1].split(":")[0], l.split("] ", 1)[1].strip())
                for l in lines]

    got = {}
    for name, server in (("redis", RedisServer()), ("respq", Respq())):
        with server:
            c = server.client()
            got[name] = monitor_lines(server.port, lambda: c.eval(
                "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])", 1, "k", "v"))
    assert got["respq"] == got["redis"], got
    assert got["redis"][1] == ("lua", '"set" "k" "v"'), got


if __name__ == "__main__":
    run_tests(globals())
