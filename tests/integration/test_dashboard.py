"""The dashboard on the admin port, in a real browser: Debian's chromium driven by
playwright-core (dashboard/browser.mjs) against respq and a loopback HTTP endpoint, so
every figure the page shows comes from real deliveries. Also the serving side without a
browser: the embedded files, their headers, and the auth rules (the page is public, its
data is not). Screenshots go to <build>/dashboard-artifacts."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HttpEndpoint, Respq, Skip, free_port, run_tests, wait_until  # noqa: E402

SOURCE = os.environ.get("RESPQ_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("RESPQ_BUILD_DIR", os.path.join(SOURCE, "build"))
ARTIFACTS = os.path.join(BUILD, "dashboard-artifacts")
BROWSER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard", "browser.mjs")
CHROMIUM = shutil.which("chromium")


def admin(*extra, **kw):
    port = free_port()
    r = Respq("--admin-port", str(port), *extra, **kw)
    r.admin = port
    return r


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        h = dict(headers or {})
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class SSE:
    """A Server-Sent Events stream read event by event: next_event() -> (name, JSON)."""

    def __init__(self, port, path):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", path)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.buf = b""

    def next_event(self):
        while True:
            while b"\n\n" not in self.buf:
                chunk = self.resp.read1(65536)
                assert chunk, "the stream ended"
                self.buf += chunk
            block, self.buf = self.buf.split(b"\n\n", 1)
            name, data = "message", []
            for line in block.decode().split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if data:
                return name, json.loads("\n".join(data))

    def close(self):
        self.conn.close()


def browser(scenario, r, sink=None, password=None, timeout=240, **extra):
    """Runs one scenario of browser.mjs; returns its PERF lines."""
    cfg = dict(scenario=scenario, admin=r.admin, sink=sink.url("").rstrip("/") if sink else None,
               password=password, artifacts=ARTIFACTS, **extra)
    env = dict(os.environ, DASH_CONFIG=json.dumps(cfg), RESPQ_SOURCE_DIR=SOURCE, CHROMIUM=CHROMIUM)
    p = subprocess.run(["node", BROWSER], env=env, capture_output=True, text=True, timeout=timeout)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        r.dump_log()
        raise AssertionError(f"browser scenario {scenario} failed:\n{p.stdout}\n{p.stderr}")
    return [l for l in p.stdout.splitlines() if l.startswith("PERF ")]


def check_tools():
    if CHROMIUM is None:
        raise Skip("chromium (Debian package chromium, scripts/deps --test) is not installed")
    if shutil.which("node") is None:
        raise Skip("node is not installed (scripts/deps)")
    if not os.path.exists(os.path.join(SOURCE, "admin/web/node_modules/playwright-core/index.mjs")):
        raise Skip("admin/web/node_modules is missing (scripts/build runs npm ci)")


# ---- served without a browser ------------------------------------------------------------

def test_page_and_files_are_embedded_public_and_revalidated():
    with admin("--requirepass", "s3cret", "--http-queue", "tasks") as r:
        status, h, body = request(r.admin, "GET", "/")
        assert status == 200 and h["content-type"].startswith("text/html"), (status, h)
        assert b'<script type="module" src="/ui/app.js">' in body
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert h["x-content-type-options"] == "nosniff"
        # Every file the page names is served from the binary, with the library from npm.
        for path, kind in [("/ui/app.js", "text/javascript"), ("/ui/pages.js", "text/javascript"),
                           ("/ui/api.js", "text/javascript"), ("/ui/charts.js", "text/javascript"),
                           ("/ui/uPlot.esm.js", "text/javascript"), ("/ui/style.css", "text/css"),
                           ("/ui/uPlot.min.css", "text/css")]:
            status, h, body = request(r.admin, "GET", path)
            assert status == 200 and h["content-type"].startswith(kind), (path, status, h)
            local = path[4:]
            src = os.path.join(SOURCE, "admin/web/src", local)
            if not os.path.exists(src):
                src = os.path.join(SOURCE, "admin/web/node_modules/uplot/dist", local)
            with open(src, "rb") as f:
                assert f.read() == body, f"{path} differs from {src}"
            etag = h["etag"]
            status, _, body = request(r.admin, "GET", path, headers={"If-None-Match": etag})
            assert status == 304 and body == b"", (path, status)
        assert request(r.admin, "GET", "/ui/nope.js")[0] == 404
        assert request(r.admin, "GET", "/ui/../metrics")[0] in (400, 404)
        # The data is not public: without the password, 401; a page's script (fetch) gets a
        # Bearer challenge (no browser password dialog over the login form), a navigation
        # or a client outside a browser Basic.
        for mode in ("cors", "same-origin"):
            status, h, _ = request(r.admin, "GET", "/api/overview", headers={"Authorization": "Bearer", "Sec-Fetch-Mode": mode})
            assert status == 401 and h["www-authenticate"].startswith("Bearer"), (status, h)
        for extra in ({}, {"Sec-Fetch-Mode": "navigate"}):
            status, h, _ = request(r.admin, "GET", "/api/overview", headers=extra)
            assert status == 401 and h["www-authenticate"].startswith("Basic"), (status, h)
        status, _, body = request(r.admin, "GET", "/api/overview", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and json.loads(body)["queues"][0]["name"] == "tasks"


def test_the_group_with_no_host_is_its_own():
    """host=- (HOST - over RESP) selects the dead letters whose payload names no host: the
    dashboard's "(no host)" group lists and replays those, not every letter of its code."""
    with admin("--http-queue", "fail", "retries", "0") as r:
        c = r.client()
        c.lpush("fail", json.dumps({"id": "refused", "url": f"http://127.0.0.1:{free_port()}/x"}))
        c.lpush("fail", "not json")
        wait_until(lambda: c.llen("fail:dead") == 2, timeout=20, what="two code-0 letters")
        d = json.loads(request(r.admin, "GET", "/api/queues/fail/dead?host=-&code=0")[2])
        assert d["matched"] == 1 and d["items"][0]["payload"] == "not json", d
        assert json.loads(request(r.admin, "GET", "/api/queues/fail/dead?code=0")[2])["matched"] == 2
        st, _, b = request(r.admin, "POST", "/api/queues/fail/dead/replay?host=-&code=0")
        assert st == 200 and json.loads(b)["replaying"] == 1, (st, b)
        assert c.execute_command("QUEUE", "REPLAY", "fail", "HOST", "-") == 1
        assert c.execute_command("QUEUE", "REPLAY", "fail", "HOST", "127.0.0.1") == 1


