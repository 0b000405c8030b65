"""HTTP workers: what the endpoint receives for a task.

A PHP endpoint (php -S with php/http_endpoint.php) records every request. Producers are
what apps use: phpredis from the PHP CLI with unchanged app code, redis-cli, redis-py.
Covers the seed format (url + param) with random nested params compared byte for byte
with PHP's own http_build_query, POST form and JSON bodies, methods, headers,
User-Agent, task ids, bare URL tasks, and that only HTTP queues are consumed.
"""
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TARGET, HttpEndpoint, Respq, dead_records, php, run_tests, wait_until  # noqa: E402

if TARGET != "respq":
    print(f"SKIP: HTTP workers are respq's own (target: {TARGET})")
    sys.exit(0)

FORM = "application/x-www-form-urlencoded"


class Servers:
    def __init__(self):
        self.ep = HttpEndpoint(workers=4)
        try:
            self.r = Respq("--http-queue", "tasks", "backoff-min", "0.05", "backoff-max", "0.2")
        except Exception:
            self.ep.stop()
            raise
        self.c = self.r.client()

    def dump_log(self):
        self.r.dump_log()
        self.ep.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)
        self.ep.__exit__(None, None, None)


# ---- random params --------------------------------------------------------------------

ALPHABET = list("abcXYZ0189 -_.~!*'();:@&=+$,/?#[]%\"<>\\^`{|}") + \
    ["\u00e9", "\u00fc", "\u65e5\u672c", "\U0001f600", "\t", "\n", "\u00df", "\u20ac"]


def rand_text(rng, max_len=8):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def rand_key(rng):
    r = rng.random()
    if r < 0.15:
        return str(rng.randint(-3, 12))   # PHP turns these into integer keys
    if r < 0.2:
        return rng.choice(["", "01", "1.5", " 1"])
    return rand_text(rng, 6) or "k"


SCALARS = [
    lambda rng: rand_text(rng),
    lambda rng: rng.randint(-10**6, 10**6),
    lambda rng: rng.choice([0.1, 1.5, -2.25, 3.0, 1e20, 1e-5, 123456.789, 0.30000000000000004,
                            1.0e15, 99999999999999.9, 2.5e-7]),
    lambda rng: rng.choice([True, False]),
    lambda rng: None,
    lambda rng: rng.choice([2**63 - 1, -2**63, 2**64 + 5, 2**70]),
    lambda rng: "",
]


def rand_value(rng, depth):
    r = rng.random()
    if depth < 4 and r < 0.2:
        return rand_object(rng, depth + 1)
    if depth < 4 and r < 0.32:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(SCALARS)(rng)


def rand_object(rng, depth):
    return {rand_key(rng): rand_value(rng, depth) for _ in range(rng.randint(0, 5))}


def rand_params(rng):
    if rng.random() < 0.1:
        return [rand_value(rng, 2) for _ in range(rng.randint(1, 4))]
    p = rand_object(rng, 1)
    p.setdefault("user", "a b")
    return p


SEED_PRODUCER = r"""<?php
// An app's producer: the seed format, pushed with phpredis exactly as the app does. Prints,
// keyed by case number, what a PHP worker would send for each payload: http_build_query of
// the param that json_decode($payload, true) gives back. (That is also http_build_query
// of the app's own $param, except where json_encode is lossy: it writes the float 1.0E+15
// as the integer 1000000000000000.)
[$_, $port, $base, $casesFile] = $argv;
$redis = new Redis();
$redis->connect('127.0.0.1', (int)$port);
$out = [];
foreach (json_decode(file_get_contents($casesFile), true) as $i => $param) {
    $payload = json_encode(['url' => "$base/seed/get/$i", 'param' => $param]);
    $redis->lPush('tasks', $payload);
    $redis->lPush('tasks', json_encode(['url' => "$base/seed/post/$i", 'method' => 'POST', 'param' => $param]));
    $out[$i] = http_build_query(json_decode($payload, true)['param']);
}
echo json_encode($out);
"""


