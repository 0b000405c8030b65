"""The event loop's busy polling (`busy-poll`, microseconds): an idle server sleeps
instead of polling, the setting is read and changed with CONFIG like any other, and the
loop without polling (busy-poll 0) serves requests, timers and blocked clients the same."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, cpu_seconds, run_tests, start_error, wait_blocked  # noqa: E402


def serve_basics(r):
    """Requests, pipelines, a timer (BLPOP timeout) and a push waking a blocked client."""
    c = r.client()
    assert c.ping() is True
    p = c.pipeline(transaction=False)
    for i in range(1000):
        p.rpush("q", i)
    assert p.execute()[-1] == 1000
    assert c.lrange("q", 0, 2) == [b"0", b"1", b"2"]
    t0 = time.monotonic()
    assert c.blpop("empty", timeout=0.2) is None
    assert time.monotonic() - t0 >= 0.19
    got = []
    waiter = threading.Thread(target=lambda: got.append(r.client().brpop("wake", timeout=10)))
    waiter.start()
    wait_blocked(r.port, 1)
    c.lpush("wake", "job")
    waiter.join(10)
    assert got == [(b"wake", b"job")], got


def test_idle_server_sleeps():
    # After a burst that keeps the loop polling, an idle server must go back to sleeping:
    # polling for ever would cost a whole core. Default setting, then a long window.
    for args in ((), ("--busy-poll", "10000")):
        with Respq("--http-queue", "tasks", "off", *args) as r:
            c = r.client()
            for _ in range(20):
                p = c.pipeline(transaction=False)
                for i in range(500):
                    p.ping()
                p.execute()
            time.sleep(0.3)
            before = cpu_seconds(r.proc.pid)
            time.sleep(2.0)
            used = cpu_seconds(r.proc.pid) - before
            # Sleeping, the server wakes 10 times a second for its timers; polling would
            # use the whole 2 s. Anything under a quarter of that is a sleeping loop.
            assert used < 0.5, f"idle server used {used:.2f} s of CPU in 2 s with {args or 'defaults'}"


def test_config_get_set():
    with Respq("--busy-poll", "20") as r:
        c = r.client()
        assert c.config_get("busy-poll") == {"busy-poll": "20"}
        assert c.config_set("busy-poll", 0) is True
        assert c.config_get("busy-poll") == {"busy-poll": "0"}
        serve_basics(r)
        c.flushall()
        assert c.config_set("busy-poll", 200) is True
        serve_basics(r)
        for bad in ("-1", "abc", "10001"):
            reply = r.cli("CONFIG", "SET", "busy-poll", bad, check=False).stdout
            assert "ERR CONFIG SET failed (possibly related to argument 'busy-poll')" in reply, reply
        assert c.config_get("busy-poll") == {"busy-poll": "200"}


def test_no_polling_from_start():
    with Respq("--busy-poll", "0") as r:
        serve_basics(r)
    # A refused value stops the start with the directive named.
    log = start_error("--busy-poll", "lots")
    assert "busy-poll" in log, log


if __name__ == "__main__":
    run_tests(globals())
