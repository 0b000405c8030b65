"""CLIENT PAUSE with the HTTP queues and the parts of respq a Redis suite does not see
(the replies and the Redis-visible rules are compared with redis-server in
tests/compat/scripts/pause.txt and by Redis's own unit/pause).

- While a WRITE pause is on the dataset does not change: an LPUSH waits (INFO counts its
  client blocked; CLIENT UNBLOCK does not release it), no attempt starts, and the outcome
  of an attempt that ends meanwhile is kept: the task stays in <queue>:inflight and
  nothing is published. CLIENT UNPAUSE applies the outcome, runs the LPUSH and its task is
  delivered. The AOF then replays to the same state: nothing delivered twice.
- A pause that ends by its timeout does the same without CLIENT UNPAUSE.
- A client closed while its command waits never runs it.
- Shared queues take nothing from the upstream and keep the outcomes of attempts that end.
- json-port values wait, in order, and are pushed once the pause ends.
- A write that comes after the pause's end but before the held ones ran waits behind them.
- SHUTDOWN during a pause applies the outcomes it kept: no grace period spent on them.
- The admin HTTP API answers a clear error for a change the pause would hold, instead of
  leaving the HTTP request waiting.
"""
import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RedisServer, Respq, free_port, info_field,  # noqa: E402
                     run_tests, wait_blocked, wait_until)
from link_helpers import sidecar  # noqa: E402
from test_admin_http import request  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: the HTTP queues are respq's own (target: {TARGET})")
    sys.exit(0)


def task(ep, task_id, **query):
    return json.dumps({"url": ep.url("/ok", **query), "id": task_id})


def release(ep, name):
    urllib.request.urlopen(ep.url(f"/_release/{name}"), timeout=10).read()


def send_raw(port, *args):
    """A connection that sends one command and is left waiting for its reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    return s


def json_bytes_held(c, json_port):
    """CLIENT LIST's qbuf of the json-port connection: bytes the server has read and holds."""
    for cl in c.client_list():
        if cl.get("laddr") == f"127.0.0.1:{json_port}":
            return int(cl.get("qbuf", 0))
    return 0