def test_seed_format_with_random_nested_params_matches_php_http_build_query(s):
    seed = int(os.environ.get("RESPQ_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    cases = [rand_params(rng) for _ in range(60)]
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(cases, f)
    try:
        p = php(SEED_PRODUCER, s.r.port, s.ep.url(""), path)
    finally:
        os.unlink(path)
    expected = json.loads(p.stdout)
    reqs = s.ep.wait_requests(2 * len(cases), where=lambda r: r["path"].startswith("/seed/"), timeout=30)
    assert len(reqs) == 2 * len(cases), f"{len(reqs)} requests for {2 * len(cases)} tasks"
    got_get = {r["path"].rsplit("/", 1)[1]: r for r in reqs if r["path"].startswith("/seed/get/")}
    got_post = {r["path"].rsplit("/", 1)[1]: r for r in reqs if r["path"].startswith("/seed/post/")}
    mismatches = []
    for i, want in enumerate(expected):
        g, po = got_get[str(i)], got_post[str(i)]
        if g["method"] != "GET" or g["query"] != want or g.get("body"):
            mismatches.append(f"case {i} GET: params {json.dumps(cases[i])}\n  php:   {want!r}\n"
                              f"  respq: {g['method']} query {g['query']!r} body {g.get('body')!r}")
        if po["method"] != "POST" or po.get("body") != want or po["query"] != "" \
                or po["h"].get("content-type") != FORM:
            mismatches.append(f"case {i} POST: params {json.dumps(cases[i])}\n  php:   {want!r}\n"
                              f"  respq: {po['method']} body {po.get('body')!r} query {po['query']!r} "
                              f"content-type {po['h'].get('content-type')!r}")
    assert not mismatches, f"seed {seed} (rerun with RESPQ_TEST_SEED={seed}):\n" + "\n".join(mismatches[:10])


APP_PRODUCER = r"""<?php
// Unchanged app code: an app that queues a mail and a webhook the way it did with Redis.
[$_, $port, $url] = $argv;
$redis = new Redis();
$redis->connect('127.0.0.1', (int)$port);
$param = [
    'user' => 'Zoë O\'Brien',
    'email' => 'zoe+news@example.com',
    'tags' => ['vip', 'beta tester'],
    'order' => ['id' => 42, 'total' => 19.99, 'paid' => true, 'coupon' => null, 'items' => [['sku' => 'A-1', 'qty' => 2]]],
    'note' => "line 1\nline 2 & more",
];
for ($i = 0; $i < 20; $i++) {
    $param['n'] = $i;
    $redis->lPush('tasks', json_encode(['url' => $url, 'param' => $param]));
}
unset($param['n']);
echo http_build_query($param);
"""


def test_phpredis_producer_with_unchanged_app_code_is_delivered(s):
    url = s.ep.url("/app/send_mail")
    p = php(APP_PRODUCER, s.r.port, url)
    reqs = s.ep.wait_requests(20, path="/app/send_mail")
    time.sleep(0.2)
    reqs = s.ep.requests(path="/app/send_mail")
    assert len(reqs) == 20, f"20 tasks pushed, {len(reqs)} requests received"
    for i in range(20):
        want = p.stdout + f"&n={i}"
        assert sum(r["query"] == want for r in reqs) == 1, f"no single request with query {want!r}: " \
            f"{[r['query'] for r in reqs]}"
    assert all(r["method"] == "GET" for r in reqs)
    assert len({r["h"]["x-task-id"] for r in reqs}) == 20, "every task gets an id of its own"


def test_redis_cli_producer_and_results_subscriber_example_of_the_design(s):
    # The design's walk-through: redis-cli LPUSH a task, redis-cli SUBSCRIBE tasks:results.
    sub = subprocess.Popen(["redis-cli", "-p", str(s.r.port), "SUBSCRIBE", "tasks:results"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: s.c.pubsub_numsub("tasks:results")[0][1] >= 1, what="redis-cli subscribed")
        url = s.ep.url("/send_mail")
        out = s.r.cli("LPUSH", "tasks", json.dumps({"url": url, "param": {"user": "a b"}}))
        assert out.stdout.strip().isdigit(), f"LPUSH answered {out.stdout!r}"
        r = s.ep.wait_requests(1, path="/send_mail")[0]
        assert r["method"] == "GET" and r["query"] == "user=a+b", r
        assert r.get("body", "") == "", r
        seen, deadline, outcome = b"", time.time() + 10, None
        while time.time() < deadline and outcome is None:
            if select.select([sub.stdout], [], [], 0.1)[0]:
                chunk = os.read(sub.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
            for line in seen.splitlines():
                if line.startswith(b"{") and r["h"]["x-task-id"].encode() in line:
                    outcome = json.loads(line)
        assert outcome is not None, f"redis-cli SUBSCRIBE tasks:results printed {seen!r}"
        assert outcome["status"] == "delivered" and outcome["code"] == 200, outcome
        assert outcome["url"] == url + "?user=a+b" or outcome["url"] == url, outcome
    finally:
        sub.kill()
        sub.wait()


def test_bare_url_string_task_means_get(s):
    s.c.lpush("tasks", s.ep.url("/bare/plain", x="1 2"))
    s.c.lpush("tasks", json.dumps(s.ep.url("/bare/json-string")))   # a JSON string holding a URL
    a = s.ep.wait_requests(1, path="/bare/plain")[0]
    assert a["method"] == "GET" and a["query"] == "x=1+2" and a.get("body", "") == "", a
    assert a["h"].get("x-task-id"), "a bare URL task still gets an id"
    b = s.ep.wait_requests(1, path="/bare/json-string")[0]
    assert b["method"] == "GET" and b["query"] == "", b


def test_get_param_is_appended_to_a_query_already_in_the_url(s):
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/qs") + "?a=1&z=%2F#frag", "param": {"b": "c d", "e": [1, 2]}}))
    r = s.ep.wait_requests(1, path="/qs")[0]
    assert r["query"] == "a=1&z=%2F&b=c+d&e%5B0%5D=1&e%5B1%5D=2", r["query"]


def test_bytes_past_ascii_in_the_path_and_query_go_percent_encoded(s):
    # Written as is by the producer ("?name=José"): the request line carries %XX for each
    # byte, path and query alike, on both HTTP stacks (follow_redirects takes libcurl's);
    # the outcome keeps the URL as written.
    for i, follow in enumerate((False, True)):
        url = s.ep.url(f"/caf\u00e9{i}") + "?name=Jos\u00e9&x=%C3%A9&d=\u65e5"
        sub = s.c.pubsub()
        sub.subscribe("tasks:results")
        sub.get_message(timeout=2)
        s.c.lpush("tasks", json.dumps({"id": f"enc-{i}", "url": url, "follow_redirects": follow,
                                       "param": {"k": "\u00fc"}}))
        r = s.ep.wait_requests(1, path=f"/caf%C3%A9{i}")[0]
        assert r["uri"] == f"/caf%C3%A9{i}?name=Jos%C3%A9&x=%C3%A9&d=%E6%97%A5&k=%C3%BC", r["uri"]
        deadline = time.time() + 10
        outcome = None
        while time.time() < deadline and outcome is None:
            m = sub.get_message(timeout=1)
            if m and m["type"] == "message":
                o = json.loads(m["data"])
                outcome = o if o["id"] == f"enc-{i}" else None
        sub.close()
        assert outcome and outcome["status"] == "delivered" and outcome["url"].startswith(url), outcome


def test_post_json_body_sets_method_and_content_type(s):
    doc = {"event": "order.paid", "order": {"id": 42, "lines": [{"sku": "A-1", "qty": 2}], "total": 19.99},
           "customer": "Zo\u00eb \U0001f600", "flags": [True, False, None], "empty": {}}
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/json"), "json": doc, "param": {"sig": "x y"}}))
    r = s.ep.wait_requests(1, path="/json")[0]
    assert r["method"] == "POST", r
    assert r["h"].get("content-type") == "application/json", r["h"]
    assert json.loads(r["body"]) == doc, r["body"]
    assert r["query"] == "sig=x+y", "with a body of its own, param goes to the query string"


def test_post_form_body_with_param(s):
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/form"), "method": "post",
                                   "param": {"name": "J\u00fcrgen & Co", "list": ["a", "b c"], "n": 3}}))
    r = s.ep.wait_requests(1, path="/form")[0]
    assert r["method"] == "POST" and r["query"] == "", r
    assert r["h"].get("content-type") == FORM, r["h"]
    assert r["body"] == "name=J%C3%BCrgen+%26+Co&list%5B0%5D=a&list%5B1%5D=b+c&n=3", r["body"]
    assert r["h"].get("content-length") == str(len(r["body"])), r["h"]


def test_methods_raw_bodies_and_producer_headers(s):
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Custom": "v 1", "Authorization": "Bearer t0k3n",
               "X-Empty-Number": 7}
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/put"), "method": "PUT", "body": "raw \u00e9 text\n",
                                   "headers": headers}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/patch"), "method": "PATCH", "param": {"a": "b"}}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/delete"), "method": "DELETE", "param": {"a": "b"}}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/head"), "method": "HEAD", "param": {"a": "b"}}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/posted"), "body": "<xml/>",
                                   "headers": {"Content-Type": "application/xml"}}))
    put = s.ep.wait_requests(1, path="/put")[0]
    assert put["method"] == "PUT" and put["body"] == "raw \u00e9 text\n", put
    for k, v in headers.items():
        assert put["h"].get(k.lower()) == str(v), f"header {k}: sent {v!r}, received {put['h'].get(k.lower())!r}"
    patch = s.ep.wait_requests(1, path="/patch")[0]
    assert patch["method"] == "PATCH" and patch["body"] == "a=b" and patch["h"].get("content-type") == FORM, patch
    delete = s.ep.wait_requests(1, path="/delete")[0]
    assert delete["method"] == "DELETE" and delete["query"] == "a=b" and delete.get("body", "") == "", delete
    head = s.ep.wait_requests(1, path="/head")[0]
    assert head["method"] == "HEAD" and head["query"] == "a=b", head
    posted = s.ep.wait_requests(1, path="/posted")[0]
    assert posted["method"] == "POST" and posted["body"] == "<xml/>", "a body without a method means POST"
    assert posted["h"].get("content-type") == "application/xml", posted["h"]