def test_overview_history_and_dead_letters_endpoints():
    with HttpEndpoint(server="python") as sink, \
            admin("--http-queue", "tasks", "--http-queue", "fail", "retries", "0") as r:
        c = r.client()
        for i in range(5):
            c.lpush("fail", json.dumps({"id": f"f{i}", "url": sink.url("/status/500")}))
        c.lpush("fail", json.dumps({"id": "g0", "url": sink.url("/status/404")}))
        wait_until(lambda: c.llen("fail:dead") == 6, timeout=20, what="6 dead letters")
        c.lpush("fail:dead", "not a record")
        status, _, body = request(r.admin, "GET", "/api/overview")
        doc = json.loads(body)
        assert status == 200 and {q["name"] for q in doc["queues"]} == {"tasks", "fail"}
        fail = next(q for q in doc["queues"] if q["name"] == "fail")
        assert fail["dead_list"] == 7 and fail["failed"] == 6, fail
        assert doc["clients"]["connected"] >= 1 and doc["used_memory"] > 0 and doc["aof"]["enabled"] is False
        d = json.loads(request(r.admin, "GET", "/api/queues/fail/dead?limit=2")[2])
        assert d["total"] == 7 and d["matched"] == 7 and len(d["items"]) == 2, d
        groups = {(g["host"], g["code"]): g for g in d["groups"]}
        assert groups[("127.0.0.1", 500)]["count"] == 5
        assert groups[("127.0.0.1", 500)]["reasons"] == [{"reason": "HTTP 500 is final", "count": 5}] or \
            groups[("127.0.0.1", 500)]["reasons"][0]["count"] == 5, groups
        assert groups[("127.0.0.1", 404)]["count"] == 1
        assert groups[("", 0)]["reasons"] == [{"reason": "not a dead-letter record", "count": 1}]
        assert d["groups"][0]["code"] == 500  # the largest group first
        # Newest first, filtered, paged.
        assert d["items"][0]["payload"] == "not a record"
        d = json.loads(request(r.admin, "GET", "/api/queues/fail/dead?code=500&offset=1&limit=3")[2])
        assert d["matched"] == 5 and [i["code"] for i in d["items"]] == [500] * 3, d
        assert all(json.loads(i["payload"])["url"].endswith("/status/500") for i in d["items"])
        assert {i["id"] for i in d["items"]} < {f"f{i}" for i in range(5)}
        d = json.loads(request(r.admin, "GET", "/api/queues/fail/dead?host=127.0.0.1&code=404")[2])
        assert [i["id"] for i in d["items"]] == ["g0"], d
        assert request(r.admin, "GET", "/api/queues/nope/dead")[0] == 404
        assert request(r.admin, "GET", "/api/queues/fail/dead?code=x")[0] == 400
        # The history has samples from the start (every 5 s), totals and per queue.
        h = json.loads(request(r.admin, "GET", "/api/history")[2])
        assert h["interval"] == 5 and len(h["t"]) >= 1 and len(h["pending"]) == len(h["t"]), h
        # (a loaded machine may have taken the samples so far before the last letters came)
        wait_until(lambda: (lambda h: len(h["t"]) >= 2 and h["dead"][-1] == 7)(
                       json.loads(request(r.admin, "GET", "/api/history?queue=fail")[2])),
                   timeout=15, what="a second sample, after the 7 letters")
        h = json.loads(request(r.admin, "GET", "/api/history?queue=fail")[2])
        assert h["queue"] == "fail" and h["dead"][-1] == 7, h
        # The SSE stream with figures=1 carries a figures event at once, then the outcomes
        # and a figures event a second; with outcomes=0 the figures alone.
        both, only = SSE(r.admin, "/api/events?figures=1"), SSE(r.admin, "/api/events?figures=1&outcomes=0")
        for stream in (both, only):
            name, doc = stream.next_event()
            assert name == "figures" and {q["name"] for q in doc["queues"]} == {"tasks", "fail"}, (name, doc)
        c.lpush("tasks", json.dumps({"id": "seen", "url": sink.url("/ok")}))
        names = []
        while "message" not in names:
            name, doc = both.next_event()
            names.append(name)
        assert doc["id"] == "seen" and doc["status"] == "delivered", doc
        t0 = time.time()
        got = [only.next_event() for _ in range(3)]
        assert [n for n, _ in got] == ["figures"] * 3, got  # no outcome in between
        assert 1.5 < time.time() - t0 < 6
        assert next(q for q in got[-1][1]["queues"] if q["name"] == "tasks")["delivered"] == 1
        # queue=<q>&max_rate=<n>: that queue's outcomes, n a second, the rest counted.
        filtered = SSE(r.admin, "/api/events?queue=tasks&max_rate=2")
        c.lpush("fail", json.dumps({"id": "not-shown", "url": sink.url("/status/500")}))
        c.lpush("tasks", *[json.dumps({"id": f"burst-{i}", "url": sink.url("/ok")}) for i in range(6)])
        shown, skipped = [], 0
        while len(shown) + skipped < 6:
            name, doc = filtered.next_event()
            if name == "skipped":
                skipped += doc["skipped"]
            else:
                assert name == "message" and doc["queue"] == "tasks", (name, doc)
                shown.append(doc["id"])
        assert 2 <= len(shown) <= 4 and len(shown) + skipped == 6, (shown, skipped)
        # With a client subscribed to tasks:results every outcome is built and published
        # (the stream takes its share from the publish): the subscriber gets all of them,
        # the stream's shown and counted still add up, and a second stream on the other
        # queue sees only that queue's.
        other = SSE(r.admin, "/api/events?queue=fail&max_rate=20")
        sub = c.pubsub(ignore_subscribe_messages=True)
        sub.subscribe("tasks:results")
        wait_until(lambda: c.pubsub_numsub("tasks:results")[0][1] == 1, timeout=10, what="the subscription")
        c.lpush("tasks", *[json.dumps({"id": f"sub-{i}", "url": sink.url("/ok")}) for i in range(6)])
        c.lpush("fail", json.dumps({"id": "other-0", "url": sink.url("/status/500")}))
        published, deadline = [], time.time() + 20
        while len(published) < 6 and time.time() < deadline:
            m = sub.get_message(timeout=1)
            if m:
                published.append(json.loads(m["data"])["id"])
        assert sorted(published) == [f"sub-{i}" for i in range(6)], published
        shown, skipped = [], 0
        while len(shown) + skipped < 6:
            name, doc = filtered.next_event()
            if name == "skipped":
                skipped += doc["skipped"]
            else:
                assert name == "message" and doc["queue"] == "tasks" and doc["id"].startswith("sub-"), (name, doc)
                shown.append(doc["id"])
        assert 2 <= len(shown) <= 6 and len(shown) + skipped == 6, (shown, skipped)
        name, doc = other.next_event()
        assert name == "message" and doc["id"] == "other-0" and doc["status"] == "dead", (name, doc)
        sub.close()
        other.close()
        filtered.close()
        # At most 8 figure-only streams; they don't take the outcome streams' places.
        more = [SSE(r.admin, "/api/events?figures=1&outcomes=0") for _ in range(7)]
        for s in more:
            assert s.next_event()[0] == "figures"
        assert SSE(r.admin, "/api/events?figures=1&outcomes=0").status == 503
        for s in (both, only, *more):
            s.close()


