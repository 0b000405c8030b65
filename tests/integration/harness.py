"""Shared helpers for respq's integration tests.

Every test starts the servers it needs on free loopback ports (respq, redis-server,
nginx, php -S) and stops them when done; nothing is left running and nothing running
is assumed. Run with the system python (/usr/bin/python3), which has python3-redis.

    from harness import Respq, RedisServer, RawConn, run
    with Respq() as r:
        c = r.client()            # redis-py client
        raw = r.raw()             # raw RESP connection: raw.cmd('LPUSH', 'q', 'a') -> bytes

With RESPQ_TEST_TARGET=redis, Respq(...) starts a real redis-server instead (respq-only
directives are dropped, the ones Redis knows are passed on): a test that passes that way
encodes real Redis behaviour, which respq must then match.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("RESPQ_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("RESPQ_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
SERVER = os.environ.get("RESPQ_SERVER", os.path.join(BUILD_DIR, "broker", "respq-server"))
# What Respq(...) starts: "respq" (default) or "redis" (a real redis-server in its place).
TARGET = os.environ.get("RESPQ_TEST_TARGET", "respq")
# The hiredis client used by test_client_hiredis.py (built from tests/integration/native).
HIREDIS_CLIENT = os.environ.get("RESPQ_HIREDIS_CLIENT",
                                os.path.join(BUILD_DIR, "tests", "integration", "native",
                                             "respq-hiredis-client"))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20.0, proc=None, what="server"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s")


def run(cmd, input=None, timeout=60, check=True, **kw):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(cmd, input=input, capture_output=True, text=isinstance(input, str) or input is None,
                       timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


class _Process:
    """A child server process with a temp dir; a context manager that always stops it."""
    name = "process"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix=f"respq-{self.name}-")
        self.proc = None
        self.port = None
        self.logpath = os.path.join(self.dir, "log")

    def _spawn(self, argv, wait=True, env=None):
        self.log = open(self.logpath, "ab")
        # A session of its own, so stop() reaches every process the server starts
        # (php -S workers, nginx workers), not only the first.
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env,
                                     start_new_session=True)
        if wait:
            try:
                wait_port(self.port, proc=self.proc, what=self.name)
            except Exception:
                self.dump_log()
                self.stop()
                raise
        return self

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dump_log(self):
        sys.stderr.write(f"---- {self.name} log ({self.logpath}) ----\n{self.log_text()}\n----\n")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=15):
        """SIGTERM to the server's process group (the server and any workers it started),
        wait, SIGKILL if needed. Returns the server's exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the server's own children
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.log.close()
        except Exception:
            pass
        return self.proc.returncode

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is not None:
            self.dump_log()
        self.cleanup()
        return False


class Respq(_Process):
    """respq-server on a free port. Extra directives as command-line arguments:
    Respq('--http-queue', 'jobs', 'retries', '2'). The server's dir is a fresh temp dir
    unless dir= is given (reuse it across restarts to test persistence)."""
    name = "respq"

    def __init__(self, *args, port=None, dir=None, config=None, start=True, env=None):
        self.target = TARGET
        if self.target == "redis":
            self.name = "redis-as-respq"
        super().__init__()
        if dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = dir
            os.makedirs(dir, exist_ok=True)
            self.logpath = os.path.join(self.dir, "log")
        self.port = port or free_port()
        self.args = list(args)
        self.config = config
        self.env = env
        if start:
            self.start()

    def argv(self):
        if self.target == "redis":
            return self._redis_argv()
        argv = [SERVER]
        if self.config is not None:
            path = os.path.join(self.dir, "respq.conf")
            with open(path, "w") as f:
                f.write(self.config)
            argv.append(path)
        return argv + ["--port", str(self.port), "--dir", self.dir] + self.args

    def _redis_argv(self):
        """redis-server standing in for respq: loopback, no RDB, DEBUG allowed, then the directives Redis
        knows from the config and the arguments (16 databases unless they say otherwise,
        as respq)."""
        argv = ["redis-server"]
        if self.config is not None:
            path = os.path.join(self.dir, "redis.conf")
            with open(path, "w") as f:
                f.write(redis_config_from_respq(self.config))
            argv.append(path)
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
                 "--enable-debug-command", "local"]   # respq answers DEBUG as this
        return argv + redis_args_from_respq(self.args)

    def start(self, wait=True):
        self._spawn(self.argv(), wait=wait, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30.0):
        """The port is bound before the AOF is loaded (as Redis does): ready is when this
        process has logged that it accepts connections, so that the loading's own log
        lines are there too. Returns at once if the process exits, or logs too little."""
        quiet = any(a == "--loglevel" and b in ("warning", "nothing") for a, b in zip(self.args, self.args[1:]))
        if quiet:
            return
        mark = f"{self.proc.pid}:"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(line.startswith(mark) and "Ready to accept connections" in line
                   for line in self.log_text().splitlines()):
                return
            if self.proc.poll() is not None:
                return
            time.sleep(0.02)
        self.dump_log()
        raise RuntimeError(f"{self.name} did not log that it is ready within {timeout}s")

    def restart(self, *extra):
        self.stop()
        self.args += list(extra)
        return self.start()

    def client(self, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, **kw):
        return RawConn(self.port, **kw)

    def cli(self, *args, input=None, timeout=30, check=True):
        return run(["redis-cli", "-p", str(self.port)] + list(args), input=input,
                   timeout=timeout, check=check)


