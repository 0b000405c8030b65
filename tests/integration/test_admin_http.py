"""The admin HTTP server (admin-port): /metrics in Prometheus text format (checked by
promtool), the JSON API (queues, enqueue, Server-Sent Events of outcomes), with
requirepass (Bearer or Basic), the cross-origin refusal of state-changing requests, and
admin-readonly. Tasks are delivered to a loopback HTTP sink so the figures are real."""
import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HttpEndpoint, Outcomes, Respq, Skip, free_port, parse_info, run,  # noqa: E402
                     run_tests, wait_until)


def admin(*extra, **kw):
    """respq with its admin server on a free loopback port; .admin is that port."""
    port = free_port()
    r = Respq("--admin-port", str(port), *extra, **kw)
    r.admin = port
    return r


def request(port, method, path, body=None, headers=None, timeout=10):
    """(status, headers dict with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body if body is None or isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
        h = dict(headers or {})
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def bearer(pw):
    return {"Authorization": f"Bearer {pw}"}


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def parse_metrics(text):
    """{'name{labels}': float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (p.returncode, p.stdout, p.stderr)


class EventStream:
    """GET /api/events, read incrementally: comments and events as they arrive."""

    def __init__(self, port, headers=None, rcvbuf=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        if rcvbuf:
            self.conn.sock = socket.socket()
            self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.conn.sock.settimeout(10)
            self.conn.sock.connect(("127.0.0.1", port))
        self.conn.request("GET", "/api/events", headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def wait_open(self):
        """The first comment line: from here on the stream is subscribed."""
        line = self.resp.readline()
        assert line.startswith(b":"), line

    def next_event(self):
        """(event name or None, data) of the next event; None at the end of the stream."""
        name, data = None, []
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.rstrip(b"\r\n").decode()
            if line == "":
                if data:
                    return name, "\n".join(data)
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)

    def close(self):
        self.conn.close()


# ---- configuration ----------------------------------------------------------------------

def test_off_by_default_and_listed_in_config_and_help():
    with Respq() as r:
        c = r.client()
        assert c.config_get("admin-*") == {"admin-port": "0", "admin-bind": "127.0.0.1", "admin-readonly": "no"}
    out = run([r.argv()[0], "--help"]).stdout
    for d in ("admin-port", "admin-bind", "admin-readonly"):
        assert d in out, d
    bad = run([r.argv()[0], "--test-config", "--port", "7000", "--admin-port", "7000"], check=False)
    assert bad.returncode == 1 and "admin-port" in bad.stderr, bad


def test_admin_bind_and_port_are_reported_and_served():
    with admin("--admin-bind", "127.0.0.1", "::1") as r:
        assert r.client().config_get("admin-bind") == {"admin-bind": "127.0.0.1 ::1"}
        st, h, body = request(r.admin, "GET", "/metrics")
        assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4"), (st, h)
        conn = http.client.HTTPConnection("::1", r.admin, timeout=10)
        conn.request("GET", "/api/queues")
        assert conn.getresponse().status == 200
        conn.close()
        assert "Admin HTTP server on 127.0.0.1:%d, ::1:%d" % (r.admin, r.admin) in r.log_text()
        st, _, body = request(r.admin, "GET", "/nothing-here")
        assert st == 404 and json.loads(body)["error"] == "not found"


# ---- /metrics ---------------------------------------------------------------------------

def test_metrics_count_real_deliveries_and_pass_promtool():
    if shutil.which("promtool") is None:
        raise Skip("promtool (Debian package prometheus) is not installed")
    with HttpEndpoint(server="python") as ep, \
            admin("--http-queue", "tasks", "retries", "0", "--http-queue", "other", "retries", "1",
                  "backoff-min", "0.01", "backoff-max", "0.02") as r:
        c = r.client()
        with Outcomes(r, "tasks") as out, Outcomes(r, "other") as other_out:
            for i in range(20):
                c.lpush("tasks", json.dumps({"url": ep.url("/ok"), "id": f"ok-{i}"}))
            for i in range(3):
                c.lpush("tasks", json.dumps({"url": ep.url("/status/404"), "id": f"gone-{i}"}))
            c.lpush("tasks", json.dumps({"url": ep.url("/status/503"), "id": "busy"}))
            # Fails once (503), then delivered on its retry.
            c.lpush("other", json.dumps({"url": ep.url("/flaky", fail_first=1, key="flaky"), "id": "flaky"}))
            for i in range(20):
                out.wait(id=f"ok-{i}", status="delivered")
            for i in range(3):
                out.wait(id=f"gone-{i}", status="dead")
            out.wait(id="busy", status="dead")
            other_out.wait(id="flaky", status="retrying")
            other_out.wait(id="flaky", status="delivered")
        st, h, body = request(r.admin, "GET", "/metrics")
        assert st == 200, (st, body)
        text = body.decode()
        promtool_check(text)
        m = parse_metrics(text)
        q = 'queue="tasks"'
        assert m[f'respq_tasks_enqueued_total{{{q}}}'] == 24
        assert m[f'respq_tasks_dispatched_total{{{q}}}'] == 24
        assert m[f'respq_task_outcomes_total{{{q},outcome="delivered"}}'] == 20
        assert m[f'respq_task_outcomes_total{{{q},outcome="dead"}}'] == 4
        assert m[f'respq_task_outcomes_total{{{q},outcome="retried"}}'] == 0
        assert m[f'respq_http_responses_total{{{q},code_class="2xx"}}'] == 20
        assert m[f'respq_http_responses_total{{{q},code_class="4xx"}}'] == 3
        assert m[f'respq_http_responses_total{{{q},code_class="5xx"}}'] == 1
        assert m[f'respq_http_responses_total{{{q},code_class="error"}}'] == 0
        assert m[f'respq_queue_tasks{{{q},state="pending"}}'] == 0
        assert m[f'respq_queue_tasks{{{q},state="in_flight"}}'] == 0
        assert m[f'respq_queue_tasks{{{q},state="dead"}}'] == 4 == c.llen("tasks:dead")
        assert m[f'respq_queue_paused{{{q}}}'] == 0
        # Histograms: one observation per dispatch / per attempt, cumulative up to +Inf.
        assert m[f'respq_dispatch_delay_seconds_count{{{q}}}'] == 24
        assert m[f'respq_dispatch_delay_seconds_bucket{{{q},le="+Inf"}}'] == 24
        assert m[f'respq_http_request_duration_seconds_count{{{q}}}'] == 24
        assert 0 < m[f'respq_http_request_duration_seconds_sum{{{q}}}'] < 24 * 10
        assert m[f'respq_dispatch_delay_seconds_bucket{{{q},le="10"}}'] == 24
        o = 'queue="other"'
        assert m[f'respq_task_outcomes_total{{{o},outcome="retried"}}'] == 1
        assert m[f'respq_task_outcomes_total{{{o},outcome="delivered"}}'] == 1
        assert m[f'respq_http_responses_total{{{o},code_class="5xx"}}'] == 1
        assert m[f'respq_http_responses_total{{{o},code_class="2xx"}}'] == 1
        assert m[f'respq_http_request_duration_seconds_count{{{o}}}'] == 2
        # The same figures as INFO tasks shows, read from the same structs.
        info = c.info("tasks")["tasks"]
        assert int(info["delivered"]) == 20 and int(info["dead"]) == 4, info
        # Server-wide figures.
        assert m['respq_build_info{version="%s"}' % c.info("server")["respq_version"]] == 1
        assert m["respq_connected_clients"] >= 1
        assert m["respq_blocked_clients"] == 0
        assert m["respq_used_memory_bytes"] > 0
        assert m['respq_commands_total{command="lpush"}'] == c.info("commandstats")["cmdstat_lpush"]["calls"] == 25
        assert m["respq_aof_enabled"] == 0
        assert m["respq_link_configured"] == 0 and m["respq_mirror_enabled"] == 0
        # A blocked client shows.
        b = r.client()
        b_conn = b.connection_pool.get_connection("BLPOP")
        b_conn.send_command("BLPOP", "nothing", "0")
        wait_until(lambda: parse_metrics(request(r.admin, "GET", "/metrics")[2].decode())["respq_blocked_clients"] == 1,
                   what="respq_blocked_clients 1")


def test_metrics_with_aof_on_show_its_size():
    with admin("--appendonly", "yes") as r:
        c = r.client()
        c.set("k", "v" * 1000)
        m = parse_metrics(request(r.admin, "GET", "/metrics")[2].decode())
        assert m["respq_aof_enabled"] == 1
        assert m["respq_aof_last_write_ok"] == 1
        assert m["respq_aof_size_bytes"] == int(c.info("persistence")["aof_current_size"]) > 1000


# ---- authentication, origin, read-only -------------------------------------------------

ENDPOINTS = [("GET", "/metrics", None), ("GET", "/api/queues", None),
             ("POST", "/api/queues/tasks/tasks", {"url": "http://127.0.0.1:9/x", "delay": 3600})]


def test_requirepass_needs_bearer_or_basic_on_every_endpoint():
    with admin("--requirepass", "s3cret") as r:
        c = r.client(password="s3cret")
        for method, path, body in ENDPOINTS:
            for headers in ({}, bearer("wrong"), basic("u", "wrong"), {"Authorization": "Bearer"},
                            {"Authorization": "Basic !!!"}, {"Authorization": "s3cret"}):
                st, h, b = request(r.admin, method, path, body, headers)
                assert st == 401, (method, path, headers, st, b)
                assert "basic" in h.get("www-authenticate", "").lower()
            for headers in (bearer("s3cret"), basic("anyone", "s3cret"), basic("", "s3cret"),
                            {"Authorization": "bearer s3cret"}):
                st, _, b = request(r.admin, method, path, body, headers)
                assert st == (201 if method == "POST" else 200), (method, path, headers, st, b)
        # Only the four authorised POSTs were enqueued (each task is scheduled an hour ahead).
        wait_until(lambda: c.hlen("tasks:inflight") == 4, what="four scheduled tasks")
        s = EventStream(r.admin)
        assert s.status == 401
        s.close()
        s = EventStream(r.admin, headers=bearer("s3cret"))
        assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
        s.close()
        # CONFIG SET requirepass reaches the admin server.
        c.config_set("requirepass", "other")
        assert request(r.admin, "GET", "/metrics", headers=bearer("s3cret"))[0] == 401
        assert request(r.admin, "GET", "/metrics", headers=bearer("other"))[0] == 200


def test_without_requirepass_no_credentials_are_needed():
    with admin() as r:
        for method, path, body in ENDPOINTS:
            st, _, b = request(r.admin, method, path, body)
            assert st == (201 if method == "POST" else 200), (method, path, st, b)
        s = EventStream(r.admin)
        assert s.status == 200
        s.close()


def test_cross_origin_state_changes_are_refused():
    with admin() as r:
        c = r.client()
        task = {"url": "http://127.0.0.1:9/x", "delay": 3600}
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Origin": f"http://127.0.0.1:{r.admin + 1}"},
                        {"Sec-Fetch-Site": "cross-site"}):
            st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", task, headers)
            assert st == 403, (headers, st, b)
            assert "refused" in json.loads(b)["error"]
        assert c.hlen("tasks:inflight") == 0 and c.llen("tasks") == 0
        assert "cmdstat_lpush" not in c.info("commandstats")
        # Reads are not state changes: a foreign Origin may read (CORS keeps the answer
        # from the page; no Access-Control-Allow-Origin is sent).
        st, h, _ = request(r.admin, "GET", "/api/queues", headers={"Origin": "http://evil.example"})
        assert st == 200 and "access-control-allow-origin" not in h
        # The server's own origin, and same-origin fetches, are served.
        for headers in ({"Origin": f"http://127.0.0.1:{r.admin}"}, {"Sec-Fetch-Site": "same-origin"}, {}):
            st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", task, headers)
            assert st == 201, (headers, st, b)
        wait_until(lambda: c.hlen("tasks:inflight") == 3, what="three scheduled tasks")


def test_without_requirepass_only_address_hosts_are_served():
    """DNS rebinding: a page on another name that comes to resolve to the admin port sends
    its own name as Host and as Origin. Without requirepass such requests are refused, reads
    included (a dead letter's payload is data); IP literals and localhost are served."""
    with admin() as r:
        c = r.client()
        task = {"url": "http://127.0.0.1:9/x", "delay": 3600}
        evil = f"evil.example:{r.admin}"
        st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", task,
                           {"Host": evil, "Origin": f"http://{evil}"})
        assert st == 403 and "DNS rebinding" in json.loads(b)["error"], (st, b)
        assert request(r.admin, "GET", "/api/queues/tasks/dead", headers={"Host": evil})[0] == 403
        assert request(r.admin, "GET", "/metrics", headers={"Host": "evil.example"})[0] == 403
        assert c.hlen("tasks:inflight") == 0
        for host in (f"127.0.0.1:{r.admin}", f"localhost:{r.admin}", "LOCALHOST", "localhost.",
                     f"[::1]:{r.admin}", "10.1.2.3"):
            st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", task,
                               {"Host": host, "Origin": f"http://{host}"})
            assert st == 201, (host, st, b)
        for host in ("localhost.evil.example", "127.0.0.1.evil.example", "[::1", "[evil]:80", "evil.localhost"):
            assert request(r.admin, "GET", "/api/queues", headers={"Host": host})[0] == 403, host
        # The page itself holds no data: it loads, and its /api requests are what is refused.
        assert request(r.admin, "GET", "/", headers={"Host": evil})[0] == 200
    # With requirepass the password is what protects: any name is served.
    with admin("--requirepass", "pw") as r:
        st, _, b = request(r.admin, "GET", "/api/queues",
                           headers={"Host": f"respq.internal:{r.admin}", **bearer("pw")})
        assert st == 200, (st, b)


