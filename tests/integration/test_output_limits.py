"""client-output-buffer-limit, as in Redis: a client that pipelines requests and never
reads its replies is closed once its unsent output reaches the hard limit (Redis's log
line, the connection gone from CLIENT LIST), while another client keeps getting its
PINGs answered the whole time. The same test runs against redis-server with the same
limit. respq's default limits normal clients (Redis's does not); a user can loosen it."""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisServer, Respq, RawConn, run_tests, wait_until  # noqa: E402

LOG_LINE = "scheduled to be closed ASAP for overcoming of output buffer limits"


class Pinger(threading.Thread):
    """PINGs on its own connection until stopped; records every reply."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.conn = RawConn(port, timeout=30)
        self.replies = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.replies.append(self.conn.cmd("PING"))

    def finish(self):
        self.stop.set()
        self.join(60)
        self.conn.close()
        assert not self.is_alive(), "the pinging client got stuck"
        return self.replies


def greedy_client(port, request, count):
    """Connects, takes its id, then sends `count` copies of `request` (bytes) and never
    reads. Returns (socket, client id, bytes it managed to send before the server
    closed it or it sent them all)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.sendall(RawConn.encode("CLIENT", "ID"))
    data = b""
    while not data.endswith(b"\r\n"):
        data += s.recv(100)
    cid = int(data[1:-2])
    sent = 0
    payload = request * count
    s.settimeout(30)
    try:
        while sent < len(payload):
            sent += s.send(payload[sent:sent + 65536])
    except OSError:
        pass  # closed by the server: what this test expects to happen
    return s, cid, sent


def client_ids(conn):
    text = conn.cmd("CLIENT", "LIST").decode()
    return {int(part[3:]) for line in text.split("\n") for part in line.split() if part.startswith("id=")}


def check_greedy_client_is_cut_and_others_served(server):
    with server.raw() as c:
        assert c.cmd("SET", "big", "x" * 100000) == b"+OK\r\n"
        assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == b"+OK\r\n"
    pinger = Pinger(server.port)
    pinger.start()
    wait_until(lambda: pinger.replies, what="the first PONG")
    # 3000 GETs of 100 KB: 300 MB of replies if nothing stopped them.
    s, cid, sent = greedy_client(server.port, RawConn.encode("GET", "big"), 3000)
    try:
        with server.raw() as c:
            wait_until(lambda: cid not in client_ids(c), timeout=30, what="the greedy client to be closed")
        wait_until(lambda: LOG_LINE in server.log_text(), what="the output buffer limit log line")
        n = len(pinger.replies)
        wait_until(lambda: len(pinger.replies) > n + 10, what="more PONGs after the cut")
    finally:
        s.close()
        replies = pinger.finish()
    assert replies and all(r == b"+PONG\r\n" for r in replies), set(replies)
    return sent


def test_a_client_that_never_reads_is_cut_at_its_limit_on_respq():
    with Respq() as r:
        check_greedy_client_is_cut_and_others_served(r)
        assert r.client().ping()


def test_the_same_client_is_cut_by_redis_server():
    with RedisServer() as redis:
        check_greedy_client_is_cut_and_others_served(redis)


def test_defaults_and_config_set_as_in_redis():
    with Respq() as r:
        c = r.client()
        assert c.config_get("client-output-buffer-limit") == {
            "client-output-buffer-limit":
                "normal 268435456 67108864 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60"}
        with r.raw() as raw:
            assert raw.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 pubsub 64mb 16mb 30") == b"+OK\r\n"
            assert raw.cmd("CONFIG", "GET", "client-output-buffer-limit") == (
                b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$68\r\n"
                b"normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 30\r\n")
            bad = raw.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb")
            assert bad.startswith(b"-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit')"), bad
    with RedisServer() as redis, redis.raw() as raw:
        # Redis's answer for the same loosened setting, byte for byte.
        assert raw.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0 pubsub 64mb 16mb 30") == b"+OK\r\n"
        assert raw.cmd("CONFIG", "GET", "client-output-buffer-limit") == (
            b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$68\r\n"
            b"normal 0 0 0 slave 268435456 67108864 60 pubsub 67108864 16777216 30\r\n")


def test_a_loosened_limit_lets_a_slow_reader_have_a_large_reply():
    # 40 MB pending for a client that reads late: over a 1 MB limit it would be cut.
    with Respq("--client-output-buffer-limit", "normal", "0", "0", "0") as r:
        with r.raw() as c:
            assert c.cmd("SET", "big", "y" * 1000000) == b"+OK\r\n"
        s, cid, sent = greedy_client(r.port, RawConn.encode("GET", "big"), 40)
        try:
            assert sent == len(RawConn.encode("GET", "big")) * 40
            # The 40 requests arrive in one read: once the server shows this client ran
            # a GET, all 40 replies are built and wait for the reader.
            def ran_get():
                with r.raw() as c:
                    return any(f"id={cid} " in line and " cmd=get" in line
                               for line in c.cmd("CLIENT", "LIST").decode().split("\n"))
            wait_until(ran_get, what="the GETs to run")
            got = 0
            s.settimeout(30)
            while got < 40 * 1000000:
                chunk = s.recv(1 << 20)
                assert chunk, f"closed after {got} bytes"
                got += len(chunk)
        finally:
            s.close()
        assert LOG_LINE not in r.log_text()


def tiny_limit_answers(server):
    """With limits of a few bytes, the replies a client gets (each short reply fits the
    16 KB that never counts) and whether a 40 KB reply, left unread behind a stalled
    reader, then closes it."""
    with server.raw() as c:
        out = [c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1 2 3"), c.cmd("PING"),
               c.cmd("SET", "k", "v" * 10000), c.cmd("GET", "k")[:20], c.cmd("LPUSH", "l", "a")]
        assert c.cmd("SET", "big", "z" * 40000) == b"+OK\r\n"
    s, cid, _ = greedy_client(server.port, RawConn.encode("GET", "big"), 50)
    try:
        with server.raw() as c:
            wait_until(lambda: cid not in client_ids(c), timeout=30, what="the client with 2 MB unread to be closed")
            out.append(c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"))
    finally:
        s.close()
    return out


def test_only_output_beyond_16_kb_counts_as_on_redis():
    # Redis counts only its reply list, not the 16 KB buffer before it: a limit of a byte
    # leaves short replies alone, and CLIENT LIST's omem shows the same.
    with RedisServer() as redis, Respq() as r:
        want = tiny_limit_answers(redis)
        got = tiny_limit_answers(r)
    assert got == want, f"redis-server {want!r}, respq {got!r}"
    assert want[1] == b"+PONG\r\n"


if __name__ == "__main__":
    run_tests(globals())
