"""RQ 1.13 (Debian's python3-rq), unchanged, against the broker: jobs enqueued with RQ's
Queue API, run by the real `rq worker` command (burst mode, and a long-running worker
with its scheduler), results read back through RQ's Job API, failures in the
FailedJobRegistry with their tracebacks, retries and dependencies.

RQ 1.13 writes each result to a stream (XADD, read back with XREVRANGE) when the server
reports Redis 5 or later; on a server without streams the whole file is skipped (exit
77), and it runs in full on redis-server (RESPQ_TEST_TARGET=redis).

The jobs are in jobs/rq_jobs.py, importable by the worker through PYTHONPATH.
"""
import os
import sys
import time
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.join(HERE, "jobs")
sys.path.insert(0, HERE)
sys.path.insert(0, JOBS)
import rq_jobs  # noqa: E402
from harness import JobWorker, Respq, Skip, run_tests, wait_until  # noqa: E402
from rq import Queue, Retry, Worker  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402
from rq.registry import (FailedJobRegistry, FinishedJobRegistry,  # noqa: E402
                         ScheduledJobRegistry)
from rq.results import Result  # noqa: E402


class Setup:
    def __init__(self):
        self.r = Respq()
        # RQ 1.13 keeps every job result in a stream (XADD rq:results:<id> MAXLEN ~ 10,
        # read back with XREVRANGE) on any server whose INFO says redis_version >= 5: on a
        # server without stream commands its worker dies on the first job it finishes.
        with self.r.raw() as raw:
            # An unknown command's entry is a null, a known one's an array.
            has_streams = raw.cmd("COMMAND", "INFO", "XADD").startswith(b"*1\r\n*")
        if not has_streams:
            self.r.__exit__(None, None, None)
            raise Skip("RQ 1.13 stores job results in streams (XADD, XREVRANGE), which this "
                       "server does not have")
        self.url = f"redis://127.0.0.1:{self.r.port}/0"
        self.log = os.path.join(self.r.dir, "jobs.log")
        self.env = dict(os.environ, JOBS_LOG=self.log,
                        PYTHONPATH=os.pathsep.join([JOBS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        os.environ["JOBS_LOG"] = self.log
        self.c = self.r.client()
        self.workers = []

    def worker(self, *args, burst=True):
        argv = ["rq", "worker", "--url", self.url, "--name", f"w{len(self.workers)}"]
        if burst:
            argv.append("--burst")
        w = JobWorker("rq-worker", argv + list(args), env=self.env)
        self.workers.append(w)
        return w

    def burst(self, *queues):
        """Runs `rq worker --burst` on queues until it has emptied them; returns its output."""
        w = self.worker(*queues)
        code = w.wait_exit(timeout=60)
        out = w.log_text()
        assert code == 0, f"rq worker exited {code}:\n{out[-4000:]}"
        return out

    def dump_log(self):
        self.r.dump_log()
        for w in self.workers:
            w.dump_log()

    def __exit__(self, *a):
        for w in self.workers:
            w.__exit__(None, None, None)
        self.r.__exit__(None, None, None)


def test_a_burst_worker_runs_queued_jobs_and_their_results_read_back(s):
    q = Queue("default", connection=s.c)
    high = Queue("high", connection=s.c)
    adds = [q.enqueue(rq_jobs.add, i, 10 * i) for i in range(5)]
    by_name = q.enqueue("rq_jobs.add", 2, 3)
    meta = q.enqueue(rq_jobs.describe, meta={"owner": "test"}, job_id="described")
    urgent = high.enqueue(rq_jobs.add, 100, 1)
    assert len(q) == 7 and len(high) == 1
    assert q.job_ids == [j.id for j in adds] + [by_name.id, "described"]
    assert adds[0].get_status() == JobStatus.QUEUED

    out = s.burst("high", "default")
    assert "done, quitting" in out, out[-2000:]

    for i, j in enumerate(adds):
        assert j.get_status(refresh=True) == JobStatus.FINISHED, (i, j.get_status())
        assert j.return_value(refresh=True) == 11 * i
        assert Job.fetch(j.id, connection=s.c).result == 11 * i
    assert by_name.return_value() == 5
    assert urgent.return_value() == 101
    assert meta.return_value() == {"id": "described", "origin": "default",
                                   "meta": {"owner": "test"}, "args": []}
    # The worker took the high queue first.
    urgent.refresh()
    assert all(urgent.ended_at <= Job.fetch(j.id, connection=s.c).started_at for j in adds)
    assert len(q) == 0 and len(high) == 0
    finished = FinishedJobRegistry(queue=q)
    assert set(finished.get_job_ids()) == {j.id for j in adds} | {by_name.id, "described"}
    assert FailedJobRegistry(queue=q).count == 0
    # Its results are RQ Result records, with the time they were written.
    latest = adds[3].latest_result()
    assert latest.type == Result.Type.SUCCESSFUL and latest.return_value == 33
    # The burst worker registered itself and left the worker set on its way out.
    assert Worker.all(connection=s.c) == []


def test_a_failing_job_lands_in_the_failed_registry_with_its_traceback(s):
    q = Queue("default", connection=s.c)
    job = q.enqueue(rq_jobs.fail, "boom-42")
    s.burst("default")
    assert job.get_status(refresh=True) == JobStatus.FAILED
    failed = FailedJobRegistry(queue=q)
    assert failed.get_job_ids() == [job.id]
    assert job.id in failed
    exc = Job.fetch(job.id, connection=s.c).exc_info
    assert "Traceback" in exc and "ValueError: boom-42" in exc, exc
    latest = job.latest_result()
    assert latest.type == Result.Type.FAILED and "ValueError: boom-42" in latest.exc_string

    # Requeued from the failed registry (as `rq requeue` does), it fails once more: two
    # results, newest first.
    failed.requeue(job.id)
    assert failed.count == 0 and q.job_ids == [job.id]
    s.burst("default")
    assert failed.get_job_ids() == [job.id]
    results = job.results()
    assert [r.type for r in results] == [Result.Type.FAILED, Result.Type.FAILED]
    assert results[0].created_at >= results[1].created_at


def test_a_retried_job_and_a_dependent_job_both_finish(s):
    q = Queue("default", connection=s.c)
    flaky = q.enqueue(rq_jobs.flaky, "f1", retry=Retry(max=2))
    parent = q.enqueue(rq_jobs.add, 1, 2)
    child = q.enqueue(rq_jobs.add, 3, 4, depends_on=parent)
    # The child waits, deferred, until its parent has finished.
    assert child.get_status() == JobStatus.DEFERRED
    assert q.job_ids == [flaky.id, parent.id]
    s.burst("default")
    assert flaky.get_status(refresh=True) == JobStatus.FINISHED
    assert flaky.return_value() == 2
    assert s.c.get("flaky:f1") == b"2"
    assert child.get_status(refresh=True) == JobStatus.FINISHED
    assert child.return_value() == 7
    # Its first failure was retried, not recorded as a failure: one result, the success.
    assert flaky.id not in FailedJobRegistry(queue=q)
    assert [(r.type, r.return_value) for r in flaky.results()] == [(Result.Type.SUCCESSFUL, 2)]


def test_a_long_running_worker_takes_new_jobs_and_runs_a_scheduled_one_on_time(s):
    q = Queue("default", connection=s.c)
    w = s.worker("--with-scheduler", "default", burst=False)
    wait_until(lambda: w.alive() and len(Worker.all(connection=s.c)) == 1, timeout=30,
               interval=0.05, what="the rq worker to register")
    # The worker waits in BLPOP: a job enqueued now runs at once.
    t0 = time.time()
    now = q.enqueue(rq_jobs.record, "now")
    wait_until(lambda: now.get_status(refresh=True) == JobStatus.FINISHED, timeout=20,
               what="the job enqueued while the worker waits")
    assert time.time() - t0 < 10
    t1 = time.time()
    later = q.enqueue_in(timedelta(seconds=2), rq_jobs.record, "later")
    assert later.get_status() == JobStatus.SCHEDULED
    scheduled = ScheduledJobRegistry(queue=q)
    assert scheduled.get_job_ids() == [later.id]
    # Scored in whole seconds: the job is due at that second, not before.
    due = scheduled.get_scheduled_time(later.id).timestamp()
    assert int(t1 + 2) <= due <= t1 + 3, (t1, due)
    wait_until(lambda: later.get_status(refresh=True) == JobStatus.FINISHED, timeout=30,
               interval=0.05, what="the scheduled job")
    lines = dict(line.split(" ") for line in open(s.log).read().splitlines())
    assert float(lines["later"]) >= due, (lines, due)
    assert ScheduledJobRegistry(queue=q).count == 0
    # TERM: a warm shutdown, and the worker takes itself out of the worker set. Sent while
    # the worker waits in BLPOP, as an idle worker does: redis-py 4.3 keeps a connection
    # whose command was sent but whose reply it had not begun to read when the signal came,
    # and RQ's goodbye then queues behind that BLPOP for its 405 s (on Redis as here).
    wait_until(lambda: any("flags=b" in c and "cmd=blpop" in c
                           for c in s.c.execute_command("CLIENT", "LIST").decode().splitlines()),
               timeout=20, interval=0.05, what="the worker to wait in BLPOP")
    assert w.stop(timeout=20) == 0, w.log_text()[-4000:]
    assert "Warm shut down requested" in w.log_text()
    assert Worker.all(connection=s.c) == []


if __name__ == "__main__":
    run_tests(globals(), setup=Setup)
