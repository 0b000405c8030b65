"""respq benchmarks: every figure for respq and its reference, measured in the same run.

Run through bench/run (which builds first). Each section starts its own servers on free
loopback ports and stops them. Throughput sections alternate the two servers over
several rounds and report the median of each, so a noisy moment hurts both sides alike.
"""
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import Nginx, RedisServer, Respq, cpu_seconds, free_port  # noqa: E402

BUILD = os.environ.get("RESPQ_BUILD_DIR", os.path.join(ROOT, "build"))
SERVER = os.path.join(BUILD, "broker", "respq-server")
LIST_BENCH = os.path.join(BUILD, "bench", "respq_list_bench")
HTTP_SINK = os.path.join(BUILD, "bench", "respq_http_sink")
NULL_SERVER = os.path.join(BUILD, "bench", "respq_null_server")
harness.SERVER = SERVER

ROUNDS = int(os.environ.get("RESPQ_BENCH_ROUNDS", "3"))
rows = []  # (section, metric, respq, reference, ratio, target, ok)


def row(section, metric, respq, ref, unit="", higher_is_better=True, target=None):
    ratio = None
    if respq is not None and ref:
        ratio = respq / ref if higher_is_better else ref / respq if respq else None
    ok = None
    if target is not None and ratio is not None:
        ok = ratio >= target
    rows.append((section, metric, respq, ref, unit, ratio, target, ok))
    fmt = lambda v: "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}")
    r = "-" if ratio is None else f"{ratio:.2f}"
    t = "" if target is None else f"  (target >= {target})"
    print(f"  {metric:<44} respq {fmt(respq):>12} {unit:<6} reference {fmt(ref):>12}  ratio {r}{t}", flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def redis_benchmark(port, tests, n, pipeline, clients=50, server_pid=None):
    """Runs redis-benchmark; returns {test: ops/s} and, with server_pid, {test + ' cpu': server
    CPU microseconds per operation} (one test per run then, so the CPU is that test's)."""
    res = {}
    for test in tests.split(","):
        cpu0 = cpu_seconds(server_pid) if server_pid else 0
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", str(clients), "-n", str(n), "-P",
                              str(pipeline), "-t", test, "--csv"], capture_output=True, text=True,
                             timeout=600).stdout
        cpu = cpu_seconds(server_pid) - cpu0 if server_pid else 0
        for line in out.splitlines()[1:]:
            parts = [p.strip('"') for p in line.split('","')]
            if len(parts) >= 2:
                name = parts[0].strip('"')
                res[name] = float(parts[1])
                if server_pid and not name.startswith("LPUSH (needed"):
                    res[name + " cpu"] = cpu * 1e6 / n
    return res


# ---------------------------------------------------------------------------- queue
class NullServer(harness._Process):
    """bench/null_server.cpp: canned replies, no work, polling without sleeping. What
    redis-benchmark reaches against it is the client's own ceiling on this machine."""
    name = "null-server"

    def __init__(self):
        super().__init__()
        self.port = free_port()
        self._spawn([NULL_SERVER, str(self.port), "--spin"])

    def client(self, **kw):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)


QUEUE_TESTS = ("LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE_100 (first 100 elements)")


def queue_round(srv, n, pipeline, with_cpu=True):
    srv.client().flushall()
    pid = srv.proc.pid if with_cpu else None
    r = redis_benchmark(srv.port, "ping_mbulk,lpush,rpush,lpop,rpop", n, pipeline, server_pid=pid)
    r.update({k: v for k, v in redis_benchmark(srv.port, "lrange_100", n // 4, pipeline, server_pid=pid).items()
              if k.startswith("LRANGE")})
    return r


def section_queue():
    print("queue path: redis-benchmark, 50 clients (median of %d alternating rounds)" % ROUNDS)
    ratios, ceilings = [], []
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        for pipeline, n in ((1, 200000), (16, 2000000)):
            results = {"respq": [], "redis": [], "ceiling": []}
            for _ in range(ROUNDS):
                for name, srv in (("respq", rq), ("redis", rs)):
                    results[name].append(queue_round(srv, n, pipeline))
                # It spins on a core of its own: started only for its own measurement.
                with NullServer() as ns:
                    results["ceiling"].append(queue_round(ns, n, pipeline, with_cpu=False))
            med = lambda who, key: statistics.median(r.get(key, 0) for r in results[who])
            for test in QUEUE_TESTS:
                a, b, c = med("respq", test), med("redis", test), med("ceiling", test)
                label = test.split(" ")[0]
                row("queue", f"{label} -P {pipeline} (ops/s)", a, b, "ops/s", target=1.0)
                if b:
                    ratios.append(a / b)
                    ceilings.append(c / b)
                # redis-benchmark (one thread on the same 2 cores) often saturates before the
                # server does; server CPU per operation shows the servers' own cost then.
                row("queue", f"{label} -P {pipeline} server CPU per op (us)", med("respq", test + " cpu"),
                    med("redis", test + " cpu"), "us", higher_is_better=False)
                # The most any server could show here: the client against a server that does
                # nothing, as a ratio to redis-server.
                if b and c:
                    print(f"  {'  ceiling (a server doing no work)':<44} {c:>18,.0f} ops/s  "
                          f"ceiling ratio {c / b:.2f}; respq at {a / c:.0%} of it", flush=True)
                    rows.append(("queue", f"{label} -P {pipeline} ceiling", c, b, "ops/s", c / b, None, None))
            # The cheapest command there is: how fast redis-benchmark itself can go against
            # each server in this run. Not a queue-path figure.
            row("queue", f"PING_MBULK -P {pipeline} (ops/s, the client's pace)", med("respq", "PING_MBULK"),
                med("redis", "PING_MBULK"), "ops/s")
    if ratios:
        geo = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))
        gm, gc = geo(ratios), geo(ceilings)
        print(f"  geometric mean of queue-path ratios: {gm:.2f} (issue 2 target >= 1.0, issue 6 target >= 1.2); "
              f"lowest {min(ratios):.2f}")
        print(f"  the same for a server that does no work (the ceiling in this run): {gc:.2f}; "
              f"respq reaches {gm / gc:.0%} of it")
        rows.append(("queue", "geometric mean", None, None, "", gm, 1.2, gm >= 1.2))
        rows.append(("queue", "geometric mean, no-work server (ceiling)", None, None, "", gc, None, None))


# --------------------------------------------------------------------------- memory
def load_elements(port, n, size):
    # RPUSH batches of 100 elements through redis-cli --pipe, like a mass insert.
    elem = b"x" * size
    cmd = b"*102\r\n$5\r\nRPUSH\r\n$9\r\nbench:mem\r\n" + (b"$%d\r\n%s\r\n" % (size, elem)) * 100
    data = cmd * (n // 100)
    p = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True, timeout=600)
    if b"errors: 0" not in p.stdout:
        raise RuntimeError(p.stdout.decode())


def section_memory():
    n = 1_000_000
    print(f"memory: {n:,} queued 100-byte elements (process RSS after loading)")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        res = {}
        for name, srv in (("respq", rq), ("redis", rs)):
            before = rss_kb(srv.proc.pid)
            load_elements(srv.port, n, 100)
            assert srv.client().llen("bench:mem") == n
            res[name] = (before, rss_kb(srv.proc.pid))
        print(f"  RSS before loading: respq {res['respq'][0] / 1024:.1f} MB, redis {res['redis'][0] / 1024:.1f} MB")
        row("memory", "RSS with 1M x 100 B queued (MB)", res["respq"][1] / 1024, res["redis"][1] / 1024, "MB",
            higher_is_better=False, target=1.0)


