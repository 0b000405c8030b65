"""The RESP port over TLS, as Redis 6+: tls-port, tls-cert-file, tls-key-file,
tls-ca-cert-file, tls-auth-clients yes|no|optional, TLS 1.2 or newer. redis-cli --tls,
redis-py (ssl) and phpredis (tls://) talk to it; the answers are compared with the plain
port's and with redis-server's. A client without a certificate is refused when
tls-auth-clients is yes and accepted when it is optional; TLS 1.1 is refused. The admin
port serves https with the same certificate.

The CA, the server certificate and the client certificates are made here by openssl.
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TARGET, RedisServer, Respq, free_port, php, run_tests, start_error, wait_port  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: respq's TLS port (target: {TARGET})")
    sys.exit(0)


class Pki(harness.Pki):
    def __init__(self):
        super().__init__(("ca", "rogue"), prefix="respq-tlsport-")
        self.sign("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.sign("client", "ca", "/CN=app-1", "extendedKeyUsage=clientAuth")
        self.sign("rogue-client", "rogue", "/CN=intruder", "extendedKeyUsage=clientAuth")


class Servers:
    def __init__(self):
        self.pki = Pki()
        self.procs = []

    def respq(self, auth="yes", *extra):
        tls_port = free_port()
        p = self.pki.path
        r = Respq("--tls-port", str(tls_port), "--tls-cert-file", p("server.crt"), "--tls-key-file", p("server.key"),
                  "--tls-ca-cert-file", p("ca.crt"), "--tls-auth-clients", auth, *extra)
        r.tls_port = tls_port
        wait_port(tls_port, proc=r.proc, what="respq tls-port")
        self.procs.append(r)
        return r

    def dump_log(self):
        for r in self.procs:
            r.dump_log()

    def __exit__(self, *a):
        for r in self.procs:
            r.__exit__(None, None, None)
        self.pki.tmp.cleanup()


def cli(s, port, *args, cert=True, check=True):
    p = s.pki.path
    argv = ["redis-cli", "--tls", "--cacert", p("ca.crt"), "-h", "127.0.0.1", "-p", str(port)]
    if cert:
        argv += ["--cert", p("client.crt"), "--key", p("client.key")]
    out = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=30)
    if check:
        assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out


def tls_client(s, port, cert=True):
    import redis
    p = s.pki.path
    kw = dict(ssl_certfile=p("client.crt"), ssl_keyfile=p("client.key")) if cert else {}
    return redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=p("ca.crt"), ssl_cert_reqs="required",
                       socket_timeout=10, **kw)


def test_redis_cli_over_tls_answers_as_the_plain_port_and_redis_server(s):
    r = s.respq()
    with RedisServer() as ref:
        script = [("SET", "k", "v1"), ("GET", "k"), ("RPUSH", "l", "a", "b", "c"), ("LRANGE", "l", "0", "-1"),
                  ("HSET", "h", "f", "1"), ("HINCRBY", "h", "f", "41"), ("INCR", "n"), ("TYPE", "l"),
                  ("EXISTS", "k", "l", "nope")]
        for cmd in script:
            got = cli(s, r.tls_port, *cmd).stdout
            want = subprocess.run(["redis-cli", "-p", str(ref.port), *cmd], capture_output=True, text=True).stdout
            assert got == want, f"{cmd}: respq over TLS {got!r}, redis-server {want!r}"
    # The plain port sees the same data.
    assert r.client().get("k") == b"v1"
    assert r.client().lrange("l", 0, -1) == [b"a", b"b", b"c"]


def test_large_values_and_pipelines_cross_tls_intact(s):
    r = s.respq()
    c = tls_client(s, r.tls_port)
    big = os.urandom(3 * 1024 * 1024 + 17)
    assert c.set("big", big)
    assert c.get("big") == big, "a 3 MB value round-trips over TLS"
    assert r.client().get("big") == big
    pipe = c.pipeline(transaction=False)
    for i in range(5000):
        pipe.rpush("pl", f"item-{i}")
    pipe.lrange("pl", 0, -1)
    res = pipe.execute()
    assert res[-2] == 5000 and res[-1] == [f"item-{i}".encode() for i in range(5000)]
    # A BLPOP woken through the plain port answers on the TLS connection.
    import threading
    got = []
    t = threading.Thread(target=lambda: got.append(c.blpop("wake", 10)))
    t.start()
    import time
    deadline = time.time() + 10
    while time.time() < deadline and int(r.client().info("clients")["blocked_clients"]) == 0:
        time.sleep(0.01)
    r.client().rpush("wake", "x")
    t.join(15)
    assert got == [(b"wake", b"x")], got


def test_tls_clients_while_a_script_runs_past_the_threshold(s):
    """A busy script serves other clients (-BUSY) without closing any: TLS subscribers
    pushed past their output limit by the script's PUBLISH, and a TLS client whose QUIT
    came in the script's turn, are closed by the loop afterwards, the server alive."""
    import threading
    import time
    r = s.respq("no", "--busy-reply-threshold", "100", "--client-output-buffer-limit", "pubsub 1024 0 0",
                "--appendonly", "yes")
    ctx = ssl.create_default_context(cafile=s.pki.path("ca.crt"))
    subs = []
    for _ in range(3):
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.tls_port), timeout=10), server_hostname="127.0.0.1")
        t.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        assert b"subscribe" in t.recv(100)
        subs.append(t)
    quitter = ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.tls_port), timeout=10), server_hostname="127.0.0.1")
    quitter.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert quitter.recv(100) == b"+PONG\r\n"
    spin = "redis.call('publish', 'ch', string.rep('x', 5000)) local t = redis.call('time')[1] + 0 " \
           "while redis.call('time')[1] + 0 < t + 2 do end return 1"
    got = []
    runner = threading.Thread(target=lambda: got.append(r.client(socket_timeout=20).eval(spin, 0)))
    runner.start()
    time.sleep(0.05)
    quitter.sendall(b"*1\r\n$4\r\nQUIT\r\n")
    deadline = time.time() + 10
    while time.time() < deadline and "Slow script" not in r.log_text():
        time.sleep(0.02)
    import redis
    try:
        r.client(socket_timeout=5).ping()
        raise AssertionError("PING answered while the script ran")
    except redis.exceptions.BusyLoadingError:
        pass
    except redis.ResponseError as e:
        assert str(e).startswith("BUSY"), e
    runner.join(20)
    assert got == [1], got
    assert r.alive() and r.client().ping()
    for t in subs + [quitter]:
        t.close()