def test_a_method_a_path_is_not_served_with_gets_405_and_allow():
    with admin() as r:
        for method, path, allow in (("GET", "/api/queues/tasks/pause", "POST"),
                                    ("PUT", "/api/queues/tasks/resume", "POST"),
                                    ("POST", "/metrics", "GET, HEAD"),
                                    ("OPTIONS", "/api/tasks/t1", "GET, HEAD, DELETE"),
                                    ("GET", "/api/queues/tasks/dead/replay", "POST, DELETE"),
                                    ("POST", "/api/queues/tasks/dead/x1", "DELETE")):
            st, h, b = request(r.admin, method, path)
            assert st == 405 and h.get("allow") == allow, (method, path, st, h, b)
            assert method in json.loads(b)["error"], b
        assert request(r.admin, "GET", "/api/nothing")[0] == 404
        assert request(r.admin, "GET", "/api/queues/tasks/nothing/more")[0] == 404


def test_the_admin_client_idle_time_counts_from_its_last_command():
    with admin() as r:
        c = r.client()
        assert request(r.admin, "POST", "/api/queues/tasks/pause")[0] == 200
        time.sleep(2.2)
        assert request(r.admin, "POST", "/api/queues/tasks/resume")[0] == 200
        me = next(x for x in c.client_list() if x["name"] == "respq-admin")
        assert int(me["age"]) >= 2 and int(me["idle"]) <= 1, me


