"""A daemon's habits: what a service manager and logrotate do to respq. SIGHUP reopens
the log file (logrotate renames it, then sends HUP) and never stops the server; a
daemonized server's log lines carry the daemon's pid, the one in its pidfile."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, run, run_tests, wait_until, wait_port, free_port, SERVER  # noqa: E402


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def test_sighup_reopens_the_log_file_and_the_server_keeps_serving():
    # The harness waits for the ready line on standard output: here it goes to the file.
    with Respq("--logfile", "respq.log", start=False) as r:
        r.start(wait=False)
        wait_port(r.port, proc=r.proc)
        path = os.path.join(r.dir, "respq.log")
        wait_until(lambda: "Ready to accept connections" in read(path), what="start-up lines in the log file")
        c = r.client()
        assert c.ping()
        rotated = path + ".1"
        os.rename(path, rotated)  # what logrotate does before it signals
        r.signal(signal.SIGHUP)
        # A fresh file at the configured path, with the reopen line first.
        wait_until(lambda: "log file reopened" in read(path), what="a new log file after SIGHUP")
        assert r.alive(), f"SIGHUP stopped the server (exit {r.proc.returncode})"
        assert c.ping()
        assert c.lpush("plain", "x") == 1
        # New lines go to the new file, none to the rotated one.
        before = read(rotated)
        c.config_set("loglevel", "verbose")
        c2 = r.client()
        c2.ping()
        c2.close()
        r.signal(signal.SIGHUP)
        wait_until(lambda: read(path).count("log file reopened") == 2, what="second reopen line")
        assert read(rotated) == before, "lines were written to the rotated file after the reopen"
        pid = str(r.proc.pid)
        assert all(line.startswith(pid + ":") for line in read(path).splitlines()), read(path)
        # Several rotations in a row, each seen before the next (pending signals of one
        # kind merge into one, so a burst would count as fewer).
        for n in range(3, 8):
            r.signal(signal.SIGHUP)
            wait_until(lambda: read(path).count("log file reopened") == n, what=f"reopen line {n}")
        assert c.ping() and r.alive()
        assert r.stop() == 0


def test_sighup_while_logging_to_standard_output_changes_nothing():
    with Respq() as r:
        r.signal(signal.SIGHUP)
        wait_until(lambda: "Received SIGHUP" in r.log_text(), what="SIGHUP noted")
        assert r.alive()
        assert r.client().ping()


def test_a_daemonized_server_logs_with_the_daemons_pid():
    port = free_port()
    with Respq(start=False) as r:
        log = os.path.join(r.dir, "d.log")
        pidfile = os.path.join(r.dir, "d.pid")
        run([SERVER, "--port", str(port), "--dir", r.dir, "--daemonize", "yes", "--logfile", log,
             "--pidfile", pidfile])  # the parent exits 0 at once
        try:
            wait_port(port)
            wait_until(lambda: read(pidfile).endswith("\n"), what="pidfile")
            pid = read(pidfile).strip()
            wait_until(lambda: "Ready to accept connections" in read(log), what="ready line")
            lines = read(log).splitlines()
            assert lines and all(line.startswith(pid + ":") for line in lines), (pid, lines)
            os.kill(int(pid), signal.SIGHUP)
            wait_until(lambda: "log file reopened" in read(log), what="reopen line")
            r.port = port
            assert r.client().ping()
        finally:
            if read(pidfile).strip():
                try:
                    os.kill(int(read(pidfile).strip()), signal.SIGTERM)
                except ProcessLookupError:
                    pass
                wait_until(lambda: not os.path.exists(pidfile), timeout=20, what="daemon exit")



def help_defaults():
    """--help's directive lines -> {name: default as printed}."""
    out = run([SERVER, "--help"]).stdout
    # The table ends at the first empty line (a note on Redis's own settings follows).
    lines = out.split("with their defaults:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    table = {}
    for line in lines:
        name, _, rest = line.strip().partition(" ")
        value = rest.strip().replace("  (fixed at start)", "")
        table[name] = "" if value == '""' else value
    return table


def test_help_lists_every_directive_with_the_default_config_get_reports():
    table = help_defaults()
    for name in ("port", "bind", "maxmemory", "maxmemory-policy", "client-output-buffer-limit", "json-port",
                 "json-queue", "logfile", "http-queue", "appendonly"):
        assert name in table, f"{name} missing from --help: {sorted(table)}"
    with Respq() as r:
        c = r.client()
        for name, default in table.items():
            if name in ("port", "dir"):  # the test harness sets these two
                continue
            got = c.config_get(name)
            assert got.get(name) == default, f"{name}: --help says {default!r}, CONFIG GET {got!r}"


def test_test_config_checks_the_file_and_the_command_line_without_starting():
    with Respq(start=False) as r:
        good = os.path.join(r.dir, "good.conf")
        with open(good, "w") as f:
            f.write("# a comment\nport 7777\nmaxmemory 100mb\nhttp-queue mail retries 3\n")
        p = run([SERVER, "--test-config", good, "--loglevel", "verbose"])
        assert "Configuration OK" in p.stdout, p.stdout
        bad = os.path.join(r.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("port 7777\n\nmaxmemory lots\n")
        p = run([SERVER, "--test-config", bad], check=False)
        assert p.returncode == 1, p
        assert "at line 3" in p.stderr and "maxmemory lots" in p.stderr and "memory value" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", good, "--maxmemory-policy", "allkeys-lru"], check=False)
        assert p.returncode == 1 and "--maxmemory-policy allkeys-lru" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", "--nonsense", "1"], check=False)
        assert p.returncode == 1 and "Bad directive" in p.stderr, p.stderr
        # Redis's own settings respq only reports: their value is accepted, as harnesses
        # and containers start Redis (`--save ""`); another is refused, saying why.
        p = run([SERVER, "--test-config", "--save", "", "--hz", "10"])
        assert p.returncode == 0 and "Configuration OK" in p.stdout, p
        assert run([SERVER, "--test-config", "--save"]).returncode == 0  # as redis-server: save ""
        with open(good, "a") as f:
            f.write('save ""\n')
        assert run([SERVER, "--test-config", good]).returncode == 0
        p = run([SERVER, "--test-config", "--save", "900", "1"], check=False)
        assert p.returncode == 1 and "appendonly yes" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", os.path.join(r.dir, "missing.conf")], check=False)
        assert p.returncode == 1 and "can't open config file" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", "--dir", os.path.join(r.dir, "nowhere")], check=False)
        assert p.returncode == 1 and "nowhere" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", "--bind", "127.0.0.1", "not-an-address"], check=False)
        assert p.returncode == 1 and "not-an-address" in p.stderr, p.stderr
        p = run([SERVER, "--test-config", "--port", str(r.port)])
        assert p.returncode == 0
        # Nothing was started: the port is still free.
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", r.port))


if __name__ == "__main__":
    run_tests(globals())