# ---------------------------------------------------------------- sets and zsets
def load_members(port, n, kind):
    # SADD batches of 100 members "member:<i>", or ZADD batches of 100 (score i, member
    # "member:<i>"), through redis-cli --pipe.
    cmd, key = (b"SADD", b"bench:set") if kind == "set" else (b"ZADD", b"bench:zset")
    parts = []
    for start in range(0, n, 100):
        items = []
        for i in range(start, min(start + 100, n)):
            m = b"member:%d" % i
            if kind == "zset":
                sc = str(i).encode()
                items.append(b"$%d\r\n%s\r\n" % (len(sc), sc))
            items.append(b"$%d\r\n%s\r\n" % (len(m), m))
        parts.append(b"*%d\r\n$4\r\n%s\r\n$%d\r\n%s\r\n" % (2 + len(items), cmd, len(key), key) + b"".join(items))
    p = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=b"".join(parts), capture_output=True,
                       timeout=600)
    if b"errors: 0" not in p.stdout:
        raise RuntimeError(p.stdout.decode())


def collection_section(kind, tests):
    """Memory of one 1M-member set or sorted set, then redis-benchmark's tests for the type."""
    n = 1_000_000
    label = kind + "s"
    print(f"{label}: memory of one {kind} of {n:,} members \"member:<n>\" (process RSS after loading)")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        res = {}
        for name, srv in (("respq", rq), ("redis", rs)):
            before = rss_kb(srv.proc.pid)
            load_members(srv.port, n, kind)
            size = srv.client().scard("bench:set") if kind == "set" else srv.client().zcard("bench:zset")
            assert size == n
            res[name] = (before, rss_kb(srv.proc.pid))
            srv.client().flushall()
        print(f"  RSS before loading: respq {res['respq'][0] / 1024:.1f} MB, redis {res['redis'][0] / 1024:.1f} MB")
        row(label, f"RSS with a 1M-member {kind} (MB)", res["respq"][1] / 1024, res["redis"][1] / 1024, "MB",
            higher_is_better=False, target=1.0)
    print(f"{label}: redis-benchmark -t {','.join(tests).lower()}, 50 clients (median of {ROUNDS} alternating rounds)")
    ratios = []
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        for pipeline, count in ((1, 200000), (16, 2000000)):
            results = {"respq": [], "redis": []}
            for _ in range(ROUNDS):
                for name, srv in (("respq", rq), ("redis", rs)):
                    srv.client().flushall()
                    results[name].append(redis_benchmark(srv.port, ",".join(tests).lower(), count, pipeline,
                                                         server_pid=srv.proc.pid))
            med = lambda who, key: statistics.median(r.get(key, 0) for r in results[who])
            for test in tests:
                a, b = med("respq", test), med("redis", test)
                row(label, f"{test} -P {pipeline} (ops/s)", a, b, "ops/s", target=1.0)
                row(label, f"{test} -P {pipeline} server CPU per op (us)", med("respq", test + " cpu"),
                    med("redis", test + " cpu"), "us", higher_is_better=False)
                if b:
                    ratios.append(a / b)
    if ratios:
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print(f"  geometric mean of {'/'.join(tests)} ratios: {gm:.2f} (target >= 1.0); lowest {min(ratios):.2f}")
        rows.append((label, f"{'/'.join(tests)} geometric mean", None, None, "", gm, 1.0, gm >= 1.0))


def section_defaults():
    """redis-benchmark with its default test list (what operators type first), on both
    servers: every test must complete with a throughput."""
    print("defaults: redis-benchmark -q -n 20000 (its default test list), 50 clients")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        got = {}
        for name, srv in (("respq", rq), ("redis", rs)):
            out = subprocess.run(["redis-benchmark", "-p", str(srv.port), "-n", "20000", "--csv"],
                                 capture_output=True, text=True, timeout=600).stdout
            got[name] = {}
            for line in out.splitlines()[1:]:
                parts = [p.strip('"') for p in line.split('","')]
                if len(parts) >= 2:
                    got[name][parts[0]] = float(parts[1])
        missing = [t for t in got["redis"] if got["respq"].get(t, 0) <= 0]
        for t, b in got["redis"].items():
            row("defaults", f"{t} (ops/s)", got["respq"].get(t, 0), b, "ops/s")
        ok = not missing and len(got["redis"]) > 0
        print(f"  {len(got['respq'])} of {len(got['redis'])} default tests completed against respq"
              + (f"; missing: {', '.join(missing)}" if missing else ""))
        rows.append(("defaults", "default tests completed", None, None, "", float(ok), 1.0, ok))


def section_sets():
    collection_section("set", ("SADD", "SPOP"))


def section_zsets():
    collection_section("zset", ("ZADD", "ZPOPMIN"))


# ------------------------------------------------------------------ blocking/pubsub
def list_bench(*args):
    out = subprocess.run([LIST_BENCH] + [str(a) for a in args], capture_output=True, text=True, timeout=600).stdout
    vals = out.split()
    return {vals[i]: float(vals[i + 1]) for i in range(0, len(vals) - 1, 2)}


def section_blocking():
    print("blocking pops: one LPUSH producer waking one BRPOP consumer (median of rounds)")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        res = {"respq": [], "redis": []}
        for _ in range(ROUNDS):
            for name, srv in (("respq", rq), ("redis", rs)):
                res[name].append(list_bench("brpop", srv.port, 20000))
        med = lambda name, k: statistics.median(r[k] for r in res[name])
        row("blocking", "BRPOP wake-ups (ops/s)", med("respq", "ops_per_sec"), med("redis", "ops_per_sec"), "ops/s",
            target=1.0)
        row("blocking", "wake latency p99 (us)", med("respq", "p99_us"), med("redis", "p99_us"), "us",
            higher_is_better=False)


def section_pubsub():
    print("pub/sub: PUBLISH pipelined to 10 subscribers (median of rounds)")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        res = {"respq": [], "redis": []}
        for _ in range(ROUNDS):
            for name, srv in (("respq", rq), ("redis", rs)):
                res[name].append(list_bench("pubsub", srv.port, 100000, 10))
        med = lambda name: statistics.median(r["messages_per_sec"] for r in res[name])
        row("pubsub", "messages delivered (msg/s)", med("respq"), med("redis"), "msg/s", target=1.0)


# ------------------------------------------------------------------------ delivery
PHP_WORKER = r"""<?php
// The setup users run today: a PHP daemon doing BRPOP + curl with keep-alive.
$r = new Redis();
$r->connect('127.0.0.1', (int)$argv[1]);
$ch = curl_init();
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$n = 0; $last = 0.0;
while (true) {
    $t = $r->brPop(['tasks'], (int)$argv[2]);
    if (!$t) break;
    $task = json_decode($t[1], true);
    $url = $task['url'];
    if (isset($task['param'])) $url .= (strpos($url, '?') === false ? '?' : '&') . http_build_query($task['param']);
    curl_setopt($ch, CURLOPT_URL, $url);
    curl_exec($ch);
    $n++;
    $last = microtime(true);
}
echo "$n $last\n";
"""


