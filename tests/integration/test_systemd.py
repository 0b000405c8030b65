"""Running respq as a systemd service: `cmake --install` puts the binary, the unit (with
the install's paths), the sysusers entry and an example config where a package would;
the example config is valid; the unit passes `systemd-analyze verify`; the server speaks
the sd_notify protocol a Type=notify unit relies on (READY=1 once it serves, STOPPING=1
when SIGTERM starts the drain) and exits 0 after the drain."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD_DIR, Respq, Skip, run, run_tests, wait_port  # noqa: E402


def install(destdir, prefix):
    env = dict(os.environ, DESTDIR=destdir)
    run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], env=env, timeout=120)


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_cmake_install_puts_binary_unit_user_and_config_in_place():
    if not os.path.exists(os.path.join(BUILD_DIR, "cmake_install.cmake")):
        raise Skip("no CMake build tree at " + BUILD_DIR)
    dest = tempfile.mkdtemp(prefix="respq-install-")
    try:
        install(dest, "/usr")
        binary = os.path.join(dest, "usr/bin/respq-server")
        unit = os.path.join(dest, "usr/lib/systemd/system/respq.service")
        conf = os.path.join(dest, "etc/respq/respq.conf")
        sysusers = os.path.join(dest, "usr/lib/sysusers.d/respq.conf")
        for p in (binary, unit, conf, sysusers):
            assert os.path.isfile(p), f"{p} not installed: {sorted(walk(dest))}"
        assert os.access(binary, os.X_OK)
        s = unit_settings(open(unit).read())
        assert s["ExecStart"] == ["/usr/bin/respq-server /etc/respq/respq.conf --daemonize no"], s["ExecStart"]
        assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"]
        for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                     "StateDirectory": "respq", "User": "respq"}.items():
            assert s.get(k) == [v], (k, s.get(k))
        assert "/var/lib/respq" in s["ReadWritePaths"][0].split()
        assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
        assert "u respq " in open(sysusers).read()
        # The example config is valid for the installed binary (its dir is the service's
        # state directory, absent here: the command line points it elsewhere).
        out = run([binary, "--test-config", conf, "--dir", dest])
        assert "Configuration OK" in out.stdout + out.stderr
        # Installing again keeps a config the administrator may have changed.
        with open(conf, "a") as f:
            f.write("maxclients 77\n")
        install(dest, "/usr")
        assert open(conf).read().endswith("maxclients 77\n")
        # Another prefix: the unit follows it, the config goes under <prefix>/etc.
        other = tempfile.mkdtemp(prefix="respq-install-")
        try:
            install(other, "/opt/respq")
            s = unit_settings(open(os.path.join(other, "opt/respq/lib/systemd/system/respq.service")).read())
            assert s["ExecStart"] == ["/opt/respq/bin/respq-server /opt/respq/etc/respq/respq.conf --daemonize no"]
            assert os.path.isfile(os.path.join(other, "opt/respq/etc/respq/respq.conf"))
        finally:
            shutil.rmtree(other, ignore_errors=True)
        verify_unit(dest)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def walk(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(d, f), root)


def verify_unit(dest):
    """systemd-analyze verify on the unit of an install whose prefix is a real directory
    (no DESTDIR: verify checks that the ExecStart binary exists and is executable).
    Skipped, with the reason, when systemd-analyze is missing."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIP systemd-analyze verify: systemd-analyze is not installed (Debian package systemd)")
        return
    prefix = os.path.join(dest, "verify")
    run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], timeout=120)
    unit = os.path.join(prefix, "lib/systemd/system/respq.service")
    assert unit_settings(open(unit).read())["ExecStart"][0].startswith(prefix + "/bin/respq-server ")
    p = subprocess.run([tool, "verify", unit], capture_output=True, text=True, timeout=60)
    # The user respq is made by systemd-sysusers on a real install, which verify does not
    # check. Any complaint fails.
    complaints = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
    assert p.returncode == 0 and not complaints, f"systemd-analyze verify: rc {p.returncode}\n" + "\n".join(complaints)
    # The sandbox as systemd rates it (0 = fully locked down, 10 = no sandbox).
    p = subprocess.run([tool, "security", "--offline=yes", unit], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for respq.service: ([\d.]+)", p.stdout + p.stderr)
    assert m and float(m.group(1)) <= 2.0, p.stdout[-2000:] + p.stderr[-2000:]


def test_sd_notify_ready_then_stopping_on_sigterm():
    d = tempfile.mkdtemp(prefix="respq-notify-")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        path = os.path.join(d, "notify")
        sock.bind(path)
        sock.settimeout(30)
        with Respq("--http-queue", "tasks", "off", env=dict(os.environ, NOTIFY_SOCKET=path)) as r:
            ready = sock.recv(4096).decode()
            assert "READY=1" in ready.split("\n") and f"MAINPID={r.proc.pid}" in ready.split("\n"), ready
            assert r.client().ping()
            r.proc.send_signal(signal.SIGTERM)
            stopping = sock.recv(4096).decode()
            assert "STOPPING=1" in stopping.split("\n"), stopping
            assert r.proc.wait(timeout=30) == 0
        # Abstract socket names ('@...') work as systemd hands them out.
        name = "respq-test-%d" % os.getpid()
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        abstract.bind("\0" + name)
        abstract.settimeout(30)
        try:
            with Respq("--http-queue", "tasks", "off", env=dict(os.environ, NOTIFY_SOCKET="@" + name)):
                assert "READY=1" in abstract.recv(4096).decode()
        finally:
            abstract.close()
    finally:
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def test_without_notify_socket_nothing_is_sent_and_the_server_runs():
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    with Respq("--http-queue", "tasks", "off", env=env) as r:
        wait_port(r.port)
        assert r.client().ping()
        assert "READY=1 sent" not in r.log_text()


if __name__ == "__main__":
    run_tests(globals())