def test_readonly_serves_only_reads():
    with admin("--admin-readonly", "yes") as r:
        c = r.client()
        assert request(r.admin, "GET", "/metrics")[0] == 200
        assert request(r.admin, "GET", "/api/queues")[0] == 200
        st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", {"url": "http://127.0.0.1:9/x"})
        assert st == 403 and "readonly" in json.loads(b)["error"], (st, b)
        assert request(r.admin, "DELETE", "/api/queues/tasks/tasks")[0] == 403
        assert c.llen("tasks") == 0 and c.hlen("tasks:inflight") == 0
        assert c.config_get("admin-readonly") == {"admin-readonly": "yes"}
        c.config_set("admin-readonly", "no")
        st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", {"url": "http://127.0.0.1:9/x", "delay": 60})
        assert st == 201, (st, b)


# ---- JSON API -----------------------------------------------------------------------------

def test_posted_tasks_are_delivered_and_seen_by_aof_and_commandstats():
    with HttpEndpoint(server="python") as ep, admin("--appendonly", "yes", "--appendfsync", "always") as r:
        c = r.client()
        tasks = [{"url": ep.url("/hook", n=1), "id": "first"},
                 {"url": ep.url("/hook", n=2), "method": "POST", "param": {"a": "b c"}},
                 ep.url("/hook", n=3)]
        st, h, b = request(r.admin, "POST", "/api/queues/tasks/tasks", tasks)
        assert st == 201 and h["content-type"] == "application/json", (st, b)
        doc = json.loads(b)
        assert doc["queue"] == "tasks" and len(doc["ids"]) == 3 and doc["ids"][0] == "first"
        assert len(set(doc["ids"])) == 3 and all(doc["ids"])
        reqs = ep.wait_requests(3, path="/hook")
        # Delivered with the ids the API answered.
        assert sorted(q["h"]["x-task-id"] for q in reqs) == sorted(doc["ids"])
        assert next(q for q in reqs if q["method"] == "POST")["body"] == "a=b+c"
        # One LPUSH through the normal command path: INFO commandstats and the AOF see it.
        assert c.info("commandstats")["cmdstat_lpush"]["calls"] == 1
        with open(os.path.join(r.dir, "appendonly.aof"), "rb") as f:
            aof = f.read()
        assert b"LPUSH" in aof and b'"id":"first"' in aof and doc["ids"][2].encode() in aof
        # The array's first task was dispatched first: the order the dispatcher recorded the
        # attempts in (HSET tasks:inflight <id>) — the three requests themselves run at once,
        # so their arrival order at the endpoint is not the dispatch order.
        dispatched = re.findall(rb"\*4\r\n\$4\r\nHSET\r\n\$14\r\ntasks:inflight\r\n\$\d+\r\n([^\r]+)\r\n", aof)
        assert [i.decode() for i in dict.fromkeys(dispatched)] == doc["ids"], dispatched
        # A single object works too.
        st, _, b = request(r.admin, "POST", "/api/queues/tasks/tasks", {"url": ep.url("/one")})
        assert st == 201 and len(json.loads(b)["ids"]) == 1
        ep.wait_requests(1, path="/one")