# respq directives that mean the same to redis-server; any other one (http-queue,
# upstream, mirror, ...) is dropped, with its values, when RESPQ_TEST_TARGET=redis.
REDIS_DIRECTIVES = {
    "port", "bind", "dir", "requirepass", "maxclients", "timeout", "pidfile", "logfile",
    "loglevel", "appendonly", "appendfsync", "appendfilename", "aof-load-truncated",
    "auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size", "proto-max-bulk-len",
    "client-query-buffer-limit", "tcp-keepalive", "tcp-backlog", "protected-mode",
    "maxmemory", "hz", "databases", "save", "daemonize",
}


def redis_args_from_respq(args):
    """Keeps the --directive value... groups of a respq command line that Redis knows."""
    out, keep = [], False
    for a in args:
        a = str(a)
        if a.startswith("--") and len(a) > 2:
            keep = a[2:].lower() in REDIS_DIRECTIVES
        if keep:
            out.append(a)
    return out


def redis_config_from_respq(text):
    """Keeps the lines of a respq config file whose directive Redis knows."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0].lower() in REDIS_DIRECTIVES:
            lines.append(line)
    return "\n".join(lines) + "\n"


class RedisServer(_Process):
    """A real redis-server on a free port, no persistence unless args say so, DEBUG
    allowed from loopback."""
    name = "redis"

    def __init__(self, *args, port=None, start=True):
        super().__init__()
        self.port = port or free_port()
        self.args = list(args)
        if start:
            self.start()

    def start(self, wait=True):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--enable-debug-command", "local"] + self.args   # DEBUG as respq answers it
        return self._spawn(argv, wait=wait)

    def client(self, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, **kw):
        return RawConn(self.port, **kw)


class Nginx(_Process):
    """nginx on a free port. body: server-block directives (default: return 204 for all);
    listen_extra: more parameters of its listen directive (e.g. "ssl http2"); http_extra:
    http-block directives (e.g. a log_format)."""
    name = "nginx"

    def __init__(self, locations="location / { return 204; }", port=None, workers=1, start=True, listen_extra="",
                 http_extra=""):
        super().__init__()
        self.port = port or free_port()
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        conf = f"""
worker_processes {workers};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.dir}/tmp;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  {http_extra}
  server {{
    listen 127.0.0.1:{self.port} reuseport {listen_extra};
    {locations}
  }}
}}
"""
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        if start:
            self.start()

    def start(self, wait=True):
        return self._spawn(["nginx", "-c", self.conf, "-p", self.dir], wait=wait)


class PhpServer(_Process):
    """php -S on a free port with a router script; ini: php.ini settings ({name: value},
    passed as -d name=value)."""
    name = "php"

    def __init__(self, router, port=None, env=None, start=True, workers=None, ini=None):
        super().__init__()
        self.port = port or free_port()
        self.router = router
        self.ini = dict(ini or {})
        self.env = dict(os.environ, **(env or {}))
        if workers:
            self.env["PHP_CLI_SERVER_WORKERS"] = str(workers)
        if start:
            self.start()

    def start(self, wait=True):
        ini = [f"-d{k}={v}" for k, v in self.ini.items()]
        return self._spawn(["php"] + ini + ["-S", f"127.0.0.1:{self.port}", self.router], wait=wait, env=self.env)


class JobWorker(_Process):
    """A job library's worker process (sidekiq, rq worker, celery worker) run as its own
    command line would: in a session of its own (stop() sends SIGTERM to the whole group,
    then SIGKILL after the timeout), output to self.logpath, cwd its temp dir.

        with JobWorker("sidekiq", ["sidekiq", "-r", path], env=env) as w:
            w.wait_log("Starting processing")
            assert w.stop() == 0
    """

    def __init__(self, name, argv, env=None, start=True):
        self.name = name
        super().__init__()
        self.argv = list(argv)
        self.env = env
        if start:
            self.start()

    def start(self):
        return self._spawn(self.argv, wait=False, env=self.env)

    def wait_log(self, text, timeout=60.0):
        """Waits until the output holds text; fails at once if the process exits first."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log_text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before "
                                     f"printing {text!r}:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not print {text!r} within {timeout}s:\n"
                             f"{self.log_text()[-4000:]}")

    def wait_exit(self, timeout=60.0):
        """Waits for the process to end by itself (a burst worker); returns its exit code,
        or stops it and fails after the timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(timeout=5)
            raise AssertionError(f"{self.name} did not exit within {timeout}s:\n{self.log_text()[-4000:]}")


class RawConn:
    """A raw RESP connection: send bytes, read exactly one reply back as bytes."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, (int, float)):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args):
        """Sends one command, returns its raw reply bytes."""
        self.send(self.encode(*args))
        return self.read_reply()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_reply(self):
        """Reads one complete RESP2/RESP3 reply and returns its bytes unparsed."""
        line = self._line()
        t = line[:1]
        if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
            return line
        if t in (b"$", b"=", b"!"):
            n = int(line[1:-2])
            return line if n < 0 else line + self._exact(n + 2)
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(line[1:-2])
            if n < 0:
                return line
            if t in (b"%", b"|"):
                n *= 2
            out = line
            for _ in range(n):
                out += self.read_reply()
            if t == b"|":  # attribute: followed by the real reply
                out += self.read_reply()
            return out
        raise AssertionError(f"unexpected reply line {line!r}")

    def closed_by_peer(self, timeout=2.0):
        """True when the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def wait_busy(port):
    """Until a new connection's PING is answered -BUSY (a script has run past the threshold)."""
    def busy():
        with RawConn(port) as c:
            return c.cmd("PING").startswith(b"-BUSY")
    wait_until(busy, timeout=15, interval=0.02, what="the server to answer -BUSY")