# ---- in the browser ------------------------------------------------------------------------

def test_browser_overview_updates_live():
    check_tools()
    with HttpEndpoint(server="python") as sink, \
            admin("--http-queue", "tasks", "concurrency", "16", "--http-queue", "fail", "retries", "0") as r:
        browser("overview", r, sink)
        browser("hosts", r, sink)


def test_browser_queue_page_and_dead_letters():
    check_tools()
    with HttpEndpoint(server="python") as sink, \
            admin("--http-queue", "tasks", "--http-queue", "fail", "retries", "0",
                  "--http-queue", "dlq", "retries", "0") as r:
        browser("queue", r, sink)
        browser("dead", r, sink)


def test_browser_pause_resume_replay_delete_find_and_cancel():
    check_tools()
    with HttpEndpoint(server="python") as sink, \
            admin("--http-queue", "tasks", "--http-queue", "dlq", "retries", "0") as r:
        browser("queue_pause", r, sink)
        browser("dead_actions", r, sink)
        browser("task", r, sink)
        # What the page did, seen from redis-cli's side too.
        c = r.client()
        assert c.exists("tasks:paused") == 0
        assert c.llen("dlq:dead") == 0


def test_browser_login_with_requirepass():
    check_tools()
    with admin("--requirepass", "dash-pw", "--http-queue", "tasks") as r:
        browser("login", r, password="dash-pw")