def task_payloads(url, n):
    return [json.dumps({"url": url, "param": {"to": f"user{i}@example.com", "subject": "Welcome", "i": i}})
            for i in range(n)]


def push_wire(payloads, per_command=1000):
    """The LPUSH commands that enqueue `payloads`, RESP-encoded ahead of the timed part so
    the producer's own CPU (redis-py took 3 us per task) stays out of the race between
    the two setups, which share the machine's cores with it."""
    out = []
    for i in range(0, len(payloads), per_command):
        chunk = [p.encode() for p in payloads[i:i + per_command]]
        out.append(b"*%d\r\n$5\r\nLPUSH\r\n$5\r\ntasks\r\n" % (len(chunk) + 2))
        out.extend(b"$%d\r\n%s\r\n" % (len(c), c) for c in chunk)
    return b"".join(out), (len(payloads) + per_command - 1) // per_command


def push_all(port, wire):
    """Sends push_wire()'s bytes over one connection and reads every reply."""
    data, replies = wire
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        got = b""
        while got.count(b"\r\n") < replies:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("server closed the connection during the push")
            got += chunk
        bad = [line for line in got.split(b"\r\n")[:replies] if not line.startswith(b":")]
        if bad:
            raise RuntimeError(f"LPUSH failed: {bad[0][:200]!r}")


def tasks_info(raw):
    s = raw.cmd("INFO", "tasks").decode()
    line = [l for l in s.splitlines() if l.startswith("tasks:")][0]
    return dict(kv.split("=") for kv in line[len("tasks:"):].split(","))


def run_respq_delivery(url, n, extra=(), env=None):
    with Respq("--http-queue", "tasks", "concurrency", "128", "per-host", "128", *extra, env=env) as rq:
        wire = push_wire(task_payloads(url, n))
        cpu0 = cpu_seconds(rq.proc.pid)
        t0 = time.time()
        push_all(rq.port, wire)
        # One connection for the polling, as the PHP side's LLEN polling has.
        with rq.raw() as raw:
            while int(tasks_info(raw)["delivered"]) < n:
                time.sleep(0.005)
        dt = time.time() - t0
        return n / dt, cpu_seconds(rq.proc.pid) - cpu0


def run_php_delivery(url, n, workers=8, idle_timeout=2, php_args=()):
    with tempfile.NamedTemporaryFile("w", suffix=".php", delete=False) as f:
        f.write(PHP_WORKER)
        script = f.name
    with RedisServer() as rs:
        procs = [subprocess.Popen(["php", *php_args, script, str(rs.port), str(idle_timeout)], stdout=subprocess.PIPE,
                                  text=True)
                 for _ in range(workers)]
        time.sleep(0.5)
        cpu0 = sum(cpu_seconds(p.pid) for p in procs) + cpu_seconds(rs.proc.pid)
        wire = push_wire(task_payloads(url, n))
        t0 = time.time()
        push_all(rs.port, wire)
        # CPU is read when the queue drains, before the workers idle out.
        while rs.client().llen("tasks") > 0:
            time.sleep(0.005)
        time.sleep(0.05)
        cpu1 = sum(cpu_seconds(p.pid) for p in procs) + cpu_seconds(rs.proc.pid)
        total, last = 0, 0.0
        for p in procs:
            out = p.communicate(timeout=120)[0].split()
            total += int(out[0])
            last = max(last, float(out[1]))
    os.unlink(script)
    assert total == n, f"PHP workers processed {total} of {n}"
    return n / (last - t0), cpu1 - cpu0


def section_delivery():
    n = int(os.environ.get("RESPQ_BENCH_TASKS", "50000"))
    print(f"HTTP delivery: {n:,} seed-format tasks to nginx (return 204); respq vs redis-server + 8 PHP BRPOP/curl workers")
    with Nginx() as ng:
        url = f"http://127.0.0.1:{ng.port}/send_mail"
        res = {"respq": [], "php": []}
        for _ in range(ROUNDS):
            res["respq"].append(run_respq_delivery(url, n))
            res["php"].append(run_php_delivery(url, n))
        rate = lambda k: statistics.median(r[0] for r in res[k])
        cpu = lambda k: statistics.median(r[1] for r in res[k]) / n * 1000
        row("delivery", "delivery rate (tasks/s)", rate("respq"), rate("php"), "task/s", target=5.0)
        row("delivery", "CPU seconds per 1,000 deliveries", cpu("respq"), cpu("php"), "s", higher_is_better=False)