def read_reply(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_write_pause_holds_pushes_attempts_and_outcomes():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "--appendonly", "yes", "--appendfsync", "always") as r, \
            Outcomes(r, "tasks") as out:
        c = r.client()
        c.lpush("tasks", task(ep, "before", hold="h1"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "before")
        assert c.hlen("tasks:inflight") == 1

        assert c.execute_command("CLIENT", "PAUSE", "100000", "WRITE") == b"OK"
        pusher = send_raw(r.port, "LPUSH", "tasks", task(ep, "during"))
        wait_blocked(r.port, 1)
        pusher_id = next(cl["id"] for cl in c.client_list() if cl["cmd"] == "lpush")
        # A command the pause holds is not released by CLIENT UNBLOCK.
        assert c.execute_command("CLIENT", "UNBLOCK", pusher_id) == 0
        # The attempt in flight ends: its outcome waits with the dataset.
        release(ep, "h1")
        time.sleep(0.5)
        assert c.hlen("tasks:inflight") == 1
        assert c.llen("tasks") == 0
        assert out.all(id="before") == []
        assert ep.requests(where=lambda q: q["h"].get("x-task-id") == "during") == []
        # Reads still run (TASK GET is one).
        assert c.execute_command("TASK", "GET", "before") is not None

        assert c.execute_command("CLIENT", "UNPAUSE") == b"OK"
        assert read_reply(pusher) == b":1\r\n"
        pusher.close()
        assert out.wait(id="before", status="delivered")
        assert out.wait(id="during", status="delivered")
        wait_until(lambda: c.hlen("tasks:inflight") == 0, what="tasks:inflight empty")
        assert int(info_field(r.port, "clients", "blocked_clients")) == 0

        r.restart()
        c = r.client()
        time.sleep(0.5)
        assert c.hlen("tasks:inflight") == 0 and c.llen("tasks") == 0
        assert len(ep.requests(where=lambda q: q["h"].get("x-task-id") == "during")) == 1
        assert len(ep.requests(where=lambda q: q["h"].get("x-task-id") == "before")) == 1


def test_a_pause_ends_by_its_timeout():
    with HttpEndpoint(server="python") as ep, Respq("--http-queue", "tasks") as r, Outcomes(r, "tasks") as out:
        c = r.client()
        t0 = time.time()
        assert c.execute_command("CLIENT", "PAUSE", "600", "WRITE") == b"OK"
        pusher = send_raw(r.port, "LPUSH", "tasks", task(ep, "late"))
        wait_blocked(r.port, 1)
        assert read_reply(pusher) == b":1\r\n"
        pusher.close()
        # Not before its end (the reply came at the pause's end, give or take a tick).
        assert time.time() - t0 >= 0.55, time.time() - t0
        assert out.wait(id="late", status="delivered")


def test_a_client_closed_while_held_never_runs_its_command():
    with Respq() as r:
        c = r.client()
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        s = send_raw(r.port, "SET", "k", "v")
        wait_blocked(r.port, 1)
        s.close()
        wait_until(lambda: int(info_field(r.port, "clients", "blocked_clients")) == 0,
                   what="the closed client forgotten")
        c.execute_command("CLIENT", "UNPAUSE")
        time.sleep(0.2)
        assert c.get("k") is None
        # Killed rather than closed: the same.
        s = send_raw(r.port, "SET", "k2", "v")
        assert read_reply(s) == b"+OK\r\n"
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        s2 = send_raw(r.port, "SET", "k3", "v")
        wait_blocked(r.port, 1)
        victim = next(cl["id"] for cl in c.client_list() if cl["cmd"] == "set" and "b" in cl["flags"])
        assert c.execute_command("CLIENT", "KILL", "ID", victim) == 1
        c.execute_command("CLIENT", "UNPAUSE")
        time.sleep(0.2)
        assert c.get("k2") == b"v" and c.get("k3") is None
        s.close()
        s2.close()


def test_json_port_values_wait_in_order_and_run_after_the_pause():
    jp = free_port()
    with Respq("--json-port", str(jp), "--json-queue", "plain") as r:
        c = r.client()
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        s = socket.create_connection(("127.0.0.1", jp), timeout=10)
        # Two values in one write, then a third split across writes.
        s.sendall(b'{"n":1}\n{"n":2}\n{"n":')
        time.sleep(0.3)
        s.sendall(b'3}\n')
        time.sleep(0.3)
        assert c.llen("plain") == 0
        assert int(info_field(r.port, "clients", "blocked_clients")) == 0
        c.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: c.llen("plain") == 3, what="the three values pushed")
        assert c.lrange("plain", 0, -1) == [b'{"n":3}', b'{"n":2}', b'{"n":1}']
        # The connection goes on as before: nothing was written back to it.
        s.sendall(b'{"n":4}\n')
        wait_until(lambda: c.llen("plain") == 4, what="a value after the pause")
        s.setblocking(False)
        try:
            assert s.recv(100) == b"", "bytes written back to a json-port client"
        except BlockingIOError:
            pass
        s.close()
        assert c.ping()


def test_json_port_waits_in_arrival_order_and_is_not_closed_as_idle():
    jp = free_port()
    with Respq("--json-port", str(jp), "--json-queue", "jq", "--timeout", "1") as r:
        c = r.client()
        c.execute_command("CLIENT", "PAUSE", "2500", "WRITE")
        s = socket.create_connection(("127.0.0.1", jp), timeout=10)
        s.sendall(b'{"from":"json-first"}\n')
        # Read and held (its bytes wait in the connection's query buffer) before the RESP
        # push is sent, whatever the machine's load: pushed already counts too (the pause
        # over), as the value then also came first.
        wait_until(lambda: json_bytes_held(c, jp) > 0 or c.llen("jq") > 0,
                   timeout=15, what="the json-port value read by the server")
        later = send_raw(r.port, "LPUSH", "jq", "resp-second")
        # Longer than `timeout`: the json-port client waits, it is not idle.
        assert read_reply(later) == b":2\r\n"
        assert c.lrange("jq", 0, -1) == [b"resp-second", b'{"from":"json-first"}']
        s.sendall(b'{"n":3}\n')
        wait_until(lambda: c.llen("jq") == 3, what="the connection still open after the pause")
        later.close()
        s.close()


