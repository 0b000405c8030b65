"""Runs every program in examples/ for real, so that none can rot.

One broker and one mail endpoint (examples/php/send_mail.php under php -S) serve all the
cases. Each producer run tags its mails with its own batch name, and the endpoint's log
(one JSON line per request) tells which mails arrived, under which X-Task-Id, and whether
any arrived twice.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SOURCE_DIR, JobWorker, PhpServer, Respq, free_port, run,  # noqa: E402
                     run_tests, wait_until)

EXAMPLES = os.path.join(SOURCE_DIR, "examples")
PHP_DIR = os.path.join(EXAMPLES, "php")
NODE_DIR = os.path.join(EXAMPLES, "node")
TASKS_SH = os.path.join(EXAMPLES, "redis-cli", "tasks.sh")
SEND_MAIL = os.path.join(PHP_DIR, "send_mail.php")
SIGNED_WEBHOOK = os.path.join(PHP_DIR, "signed_webhook.php")
# Standard Webhooks secrets: the endpoint's, and one it does not know.
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_c2Vjb25kIHNlY3JldCwgdW5rbm93bg=="
SIDEKIQ_RB = os.path.join(EXAMPLES, "ruby", "sidekiq_mail.rb")
PYTHON_DIR = os.path.join(EXAMPLES, "python")


class MailEndpoint(PhpServer):
    """send_mail.php under php -S with several workers (stopped with its process group,
    as every harness server is)."""
    name = "mail-endpoint"

    def __init__(self, mail_log, port=None, workers=4):
        super().__init__(SEND_MAIL, port=port, env={"MAIL_LOG": mail_log}, workers=workers)


class Servers:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="respq-examples-")
        self.mail_log = os.path.join(self.dir, "mail.log")
        # "mail": a second HTTP queue without retries, for the dead-letter case; "hooks" and
        # "forged" sign their requests, with the endpoint's secret and with another one.
        self.json_port = free_port()
        self.r = Respq("--http-queue", "mail", "retries", "0", "--json-port", str(self.json_port),
                       "--http-queue", "hooks", "retries", "0", "signing-secret", HOOK_SECRET,
                       "--http-queue", "forged", "retries", "0", "signing-secret", OTHER_SECRET)
        try:
            self.endpoint = MailEndpoint(self.mail_log)
        except Exception:
            self.r.__exit__(None, None, None)
            raise
        self.url = f"http://127.0.0.1:{self.endpoint.port}/send_mail"
        self.client = self.r.client(decode_responses=True)
        self.workers = []  # job library workers (sidekiq, rq, celery), stopped at the end
        # What every example reads when no option is given.
        self.env = dict(os.environ, RESPQ_HOST="127.0.0.1", RESPQ_PORT=str(self.r.port),
                        RESPQ_JSON_PORT=str(self.json_port), MAIL_ENDPOINT=self.url)

    def mails(self, batch=None, to=None):
        """The endpoint's log entries, optionally only one batch's or one address's."""
        try:
            with open(self.mail_log, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return []
        # Every line but the last is complete; the last may be half written.
        entries = [json.loads(line) for line in lines[:-1]]
        return [e for e in entries
                if (batch is None or e["batch"] == batch) and (to is None or e["to"] == to)]

    def sent(self, batch):
        return sum(1 for e in self.mails(batch) if e["status"] == "sent")

    def wait_batch(self, batch, count, timeout=60):
        """Waits until the endpoint got `count` mails of the batch, then checks each one
        arrived exactly once: one request per task id, one per address."""
        try:
            wait_until(lambda: self.sent(batch) >= count, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"batch {batch}: {self.sent(batch)} of {count} mails arrived "
                                 f"within {timeout}s; INFO tasks: {self.client.info('tasks')}") from None
        time.sleep(0.2)  # a duplicate would show up right behind
        entries = self.mails(batch)
        dups = [e for e in entries if e["status"] != "sent"]
        assert not dups, f"{len(dups)} mails of batch {batch} arrived more than once: {dups[:3]}"
        assert len(entries) == count, f"batch {batch}: {len(entries)} requests for {count} tasks"
        ids = {e["task_id"] for e in entries}
        assert len(ids) == count and "" not in ids, f"batch {batch}: {len(ids)} distinct X-Task-Id"
        assert {e["to"] for e in entries} == {f"user{i}@example.com" for i in range(count)}
        return entries

    def wait_queue_idle(self, queue="tasks", timeout=30):
        wait_until(lambda: self.client.llen(queue) == 0 and self.client.hlen(f"{queue}:inflight") == 0,
                   timeout=timeout, what=f"queue {queue} idle")

    def worker(self, name, argv, env):
        w = JobWorker(name, argv, env=env)
        self.workers.append(w)
        return w

    def dump_log(self):
        self.r.dump_log()
        self.endpoint.dump_log()
        for w in self.workers:
            w.dump_log()

    def __exit__(self, *a):
        for w in self.workers:
            w.__exit__(None, None, None)
        self.endpoint.__exit__(None, None, None)
        self.r.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)