def make_test_pki(directory):
    """A CA and a certificate for 127.0.0.1 it signs, made by openssl; returns the paths
    (ca, cert, key)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=respq bench CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1")
    with open(os.path.join(directory, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.crt", "-days", "2", "-extfile", "server.ext")
    return tuple(os.path.join(directory, f) for f in ("ca.crt", "server.crt", "server.key"))


def wrk_rate(url, seconds=5, connections=128, threads=2):
    """Requests per second wrk reaches against url (keep-alive, HTTP/1.1)."""
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", url],
                         check=True, capture_output=True, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("Requests/sec:")][0]
    return float(line.split()[1])


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def section_https():
    """https delivery to nginx with TLS on loopback (its certificate signed by a CA made
    here, trusted through tls-ca-cert-file): respq against wrk on the same nginx in the
    same run (the machine's ceiling for this endpoint), and against redis-server + 8 PHP
    BRPOP/curl workers trusting the same CA (curl.cainfo)."""
    n = int(os.environ.get("RESPQ_BENCH_HTTPS_TASKS", "20000"))
    # RESPQ_BENCH_HTTP2=no: respq speaks HTTP/1.1 to this nginx too (its http2 setting).
    http2 = os.environ.get("RESPQ_BENCH_HTTP2", "yes")
    print(f"HTTPS delivery: {n:,} seed-format tasks to nginx over TLS (return 204; respq http2 {http2}); respq vs "
          f"wrk on the same nginx, and vs redis-server + 8 PHP BRPOP/curl workers (load average {load_average()})")
    with tempfile.TemporaryDirectory(prefix="respq-bench-tls-") as d:
        ca, cert, key = make_test_pki(d)
        tls = f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_session_cache shared:SSL:1m; "
        with Nginx(tls + "location / { return 204; }", listen_extra="ssl http2") as ng:
            url = f"https://127.0.0.1:{ng.port}/send_mail"
            res = {"respq": [], "wrk": [], "php": []}
            for _ in range(ROUNDS):
                res["respq"].append(run_respq_delivery(url, n, ("--tls-ca-cert-file", ca, "--http2", http2)))
                res["wrk"].append(wrk_rate(url + "?to=user1%40example.com&subject=Welcome&i=1"))
                res["php"].append(run_php_delivery(url, n, php_args=("-d", f"curl.cainfo={ca}")))
            rate = statistics.median(r[0] for r in res["respq"])
            cpu = statistics.median(r[1] for r in res["respq"]) / n * 1000
            print(f"  rounds: respq {[round(r[0]) for r in res['respq']]}, wrk {[round(r) for r in res['wrk']]}, "
                  f"php {[round(r[0]) for r in res['php']]}; load average after: {load_average()}")
            row("https", "HTTPS delivery rate vs wrk on the same nginx (req/s)", rate, statistics.median(res["wrk"]),
                "task/s", target=0.80)
            row("https", "HTTPS delivery rate vs redis + 8 PHP workers (tasks/s)", rate,
                statistics.median(r[0] for r in res["php"]), "task/s")
            row("https", "CPU seconds per 1,000 deliveries vs PHP workers", cpu,
                statistics.median(r[1] for r in res["php"]) / n * 1000, "s", higher_is_better=False)


def section_egress():
    """What judging each dialled address costs on the plain-http delivery path: the same
    run as `delivery`, with the default policy (metadata: every new connection judged
    against its ranges) and with `public` plus an allow-list entry (the lists, then the
    level), against `any` (the level judges nothing), alternating; on the lean client and
    on curl (RESPQ_DELIVERY_CURL_ONLY=1, where a connection is judged when opened and
    again before every request)."""
    n = int(os.environ.get("RESPQ_BENCH_TASKS", "50000"))
    print(f"Egress check: {n:,} tasks to nginx (return 204), policy on vs egress-policy any")
    configs = {"metadata": ("--egress-policy", "metadata"),
               "public+allow": ("--egress-policy", "public", "--egress-allow", "127.0.0.1/32"),
               "any": ("--egress-policy", "any")}
    with Nginx() as ng:
        url = f"http://127.0.0.1:{ng.port}/send_mail"
        for stack, env in (("lean client", None), ("curl", dict(os.environ, RESPQ_DELIVERY_CURL_ONLY="1"))):
            res = {k: [] for k in configs}
            for _ in range(ROUNDS):
                for name, extra in configs.items():
                    res[name].append(run_respq_delivery(url, n, extra, env=env))
            rate = lambda k: statistics.median(r[0] for r in res[k])
            cpu = lambda k: statistics.median(r[1] for r in res[k]) / n * 1000
            for name in ("metadata", "public+allow"):
                row("egress", f"{stack}: delivery rate, {name} vs any (tasks/s)", rate(name), rate("any"), "task/s",
                    target=0.98)
                row("egress", f"{stack}: CPU s per 1,000 deliveries, {name} vs any", cpu(name), cpu("any"), "s",
                    higher_is_better=False)


def custody_payloads(n, delay, url=None):
    """n task payloads of about 100 bytes each, due `delay` seconds from now; by default the
    URL points at a closed loopback port, and nothing is delivered before the figures are read."""
    url = url or f"http://127.0.0.1:{free_port()}/hook"
    base = {"url": url, "delay": delay, "param": {"i": 0}}
    pad = max(0, 100 - len(json.dumps(base)))
    return [json.dumps({"url": url, "delay": delay, "param": {"i": i, "p": "x" * max(0, pad - 8 - len(str(i)))}})
            for i in range(n)]


class SilentListener:
    """A loopback port that accepts connections and never answers: requests to it stay in
    flight (until their timeout, a day here)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def custody_rss(payloads, field, extra=(), server_args=(), want=None, connected=None):
    """Bytes of RSS per task once respq holds the payloads and `want` of them (default:
    all) are in the state `field` counts. With `connected` (a function returning how many
    connections the target has accepted), also once respq's connections are all open (a
    task counts in flight from its hand-over to the delivery engine, before its connection
    is made) and its RSS has stopped growing."""
    n = len(payloads)
    want = n if want is None else want
    with Respq("--http-queue", "tasks", *extra, *server_args) as rq:
        before = rss_kb(rq.proc.pid)
        push_all(rq.port, push_wire(payloads))
        with rq.raw() as raw:
            deadline = time.time() + 300
            while int(tasks_info(raw)[field]) < want:
                if time.time() > deadline:
                    raise RuntimeError(f"only {tasks_info(raw)[field]} of {want} tasks {field}")
                time.sleep(0.05)
        if connected is not None:
            deadline = time.time() + 300
            while connected() < min(want, n):
                if time.time() > deadline:
                    raise RuntimeError(f"only {connected()} of {want} connections made")
                time.sleep(0.05)
            # Settled: three readings half a second apart agree (within a minute).
            readings = [rss_kb(rq.proc.pid)]
            deadline = time.time() + 60
            while (len(readings) < 3 or len(set(readings[-3:])) > 1) and time.time() < deadline:
                time.sleep(0.5)
                readings.append(rss_kb(rq.proc.pid))
        return (rss_kb(rq.proc.pid) - before) * 1024 / n


def redis_zset_rss(payloads):
    """Bytes of RSS per payload for redis-server holding them in a sorted set."""
    n = len(payloads)
    with RedisServer() as rs:
        before = rss_kb(rs.proc.pid)
        wire = []
        for i in range(0, n, 1000):
            chunk = payloads[i:i + 1000]
            args = [b"ZADD", b"queues:default:delayed"]
            for j, p in enumerate(chunk):
                args += [str(1_900_000_000 + i + j).encode(), p.encode()]
            wire.append(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
        push_all(rs.port, (b"".join(wire), len(wire)))
        assert rs.client().zcard("queues:default:delayed") == n
        return (rss_kb(rs.proc.pid) - before) * 1024 / n


def section_custody():
    """RSS per task in custody, in each state a task waits in: scheduled ("delay" an hour
    ahead), retrying (its first attempt refused, the next an hour ahead: its envelope also
    carries the error; the host's circuit breaker off, or its tasks would wait for the
    host instead of being tried) and in flight, two ways, both to a port that accepts and
    never answers: behind the usual per-host cap of 64 connections (where tasks pile up
    when a host stops answering: 64 on a connection, the rest taken into custody and
    waiting in the host's line, their envelope in <queue>:inflight) and on a connection each (the cap set
    to let them all go: the figure is then mostly the open connection and its request,
    which no task record can shrink). Beside redis-server holding the same payloads in a
    sorted set (Laravel's delayed queue)."""
    n = int(os.environ.get("RESPQ_BENCH_CUSTODY_TASKS", "200000"))
    # Each attempt in flight holds a connection (the per-host cap is set to let them all
    # go): 8,000 stay well inside the usual 20,000 open files on both sides.
    n_live = min(n, int(os.environ.get("RESPQ_BENCH_CUSTODY_INFLIGHT", "8000")))
    listener = SilentListener()
    live = SilentListener()  # its own, so its count of connections is the in-flight state's alone
    states = {
        "scheduled": (custody_payloads(n, 3600), (), ()),
        "retrying": (custody_payloads(n, 0),
                     ("retries", "5", "backoff-min", "3600", "backoff-max", "3600", "concurrency", "100000",
                      "per-host", "1000"), ("--host-failures-to-open", "0")),
        "behind_host_cap": (custody_payloads(n, 0, f"http://127.0.0.1:{listener.port}/hook"),
                            ("concurrency", "100000", "per-host", "64", "timeout", "86400"), ()),
        "in_flight": (custody_payloads(n_live, 0, f"http://127.0.0.1:{live.port}/hook"),
                      ("concurrency", "100000", "per-host", str(n_live), "timeout", "86400"), ()),
    }
    # Behind the cap: settled once every task past the 64 on connections is in the host's line.
    field = {"behind_host_cap": "waiting_host"}
    want = {"behind_host_cap": n - 64}
    size = statistics.mean(len(p) for p in states["scheduled"][0])
    print(f"custody: tasks of {size:.0f} bytes in each state of custody ({n:,} scheduled, {n:,} retrying, "
          f"{n:,} sent to a silent host behind a per-host cap of 64, {n_live:,} in flight on a connection "
          f"each); respq vs redis-server holding the same payloads in a sorted set")
    redis_bytes = redis_zset_rss(states["scheduled"][0])
    try:
        for state, (payloads, extra, server_args) in states.items():
            connected = (lambda: len(live.conns)) if state == "in_flight" else None
            respq_bytes = custody_rss(payloads, field.get(state, state), extra, server_args, want.get(state),
                                      connected)
            print(f"  {state}: per task beyond its payload: respq {respq_bytes - size:.0f} bytes (target <= 150), "
                  f"redis-server sorted set {redis_bytes - size:.0f} bytes")
            row("custody", f"RSS per {state} task (bytes)", respq_bytes, redis_bytes, "B", higher_is_better=False)
    finally:
        listener.close()
        live.close()


def scrape_metrics(port, stop, times):
    """GET /metrics every 100 ms on one keep-alive connection until `stop` is set,
    recording each answer's time in ms."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 503:
            return  # the server is stopping (the end of the run): it answers 503 then
        if resp.status != 200 or b"respq_queue_tasks" not in body:
            raise RuntimeError(f"/metrics answered {resp.status}")
        times.append((time.perf_counter() - t0) * 1000)
        stop.wait(0.1)
    conn.close()


def run_respq_delivery_observed(url, n, observe):
    """run_respq_delivery with the admin port on and observe(admin_port, stop) running
    beside it in a thread from the moment the port answers until the run ends."""
    admin_port = free_port()
    stop, errors = threading.Event(), []

    def observe_when_up():
        import http.client
        try:
            harness.wait_port(admin_port)
            observe(admin_port, stop)
        except (OSError, http.client.HTTPException):
            pass  # the server stopped at the end of the run
        except Exception as e:  # noqa: BLE001 - reported after the run
            errors.append(e)

    t = threading.Thread(target=observe_when_up, daemon=True)
    t.start()
    try:
        result = run_respq_delivery(url, n, extra=("--admin-port", str(admin_port)))
    finally:
        stop.set()
        t.join()
    if errors:
        raise errors[0]
    return result


def run_respq_delivery_scraped(url, n):
    """A scraper hitting /metrics every 100 ms during the run; returns (result, scrape times)."""
    times = []
    return run_respq_delivery_observed(url, n, lambda port, stop: scrape_metrics(port, stop, times)), times


def section_admin():
    n = int(os.environ.get("RESPQ_BENCH_TASKS", "50000"))
    print(f"admin port: delivery of {n:,} tasks to nginx with the admin port on and /metrics scraped every "
          f"100 ms, vs off; then /metrics with 100 queues")
    with Nginx() as ng:
        url = f"http://127.0.0.1:{ng.port}/send_mail"
        on, off, scrapes = [], [], []
        for _ in range(max(ROUNDS, 5)):
            off.append(run_respq_delivery(url, n)[0])
            (rate, _), times = run_respq_delivery_scraped(url, n)
            on.append(rate)
            scrapes.extend(times)
        row("admin", "delivery rate, scraped 100 ms vs admin off", statistics.median(on), statistics.median(off),
            "task/s", target=0.97)
        print(f"  ({len(scrapes)} scrapes during the deliveries, median {statistics.median(scrapes):.2f} ms)")
        # 100 queues, each with a delivered task, so every histogram has samples.
        admin_port = free_port()
        queues = []
        for i in range(100):
            queues += ["--http-queue", f"queue{i:03d}"]
        with Respq("--admin-port", str(admin_port), *queues) as rq:
            c = rq.client()
            for i in range(100):
                c.lpush(f"queue{i:03d}", json.dumps({"url": url}))
            with rq.raw() as raw:
                while sum(1 for l in raw.cmd("INFO", "tasks").decode().splitlines() if ",delivered=1," in l) < 100:
                    time.sleep(0.01)
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
            times, size = [], 0
            cpu0 = cpu_seconds(rq.proc.pid)
            for _ in range(300):
                t0 = time.perf_counter()
                conn.request("GET", "/metrics")
                body = conn.getresponse().read()
                times.append((time.perf_counter() - t0) * 1000)
                size = len(body)
            cpu_ms = (cpu_seconds(rq.proc.pid) - cpu0) / 300 * 1000
            conn.close()
            times.sort()
            p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
            print(f"  /metrics with 100 queues: {size:,} bytes; respq's CPU per scrape (all threads) "
                  f"{cpu_ms:.2f} ms, which a busy machine does not inflate as it does the wall times")
            row("admin", "/metrics CPU per scrape, 100 queues (ms; ref 5)", cpu_ms, 5.0, "ms", higher_is_better=False,
                target=1.0)
            row("admin", "/metrics p50 with 100 queues (ms; ref = 5 ms)", p50, 5.0, "ms", higher_is_better=False,
                target=1.0)
            row("admin", "/metrics p99 with 100 queues (ms; ref = 5 ms)", p99, 5.0, "ms", higher_is_better=False,
                target=1.0)


def watch_dashboard(port, stop, counts, outcomes):
    """What an open dashboard asks of the server: the page's history once, then its live
    stream, read as a browser reads it, until `stop` is set: the overview's (the figures
    once a second) or, with `outcomes`, a queue page's (the figures and that queue's
    outcomes, at most 20 a second; the server counts the rest).
    counts: figures and outcome events seen."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/history")
    conn.getresponse().read()
    conn.request("GET", "/api/events?figures=1" + ("&queue=tasks&max_rate=20" if outcomes else "&outcomes=0"))
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"/api/events answered {resp.status}")
    buf = b""
    while not stop.is_set():
        chunk = resp.read1(65536)
        if not chunk:
            break
        buf += chunk
        *events, buf = buf.split(b"\n\n")
        for e in events:
            if e.startswith(b"event: figures"):
                counts["figures"] += 1
            elif e.startswith(b"event: skipped"):
                counts["skipped"] = counts.get("skipped", 0) + json.loads(e.split(b"data: ", 1)[1])["skipped"]
            elif e.startswith(b"data: "):
                counts["outcomes"] += 1
    conn.close()


