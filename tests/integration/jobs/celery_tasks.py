"""Celery tasks for test_jobs_celery.py: the app the real `celery worker` loads
(-A celery_tasks, on PYTHONPATH) and the test sends to. Broker and result backend are
both the server under test, from CELERY_BROKER_URL and CELERY_RESULT_BACKEND."""
import os
import time

import redis
from celery import Celery

app = Celery("celery_tasks", broker=os.environ["CELERY_BROKER_URL"],
             backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=600,
    task_track_started=True,
    broker_connection_retry_on_startup=False,
    worker_prefetch_multiplier=4,
)


@app.task
def add(x, y):
    return x + y


@app.task
def stamp(tag):
    """When the worker ran it, as epoch seconds."""
    return {"tag": tag, "at": time.time()}


@app.task
def fail(message):
    raise ValueError(message)


@app.task
def total(numbers):
    return sum(numbers)


@app.task(bind=True, max_retries=3)
def flaky(self, key):
    """Fails on its first run and asks Celery to retry it a second later."""
    r = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    attempt = r.incr(key)
    if attempt == 1:
        raise self.retry(exc=RuntimeError("first attempt fails on purpose"), countdown=1)
    return {"attempt": attempt, "retries": self.request.retries}
