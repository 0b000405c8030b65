"""The jobs of rq_enqueue.py. They live in a module of their own because `rq worker`
imports each job's function by its module path (rq_tasks.count_words): a function
defined in the script that enqueues would be __main__.count_words, which no worker can
import. Start the worker with this directory on its import path (--path)."""


def count_words(text):
    """The number of words in text: the job's result, kept by RQ for the producer."""
    return len(text.split())
