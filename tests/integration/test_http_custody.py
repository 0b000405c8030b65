"""What respq reads back and reports about the tasks in its custody.

- A record in <queue>:inflight that is not respq's envelope (any client can HSET one) does
  not stop respq at start with the AOF on: it moves to <queue>:dead with a reason naming
  it, the server starts, and a restart after that finds it dead once, not twice.
- Credentials in a task URL (http://user:pass@host/) are used for the request but never
  reported: outcomes on <queue>:results, callback bodies, dead-letter reasons and errors,
  the log and INFO show user:***@; the dead letter's payload keeps them, so a replay
  (LMOVE <queue>:dead <queue>) sends them again.
- A redirect to a scheme respq does not follow (only http and https) is dead at once,
  with one request made, instead of being retried.
The endpoint is php -S with php/http_endpoint.php.
"""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TARGET, HttpEndpoint, Outcomes, RawConn, Respq, dead_records, free_port,  # noqa: E402
                     run_tests, wait_until)

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

SECRET = "s3cr3t-Pw"


def everything_info(r):
    with RawConn(r.port) as raw:
        return raw.cmd("INFO", "everything").decode("utf-8", "replace")


def dead_by_id(c, queue="tasks"):
    return {d["id"]: d for d in dead_records(c, queue)}


def test_a_malformed_inflight_record_goes_dead_and_the_server_starts():
    with HttpEndpoint() as ep, Respq("--appendonly", "yes", "--appendfsync", "always") as r:
        c = r.client()
        salvaged = json.dumps({"url": ep.url("/salvaged"), "id": "salvaged"})
        planted = {
            "evil": '{"attempts":"zz"}',
            "not-json": "not json at all",
            "bad-state": json.dumps({"state": "done", "attempts": 1, "payload": salvaged}),
            "no-payload": json.dumps({"state": "retrying", "attempts": 2, "next_run": 1}),
            # A field that would forge a log line of its own if written as it is.
            "zz\n99999:M 07 Dec 2026 19:00:00.000 * FORGED\r": "junk",
        }
        for field, value in planted.items():
            c.hset("tasks:inflight", field, value)
        # A valid envelope beside them is still recovered and run.
        good = json.dumps({"url": ep.url("/recovered"), "id": "good"})
        c.hset("tasks:inflight", "good", json.dumps({"id": "good", "queue": "tasks", "state": "retrying",
                                                     "attempts": 1, "max_attempts": 3, "next_run": 0,
                                                     "last_code": 503, "last_error": "", "payload": good}))

        r.restart()
        assert r.alive(), "respq starts with unreadable records in tasks:inflight"
        c = r.client()
        assert c.ping()
        wait_until(lambda: set(planted) <= set(dead_by_id(c)), what="the planted records in tasks:dead")
        dead = dead_by_id(c)
        for field in planted:
            d = dead[field]
            assert f"'{field}'" in d["reason"] and "tasks:inflight" in d["reason"], d
            assert d["attempts"] == 0 and d["code"] == 0, d
            assert not c.hexists("tasks:inflight", field), f"{field} left tasks:inflight"
        assert "attempts is not an integer" in dead["evil"]["reason"], dead["evil"]
        assert dead["evil"]["payload"] == planted["evil"], "the record itself is kept when it has no payload"
        assert "not valid JSON" in dead["not-json"]["reason"], dead["not-json"]
        assert "state" in dead["bad-state"]["reason"], dead["bad-state"]
        assert dead["bad-state"]["payload"] == salvaged, "a payload that can be read out is kept as the payload"
        assert "no payload" in dead["no-payload"]["reason"], dead["no-payload"]
        ep.wait_requests(1, path="/recovered")
        assert "good" not in dead
        assert any("unreadable record 'evil'" in line for line in r.log_text().splitlines()), "the log says why"
        # A client's bytes are written escaped: one message, one line.
        assert not any(line.startswith("99999:M") for line in r.log_text().splitlines()), r.log_text()
        assert "zz\\n99999:M 07 Dec 2026 19:00:00.000 * FORGED\\r" in r.log_text()

        # The move was logged like any write: the next start finds each once, in tasks:dead.
        r.restart()
        c = r.client()
        assert c.ping()
        wait_until(lambda: not c.hexists("tasks:inflight", "good"), what="good delivered")
        ids = [d["id"] for d in dead_records(c)]
        for field in planted:
            assert ids.count(field) == 1, f"{field} in tasks:dead {ids.count(field)} times after a second restart"
        assert c.hlen("tasks:inflight") == 0

        # The salvaged payload replays as the task it was.
        n = len(dead_records(c))
        for _ in range(n):
            c.lmove("tasks:dead", "tasks", "RIGHT", "LEFT")
        ep.wait_requests(1, path="/salvaged")


