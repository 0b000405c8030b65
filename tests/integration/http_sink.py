"""A threaded HTTP endpoint for the HTTP worker tests: one thread per connection, HTTP/1.1
keep-alive, and the same behaviour and log lines as php/http_endpoint.php (see there for
the fields and the path / query string controls).

php -S is the realistic endpoint, but one of its workers may accept two connections that
arrive together and serve them one after the other, which hides concurrency and delays a
request behind a slow one. Tests that measure concurrency, rates or latency, or keep slow
requests in flight, use this server instead:

    python3 http_sink.py PORT LOGFILE

Beyond the router's controls, `?hold=NAME` keeps the request waiting (after it is logged)
until GET /_release/NAME arrives (or 120 s pass), so tests can keep attempts in flight
for as long as they need without a sleep that could race; /_release is not logged.
`?answer=TEXT` answers with TEXT as the body instead of the JSON summary.
"""
import base64
import email.utils
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
HITS = {}     # key -> requests seen
GROUPS = {}   # group -> requests in progress
HOLDS = {}    # hold name -> threading.Event, set by GET /_release/NAME
LOG = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "http-sink"
    disable_nagle_algorithm = True   # headers and body go out in two writes

    def log_message(self, fmt, *args):  # quiet: the JSON lines are the log
        pass

    def handle_any(self):
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        path, query = split.path or "/", split.query
        if path.startswith("/_release/"):
            name = path[len("/_release/"):]
            with LOCK:
                HOLDS.setdefault(name, threading.Event()).set()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        q = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        headers = {}
        for k, v in self.headers.items():
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        task_id = next((v for k, v in headers.items() if k.lower() == "x-task-id"), "")
        key = q.get("key", task_id)
        group = q.get("group")
        with LOCK:
            HITS[key] = hit = HITS.get(key, 0) + 1
            in_progress = None
            if group is not None:
                GROUPS[group] = in_progress = GROUPS.get(group, 0) + 1
        try:
            status = 200
            parts = path.split("/")
            if len(parts) == 3 and parts[1] == "status" and parts[2].isdigit() and len(parts[2]) == 3:
                status = int(parts[2])
            elif "status" in q:
                status = int(q["status"])
            if "fail_first" in q:
                status = int(q.get("fail_status", 503)) if hit <= int(q["fail_first"]) else 200
            rec = {"t": arrived, "method": self.command, "path": path, "uri": self.path, "query": query,
                   "headers": headers, "pid": threading.get_ident(), "peer": self.client_address[1],
                   "status": status, "hit": hit,
                   "in_progress": in_progress}
            try:
                rec["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                rec["body_b64"] = base64.b64encode(body).decode()
            line = json.dumps(rec, ensure_ascii=False) + "\n"
            with LOCK:
                LOG.write(line.encode())
                LOG.flush()
            if "sleep" in q:
                time.sleep(float(q["sleep"]))
            if "hold" in q:
                with LOCK:
                    ev = HOLDS.setdefault(q["hold"], threading.Event())
                ev.wait(120)
            answer = q["answer"].encode() if "answer" in q else \
                json.dumps({"ok": 200 <= status < 300, "status": status, "hit": hit}).encode() + b"\n"
            # No longer in progress once its answer starts: counted after the answer was
            # sent, a request the client makes as soon as it has the answer could find this
            # one still counted (this thread not yet run again).
            if group is not None:
                with LOCK:
                    GROUPS[group] -= 1
                group = None
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if not 200 <= status < 300:
                    if "retry_after" in q:
                        self.send_header("Retry-After", q["retry_after"])
                    elif "retry_after_date" in q:
                        self.send_header("Retry-After",
                                         email.utils.formatdate(time.time() + int(q["retry_after_date"]),
                                                                usegmt=True))
                self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True   # the client gave up (its timeout)
        finally:
            if group is not None:
                with LOCK:
                    GROUPS[group] -= 1

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024   # a burst of connections must not overflow the backlog
    allow_reuse_address = True


def main():
    global LOG
    port, logfile = int(sys.argv[1]), sys.argv[2]
    LOG = open(logfile, "ab")
    server = Server(("127.0.0.1", port), Handler)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