def test_user_agent_names_respq_unless_the_task_sets_one(s):
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/ua/default")}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/ua/own"), "headers": {"User-Agent": "MyApp/2.1"}}))
    ua = s.ep.wait_requests(1, path="/ua/default")[0]["h"].get("user-agent", "")
    assert ua.lower().startswith("respq/") and len(ua) > len("respq/"), f"User-Agent {ua!r}"
    own = s.ep.wait_requests(1, path="/ua/own")[0]["h"]
    assert own.get("user-agent") == "MyApp/2.1", own


def test_task_ids_are_sent_as_x_task_id_with_the_attempt_number(s):
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/ids/given"), "id": "order-42:mail"}))
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/ids/int"), "id": 123456789}))
    s.c.lpush("tasks", *[json.dumps({"url": s.ep.url("/ids/generated", n=i)}) for i in range(30)])
    given = s.ep.wait_requests(1, path="/ids/given")[0]["h"]
    assert given.get("x-task-id") == "order-42:mail" and given.get("x-task-attempt") == "1", given
    num = s.ep.wait_requests(1, path="/ids/int")[0]["h"]
    assert num.get("x-task-id") == "123456789", num
    gen = s.ep.wait_requests(30, path="/ids/generated")
    ids = [r["h"].get("x-task-id") for r in gen]
    assert all(ids) and len(set(ids)) == 30, f"generated ids must be unique and non-empty: {ids}"
    assert all(r["h"].get("x-task-attempt") == "1" for r in gen)
    assert all(len(i) >= 8 and i.isprintable() and " " not in i for i in ids), ids


