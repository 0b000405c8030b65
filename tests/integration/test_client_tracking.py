"""CLIENT TRACKING where respq differs from a plain Redis: keys its HTTP queues change
(a refused task moved to <queue>:dead, a task taken from the list) invalidate the clients
caching them, as a client's write does; the tracking table stays under
tracking-table-max-keys; clients that go away leave nothing behind. The protocol itself is
compared with redis-server in tests/compat/scripts/tracking.txt, and Redis's own
unit/tracking runs in the Tcl suite."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RawConn, Respq, run_tests  # noqa: E402


def setup():
    return Respq()


def info_field(conn, name):
    text = conn.cmd("INFO", "everything").decode()
    for line in text.split("\r\n"):
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no {name} in INFO")


def read_push(conn, timeout=5.0):
    conn.sock.settimeout(timeout)
    try:
        return conn.read_reply()
    finally:
        conn.sock.settimeout(10.0)


def no_push(conn, wait=0.2):
    """Nothing arrives on conn within `wait` seconds."""
    conn.sock.settimeout(wait)
    try:
        if conn.buf:
            return False
        try:
            chunk = conn.sock.recv(65536)
        except TimeoutError:
            return True
        conn.buf += chunk
        return not chunk
    finally:
        conn.sock.settimeout(10.0)


def test_a_refused_task_moved_to_dead_invalidates_it(r):
    with RawConn(r.port) as t, RawConn(r.port) as b, RawConn(r.port) as w:
        w.cmd("DEL", "tasks:dead")
        assert t.cmd("HELLO", "3").startswith(b"%")
        assert t.cmd("CLIENT", "TRACKING", "on") == b"+OK\r\n"
        assert t.cmd("LRANGE", "tasks:dead", "0", "-1") == b"*0\r\n"
        assert b.cmd("HELLO", "3").startswith(b"%")
        assert b.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "tasks:d") == b"+OK\r\n"
        # Not a task: the queue's manager moves it to tasks:dead, a write no client made.
        assert w.cmd("LPUSH", "tasks", "{not json") == b":1\r\n"
        assert read_push(t) == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$10\r\ntasks:dead\r\n"
        assert read_push(b) == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$10\r\ntasks:dead\r\n"
        # Told once: the key is read again before the next change is reported.
        assert w.cmd("LPUSH", "tasks", "{not json either") == b":1\r\n"
        assert read_push(b) == b">2\r\n$10\r\ninvalidate\r\n*1\r\n$10\r\ntasks:dead\r\n"
        assert no_push(t)
        assert w.cmd("LLEN", "tasks:dead") == b":2\r\n"


def test_the_list_a_task_is_taken_from_is_invalidated(r):
    with RawConn(r.port) as t, RawConn(r.port) as w:
        assert t.cmd("HELLO", "3").startswith(b"%")
        assert t.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "tasks") == b"+OK\r\n"
        w.cmd("LPUSH", "tasks", "{not json")
        # The client's LPUSH and the manager's taking of the task both change `tasks`:
        # at least one list naming it arrives; tasks:dead changes too.
        seen = set()
        deadline = time.time() + 5
        while {"tasks", "tasks:dead"} - seen and time.time() < deadline:
            reply = read_push(t)
            assert reply.startswith(b">2\r\n$10\r\ninvalidate\r\n*"), reply
            for part in reply.split(b"\r\n"):
                if part.startswith(b"tasks"):
                    seen.add(part.decode())
        assert {"tasks", "tasks:dead"} <= seen, seen


def test_the_table_stays_under_tracking_table_max_keys(r):
    with RawConn(r.port) as t, RawConn(r.port) as w:
        assert w.cmd("CONFIG", "SET", "tracking-table-max-keys", "10") == b"+OK\r\n"
        try:
            assert t.cmd("HELLO", "3").startswith(b"%")
            assert t.cmd("CLIENT", "TRACKING", "on") == b"+OK\r\n"
            before = info_field(w, "tracking_total_keys")
            for i in range(50):
                t.send(RawConn.encode("GET", f"limit:{i}"))
            # Each command first brings the table back under its limit, then remembers its
            # key: the keys forgotten are invalidated (pushes among the replies).
            replies, pushes = 0, []
            while replies < 50:
                reply = t.read_reply()
                if reply.startswith(b">"):
                    pushes.append(reply)
                else:
                    assert reply == b"_\r\n", reply
                    replies += 1
            w.cmd("PING")  # the next command checks the limit again
            assert info_field(w, "tracking_total_keys") <= 10
            assert len(pushes) >= 50 + before - 11, (len(pushes), before)
            assert all(p.startswith(b">2\r\n$10\r\ninvalidate\r\n*1\r\n") for p in pushes)
        finally:
            w.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")
            t.cmd("CLIENT", "TRACKING", "off")


def test_clients_that_go_leave_nothing_behind(r):
    with RawConn(r.port) as w:
        w.cmd("FLUSHALL")  # (empties the table)
        base_clients = info_field(w, "tracking_clients")
        conns = [RawConn(r.port) for _ in range(20)]
        for i, c in enumerate(conns):
            if i % 2:
                assert c.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", f"p{i}:") == b"+OK\r\n"
            else:
                assert c.cmd("CLIENT", "TRACKING", "on", "REDIRECT", str(int(w.cmd("CLIENT", "ID")[1:-2]))) == b"+OK\r\n"
                c.cmd("GET", f"k{i}")
        assert info_field(w, "tracking_clients") == base_clients + 20
        assert info_field(w, "tracking_total_prefixes") >= 10
        for c in conns:
            c.close()
        deadline = time.time() + 5
        while info_field(w, "tracking_clients") != base_clients and time.time() < deadline:
            time.sleep(0.05)
        assert info_field(w, "tracking_clients") == base_clients
        assert info_field(w, "tracking_total_prefixes") == 0
        # The keys they read stay in the table until they change (as in Redis); a change
        # then finds no one to tell.
        assert info_field(w, "tracking_total_keys") == 10
        w.cmd("MSET", *[x for i in range(0, 20, 2) for x in (f"k{i}", "v")])
        assert info_field(w, "tracking_total_keys") == 0
        assert info_field(w, "tracking_total_items") == 0


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
