"""HTTP workers: the life of a task, as a user sees it through Redis commands.

Retries with the same id until delivered or dead, 4xx straight to <queue>:dead, invalid
payloads and refused schemes dead with the producer's bytes kept, replay with LMOVE,
delay / at, Retry-After, timeouts against a slow endpoint, cancelling a retrying task
with HDEL <queue>:inflight, duplicate ids, outcomes on <queue>:results and by callback,
and the INFO tasks line. The endpoint is php -S with php/http_endpoint.php.
"""
import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RawConn, Respq, dead_records, free_port,  # noqa: E402
                     parse_info, run_tests, task_info, wait_until)

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

DEAD_FIELDS = {"id", "queue", "reason", "attempts", "code", "error", "failed_at"}
OUTCOME_FIELDS = {"id", "queue", "url", "status", "code", "attempts", "duration_ms", "error"}


class Servers:
    def __init__(self):
        self.ep = HttpEndpoint(workers=8)
        try:
            self.r = Respq("--http-queue", "tasks", "backoff-min", "0.05", "backoff-max", "0.2",
                           "--http-queue", "retryq", "retries", "3", "backoff-min", "1.5", "backoff-max", "1.5",
                           "--http-queue", "replayq", "retries", "0",
                           "--http-queue", "slowq", "timeout", "0.3", "retries", "0",
                           "--http-queue", "longretry", "backoff-min", "60", "backoff-max", "60",
                           "--http-queue", "watchq",
                           # Every test here fails tasks on purpose at one endpoint: the
                           # host's circuit breaker (test_http_hosts) would hold them back.
                           "--host-failures-to-open", "0",
                           "--loglevel", "verbose")
        except Exception:
            self.ep.stop()
            raise
        self.c = self.r.client()

    def push(self, payload, queue="tasks"):
        if not isinstance(payload, (str, bytes)):
            payload = json.dumps(payload)
        self.c.lpush(queue, payload)
        return payload

    def dead(self, queue="tasks", timeout=10.0, **match):
        """Waits for the dead-letter record whose fields equal the keyword arguments."""
        found = []

        def look():
            found[:] = [d for d in dead_records(self.c, queue) if all(d.get(k) == v for k, v in match.items())]
            return found
        wait_until(look, timeout=timeout, what=f"a record matching {match!r} in {queue}:dead")
        assert len(found) == 1, f"{len(found)} records match {match!r} in {queue}:dead: {found}"
        return found[0]

    def dump_log(self):
        self.r.dump_log()
        self.ep.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)
        self.ep.__exit__(None, None, None)


def record_payload(d):
    """The producer's bytes kept in a dead-letter record."""
    if "payload_b64" in d:
        return base64.b64decode(d["payload_b64"])
    return d["payload"].encode()


def attempts_of(reqs):
    return [int(r["h"].get("x-task-attempt", "0")) for r in reqs]


# ---- retries ---------------------------------------------------------------------------

def test_retryable_failures_retry_with_the_same_id_until_delivered(s):
    with Outcomes(s.r) as out:
        s.push({"url": s.ep.url("/retry/ok", fail_first=2), "id": "retry-ok-1"})
        final = out.wait(id="retry-ok-1", status="delivered")
        retrying = out.all(id="retry-ok-1", status="retrying")
    reqs = s.ep.requests(path="/retry/ok")
    assert [r["status"] for r in reqs] == [503, 503, 200], reqs
    assert attempts_of(reqs) == [1, 2, 3], "X-Task-Attempt counts the attempts"
    assert {r["h"].get("x-task-id") for r in reqs} == {"retry-ok-1"}, "every attempt carries the same id"
    assert final["attempts"] == 3 and final["code"] == 200 and final["error"] == "", final
    assert [o["attempts"] for o in retrying] == [1, 2], retrying
    for o in retrying:
        assert o["code"] == 503 and "503" in o["error"], o
        assert isinstance(o.get("next_run"), (int, float)) and o["next_run"] > time.time() - 30, o
    assert not s.c.hexists("tasks:inflight", "retry-ok-1"), "a delivered task leaves the broker's custody"
    assert not [d for d in dead_records(s.c) if d["id"] == "retry-ok-1"]
    time.sleep(0.3)
    assert len(s.ep.requests(path="/retry/ok")) == 3, "no attempt after delivery"