def test_keys_of_another_type_where_respq_pushes_do_not_stop_it():
    """<queue>:dead (or the queue itself) planted as another type by a client: the task that
    dies is pushed there all the same (the key replaced, the log saying so), the server
    carries on, and with the AOF on a restart replays to the same state instead of dying
    at every start. QUEUE REPLAY and QUEUE DELDEAD on such a key answer WRONGTYPE."""
    with Respq("--appendonly", "yes", "--appendfsync", "always", "--http-queue", "tasks", "retries", "0") as r:
        c = r.client()
        c.set("tasks:dead", "not a list")
        for cmd in (("QUEUE", "REPLAY", "tasks"), ("QUEUE", "DELDEAD", "tasks", "x")):
            try:
                c.execute_command(*cmd)
                raise AssertionError(f"{cmd} on a string answered")
            except Exception as e:  # noqa: BLE001 - redis-py's ResponseError
                assert str(e).startswith("WRONGTYPE"), (cmd, e)
        dead_port = free_port()
        c.lpush("tasks", json.dumps({"url": f"http://127.0.0.1:{dead_port}/gone", "id": "a1"}))
        c.lpush("tasks", "not json")
        wait_until(lambda: c.type("tasks:dead") == b"list" and c.llen("tasks:dead") == 2, what="two dead letters")
        assert r.alive() and c.ping()
        assert {d["id"] for d in dead_records(c)} >= {"a1"}
        assert any("'tasks:dead' is not a list" in line for line in r.log_text().splitlines())
        r.restart()
        c = r.client()
        assert r.alive() and c.ping()
        assert c.type("tasks:dead") == b"list" and c.llen("tasks:dead") == 2, "the AOF replays to the same state"
        assert "a1" in {d["id"] for d in dead_records(c)}


def test_a_task_recovered_at_start_keeps_its_url_and_callback():
    # A scheduled task waits in <queue>:inflight across a restart; when it runs, its outcome
    # names its URL and goes to its callback, as for a task that never left the server.
    with HttpEndpoint() as ep, Respq("--appendonly", "yes", "--appendfsync", "always") as r:
        c = r.client()
        url = ep.url("/later")
        c.lpush("tasks", json.dumps({"url": url, "id": "later", "delay": 3, "callback": ep.url("/later-callback")}))
        wait_until(lambda: c.hexists("tasks:inflight", "later"), what="the scheduled task in tasks:inflight")
        assert json.loads(c.hget("tasks:inflight", "later"))["state"] == "scheduled"
        r.restart()
        c = r.client()
        assert c.execute_command("TASK", "GET", "later")  # known before it runs
        ep.wait_requests(1, path="/later", timeout=15)
        cb = ep.wait_requests(1, path="/later-callback", timeout=15)[0]
        o = json.loads(cb["body"])
        assert (o["id"], o["status"], o["url"]) == ("later", "delivered", url), o
        wait_until(lambda: not c.hexists("tasks:inflight", "later"), what="the task out of tasks:inflight")


def test_credentials_in_a_task_url_are_hidden_wherever_respq_reports_it(s):
    ep, r, c = s.ep, s.r, s.c
    base = f"127.0.0.1:{ep.port}"
    tasks = {
        "cred-ok": f"http://alice:{SECRET}@{base}/cred/ok",
        "cred-retry": f"http://bob:{SECRET}@{base}/cred/retry?status=503",
        "cred-final": f"http://carol:{SECRET}@{base}/cred/final?status=404",
        "cred-token": f"http://tok_{SECRET}@{base}/cred/token",
        "cred-refused": f"http://dave:{SECRET}@127.0.0.1:{free_port()}/nobody-listens",
    }
    payloads = {}
    with Outcomes(r) as out:
        for tid, url in tasks.items():
            payloads[tid] = s.push({"url": url, "id": tid, "retries": 1, "callback": ep.url(f"/cred/callback/{tid}")})
        out.wait(id="cred-ok", status="delivered")
        out.wait(id="cred-token", status="delivered")
        for tid in ("cred-retry", "cred-final", "cred-refused"):
            out.wait(id=tid, status="dead")
        outcomes = out.all()

    # The requests themselves carry the credentials (curl sends them as Basic auth).
    ok_req = ep.wait_requests(1, path="/cred/ok")[0]
    assert ok_req["h"].get("authorization") == "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()

    mine = [o for o in outcomes if o["id"] in tasks]
    assert mine and all(SECRET not in json.dumps(o) for o in mine), mine
    by = {(o["id"], o["status"]): o for o in mine}
    assert by[("cred-ok", "delivered")]["url"] == f"http://alice:***@{base}/cred/ok"
    assert by[("cred-token", "delivered")]["url"] == f"http://***@{base}/cred/token"
    assert by[("cred-retry", "retrying")]["url"] == f"http://bob:***@{base}/cred/retry?status=503"

    # Callback bodies are the outcomes: hidden too.
    wait_until(lambda: len(ep.requests(where=lambda q: q["path"].startswith("/cred/callback/"))) >= 6,
               what="the callbacks (ok, token, retry twice, final, refused twice)")
    for cb in ep.requests(where=lambda q: q["path"].startswith("/cred/callback/")):
        assert SECRET not in cb["body"], cb["body"]
        assert "***@" in json.loads(cb["body"])["url"], cb["body"]

    # Dead letters: reason and error hidden, the payload as the producer wrote it.
    dead = dead_by_id(c)
    for tid in ("cred-retry", "cred-final", "cred-refused"):
        d = dead[tid]
        assert SECRET not in d["reason"] and SECRET not in d["error"], d
        assert d["payload"] == payloads[tid], "the dead letter keeps the producer's bytes for a replay"

    # The log (verbose) and INFO never show it.
    assert SECRET not in r.log_text(), "the log shows a task URL's password"
    assert SECRET not in everything_info(r)

    # A replay sends the real credentials again.
    before = len(ep.requests(path="/cred/final"))
    while c.llen("tasks:dead"):
        d = json.loads(c.lindex("tasks:dead", -1))
        c.lmove("tasks:dead", "tasks", "RIGHT", "LEFT")
        if d["id"] == "cred-final":
            break
    req = ep.wait_requests(before + 1, path="/cred/final")[-1]
    assert req["h"].get("authorization") == "Basic " + base64.b64encode(f"carol:{SECRET}".encode()).decode()