def test_producer_x_task_id_header_is_not_duplicated(s):
    s.c.lpush("tasks", json.dumps({"url": s.ep.url("/ids/header"), "id": "from-field",
                                   "headers": {"X-Task-Id": "from-header"}}))
    h = s.ep.wait_requests(1, path="/ids/header")[0]["h"]
    assert h.get("x-task-id") in ("from-field", "from-header"), h
    assert "," not in h["x-task-id"], f"X-Task-Id sent twice: {h['x-task-id']!r}"


def test_tasks_queue_exists_by_default_and_other_lists_are_left_to_their_consumers(s):
    queues = s.c.config_get("http-queue")["http-queue"]
    assert queues.startswith("tasks ") or ", tasks " in queues, f"CONFIG GET http-queue: {queues!r}"
    from harness import task_info
    assert task_info(s.r.port, "tasks") is not None, "INFO tasks has a line for the default queue"
    assert task_info(s.r.port, "mylist") is None

    task = json.dumps({"url": s.ep.url("/never")})
    got = {}

    def consumer():
        c = s.r.client()
        got["v"] = c.brpop(["mylist"], timeout=10)
    t = threading.Thread(target=consumer)
    t.start()
    from harness import wait_blocked
    wait_blocked(s.r.port, 1)
    s.c.lpush("mylist", task)
    t.join(15)
    assert got.get("v") == (b"mylist", task.encode()), f"BRPOP consumer got {got.get('v')!r}"

    s.c.rpush("jobs", task, s.ep.url("/never"))   # not an HTTP queue unless configured
    s.c.lpush("tasks:archive", task)
    time.sleep(0.5)
    assert s.c.lrange("jobs", 0, -1) == [task.encode(), s.ep.url("/never").encode()]
    assert s.c.lrange("tasks:archive", 0, -1) == [task.encode()]
    assert s.ep.requests(path="/never") == [], "the workers only consume HTTP queues"
    s.c.delete("jobs", "tasks:archive")


def test_dispatch_takes_the_oldest_task_first(s):
    # One at a time through a queue with concurrency 1: the arrival order is the FIFO order.
    assert s.c.config_set("http-queue", "fifo concurrency 1")
    try:
        s.c.lpush("fifo", *[json.dumps({"url": s.ep.url("/fifo", n=i)}) for i in range(10)])
        reqs = s.ep.wait_requests(10, path="/fifo")
        assert [r["query"] for r in reqs] == [f"n={i}" for i in range(10)], [r["query"] for r in reqs]
    finally:
        s.c.config_set("http-queue", "fifo off")
    assert dead_records(s.c, "fifo") == []


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
