"""Sidekiq 6.4 (Debian's ruby-sidekiq, with ruby-redis 4.8), unchanged, against the
broker: its client pushes jobs (now, in bulk, on a second queue, scheduled), the real
`sidekiq` server process runs them, a job that fails once comes back through the retry
set, and Sidekiq's own API then reads the counters and sets back. Sidekiq moves due jobs
out of the schedule and retry sorted sets with a Lua script (SCRIPT LOAD + EVALSHA, and
SCRIPT LOAD again on NOSCRIPT), and fetches with BRPOP over two queues.

The jobs are in jobs/sidekiq_worker.rb; each run appends a line to a log file, so what
ran is read from outside the broker.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import JobWorker, Respq, run, run_tests, wait_until  # noqa: E402

JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobs")
WORKER_RB = os.path.join(JOBS, "sidekiq_worker.rb")
CLIENT_RB = os.path.join(JOBS, "sidekiq_client.rb")

# Poll the schedule and retry sets about once a second (the default is every 5 s after a
# first wait of 10-15 s), two worker threads, at most 5 s to finish jobs on TERM.
CONFIG = """\
:concurrency: 2
:timeout: 5
:poll_interval_average: 1
:queues:
  - critical
  - default
"""


class Setup:
    def __init__(self):
        self.r = Respq()
        self.log = os.path.join(self.r.dir, "jobs.log")
        self.env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{self.r.port}/0", JOBS_LOG=self.log)
        self.config = os.path.join(self.r.dir, "sidekiq.yml")
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.sidekiq = None

    def client(self, *args):
        p = run(["ruby", CLIENT_RB] + [str(a) for a in args], env=self.env, timeout=60)
        return json.loads(p.stdout.strip().splitlines()[-1])

    def runs(self):
        """Every job run so far: [(class, tag, time, attempt)]."""
        try:
            with open(self.log) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            cls, tag, at, attempt = line.split(" ")
            out.append((cls, tag, float(at), int(attempt)))
        return out

    def wait_runs(self, pred, what, timeout=30.0):
        try:
            wait_until(lambda: self.sidekiq_alive() and pred(self.runs()), timeout=timeout,
                       interval=0.05, what=what)
            return self.runs()
        except AssertionError:
            raise AssertionError(f"{what}; runs so far: {self.runs()}\nsidekiq:\n"
                                 f"{self.sidekiq.log_text()[-4000:] if self.sidekiq else ''}")

    def sidekiq_alive(self):
        if not self.sidekiq.alive():
            raise AssertionError(f"sidekiq exited with {self.sidekiq.proc.returncode}:\n"
                                 f"{self.sidekiq.log_text()[-4000:]}")
        return True

    def dump_log(self):
        self.r.dump_log()
        if self.sidekiq is not None:
            self.sidekiq.dump_log()

    def __exit__(self, *a):
        if self.sidekiq is not None:
            self.sidekiq.__exit__(None, None, None)
        self.r.__exit__(None, None, None)


def tags(runs, cls=None):
    return sorted(t for c, t, _, _ in runs if cls is None or c == cls)


def test_jobs_pushed_before_the_server_starts_all_run_once(s):
    pushed = s.client("push", 5)
    assert len(pushed["jids"]) == 5 and len(set(pushed["jids"])) == 5, pushed
    assert len(pushed["bulk"]) == 2, pushed
    c = s.r.client()
    assert c.llen("queue:default") == 8 and c.llen("queue:critical") == 1
    assert c.smembers("queues") == {b"default", b"critical"}

    s.sidekiq = JobWorker("sidekiq", ["sidekiq", "-r", WORKER_RB, "-C", s.config], env=s.env)
    # Ready when its heartbeat has registered the process in the "processes" set.
    wait_until(lambda: s.sidekiq_alive() and c.scard("processes") == 1, timeout=60,
               interval=0.05, what="sidekiq's heartbeat")
    want = sorted([f"now-{i}" for i in range(1, 6)] + ["bulk-1", "bulk-2"])
    s.wait_runs(lambda runs: tags(runs, "RecordJob") == want, f"RecordJob runs {want}")
    s.wait_runs(lambda runs: tags(runs, "CriticalJob") == ["crit"], "the critical job")
    crit = [r for r in s.runs() if r[0] == "CriticalJob"][0]
    assert crit[3] == 7, crit  # its hash argument came through the JSON payload
    assert c.llen("queue:default") == 0 and c.llen("queue:critical") == 0


def test_a_job_that_fails_once_is_retried_from_the_retry_set(s):
    runs = s.wait_runs(lambda runs: len([r for r in runs if r[0] == "FlakyJob"]) == 2,
                       "two runs of the flaky job")
    flaky = [r for r in runs if r[0] == "FlakyJob"]
    assert [r[3] for r in flaky] == [1, 2], flaky
    # The retry was scheduled one second after the failure, and the poller moves it out
    # of the retry set only when it is due.
    assert flaky[1][2] - flaky[0][2] >= 1.0, flaky
    c = s.r.client()
    assert c.zcard("retry") == 0 and c.zcard("dead") == 0
    assert c.get("flaky:flaky-1") == b"2"


def test_jobs_pushed_while_the_server_waits_in_brpop_run_at_once(s):
    pushed = s.client("push_more", 3)
    t0 = time.time()
    want = [f"more-{i}" for i in range(1, 4)]
    s.wait_runs(lambda runs: all(t in tags(runs, "RecordJob") for t in want), "the second batch",
                timeout=20)
    # BRPOP is woken by the push: far sooner than its 2 s timeout would allow each time.
    assert time.time() - t0 < 10
    assert len(pushed["jids"]) == 3


def test_a_scheduled_job_runs_after_its_time_and_not_before(s):
    sched = s.client("schedule", "later-1", 4.0)
    c = s.r.client()
    # While it waits it is in the schedule sorted set, scored by its time.
    waiting = c.zrange("schedule", 0, -1, withscores=True)
    assert time.time() < sched["at"], "the schedule client took too long to check the set"
    assert len(waiting) == 1 and json.loads(waiting[0][0])["jid"] == sched["jid"], (waiting, sched)
    assert abs(waiting[0][1] - sched["at"]) < 1e-3, (waiting, sched)
    runs = s.wait_runs(lambda runs: "later-1" in tags(runs), "the scheduled job", timeout=20)
    ran = [r for r in runs if r[1] == "later-1"]
    assert len(ran) == 1 and ran[0][2] >= sched["at"], (ran, sched)
    assert c.zcard("schedule") == 0


def test_the_poller_reloads_its_script_after_script_flush(s):
    c = s.r.client()
    sha = s.client("stats")["zpopbyscore_sha"]
    assert c.script_exists(sha) == [True]  # loaded by the poller with SCRIPT LOAD
    assert c.script_flush() is True
    assert c.script_exists(sha) == [False]
    sched = s.client("schedule", "later-2", 1.0)
    # The poller's cached EVALSHA now gets NOSCRIPT; Sidekiq loads the script again.
    runs = s.wait_runs(lambda runs: "later-2" in tags(runs), "the job scheduled after SCRIPT FLUSH",
                       timeout=20)
    ran = [r for r in runs if r[1] == "later-2"]
    assert len(ran) == 1 and ran[0][2] >= sched["at"], (ran, sched)
    assert c.script_exists(sha) == [True]


def test_sidekiq_api_sees_empty_sets_and_queues(s):
    stats = s.client("stats")
    assert stats["scheduled"] == 0 and stats["retry"] == 0 and stats["dead"] == 0, stats
    assert stats["enqueued"] == 0, stats
    assert stats["queues"] == {"default": 0, "critical": 0}, stats
    assert len(stats["processes"]) == 1, stats


def test_term_stops_the_server_cleanly_and_flushes_its_counters(s):
    c = s.r.client()
    assert c.scard("processes") == 1
    code = s.sidekiq.stop(timeout=20)
    log = s.sidekiq.log_text()
    assert code == 0, f"sidekiq exited {code}:\n{log[-4000:]}"
    assert "Shutting down" in log and "Bye!" in log, log[-4000:]
    # Nothing went wrong along the way (heartbeat, poller and fetch log their errors as
    # ERROR); the one warning is the flaky job's planned failure.
    assert " ERROR: " not in log, log[-4000:]
    warnings = [line for line in log.splitlines() if " WARN: " in line]
    assert len(warnings) == 3 and "attempt 1 of flaky-1 fails on purpose" in warnings[1], warnings
    # It took itself out of the process set, and wrote its processed/failed counts.
    assert c.scard("processes") == 0
    runs = s.runs()
    stats = s.client("stats")
    assert stats["processed"] == len(runs), (stats, len(runs))
    assert stats["failed"] == 1, stats
    assert stats["processes"] == [], stats
    # Every job ran exactly once, except the flaky one (twice).
    assert len(runs) == 5 + 2 + 1 + 2 + 3 + 1 + 1, runs


if __name__ == "__main__":
    run_tests(globals(), setup=Setup)