def run_respq_delivery_watched(url, n, outcomes=False):
    """A dashboard open (watch_dashboard) during the run; returns (result, counts seen)."""
    counts = {"figures": 0, "outcomes": 0}
    return run_respq_delivery_observed(url, n, lambda port, stop: watch_dashboard(port, stop, counts, outcomes)), counts


def section_dashboard():
    n = int(os.environ.get("RESPQ_BENCH_TASKS", "50000"))
    print(f"dashboard: delivery of {n:,} tasks to nginx with the admin port on and the dashboard open "
          f"(overview: figures once a second; a queue's page: also its outcomes, 20 a second) vs not open")
    with Nginx() as ng:
        url = f"http://127.0.0.1:{ng.port}/send_mail"
        rates = {"off": [], "overview": [], "queue": []}
        cpu = {"off": [], "overview": [], "queue": []}
        seen = []
        for _ in range(max(ROUNDS, 5)):
            r, c = run_respq_delivery(url, n, extra=("--admin-port", str(free_port())))
            rates["off"].append(r)
            cpu["off"].append(c)
            (r, c), counts = run_respq_delivery_watched(url, n)
            rates["overview"].append(r)
            cpu["overview"].append(c)
            (r, c), counts_q = run_respq_delivery_watched(url, n, outcomes=True)
            rates["queue"].append(r)
            cpu["queue"].append(c)
            seen.append((counts, counts_q))
        med = {k: statistics.median(v) for k, v in rates.items()}
        per_k = {k: statistics.median(v) / n * 1e6 for k, v in cpu.items()}
        row("dashboard", "delivery rate, overview open vs not", med["overview"], med["off"], "task/s", target=0.99)
        row("dashboard", "respq CPU per 1k tasks, overview open vs not (ms)", per_k["overview"], per_k["off"], "ms",
            higher_is_better=False, target=0.99)
        row("dashboard", "delivery rate, queue page open vs not", med["queue"], med["off"], "task/s", target=0.99)
        row("dashboard", "respq CPU per 1k tasks, queue page vs not (ms)", per_k["queue"], per_k["off"], "ms",
            higher_is_better=False)
        print("  received per round (overview | queue page): " + ", ".join(
            f"{a['figures']} figures | {b['outcomes']:,} outcomes (+{b.get('skipped', 0):,} counted) + {b['figures']} figures"
            for a, b in seen))
    # What an open overview costs by itself, measured where load can't blur it: respq's
    # CPU time (all threads) over 10 s with 100 queues and 100,000 tasks waiting in the paused
    # queue tasks (the figures walk them for the memory figure), nothing open vs an overview open.
    admin_port = free_port()
    queues = []
    for i in range(100):
        queues += ["--http-queue", f"queue{i:03d}"]
    with Respq("--admin-port", str(admin_port), *queues) as rq:
        with rq.raw() as raw:
            raw.cmd("QUEUE", "PAUSE", "tasks")
        push_all(rq.port, push_wire(task_payloads("http://127.0.0.1:9/x", 100000)))
        spent = {}
        for kind in ("none", "overview", "none", "overview"):
            stop, counts = threading.Event(), {"figures": 0, "outcomes": 0}
            t = None
            if kind == "overview":
                t = threading.Thread(target=watch_dashboard, args=(admin_port, stop, counts, False), daemon=True)
                t.start()
                time.sleep(0.5)
            cpu0 = cpu_seconds(rq.proc.pid)
            time.sleep(10)
            spent.setdefault(kind, []).append((cpu_seconds(rq.proc.pid) - cpu0) / 10 * 1000)
            stop.set()
            if t:
                t.join()
        none, over = min(spent["none"]), min(spent["overview"])
        print(f"  idle with 100 queues and 100,000 waiting tasks: respq CPU {none:.2f} ms/s with nothing open, "
              f"{over:.2f} ms/s with an overview open: {over - none:.2f} ms per second, "
              f"{(over - none) / 10:.2f}% of one core")


