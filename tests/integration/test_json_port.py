"""json-port: the seed app's own client, unchanged. It writes json_encode(['url' => ...,
'param' => [...]]) straight onto a TCP socket (PHP stream_socket_client + fwrite here,
swoole_client in the seed), back to back, no framing, no reply. Each object is
enqueued on json-queue exactly as an LPUSH would (and delivered at once on an HTTP
queue); bytes that are not JSON go to <queue>:dead, kept, with a log line; the limits
of RESP clients apply."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HttpEndpoint, Respq, free_port, run, run_tests, wait_until  # noqa: E402

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "json_port_client.php")


def php_write(r, json_port, items):
    path = os.path.join(r.dir, "items.json")
    with open(path, "w") as f:
        json.dump(items, f)
    return run(["php", CLIENT, str(json_port), path], timeout=60).stdout.strip()


def test_seed_client_tasks_are_delivered_at_once():
    jp = free_port()
    with HttpEndpoint() as ep, Respq("--json-port", str(jp)) as r:
        tasks = [{"task": {"url": ep.url("/send_mail"), "param": {"to": f"u{i}@example.com", "n": [i, "a b"]}}}
                 for i in range(50)]
        assert php_write(r, jp, tasks) == "written"
        reqs = ep.wait_requests(50, path="/send_mail")
        got = sorted(req["query"] for req in reqs)
        # PHP's http_build_query of each param, as for an LPUSHed task.
        want = sorted(f"to=u{i}%40example.com&n%5B0%5D={i}&n%5B1%5D=a+b" for i in range(50))
        assert got == want, (got[:3], want[:3])
        c = r.client()
        wait_until(lambda: c.hlen("tasks:inflight") == 0 and c.llen("tasks") == 0, what="queue idle")
        assert c.llen("tasks:dead") == 0


def test_objects_are_pushed_byte_for_byte_as_lpush_would():
    jp = free_port()
    with Respq("--json-port", str(jp), "--json-queue", "plain") as r:
        c = r.client()
        items = [{"raw": '{"url":"http:\\/\\/x\\/a","param":{"q":"}{"}}'}, {"raw": " \n"},
                 {"raw": '["not","a task"]'}, {"task": {"url": "http://x/b", "param": []}},
                 {"raw": '"http://x/c"'}]
        assert php_write(r, jp, items) == "written"
        wait_until(lambda: c.llen("plain") == 4, what="four values in the list")
        assert c.lrange("plain", 0, -1) == [b'"http://x/c"', b'{"url":"http:\\/\\/x\\/b","param":[]}',
                                             b'["not","a task"]', b'{"url":"http:\\/\\/x\\/a","param":{"q":"}{"}}']
        assert c.llen("plain:dead") == 0
        # Counted as LPUSH calls, in INFO commandstats.
        assert c.info("commandstats")["cmdstat_lpush"]["calls"] == 4


def test_what_is_not_json_goes_to_the_dead_letters_with_its_bytes():
    jp = free_port()
    with HttpEndpoint() as ep, Respq("--json-port", str(jp)) as r:
        c = r.client()
        good = {"url": ep.url("/ok"), "param": {"a": "1"}}
        items = [{"raw": "hello there"}, {"task": good}, {"raw": "{broken: json}"}, {"task": good},
                 {"raw": '{"url":"http://x/unfinished'}]
        assert php_write(r, jp, items) == "written"
        ep.wait_requests(2, path="/ok")
        wait_until(lambda: c.llen("tasks:dead") == 3, what="three dead letters")
        dead = [json.loads(x) for x in reversed(c.lrange("tasks:dead", 0, -1))]
        assert [d["payload"] for d in dead] == ["hello there", "{broken: json}", '{"url":"http://x/unfinished']
        assert all(d["reason"] == "not JSON" and d["queue"] == "tasks" for d in dead), dead
        assert r.log_text().count("are not JSON: kept in tasks:dead") == 3, r.log_text()
        # The queue can change at run time.
        c.config_set("json-queue", "other")
        assert c.config_get("json-queue") == {"json-queue": "other"}


def test_a_value_past_the_query_buffer_limit_closes_the_connection():
    jp = free_port()
    with Respq("--json-port", str(jp), "--client-query-buffer-limit", "1mb") as r:
        big = '{"url":"http://x/","param":{"p":"' + "x" * (2 * 1024 * 1024)
        assert php_write(r, jp, [{"raw": big}, {"raw": "x" * (32 * 1024 * 1024)}]) == "closed"
        wait_until(lambda: "max query buffer length" in r.log_text(), what="the limit log line")
        assert r.client().llen("tasks:dead") == 0 and r.client().ping()


def test_a_task_refused_for_maxmemory_closes_the_connection_and_says_why():
    jp = free_port()
    with Respq("--json-port", str(jp), "--json-queue", "plain") as r:
        c = r.client()
        c.config_set("maxmemory", 1)
        php_write(r, jp, [{"task": {"url": "http://x/"}}])
        wait_until(lambda: "was refused (OOM command not allowed" in r.log_text(), what="the refusal log line")
        assert c.llen("plain") == 0
        c.config_set("maxmemory", 0)
        assert php_write(r, jp, [{"task": {"url": "http://x/"}}]) == "written"
        wait_until(lambda: c.llen("plain") == 1, what="the task once there is room")


if __name__ == "__main__":
    run_tests(globals())
