"""The admin HTTP server's control endpoints, each the HTTP face of a RESP command:

    GET    /api/tasks/<id>                    TASK GET (state, payload, every attempt known)
    DELETE /api/tasks/<id>                    TASK CANCEL (404 unknown, 409 not in custody)
    POST   /api/queues/<queue>/pause|resume   QUEUE PAUSE|RESUME (survives a restart, AOF on)
    POST   /api/queues/<queue>/dead/replay    QUEUE REPLAY (?id=, ?host=, ?code=) at replay-rate
    DELETE /api/queues/<queue>/dead/<id>      QUEUE DELDEAD

with requirepass on and off, admin-readonly, the cross-origin refusal, and unknown queues
and ids. Tasks go to a loopback HTTP sink (http_sink.py: `hold=NAME` keeps an attempt in
flight until released, `fail_first=N` fails the first N attempts with 503)."""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, dead_records, free_port, run_tests, task_info,  # noqa: E402
                     wait_until)
from test_admin_http import admin, basic, bearer, request  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: the admin server is respq's own (target: {TARGET})")
    sys.exit(0)


def task(ep, task_id, path="/ok", **query):
    return json.dumps({"url": ep.url(path, **query), "id": task_id})


def release(ep, name):
    urllib.request.urlopen(ep.url(f"/_release/{name}"), timeout=10).read()


def get_json(port, method, path, headers=None, body=None):
    st, _, b = request(port, method, path, body, headers)
    return st, json.loads(b)


def resp_task(c, task_id):
    """TASK GET over RESP2, as a dict with str keys."""
    reply = c.execute_command("TASK", "GET", task_id)
    if reply is None:
        return None
    d = dict(zip(reply[0::2], reply[1::2]))
    return {k.decode(): v for k, v in d.items()}


def barrier(c, ep, queue, name):
    """Pushes a task on another queue and waits until it reached the endpoint: whatever
    respq would have dispatched before it has been dispatched by then."""
    c.lpush(queue, task(ep, name, "/barrier"))
    ep.wait_requests(1, where=lambda r: r["h"].get("x-task-id") == name)


def requests_for(ep, task_id):
    return ep.requests(where=lambda r: r["h"].get("x-task-id") == task_id)


# ---- GET /api/tasks/<id> -------------------------------------------------------------------

def test_get_task_shows_state_payload_and_every_attempt():
    with HttpEndpoint(server="python") as ep, \
            admin("--http-queue", "tasks", "retries", "3", "backoff-min", "0.3", "backoff-max", "0.3",
                  "--http-queue", "held", "retries", "1") as r, Outcomes(r, "tasks") as out:
        c = r.client()
        flaky = task(ep, "flaky", "/f", fail_first=2, key="flaky")
        c.lpush("tasks", flaky)
        out.wait(id="flaky", status="retrying")
        st, g = get_json(r.admin, "GET", "/api/tasks/flaky")
        assert st == 200 and g["queue"] == "tasks" and g["payload"] == flaky, g
        # Retrying, or already in its second attempt: both are custody.
        assert g["state"] in ("retrying", "in_flight"), g
        first = g["attempts"][0]
        assert first["attempt"] == 1 and first["code"] == 503 and first["error"] == "", g
        assert 0 < first["duration_ms"] < 10000 and abs(first["started_at"] - time.time()) < 60, g
        assert first["next_run"] > first["started_at"], g
        out.wait(id="flaky", status="delivered")
        st, g = get_json(r.admin, "GET", "/api/tasks/flaky")
        assert st == 200 and g["state"] == "delivered" and g["attempts_made"] == 3, g
        assert [a["code"] for a in g["attempts"]] == [503, 503, 200], g
        assert [a["attempt"] for a in g["attempts"]] == [1, 2, 3], g
        assert g["attempts"][2]["next_run"] is None and g["attempts"][0]["next_run"] is not None, g
        starts = [a["started_at"] for a in g["attempts"]]
        assert starts == sorted(starts) and starts[1] - starts[0] >= 0.25, g  # the backoff
        assert g["last_code"] == 200 and g["finished_at"] >= starts[2], g
        # TASK GET over RESP answers the same, from the same lookup.
        t = resp_task(c, "flaky")
        assert t["state"] == b"delivered" and t["payload"].decode() == flaky
        assert [dict(zip(h[0::2], h[1::2]))[b"code"] for h in t["history"]] == [503, 503, 200], t

        # In flight: its attempt has no answer yet.
        held = task(ep, "held1", hold="h1")
        c.lpush("tasks", held)
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "held1")
        st, g = get_json(r.admin, "GET", "/api/tasks/held1")
        assert g["state"] == "in_flight" and len(g["attempts"]) == 1, g
        assert g["attempts"][0]["code"] is None and g["attempts"][0]["duration_ms"] is None, g
        release(ep, "h1")
        out.wait(id="held1", status="delivered")

        # Pending (paused queue), scheduled, dead.
        get_json(r.admin, "POST", "/api/queues/held/pause")
        pend = task(ep, "pend")
        c.lpush("held", pend)
        st, g = get_json(r.admin, "GET", "/api/tasks/pend")
        assert st == 200 and g["queue"] == "held" and g["state"] == "pending", g
        assert g["attempts"] == [] and g["max_attempts"] == 2 and g["payload"] == pend, g
        c.lpush("tasks", json.dumps({"url": ep.url("/later"), "id": "sched", "delay": 3600}))
        wait_until(lambda: get_json(r.admin, "GET", "/api/tasks/sched")[1].get("state") == "scheduled",
                   what="the scheduled task")
        g = get_json(r.admin, "GET", "/api/tasks/sched")[1]
        assert abs(g["next_run"] - (time.time() + 3600)) < 60 and g["attempts"] == [], g
        c.lpush("tasks", task(ep, "gone", "/status/404"))
        out.wait(id="gone", status="dead")
        st, g = get_json(r.admin, "GET", "/api/tasks/gone")
        assert g["state"] == "dead" and g["last_code"] == 404 and g["finished_at"] > 0, g
        assert [a["code"] for a in g["attempts"]] == [404], g

        st, g = get_json(r.admin, "GET", "/api/tasks/nothing")
        assert st == 404 and "nothing" in g["error"], g