def test_a_followed_301_or_302_keeps_the_post_and_its_body_and_a_303_is_fetched_with_get(s):
    ep = s.ep
    body = {"order": 7, "items": ["a", "b"]}
    with Outcomes(s.r) as out:
        for code in (301, 302, 307, 303):
            s.push({"url": ep.url(f"/moved/{code}", status=code, location=ep.url(f"/landed/{code}")),
                    "json": body, "follow_redirects": True, "id": f"moved-{code}"})
        for code in (301, 302, 307, 303):
            out.wait(id=f"moved-{code}", status="delivered")
    for code in (301, 302, 307):
        landed = ep.wait_requests(1, path=f"/landed/{code}")[0]
        assert landed["method"] == "POST" and json.loads(landed["body"]) == body, (code, landed)
        assert landed["h"].get("content-type") == "application/json", landed["h"]
    see_other = ep.wait_requests(1, path="/landed/303")[0]
    assert see_other["method"] == "GET" and not see_other["body"], see_other


def test_a_redirect_to_a_refused_scheme_is_dead_at_once(s):
    ep, c = s.ep, s.c
    targets = {
        "redir-ftp": f"ftp://erin:{SECRET}@127.0.0.1:{free_port()}/file.txt",
        "redir-file": "file:///etc/passwd",
        "redir-gopher": f"gopher://127.0.0.1:{free_port()}/_x",
    }
    with Outcomes(s.r) as out:
        for tid, target in targets.items():
            s.push({"url": ep.url(f"/redir/{tid}", status=302, location=target), "follow_redirects": True,
                    "retries": 3, "id": tid})
        # The same redirect, not followed: a 3xx answer is final, as before.
        s.push({"url": ep.url("/redir/unfollowed", status=302, location=targets["redir-ftp"]),
                "retries": 3, "id": "redir-unfollowed"})
        for tid in targets:
            out.wait(id=tid, status="dead")
        out.wait(id="redir-unfollowed", status="dead")
        outcomes = out.all()
    dead = dead_by_id(c)
    for tid, target in targets.items():
        d = dead[tid]
        scheme = target.split(":", 1)[0]
        assert d["attempts"] == 1, f"{tid}: dead after one attempt, not retried: {d}"
        assert "refused" in d["reason"] and scheme in d["reason"], d
        assert SECRET not in d["reason"] and SECRET not in d["error"], d
        assert len(ep.requests(path=f"/redir/{tid}")) == 1, f"{tid}: one request"
        assert not [o for o in outcomes if o["id"] == tid and o["status"] == "retrying"]
    assert "erin:***@" in dead["redir-ftp"]["reason"], dead["redir-ftp"]
    assert dead["redir-unfollowed"]["reason"] == "HTTP 302 is final", dead["redir-unfollowed"]


class Servers:
    def __init__(self):
        self.ep = HttpEndpoint(workers=4)
        try:
            self.r = Respq("--http-queue", "tasks", "backoff-min", "0.05", "backoff-max", "0.1",
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

    def dump_log(self):
        self.r.dump_log()
        self.ep.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)
        self.ep.__exit__(None, None, None)


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
