"""redis-cli (7.0) against the broker, as an operator uses it: the REPL fed by a pipe,
--pipe mass insert, -3, --scan, MONITOR, -a, --raw."""
import os
import queue
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, run, run_tests  # noqa: E402

PASSWORD = "cli-pass-1"


class Server:
    def __init__(self):
        self.r = Respq()

    def dump_log(self):
        self.r.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)


def cli(port, *args, input=None, check=True):
    return run(["redis-cli", "-p", str(port)] + list(args), input=input, timeout=60, check=check)


def test_repl_with_stdin_as_a_pipe_runs_commands_and_prints_replies(s):
    # Without arguments redis-cli starts its REPL (sending COMMAND DOCS first for its
    # hints) even when stdin is a pipe; it prints raw replies because stdout is not a tty.
    cli(s.r.port, "del", "cli:repl")
    p = cli(s.r.port, input='rpush cli:repl a "b c" d\nllen cli:repl\nlrange cli:repl 0 -1\n'
                            'lpop cli:missing\nfoo bar\nping\n')
    assert p.stderr == "", p.stderr
    assert p.stdout == ("3\n3\na\nb c\nd\n\n"
                        "ERR unknown command 'foo', with args beginning with: 'bar' \n\n"
                        "PONG\n"), repr(p.stdout)


def test_pipe_mass_insert_of_100000_rpush(s):
    n = 100_000
    key = b"cli:mass"
    cmds = []
    for i in range(n):
        v = b"job-%d" % i
        cmds.append(b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(v), v))
    p = subprocess.run(["redis-cli", "-p", str(s.r.port), "--pipe"], input=b"".join(cmds),
                       capture_output=True, timeout=120)
    out = p.stdout.decode()
    assert p.returncode == 0, (p.returncode, out, p.stderr)
    assert "All data transferred. Waiting for the last reply..." in out, out
    assert "Last reply received from server." in out, out
    assert f"errors: 0, replies: {n}" in out, out
    assert cli(s.r.port, "llen", "cli:mass").stdout == f"{n}\n"
    assert cli(s.r.port, "lindex", "cli:mass", "0").stdout == "job-0\n"
    assert cli(s.r.port, "lindex", "cli:mass", "-1").stdout == f"job-{n - 1}\n"
    cli(s.r.port, "del", "cli:mass")


def test_pipe_counts_error_replies_and_exits_non_zero(s):
    p = subprocess.run(["redis-cli", "-p", str(s.r.port), "--pipe"],
                       input=b"RPUSH cli:perr a\r\nLPUSH cli:perr\r\nRPUSH cli:perr b\r\n",
                       capture_output=True, timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 1, (p.returncode, out)
    assert "errors: 1, replies: 3" in out, out
    assert "ERR wrong number of arguments for 'lpush' command" in p.stderr.decode(), p.stderr
    assert cli(s.r.port, "lrange", "cli:perr", "0", "-1").stdout == "a\nb\n"
    cli(s.r.port, "del", "cli:perr")


def test_resp3_with_dash_3(s):
    port = s.r.port
    hello = cli(port, "-3", "--no-raw", "hello", "3").stdout
    assert re.search(r'^\d+# "proto" => \(integer\) 3$', hello, re.M), hello
    assert re.search(r'^\d+# "version" => "\d+\.\d+\.\d+"$', hello, re.M), hello
    assert re.search(r'^\d+# "id" => \(integer\) \d+$', hello, re.M), hello
    assert hello.startswith('1# "server" => '), hello
    assert cli(port, "-3", "--no-raw", "config", "get", "timeout").stdout == '1# "timeout" => "0"\n'
    cli(port, "del", "cli:r3")
    assert cli(port, "-3", "--no-raw", "rpush", "cli:r3", "a", "b").stdout == "(integer) 2\n"
    assert cli(port, "-3", "--no-raw", "lrange", "cli:r3", "0", "-1").stdout == '1) "a"\n2) "b"\n'
    assert cli(port, "-3", "--no-raw", "lpop", "cli:none").stdout == "(nil)\n"
    assert cli(port, "-3", "--no-raw", "blpop", "cli:none", "0.1").stdout == "(nil)\n"
    assert cli(port, "-3", "--no-raw", "lpop", "cli:none", "2").stdout == "(nil)\n"
    # The same as RESP2 for comparison: CONFIG GET is a flat array there.
    assert cli(port, "--no-raw", "config", "get", "timeout").stdout == '1) "timeout"\n2) "0"\n'
    cli(port, "del", "cli:r3")


def test_scan_with_pattern_lists_matching_keys(s):
    port = s.r.port
    for i in range(40):
        cli(port, "rpush", f"cli:scan:{i}", "x")
    cli(port, "rpush", "cli:other", "x")
    out = cli(port, "--scan", "--pattern", "cli:scan:1*").stdout
    assert sorted(out.split()) == sorted(["cli:scan:1"] + [f"cli:scan:1{i}" for i in range(10)]), out
    everything = cli(port, "--scan").stdout.split()
    assert set(everything) >= {f"cli:scan:{i}" for i in range(40)} | {"cli:other"}, everything
    assert len(everything) == len(set(everything)), "duplicate keys in a full scan"
    assert cli(port, "--scan", "--pattern", "cli:nomatch:*").stdout == ""
    cli(port, "del", *[f"cli:scan:{i}" for i in range(40)], "cli:other")


def test_monitor_shows_commands_run_by_another_client(s):
    port = s.r.port
    mon = subprocess.Popen(["redis-cli", "-p", str(port), "monitor"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l.rstrip("\n")) for l in mon.stdout], daemon=True)
    reader.start()
    try:
        assert lines.get(timeout=10) == "OK"
        cli(port, "rpush", "cli:mon", "a b", 'q"uote')
        cli(port, "lrange", "cli:mon", "0", "-1")
        cli(port, "-n", "3", "set", "cli:mon3", "v")  # the line names the database
        seen = []
        want = [("0", '"rpush" "cli:mon" "a b" "q\\"uote"'), ("0", '"lrange" "cli:mon" "0" "-1"'),
                ("3", '"set" "cli:mon3" "v"')]
        line_re = re.compile(r'^\d+\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\] (.*)$')
        while want:
            line = lines.get(timeout=10)
            seen.append(line)
            m = line_re.match(line)
            assert m, f"MONITOR line not in Redis format: {line!r}"
            if (m.group(1), m.group(2)) == want[0]:
                want.pop(0)
    except queue.Empty:
        raise AssertionError(f"MONITOR did not show the commands; saw {seen!r}")
    finally:
        mon.terminate()
        mon.wait(10)
    cli(port, "del", "cli:mon")
    cli(port, "-n", "3", "del", "cli:mon3")