# ---- DELETE /api/tasks/<id> ----------------------------------------------------------------

def test_delete_task_cancels_in_custody_404_when_unknown_409_when_finished():
    with HttpEndpoint(server="python") as ep, \
            admin("--http-queue", "tasks", "retries", "0", "--http-queue", "held") as r, \
            Outcomes(r, "tasks") as out, Outcomes(r, "held") as held_out:
        c = r.client()
        assert get_json(r.admin, "POST", "/api/queues/held/pause")[0] == 200
        c.lpush("held", task(ep, "pend"))
        c.lpush("tasks", task(ep, "fly", hold="c1"))
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "fly")
        st, g = get_json(r.admin, "DELETE", "/api/tasks/pend")
        assert st == 200 and g == {"id": "pend", "cancelled": True, "queue": "held", "state": "pending"}, g
        assert c.llen("held") == 0
        held_out.wait(id="pend", status="cancelled")
        st, g = get_json(r.admin, "DELETE", "/api/tasks/fly")
        assert st == 200 and g["state"] == "in_flight", g
        out.wait(id="fly", status="cancelled")
        # Cancelled: known, but no longer in custody.
        st, g = get_json(r.admin, "DELETE", "/api/tasks/pend")
        assert st == 409 and "cancelled" in g["error"], g
        assert get_json(r.admin, "GET", "/api/tasks/pend")[1]["state"] == "cancelled"
        # Delivered: 409 too.
        c.lpush("tasks", task(ep, "done"))
        out.wait(id="done", status="delivered")
        st, g = get_json(r.admin, "DELETE", "/api/tasks/done")
        assert st == 409 and "delivered" in g["error"], g
        st, g = get_json(r.admin, "DELETE", "/api/tasks/nothing")
        assert st == 404 and "nothing" in g["error"], g
        # The cancelled in-flight attempt is not retried and the queue resumes cleanly.
        release(ep, "c1")
        assert get_json(r.admin, "POST", "/api/queues/held/resume")[0] == 200
        barrier(c, ep, "held", "b1")
        assert len(requests_for(ep, "fly")) == 1 and not requests_for(ep, "pend")
        # The attempt it was cancelled in shows how it ended, not "running" for ever.
        wait_until(lambda: get_json(r.admin, "GET", "/api/tasks/fly")[1]["attempts"][0]["code"] is not None,
                   what="fly's attempt ended in its log")
        g = get_json(r.admin, "GET", "/api/tasks/fly")[1]
        assert g["state"] == "cancelled" and len(g["attempts"]) == 1, g
        assert g["attempts"][0]["code"] == 200 and g["attempts"][0]["duration_ms"] > 0, g
        assert task_info(r.port)["cancelled"] == "1" and task_info(r.port, "held")["cancelled"] == "1"
        assert c.info("commandstats")["cmdstat_task|cancel"]["calls"] == 5


