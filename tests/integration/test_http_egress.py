"""Egress policy: respq connects only where the policy allows, judged on the address it is
about to dial, on both HTTP stacks (the lean HTTP/1.1 client, and libcurl, which a whole
server uses with RESPQ_DELIVERY_CURL_ONLY=1 and which always carries redirects to follow),
for every redirect hop and for callbacks.

Loopback only: `egress-policy public` denies 127.0.0.1; `egress-deny 127.0.0.2/32` denies a
listener on 127.0.0.2 while 127.0.0.1 stays reachable. Each listener counts the TCP
connections it accepts, so "not one packet went there" is asserted as zero accepted
connections. A denied task is dead at its first attempt (no retry), its reason starting
`egress denied` and naming the address and the rule; INFO tasks counts it (egress_denied).
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, Outcomes, RedisServer, Respq, dead_records, free_port, run_tests,  # noqa: E402
                     task_info, wait_until)

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)


class CountingSink:
    """An HTTP/1.1 keep-alive endpoint on (host, port) that counts accepted connections and
    records requests. /redirect?to=URL answers 302 to URL; anything else 200."""

    def __init__(self, host):
        self.host = host
        self.port = free_port()
        self.accepted = 0
        self.requests = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                with sink.lock:
                    sink.requests.append({"method": self.command, "path": split.path, "query": split.query,
                                          "headers": {k.lower(): v for k, v in self.headers.items()},
                                          "body": body.decode("utf-8", "replace")})
                q = parse_qs(split.query)
                if split.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", q["to"][0])
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = handle_any

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                conn = super().get_request()
                with sink.lock:
                    sink.accepted += 1
                return conn

        self.server = Server((host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path="/", **query):
        from urllib.parse import urlencode
        return f"http://{self.host}:{self.port}{path}" + ("?" + urlencode(query) if query else "")

    def got(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


STACKS = {"lean": None, "curl": {"RESPQ_DELIVERY_CURL_ONLY": "1"}}


class Servers:
    def __init__(self):
        self.sinks = []
        self.respqs = []

    def sink(self, host="127.0.0.1"):
        s = CountingSink(host)
        self.sinks.append(s)
        return s

    def respq(self, *args, stack="lean"):
        env = dict(os.environ, **STACKS[stack]) if STACKS[stack] else None
        r = Respq("--loglevel", "verbose", *args, env=env)
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


def dead_one(c, task_id, queue="tasks", timeout=10.0):
    found = []

    def look():
        found[:] = [d for d in dead_records(c, queue) if d["id"] == task_id]
        return found
    wait_until(look, timeout=timeout, what=f"{task_id} in {queue}:dead")
    return found[0]


def push(r, task, queue="tasks"):
    r.client().lpush(queue, json.dumps(task))


def assert_denied(d, address, port, rule):
    want = f"egress denied: {address} port {port} ({rule})"
    assert d["reason"] == want, f"reason {d['reason']!r}, expected {want!r}"
    assert d["attempts"] == 1, f"a denied task is not retried: {d}"


# ---- egress-policy public denies loopback -------------------------------------------------

def test_public_denies_loopback_on_both_stacks_and_nothing_connects(s):
    for stack in STACKS:
        sink = s.sink()
        other = s.sink()  # reached by a queue whose own level is `any`
        r = s.respq("--egress-policy", "public", "--http-queue", "tasks", "retries", "3", "backoff-min", "0.05",
                    "--http-queue", "open", "egress", "any", stack=stack)
        c = r.client()
        with Outcomes(r) as out:
            push(r, {"url": sink.url("/plain"), "id": "pub-plain"})
            push(r, {"url": sink.url("/follow"), "id": "pub-follow", "follow_redirects": True})  # always curl
            push(r, {"url": f"http://user:pw@127.0.0.1:{sink.port}/creds", "id": "pub-creds"})  # always curl
            o = out.wait(id="pub-plain", status="dead")
        assert o["attempts"] == 1 and o["error"].startswith("egress denied"), o
        for tid in ("pub-plain", "pub-follow", "pub-creds"):
            assert_denied(dead_one(c, tid), "127.0.0.1", sink.port, "policy public: loopback 127.0.0.0/8")
        # A queue's own level wins over egress-policy.
        push(r, {"url": other.url("/open"), "id": "open-1"}, queue="open")
        wait_until(lambda: other.got("/open"), what=f"{stack}: the 'egress any' queue delivers")
        info = task_info(r.port)
        assert info["egress_denied"] == "3" and info["dead"] == "3" and info["failed"] == "3", f"{stack}: {info}"
        assert task_info(r.port, "open")["egress_denied"] == "0"
        assert not c.hlen("tasks:inflight"), "nothing denied waits for a retry"
        time.sleep(0.2)  # anything that was going to connect late would have by now
        assert sink.accepted == 0 and not sink.requests, f"{stack}: {sink.accepted} connections reached a denied address"
        assert other.accepted >= 1


# ---- egress-deny 127.0.0.2/32 -------------------------------------------------------------

def test_deny_list_denies_one_address_while_another_is_delivered(s):
    for stack in STACKS:
        allowed, denied = s.sink("127.0.0.1"), s.sink("127.0.0.2")
        r = s.respq("--egress-deny", "127.0.0.2/32", "--http-queue", "tasks", "retries", "3", stack=stack)
        c = r.client()
        with Outcomes(r) as out:
            push(r, {"url": denied.url("/x"), "id": "deny-x"})
            push(r, {"url": allowed.url("/ok"), "id": "deny-ok"})
            out.wait(id="deny-ok", status="delivered")
            out.wait(id="deny-x", status="dead")
        assert_denied(dead_one(c, "deny-x"), "127.0.0.2", denied.port, "egress-deny 127.0.0.2/32")
        assert len(allowed.got("/ok")) == 1
        assert task_info(r.port)["egress_denied"] == "1"
        assert denied.accepted == 0, f"{stack}: {denied.accepted} connections to 127.0.0.2"


def test_a_redirect_to_a_denied_address_is_dead_and_the_denied_listener_sees_nothing(s):
    allowed, denied = s.sink("127.0.0.1"), s.sink("127.0.0.2")
    r = s.respq("--egress-deny", "127.0.0.2/32")
    c = r.client()
    with Outcomes(r) as out:
        push(r, {"url": allowed.url("/redirect", to=denied.url("/target")), "follow_redirects": True, "id": "hop-bad"})
        push(r, {"url": allowed.url("/redirect", to=allowed.url("/landed")), "follow_redirects": True,
                 "id": "hop-good"})
        out.wait(id="hop-good", status="delivered")
        bad = out.wait(id="hop-bad", status="dead")
    assert bad["code"] == 302, f"the last answer was the allowed hop's redirect: {bad}"
    assert_denied(dead_one(c, "hop-bad"), "127.0.0.2", denied.port, "egress-deny 127.0.0.2/32")
    assert len(allowed.got("/redirect")) == 2 and len(allowed.got("/landed")) == 1
    assert denied.accepted == 0, f"{denied.accepted} connections reached 127.0.0.2 through a redirect"


def test_a_callback_to_a_denied_address_is_not_sent(s):
    for stack in STACKS:
        allowed, denied = s.sink("127.0.0.1"), s.sink("127.0.0.2")
        r = s.respq("--egress-deny", "127.0.0.2/32", stack=stack)
        push(r, {"url": allowed.url("/job"), "id": "cb-bad", "callback": denied.url("/cb")})
        push(r, {"url": allowed.url("/job"), "id": "cb-good", "callback": allowed.url("/cb")})
        wait_until(lambda: allowed.got("/cb"), what=f"{stack}: the allowed callback")
        assert json.loads(allowed.got("/cb")[0]["body"])["id"] == "cb-good"
        wait_until(lambda: task_info(r.port)["egress_denied"] == "1", what=f"{stack}: the denied callback counted")
        info = task_info(r.port)
        assert info["delivered"] == "2" and info["dead"] == "0", f"a callback's denial leaves the task delivered: {info}"
        assert "Callback for task cb-bad failed: egress denied: 127.0.0.2" in r.log_text()
        assert denied.accepted == 0, f"{stack}: {denied.accepted} connections to the denied callback address"


def test_a_shared_queue_obeys_the_same_policy(s):
    up = RedisServer()
    s.respqs.append(up)
    allowed, denied = s.sink("127.0.0.1"), s.sink("127.0.0.2")
    r = s.respq("--upstream", "127.0.0.1", str(up.port), "--node-id", "A", "--egress-deny", "127.0.0.2/32",
                "--http-queue", "shq", "shared", "yes", "retries", "3")
    push(r, {"url": denied.url("/x"), "id": "sh-bad", "callback": denied.url("/cb")}, queue="shq")
    push(r, {"url": allowed.url("/ok"), "id": "sh-good", "callback": denied.url("/cb")}, queue="shq")
    upc = up.client()

    def dead_upstream():
        return [json.loads(x) for x in upc.lrange("shq:dead", 0, -1)]
    wait_until(lambda: dead_upstream() and allowed.got("/ok"), what="the shared queue's outcomes")
    [d] = dead_upstream()
    assert d["id"] == "sh-bad", d
    assert_denied(d, "127.0.0.2", denied.port, "egress-deny 127.0.0.2/32")
    # The denied task's and the delivered task's callbacks: both refused.
    wait_until(lambda: task_info(r.port, "shq")["egress_denied"] == "3", what="three denials counted")
    info = task_info(r.port, "shq")
    assert info["dead"] == "1" and info["delivered"] == "1", info
    assert denied.accepted == 0, f"{denied.accepted} connections to 127.0.0.2 from a shared queue"


# ---- at run time --------------------------------------------------------------------------

def test_config_set_changes_the_policy_for_connections_already_open(s):
    for stack in STACKS:
        sink = s.sink("127.0.0.1")
        other = s.sink("127.0.0.2")
        r = s.respq("--egress-deny", "127.0.0.2/32", stack=stack)
        c = r.client()
        with Outcomes(r) as out:
            push(r, {"url": sink.url("/warm"), "id": "rt-warm"})
            out.wait(id="rt-warm", status="delivered")
            accepted_before = sink.accepted
            # A keep-alive connection to 127.0.0.1 is open; the new level denies loopback.
            assert c.config_set("egress-policy", "public")
            assert c.config_get("egress-policy") == {"egress-policy": "public"}
            push(r, {"url": sink.url("/after"), "id": "rt-after"})
            out.wait(id="rt-after", status="dead")
            # egress-allow wins over egress-deny and the level.
            assert c.config_set("egress-allow", "127.0.0.2/32")
            push(r, {"url": other.url("/allowed"), "id": "rt-allowed"})
            out.wait(id="rt-allowed", status="delivered")
        assert_denied(dead_one(c, "rt-after"), "127.0.0.1", sink.port, "policy public: loopback 127.0.0.0/8")
        assert not sink.got("/after"), f"{stack}: a connection opened before the change carried a denied request"
        assert sink.accepted == accepted_before
        assert len(other.got("/allowed")) == 1
        assert c.config_get("egress-allow") == {"egress-allow": "127.0.0.2/32"}
        assert c.config_get("egress-deny") == {"egress-deny": "127.0.0.2/32"}


def test_bad_egress_settings_are_refused(s):
    r = s.respq()
    c = r.client()
    import redis
    for name, value, error in [
        ("egress-policy", "private", "must be one of the following: metadata, public, any"),
        ("egress-deny", "10.0.0.1/8", "'10.0.0.1/8' has host bits set (the block is 10.0.0.0/8)"),
        ("egress-allow", "example.com", "'example.com' is not an IP address or CIDR block"),
        ("http-queue", "tasks egress open", "egress must be metadata, public, any or default"),
    ]:
        try:
            c.config_set(name, value)
            raise AssertionError(f"CONFIG SET {name} {value} was accepted")
        except redis.ResponseError as e:
            assert error in str(e), f"{name}: {e}"
    assert c.config_get("egress-policy") == {"egress-policy": "metadata"}, "metadata is the default"


def setup():
    return Servers()


if __name__ == "__main__":
    run_tests(globals(), setup)
