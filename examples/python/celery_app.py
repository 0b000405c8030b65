#!/usr/bin/python3
"""Celery on respq, unchanged: respq is both Celery's broker (database 0) and its result
backend (database 1), with plain redis:// URLs. A worker runs the tasks; this script,
run directly, sends some with delay() and reads their results back with result.get().

    python3 -m celery --workdir examples/python -A celery_app worker --loglevel=INFO
    # (in a second terminal)
    python3 examples/python/celery_app.py
    # add(2, 3) = 5
    # word_count('the quick brown fox') = 4
    # ...

Needs Celery 5 (Debian: apt install python3-celery; or pip install 'celery[redis]').

Environment: RESPQ_HOST, RESPQ_PORT (default 127.0.0.1:6380).
"""
import os
import sys

from celery import Celery

BASE = f"redis://{os.environ.get('RESPQ_HOST', '127.0.0.1')}:{os.environ.get('RESPQ_PORT', '6380')}"

app = Celery("celery_app", broker=f"{BASE}/0", backend=f"{BASE}/1")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                result_expires=3600)


# The tasks have explicit names, so that the worker (which imports this file as the module
# celery_app) and this script run directly (as __main__) mean the same tasks.
@app.task(name="celery_app.add")
def add(x, y):
    return x + y


@app.task(name="celery_app.word_count")
def word_count(text):
    return len(text.split())


def main():
    timeout = float(os.environ.get("CELERY_RESULT_TIMEOUT", "60"))
    sums = [(x, x * 10, add.delay(x, x * 10)) for x in range(1, 4)]
    text = "the quick brown fox jumps over the lazy dog"
    words = word_count.apply_async((text,), countdown=1)  # runs a second from now (an ETA)
    for x, y, result in sums:
        print(f"add({x}, {y}) = {result.get(timeout=timeout)}")
    print(f"word_count({text!r}) = {words.get(timeout=timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