def php(script, *args, timeout=120, check=True, input=None):
    """Runs a PHP script (path or code with <?php) with the CLI; returns CompletedProcess."""
    if script.lstrip().startswith("<?php"):
        fd, path = tempfile.mkstemp(suffix=".php")
        with os.fdopen(fd, "w") as f:
            f.write(script)
        try:
            return run(["php", path] + [str(a) for a in args], timeout=timeout, check=check, input=input)
        finally:
            os.unlink(path)
    return run(["php", script] + [str(a) for a in args], timeout=timeout, check=check, input=input)


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_error(*args):
    """Starts respq with args, expects it to refuse them: exit code 1 before listening.
    Returns its log."""
    r = Respq(*args, start=False)
    try:
        r.start(wait=False)
        r.proc.wait(timeout=20)
        assert r.proc.returncode == 1, (r.proc.returncode, r.log_text())
        return r.log_text()
    finally:
        r.stop()
        r.cleanup()


def wait_until(pred, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def parse_info(text):
    """INFO text -> {section: {key: value}} (section names lower case)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    sections, cur = {}, None
    for line in text.splitlines():
        if line.startswith("# "):
            cur = sections.setdefault(line[2:].strip().lower(), {})
        elif line and cur is not None and ":" in line:
            k, v = line.split(":", 1)
            cur[k] = v
    return sections


def info_field(port, section, field, password=None):
    """One INFO field read over a fresh raw connection, as a string (None when absent)."""
    with RawConn(port) as c:
        if password is not None:
            assert c.cmd("AUTH", password) == b"+OK\r\n"
        reply = c.cmd("INFO", section)
    assert reply.startswith(b"$"), reply
    body = reply.split(b"\r\n", 1)[1]
    return parse_info(body).get(section.lower(), {}).get(field)


def wait_blocked(port, n, timeout=10.0, password=None):
    """Waits until INFO clients reports exactly n blocked clients."""
    wait_until(lambda: info_field(port, "clients", "blocked_clients", password) == str(n),
               timeout=timeout, what=f"blocked_clients == {n}")


class Monitor:
    """A raw connection in MONITOR mode: collects the lines the server streams."""

    def __init__(self, port, password=None):
        self.conn = RawConn(port)
        if password is not None:
            assert self.conn.cmd("AUTH", password) == b"+OK\r\n"
        reply = self.conn.cmd("MONITOR")
        assert reply == b"+OK\r\n", f"MONITOR answered {reply!r}"
        self.lines = []

    def wait_for(self, pred, timeout=10.0):
        """Reads monitor lines until pred(line) holds for one; returns that line (str)."""
        deadline = time.time() + timeout
        for line in self.lines:
            if pred(line):
                return line
        while time.time() < deadline:
            self.conn.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                raw = self.conn.read_reply()
            except socket.timeout:
                break
            line = raw.decode("utf-8", "replace")
            line = line[1:].rstrip("\r\n") if line.startswith("+") else line
            self.lines.append(line)
            if pred(line):
                return line
        raise AssertionError(f"no MONITOR line matched within {timeout}s; saw: {self.lines!r}")

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Skip(Exception):
    """Raised by a test that cannot apply here (reported as SKIP, not as a pass)."""


class RedisAndRespq:
    """A redis-server and a respq side by side, for tests that run one scenario against
    both and compare; run_tests' setup for such files."""

    def __init__(self):
        self.redis = RedisServer()
        try:
            self.respq = Respq()
        except Exception:
            self.redis.__exit__(None, None, None)
            raise

    def dump_log(self):
        self.respq.dump_log()

    def __exit__(self, *a):
        self.respq.__exit__(None, None, None)
        self.redis.__exit__(None, None, None)


def key_contents(c, key):
    """(type, value) of a key read back with redis-py client c, the same for equal values
    on redis-server and respq (a set's and a hash's members sorted; a stream with its
    metadata, consumer groups and pending entries)."""
    t = c.type(key).decode()
    if t == "string":
        v = c.get(key)
    elif t == "list":
        v = c.lrange(key, 0, -1)
    elif t == "set":
        v = sorted(c.smembers(key))
    elif t == "zset":
        v = c.zrange(key, 0, -1, withscores=True)
    elif t == "hash":
        v = sorted(c.hgetall(key).items())
    elif t == "stream":
        info = c.execute_command("XINFO", "STREAM", key)
        info = dict(zip(info[::2], info[1::2]))
        groups = c.execute_command("XINFO", "GROUPS", key)
        pending = [c.execute_command("XPENDING", key, g[1]) for g in groups]
        owners = [[(e["message_id"], e["consumer"], e["times_delivered"])
                   for e in c.xpending_range(key, g[1], "-", "+", 1000)] for g in groups]
        v = (c.xrange(key), info[b"length"], info[b"last-generated-id"], info[b"max-deleted-entry-id"],
             info[b"entries-added"], groups, pending, owners)
    else:
        v = None
    return t, v


def keyspace_events(srv, script, classes="KEAm"):
    """The keyspace notifications of database 0 that `script` (commands run one after
    another on a raw connection; ["sleep", seconds] pauses) makes srv publish with
    notify-keyspace-events `classes`, as (channel, message) pairs in order. Flushes srv
    first; turns notifications off after."""
    c = srv.client()
    c.flushall()
    c.config_set("notify-keyspace-events", classes)
    p = c.pubsub()
    p.psubscribe("__key*@0__:*")
    p.get_message(timeout=2)
    with srv.raw() as raw:
        for cmd in script:
            if cmd[0] == "sleep":
                time.sleep(cmd[1])
            else:
                raw.cmd(*cmd)
    seen = []
    while (m := p.get_message(timeout=0.5)) is not None:
        seen.append((m["channel"].decode(), m["data"].decode()))
    p.close()
    c.config_set("notify-keyspace-events", "")
    return seen


def run_tests(namespace, setup=None):
    """Runs every function named test_* in namespace, in file order, printing PASS, FAIL
    (with the traceback) or SKIP for each; exits 1 if any failed, 77 (skipped) if setup()
    raised Skip. A test that takes an
    argument gets the object returned by setup() (e.g. started servers, made once before
    the first test and closed with __exit__ after the last). A name given
    on the command line runs only the tests containing it."""
    import traceback
    only = sys.argv[1:]
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith("test_") and callable(f) and (not only or any(o in n for o in only))]
    tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
    failed = []
    try:
        ctx = setup() if setup else None
    except Skip as e:
        # The whole file does not apply here: exit 77, which ctest reports as skipped.
        for name, _ in tests:
            print(f"SKIP {name}: {e}", flush=True)
        print(f"0/{len(tests)} run, {len(tests)} skipped (target: {TARGET})", flush=True)
        sys.exit(77)
    try:
        for name, fn in tests:
            t0 = time.time()
            try:
                fn(ctx) if setup and fn.__code__.co_argcount else fn()
                print(f"PASS {name} ({time.time() - t0:.2f}s)", flush=True)
            except Skip as e:
                print(f"SKIP {name}: {e}", flush=True)
            except BaseException as e:  # noqa: BLE001 - report every failure, go on
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed.append(name)
                print(f"FAIL {name} ({time.time() - t0:.2f}s)", flush=True)
                traceback.print_exc(file=sys.stdout)
                sys.stdout.flush()
    finally:
        if ctx is not None and failed and hasattr(ctx, "dump_log"):
            ctx.dump_log()
        if ctx is not None and hasattr(ctx, "__exit__"):
            ctx.__exit__(None, None, None)
    print(f"{len(tests) - len(failed)}/{len(tests)} passed (target: {TARGET})"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    sys.exit(1 if failed else 0)


# ---- HTTP endpoint for the HTTP worker tests --------------------------------------------

HTTP_ENDPOINT_ROUTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "http_endpoint.php")
HTTP_SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_sink.py")