def test_bad_json_or_an_invalid_task_gives_400_and_enqueues_nothing():
    with admin() as r:
        c = r.client()
        cases = [("{not json", "not valid JSON"),
                 ("", "not valid JSON"),
                 ("[]", "empty"),
                 ('[{"url":"http://127.0.0.1:9/a"},{"url":"ftp://127.0.0.1/b"}]', "task 1"),
                 ('{"url":"http://127.0.0.1:9/a","method":"BREW"}', "method"),
                 ('{"param":{"a":1}}', "url")]
        for body, part in cases:
            st, h, b = request(r.admin, "POST", "/api/queues/tasks/tasks", body.encode())
            assert st == 400 and h["content-type"] == "application/json", (body, st, b)
            assert part.lower() in json.loads(b)["error"].lower(), (body, b)
        assert c.llen("tasks") == 0 and c.hlen("tasks:inflight") == 0 and c.llen("tasks:dead") == 0
        assert "cmdstat_lpush" not in c.info("commandstats")
        # A list that is not an HTTP queue is not an endpoint.
        st, _, b = request(r.admin, "POST", "/api/queues/plain/tasks", {"url": "http://127.0.0.1:9/a"})
        assert st == 404 and "plain" in json.loads(b)["error"], (st, b)
        assert c.exists("plain") == 0


