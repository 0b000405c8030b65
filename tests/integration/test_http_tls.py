"""Outgoing TLS: https attempts and callbacks verify their peer against the configured trust
(tls-ca-cert-file / tls-ca-cert-dir globally, `http-queue <q> ca-file` per queue, else the
system store), present the queue's client certificate (`client-cert` + `client-key`) when
the endpoint asks for one, and never downgrade: a certificate that does not verify, a host
name that does not match, or a client certificate the endpoint refuses (or lacks) makes a
dead letter at the first attempt with a reason starting `TLS`, not a retry loop.

https tasks and callbacks that follow no redirects go over the lean client (its ALPN offers
h2 then HTTP/1.1, or HTTP/1.1 only under `http2 no`; its keep-alive connections are reused,
its sessions resumed; HTTP/2 itself is test_http2.py's); tasks with follow_redirects go over
curl. The rules above hold on both.

Everything is made here: a CA, a second CA nobody trusts, server certificates for 127.0.0.1,
a client CA and a client certificate, all by the openssl command line, and https listeners
on loopback (Python's ssl module; one requires a client certificate).
"""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (TARGET, Outcomes, Respq, dead_records, free_port, run_tests, start_error,  # noqa: E402
                     task_info, wait_until)

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)


class Pki(harness.Pki):
    """A CA, a CA nobody trusts, a client CA, and certificates they sign, in a temporary
    directory."""

    def __init__(self):
        super().__init__(("ca", "rogue", "clientca"), prefix="respq-tls-")
        self.sign("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.sign("rogue-server", "rogue", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.sign("wrong-name", "ca", "/CN=elsewhere.example", "subjectAltName=DNS:elsewhere.example")
        self.sign("client", "clientca", "/CN=respq-client-7", "extendedKeyUsage=clientAuth")
        self.sign("other-client", "ca", "/CN=someone-else", "extendedKeyUsage=clientAuth")
        os.makedirs(self.path("cadir"))
        # A hashed CA directory, as c_rehash makes it.
        h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", self.path("ca.crt")], check=True,
                           capture_output=True, text=True).stdout.strip()
        os.symlink(self.path("ca.crt"), self.path(f"cadir/{h}.0"))