def section_latency():
    rate, n = 1000, int(os.environ.get("RESPQ_BENCH_LATENCY_TASKS", "5000"))
    print(f"dispatch latency: {n:,} tasks at {rate}/s, LPUSH sent -> request received by the endpoint")
    results = {}
    for name in ("respq", "php"):
        port = free_port()
        rec = tempfile.mktemp(prefix="respq-sink-")
        sink = subprocess.Popen([HTTP_SINK, str(port), rec])
        harness.wait_port(port)
        url = f"http://127.0.0.1:{port}/send_mail"
        sent = {}
        if name == "respq":
            srv = Respq("--http-queue", "tasks", "concurrency", "64")
            client = srv.client()
            workers = []
        else:
            srv = RedisServer()
            client = srv.client()
            fd, script = tempfile.mkstemp(suffix=".php")
            with os.fdopen(fd, "w") as f:
                f.write(PHP_WORKER)
            workers = [subprocess.Popen(["php", script, str(srv.port), "3"], stdout=subprocess.PIPE) for _ in range(8)]
            time.sleep(0.5)
        try:
            client.ping()
            t0 = time.monotonic_ns()
            for i in range(n):
                # Pace by sleeping, then a short spin for precision: a producer that spins
                # the whole interval would take a core from the servers it measures.
                due = t0 + i * 1_000_000_000 // rate
                gap = due - time.monotonic_ns()
                if gap > 200_000:
                    time.sleep((gap - 150_000) / 1e9)
                while time.monotonic_ns() < due:
                    pass
                payload = json.dumps({"url": url, "param": {"i": i}})
                sent[i] = time.monotonic_ns()
                client.lpush("tasks", payload)
            time.sleep(0.5)
        finally:
            sink.terminate()
            sink.wait()
            for w in workers:
                w.communicate(timeout=30)
            srv.stop()
            srv.cleanup()
        lat = []
        with open(rec) as f:
            for line in f:
                i, ns = line.split()
                i = int(i)
                if i in sent:
                    lat.append((int(ns) - sent[i]) / 1e6)
        os.unlink(rec)
        lat.sort()
        if len(lat) != n:
            print(f"  {name}: only {len(lat)} of {n} requests arrived")
        results[name] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99)])
    row("latency", "dispatch latency p50 (ms)", results["respq"][0], results["php"][0], "ms", higher_is_better=False)
    row("latency", "dispatch latency p99 (ms)", results["respq"][1], results["php"][1], "ms", higher_is_better=False)
    print(f"  respq p99 {results['respq'][1]:.3f} ms (issue 6 target < 1 ms, issue 3 target < 2 ms)")


# ------------------------------------------------------------------------ scripting
EVAL_RPUSH = "return redis.call('rpush',KEYS[1],ARGV[1])"
# Laravel 8's RedisQueue::pushRaw() script, Illuminate\Queue\LuaScripts::push(), verbatim
# (php-illuminate-queue 8.83): what every dispatch() of a Laravel job runs, through EVAL.
LARAVEL_PUSH = ("-- Push the job onto the queue...\n"
                "redis.call('rpush', KEYS[1], ARGV[1])\n"
                "-- Push a notification onto the \"notify\" queue...\n"
                "redis.call('rpush', KEYS[2], 1)")
# A job payload shaped like the ones Laravel 8 builds (Queue::createPayloadArray).
LARAVEL_PAYLOAD = json.dumps({
    "uuid": "0f8b6c3e-5d1a-4a57-9a55-3c1f2e9b7d10", "displayName": "App\\Jobs\\SendWelcomeEmail",
    "job": "Illuminate\\Queue\\CallQueuedHandler@call", "maxTries": None, "maxExceptions": None,
    "failOnTimeout": False, "backoff": None, "timeout": None, "retryUntil": None,
    "data": {"commandName": "App\\Jobs\\SendWelcomeEmail",
             "command": 'O:25:"App\\Jobs\\SendWelcomeEmail":1:{s:4:"user";i:42;}'},
    "id": "J3kQ9zV1c8r2LmN4pX7aT5yB0wE6uH1d", "attempts": 0}, separators=(",", ":"))


def benchmark_command(port, n, pipeline, args, server_pid):
    """redis-benchmark with a command of its own: (ops/s, server CPU microseconds per op)."""
    cpu0 = cpu_seconds(server_pid)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(n), "-P", str(pipeline),
                          "--csv", *args], capture_output=True, text=True, timeout=600).stdout
    cpu = cpu_seconds(server_pid) - cpu0
    lines = [l for l in out.splitlines()[1:] if l.strip()]
    if not lines:
        raise RuntimeError(f"redis-benchmark printed no result: {out!r}")
    # "test","rps","avg_latency_ms",... five more: the test name (the command itself) may
    # hold commas and quotes, so the figure is read from the right.
    return float(lines[-1].split(",")[-7].strip('"')), cpu * 1e6 / n