class HttpEndpoint(_Process):
    """php -S with php/http_endpoint.php: records every request it receives (one JSON line
    each, see the router) and answers as the path or query string asks. `workers` > 1
    serves requests in parallel (PHP_CLI_SERVER_WORKERS). The server runs in a process
    group of its own so that stopping it also stops its worker processes.
    server="python" runs http_sink.py instead (same behaviour and log, one thread per
    connection): for tests that measure concurrency or timing, or keep slow requests in
    flight, where a php -S worker serving two connections in turn would skew the result.

        with HttpEndpoint() as ep:
            url = ep.url("/hook", sleep=0.2)       # http://127.0.0.1:PORT/hook?sleep=0.2
            reqs = ep.wait_requests(1, path="/hook")
            reqs[0]["h"]["x-task-id"]              # headers, names lower-cased
    """
    name = "http-endpoint"

    def __init__(self, workers=4, port=None, start=True, server="php"):
        assert server in ("php", "python"), server
        self.server = server
        super().__init__()
        self.port = port or free_port()
        self.requests_log = os.path.join(self.dir, "requests.jsonl")
        self.env = dict(os.environ, HTTP_ENDPOINT_LOG=self.requests_log)
        self.env["PHP_CLI_SERVER_WORKERS"] = str(workers)
        if start:
            self.start()

    def start(self, wait=True):
        if self.server == "php":
            argv = ["php", "-S", f"127.0.0.1:{self.port}", HTTP_ENDPOINT_ROUTER]
        else:
            argv = [sys.executable, HTTP_SINK, str(self.port), self.requests_log]
        return self._spawn(argv, wait=wait, env=self.env)

    def dump_log(self):
        lines = [l for l in self.log_text().splitlines() if not l.endswith((" Accepted", " Closing"))]
        sys.stderr.write(f"---- {self.name} log, without connection lines ({self.logpath}) ----\n"
                         + "\n".join(lines[-50:]) + f"\n---- {len(self.requests())} requests received ----\n")

    def url(self, path="/", **query):
        """http://127.0.0.1:PORT<path>[?query]; query values are url-encoded."""
        from urllib.parse import urlencode
        u = f"http://127.0.0.1:{self.port}{path}"
        return u + ("?" + urlencode(query) if query else "")

    def requests(self, **match):
        """Every request received so far, oldest first, as dicts (see the router) with
        "h": the headers with lower-cased names. Keyword arguments filter on fields
        (path="/x") or, with a callable, on a predicate (where=lambda r: ...)."""
        import json
        where = match.pop("where", None)
        out = []
        try:
            with open(self.requests_log, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return out
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            r["h"] = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
            if all(r.get(k) == v for k, v in match.items()) and (where is None or where(r)):
                out.append(r)
        return out

    def wait_requests(self, n, timeout=10.0, **match):
        """Waits until at least n requests match, returns all matching ones."""
        found = []

        def enough():
            found[:] = self.requests(**match)
            return len(found) >= n
        wait_until(enough, timeout=timeout, interval=0.005,
                   what=f"{n} request(s) matching {match!r} at the HTTP endpoint (got {len(found)})")
        return found


class Outcomes:
    """SUBSCRIBE <queue>:results on a connection of its own: collects the outcome JSON of
    every task the server publishes from the moment the subscription is confirmed.

        with Outcomes(r, "tasks") as out:
            r.client().lpush("tasks", ...)
            o = out.wait(id="order-1", status="delivered")
    """

    def __init__(self, respq, queue="tasks"):
        self.client = respq.client()
        self.ps = self.client.pubsub()
        self.ps.subscribe(f"{queue}:results")
        self.items = []
        self.closed = False  # the server closed the connection
        deadline = time.time() + 10
        while time.time() < deadline:
            m = self.ps.get_message(timeout=0.5)
            if m and m["type"] == "subscribe":
                return
        raise AssertionError(f"no SUBSCRIBE confirmation for {queue}:results")

    def poll(self, timeout=0.0):
        import json
        import redis
        if self.closed:
            return self.items
        try:
            m = self.ps.get_message(timeout=timeout)
            while m:
                if m["type"] == "message":
                    self.items.append(json.loads(m["data"]))
                m = self.ps.get_message(timeout=0)
        except redis.exceptions.ConnectionError:
            # The server closed the connection (a shutdown): what arrived before stays.
            self.closed = True
        return self.items

    def all(self, **match):
        self.poll()
        return [o for o in self.items if all(o.get(k) == v for k, v in match.items())]

    def wait(self, timeout=10.0, **match):
        """The first outcome whose fields equal the keyword arguments."""
        deadline = time.time() + timeout
        while True:
            found = self.all(**match)
            if found:
                return found[0]
            if time.time() >= deadline or self.closed:
                raise AssertionError(f"no outcome matching {match!r} within {timeout}s; got {self.items!r}"
                                     + (" (the server closed the connection)" if self.closed else ""))
            self.poll(timeout=0.05)

    def close(self):
        try:
            self.ps.close()
            self.client.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def dead_records(client, queue="tasks"):
    """The dead-letter records of a queue, oldest first, decoded from JSON."""
    import json
    return [json.loads(x) for x in reversed(client.lrange(f"{queue}:dead", 0, -1))]


def task_info(port, queue="tasks"):
    """The INFO tasks line of one queue as a dict of strings (None when absent)."""
    line = info_field(port, "tasks", queue)
    if line is None:
        return None
    return dict(kv.split("=", 1) for kv in line.split(","))


class Pki:
    """Test certificates made with openssl in a temporary directory: self-signed CAs named
    by `cas` (each `<ca>.crt`/`<ca>.key`), and certificates they sign with sign()."""

    def __init__(self, cas, prefix="respq-pki-"):
        self.tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.dir = self.tmp.name
        for ca in cas:
            self.openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                         "-days", "2", "-subj", f"/CN=respq test {ca}")

    def openssl(self, *args):
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sign(self, name, ca, subject, ext):
        """`<name>.crt`/`<name>.key` for `subject`, signed by `ca`, with the extension line `ext`."""
        self.openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                     subject)
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        self.openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                     "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")

    def path(self, name):
        return os.path.join(self.dir, name)

    def close(self):
        self.tmp.cleanup()
