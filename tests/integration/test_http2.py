"""HTTP/2 on the lean https client: where the endpoint's ALPN selects h2, tasks go as streams
multiplexed over few connections (at most the per-host cap in flight, at most the server's
SETTINGS_MAX_CONCURRENT_STREAMS per connection); an https endpoint without h2 gets HTTP/1.1
as before; plain http never tries h2. What a request carries and what a response means are
the HTTP/1.1 path's: the same headers (lower-cased), bodies, signatures, codes, Retry-After,
the body read limit (`truncated`), the timeout. Streams a server did not process (its
GOAWAY came first) go out again without counting as an attempt. `http2 no` (CONFIG SET,
CONFIG REWRITE) turns it off. A server that selects h2 and then breaks the protocol fails
its connection with nghttp2's words; the process carries on.

The endpoints are nginx with `listen ... ssl http2` (and one without http2), its access log
writing `$server_protocol` and `$connection` per request; requests that must be inspected
are proxied by nginx to the Python sink (HTTP/1.1 behind it), which records headers and
bodies. Certificates are made here with openssl.
"""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TARGET, HttpEndpoint, Nginx, Outcomes, Respq, run_tests, wait_until  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

import test_http_signing as signing  # noqa: E402  (its verifier: an independent HMAC check)

LOG_FORMAT = "log_format proto '$server_protocol $connection $request_method $uri $status';"


