"""Shared helpers for respq's integration tests.

Every test starts the servers it needs on free loopback ports (respq, redis-server,
nginx, php -S) and stops them when done; nothing is left running and nothing running
is assumed. Run with the system python (/usr/bin/python3), which has python3-redis.

    from harness import Respq, RedisServer, RawConn, run
    with Respq() as r:
        c = r.client()            # redis-py client
        raw = r.raw()             # raw RESP connection: raw.cmd('LPUSH', 'q', 'a') -> bytes
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
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
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
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
        argv = [SERVER]
        if self.config is not None:
            path = os.path.join(self.dir, "respq.conf")
            with open(path, "w") as f:
                f.write(self.config)
            argv.append(path)
        return argv + ["--port", str(self.port), "--dir", self.dir] + self.args

    def start(self, wait=True):
        return self._spawn(self.argv(), wait=wait, env=self.env)

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


class RedisServer(_Process):
    """A real redis-server on a free port, no persistence unless args say so."""
    name = "redis"

    def __init__(self, *args, port=None, start=True):
        super().__init__()
        self.port = port or free_port()
        self.args = list(args)
        if start:
            self.start()

    def start(self, wait=True):
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no"] + self.args
        return self._spawn(argv, wait=wait)

    def client(self, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def raw(self, **kw):
        return RawConn(self.port, **kw)


class Nginx(_Process):
    """nginx on a free port. body: server-block directives (default: return 204 for all)."""
    name = "nginx"

    def __init__(self, locations="location / { return 204; }", port=None, workers=1, start=True):
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
  server {{
    listen 127.0.0.1:{self.port} reuseport;
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
    """php -S on a free port with a router script."""
    name = "php"

    def __init__(self, router, port=None, env=None, start=True, workers=None):
        super().__init__()
        self.port = port or free_port()
        self.router = router
        self.env = dict(os.environ, **(env or {}))
        if workers:
            self.env["PHP_CLI_SERVER_WORKERS"] = str(workers)
        if start:
            self.start()

    def start(self, wait=True):
        return self._spawn(["php", "-S", f"127.0.0.1:{self.port}", self.router], wait=wait, env=self.env)


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


def wait_until(pred, timeout=10.0, interval=0.01, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