# ---- pause / resume --------------------------------------------------------------------

def test_pause_and_resume_endpoints_survive_a_restart_with_the_aof_on():
    with HttpEndpoint(server="python") as ep, \
            admin("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "other") as r:
        c = r.client()
        st, g = get_json(r.admin, "POST", "/api/queues/tasks/pause")
        assert st == 200 and g == {"queue": "tasks", "paused": True}, g
        assert c.exists("tasks:paused") == 1 and task_info(r.port)["paused"] == "1"
        c.lpush("tasks", task(ep, "t1"))
        barrier(c, ep, "other", "b1")
        assert not requests_for(ep, "t1")
        # Pausing twice is fine (idempotent).
        assert get_json(r.admin, "POST", "/api/queues/tasks/pause")[0] == 200
        r.stop()
        r.start()
        c = r.client()
        queues = {q["name"]: q for q in get_json(r.admin, "GET", "/api/queues")[1]["queues"]}
        assert queues["tasks"]["paused"] is True and queues["other"]["paused"] is False, queues
        barrier(c, ep, "other", "b2")
        assert not requests_for(ep, "t1") and c.llen("tasks") == 1
        st, g = get_json(r.admin, "POST", "/api/queues/tasks/resume")
        assert st == 200 and g == {"queue": "tasks", "paused": False}, g
        ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "t1")
        wait_until(lambda: c.hlen("tasks:inflight") == 0, what="t1 delivered")
        r.stop()
        r.start()
        assert task_info(r.port)["paused"] == "0"
        for path in ("/api/queues/nope/pause", "/api/queues/nope/resume"):
            st, g = get_json(r.admin, "POST", path)
            assert st == 404 and g["error"].startswith("no such HTTP queue 'nope'"), (path, st, g)
        assert r.client().exists("nope:paused") == 0


# ---- dead letters ------------------------------------------------------------------------

def make_dead(c, ep, n404, n500):
    for i in range(n404):
        c.lpush("tasks", task(ep, f"d404-{i}", "/status/404"))
    for i in range(n500):
        c.lpush("tasks", task(ep, f"d500-{i}", "/status/500"))
    wait_until(lambda: c.llen("tasks:dead") == n404 + n500, timeout=30, what="the dead letters")