class HttpsSink:
    """An HTTPS/1.1 keep-alive endpoint on 127.0.0.1 with the given certificate. With
    client_ca, a client certificate signed by it is required. Records requests (with the
    client certificate's CN) and counts completed handshakes."""

    def __init__(self, pki, cert, client_ca=None, tls12=False, alpn=None):
        self.port = free_port()
        self.requests = []
        self.handshakes = 0
        self.alpn = []     # the protocol ALPN chose, per handshake
        self.resumed = []  # whether the session was resumed, per handshake
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.path(f"{cert}.crt"), pki.path(f"{cert}.key"))
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(pki.path(f"{client_ca}.crt"))
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer = self.connection.getpeercert() or {}
                cn = dict(x[0] for x in peer.get("subject", ())).get("commonName")
                with sink.lock:
                    sink.requests.append({"path": self.path, "client_cn": cn, "body": body.decode("utf-8", "replace")})
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                if self.path.startswith("/redirect-plain"):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("to=", 1)[1])
                else:
                    self.send_response(200)
                if self.path.startswith("/close"):
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = handle_any

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                sock, addr = self.socket.accept()
                return sock, addr

            def process_request_thread(self, request, client_address):
                # The handshake in the connection's own thread: a client that fails it
                # does not hold up the accept loop.
                try:
                    request = ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    # The alert is sent; close as servers do (nginx's lingering close):
                    # stop writing, drain what the client sent, then close, so the
                    # alert is read before any reset.
                    try:
                        request.shutdown(socket.SHUT_WR)
                        request.settimeout(2)
                        while request.recv(4096):
                            pass
                    except OSError:
                        pass
                    request.close()
                    return
                with sink.lock:
                    sink.handshakes += 1
                    sink.alpn.append(request.selected_alpn_protocol())
                    sink.resumed.append(request.session_reused)
                super().process_request_thread(request, client_address)

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path="/"):
        return f"https://127.0.0.1:{self.port}{path}"

    def got(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Servers:
    def __init__(self):
        self.pki = Pki()
        self.sinks = []
        self.respqs = []

    def sink(self, cert="server", client_ca=None, tls12=False, alpn=None):
        s = HttpsSink(self.pki, cert, client_ca, tls12, alpn)
        self.sinks.append(s)
        return s

    def respq(self, *args):
        r = Respq("--loglevel", "verbose", *args)
        self.respqs.append(r)
        return r

    def dump_log(self):
        for r in self.respqs:
            r.dump_log()

    def __exit__(self, *a):
        for r in self.respqs:
            r.__exit__(None, None, None)
        for s in self.sinks:
            s.close()
        self.pki.close()


def push(r, task, queue="tasks"):
    r.client().lpush(queue, json.dumps(task))


def dead_one(c, task_id, queue="tasks", timeout=15.0):
    found = []

    def look():
        found[:] = [d for d in dead_records(c, queue) if d["id"] == task_id]
        return found
    wait_until(look, timeout=timeout, what=f"{task_id} in {queue}:dead")
    return found[0]


def assert_tls_dead(d, *fragments):
    assert d["reason"].startswith("TLS"), f"reason {d['reason']!r} does not start with TLS"
    for f in fragments:
        assert f in d["reason"], f"{f!r} not in {d['reason']!r}"
    assert d["attempts"] == 1, f"a TLS failure is not retried: {d}"


# ---- trust ------------------------------------------------------------------------------

def test_untrusted_certificate_is_dead_at_once_and_trusted_ca_delivers(s):
    good = s.sink("server")
    # No CA configured: the system store does not know the test CA.
    r = s.respq("--http-queue", "tasks", "retries", "5", "backoff-min", "0.05")
    c = r.client()
    with Outcomes(r) as out:
        push(r, {"url": good.url("/untrusted"), "id": "untrusted"})
        o = out.wait(id="untrusted", status="dead")
    assert o["attempts"] == 1 and o["error"].startswith("TLS peer verification failed"), o
    assert_tls_dead(dead_one(c, "untrusted"), "certificate")
    assert not good.got("/untrusted"), "nothing is sent to a peer that did not verify"
    assert not c.hlen("tasks:inflight"), "nothing waits for a retry"
    info = task_info(r.port)
    assert info["dead"] == "1" and info["failed"] == "1", info

    # The same endpoint once its CA is trusted, at run time.
    assert c.config_set("tls-ca-cert-file", s.pki.path("ca.crt"))
    assert c.config_get("tls-ca-cert-file") == {"tls-ca-cert-file": s.pki.path("ca.crt")}
    with Outcomes(r) as out:
        push(r, {"url": good.url("/trusted"), "id": "trusted", "callback": good.url("/cb")})
        out.wait(id="trusted", status="delivered")
    wait_until(lambda: good.got("/cb"), what="the https callback under the same trust")
    assert json.loads(good.got("/cb")[0]["body"])["id"] == "trusted"


def test_global_ca_file_and_dir_and_a_rogue_ca(s):
    good, rogue, wrong_name = s.sink("server"), s.sink("rogue-server"), s.sink("wrong-name")
    for how in (("--tls-ca-cert-file", s.pki.path("ca.crt")), ("--tls-ca-cert-dir", s.pki.path("cadir"))):
        r = s.respq(*how, "--http-queue", "tasks", "retries", "5", "backoff-min", "0.05")
        c = r.client()
        with Outcomes(r) as out:
            push(r, {"url": good.url("/ok"), "id": "ok"})
            push(r, {"url": rogue.url("/rogue"), "id": "rogue"})
            push(r, {"url": wrong_name.url("/name"), "id": "name"})
            out.wait(id="ok", status="delivered")
            out.wait(id="rogue", status="dead")
            out.wait(id="name", status="dead")
        assert_tls_dead(dead_one(c, "rogue"), "TLS peer verification failed", "certificate")
        # The certificate chains to the trusted CA but names another host.
        assert_tls_dead(dead_one(c, "name"), "TLS peer verification failed", "127.0.0.1")
        assert not rogue.got("/rogue") and not wrong_name.got("/name")
        info = task_info(r.port)
        assert info["delivered"] == "1" and info["dead"] == "2", f"{how[0]}: {info}"


def test_a_configured_ca_replaces_the_system_store_and_a_queue_ca_file_replaces_the_global(s):
    good, rogue = s.sink("server"), s.sink("rogue-server")
    # Global: the rogue CA; queue "internal": the test CA. Each queue trusts only its own.
    r = s.respq("--tls-ca-cert-file", s.pki.path("rogue.crt"),
                "--http-queue", "internal", "ca-file", s.pki.path("ca.crt"), "retries", "3")
    c = r.client()
    assert f"ca-file {s.pki.path('ca.crt')}" in c.config_get("http-queue")["http-queue"]
    with Outcomes(r, "internal") as out_i, Outcomes(r, "tasks") as out_t:
        push(r, {"url": good.url("/internal"), "id": "i-good"}, queue="internal")
        push(r, {"url": rogue.url("/internal"), "id": "i-rogue"}, queue="internal")
        push(r, {"url": rogue.url("/global"), "id": "t-rogue"})
        push(r, {"url": good.url("/global"), "id": "t-good"})
        out_i.wait(id="i-good", status="delivered")
        out_i.wait(id="i-rogue", status="dead")
        out_t.wait(id="t-rogue", status="delivered")
        out_t.wait(id="t-good", status="dead")
    assert_tls_dead(dead_one(c, "i-rogue", "internal"), "TLS peer verification failed")
    assert_tls_dead(dead_one(c, "t-good"), "TLS peer verification failed")
    # ca-file none: back to the global file.
    assert c.config_set("http-queue", "internal ca-file none")
    assert "ca-file" not in c.config_get("http-queue")["http-queue"].split("internal", 1)[1].split(",")[0]
    with Outcomes(r, "internal") as out_i:
        push(r, {"url": rogue.url("/internal2"), "id": "i-rogue2"}, queue="internal")
        out_i.wait(id="i-rogue2", status="delivered")


def test_https_redirects_stay_on_https(s):
    good = s.sink("server")
    plain_port = free_port()
    r = s.respq("--tls-ca-cert-file", s.pki.path("ca.crt"), "--http-queue", "tasks", "retries", "3")
    c = r.client()
    with Outcomes(r) as out:
        push(r, {"url": good.url(f"/redirect-plain?to=http://127.0.0.1:{plain_port}/x"), "id": "down",
                 "follow_redirects": True})
        push(r, {"url": good.url(f"/redirect-plain?to={good.url('/landed')}"), "id": "up", "follow_redirects": True})
        out.wait(id="up", status="delivered")
        o = out.wait(id="down", status="dead")
    assert o["attempts"] == 1, o
    d = dead_one(c, "down")
    assert "refused" in d["reason"], d
    # In respq's words, naming the hop, not curl's "Protocol not supported".
    assert d["reason"] == f"Redirect from https to 'http://127.0.0.1:{plain_port}/x' refused: https is followed " \
                          "to https only", d
    assert len(good.got("/landed")) == 1


# ---- mutual TLS -------------------------------------------------------------------------

def test_mtls_with_client_cert_works_and_without_fails(s):
    # TLS 1.3: the server judges the client's certificate after the client's side of the
    # handshake is done and says so with an alert ("certificate required") as it closes;
    # the client reads that alert (final) or, when the close outruns it, a reset or a
    # broken write (an ordinary transport error, retried). Either way nothing is delivered.
    strict = s.sink("server", client_ca="clientca")
    # TLS 1.2: the server judges it inside the handshake, so the refusal is always the
    # alert: dead at the first attempt.
    strict12 = s.sink("server", client_ca="clientca", tls12=True)
    r = s.respq("--tls-ca-cert-file", s.pki.path("ca.crt"),
                "--http-queue", "mtls", "client-cert", s.pki.path("client.crt"), "client-key", s.pki.path("client.key"),
                "--http-queue", "wrongid", "client-cert", s.pki.path("other-client.crt"), "client-key",
                s.pki.path("other-client.key"), "retries", "3",
                "--http-queue", "tasks", "retries", "3", "backoff-min", "0.05", "backoff-max", "0.2")
    c = r.client()
    shown = c.config_get("http-queue")["http-queue"]
    assert f"client-cert {s.pki.path('client.crt')} client-key {s.pki.path('client.key')}" in shown, shown
    with Outcomes(r, "mtls") as out_m, Outcomes(r, "tasks") as out_t, Outcomes(r, "wrongid") as out_w:
        push(r, {"url": strict.url("/with"), "id": "with-cert", "callback": strict.url("/cb")}, queue="mtls")
        push(r, {"url": strict.url("/without"), "id": "without-cert"})
        push(r, {"url": strict12.url("/wrong"), "id": "wrong-cert"}, queue="wrongid")
        push(r, {"url": strict12.url("/with12"), "id": "with-cert-12"}, queue="mtls")
        push(r, {"url": strict12.url("/without12"), "id": "without-cert-12"})
        out_m.wait(id="with-cert", status="delivered")
        out_t.wait(id="without-cert", status="dead", timeout=30)
        out_w.wait(id="wrong-cert", status="dead")
        out_m.wait(id="with-cert-12", status="delivered")
        out_t.wait(id="without-cert-12", status="dead")
    [req] = strict.got("/with")
    assert req["client_cn"] == "respq-client-7", req
    # The callback goes out with the queue's client certificate too.
    wait_until(lambda: strict.got("/cb"), what="the callback over mTLS")
    assert strict.got("/cb")[0]["client_cn"] == "respq-client-7"
    assert_tls_dead(dead_one(c, "wrong-cert", "wrongid"), "alert unknown ca")
    assert_tls_dead(dead_one(c, "without-cert-12"), "TLS handshake refused")
    assert strict12.got("/with12")[0]["client_cn"] == "respq-client-7"
    assert not strict.got("/without") and not strict12.got("/wrong") and not strict12.got("/without12")


# ---- the lean client -------------------------------------------------------------------

def test_https_goes_over_kept_alive_http11_connections_and_resumes_sessions(s):
    # The endpoint offers h2 first: a client that offered h2 would get it (and this
    # HTTP/1.1 server could not answer it). Under `http2 no` only HTTP/1.1 is offered, on
    # few connections.
    sink = s.sink("server", alpn=["h2", "http/1.1"])
    r = s.respq("--tls-ca-cert-file", s.pki.path("ca.crt"), "--http2", "no",
                "--http-queue", "tasks", "per-host", "2", "retries", "0",
                "--http-queue", "closing", "per-host", "1", "retries", "0")
    n = 60
    with Outcomes(r) as out:
        for i in range(n):
            push(r, {"url": sink.url(f"/k?i={i}"), "id": f"k{i}", "callback": sink.url(f"/cb?i={i}")})
        for i in range(n):
            out.wait(id=f"k{i}", status="delivered")
    wait_until(lambda: len([q for q in sink.requests if q["path"].startswith("/cb")]) == n, what="the callbacks")
    with sink.lock:
        alpn, handshakes = list(sink.alpn), sink.handshakes
    assert alpn and set(alpn) == {"http/1.1"}, alpn
    # Two connections for the tasks (per-host 2) and up to two for the callbacks (their
    # own pool): 120 requests over at most 4 handshakes.
    assert handshakes <= 4, f"{handshakes} handshakes for {2 * n} requests"

    # A server that closes after each response: every request a new connection, each
    # after the first resuming the session the server issued on the one before (a queue
    # of its own: no connection of the first part is reused).
    with Outcomes(r, "closing") as out:
        for i in range(4):
            push(r, {"url": sink.url(f"/close?i={i}"), "id": f"c{i}"}, queue="closing")
            out.wait(id=f"c{i}", status="delivered")
    with sink.lock:
        resumed = sink.resumed[-4:]
        handshakes_after = sink.handshakes
    assert handshakes_after == handshakes + 4, (handshakes, handshakes_after)
    assert resumed[1:] == [True, True, True], resumed


def test_a_connection_busy_during_a_trust_change_is_not_reused_under_the_new_trust(s):
    """CONFIG SET changes a queue's CA while its one connection carries a slow request:
    that request ends as it began, but the connection is not kept for the next task,
    which is verified afresh against the new CA (and refused), as an idle one would be."""
    sink = s.sink("server")
    r = s.respq("--http-queue", "q", "ca-file", s.pki.path("ca.crt"), "concurrency", "1", "per-host", "1",
                "retries", "0")
    c = r.client()
    with Outcomes(r, "q") as out:
        push(r, {"url": sink.url("/slow"), "id": "slow"}, queue="q")
        wait_until(lambda: any(q["path"] == "/slow" for q in sink.requests), what="the slow request")
        assert c.config_set("http-queue", f"q ca-file {s.pki.path('rogue.crt')}")
        out.wait(id="slow", status="delivered", timeout=10)
        push(r, {"url": sink.url("/after"), "id": "after"}, queue="q")
        after = out.wait(id="after", timeout=10)
    assert after["status"] == "dead" and "TLS peer verification failed" in after["error"], after
    assert not [q for q in sink.requests if q["path"] == "/after"], "sent over a connection the new CA never verified"


def test_an_https_address_the_egress_policy_denies_is_never_dialled(s):
    sink = s.sink("server")
    r = s.respq("--tls-ca-cert-file", s.pki.path("ca.crt"), "--egress-policy", "public",
                "--http-queue", "tasks", "retries", "3")
    c = r.client()
    with Outcomes(r) as out:
        push(r, {"url": sink.url("/denied"), "id": "denied"})
        o = out.wait(id="denied", status="dead")
    assert o["attempts"] == 1, o
    d = dead_one(c, "denied")
    assert d["reason"].startswith("egress denied") and "127.0.0.1" in d["reason"], d
    assert sink.handshakes == 0 and not sink.requests, "nothing reached the denied address"


# ---- settings -----------------------------------------------------------------------------

def test_bad_tls_settings_are_refused(s):
    import redis
    r = s.respq()
    c = r.client()
    p = s.pki.path
    for name, value, error in [
        ("tls-ca-cert-file", p("missing.crt"), "can't open"),
        ("tls-ca-cert-file", p("server.key"), "holds no PEM certificate"),
        ("tls-ca-cert-dir", p("ca.crt"), "is not a directory"),
        ("http-queue", f"tasks ca-file {p('nope.crt')}", "ca-file: can't open"),
        ("http-queue", f"tasks client-cert {p('client.crt')}", "client-cert needs a client-key"),
        ("http-queue", f"tasks client-key {p('client.key')}", "client-key needs a client-cert"),
        ("http-queue", f"tasks client-cert {p('client.crt')} client-key {p('server.key')}", "is not the key of"),
    ]:
        try:
            c.config_set(name, value)
            raise AssertionError(f"CONFIG SET {name} {value} was accepted")
        except redis.ResponseError as e:
            assert error in str(e), f"{name} {value}: {e}"
    assert c.config_get("tls-ca-cert-file") == {"tls-ca-cert-file": ""}
    assert "client-cert" not in c.config_get("http-queue")["http-queue"]
    # At start, the same checks stop the server before it listens.
    log = start_error("--tls-ca-cert-file", p("missing.crt"))
    assert "can't open" in log, log
    log = start_error("--http-queue", "tasks", "client-cert", p("client.crt"), "client-key", p("ca.key"))
    assert "is not the key of" in log, log


def setup():
    return Servers()


if __name__ == "__main__":
    run_tests(globals(), setup)