def test_a_client_without_a_certificate_is_refused_when_auth_is_yes(s):
    r = s.respq("yes")
    # redis-cli without --cert/--key: the handshake (or the first reply) fails.
    out = cli(s, r.tls_port, "PING", cert=False, check=False)
    assert "PONG" not in out.stdout, out
    import redis
    try:
        tls_client(s, r.tls_port, cert=False).ping()
        raise AssertionError("a client without a certificate got an answer")
    except (redis.ConnectionError, ssl.SSLError, OSError):
        pass
    # A certificate from a CA respq does not trust: refused as well.
    ctx = ssl.create_default_context(cafile=s.pki.path("ca.crt"))
    ctx.load_cert_chain(s.pki.path("rogue-client.crt"), s.pki.path("rogue-client.key"))
    refused = False
    try:
        with socket.create_connection(("127.0.0.1", r.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"PING\r\n")
                refused = tls.recv(100) == b""
    except (ssl.SSLError, OSError):
        refused = True
    assert refused, "a client certificate from an unknown CA was accepted"
    # The server is unharmed and serves a client with a good certificate.
    assert cli(s, r.tls_port, "PING").stdout.strip() == "PONG"
    assert int(r.client().info("clients")["connected_clients"]) == 1


def test_optional_and_no_accept_a_client_without_a_certificate(s):
    for auth in ("optional", "no"):
        r = s.respq(auth)
        assert cli(s, r.tls_port, "PING", cert=False).stdout.strip() == "PONG", auth
        assert tls_client(s, r.tls_port, cert=False).ping()
        assert cli(s, r.tls_port, "PING").stdout.strip() == "PONG", auth
        assert r.client().config_get("tls-auth-clients") == {"tls-auth-clients": auth}


def test_tls_1_1_is_refused_and_1_2_accepted(s):
    r = s.respq("no")
    for version, ok in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        ctx = ssl.create_default_context(cafile=s.pki.path("ca.crt"))
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection(("127.0.0.1", r.tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
                tls.sendall(b"*1\r\n$4\r\nPING\r\n")
                assert tls.recv(100) == b"+PONG\r\n"
    # The client side allows TLS 1.1 (security level 0): the refusal is the server's.
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{r.tls_port}", "-tls1_1", "-cipher",
                          "DEFAULT@SECLEVEL=0"], input="", capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Cipher is (NONE)" in out.stdout, (out.stdout[-500:], out.stderr[-500:])
    assert "protocol version" in out.stderr or "unsupported protocol" in out.stderr, out.stderr[-500:]


def test_phpredis_over_tls(s):
    r = s.respq("yes")
    p = s.pki.path
    script = f"""<?php
$r = new Redis();
$ctx = ['verify_peer' => true, 'verify_peer_name' => true, 'peer_name' => '127.0.0.1',
        'cafile' => '{p("ca.crt")}', 'local_cert' => '{p("client.crt")}', 'local_pk' => '{p("client.key")}'];
$r->connect('tls://127.0.0.1', {r.tls_port}, 5, NULL, 0, 0, ['stream' => $ctx]);
$r->set('php:k', 'from php over tls');
$r->rPush('php:l', 'a', 'b');
echo json_encode([$r->ping(), $r->get('php:k'), $r->lRange('php:l', 0, -1), $r->incrBy('php:n', 5)]), "\\n";
$bad = new Redis();
try {{
    $ok = @$bad->connect('tls://127.0.0.1', {r.tls_port}, 5, NULL, 0, 0,
        ['stream' => ['verify_peer' => true, 'peer_name' => '127.0.0.1', 'cafile' => '{p("ca.crt")}']]);
    echo $ok && $bad->ping() ? "nocert:answered\\n" : "nocert:refused\\n";
}} catch (Exception $e) {{
    echo "nocert:refused\\n";
}}
"""
    lines = php(script).stdout.strip().splitlines()
    import json
    assert json.loads(lines[0]) == [True, "from php over tls", ["a", "b"], 5], lines
    assert lines[1] == "nocert:refused", lines
    assert r.client().get("php:k") == b"from php over tls"


def test_admin_port_serves_https_with_the_same_certificate(s):
    admin = free_port()
    r = s.respq("yes", "--admin-port", str(admin))
    wait_port(admin, proc=r.proc, what="admin port")
    out = subprocess.run(["curl", "-sS", "--cacert", s.pki.path("ca.crt"), f"https://127.0.0.1:{admin}/metrics"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "respq_" in out.stdout, (out.returncode, out.stderr, out.stdout[:200])
    plain = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{admin}/metrics"], capture_output=True, text=True,
                           timeout=30)
    assert "respq_" not in plain.stdout, "the admin port still answered plain http"


def test_bad_tls_port_settings_stop_the_start(s):
    p = s.pki.path
    log = start_error("--tls-port", str(free_port()), "--tls-cert-file", p("server.crt"))
    assert "tls-port needs tls-cert-file and tls-key-file" in log, log
    log = start_error("--tls-port", str(free_port()), "--tls-cert-file", p("server.crt"), "--tls-key-file",
                      p("client.key"), "--tls-auth-clients", "no")
    assert "tls-key-file" in log, log
    log = start_error("--tls-port", str(free_port()), "--tls-cert-file", p("server.crt"), "--tls-key-file",
                      p("server.key"))
    assert "needs tls-ca-cert-file or tls-ca-cert-dir" in log, log
    log = start_error("--tls-auth-clients", "maybe")
    assert "no, yes, optional" in log, log


def setup():
    return Servers()


if __name__ == "__main__":
    run_tests(globals(), setup)