def test_browser_100_queues_and_10000_dead_letters_render_under_a_second():
    check_tools()
    queues = []
    for i in range(100):
        queues += ["--http-queue", f"q{i:03d}"]
    with admin(*queues) as r:
        c = r.client()
        now = time.time()
        p = c.pipeline(transaction=False)
        for i in range(10000):
            payload = json.dumps({"id": f"d{i}", "url": f"http://host-{i % 7}.example/hook/{i}", "param": {"n": i}})
            code = [500, 503, 404, 0][i % 4]
            p.lpush("q000:dead", json.dumps({
                "id": f"d{i}", "queue": "q000", "reason": f"HTTP {code} is final" if code else "attempts exhausted (3)",
                "attempts": 3, "code": code, "error": "" if code else "Timeout was reached", "failed_at": now - i,
                "payload": payload}))
        p.execute()
        assert c.llen("q000:dead") == 10000
        wait_until(lambda: json.loads(request(r.admin, "GET", "/api/overview")[2])["queues"][0]["dead_list"] == 10000,
                   timeout=10, what="the dead letters counted")
        # The bound is 1 s. A timing taken while the machine runs far more work than it has
        # cores (a shared build host) measures the queue for the CPU, not the page: then
        # the figure is printed and held to a looser bound.
        # Under AddressSanitizer the server's work is several times slower by design: the
        # figures are printed, and only the rendering itself is checked.
        from harness import SERVER
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        limit = 1000 if load < 1.5 else 4000
        if "libasan" in subprocess.run(["readelf", "-d", SERVER], capture_output=True, text=True).stdout:
            limit = 60000
            print("note: a sanitizer build: the render times are printed, not held to 1 s")
        elif limit != 1000:
            print(f"note: load average {load:.1f} per core: holding the render times to {limit} ms")
        browser("perf", r, queues=101, dead_queue="q000", dead_letters=10000, limit_ms=limit)


if __name__ == "__main__":
    run_tests(globals())