def test_dash_a_with_requirepass():
    with Respq("--requirepass", PASSWORD) as r:
        p = cli(r.port, "-a", PASSWORD, "--no-auth-warning", "rpush", "cli:auth", "a", "b")
        assert (p.stdout, p.stderr) == ("2\n", ""), p
        p = cli(r.port, "-a", PASSWORD, "lrange", "cli:auth", "0", "-1")
        assert p.stdout == "a\nb\n", p
        assert "Warning: Using a password with '-a' or '-u' option" in p.stderr, p.stderr
        p = cli(r.port, "--user", "default", "--pass", PASSWORD, "--no-auth-warning", "llen", "cli:auth")
        assert p.stdout == "2\n", p
        env = dict(os.environ, REDISCLI_AUTH=PASSWORD)
        p = run(["redis-cli", "-p", str(r.port), "llen", "cli:auth"], env=env)
        assert p.stdout == "2\n", p
        p = cli(r.port, "-a", "not-" + PASSWORD, "--no-auth-warning", "llen", "cli:auth")
        assert "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." in p.stderr, p
        assert p.stdout.startswith("NOAUTH Authentication required."), p
        p = cli(r.port, "llen", "cli:auth")
        assert p.stdout.startswith("NOAUTH Authentication required."), p
        p = cli(r.port, "-a", PASSWORD, "--no-auth-warning", "--no-raw", "ping")
        assert p.stdout == "PONG\n", p


def test_raw_lrange_prints_values_unquoted_one_per_line(s):
    port = s.r.port
    cli(port, "del", "cli:raw")
    values = ["plain", "with space", 'q"uote', "\u00fcn\u00ef", "tab\there", ""]
    cli(port, "rpush", "cli:raw", *values)
    assert cli(port, "--raw", "lrange", "cli:raw", "0", "-1").stdout == "".join(v + "\n" for v in values)
    assert cli(port, "--no-raw", "lrange", "cli:raw", "0", "-1").stdout == (
        '1) "plain"\n2) "with space"\n3) "q\\"uote"\n4) "\\xc3\\xbcn\\xc3\\xaf"\n'
        '5) "tab\\there"\n6) ""\n')
    assert cli(port, "--raw", "lrange", "cli:none", "0", "-1").stdout == "\n"
    assert cli(port, "--no-raw", "lrange", "cli:none", "0", "-1").stdout == "(empty array)\n"
    cli(port, "del", "cli:raw")


def test_info_memory_names_the_allocator_in_use(s):
    # respq-server links mimalloc (not in sanitizer builds): INFO says which one runs,
    # like Redis's "jemalloc-5.3.0".
    from harness import SERVER
    needed = run(["readelf", "-d", SERVER]).stdout
    out = cli(s.r.port, "INFO", "memory").stdout
    alloc = re.search(r"^mem_allocator:(\S+)\r?$", out, re.M).group(1)
    if "libmimalloc" in needed:
        assert re.fullmatch(r"mimalloc-\d+\.\d+\.\d+", alloc), alloc
    else:
        assert alloc == "libc", alloc


if __name__ == "__main__":
    run_tests(globals(), setup=Server)