def test_queues_lists_figures_and_options():
    with HttpEndpoint(server="python") as ep, \
            admin("--http-queue", "mail", "concurrency", "7", "rate", "50", "retries", "2") as r:
        c = r.client()
        with Outcomes(r, "mail") as out:
            c.lpush("mail", json.dumps({"url": ep.url("/m"), "id": "m1"}))
            out.wait(id="m1", status="delivered")
        st, _, b = request(r.admin, "GET", "/api/queues")
        assert st == 200
        queues = {q["name"]: q for q in json.loads(b)["queues"]}
        assert set(queues) == {"mail", "tasks"}
        m = queues["mail"]
        assert m["options"]["concurrency"] == 7 and m["options"]["rate"] == 50 and m["options"]["retries"] == 2
        assert m["delivered"] == 1 and m["enqueued"] == 1 and m["dispatched"] == 1 and m["pending"] == 0
        assert m["responses"]["2xx"] == 1 and m["shared"] is False and m["paused"] is False
        assert queues["tasks"]["delivered"] == 0
        # What makes its requests safe is shown too, its secrets redacted as CONFIG GET does.
        assert m["options"]["egress"] == "default" and m["options"]["signing_secrets"] == []
        secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
        c.config_set("http-queue", f"mail egress public signing-secret {secret}")
        o = {q["name"]: q for q in json.loads(request(r.admin, "GET", "/api/queues")[2])["queues"]}["mail"]["options"]
        assert o["egress"] == "public" and len(o["signing_secrets"]) == 1, o
        shown = c.config_get("http-queue")["http-queue"]
        assert o["signing_secrets"][0] in shown and secret not in json.dumps(o), (o, shown)
        assert o["ca_file"] == "" and o["client_cert"] == ""