def section_scripting():
    import hashlib
    n = 200000
    sha = hashlib.sha1(LARAVEL_PUSH.encode()).hexdigest()
    tests = [("EVAL rpush", ["EVAL", EVAL_RPUSH, "1", "q", "x"]),
             ("EVALSHA Laravel push", ["EVALSHA", sha, "2", "queues:default", "queues:default:notify",
                                       LARAVEL_PAYLOAD])]
    print(f"scripting: redis-benchmark -n {n:,} -c 50, EVAL \"{EVAL_RPUSH}\" 1 q x, and EVALSHA of Laravel 8's "
          f"push script ({len(LARAVEL_PAYLOAD)}-byte payload), loaded with SCRIPT LOAD on both servers "
          f"(median of {ROUNDS} alternating rounds)")
    ratios = []
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        for pipeline in (1, 16):
            results = {"respq": [], "redis": []}
            for _ in range(ROUNDS):
                for name, srv in (("respq", rq), ("redis", rs)):
                    cl = srv.client()
                    cl.flushall()
                    cl.script_flush()
                    loaded = cl.script_load(LARAVEL_PUSH)
                    assert loaded == sha, (name, loaded, sha)
                    r = {}
                    for label, args in tests:
                        r[label] = benchmark_command(srv.port, n, pipeline, args, srv.proc.pid)
                    # Every request ran its script: the lists hold one element per request.
                    assert cl.llen("q") == n and cl.llen("queues:default") == n, name
                    assert cl.llen("queues:default:notify") == n, name
                    results[name].append(r)
            med = lambda who, label, i: statistics.median(r[label][i] for r in results[who])
            for label, _ in tests:
                a, b = med("respq", label, 0), med("redis", label, 0)
                row("scripting", f"{label} -P {pipeline} (ops/s)", a, b, "ops/s", target=1.0)
                row("scripting", f"{label} -P {pipeline} CPU per op (us)", med("respq", label, 1),
                    med("redis", label, 1), "us", higher_is_better=False)
                if b:
                    ratios.append(a / b)
    if ratios:
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print(f"  geometric mean of the scripting throughput ratios: {gm:.2f} (target >= 1.0); "
              f"lowest {min(ratios):.2f}")
        rows.append(("scripting", "geometric mean", None, None, "", gm, 1.0, gm >= 1.0))


# ------------------------------------------------------------------------- streams
STREAM_VALUE = "v" * 100


def load_stream_entries(port, n, size):
    # XADD <key> * f <size bytes>, n times, through redis-cli --pipe, like a mass insert.
    val = b"v" * size
    cmd = b"*5\r\n$4\r\nXADD\r\n$12\r\nbench:stream\r\n$1\r\n*\r\n$1\r\nf\r\n$%d\r\n%s\r\n" % (size, val)
    p = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=cmd * n, capture_output=True, timeout=600)
    if b"errors: 0" not in p.stdout:
        raise RuntimeError(p.stdout.decode())


def section_streams_memory():
    n = 1_000_000
    print(f"streams memory: one stream of {n:,} entries of one 100-byte field (XADD * f <100 bytes>), "
          f"growth of process RSS and of INFO used_memory; load average {os.getloadavg()[0]:.2f}")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        res = {}
        for name, srv in (("respq", rq), ("redis", rs)):
            cl = srv.client()
            rss0, used0 = rss_kb(srv.proc.pid), cl.info("memory")["used_memory"]
            load_stream_entries(srv.port, n, 100)
            assert cl.xlen("bench:stream") == n, name
            res[name] = ((rss_kb(srv.proc.pid) - rss0) / 1024, (cl.info("memory")["used_memory"] - used0) / 2**20)
        row("streams", "RSS growth, 1M x 100 B entries (MB)", res["respq"][0], res["redis"][0], "MB",
            higher_is_better=False, target=1.0)
        row("streams", "used_memory growth, 1M x 100 B entries (MB)", res["respq"][1], res["redis"][1], "MB",
            higher_is_better=False, target=1.0)


def xconsume(port, n, consumers, count):
    out = list_bench("xconsume", port, n, consumers, count)
    if "entries_per_sec" not in out:
        raise RuntimeError(f"respq_list_bench xconsume failed against port {port}")
    return out["entries_per_sec"]


def section_streams():
    xadd = ["XADD", "bench:stream", "*", "f", STREAM_VALUE]
    print(f"streams: redis-benchmark -c 50 XADD bench:stream * f <100 bytes>; then n entries taken by "
          f"consumers of one group, XREADGROUP COUNT k + one XACK per batch (bench/list_bench.cpp xconsume); "
          f"median of {ROUNDS} alternating rounds; load average {os.getloadavg()[0]:.2f}")
    ratios = []
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        for pipeline, n in ((1, 200000), (16, 1000000)):
            res = {"respq": [], "redis": []}
            for _ in range(ROUNDS):
                for name, srv in (("respq", rq), ("redis", rs)):
                    cl = srv.client()
                    cl.flushall()
                    res[name].append(benchmark_command(srv.port, n, pipeline, xadd, srv.proc.pid))
                    # Every request added an entry.
                    assert cl.xlen("bench:stream") == n, (name, cl.xlen("bench:stream"))
                    cl.flushall()
            med = lambda who, i: statistics.median(r[i] for r in res[who])
            row("streams", f"XADD -P {pipeline} (ops/s)", med("respq", 0), med("redis", 0), "ops/s", target=1.0)
            row("streams", f"XADD -P {pipeline} server CPU per op (us)", med("respq", 1), med("redis", 1), "us",
                higher_is_better=False)
            ratios.append(med("respq", 0) / med("redis", 0))
        for consumers, count, n in ((1, 1, 30000), (4, 1, 40000), (4, 10, 200000), (4, 100, 500000)):
            res = {"respq": [], "redis": []}
            for _ in range(ROUNDS):
                for name, srv in (("respq", rq), ("redis", rs)):
                    cpu0 = cpu_seconds(srv.proc.pid)
                    rate = xconsume(srv.port, n, consumers, count)
                    # The server's CPU for loading and consuming, per entry.
                    res[name].append((rate, (cpu_seconds(srv.proc.pid) - cpu0) * 1e6 / n))
            med = lambda who, i: statistics.median(r[i] for r in res[who])
            label = f"XREADGROUP COUNT {count} + XACK, {consumers} consumer{'s' if consumers > 1 else ''}"
            row("streams", f"{label} (entries/s)", med("respq", 0), med("redis", 0), "/s", target=1.0)
            row("streams", f"{label}, server CPU per entry incl. XADD (us)", med("respq", 1), med("redis", 1), "us",
                higher_is_better=False)
            ratios.append(med("respq", 0) / med("redis", 0))
    gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    print(f"  geometric mean of the stream throughput ratios: {gm:.2f} (target >= 1.0); lowest {min(ratios):.2f}")
    rows.append(("streams", "geometric mean", None, None, "", gm, 1.0, gm >= 1.0))


# ------------------------------------------------------------------------- laravel
LARAVEL_PUSH_PHP = os.path.join(ROOT, "bench", "laravel_push.php")


