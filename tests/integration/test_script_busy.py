"""A runaway Lua script, as an operator meets it: past busy-reply-threshold other clients
get -BUSY (on open connections and on new ones), transactions sent meanwhile abort at
EXEC, SCRIPT KILL stops a script that has not written (even one that catches errors with
pcall) and refuses one that has (UNKILLABLE), plain SHUTDOWN is refused and SHUTDOWN
NOSAVE stops the server without persisting the script's writes. Every reply is compared
with a real redis-server running the same steps."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RawConn, RedisServer, Respq, run_tests, wait_busy, wait_until  # noqa: E402

THRESHOLD_MS = "100"
SPIN = "local i = 0 while true do i = i + 1 end"


class Runner:
    """Sends one command on a connection of its own in a thread; the reply is kept."""

    def __init__(self, port, *cmd):
        self.conn = RawConn(port, timeout=30)
        self.reply = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=cmd, daemon=True)
        self.thread.start()

    def _run(self, *cmd):
        try:
            self.reply = self.conn.cmd(*cmd)
        except Exception as e:  # noqa: BLE001 - kept for the assertion
            self.error = e

    def join(self):
        self.thread.join(20)
        assert not self.thread.is_alive(), "the script's caller got no answer"
        self.conn.close()
        return self.reply


def kill_scenario(port):
    """Returns the replies of a SCRIPT KILL session, in order."""
    out = []
    with RawConn(port) as pre:  # a connection opened before the script
        out.append(pre.cmd("SET", "before", "1"))
        # pcall cannot catch the kill: the script below retries forever if it could.
        runner = Runner(port, "EVAL", "while true do pcall(function() " + SPIN + " end) end", "0")
        wait_busy(port)
        out.append(pre.cmd("PING"))
        out.append(pre.cmd("GET", "before"))
        # A pipeline on the open connection: every command answered, in order.
        pre.send(RawConn.encode("PING") + RawConn.encode("ECHO", "x") + RawConn.encode("MULTI") +
                 RawConn.encode("SET", "k", "v") + RawConn.encode("EXEC"))
        out += [pre.read_reply() for _ in range(5)]
        with RawConn(port) as fresh:  # a connection accepted while busy
            out.append(fresh.cmd("SHUTDOWN"))
            out.append(fresh.cmd("SCRIPT", "KILL"))
        out.append(runner.join())
        out.append(pre.cmd("PING"))
        out.append(pre.cmd("EXISTS", "k"))
        out.append(pre.cmd("SCRIPT", "KILL"))
    return out


def test_script_kill_matches_redis():
    with RedisServer("--busy-reply-threshold", THRESHOLD_MS) as redis:
        expected = kill_scenario(redis.port)
    with Respq("--busy-reply-threshold", THRESHOLD_MS) as r:
        got = kill_scenario(r.port)
        assert "Slow script detected" in r.log_text(), r.log_text()
    assert got == expected, f"respq {got}\nredis {expected}"
    assert expected[1].startswith(b"-BUSY Redis is busy running a script"), expected
    assert expected[-4].startswith(b"-ERR Script killed by user with SCRIPT KILL..."), expected


def unkillable_scenario(port):
    """SCRIPT KILL and SHUTDOWN against a script that wrote, then SHUTDOWN NOSAVE."""
    with RawConn(port) as pre:
        runner = Runner(port, "EVAL", "redis.call('SET', KEYS[1], 'from-script') " + SPIN, "1", "written")
        wait_busy(port)
        out = [pre.cmd("SCRIPT", "KILL"), pre.cmd("SHUTDOWN")]
        try:
            out.append(pre.cmd("SHUTDOWN", "NOSAVE"))
        except ConnectionError:
            out.append("closed")  # the server went without a reply
    runner.join()
    return out


def test_unkillable_script_and_shutdown_nosave():
    with RedisServer("--busy-reply-threshold", THRESHOLD_MS) as redis:
        expected = unkillable_scenario(redis.port)
        wait_until(lambda: not redis.alive(), timeout=15, what="redis-server to exit")
    with Respq("--busy-reply-threshold", THRESHOLD_MS, "--appendonly", "yes") as r:
        r.client().set("kept", "1")
        got = unkillable_scenario(r.port)
        wait_until(lambda: not r.alive(), timeout=15, what="respq to exit")
        assert r.proc.returncode == 0, r.proc.returncode
        # Restarted from its AOF: what was written before the script is there, nothing the
        # half-run script wrote is.
        r.start()
        c = r.client()
        assert c.get("kept") == b"1"
        assert c.get("written") is None
    assert got == expected, f"respq {got}\nredis {expected}"
    assert expected[0].startswith(b"-UNKILLABLE Sorry the script already executed write commands"), expected
    assert expected[1].startswith(b"-BUSY"), expected
    assert expected[2] == "closed", expected


def answered_before_script(port):
    """A PING read in the same turn as the EVAL that runs away, just before it: its reply
    is sent once the threshold passes, not held until the script ends."""
    with RawConn(port, timeout=5) as y, RawConn(port) as x:
        assert y.cmd("PING") == x.cmd("PING") == b"+PONG\r\n"
        # Both commands arrive while the server sleeps: its DEBUG SLEEP has begun 0.3 s on,
        # and they are sent well before its end, even on a loaded machine.
        sleeper = Runner(port, "DEBUG", "SLEEP", "1")
        time.sleep(0.3)
        y.send(RawConn.encode("PING"))
        time.sleep(0.02)
        x.send(RawConn.encode("EVAL", SPIN, "0"))
        try:
            out = [y.read_reply()]
        except TimeoutError:
            out = ["no reply while the script ran"]
        with RawConn(port) as k:
            out.append(k.cmd("SCRIPT", "KILL"))
        out.append(x.read_reply()[:30])
    out.append(sleeper.join())
    return out


def test_a_reply_produced_before_the_script_is_sent_while_it_runs():
    # With the AOF on, replies wait for the turn's end (its group commit), so the PING's
    # reply was still unsent when the script began.
    with RedisServer("--busy-reply-threshold", THRESHOLD_MS, "--enable-debug-command", "yes",
                     "--appendonly", "yes") as redis:
        expected = answered_before_script(redis.port)
    with Respq("--busy-reply-threshold", THRESHOLD_MS, "--appendonly", "yes") as r:
        got = answered_before_script(r.port)
    assert got == expected, f"respq {got}\nredis {expected}"
    assert expected[0] == b"+PONG\r\n", expected


def test_no_reply_shows_a_write_before_it_is_in_the_aof():
    """A SET, a GET of its key and a runaway EVAL read in one turn (appendfsync always):
    while the script runs, neither the SET's reply nor the GET's (which shows the value)
    goes out, because the turn's effects are not in the AOF yet; a kill -9 meanwhile
    loses a write nobody was told about. After the script, both are answered."""
    with Respq("--busy-reply-threshold", THRESHOLD_MS, "--appendonly", "yes", "--appendfsync", "always") as r:
        with RawConn(r.port) as a, RawConn(r.port, timeout=5) as b, RawConn(r.port) as x:
            for c in (a, b, x):
                assert c.cmd("PING") == b"+PONG\r\n"
            # The three arrive while it sleeps: begun 0.3 s on, sent well before its end.
            sleeper = Runner(r.port, "DEBUG", "SLEEP", "1")
            time.sleep(0.3)
            a.send(RawConn.encode("SET", "durable-key", "value-1"))
            time.sleep(0.01)
            b.send(RawConn.encode("GET", "durable-key"))
            time.sleep(0.01)
            x.send(RawConn.encode("EVAL", SPIN, "0"))
            sleeper.join()
            wait_busy(r.port)
            b.sock.settimeout(1.0)
            try:
                early = b.read_reply()
            except TimeoutError:
                early = None
            assert early is None, f"the GET was answered {early!r} before the SET was in the AOF"
            with RawConn(r.port) as k:
                assert k.cmd("SCRIPT", "KILL") == b"+OK\r\n"
            assert x.read_reply().startswith(b"-ERR Script killed by user")
            b.sock.settimeout(10)
            assert a.read_reply() == b"+OK\r\n"
            assert b.read_reply() == b"$7\r\nvalue-1\r\n"
        r.stop()
        r.start()
        assert r.client().get("durable-key") == b"value-1"


def test_blocked_client_waits_and_is_served_after():
    with Respq("--busy-reply-threshold", THRESHOLD_MS) as r:
        blocked = Runner(r.port, "BLPOP", "jobs", "0")
        wait_until(lambda: int(r.client().info("clients")["blocked_clients"]) == 1, what="BLPOP to block")
        runner = Runner(r.port, "EVAL", SPIN, "0")
        wait_busy(r.port)
        with RawConn(r.port) as c:
            assert c.cmd("LPUSH", "jobs", "a").startswith(b"-BUSY")
            assert c.cmd("SCRIPT", "KILL") == b"+OK\r\n"
        assert runner.join().startswith(b"-ERR Script killed by user")
        time.sleep(0.2)
        assert blocked.reply is None, "the blocked client was answered while the script ran"
        r.client().lpush("jobs", "b")
        assert blocked.join() == b"*2\r\n$4\r\njobs\r\n$1\r\nb\r\n"


if __name__ == "__main__":
    run_tests(globals())