class Servers:
    def __init__(self):
        self.pki = harness.Pki(("ca",), prefix="respq-h2-")
        self.pki.sign("server", "ca", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        with open(self.pki.path("big.bin"), "wb") as f:
            f.write(b"x" * (5 * 1024 * 1024))  # past the 4 MB read limit
        os.chmod(self.pki.dir, 0o755)  # nginx's workers may run as another user
        os.chmod(self.pki.path("big.bin"), 0o644)
        self.sink = HttpEndpoint(server="python")
        self.h2 = self.nginx("h2", "ssl http2")
        self.h1 = self.nginx("h1", "ssl")
        # Sends GOAWAY after 10 requests on a connection: later streams are not processed.
        self.goaway = self.nginx("goaway", "ssl http2", "keepalive_requests 10;")
        self.respqs = []

    def nginx(self, name, listen, extra=""):
        log = self.pki.path(f"{name}.log")
        tls = (f"ssl_certificate {self.pki.path('server.crt')}; ssl_certificate_key {self.pki.path('server.key')}; "
               f"access_log {log} proto; client_body_buffer_size 1m; {extra}")
        locations = f"""{tls}
    location /hook {{ proxy_pass http://127.0.0.1:{self.sink.port}; proxy_set_header Host $host; }}
    location = /gone {{ return 410; }}
    location = /missing {{ return 404; }}
    location = /busy {{ add_header Retry-After 120 always; return 503; }}
    location = /slow-down {{ add_header Retry-After 90 always; return 429; }}
    location = /big {{ alias {self.pki.path('big.bin')}; default_type application/octet-stream; }}
    location / {{ return 204; }}"""
        ng = Nginx(locations, listen_extra=listen, http_extra=LOG_FORMAT)
        ng.log = log
        return ng

    def respq(self, *args, **kw):
        r = Respq("--loglevel", "verbose", "--tls-ca-cert-file", self.pki.path("ca.crt"), *args, **kw)
        self.respqs.append(r)
        return r

    def dump_log(self):
        for r in self.respqs:
            r.dump_log()
        self.sink.dump_log()

    def __exit__(self, *a):
        for r in self.respqs:
            r.__exit__(None, None, None)
        for ng in (self.h2, self.h1, self.goaway):
            ng.__exit__(None, None, None)
        self.sink.__exit__(None, None, None)
        self.pki.close()


def log_lines(ng, prefix):
    """(protocol, connection, method, uri, status) of each request nginx logged whose URI
    starts with prefix."""
    try:
        with open(ng.log) as f:
            rows = [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []
    return [tuple(r) for r in rows if len(r) == 5 and r[3].startswith(prefix)]


def wait_logged(ng, prefix, n):
    wait_until(lambda: len(log_lines(ng, prefix)) >= n, what=f"{n} requests for {prefix} in nginx's log")
    return log_lines(ng, prefix)


def url(ng, path):
    return f"https://127.0.0.1:{ng.port}{path}"


def push(r, task, queue="tasks"):
    r.client().lpush(queue, json.dumps(task))


def deliver_all(r, tasks, queue="tasks", status="delivered"):
    with Outcomes(r, queue) as out:
        for t in tasks:
            push(r, t, queue)
        return [out.wait(id=t["id"], status=status, timeout=20) for t in tasks]


# ---- protocol choice ---------------------------------------------------------------------

def test_an_h2_endpoint_gets_http2_streams_sharing_a_connection(s):
    r = s.respq("--http-queue", "tasks", "per-host", "8", "retries", "0")
    n = 100
    outs = deliver_all(r, [{"url": url(s.h2, f"/many?i={i}"), "id": f"m{i}"} for i in range(n)])
    assert all(o["code"] == 204 and o["attempts"] == 1 for o in outs), outs[:3]
    lines = wait_logged(s.h2, "/many", n)
    assert {p for p, *_ in lines} == {"HTTP/2.0"}, lines[:5]
    # One connection carries them all (per-host 8 streams at a time, nginx allows 128).
    conns = {c for _, c, *_ in lines}
    assert len(conns) == 1, f"{len(conns)} connections for {n} requests"


def test_the_per_host_cap_bounds_streams_in_flight(s):
    r = s.respq("--http-queue", "tasks", "per-host", "3", "retries", "0")
    n = 12
    deliver_all(r, [{"url": url(s.h2, f"/hook/capped?group=cap3&sleep=0.2&i={i}"), "id": f"cap{i}"} for i in range(n)])
    seen = s.sink.wait_requests(n, path="/hook/capped")
    assert max(q["in_progress"] for q in seen) == 3, [q["in_progress"] for q in seen]
    lines = wait_logged(s.h2, "/hook/capped", n)
    assert {p for p, *_ in lines} == {"HTTP/2.0"} and len({c for _, c, *_ in lines}) == 1, lines


def test_an_https_endpoint_without_h2_and_plain_http_get_http11(s):
    r = s.respq("--http-queue", "tasks", "per-host", "4", "retries", "0")
    n = 40
    deliver_all(r, [{"url": url(s.h1, f"/one?i={i}"), "id": f"o{i}"} for i in range(n)])
    lines = wait_logged(s.h1, "/one", n)
    assert {p for p, *_ in lines} == {"HTTP/1.1"}, lines[:5]
    assert len({c for _, c, *_ in lines}) <= 4, "keep-alive connections are reused as before"
    # Plain http: HTTP/1.1, no h2c attempt (the sink would log an upgrade header).
    deliver_all(r, [{"url": s.sink.url("/plain"), "id": "plain"}])
    req = s.sink.wait_requests(1, path="/plain")[0]
    assert "upgrade" not in req["h"] and "http2-settings" not in req["h"], req["h"]


def test_http2_no_offers_http11_only_and_is_rewritten(s):
    r = s.respq("--http-queue", "tasks", "per-host", "4", "retries", "0", config="")
    c = r.client()
    assert c.config_get("http2") == {"http2": "yes"}
    deliver_all(r, [{"url": url(s.h2, "/before-off"), "id": "before"}])
    assert c.config_set("http2", "no")
    assert c.config_get("http2") == {"http2": "no"}
    deliver_all(r, [{"url": url(s.h2, f"/off?i={i}"), "id": f"off{i}"} for i in range(5)])
    assert wait_logged(s.h2, "/before-off", 1)[0][0] == "HTTP/2.0"
    assert {p for p, *_ in wait_logged(s.h2, "/off", 5)} == {"HTTP/1.1"}
    assert c.execute_command("CONFIG", "REWRITE") in (b"OK", True, "OK")
    with open(os.path.join(r.dir, "respq.conf")) as f:
        assert "\nhttp2 no\n" in "\n" + f.read(), "CONFIG REWRITE writes http2 no"
    assert c.config_set("http2", "yes")
    deliver_all(r, [{"url": url(s.h2, "/on-again"), "id": "again"}])
    assert wait_logged(s.h2, "/on-again", 1)[0][0] == "HTTP/2.0"
    try:
        c.config_set("http2", "maybe")
        raise AssertionError("CONFIG SET http2 maybe was accepted")
    except Exception as e:  # noqa: BLE001 - redis.ResponseError
        assert "yes" in str(e) or "argument" in str(e), e


# ---- what a request carries ----------------------------------------------------------------

def test_headers_body_and_signatures_arrive_over_h2(s):
    r = s.respq("--http-queue", "tasks", "retries", "0", "signing-secret", signing.OLD)
    body = {"order": 42, "note": "caf\u00e9 \u2013 a b&c=d", "items": list(range(50))}
    tasks = [
        {"url": url(s.h2, "/hook/json"), "id": "post-json", "method": "POST", "json": body,
         "headers": {"X-Custom": "one", "Connection": "keep-alive", "Keep-Alive": "timeout=5"}},
        {"url": url(s.h2, "/hook/form"), "id": "put-form", "method": "PUT", "param": {"a": "b c", "d": [1, 2]}},
        {"url": url(s.h2, "/hook/empty"), "id": "patch-empty", "method": "PATCH"},
        {"url": url(s.h2, "/hook/get?x=1"), "id": "get", "headers": {"User-Agent": "mine/1", "Accept": "text/plain"}},
        {"url": url(s.h2, "/hook/big-body"), "id": "big-post", "method": "POST", "body": "z" * 200_000},
    ]
    outs = deliver_all(r, tasks)
    assert all(o["code"] == 200 for o in outs), outs
    assert {p for p, *_ in wait_logged(s.h2, "/hook/", len(tasks))} == {"HTTP/2.0"}
    ids = {t["id"] for t in tasks}
    got = {q["h"]["x-task-id"]: q for q in s.sink.wait_requests(len(tasks), where=lambda q: q["h"].get("x-task-id") in ids)}
    j = got["post-json"]
    assert j["method"] == "POST" and json.loads(j["body"]) == body, j
    assert j["h"]["content-type"].startswith("application/json") and j["h"]["x-custom"] == "one", j["h"]
    assert j["h"]["user-agent"].startswith("respq/") and j["h"]["accept"] == "*/*", j["h"]
    assert "keep-alive" not in j["h"] and j["h"].get("transfer-encoding") is None, j["h"]
    assert got["put-form"]["method"] == "PUT" and got["put-form"]["body"] == "a=b+c&d%5B0%5D=1&d%5B1%5D=2"
    assert got["put-form"]["h"]["content-type"] == "application/x-www-form-urlencoded"
    assert got["patch-empty"]["method"] == "PATCH" and got["patch-empty"]["body"] == ""
    assert got["get"]["query"] == "x=1" and got["get"]["h"]["user-agent"] == "mine/1", got["get"]
    assert got["get"]["h"]["accept"] == "text/plain"
    assert got["big-post"]["body"] == "z" * 200_000
    for tid, q in got.items():
        msg_id, _ = signing.verify(q, [signing.OLD])
        assert msg_id == tid, (msg_id, tid)


# ---- what a response means ------------------------------------------------------------------

def outcomes_for(s, ng, r, queue, tag):
    """The same answers asked of `ng`: a final 4xx, a 410, a 503 and a 429 with Retry-After.
    A Retry-After holds its host (host:port) until then: the 503 and the 429 go last, the
    429 by the name localhost (another host key, the same server), so neither holds a task
    that would otherwise wait for it when the first answer comes before the last is sent."""
    tasks = [{"url": url(ng, p), "id": f"{tag}-{name}"} for name, p in
             (("gone", "/gone"), ("missing", "/missing"), ("ok", "/fine"), ("busy", "/busy"))]
    tasks.append({"url": f"https://localhost:{ng.port}/slow-down", "id": f"{tag}-slow"})
    with Outcomes(r, queue) as out:
        for t in tasks:
            push(r, t, queue)
        return {t["id"].split("-", 1)[1]: out.wait(id=t["id"], timeout=20) for t in tasks}


def test_codes_and_retry_after_are_classified_as_on_http11(s):
    r = s.respq("--http-queue", "tasks", "retries", "3", "backoff-min", "1", "backoff-max", "2")
    now = time.time()
    h2 = outcomes_for(s, s.h2, r, "tasks", "h2")
    h1 = outcomes_for(s, s.h1, r, "tasks", "h1")
    # nginx logs a request after its response is sent: wait for the line.
    assert {p for p, *_ in wait_logged(s.h2, "/gone", 1)} == {"HTTP/2.0"}
    for name in h2:
        a, b = h2[name], h1[name]
        assert (a["status"], a["code"], a["attempts"], a["error"]) == (b["status"], b["code"], b["attempts"], b["error"]), \
            (name, a, b)
    assert h2["gone"]["status"] == "dead" and h2["gone"]["code"] == 410
    assert h2["missing"]["status"] == "dead" and h2["missing"]["code"] == 404
    assert h2["ok"]["status"] == "delivered" and h2["ok"]["code"] == 204
    # Retry-After (120 s, 90 s) is honoured over the backoff's 2 s cap, on both.
    for name, after in (("busy", 120), ("slow", 90)):
        for o in (h2[name], h1[name]):
            assert o["status"] == "retrying", o
            assert o["next_run"] >= now + after - 5, (name, o, now)


def test_a_body_past_the_read_limit_is_truncated_as_on_http11(s):
    r = s.respq("--http-queue", "tasks", "retries", "0")
    outs = deliver_all(r, [{"url": url(ng, "/big"), "id": f"big-{name}"} for name, ng in (("h2", s.h2), ("h1", s.h1))])
    for o in outs:
        assert o["code"] == 200 and o.get("truncated") is True, o
    # The connection goes on after the stream was reset: the next task takes it.
    deliver_all(r, [{"url": url(s.h2, "/after-big"), "id": "after-big"}])
    big = [l for l in wait_logged(s.h2, "/big", 1) if l[3] == "/big"]
    after = wait_logged(s.h2, "/after-big", 1)
    assert big[-1][0] == "HTTP/2.0" and after[0][1] == big[-1][1], (big, after)


def test_a_stream_that_never_answers_times_out_and_the_connection_carries_on(s):
    r = s.respq("--http-queue", "tasks", "retries", "0", "per-host", "4")
    with Outcomes(r) as out:
        push(r, {"url": url(s.h2, "/hook/held?hold=h2slow"), "id": "held", "timeout": 1})
        push(r, {"url": url(s.h2, "/quick"), "id": "quick"})
        quick = out.wait(id="quick", status="delivered", timeout=10)
        held = out.wait(id="held", timeout=10)
    s.sink.wait_requests(1, path="/hook/held")
    urllib.request.urlopen(s.sink.url("/_release/h2slow"), timeout=5).read()
    assert quick["code"] == 204
    assert held["status"] == "dead" and held["error"].startswith("Operation timed out after"), held
    deliver_all(r, [{"url": url(s.h2, "/after-timeout"), "id": "after-timeout"}])
    conn_of = lambda p: {c for _, c, _, u, _ in wait_logged(s.h2, p, 1)}
    assert conn_of("/after-timeout") == conn_of("/quick"), "the reset stream did not cost the connection"


# ---- failures ----------------------------------------------------------------------------

def test_streams_the_server_did_not_process_go_again_without_an_attempt(s):
    # nginx answers 10 requests per connection, then GOAWAY: streams sent after those on
    # that connection are not processed, and go out again on a new connection.
    r = s.respq("--http-queue", "tasks", "per-host", "8", "retries", "0")
    n = 60
    outs = deliver_all(r, [{"url": url(s.goaway, f"/ga?i={i}"), "id": f"g{i}"} for i in range(n)])
    assert all(o["attempts"] == 1 and o["code"] == 204 for o in outs), [o for o in outs if o["attempts"] != 1][:3]
    lines = wait_logged(s.goaway, "/ga", n)
    assert len(lines) == n, f"{len(lines)} requests served for {n} tasks"
    assert {p for p, *_ in lines} == {"HTTP/2.0"}
    assert len({c for _, c, *_ in lines}) >= n // 10


def test_a_server_that_selects_h2_but_speaks_http11_fails_the_connection_with_words(s):
    """A hostile (or broken) server: its ALPN selects h2, then it answers the HTTP/2
    preface with HTTP/1.1 text. The connection fails with a clear error, the task is
    retried as after any network error, and respq goes on serving."""
    import test_http_tls
    liar = test_http_tls.HttpsSink(s.pki, "server", alpn=["h2", "http/1.1"])
    try:
        r = s.respq("--http-queue", "tasks", "retries", "1", "backoff-min", "0.05", "backoff-max", "0.1")
        with Outcomes(r) as out:
            push(r, {"url": liar.url("/lie"), "id": "lie"})
            o = out.wait(id="lie", status="dead", timeout=15)
        assert o["attempts"] == 2 and o["code"] == 0, o
        assert o["error"].startswith("HTTP/2 protocol error: "), o
        assert r.client().ping()
        deliver_all(r, [{"url": url(s.h2, "/after-liar"), "id": "after-liar"}])
    finally:
        liar.close()


def setup():
    return Servers()


if __name__ == "__main__":
    run_tests(globals(), setup)
