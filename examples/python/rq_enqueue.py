#!/usr/bin/python3
"""RQ on respq, unchanged: jobs enqueued with RQ's Queue, run by the real `rq worker`,
and their results read back with RQ's Job API. RQ 1.13 keeps each result in a stream
(XADD, XREVRANGE), which respq has.

    python3 examples/python/rq_enqueue.py [--count N] [--timeout S]
    # Enqueued 3 jobs on queue default; waiting for a worker ...
    rq worker --burst --url redis://127.0.0.1:6380 --path examples/python
    # the worker runs every queued job, then exits; the script prints each result:
    # 7adc...: count_words('the quick brown fox') = 4

Start the worker in a second terminal while the script waits (--burst: it exits once
the queue is empty; without it, it waits for more jobs). Needs RQ 1.x (Debian: apt
install python3-rq; or pip install 'rq<2').

Environment (used when no option is given): RESPQ_HOST, RESPQ_PORT (default
127.0.0.1:6380).
"""
import argparse
import os
import sys
import time

from redis import Redis
from rq import Queue

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rq_tasks import count_words  # noqa: E402

TEXTS = ["the quick brown fox", "jumps over the lazy dog", "respq runs RQ unchanged",
         "one", "a task broker that speaks the Redis protocol"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("RESPQ_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("RESPQ_PORT", "6380")))
    p.add_argument("--count", type=int, default=3, help="jobs to enqueue (default 3)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for the results")
    a = p.parse_args()

    q = Queue("default", connection=Redis(host=a.host, port=a.port))
    jobs = [q.enqueue(count_words, TEXTS[i % len(TEXTS)]) for i in range(a.count)]
    print(f"Enqueued {len(jobs)} jobs on queue default; waiting for a worker "
          f"(rq worker --burst --url redis://{a.host}:{a.port} --path examples/python)", flush=True)

    deadline = time.monotonic() + a.timeout
    pending = list(jobs)
    while pending and time.monotonic() < deadline:
        for job in list(pending):
            status = job.get_status(refresh=True)
            if status == "finished":
                print(f"{job.id}: count_words({job.args[0]!r}) = {job.result}", flush=True)
                pending.remove(job)
            elif status == "failed":
                print(f"{job.id}: failed\n{job.exc_info}", flush=True)
                pending.remove(job)
        time.sleep(0.1)
    if pending:
        print(f"{len(pending)} of {len(jobs)} jobs did not finish within {a.timeout:g} s")
        return 1
    print(f"All {len(jobs)} jobs ran; queue default holds {len(q)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
