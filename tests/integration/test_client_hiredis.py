"""hiredis (the C client, Debian's 0.14) against the broker.

Runs the respq-hiredis-client program (tests/integration/native, path in
RESPQ_HIREDIS_CLIENT) and compares the replies it prints with what Redis 7 answers.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HIREDIS_CLIENT, Respq, run, run_tests  # noqa: E402


def esc(data):
    """The C program's escaping: printable ASCII kept except \\ , ( ) which become \\xHH."""
    if isinstance(data, str):
        data = data.encode()
    return "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in "\\,()" else f"\\x{b:02x}"
                   for b in data)


def hiredis(port, *args):
    assert os.access(HIREDIS_CLIENT, os.X_OK), (
        f"hiredis client not built: {HIREDIS_CLIENT} (build target respq-hiredis-client)")
    p = run([HIREDIS_CLIENT, str(port)] + [str(a) for a in args], timeout=60, check=False)
    assert p.returncode == 0, f"hiredis client {args} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout.splitlines()


def expect_lines(got, expected):
    assert got == expected, "hiredis client output differs:\n" + "\n".join(
        f"{'  ' if g == e else '!!'} got {g!r}\n   want {e!r}"
        for g, e in zip(got + [None] * (len(expected) - len(got)),
                        expected + [None] * (len(got) - len(expected))))


class Server:
    def __init__(self):
        self.r = Respq()

    def dump_log(self):
        self.r.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)


def test_sync_commands_and_error_replies(s):
    expect_lines(hiredis(s.r.port, "basic"), [
        "ping status:PONG",
        "echo string:hello hiredis",
        "del integer:0",
        "rpush integer:3",
        "lrange array[3](string:a,string:b,string:c)",
        "lpop-missing nil",
        "lpop-count-missing nil",
        "lpop-count array[2](string:a,string:b)",
        "unknown error:" + esc("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' 'y' "),
        "arity error:ERR wrong number of arguments for 'lpush' command",
        "client-setname status:OK",
        "client-getname string:hiredis-app",
        "llen integer:1",
    ])


def test_pipelining_appended_commands_get_every_reply_in_order(s):
    n = 5000
    expect_lines(hiredis(s.r.port, "pipeline", n), [
        "del integer:0",
        f"reply-{n + 1} integer:{n}",
        f"reply-{n + 2} string:item-0",
        f"reply-{n + 3} string:item-{n - 1}",
        f"reply-{n + 4} array[3](string:item-0,string:item-1,string:item-2)",
        "check ok pipelined RPUSH replies count 1..n in order",
    ])
    assert s.r.client().llen("hiredis:pipe") == n


def test_binary_safe_keys_and_values_with_nul_and_crlf(s):
    all_bytes = bytes(range(256))
    expect_lines(hiredis(s.r.port, "binary"), [
        "rpush-0 integer:1",
        "rpush-1 integer:2",
        "rpush-2 integer:3",
        "rpush-3 integer:4",
        "rpush-4 integer:5",
        "rpush-5 integer:6",
        "check ok LRANGE returns every binary value byte for byte",
        "lrange-without-big array[6](" + ",".join(
            "string:" + esc(v) for v in [b"\0", b"a\r\nb", b"*1\r\n$4\r\nPING\r\n", b"", all_bytes, b""]) + ")",
        "lindex-1 string:" + esc(b"a\r\nb"),
        "exists-binary-key integer:1",
        "exists-truncated-key integer:0",
        "ping-after status:PONG",
        "del integer:1",
    ])


def test_blocking_brpop_served_by_another_connection(s):
    expect_lines(hiredis(s.r.port, "blocking"), [
        "del integer:0",
        "lpush integer:1",
        "brpop array[2](string:hiredis:blk,string:served-value)",
        "pipelined-after-brpop string:after-brpop",
        "check ok BRPOP was served by the push, not by its timeout",
        "llen-after integer:0",
        "brpop-timeout nil",
        "check ok BRPOP 0.2 timed out after about 0.2 s",
        "rpush integer:2",
        "blpop-ready array[2](string:hiredis:blk,string:x)",
    ])


if __name__ == "__main__":
    run_tests(globals(), setup=Server)