def laravel_round(srv, client, producers, count):
    """`producers` PHP processes push `count` jobs each through RedisQueue::push, at the
    same time; returns (jobs/s summed over the producers, server CPU microseconds per
    job)."""
    srv.client().flushall()
    cpu0 = cpu_seconds(srv.proc.pid)
    procs = [subprocess.Popen(["php", LARAVEL_PUSH_PHP, str(srv.port), client, str(count), f"bench{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(producers)]
    rate = 0.0
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"laravel_push.php exited {p.returncode}: {err[-2000:]}")
        n, secs = out.split()
        rate += int(n) / float(secs)
    cpu = cpu_seconds(srv.proc.pid) - cpu0
    total = producers * (count + 200)  # the warm-up pushes count for the CPU too
    pushed = sum(srv.client().llen(f"laravel_database_queues:bench{i}") for i in range(producers))
    if pushed != total:
        raise RuntimeError(f"{pushed} jobs queued, {total} pushed")
    return rate, cpu * 1e6 / total


def section_laravel():
    count = int(os.environ.get("RESPQ_BENCH_LARAVEL_JOBS", "3000"))
    print(f"Laravel queue: jobs pushed per second through Illuminate\\Queue\\RedisQueue::push (Laravel 8.83, "
          f"an EVAL per job), {count:,} jobs per producer (median of {ROUNDS} alternating rounds)")
    with Respq("--http-queue", "tasks", "off") as rq, RedisServer() as rs:
        for client in ("phpredis", "predis"):
            for producers in (1, 4):
                res = {"respq": [], "redis": []}
                for _ in range(ROUNDS):
                    for name, srv in (("respq", rq), ("redis", rs)):
                        res[name].append(laravel_round(srv, client, producers, count))
                med = lambda who, i: statistics.median(r[i] for r in res[who])
                label = f"{client}, {producers} producer{'s' if producers > 1 else ''}"
                row("laravel", f"push {label} (jobs/s)", med("respq", 0), med("redis", 0), "jobs/s")
                row("laravel", f"push {label}, server CPU per job (us)", med("respq", 1), med("redis", 1), "us",
                    higher_is_better=False)


def section_scaleout():
    """Shared queues (issue 19): tasks/s through one upstream redis-server with 1, 2 and 3
    sidecars delivering to nginx (return 204), and the reclaim time after a kill -9."""
    n = int(os.environ.get("RESPQ_BENCH_SCALEOUT_TASKS", "20000"))
    print(f"Scale-out: {n:,} tasks LPUSHed on one upstream redis-server, taken by 1-3 sidecars "
          "(shared queue, concurrency 128 each), delivered to nginx")
    with Nginx() as ng:
        url = f"http://127.0.0.1:{ng.port}/send_mail"
        wire = push_wire(task_payloads(url, n))
        for k in (1, 2, 3):
            rates = []
            for _ in range(ROUNDS):
                with RedisServer() as up:
                    cars = [Respq("--upstream", "127.0.0.1", str(up.port), "--node-id", f"bench-{i}",
                                  "--http-queue", "tasks", "shared", "yes", "concurrency", "128", "per-host", "128")
                            for i in range(k)]
                    try:
                        raws = [c.raw() for c in cars]
                        for r in raws:
                            r.__enter__()
                        deadline = time.time() + 10
                        while not all(tasks_info(r).get("taker") == "up" for r in raws) and time.time() < deadline:
                            time.sleep(0.01)
                        cpu0 = cpu_seconds(up.proc.pid)
                        t0 = time.time()
                        push_all(up.port, wire)
                        while sum(int(tasks_info(r)["delivered"]) for r in raws) < n:
                            time.sleep(0.005)
                        dt = time.time() - t0
                        rates.append((n / dt, (cpu_seconds(up.proc.pid) - cpu0) / dt))
                        for r in raws:
                            r.__exit__(None, None, None)
                    finally:
                        for c in cars:
                            c.stop()
                            c.cleanup()
            med = statistics.median(r[0] for r in rates)
            up_cpu = statistics.median(r[1] for r in rates)
            per_task = statistics.median(r[1] / r[0] * 1e6 for r in rates)
            print(f"  {k} sidecar{'s' if k > 1 else ' '}: {med:9.0f} tasks/s  (upstream redis-server busy "
                  f"{up_cpu * 100:4.0f}% of a core, {per_task:5.1f} us CPU per task; runs "
                  f"{' '.join(f'{r[0]:.0f}' for r in rates)})")
    # Reclaim: a sidecar holding tasks dies; how long until another moved them back.
    nt = float(os.environ.get("RESPQ_BENCH_NODE_TIMEOUT", "5"))
    with RedisServer() as up, harness.HttpEndpoint(server="python") as ep:
        cars = [Respq("--upstream", "127.0.0.1", str(up.port), "--node-id", f"r-{i}", "--node-timeout", str(nt),
                      "--shutdown-grace", "0",
                      "--http-queue", "tasks", "shared", "yes", "concurrency", "4") for i in range(3)]
        try:
            u = up.client()
            for i in range(12):
                u.lpush("tasks", json.dumps({"url": ep.url("/slow", sleep=60), "id": f"slow-{i}"}))
            key = "tasks:processing:r-0"
            while u.llen(key) < 4:
                time.sleep(0.01)
            cars[0].kill9()
            t0 = time.time()
            while u.llen(key) > 0 and time.time() - t0 < 10 * nt:
                time.sleep(0.01)
            took = time.time() - t0
            print(f"  reclaim after kill -9 (node-timeout {nt:g} s): the dead sidecar's 4 tasks back in the "
                  f"queue after {took:.2f} s ({took / nt:.2f} x node-timeout; bound 2 x)")
        finally:
            for c in cars:
                c.stop()
                c.cleanup()


def section_script(name):
    path = os.path.join(ROOT, "bench", name)
    if os.path.exists(path):
        print(f"{name}:")
        subprocess.run([path], check=False)


SECTIONS = {
    "queue": section_queue,
    "memory": section_memory,
    "defaults": section_defaults,
    "sets": section_sets,
    "blocking": section_blocking,
    "pubsub": section_pubsub,
    "zsets": section_zsets,
    "delivery": section_delivery,
    "egress": section_egress,
    "https": section_https,
    "latency": section_latency,
    "custody": section_custody,
    "admin": section_admin,
    "dashboard": section_dashboard,
    "scripting": section_scripting,
    "laravel": section_laravel,
    "streams": section_streams,
    "streams-memory": section_streams_memory,
    "aof": lambda: section_script("aof.sh"),
    "mirror": lambda: section_script("mirror.sh"),
    "scaleout": section_scaleout,
}


def main():
    wanted = sys.argv[1:] or list(SECTIONS)
    for w in wanted:
        if w not in SECTIONS:
            sys.exit(f"unknown section {w!r}; sections: {' '.join(SECTIONS)}")
    print(f"respq benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, rounds={ROUNDS})\n")
    for w in wanted:
        SECTIONS[w]()
        print()
    if rows:
        print("summary")
        for section, metric, a, b, unit, ratio, target, ok in rows:
            if ratio is None:
                continue
            mark = "" if ok is None else ("  meets target" if ok else "  BELOW target")
            t = "" if target is None else f" (target {target})"
            print(f"  {section:<9} {metric:<44} ratio {ratio:6.2f}{t}{mark}")


if __name__ == "__main__":
    main()