def test_a_command_after_the_end_waits_behind_those_held():
    """The pause ends from the timer: a write that arrives once its end has passed, but
    before the held ones ran, runs after them (a slow read-only script spans the end)."""
    with Respq() as r:
        c = r.client()
        c.execute_command("CLIENT", "PAUSE", "300", "WRITE")
        x = send_raw(r.port, "SET", "k", "x")
        wait_blocked(r.port, 1)
        y = socket.create_connection(("127.0.0.1", r.port), timeout=10)
        spin = "local i=0 while i<150000000 do i=i+1 end return i"
        y.sendall(b"".join(
            b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in a)
            for a in ([b"EVAL_RO", spin.encode(), b"0"], [b"SET", b"k", b"y"], [b"GET", b"k"])))
        assert read_reply(x) == b"+OK\r\n"
        y.settimeout(20)
        got = b""
        while not got.endswith(b"$1\r\ny\r\n") and len(got) < 200:
            chunk = y.recv(4096)
            if not chunk:
                break
            got += chunk
        assert got.endswith(b"+OK\r\n$1\r\ny\r\n"), got
        assert c.get("k") == b"y"
        x.close()
        y.close()


def test_shutdown_during_a_pause_applies_the_outcomes_it_kept():
    with HttpEndpoint(server="python") as ep, \
            Respq("--http-queue", "tasks", "--appendonly", "yes", "--shutdown-grace", "20") as r:
        c = r.client()
        c.lpush("tasks", task(ep, "kept", hold="h2"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "kept")
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        release(ep, "h2")
        time.sleep(0.3)
        assert c.hlen("tasks:inflight") == 1
        t0 = time.time()
        r.stop()
        # Not the grace period: the task is done, nothing is in flight.
        assert time.time() - t0 < 10, time.time() - t0
        r.start()
        c = r.client()
        time.sleep(0.5)
        assert c.hlen("tasks:inflight") == 0 and c.llen("tasks") == 0
        assert len(ep.requests(where=lambda q: q["h"].get("x-task-id") == "kept")) == 1


def test_shared_queues_start_nothing_and_keep_outcomes_during_a_pause():
    with RedisServer() as up, HttpEndpoint(server="python") as ep, \
            sidecar(up, "A", "--http-queue", "tasks", "off", "--http-queue", "jobs", "shared", "yes") as a, \
            Outcomes(a, "jobs") as out:
        c = a.client()
        c.lpush("jobs", task(ep, "s1", hold="h4"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "s1")
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        release(ep, "h4")
        up.client().lpush("jobs", task(ep, "s2"))
        time.sleep(0.6)
        assert out.all(id="s1") == [], out.items
        assert ep.requests(where=lambda q: q["h"].get("x-task-id") == "s2") == []
        c.execute_command("CLIENT", "UNPAUSE")
        assert out.wait(id="s1", status="delivered")
        assert out.wait(id="s2", status="delivered")


def test_admin_api_refuses_a_change_the_pause_would_hold():
    port = free_port()
    with HttpEndpoint(server="python") as ep, Respq("--admin-port", str(port), "--http-queue", "tasks") as r:
        c = r.client()
        c.execute_command("CLIENT", "PAUSE", "100000", "WRITE")
        st, _, body = request(port, "POST", "/api/queues/tasks/tasks", {"url": ep.url("/ok")})
        assert st >= 400, (st, body)
        assert b"paused" in body, body
        # A read still answers.
        assert request(port, "GET", "/api/queues")[0] == 200
        assert c.llen("tasks") == 0
        c.execute_command("CLIENT", "UNPAUSE")
        st, _, body = request(port, "POST", "/api/queues/tasks/tasks", {"url": ep.url("/ok")})
        assert st < 300, (st, body)
        ep.wait_requests(1, path="/ok")
        assert int(info_field(r.port, "clients", "blocked_clients")) == 0


if __name__ == "__main__":
    run_tests(globals())
