"""Stopping the server as an operator does: SHUTDOWN from a client, SIGTERM from a
service manager, SIGINT from a terminal. Each exits with code 0 and removes the pidfile
given by --pidfile."""
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, run_tests, wait_until  # noqa: E402

PASSWORD = "shutdown-pass"


class PidfileServer:
    """A server with --pidfile in a directory of its own; checks the pidfile appears."""

    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="respq-pidfile-")
        self.pidfile = os.path.join(self.tmp, "respq.pid")
        self.r = None
        try:
            self.r = Respq("--pidfile", self.pidfile, *args)
            # Like Redis, the file is created and then written: wait for the content.
            wait_until(lambda: self.pidfile_text().endswith("\n"), what="pidfile written")
            pid = self.pidfile_text().strip()
            assert pid == str(self.r.proc.pid), f"pidfile holds {pid!r}, server pid is {self.r.proc.pid}"
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise

    def pidfile_text(self):
        try:
            with open(self.pidfile) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def exit_code(self, timeout=20):
        try:
            return self.r.proc.wait(timeout=timeout)
        except Exception:
            raise AssertionError(f"server still running {timeout}s after being told to stop")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.r is not None:
            self.r.__exit__(exc_type, exc, tb)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def check_clean_exit(s):
    code = s.exit_code()
    assert code == 0, f"exit code {code}"
    assert not os.path.exists(s.pidfile), "pidfile left behind"


def test_shutdown_command_exits_0_and_removes_the_pidfile():
    with PidfileServer() as s:
        other = s.r.raw()
        with s.r.raw() as c:
            assert c.cmd("RPUSH", "k", "v") == b":1\r\n"
            c.send(c.encode("SHUTDOWN"))
            assert c.closed_by_peer(timeout=10), "SHUTDOWN must close the connection"
            assert c.buf == b"", f"SHUTDOWN answered {c.buf!r}; Redis closes without a reply"
        check_clean_exit(s)
        assert other.closed_by_peer(timeout=5), "other clients are disconnected on shutdown"
        other.close()


def test_shutdown_nosave_exits_0_and_removes_the_pidfile():
    with PidfileServer() as s:
        with s.r.raw() as c:
            c.send(c.encode("SHUTDOWN", "NOSAVE"))
            assert c.closed_by_peer(timeout=10)
        check_clean_exit(s)


def test_sigterm_exits_0_and_removes_the_pidfile():
    with PidfileServer() as s:
        blocked = s.r.raw()
        blocked.send(blocked.encode("BRPOP", "q", "0"))  # a blocked client does not delay the exit
        with s.r.raw() as c:
            wait_until(lambda: b"blocked_clients:1\r\n" in c.cmd("INFO", "clients"), what="client blocked")
        s.r.signal(signal.SIGTERM)
        check_clean_exit(s)
        blocked.close()


def test_sigint_exits_0_and_removes_the_pidfile():
    with PidfileServer() as s:
        s.r.signal(signal.SIGINT)
        check_clean_exit(s)


def test_shutdown_needs_auth_when_a_password_is_set():
    with PidfileServer("--requirepass", PASSWORD) as s:
        with s.r.raw() as c:
            assert c.cmd("SHUTDOWN") == b"-NOAUTH Authentication required.\r\n"
            assert s.r.alive(), "SHUTDOWN before AUTH stopped the server"
            assert os.path.exists(s.pidfile)
            assert c.cmd("AUTH", PASSWORD) == b"+OK\r\n"
            c.send(c.encode("SHUTDOWN"))
            assert c.closed_by_peer(timeout=10)
        check_clean_exit(s)


if __name__ == "__main__":
    run_tests(globals())
