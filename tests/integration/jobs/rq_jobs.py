"""RQ jobs for test_jobs_rq.py, imported by the real `rq worker` (on PYTHONPATH) and by
the test that enqueues them. A job's side effects go to its own Redis connection (the
one the worker gives it) or to the file $JOBS_LOG, one line per run."""
import os
import time

from rq import get_current_job


def add(a, b):
    return a + b


def record(tag):
    """Appends "<tag> <epoch seconds>" to $JOBS_LOG; returns the tag."""
    with open(os.environ["JOBS_LOG"], "a") as f:
        f.write(f"{tag} {time.time():.6f}\n")
    return tag


def fail(message):
    raise ValueError(message)


def flaky(tag):
    """Fails on its first run, returns the run number after."""
    attempt = get_current_job().connection.incr(f"flaky:{tag}")
    if attempt == 1:
        raise RuntimeError(f"attempt {attempt} of {tag} fails on purpose")
    return attempt


def describe():
    """What the worker tells a job about itself."""
    job = get_current_job()
    return {"id": job.id, "origin": job.origin, "meta": job.meta, "args": list(job.args)}