def test_every_retryable_status_and_connection_errors_are_retried_then_dead(s):
    codes = [408, 425, 429, 500, 502, 503, 504]
    for code in codes:
        s.push({"url": s.ep.url(f"/retry/code/{code}", status=code), "retries": 1, "id": f"retry-code-{code}"})
    refused = f"http://127.0.0.1:{free_port()}/nobody-listens"
    s.push({"url": refused, "retries": 1, "id": "retry-refused"})
    for code in codes:
        d = s.dead(id=f"retry-code-{code}")
        assert d["reason"] == "attempts exhausted (2)" and d["attempts"] == 2 and d["code"] == code, d
        reqs = s.ep.requests(path=f"/retry/code/{code}")
        assert attempts_of(reqs) == [1, 2], f"HTTP {code}: {len(reqs)} requests, 2 expected"
    d = s.dead(id="retry-refused")
    assert d["attempts"] == 2 and d["code"] == 0 and d["error"], f"a connection error is retried: {d}"
    assert d["reason"] == "attempts exhausted (2)", d


def test_retries_exhausted_land_in_dead_with_the_full_record(s):
    url = s.ep.url("/dead/500", status=500)
    payload = '{ "url" : "%s", "retries":2,\n "id":"dead-500", "param": {"k": "v w"}, "extra": [1, "\\u00e9"] }' % url
    t0 = time.time()
    with Outcomes(s.r) as out:
        s.push(payload)
        d = s.dead(id="dead-500")
        o = out.wait(id="dead-500", status="dead")
    # The endpoint answered with a body: its start is in the record as `response`.
    assert set(d) == DEAD_FIELDS | {"payload", "response"}, f"dead-letter record fields: {sorted(d)}"
    assert json.loads(d["response"]) == {"ok": False, "status": 500, "hit": 3}, d["response"]
    assert o["response"] == d["response"], o
    assert d["queue"] == "tasks" and d["reason"] == "attempts exhausted (3)", d
    assert d["attempts"] == 3 and d["code"] == 500, d
    assert t0 - 1 <= d["failed_at"] <= time.time() + 1, d
    assert d["payload"] == payload, "the producer's bytes are kept untouched"
    reqs = s.ep.requests(path="/dead/500")
    assert attempts_of(reqs) == [1, 2, 3] and all(r["query"] == "status=500&k=v+w" for r in reqs), reqs
    assert o["attempts"] == 3 and o["code"] == 500 and o["url"] in (url, url + "&k=v+w"), o
    assert not s.c.hexists("tasks:inflight", "dead-500")


def test_a_failing_answers_body_is_shown_in_outcomes_and_the_dead_letter_a_delivered_ones_is_not(s):
    # What a webhook endpoint says when it refuses (Svix and QStash show it too): the start
    # of the body, in each failing attempt's outcome and in the dead letter; the task's
    # callback gets it as well. A delivered task's answer is not carried.
    with HttpEndpoint(server="python") as ep, Outcomes(s.r) as out:
        big = "x" * 3000
        s.push({"url": ep.url("/refuse", status=422, answer='{"error":"invalid signature"}'), "id": "answer-422"})
        s.push({"url": ep.url("/flaky", status=500, answer=big), "retries": 1, "id": "flaky-500"})
        s.push({"url": ep.url("/fine", answer="thanks"), "id": "fine-200"})
        d = s.dead(id="answer-422")
        assert d["code"] == 422 and d["response"] == '{"error":"invalid signature"}', d
        o = out.wait(id="answer-422", status="dead")
        assert o["response"] == '{"error":"invalid signature"}', o
        r = out.wait(id="flaky-500", status="retrying")
        assert r["response"] == "x" * 1024, f"{len(r.get('response', ''))} bytes kept"
        d = s.dead(id="flaky-500")
        assert d["response"] == "x" * 1024 and d["code"] == 500, d
        assert "response" not in out.wait(id="fine-200", status="delivered")


def test_other_4xx_and_leftover_3xx_go_straight_to_dead(s):
    codes = [400, 401, 403, 404, 405, 410, 422, 302]
    for code in codes:
        s.push({"url": s.ep.url(f"/final/{code}", status=code), "retries": 5, "id": f"final-{code}"})
    for code in codes:
        d = s.dead(id=f"final-{code}")
        assert d["attempts"] == 1 and d["code"] == code, d
        assert d["reason"] == f"HTTP {code} is final", d
    time.sleep(0.5)   # longer than the queue's backoff-max: a retry would have come
    for code in codes:
        reqs = s.ep.requests(path=f"/final/{code}")
        assert len(reqs) == 1, f"HTTP {code}: {len(reqs)} requests, exactly 1 expected (no retry)"