class LineReader:
    """A background process whose stdout lines are collected as they come."""

    def __init__(self, argv, env, cwd=None):
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout):
        """The exit code, or "timeout" (the process is then stopped)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
        self.stop()
        self.thread.join(5)
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr(self):
        return self.proc.stderr.read() if self.proc.stderr else ""


def wait_subscribers(s, channel, n, timeout=10):
    wait_until(lambda: dict(s.client.pubsub_numsub(channel)).get(channel) == n, timeout=timeout,
               what=f"{n} subscriber(s) on {channel}")


def enqueued_ms(output):
    """The time a producer reports, from 'Enqueued N tasks for URL in X ms (batch B)'."""
    line = next(l for l in output.splitlines() if l.startswith("Enqueued "))
    return float(line.split(" in ")[1].split(" ms")[0])


# ---- PHP ------------------------------------------------------------------------------------

def test_php_producer_enqueues_10000_mails_and_returns_before_they_are_delivered(s):
    batch, count = "php-cli", 10000
    t0 = time.time()
    p = run(["php", os.path.join(PHP_DIR, "producer.php"), f"--count={count}", f"--port={s.r.port}",
             f"--url={s.url}", f"--batch={batch}"], timeout=60)
    returned = time.time() - t0
    at_return = s.sent(batch)
    assert f"Enqueued {count} tasks for {s.url}" in p.stdout, p.stdout
    # The point of the product: the page is done long before the mail is.
    assert at_return < count, f"all {count} mails were delivered before producer.php returned"
    s.wait_batch(batch, count, timeout=90)
    delivered = time.time() - t0
    s.wait_queue_idle()
    print(f"  php producer: {count} tasks enqueued in {enqueued_ms(p.stdout):.0f} ms, script returned "
          f"after {returned:.2f}s with {at_return} delivered; all {count} delivered exactly once after "
          f"{delivered:.2f}s ({count / delivered:.0f}/s through php -S)", flush=True)


def test_php_producer_as_a_web_page(s):
    batch, count = "php-web", 50
    with PhpServer(os.path.join(PHP_DIR, "producer.php"),
                   env={"RESPQ_PORT": str(s.r.port), "MAIL_ENDPOINT": s.url}) as web:
        base = f"http://127.0.0.1:{web.port}/"
        with urllib.request.urlopen(base, timeout=10) as resp:
            form = resp.read().decode()
        assert resp.status == 200 and "<form" in form, form
        assert s.sent(batch) == 0, "a GET must not enqueue anything"
        body = urllib.parse.urlencode({"count": count, "batch": batch}).encode()
        with urllib.request.urlopen(base, data=body, timeout=30) as resp:
            page = resp.read().decode()
        assert resp.status == 200 and f"Enqueued {count} tasks for {s.url}" in page, page
    s.wait_batch(batch, count)


def test_php_json_client_writes_raw_json_tasks_to_the_json_port(s):
    # The seed app's own client: fwrite(json_encode(...)) on a plain TCP socket.
    batch, count = "php-json-port", 200
    p = run(["php", os.path.join(PHP_DIR, "json_client.php"), f"--count={count}", f"--batch={batch}"],
            env=s.env, timeout=60)
    assert f"Wrote {count} tasks for {s.url}" in p.stdout, p.stdout
    s.wait_batch(batch, count)
    s.wait_queue_idle()


def test_results_subscriber_prints_each_outcome(s):
    sub = LineReader(["php", os.path.join(PHP_DIR, "results.php"), "--count=6", "--timeout=30"], env=s.env)
    try:
        wait_subscribers(s, "tasks:results", 1)
        run(["php", os.path.join(PHP_DIR, "producer.php"), "--count=5", "--batch=php-results"],
            env=s.env, timeout=30)
        # A mail without an address: the endpoint answers 422, a final answer.
        s.client.lpush("tasks", json.dumps({"url": s.url, "param": {"subject": "no address"}}))
        rc = sub.wait(timeout=30)
    finally:
        sub.stop()
    out = "\n".join(sub.lines)
    assert rc == 0, f"results.php exited {rc}\n{out}\n{sub.stderr()}"
    delivered = [l for l in sub.lines if l.startswith("delivered") and "batch=php-results" in l]
    dead = [l for l in sub.lines if l.startswith("dead")]
    assert len(delivered) == 5 and all(" 200 " in l for l in delivered), out
    assert len(dead) == 1 and " 422 " in dead[0] and "HTTP 422 is final" in dead[0], out
    assert sub.lines[-1].startswith("6 outcomes:"), out
    s.wait_batch("php-results", 5)
    record = json.loads(s.client.rpop("tasks:dead"))
    assert record["code"] == 422 and "no address" in record["payload"], record


def test_laravel_queue_example_pushes_over_phpredis_and_predis_and_laravels_worker_runs_every_job(s):
    script = os.path.join(PHP_DIR, "laravel_queue.php")
    mail_log = os.path.join(s.dir, "laravel-mail.log")
    env = dict(s.env, LARAVEL_MAIL_LOG=mail_log)
    queue = "laravel_database_queues:default"
    pushes = [(["--count=100"], "Pushed 100 jobs onto queue default in ", 100),
              (["--count=50", "--client=predis"], "Pushed 50 jobs onto queue default in ", 150),
              (["--count=5", "--delay=1"], "Pushed 5 jobs onto queue default (delayed 1 s) in ", 155)]
    for args, expect, waiting in pushes:
        out = run(["php", script, "push"] + args, env=env, timeout=60).stdout
        assert out.startswith(expect) and out.endswith(f"; {waiting} waiting\n"), out
    assert s.client.llen(queue) == 150 and s.client.zcard(queue + ":delayed") == 5
    assert s.client.llen(queue + ":notify") == 150
    job = json.loads(s.client.lindex(queue, 0))
    assert job["displayName"] == "WelcomeMail" and job["job"] == "Illuminate\\Queue\\CallQueuedHandler@call", job
    assert job["attempts"] == 0 and len(job["id"]) == 32 and 'user0@example.com' in job["data"]["command"], job

    out = run(["php", script, "work"], env=env, timeout=60).stdout
    assert out == "Ran 155 jobs; queue default is empty\n", out
    with open(mail_log) as f:
        mails = [json.loads(line) for line in f]
    assert len(mails) == 155 and len({m["job_id"] for m in mails}) == 155, mails[:5]
    assert all(m["attempt"] == 1 for m in mails), [m for m in mails if m["attempt"] != 1]
    sent = sorted(m["to"] for m in mails)
    expected = sorted([f"user{i}@example.com" for i in range(100)] + [f"user{i}@example.com" for i in range(50)]
                      + [f"user{i}@example.com" for i in range(5)])
    assert sent == expected
    assert s.client.keys("laravel_database_*") == [], s.client.keys("laravel_database_*")


# ---- Python and Node ------------------------------------------------------------------------

def test_python_producer(s):
    batch, count = "python", 1000
    p = run([sys.executable, os.path.join(EXAMPLES, "python", "producer.py"), "--count", str(count),
             "--batch", batch], env=s.env, timeout=60)
    assert f"Enqueued {count} tasks for {s.url}" in p.stdout, p.stdout
    s.wait_batch(batch, count)


def test_node_producer(s):
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    assert not missing, (f"{' and '.join(missing)} not found on PATH: the Node example needs Node.js "
                         "and npm (e.g. apt-get install nodejs npm)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")):
        p = run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, timeout=300, check=False)
        assert p.returncode == 0, (f"`npm ci` in examples/node failed (exit {p.returncode}); is the npm "
                                   f"registry reachable?\n{p.stdout}\n{p.stderr}")
    batch, count = "node", 1000
    p = run(["node", os.path.join(NODE_DIR, "producer.js"), "--count", str(count), "--port", str(s.r.port),
             "--url", s.url, "--batch", batch], timeout=60)
    assert f"Enqueued {count} tasks for {s.url}" in p.stdout, p.stdout
    s.wait_batch(batch, count)


# ---- Job libraries: Sidekiq, RQ, Celery -------------------------------------------------------

def test_sidekiq_example_pushes_now_and_later_and_the_sidekiq_server_runs_every_job(s):
    mail_log = os.path.join(s.dir, "sidekiq-mail.log")
    env = dict(s.env, SIDEKIQ_MAIL_LOG=mail_log)
    t0 = time.time()
    out = run(["ruby", SIDEKIQ_RB, "20", "2"], env=env, timeout=60).stdout
    assert out.startswith("Pushed 20 jobs and 1 due in 2 s in ") and out.endswith(
        " ms; 20 enqueued, 1 scheduled\n"), out
    assert s.client.llen("queue:default") == 20 and s.client.zcard("schedule") == 1

    sidekiq = s.worker("sidekiq", ["sidekiq", "-r", SIDEKIQ_RB], env=env)

    def mails():
        try:
            with open(mail_log) as f:
                return [json.loads(line) for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def all_ran():
        assert sidekiq.alive(), f"sidekiq exited:\n{sidekiq.log_text()[-4000:]}"
        return len(mails()) >= 21

    try:
        wait_until(all_ran, timeout=60, interval=0.1, what="the 21 Sidekiq jobs")
    except AssertionError:
        raise AssertionError(f"{len(mails())} of 21 jobs ran:\n{sidekiq.log_text()[-4000:]}") from None
    assert sidekiq.stop(timeout=30) == 0, sidekiq.log_text()[-4000:]
    ran = mails()
    assert len(ran) == 21 and len({m["jid"] for m in ran}) == 21, ran
    welcome = sorted(m["to"] for m in ran if m["subject"] == "Welcome aboard")
    assert welcome == sorted(f"user{i}@example.com" for i in range(20)), welcome
    [reminder] = [m for m in ran if m["subject"] == "Still there?"]
    # perform_in(2): the poller's Lua script (EVALSHA) moved it only when due.
    assert reminder["to"] == "reminder@example.com" and reminder["at"] >= t0 + 2, (reminder, t0)
    assert s.client.llen("queue:default") == 0 and s.client.zcard("schedule") == 0
    assert s.client.get("stat:processed") == "21" and s.client.get("stat:failed") in (None, "0")


def test_rq_example_enqueues_and_reads_back_the_results_of_a_burst_worker(s):
    env = dict(s.env, PYTHONPATH=os.pathsep.join(p for p in [PYTHON_DIR, os.environ.get("PYTHONPATH")] if p))
    producer = LineReader([sys.executable, os.path.join(PYTHON_DIR, "rq_enqueue.py"), "--count", "5",
                           "--timeout", "60"], env=env)
    try:
        wait_until(lambda: producer.lines or producer.proc.poll() is not None, timeout=30,
                   what="rq_enqueue.py's first line")
        assert producer.lines and producer.lines[0].startswith("Enqueued 5 jobs on queue default;"), (
            producer.lines, producer.stderr())
        assert s.client.llen("rq:queue:default") == 5
        # The command the example prints, with the test's port.
        worker = s.worker("rq-worker", ["rq", "worker", "--burst", "--url", f"redis://127.0.0.1:{s.r.port}",
                                        "--path", PYTHON_DIR], env=env)
        code = worker.wait_exit(timeout=60)
        assert code == 0, f"rq worker exited {code}:\n{worker.log_text()[-4000:]}"
        rc = producer.wait(timeout=60)
    finally:
        producer.stop()
    assert rc == 0, (rc, producer.lines, producer.stderr())
    results = [line.split(": ", 1)[1] for line in producer.lines[1:-1]]
    assert results == ["count_words('the quick brown fox') = 4", "count_words('jumps over the lazy dog') = 5",
                       "count_words('respq runs RQ unchanged') = 4", "count_words('one') = 1",
                       "count_words('a task broker that speaks the Redis protocol') = 8"], producer.lines
    assert producer.lines[-1] == "All 5 jobs ran; queue default holds 0", producer.lines
    assert s.client.llen("rq:queue:default") == 0
    # RQ 1.13 kept each result in a stream of its own.
    assert len(s.client.keys("rq:results:*")) == 5 and s.client.type(s.client.keys("rq:results:*")[0]) == "stream"


def test_celery_example_sends_tasks_to_a_worker_and_gets_their_results(s):
    env = dict(s.env)
    worker = s.worker("celery-worker", [sys.executable, "-m", "celery", "--workdir", PYTHON_DIR, "-A", "celery_app",
                                        "worker", "--loglevel=INFO", "--hostname=example@respq-test"], env=env)
    worker.wait_log("example@respq-test ready.", timeout=60)
    t0 = time.time()
    out = run([sys.executable, os.path.join(PYTHON_DIR, "celery_app.py")], env=env, timeout=120).stdout
    assert out == ("add(1, 10) = 11\nadd(2, 20) = 22\nadd(3, 30) = 33\n"
                   "word_count('the quick brown fox jumps over the lazy dog') = 9\n"), out
    assert time.time() - t0 >= 1.0  # the word count had a one-second countdown
    assert worker.stop(timeout=30) == 0, worker.log_text()[-4000:]
    log = worker.log_text()
    assert log.count("Task celery_app.add[") >= 3 and "Task celery_app.word_count[" in log, log[-4000:]
    # The results went through the backend, database 1 of the broker.
    backend = s.r.client(db=1, decode_responses=True)
    metas = [json.loads(backend.get(k)) for k in backend.keys("celery-task-meta-*")]
    assert sorted(m["result"] for m in metas) == [9, 11, 22, 33] and {m["status"] for m in metas} == {"SUCCESS"}

# ---- redis-cli ------------------------------------------------------------------------------

def tasks_sh(s, *args, queue="tasks", endpoint=None, timeout=30):
    env = dict(s.env, QUEUE=queue, MAIL_ENDPOINT=endpoint or s.url)
    return run([TASKS_SH] + list(args), env=env, timeout=timeout)


def test_redis_cli_script_push_watch_inspect_and_replay(s):
    # watch + push: the outcome of the pushed task shows up on tasks:results.
    watch = LineReader([TASKS_SH, "watch"], env=s.env)
    try:
        wait_subscribers(s, "tasks:results", 1)
        assert tasks_sh(s, "push", "shell@example.com", 'Hi "from" the shell').stdout.strip().isdigit()
        outcome = wait_until(lambda: next((json.loads(l) for l in watch.lines
                                           if l.startswith("{") and "shell%40example.com" in l), None),
                             timeout=20, what="the outcome on the watch output")
    finally:
        watch.stop()
    assert outcome["status"] == "delivered" and outcome["code"] == 200, outcome
    [mail] = s.mails(to="shell@example.com")
    assert mail["subject"] == 'Hi "from" the shell' and mail["task_id"] == outcome["id"], mail

    # stats and inflight: a task scheduled a minute ahead waits in tasks:inflight.
    s.client.lpush("tasks", json.dumps({"url": s.url, "id": "later-1", "delay": 60,
                                        "param": {"to": "later@example.com", "subject": "later"}}))
    wait_until(lambda: s.client.hexists("tasks:inflight", "later-1"), what="the scheduled task")
    stats = tasks_sh(s, "stats").stdout
    assert "pending:   0" in stats and "in flight: 1" in stats and "dead:      0" in stats, stats
    assert "# Tasks" in stats and "tasks:pending=" in stats, stats
    inflight = tasks_sh(s, "inflight").stdout.splitlines()
    assert inflight[0] == "later-1" and json.loads(inflight[1])["state"] == "scheduled", inflight
    s.client.hdel("tasks:inflight", "later-1")  # cancels it

    # dead + replay: the endpoint is down, the task dies (queue "mail" has no retries);
    # once the endpoint is back, replay delivers it under the same task id. A task the
    # endpoint refuses (422) dies again and is replayed once, not over and over.
    down_port = free_port()
    down_url = f"http://127.0.0.1:{down_port}/send_mail"
    tasks_sh(s, "push", "replay@example.com", "Second chance", queue="mail", endpoint=down_url)
    tasks_sh(s, "push", "not an address", "Never", queue="mail")
    wait_until(lambda: s.client.llen("mail:dead") == 2, what="two tasks in mail:dead")
    dead = [json.loads(l) for l in tasks_sh(s, "dead", "5", queue="mail").stdout.splitlines()]
    [down] = [d for d in dead if "replay@example.com" in d["payload"]]
    [refused] = [d for d in dead if "not an address" in d["payload"]]
    assert down["attempts"] == 1 and down["code"] == 0 and down["error"], down
    assert refused["code"] == 422, refused
    with MailEndpoint(s.mail_log, port=down_port):
        assert tasks_sh(s, "replay", queue="mail").stdout.strip() == "replayed 2 tasks"
        mail = wait_until(lambda: s.mails(to="replay@example.com"), timeout=20, what="the replayed mail")
        s.wait_queue_idle("mail")
    assert mail == s.mails(to="replay@example.com") and len(mail) == 1, mail
    assert mail[0]["task_id"] == down["id"] and mail[0]["status"] == "sent", mail
    [again] = [json.loads(d) for d in s.client.lrange("mail:dead", 0, -1)]
    assert again["id"] == refused["id"] and again["code"] == 422, again


# ---- signed webhooks ------------------------------------------------------------------------

def test_php_endpoint_verifies_respqs_signatures_and_refuses_others(s):
    log = os.path.join(s.dir, "webhook.log")
    with PhpServer(SIGNED_WEBHOOK, env={"WEBHOOK_SECRET": HOOK_SECRET, "WEBHOOK_LOG": log}, workers=2) as ep:
        base = f"http://127.0.0.1:{ep.port}/hook"

        def entries():
            try:
                with open(log, encoding="utf-8") as f:
                    return [json.loads(l) for l in f.read().split("\n")[:-1]]
            except FileNotFoundError:
                return []

        tasks = [("hooks", {"url": base, "method": "POST", "json": {"event": "user.created", "user": 1},
                            "id": "hook-json"}),
                 ("hooks", {"url": base, "method": "POST", "body": "raw \u00e9 body", "id": "hook-raw"}),
                 ("hooks", {"url": base, "param": {"a": "b c"}, "id": "hook-get"}),
                 ("forged", {"url": base, "method": "POST", "json": {"event": "x"}, "id": "hook-forged"})]
        for queue, task in tasks:
            s.client.lpush(queue, json.dumps(task))
        wait_until(lambda: len(entries()) >= 4, timeout=20, what="four requests at the signed endpoint")
        by_id = {e["id"]: e for e in entries()}
        assert {i: by_id[i]["verdict"] for i in by_id} == {"hook-json": "ok", "hook-raw": "ok", "hook-get": "ok",
                                                          "hook-forged": "bad signature"}, by_id
        assert json.loads(by_id["hook-json"]["body"]) == {"event": "user.created", "user": 1}
        assert by_id["hook-raw"]["body"] == "raw \u00e9 body" and by_id["hook-get"]["body"] == ""
        for e in by_id.values():
            assert abs(int(e["timestamp"]) - e["time"]) < 5, e
        s.wait_queue_idle("hooks")
        wait_until(lambda: s.client.llen("forged:dead") == 1, what="the forged task in forged:dead")
        dead = json.loads(s.client.lindex("forged:dead", 0))
        assert dead["id"] == "hook-forged" and dead["code"] == 401 and dead["reason"] == "HTTP 401 is final", dead
        assert s.client.llen("hooks:dead") == 0

        # Requests respq did not sign, or signed too long ago, are refused by the endpoint.
        def post(headers, body=b"{}"):
            req = urllib.request.Request(base, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status
            except urllib.error.HTTPError as e:
                return e.code
        import base64
        import hashlib
        import hmac
        key = base64.b64decode(HOOK_SECRET[len("whsec_"):])

        def signed(ts, body=b"{}", msg_id="manual-1"):
            mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
            return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
                    "webhook-signature": "v1," + base64.b64encode(mac).decode()}
        now = int(time.time())
        assert post(signed(now)) == 200
        assert post(signed(now), body=b'{"tampered": 1}') == 401
        assert post(signed(now - 3600)) == 400
        assert post({}) == 400
        assert post(dict(signed(now), **{"webhook-signature": "v1,AAAA v2,xyz " + signed(now)["webhook-signature"]})) \
            == 200, "any one matching v1 signature among several is enough"


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
