"""Limits and defences seen on raw sockets: requirepass and what works before AUTH, the
unauthenticated request limits, maxclients, cross-protocol (HTTP) requests, protocol
errors and oversized bulk lengths. Replies are compared byte for byte with Redis 7."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RawConn, Respq, run_tests, wait_blocked, wait_until  # noqa: E402

PASSWORD = "limits-pass"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
HELLO_NOAUTH = (b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                b"HELLO AUTH <user> <pass> option can be used to authenticate the client and "
                b"select the RESP protocol version at the same time\r\n")


class Servers:
    """A broker without a password, shared by the tests that need nothing special."""

    def __init__(self):
        self.r = Respq()

    def dump_log(self):
        self.r.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)


def send_expect_close(port, data, expected_reply, timeout=5.0):
    """Sends data on a fresh connection; the server must answer exactly expected_reply
    (b"" for nothing at all) and then close the connection."""
    with RawConn(port, timeout=timeout) as c:
        c.send(data)
        closed = c.closed_by_peer(timeout=timeout)
        assert c.buf == expected_reply, f"{data[:60]!r}: reply {c.buf[:200]!r}, want {expected_reply!r}"
        assert closed, f"{data[:60]!r}: connection left open after {c.buf[:200]!r}"


def test_before_auth_only_auth_hello_quit_and_reset_are_accepted():
    with Respq("--requirepass", PASSWORD) as r:
        with r.raw() as c:
            for args in (("PING",), ("LPUSH", "k", "v"), ("ECHO", "x"), ("CLIENT", "ID"),
                         ("SELECT", "0"), ("INFO",), ("COMMAND", "DOCS"), ("SUBSCRIBE", "ch"),
                         ("MULTI",), ("SHUTDOWN",)):
                assert c.cmd(*args) == NOAUTH, args
            # Redis looks the command up and checks its arity before the auth check.
            assert c.cmd("NOSUCHCOMMAND", "a") == (
                b"-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'a' \r\n")
            assert c.cmd("LPUSH", "k") == b"-ERR wrong number of arguments for 'lpush' command\r\n"
            c.send(b"PING\r\n")  # inline form too
            assert c.read_reply() == NOAUTH
            assert c.cmd("HELLO", "3") == HELLO_NOAUTH
            assert c.cmd("HELLO") == HELLO_NOAUTH
            assert c.cmd("HELLO", "3", "AUTH", "default", "wrong") == WRONGPASS
            assert c.cmd("RESET") == b"+RESET\r\n"
            assert c.cmd("AUTH") == b"-ERR wrong number of arguments for 'auth' command\r\n"
            assert c.cmd("AUTH", "wrong") == WRONGPASS
            assert c.cmd("AUTH", "nobody", PASSWORD) == WRONGPASS
            assert c.cmd("LLEN", "k") == NOAUTH, "a failed AUTH must not authenticate"
            assert c.cmd("AUTH", PASSWORD) == b"+OK\r\n"
            assert c.cmd("LPUSH", "k", "v") == b":1\r\n"
            assert c.cmd("AUTH", "default", PASSWORD) == b"+OK\r\n"
            # RESET logs the connection out again when a password is required.
            assert c.cmd("RESET") == b"+RESET\r\n"
            assert c.cmd("LLEN", "k") == NOAUTH
        with r.raw() as c:
            hello = c.cmd("HELLO", "3", "AUTH", "default", PASSWORD)
            assert hello.startswith(b"%") and b"$5\r\nproto\r\n:3\r\n" in hello, hello
            assert c.cmd("LPOP", "missing") == b"_\r\n"
            assert c.cmd("LLEN", "k") == b":1\r\n"
        with r.raw() as c:
            assert c.cmd("QUIT") == b"+OK\r\n"
            assert c.closed_by_peer(), "QUIT before AUTH must close the connection"


def test_auth_without_requirepass_is_an_error_but_default_user_accepts(s):
    with s.r.raw() as c:
        assert c.cmd("AUTH", "x") == (b"-ERR AUTH <password> called without any password configured for "
                                      b"the default user. Are you sure your configuration is correct?\r\n")
        assert c.cmd("AUTH", "default", "anything") == b"+OK\r\n"
        assert c.cmd("PING") == b"+PONG\r\n"


def test_unauthenticated_clients_have_small_multibulk_and_bulk_limits():
    with Respq("--requirepass", PASSWORD) as r:
        send_expect_close(r.port, b"*11\r\n", b"-ERR Protocol error: unauthenticated multibulk length\r\n")
        send_expect_close(r.port, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
                          b"-ERR Protocol error: unauthenticated bulk length\r\n")
        # At the limits, requests are read and answered normally.
        with r.raw() as c:
            assert c.cmd("RPUSH", "k", *["v"] * 8) == NOAUTH  # 10 elements
            assert c.cmd("ECHO", "x" * 16384) == NOAUTH
            assert c.cmd("AUTH", PASSWORD) == b"+OK\r\n"
            # Authenticated: the normal limits apply.
            assert c.cmd("RPUSH", "k", *[str(i) for i in range(100)]) == b":100\r\n"
            big = b"y" * 200_000
            assert c.cmd("ECHO", big) == b"$200000\r\n" + big + b"\r\n"
            assert c.cmd("DEL", "k") == b":1\r\n"


def test_max_clients_reached_is_an_error_then_close():
    with Respq("--maxclients", "3") as r:
        conns = [r.raw()]
        assert conns[0].cmd("PING") == b"+PONG\r\n"
        wait_until(lambda: b"connected_clients:1\r\n" in conns[0].cmd("INFO", "clients"),
                   what="only this client connected")
        for _ in range(2):
            conns.append(r.raw())
            assert conns[-1].cmd("PING") == b"+PONG\r\n"
        send_expect_close(r.port, b"", b"-ERR max number of clients reached\r\n")
        # The error does not disturb the connected clients.
        for c in conns:
            assert c.cmd("PING") == b"+PONG\r\n"
        conns.pop().close()

        def slot_free():
            with RawConn(r.port) as c:
                try:
                    return c.cmd("PING") == b"+PONG\r\n"
                except ConnectionError:
                    return False
        wait_until(slot_free, what="a slot frees up after a client leaves")
        for c in conns:
            c.close()


def test_http_request_lines_close_the_connection_without_a_reply(s):
    for data in (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nLPUSH x y\r\n",
                 b"Host: 127.0.0.1:6379\r\n",
                 b"post /x HTTP/1.0\r\n",
                 b"HOST: a\r\n"):
        send_expect_close(s.r.port, data, b"")
    with s.r.raw() as c:
        assert c.cmd("EXISTS", "x") == b":0\r\n", "the body of the HTTP request must not run"
        assert c.cmd("PING") == b"+PONG\r\n"


def test_protocol_errors_are_answered_then_closed_while_others_keep_working(s):
    port = s.r.port
    waiter = s.r.raw(timeout=30)
    waiter.send(RawConn.encode("BRPOP", "lim:q", "20"))
    idle = s.r.raw()
    try:
        wait_blocked(port, 1)
        for data, reply in (
            (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
            (b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
            (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
            (b'ECHO "abc\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
            # Just over the 64 KB inline limit, so the server has read every byte when it
            # refuses (unread bytes would turn the close into a reset).
            (b"x" * 65_537, b"-ERR Protocol error: too big inline request\r\n"),
            # Replies to the commands before the bad one are sent first.
            (b"PING\r\n*1\r\n$4\r\nPING\r\n*zz\r\n",
             b"+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"),
        ):
            send_expect_close(port, data, reply)
        assert idle.cmd("PING") == b"+PONG\r\n"
        assert idle.cmd("LPUSH", "lim:q", "after-errors") == b":1\r\n"
        assert waiter.read_reply() == b"*2\r\n$5\r\nlim:q\r\n$12\r\nafter-errors\r\n"
        assert waiter.cmd("PING") == b"+PONG\r\n"
    finally:
        waiter.close()
        idle.close()


def test_bulk_length_beyond_proto_max_bulk_len_is_refused(s):
    port = s.r.port
    t0 = time.time()
    send_expect_close(port, b"*2\r\n$4\r\nECHO\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n")
    send_expect_close(port, b"*1\r\n$99999999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n")
    assert time.time() - t0 < 5, "refusing a huge bulk must not wait for (or allocate) its data"
    with s.r.raw() as c:
        value = bytes(range(256)) * 4096  # 1 MB, every byte value
        assert c.cmd("ECHO", value) == b"$%d\r\n" % len(value) + value + b"\r\n"


def test_inline_commands_work_like_telnet(s):
    with s.r.raw() as c:
        c.send(b"RPUSH lim:inline a 'b c' \"d\\x41\"\r\nLRANGE lim:inline 0 -1\nDEL lim:inline\r\n\r\nPING\r\n")
        assert c.read_reply() == b":3\r\n"
        assert c.read_reply() == b"*3\r\n$1\r\na\r\n$3\r\nb c\r\n$2\r\ndA\r\n"
        assert c.read_reply() == b":1\r\n"
        assert c.read_reply() == b"+PONG\r\n"


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