def test_a_post_with_no_body_and_no_content_length_is_served_at_once():
    """`curl -X POST .../pause` (the README's own example) sends neither Content-Length nor
    Transfer-Encoding: such a request has no body and is answered at once, not after a
    read timeout with 400."""
    import socket
    with admin() as r:
        c = r.client()
        for path, key in (("/api/queues/tasks/pause", "paused"), ("/api/queues/tasks/resume", "paused")):
            with socket.create_connection(("127.0.0.1", r.admin), timeout=10) as s:
                start = time.time()
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{r.admin}\r\nAccept: */*\r\n\r\n".encode())
                data = b""
                while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                took = time.time() - start
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), data
            assert key in json.loads(body), body
            assert took < 2, f"{path} answered after {took:.1f} s"
            assert c.exists("tasks:paused") == (path.endswith("pause"))


def test_names_with_a_slash_are_reached_encoded():
    """A queue named q/slash and task ids with '/' in them: /api/queues/q%2Fslash/...,
    /api/tasks/order%2F17 and /api/queues/q%2Fslash/dead/<id> name them whole (the path
    was decoded before routing, so the '/' split the name and every such request was 404)."""
    with admin("--http-queue", "q/slash", "retries", "0") as r:
        c = r.client()
        st, g = get_json(r.admin, "POST", "/api/queues/q%2Fslash/pause")
        assert st == 200 and g == {"queue": "q/slash", "paused": True}, g
        assert c.exists("q/slash:paused")
        c.lpush("q/slash", json.dumps({"url": "http://127.0.0.1:9/x", "id": "order/17"}))
        st, g = get_json(r.admin, "GET", "/api/tasks/order%2F17")
        assert st == 200 and g["id"] == "order/17" and g["queue"] == "q/slash" and g["state"] == "pending", g
        st, g = get_json(r.admin, "GET", "/api/tasks/order%252F17")  # %25 is '%': another id
        assert st == 404 and "order%2F17" in g["error"], g
        st, g = get_json(r.admin, "DELETE", "/api/tasks/order%2F17")
        assert st == 200 and g["id"] == "order/17" and g["cancelled"], g
        assert get_json(r.admin, "POST", "/api/queues/q%2Fslash/resume")[1]["paused"] is False
        c.lpush("q/slash", json.dumps({"url": f"http://127.0.0.1:{free_port()}/x", "id": "dead/1"}))
        wait_until(lambda: c.llen("q/slash:dead") == 1, what="dead/1 dead")
        st, g = get_json(r.admin, "GET", "/api/queues/q%2Fslash/dead")
        assert st == 200 and g["total"] == 1 and g["items"][0]["id"] == "dead/1", g
        st, g = get_json(r.admin, "DELETE", "/api/queues/q%2Fslash/dead/dead%2F1")
        assert st == 200 and g == {"queue": "q/slash", "id": "dead/1", "deleted": True}, g
        assert c.llen("q/slash:dead") == 0


def test_replay_endpoint_by_id_code_host_and_all_at_the_replay_rate():
    with HttpEndpoint(server="python") as ep, \
            admin("--http-queue", "tasks", "retries", "0", "--replay-rate", "20") as r:
        c = r.client()
        make_dead(c, ep, 24, 4)
        before = {d["id"]: d for d in dead_records(c)}
        assert get_json(r.admin, "POST", "/api/queues/tasks/pause")[0] == 200
        st, g = get_json(r.admin, "POST", "/api/queues/tasks/dead/replay?id=d404-3")
        assert st == 200 and g == {"queue": "tasks", "replaying": 1}, g
        wait_until(lambda: c.llen("tasks") == 1, what="the replay by id")
        assert json.loads(c.lindex("tasks", 0)) == before["d404-3"]
        assert get_json(r.admin, "POST", "/api/queues/tasks/dead/replay?id=nope")[1]["replaying"] == 0
        assert get_json(r.admin, "POST", "/api/queues/tasks/dead/replay?host=elsewhere.example")[1]["replaying"] == 0
        st, g = get_json(r.admin, "POST", "/api/queues/tasks/dead/replay?code=500&host=127.0.0.1")
        assert st == 200 and g["replaying"] == 4, g
        wait_until(lambda: c.llen("tasks") == 5, what="the replay by code")
        # Bad filters: 400 with the command's message, nothing selected.
        for q, words in (("code=abc", "CODE"), ("code=1000", "CODE"), ("host=", "HOST"), ("id=", "ID"),
                         ("colour=red", "unknown parameter"), ("code=404&code=500", "twice")):
            st, g = get_json(r.admin, "POST", f"/api/queues/tasks/dead/replay?{q}")
            assert st == 400 and words in g["error"] and not g["error"].startswith("ERR"), (q, st, g)
        assert c.llen("tasks:dead") == 23 and task_info(r.port)["replaying"] == "0"
        # All the rest at 20 per second: 23 take about (23 - 2 of burst) / 20 = 1.05 s.
        t0 = time.time()
        st, g = get_json(r.admin, "POST", "/api/queues/tasks/dead/replay")
        assert st == 200 and g["replaying"] == 23, g
        wait_until(lambda: c.llen("tasks") == 28, timeout=20, what="the replay of all")
        assert time.time() - t0 >= 0.8
        assert c.exists("tasks:dead") == 0
        st, g = get_json(r.admin, "POST", "/api/queues/nope/dead/replay")
        assert st == 404 and "no such HTTP queue" in g["error"], g
        # Every request that got past the admin server's own checks ran QUEUE REPLAY once:
        # 5 selections, 4 bad filters and the unknown queue (those 5 answered errors).
        stats = c.info("commandstats")["cmdstat_queue|replay"]
        assert stats["calls"] == 10 and stats["failed_calls"] == 5, stats


def test_delete_dead_letter_endpoint():
    with HttpEndpoint(server="python") as ep, admin("--http-queue", "tasks", "retries", "0") as r:
        c = r.client()
        make_dead(c, ep, 3, 0)
        st, g = get_json(r.admin, "DELETE", "/api/queues/tasks/dead/d404-1")
        assert st == 200 and g == {"queue": "tasks", "id": "d404-1", "deleted": True}, g
        assert sorted(d["id"] for d in dead_records(c)) == ["d404-0", "d404-2"]
        st, g = get_json(r.admin, "DELETE", "/api/queues/tasks/dead/d404-1")
        assert st == 404 and "d404-1" in g["error"], g
        st, g = get_json(r.admin, "DELETE", "/api/queues/nope/dead/d404-0")
        assert st == 404 and "no such HTTP queue" in g["error"], g
        assert c.llen("tasks:dead") == 2


# ---- the connection ------------------------------------------------------------------------

def test_small_answers_are_not_held_back_and_a_client_keeps_its_connection():
    """A small JSON answer on a keep-alive connection is not delayed by Nagle's algorithm
    waiting for the client's delayed ACK (40 ms a request before TCP_NODELAY), and a
    scraper or dashboard keeps its connection past 5 requests."""
    import http.client
    with admin() as r:
        conn = http.client.HTTPConnection("127.0.0.1", r.admin, timeout=10)
        times, ports = [], set()
        for i in range(30):
            t0 = time.perf_counter()
            conn.request("GET", "/api/tasks/none" if i % 2 else "/api/queues")
            resp = conn.getresponse()
            resp.read()
            times.append(time.perf_counter() - t0)
            ports.add(conn.sock.getsockname()[1])
            assert resp.status in (200, 404)
        conn.close()
        times.sort()
        assert times[len(times) // 2] < 0.030, times
        assert len(ports) == 1, ports


# ---- auth, origin, read-only --------------------------------------------------------------

CONTROL = [("GET", "/api/tasks/t1", 200), ("DELETE", "/api/tasks/t2", 200),
           ("POST", "/api/queues/tasks/pause", 200), ("POST", "/api/queues/tasks/resume", 200),
           ("POST", "/api/queues/tasks/dead/replay", 200), ("DELETE", "/api/queues/tasks/dead/x", 404)]


def test_control_endpoints_need_the_password_when_requirepass_is_set():
    with admin("--requirepass", "s3cret") as r:
        c = r.client(password="s3cret")
        for i in (1, 2):
            c.lpush("tasks", json.dumps({"url": "http://127.0.0.1:9/x", "id": f"t{i}", "delay": 3600}))
        wait_until(lambda: c.hlen("tasks:inflight") == 2, what="two scheduled tasks")
        for method, path, _ in CONTROL:
            for headers in ({}, bearer("wrong"), basic("u", "wrong")):
                st, _, b = request(r.admin, method, path, headers=headers)
                assert st == 401, (method, path, headers, st, b)
        assert c.exists("tasks:paused") == 0 and c.hlen("tasks:inflight") == 2
        assert "cmdstat_queue|pause" not in c.info("commandstats")
        for (method, path, want), headers in zip(CONTROL, [bearer("s3cret"), basic("x", "s3cret")] * 3):
            st, _, b = request(r.admin, method, path, headers=headers)
            assert st == want, (method, path, headers, st, b)
        assert c.hlen("tasks:inflight") == 1  # t2 cancelled


def test_control_endpoints_refuse_other_origins_and_readonly():
    with admin() as r:
        c = r.client()
        for i in (1, 2):
            c.lpush("tasks", json.dumps({"url": "http://127.0.0.1:9/x", "id": f"t{i}", "delay": 3600}))
        wait_until(lambda: c.hlen("tasks:inflight") == 2, what="two scheduled tasks")
        for method, path, _ in CONTROL:
            for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                st, _, b = request(r.admin, method, path, headers=headers)
                if method == "GET":
                    assert st == 200, (method, path, headers, st, b)  # a read, not a change
                else:
                    assert st == 403 and "refused" in json.loads(b)["error"], (method, path, headers, st, b)
        assert c.exists("tasks:paused") == 0 and c.hlen("tasks:inflight") == 2
        # The same requests from the server's own origin are served.
        own = {"Origin": f"http://127.0.0.1:{r.admin}"}
        for method, path, want in CONTROL:
            assert request(r.admin, method, path, headers=own)[0] == want, (method, path)
        assert c.hlen("tasks:inflight") == 1
    with admin("--admin-readonly", "yes") as r:
        c = r.client()
        c.lpush("tasks", json.dumps({"url": "http://127.0.0.1:9/x", "id": "t2", "delay": 3600}))
        wait_until(lambda: c.hlen("tasks:inflight") == 1, what="one scheduled task")
        for method, path, _ in CONTROL:
            st, _, b = request(r.admin, method, path)
            if method == "GET":
                assert st == 404, (method, path, st, b)  # t1 does not exist here: read, answered
            else:
                assert st == 403 and "readonly" in json.loads(b)["error"], (method, path, st, b)
        assert get_json(r.admin, "GET", "/api/tasks/t2")[1]["state"] == "scheduled"
        assert c.exists("tasks:paused") == 0 and c.hlen("tasks:inflight") == 1
        assert "cmdstat_queue" not in c.info("commandstats") and "cmdstat_task" not in c.info("commandstats")


if __name__ == "__main__":
    run_tests(globals())
