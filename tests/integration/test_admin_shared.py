"""TASK GET / TASK CANCEL and their admin endpoints for a shared queue (`http-queue jobs
shared yes` on a real redis-server upstream), and respq_tasks_reclaimed_total in /metrics
(checked by promtool).

A sidecar answers for the tasks it holds (taken into its processing list) and the recent
outcomes it recorded; a task that waits on the upstream (its retry set, the shared list)
is not searched, and the answer says so."""
import json
import os
import shutil
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Outcomes, RedisServer, free_port, run_tests, wait_until  # noqa: E402
from link_helpers import shared_info, sidecar  # noqa: E402
from test_admin_http import parse_metrics, promtool_check, request  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: shared queues are respq's own (target: {TARGET})")
    sys.exit(0)

Q = "jobs"


def task(ep, tid, path="/t", **query):
    return json.dumps({"url": ep.url(path, **query), "id": tid})


def get_json(port, method, path):
    st, _, b = request(port, method, path)
    return st, json.loads(b)


def resp_state(c, tid):
    reply = c.execute_command("TASK", "GET", tid)
    return None if reply is None else dict(zip(reply[0::2], reply[1::2]))[b"state"].decode()


def test_shared_queue_tasks_found_and_cancelled_and_reclaims_counted():
    with RedisServer() as up, HttpEndpoint(server="python") as ep:
        u = up.client()
        # The processing list of a sidecar that died (no heartbeat key): reclaimed by ours.
        ghost = [task(ep, f"ghost-{i}") for i in range(3)]
        u.rpush(f"{Q}:processing:ghost", *ghost)
        admin_port = free_port()
        with sidecar(up, "A", "--http-queue", "tasks", "off", "--http-queue", Q, "shared", "yes",
                     "retries", "2", "backoff-min", "600", "backoff-max", "600", "--node-timeout", "1",
                     "--admin-port", str(admin_port)) as a, Outcomes(a, Q) as out:
            c = a.client()
            for i in range(3):
                out.wait(id=f"ghost-{i}", status="delivered", timeout=30)
            assert u.llen(f"{Q}:processing:ghost") == 0
            assert shared_info(a, Q)["reclaimed"] == "3"
            st, _, body = request(admin_port, "GET", "/metrics")
            text = body.decode()
            if shutil.which("promtool"):
                promtool_check(text)
            m = parse_metrics(text)
            assert m[f'respq_tasks_reclaimed_total{{queue="{Q}"}}'] == 3, text
            assert f'respq_tasks_reclaimed_total{{queue="tasks"}}' not in m  # a local queue has none
            assert m[f'respq_queue_shared{{queue="{Q}"}}'] == 1

            # Delivered: among the recent outcomes this sidecar recorded.
            wait_until(lambda: resp_state(c, "ghost-1") == "delivered", what="ghost-1 recorded")
            st, g = get_json(admin_port, "GET", "/api/tasks/ghost-1")
            assert st == 200 and g["queue"] == Q and g["state"] == "delivered", g
            assert g["payload"] == ghost[1] and [a["code"] for a in g["attempts"]] == [200], g

            # In flight here: found, then cancelled (out of the processing list, not retried).
            held = task(ep, "held", hold="s1")
            u.lpush(Q, held)
            ep.wait_requests(1, where=lambda q: q["h"].get("x-task-id") == "held")
            st, g = get_json(admin_port, "GET", "/api/tasks/held")
            assert st == 200 and g["state"] == "in_flight" and g["payload"] == held, g
            assert len(g["attempts"]) == 1 and g["attempts"][0]["code"] is None, g
            assert u.lrange(f"{Q}:processing:A", 0, -1) == [held.encode()]
            st, g = get_json(admin_port, "DELETE", "/api/tasks/held")
            assert st == 200 and g["state"] == "in_flight" and g["queue"] == Q, g
            out.wait(id="held", status="cancelled")
            wait_until(lambda: u.llen(f"{Q}:processing:A") == 0, what="held out of the processing list")
            wait_until(lambda: resp_state(c, "held") == "cancelled", what="held recorded as cancelled")
            st, g = get_json(admin_port, "DELETE", "/api/tasks/held")
            assert st == 409 and "cancelled" in g["error"], g
            assert c.execute_command("TASK", "CANCEL", "held") == 0
            urllib.request.urlopen(ep.url("/_release/s1"), timeout=10).read()
            assert shared_info(a, Q)["cancelled"] == "1"

            # Waiting for its retry on the upstream: not searched, and the answer says so.
            u.lpush(Q, task(ep, "flaky", "/status/500"))
            out.wait(id="flaky", status="retrying")
            wait_until(lambda: u.zcard(f"{Q}:retry") == 1, what="flaky parked upstream")
            wait_until(lambda: resp_state(c, "flaky") is None, what="flaky out of this sidecar's custody")
            st, g = get_json(admin_port, "GET", "/api/tasks/flaky")
            assert st == 404 and "upstream" in g["error"], g
            assert "<queue>:retry" in g["error"], g
            assert c.execute_command("TASK", "CANCEL", "flaky") == 0
            st, g = get_json(admin_port, "DELETE", "/api/tasks/flaky")
            assert st == 404 and "upstream" in g["error"], g
            assert u.zcard(f"{Q}:retry") == 1  # untouched
            # Dead: its last error says why, as a local queue's does.
            u.lpush(Q, task(ep, "final", "/status/404"))
            out.wait(id="final", status="dead")
            wait_until(lambda: resp_state(c, "final") == "dead", what="final recorded as dead")
            reply = c.execute_command("TASK", "GET", "final")
            g = {k.decode(): v for k, v in zip(reply[0::2], reply[1::2])}
            assert g["last_error"] == b"HTTP 404 is final" and g["last_code"] == 404, g
            # The dead letters of a shared queue are on the upstream: 409 with the reason.
            st, g = get_json(admin_port, "POST", f"/api/queues/{Q}/dead/replay")
            assert st == 409 and "upstream" in g["error"], g
            st, g = get_json(admin_port, "DELETE", f"/api/queues/{Q}/dead/x")
            assert st == 409 and "upstream" in g["error"], g
            # Pause and resume work for a shared queue through the API too.
            assert get_json(admin_port, "POST", f"/api/queues/{Q}/pause") == (200, {"queue": Q, "paused": True})
            assert shared_info(a, Q)["paused"] == "1"
            assert get_json(admin_port, "POST", f"/api/queues/{Q}/resume")[0] == 200
            assert shared_info(a, Q)["paused"] == "0"


if __name__ == "__main__":
    run_tests(globals())
