#!/usr/bin/env python3
"""Enqueues mail tasks on respq with redis-py, the same tasks as examples/php/producer.php.

    python3 producer.py [--count 10000] [--host 127.0.0.1] [--port 6380]
                        [--url http://127.0.0.1:8080/send_mail] [--batch NAME]

Environment (defaults for the options): RESPQ_HOST, RESPQ_PORT, MAIL_ENDPOINT.
Needs redis-py (`pip install redis`, or the python3-redis package).
"""
import argparse
import json
import os
import secrets
import sys
import time

import redis

QUEUE = "tasks"
CHUNK = 1000  # commands per round trip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--host", default=os.environ.get("RESPQ_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("RESPQ_PORT", "6380")))
    ap.add_argument("--url", default=os.environ.get("MAIL_ENDPOINT", "http://127.0.0.1:8080/send_mail"))
    ap.add_argument("--batch", default=time.strftime("welcome-%Y%m%d-%H%M%S-") + secrets.token_hex(2))
    args = ap.parse_args()

    r = redis.Redis(host=args.host, port=args.port, socket_connect_timeout=2)
    started = time.perf_counter()
    try:
        for first in range(0, args.count, CHUNK):
            # transaction=False: a plain pipeline, one round trip per chunk, no MULTI/EXEC.
            pipe = r.pipeline(transaction=False)
            for i in range(first, min(first + CHUNK, args.count)):
                pipe.lpush(QUEUE, json.dumps({
                    "url": args.url,
                    "param": {"to": f"user{i}@example.com",
                              "subject": f"Welcome aboard, user {i}",
                              "batch": args.batch},
                }))
            pipe.execute()
    except redis.RedisError as e:
        sys.exit(f"respq at {args.host}:{args.port}: {e}")
    ms = (time.perf_counter() - started) * 1000
    print(f"Enqueued {args.count} tasks for {args.url} in {ms:.1f} ms (batch {args.batch})")


if __name__ == "__main__":
    main()