# ---- refused tasks ---------------------------------------------------------------------

def test_invalid_payloads_go_to_dead_with_the_payload_kept(s):
    url = s.ep.url("/invalid/never")
    cases = [
        (b"{not json", "not valid JSON"),
        (b'{"url": "' + url.encode() + b'", "param": {"a": 1}', "not valid JSON"),   # truncated
        (b"[1, 2, 3]", "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
        (b'{"param": {"a": 1}}', "url is missing"),
        (b'{"url": 42}', "url must be a string"),
        (b'{"url": "' + url.encode() + b'", "method": "TRACE"}', "method"),
        (b'{"url": "' + url.encode() + b'", "retries": -1}', "retries"),
        (b'{"url": "' + url.encode() + b'", "delay": "soon"}', "delay"),
        (b'{"url": "' + url.encode() + b'", "body": "a", "json": {"b": 1}}', "body and json"),
        (b'{"url": "' + url.encode() + b'", "headers": {"Bad Name": "x"}}', "header"),
        (b'\xff\xfe{"url": "\xc3(', None),    # not UTF-8: kept as payload_b64
        (b"", "empty"),
        (b"  \r\n ", "empty"),
    ]
    with Outcomes(s.r) as out:
        for payload, _ in cases:
            s.c.lpush("tasks", payload)
        wait_until(lambda: all(any(record_payload(d) == p for d in dead_records(s.c)) for p, _ in cases),
                   what="every invalid payload in tasks:dead")
        dead = {record_payload(d): d for d in dead_records(s.c)}
        for payload, why in cases:
            d = dead[payload]
            assert d["attempts"] == 0 and d["code"] == 0 and d["queue"] == "tasks", d
            assert why is None or why.lower() in d["reason"].lower(), f"{payload!r}: reason {d['reason']!r}"
            if payload == b'\xff\xfe{"url": "\xc3(':
                assert "payload_b64" in d and "payload" not in d, d
            o = out.wait(id=d["id"], status="dead")
            assert o["attempts"] == 0 and o["error"], o
            # The outcome names the URL the payload gave, where it gave one as a string.
            try:
                named = json.loads(payload).get("url")
            except (ValueError, AttributeError):
                named = None
            assert o["url"] == (named if isinstance(named, str) else ""), (payload, o)
    assert s.ep.requests(path="/invalid/never") == [], "an invalid task is never sent"


def test_non_http_schemes_are_refused_to_dead_with_the_payload_kept(s):
    port = s.ep.port
    cases = [
        (json.dumps({"url": f"ftp://127.0.0.1:{port}/file.txt"}), "'ftp'"),
        (json.dumps({"url": "file:///etc/passwd"}), "'file'"),
        (json.dumps({"url": f"gopher://127.0.0.1:{port}/_GET%20/"}), "'gopher'"),
        (json.dumps({"url": f"dict://127.0.0.1:{port}/info"}), "'dict'"),
        (json.dumps({"url": f"telnet://127.0.0.1:{port}"}), "'telnet'"),
        (json.dumps({"url": "javascript:alert(1)"}), "url"),
        (json.dumps({"url": f"127.0.0.1:{port}/no-scheme"}), "url"),
        (json.dumps(f"ftp://127.0.0.1:{port}/json-string"), None),
        ("file:///etc/passwd", None),   # not JSON, not an http(s) URL
        (json.dumps({"url": s.ep.url("/scheme/never"), "callback": "file:///tmp/outcome"}), "callback"),
    ]
    for payload, _ in cases:
        s.push(payload)
    wait_until(lambda: all(any(d.get("payload") == p for d in dead_records(s.c)) for p, _ in cases),
               what="every refused task in tasks:dead")
    dead = {d.get("payload"): d for d in dead_records(s.c)}
    for payload, why in cases:
        d = dead[payload]
        assert d["attempts"] == 0 and d["code"] == 0, d
        if why:
            assert why in d["reason"], f"{payload}: reason {d['reason']!r} should name {why}"
        if why and why.startswith("'"):
            assert "scheme" in d["reason"], d
    assert s.ep.requests(path="/scheme/never") == [], "a task with a refused callback is not sent"


def test_a_refused_task_keeps_the_producers_id(s):
    s.push({"url": "ftp://127.0.0.1/x", "id": "refused-with-id"})
    s.push('{"url": 7, "id": "refused-bad-url"}')
    wait_until(lambda: len([d for d in dead_records(s.c) if "refused-" in d.get("payload", "")]) == 2,
               what="both refused tasks in tasks:dead")
    ids = sorted(d["id"] for d in dead_records(s.c) if "refused-" in d.get("payload", ""))
    assert ids == ["refused-bad-url", "refused-with-id"], \
        f"the dead-letter records of refused tasks carry generated ids {ids}, not the producer's ids"


# ---- replay, delay, Retry-After, timeouts, cancel ------------------------------------------

def test_replay_from_dead_with_lmove_delivers_the_original_task(s):
    url = s.ep.url("/replay", fail_first=1)
    payload = s.push({"url": url, "id": "replay-1", "param": {"a": "b"}}, queue="replayq")
    d = s.dead(queue="replayq", id="replay-1")
    assert d["reason"] == "attempts exhausted (1)" and d["code"] == 503 and d["payload"] == payload, d
    with Outcomes(s.r, "replayq") as out:
        moved = s.c.lmove("replayq:dead", "replayq", "RIGHT", "LEFT")
        assert json.loads(moved)["id"] == "replay-1", moved
        o = out.wait(id="replay-1", status="delivered")
    assert o["attempts"] == 1 and o["code"] == 200, f"a replayed task starts its attempts afresh: {o}"
    reqs = s.ep.requests(path="/replay")
    assert [r["status"] for r in reqs] == [503, 200], reqs
    assert {r["h"].get("x-task-id") for r in reqs} == {"replay-1"}, "the replay keeps the task's id"
    assert all(r["query"] == "fail_first=1&a=b" for r in reqs), "the replay sends the original task"
    assert s.c.llen("replayq:dead") == 0 and s.c.llen("replayq") == 0
    assert not s.c.exists("replayq:inflight")

    # A replayed task that is still invalid goes back to dead, as it was.
    s.c.lpush("replayq", "{broken")
    first = s.dead(queue="replayq", payload="{broken")
    s.c.lmove("replayq:dead", "replayq", "RIGHT", "LEFT")
    wait_until(lambda: s.c.llen("replayq") == 0 and s.c.llen("replayq:dead") == 1, what="replayed record dead again")
    again = dead_records(s.c, "replayq")[0]
    assert again["payload"] == "{broken" and again["id"] == first["id"], (first, again)
    s.c.delete("replayq:dead")


def test_a_refused_connection_reads_the_same_on_both_http_stacks(s):
    """A URL with credentials goes out on curl, one without on the lean client: a port that
    refuses gives both the same error text (curl's own was "... after 0 ms: Couldn't connect
    to server"), so grouping dead letters or INFO hosts by reason does not split it."""
    port = free_port()
    s.push({"url": f"http://127.0.0.1:{port}/a", "id": "lean-refused"}, queue="replayq")
    s.push({"url": f"http://u:p@127.0.0.1:{port}/a", "id": "curl-refused"}, queue="replayq")
    lean = s.dead(queue="replayq", id="lean-refused")
    curl = s.dead(queue="replayq", id="curl-refused")
    assert lean["error"] == curl["error"] == f"Failed to connect to 127.0.0.1 port {port}: Connection refused", \
        (lean, curl)
    s.c.delete("replayq:dead")


def test_delay_and_at_hold_the_request_until_due(s):
    t0 = time.time()
    s.push({"url": s.ep.url("/delay/delay"), "id": "delay-1", "delay": 1.2})
    s.push({"url": s.ep.url("/delay/at"), "id": "at-1", "at": t0 + 1.2})
    s.push({"url": s.ep.url("/delay/now"), "id": "now-1"})
    s.ep.wait_requests(1, path="/delay/now")
    env = json.loads(s.c.hget("tasks:inflight", "delay-1") or b"null")
    assert env and env["state"] == "scheduled" and abs(env["next_run"] - (t0 + 1.2)) < 0.5, env
    assert json.loads(s.c.hget("tasks:inflight", "at-1"))["state"] == "scheduled"
    info = task_info(s.r.port)
    assert int(info["scheduled"]) >= 2, f"INFO tasks while two tasks wait: {info}"
    assert s.ep.requests(path="/delay/delay") == [] and s.ep.requests(path="/delay/at") == [], \
        "a delayed task is not sent before its time"
    d = s.ep.wait_requests(1, path="/delay/delay", timeout=10)[0]
    a = s.ep.wait_requests(1, path="/delay/at", timeout=10)[0]
    assert 1.15 <= d["t"] - t0 < 6, f"delay 1.2 s: sent after {d['t'] - t0:.3f} s"
    assert t0 + 1.15 <= a["t"] < t0 + 6, f"at t0+1.2: sent at t0+{a['t'] - t0:.3f}"
    wait_until(lambda: task_info(s.r.port)["scheduled"] == "0", what="INFO tasks scheduled=0")
    assert not s.c.hexists("tasks:inflight", "delay-1")


def test_watch_sees_the_dispatcher_change_its_keys(s):
    """WATCH on a key the dispatcher writes (here watchq:inflight, which only this task
    touches) makes EXEC fail, as after any client's write; a key it leaves alone does not."""
    import redis

    def transaction_after_delivery(watched, task_id):
        s.push({"url": s.ep.url("/watch/" + task_id), "id": task_id, "delay": 0.6}, queue="watchq")
        wait_until(lambda: s.c.hexists("watchq:inflight", task_id), what="the scheduled task's envelope")
        p = s.c.pipeline()
        p.watch(watched)
        s.ep.wait_requests(1, path="/watch/" + task_id, timeout=10)
        wait_until(lambda: not s.c.hexists("watchq:inflight", task_id), what="the delivered task's envelope gone")
        p.multi()
        p.set("watch-probe", task_id)
        try:
            p.execute()
            return True
        except redis.exceptions.WatchError:
            return False
        finally:
            p.reset()

    assert not transaction_after_delivery("watchq:inflight", "watch-1"), \
        "EXEC ran although the dispatcher changed the watched key"
    assert transaction_after_delivery("watch-unrelated", "watch-2"), "EXEC failed on a key nobody wrote"
    assert s.c.get("watch-probe") == b"watch-2"


def test_retry_after_is_honoured_beyond_the_backoff(s):
    with Outcomes(s.r) as out:
        s.push({"url": s.ep.url("/ra/seconds", fail_first=1, retry_after=1), "id": "ra-seconds"})
        s.push({"url": s.ep.url("/ra/date", fail_first=1, fail_status=429, retry_after_date=2), "id": "ra-date"})
        sec = s.ep.wait_requests(2, path="/ra/seconds", timeout=10)
        date = s.ep.wait_requests(2, path="/ra/date", timeout=10)
        o = out.wait(id="ra-seconds", status="retrying")
        out.wait(id="ra-seconds", status="delivered")
        out.wait(id="ra-date", status="delivered")
    gap = sec[1]["t"] - sec[0]["t"]
    assert 0.95 <= gap < 5, f"Retry-After: 1 (backoff-max 0.2): second attempt {gap:.3f} s after the first"
    assert 0.9 <= o["next_run"] - sec[0]["t"] < 1.6, f"retrying outcome next_run: {o}"
    gap = date[1]["t"] - date[0]["t"]
    assert 0.95 <= gap < 5, f"Retry-After as an HTTP-date 2 s ahead: second attempt {gap:.3f} s after the first"
    assert [r["status"] for r in date] == [429, 200]


def test_timeout_against_a_slow_endpoint(s):
    with Outcomes(s.r) as out:
        s.push({"url": s.ep.url("/slow/task", sleep=3), "timeout": 0.3, "retries": 1, "id": "slow-task"})
        o = out.wait(id="slow-task", status="dead", timeout=15)
        retry = out.wait(id="slow-task", status="retrying")
    assert o["code"] == 0 and o["attempts"] == 2, o
    assert "timed out" in retry["error"].lower() or "timeout" in retry["error"].lower(), retry
    assert retry["duration_ms"] < 2500, f"the attempt was not cut at its 0.3 s timeout: {retry}"
    d = s.dead(id="slow-task")
    assert d["reason"] == "attempts exhausted (2)" and d["code"] == 0 and d["error"], d
    assert attempts_of(s.ep.requests(path="/slow/task")) == [1, 2]

    # The queue's own timeout applies when the task has none (slowq: timeout 0.3, retries 0).
    with Outcomes(s.r, "slowq") as out:
        s.push({"url": s.ep.url("/slow/queue", sleep=3), "id": "slow-queue"}, queue="slowq")
        o = out.wait(id="slow-queue", status="dead", timeout=15)
    assert o["code"] == 0 and o["attempts"] == 1 and o["duration_ms"] < 2500, o


def test_hdel_of_a_retrying_tasks_field_cancels_it(s):
    # retryq: 3 retries, 1.5 s between attempts.
    url = s.ep.url("/cancel", status=503)
    s.push({"url": url, "id": "cancel-me"}, queue="retryq")
    s.push({"url": url, "id": "cancel-control"}, queue="retryq")
    wait_until(lambda: all((json.loads(s.c.hget("retryq:inflight", i) or b"{}").get("state") == "retrying")
                           for i in ("cancel-me", "cancel-control")), what="both tasks waiting to retry")
    assert s.c.hdel("retryq:inflight", "cancel-me") == 1
    # The control task gets its second attempt; the cancelled one never does.
    s.ep.wait_requests(2, timeout=10, where=lambda r: r["h"].get("x-task-id") == "cancel-control")
    time.sleep(0.5)
    mine = [r for r in s.ep.requests(path="/cancel") if r["h"].get("x-task-id") == "cancel-me"]
    assert len(mine) == 1, f"the cancelled task was attempted {len(mine)} times"
    assert not [d for d in dead_records(s.c, "retryq") if d["id"] == "cancel-me"], "a cancelled task is not dead"
    assert s.c.hdel("retryq:inflight", "cancel-control") == 1
    time.sleep(1.8)
    assert len([r for r in s.ep.requests(path="/cancel") if r["h"].get("x-task-id") == "cancel-me"]) == 1
    assert not s.c.exists("retryq:inflight") and dead_records(s.c, "retryq") == []
    info = task_info(s.r.port, "retryq")
    assert info["retrying"] == "0" and info["in_flight"] == "0", f"INFO tasks after cancelling: {info}"


def test_cancelling_a_retrying_task_shows_in_info_tasks_at_once(s):
    # longretry: 60 s before a retry. The task is gone from longretry:inflight; INFO tasks
    # should not count it as retrying for another minute.
    s.push({"url": s.ep.url("/cancel/info", status=503), "id": "cancel-info"}, queue="longretry")
    wait_until(lambda: task_info(s.r.port, "longretry")["retrying"] == "1", what="longretry retrying=1")
    assert s.c.hdel("longretry:inflight", "cancel-info") == 1
    try:
        wait_until(lambda: task_info(s.r.port, "longretry")["retrying"] == "0", timeout=3)
    except AssertionError:
        raise AssertionError(f"after HDEL longretry:inflight cancel-info (HLEN now "
                             f"{s.c.hlen('longretry:inflight')}), INFO tasks still says "
                             f"{task_info(s.r.port, 'longretry')}") from None


def test_a_task_in_flight_is_held_in_the_inflight_hash(s):
    payload = s.push({"url": s.ep.url("/custody", sleep=0.8), "id": "custody-1", "param": {"a": 1}})
    s.ep.wait_requests(1, path="/custody")
    env = json.loads(s.c.hget("tasks:inflight", "custody-1") or b"null")
    assert env is not None, "a task in flight is in tasks:inflight under its id"
    assert env["state"] == "in_flight" and env["attempts"] == 1 and env["queue"] == "tasks", env
    assert env["payload"] == payload, "the envelope keeps the producer's bytes"
    assert payload.encode() not in s.c.lrange("tasks", 0, -1), "a dispatched task has left the pending list"
    wait_until(lambda: not s.c.hexists("tasks:inflight", "custody-1"), timeout=10, what="custody-1 delivered")


def test_duplicate_id_in_custody_is_delivered_once(s):
    with Outcomes(s.r) as out:
        s.push({"url": s.ep.url("/dup", sleep=0.8, n=1), "id": "dup-1"})
        s.ep.wait_requests(1, path="/dup")
        s.push({"url": s.ep.url("/dup", sleep=0.8, n=2), "id": "dup-1"})
        dup = out.wait(id="dup-1", status="duplicate")
        out.wait(id="dup-1", status="delivered")
    time.sleep(0.3)
    reqs = s.ep.requests(path="/dup")
    assert [r["query"] for r in reqs] == ["sleep=0.8&n=1"], f"requests for id dup-1: {[r['query'] for r in reqs]}"
    assert dup["queue"] == "tasks", dup
    assert not [d for d in dead_records(s.c) if d["id"] == "dup-1"]


# ---- outcomes --------------------------------------------------------------------------

def test_results_channel_publishes_every_outcome(s):
    ok_url = s.ep.url("/res/ok")
    with Outcomes(s.r) as out:
        s.push({"url": ok_url, "id": "res-ok"})
        s.push({"url": s.ep.url("/res/gone", status=410), "id": "res-gone"})
        s.push({"url": s.ep.url("/res/flaky", fail_first=1), "id": "res-flaky"})
        ok = out.wait(id="res-ok", status="delivered")
        gone = out.wait(id="res-gone", status="dead")
        flaky_retry = out.wait(id="res-flaky", status="retrying")
        flaky_ok = out.wait(id="res-flaky", status="delivered")
    assert OUTCOME_FIELDS <= set(ok), f"outcome fields: {sorted(ok)}"
    assert ok["queue"] == "tasks" and ok["url"] == ok_url and ok["code"] == 200, ok
    assert ok["attempts"] == 1 and ok["error"] == "", ok
    assert isinstance(ok["duration_ms"], (int, float)) and 0 <= ok["duration_ms"] < 10000, ok
    assert gone["code"] == 410 and gone["attempts"] == 1 and "410" in gone["error"], gone
    assert flaky_retry["code"] == 503 and flaky_retry["attempts"] == 1 and "next_run" in flaky_retry, flaky_retry
    assert flaky_ok["code"] == 200 and flaky_ok["attempts"] == 2, flaky_ok


def test_outcomes_reach_pattern_subscribers(s):
    ps = s.r.client().pubsub()
    ps.psubscribe("*:results")
    wait_until(lambda: (m := ps.get_message(timeout=0.1)) and m["type"] == "psubscribe", what="PSUBSCRIBE")
    try:
        s.push({"url": s.ep.url("/res/pattern"), "id": "res-pattern"})
        deadline, got = time.time() + 10, None
        while time.time() < deadline and got is None:
            m = ps.get_message(timeout=0.1)
            if m and m["type"] == "pmessage" and json.loads(m["data"]).get("id") == "res-pattern":
                got = m
        assert got is not None, "no outcome for a PSUBSCRIBE *:results subscriber"
        assert got["channel"] == b"tasks:results" and json.loads(got["data"])["status"] == "delivered", got
    finally:
        ps.close()


def test_callback_receives_the_outcome_json_by_post(s):
    s.push({"url": s.ep.url("/cbtask/ok"), "id": "cb-ok", "callback": s.ep.url("/callback/ok")})
    s.push({"url": s.ep.url("/cbtask/dead", status=404), "id": "cb-dead", "callback": s.ep.url("/callback/dead")})
    s.push({"url": s.ep.url("/cbtask/flaky", fail_first=1), "id": "cb-flaky", "callback": s.ep.url("/callback/flaky")})
    cb = s.ep.wait_requests(1, path="/callback/ok")[0]
    assert cb["method"] == "POST" and cb["h"].get("content-type") == "application/json", cb
    assert cb["h"].get("x-task-id") == "cb-ok", cb["h"]
    o = json.loads(cb["body"])
    assert OUTCOME_FIELDS <= set(o), o
    assert o["id"] == "cb-ok" and o["status"] == "delivered" and o["code"] == 200 and o["queue"] == "tasks", o
    assert o["url"] == s.ep.url("/cbtask/ok"), o
    dead = json.loads(s.ep.wait_requests(1, path="/callback/dead")[0]["body"])
    assert dead["id"] == "cb-dead" and dead["status"] == "dead" and dead["code"] == 404, dead
    flaky = s.ep.wait_requests(1, path="/callback/flaky",
                               where=lambda r: json.loads(r["body"]).get("status") == "delivered")
    assert json.loads(flaky[0]["body"])["attempts"] == 2
    time.sleep(0.3)
    assert len(s.ep.requests(path="/callback/ok")) == 1, "one outcome, one callback"


def test_a_failed_callback_goes_again_after_the_backoff_and_is_given_up_after_five_sends(s):
    before = task_info(s.r.port)
    # Two 503s, then an answer: three sends of the same outcome.
    s.push({"url": s.ep.url("/cbretry/task"), "id": "cb-retry",
            "callback": s.ep.url("/callback/retry", fail_first=2, fail_status=503, key="cb-retry-callback")})
    reqs = s.ep.wait_requests(3, path="/callback/retry", timeout=15)
    assert len({r["body"] for r in reqs}) == 1, "the same outcome each time"
    assert json.loads(reqs[0]["body"])["status"] == "delivered"
    assert all(r["h"].get("x-task-id") == "cb-retry" for r in reqs)
    # A final answer (404) is not sent again.
    s.push({"url": s.ep.url("/cbretry/task"), "id": "cb-final",
            "callback": s.ep.url("/callback/final", status=404)})
    s.ep.wait_requests(1, path="/callback/final")
    # Nothing listens: five sends, then given up and counted.
    s.push({"url": s.ep.url("/cbretry/task"), "id": "cb-gone", "callback": f"http://127.0.0.1:{free_port()}/cb"})
    wait_until(lambda: int(task_info(s.r.port)["callbacks_failed"]) == int(before["callbacks_failed"]) + 2,
               timeout=15, what="the unanswered callback to be given up")
    time.sleep(0.5)
    assert len(s.ep.requests(path="/callback/retry")) == 3
    assert len(s.ep.requests(path="/callback/final")) == 1
    info = task_info(s.r.port)
    assert info["callbacks_retrying"] == "0", info
    log = s.r.log_text()
    assert "Callback for task cb-gone failed" in log and "given up after 5 sends" in log, log[-3000:]
    assert "callbacks given up" in log


def test_a_removed_queue_still_sends_its_callbacks_that_wait_to_go_again():
    with HttpEndpoint(workers=2) as ep, \
            Respq("--http-queue", "gone", "backoff-min", "1", "backoff-max", "1") as r:
        c = r.client()
        c.lpush("gone", json.dumps({"url": ep.url("/gone/task"), "id": "g1",
                                    "callback": ep.url("/gone/cb", fail_first=1, key="g1-cb")}))
        wait_until(lambda: task_info(r.port, "gone").get("callbacks_retrying") == "1", timeout=10,
                   what="the callback waiting to go again")
        c.config_set("http-queue", "gone off")
        reqs = ep.wait_requests(2, path="/gone/cb", timeout=10)
        assert reqs[0]["body"] == reqs[1]["body"]
        assert json.loads(reqs[1]["body"])["status"] == "delivered"


def test_info_tasks_has_a_line_per_queue_with_the_lifecycle_counts():
    with HttpEndpoint(workers=4) as ep, \
            Respq("--http-queue", "infoq", "concurrency", "1", "retries", "0",
                  "--http-queue", "inforetry", "retries", "1", "backoff-min", "30", "backoff-max", "30") as r:
        c = r.client()
        with RawConn(r.port) as raw:
            reply = raw.cmd("INFO", "tasks")
        text = reply.split(b"\r\n", 1)[1].decode()
        assert text.startswith("# Tasks\r\n"), text
        lines = {l.split(":", 1)[0]: l for l in text.split("\r\n")[1:] if l}
        assert set(lines) == {"infoq", "inforetry", "tasks"}, f"INFO tasks lines: {list(lines)}"
        for name, line in lines.items():
            kv = dict(p.split("=", 1) for p in line.split(":", 1)[1].split(","))
            for k in ("pending", "in_flight", "retrying", "delivered", "failed", "dead",
                      "latency_p50_ms", "latency_p99_ms"):
                assert k in kv, f"INFO tasks {name}: no {k} in {line!r}"
                float(kv[k])
        with RawConn(r.port) as raw:
            everything = parse_info(raw.cmd("INFO", "all").split(b"\r\n", 1)[1])
        assert "infoq" in everything.get("tasks", {}), "INFO all includes the tasks section"

        c.lpush("infoq", *[json.dumps({"url": ep.url("/info/slow", sleep=0.8, n=i)}) for i in range(3)])
        wait_until(lambda: (lambda i: i["in_flight"] == "1" and i["pending"] == "2")(task_info(r.port, "infoq")),
                   what="infoq in_flight=1 pending=2 (concurrency 1)")
        c.lpush("inforetry", json.dumps({"url": ep.url("/info/503", status=503)}))
        wait_until(lambda: task_info(r.port, "inforetry")["retrying"] == "1", what="inforetry retrying=1")
        i = task_info(r.port, "inforetry")
        assert i["failed"] == "1" and i["in_flight"] == "0" and i["delivered"] == "0", i
        wait_until(lambda: task_info(r.port, "infoq")["delivered"] == "3", timeout=15, what="infoq delivered=3")
        i = task_info(r.port, "infoq")
        assert i["pending"] == "0" and i["in_flight"] == "0" and i["dead"] == "0" and i["failed"] == "0", i
        assert i["dispatched"] == "3" and i["concurrency"] == "1", i
        assert float(i["latency_p99_ms"]) >= float(i["latency_p50_ms"]) >= 0, i
        c.lpush("infoq", json.dumps({"url": ep.url("/info/404", status=404)}), "not json")
        wait_until(lambda: task_info(r.port, "infoq")["dead"] == "2", what="infoq dead=2")
        i = task_info(r.port, "infoq")
        assert i["dead_list"] == "2" and i["failed"] == "1" and i["delivered"] == "3", i
        c.delete("infoq:dead")
        assert task_info(r.port, "infoq")["dead_list"] == "0"
        assert task_info(r.port, "tasks")["dispatched"] == "0", "other queues count their own tasks"


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