def test_events_stream_outcomes():
    with HttpEndpoint(server="python") as ep, admin("--http-queue", "tasks", "retries", "0") as r:
        c = r.client()
        s = EventStream(r.admin)
        assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
        assert s.headers.get("cache-control") == "no-cache"
        s.wait_open()
        c.publish("unrelated", "x")  # not an outcome channel: never relayed
        c.lpush("tasks", json.dumps({"url": ep.url("/a"), "id": "ev-1"}))
        c.lpush("tasks", json.dumps({"url": ep.url("/status/410"), "id": "ev-2"}))
        c.publish("tasks:results", "not from respq")  # any message on the channel is relayed
        got = {}
        raw = []
        deadline = time.time() + 10
        while (len(got) < 2 or "not from respq" not in raw) and time.time() < deadline:
            ev = s.next_event()
            assert ev is not None and ev[0] is None, ev
            raw.append(ev[1])
            try:
                o = json.loads(ev[1])
            except ValueError:
                continue
            got[o["id"]] = o
        assert got["ev-1"]["status"] == "delivered" and got["ev-1"]["code"] == 200 and got["ev-1"]["queue"] == "tasks"
        assert got["ev-2"]["status"] == "dead" and got["ev-2"]["code"] == 410
        assert "not from respq" in raw and "x" not in raw and len(raw) == 3, raw
        s.close()


def test_a_slow_event_reader_is_dropped_and_never_holds_the_broker():
    with admin("--http-queue", "tasks", "retries", "0") as r:
        c = r.client()
        s = EventStream(r.admin, rcvbuf=4096)
        s.wait_open()
        # Tasks that do not decode go dead at once, each with its outcome published:
        # outcomes far faster than this reader (which reads nothing) takes them.
        bad = json.dumps({"url": "ftp://127.0.0.1/x", "pad": "p" * 200})
        pushed = 0
        t0 = time.time()
        while pushed < 60000:
            p = c.pipeline(transaction=False)
            for _ in range(10):
                p.lpush("tasks", *([bad] * 500))
            p.execute()
            pushed += 5000
            wait_until(lambda: c.llen("tasks:dead") == pushed, timeout=60, what=f"{pushed} dead letters")
        # The broker went on at its own pace: a PING is answered at once (held by the
        # reader it would never be; 5 s leaves room for a loaded sanitizer build).
        t1 = time.time()
        assert c.ping() and time.time() - t1 < 5.0, time.time() - t1
        # Now read: what was buffered, then the stream's end with a "dropped" event.
        last = None
        deadline = time.time() + 60
        while time.time() < deadline:
            ev = s.next_event()
            if ev is None:
                break
            last = ev
        assert last is not None and last[0] == "dropped", last
        assert "fell behind" in json.loads(last[1])["error"]
        s.close()
        # A new stream works.
        s2 = EventStream(r.admin)
        s2.wait_open()
        c.lpush("tasks", json.dumps({"url": "ftp://127.0.0.1/y", "id": "after"}))
        ev = s2.next_event()
        assert json.loads(ev[1])["id"] == "after"
        s2.close()
        assert time.time() - t0 < 120


if __name__ == "__main__":
    run_tests(globals())
