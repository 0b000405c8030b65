"""Signed requests (Standard Webhooks), checked by an independent verifier (Python's hmac)
on every request an endpoint receives: webhook-id is the task id on every attempt,
webhook-timestamp is the time of that attempt (a retry gets a new one), and
webhook-signature holds one `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` per secret,
so during a rotation (two secrets) either key verifies it. Both HTTP stacks; shared by
local queues' custody. Secrets never show in clear in CONFIG GET, INFO or the log.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Outcomes, RedisServer, Respq, run_tests, wait_until  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_" + base64.b64encode(b"the new secret, 32 bytes long!!!").decode()
STACKS = {"lean": None, "curl": {"RESPQ_DELIVERY_CURL_ONLY": "1"}}


def key_of(secret):
    return base64.b64decode(secret[len("whsec_"):])


def expected(secret, msg_id, ts, body):
    mac = hmac.new(key_of(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def callback_id(task_id, body):
    return task_id + "-" + hashlib.sha256(body).hexdigest()[:16]


def body_of(req):
    if "body_b64" in req:
        return base64.b64decode(req["body_b64"])
    return (req.get("body") or "").encode()


def verify(req, secrets):
    """Checks one received request against the secrets respq signs with (in order);
    returns (webhook-id, timestamp)."""
    h = req["h"]
    msg_id, ts, sig = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    assert msg_id and ts and sig, f"missing webhook-* headers: {h}"
    assert ts.isdigit() and abs(int(ts) - req["t"]) <= 2, f"timestamp {ts} is not the attempt's time {req['t']}"
    sigs = sig.split(" ")
    assert sigs == [expected(s, msg_id, ts, body_of(req)) for s in secrets], \
        f"signatures {sigs} for secrets {[s[:10] for s in secrets]}"
    for s in sigs:  # each one verifies on its own, as an endpoint holding one key checks it
        v, b64 = s.split(",", 1)
        assert v == "v1" and len(base64.b64decode(b64)) == 32
    return msg_id, int(ts)


class Servers:
    def __init__(self):
        self.ep = HttpEndpoint(server="python")
        self.rs = {}
        try:
            for stack, env in STACKS.items():
                self.rs[stack] = Respq("--http-queue", "hooks", "signing-secret", OLD, "backoff-min", "1.1",
                                       "backoff-max", "1.2", "--http-queue", "plain", "--loglevel", "verbose",
                                       env=dict(os.environ, **env) if env else None)
        except Exception:
            self.__exit__()
            raise

    def dump_log(self):
        for r in self.rs.values():
            r.dump_log()
        self.ep.dump_log()

    def __exit__(self, *a):
        for r in self.rs.values():
            r.__exit__(None, None, None)
        self.ep.__exit__(None, None, None)


def test_every_attempt_is_signed_same_id_new_timestamp(s):
    for stack, r in s.rs.items():
        c = r.client()
        path = f"/signed/{stack}"
        with Outcomes(r, "hooks") as out:
            c.lpush("hooks", json.dumps({"url": s.ep.url(path, fail_first=2), "method": "POST",
                                         "json": {"n": 1, "text": "caf\u00e9"}, "id": f"sig-{stack}"}))
            c.lpush("hooks", json.dumps({"url": s.ep.url(path + "/get", q="x y"), "id": f"sig-get-{stack}"}))
            out.wait(id=f"sig-{stack}", status="delivered", timeout=20)
            out.wait(id=f"sig-get-{stack}", status="delivered")
        reqs = s.ep.requests(path=path)
        assert [r_["status"] for r_ in reqs] == [503, 503, 200], reqs
        checked = [verify(q, [OLD]) for q in reqs]
        assert {i for i, _ in checked} == {f"sig-{stack}"}, "webhook-id is the task id on every attempt"
        stamps = [t for _, t in checked]
        assert stamps[0] < stamps[1] < stamps[2], f"{stack}: each attempt has its own timestamp: {stamps}"
        assert [q["h"]["x-task-attempt"] for q in reqs] == ["1", "2", "3"]
        assert json.loads(body_of(reqs[0])) == {"n": 1, "text": "caf\u00e9"}
        [get] = s.ep.requests(path=path + "/get")
        assert verify(get, [OLD])[0] == f"sig-get-{stack}" and body_of(get) == b""
        # A queue without a secret sends no webhook-* header.
        c.lpush("plain", json.dumps({"url": s.ep.url(path + "/plain"), "id": f"plain-{stack}"}))
        [plain] = s.ep.wait_requests(1, path=path + "/plain")
        assert not [k for k in plain["h"] if k.startswith("webhook-")], plain["h"]


def test_rotation_signs_with_both_secrets_then_the_new_one(s):
    for stack, r in s.rs.items():
        c = r.client()
        path = f"/rotate/{stack}"
        assert c.config_set("http-queue", f"hooks signing-secret {NEW} signing-secret {OLD}")
        c.lpush("hooks", json.dumps({"url": s.ep.url(path, n=1), "method": "PUT", "body": "rotating",
                                     "id": f"rot1-{stack}"}))
        [both] = s.ep.wait_requests(1, path=path)
        verify(both, [NEW, OLD])
        sigs = both["h"]["webhook-signature"].split(" ")
        msg_id, ts = both["h"]["webhook-id"], both["h"]["webhook-timestamp"]
        # An endpoint that knows only one of the keys finds its signature among them.
        assert expected(OLD, msg_id, ts, b"rotating") in sigs and expected(NEW, msg_id, ts, b"rotating") in sigs
        assert c.config_set("http-queue", f"hooks signing-secret {NEW}")
        c.lpush("hooks", json.dumps({"url": s.ep.url(path, n=2), "method": "POST", "body": "rotated",
                                     "id": f"rot2-{stack}"}))
        wait_until(lambda: len(s.ep.requests(path=path)) == 2, what="the request after the rotation")
        after = s.ep.requests(path=path)[1]
        verify(after, [NEW])
        assert c.config_set("http-queue", f"hooks signing-secret {OLD}")  # as the next test expects


def test_a_shared_queue_signs_the_same_way(s):
    with RedisServer() as up, Respq("--upstream", "127.0.0.1", str(up.port), "--node-id", "A",
                                    "--http-queue", "shooks", "shared", "yes", "signing-secret", OLD) as r:
        r.client().lpush("shooks", json.dumps({"url": s.ep.url("/shared/signed"), "method": "POST",
                                               "json": {"shared": True}, "id": "sig-shared"}))
        [req] = s.ep.wait_requests(1, path="/shared/signed")
        assert verify(req, [OLD])[0] == "sig-shared"
        assert json.loads(body_of(req)) == {"shared": True}
        # Its callback too.
        r.client().lpush("shooks", json.dumps({"url": s.ep.url("/shared/task"), "id": "cb-shared",
                                               "callback": s.ep.url("/shared/callback")}))
        [cb] = s.ep.wait_requests(1, path="/shared/callback")
        assert verify(cb, [OLD])[0] == callback_id("cb-shared", body_of(cb))
        assert json.loads(body_of(cb))["id"] == "cb-shared"


def test_callbacks_are_signed_as_the_queue_s_requests(s):
    """The outcome POSTed to a task's callback carries the same webhook-* headers, signed
    with the queue's secrets over the outcome JSON, so the app can tell it came from
    respq; a queue without secrets sends its callbacks unsigned."""
    for stack, r in s.rs.items():
        c = r.client()
        with Outcomes(r, "hooks") as out:
            c.lpush("hooks", json.dumps({"url": s.ep.url(f"/cbtask/{stack}"), "id": f"cb-{stack}",
                                         "callback": s.ep.url(f"/callback/{stack}")}))
            outcome = out.wait(id=f"cb-{stack}", status="delivered")
        [cb] = s.ep.wait_requests(1, path=f"/callback/{stack}")
        # Its own webhook-id (one per message): the task id and a digest of the outcome.
        assert verify(cb, [OLD])[0] == callback_id(f"cb-{stack}", body_of(cb)) != f"cb-{stack}"
        assert cb["h"]["x-task-id"] == f"cb-{stack}"
        assert json.loads(body_of(cb)) == outcome, (body_of(cb), outcome)
        c.lpush("plain", json.dumps({"url": s.ep.url(f"/cbtask/{stack}/plain"), "id": f"cbp-{stack}",
                                     "callback": s.ep.url(f"/callback/{stack}/plain")}))
        [plain] = s.ep.wait_requests(1, path=f"/callback/{stack}/plain")
        assert not [k for k in plain["h"] if k.startswith("webhook-")], plain["h"]


def test_secrets_never_show_in_clear(s):
    for stack, r in s.rs.items():
        c = r.client(decode_responses=True)
        shown = c.config_get("http-queue")["http-queue"]
        assert "hooks " in shown and "signing-secret whsec_MfKQ..." in shown, shown
        everything = json.dumps(c.info("everything")) + shown + r.log_text()
        for secret in (OLD, NEW):
            body = secret[len("whsec_"):]
            assert body not in everything and body[:12] not in everything, f"{stack}: a secret shows in clear"
        import redis
        try:
            c.config_set("http-queue", "hooks signing-secret notasecret")
            raise AssertionError("a malformed secret was accepted")
        except redis.ResponseError as e:
            assert "signing-secret: a signing secret is written whsec_<base64>" in str(e), e
            assert "notasecret" not in str(e)


def test_config_rewrite_keeps_the_secrets_and_a_restart_signs_with_them(s):
    """CONFIG REWRITE writes the secrets whole (as Redis writes requirepass): the file reads
    back into the same queue, where a redacted secret would stop the server starting."""
    with Respq(config=f"http-queue hooks signing-secret {NEW} signing-secret {OLD}\n") as r:
        path = os.path.join(r.dir, "respq.conf")
        c = r.client(decode_responses=True)
        assert c.config_set("maxclients", "900")
        assert c.execute_command("CONFIG", "REWRITE")
        with open(path) as f:
            text = f.read()
        assert f"signing-secret {NEW} signing-secret {OLD}" in text, text
        r.stop()
        r.config = text
        r.start()
        c = r.client(decode_responses=True)
        assert c.config_get("maxclients")["maxclients"] == "900"
        shown = c.config_get("http-queue")["http-queue"]
        assert f"signing-secret {NEW[:10]}... signing-secret {OLD[:10]}..." in shown, shown
        c.lpush("hooks", json.dumps({"url": s.ep.url("/after-rewrite"), "id": "rewritten"}))
        [req] = s.ep.wait_requests(1, path="/after-rewrite")
        assert verify(req, [NEW, OLD])[0] == "rewritten"


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
