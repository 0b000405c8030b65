"""Helpers shared by the persistence integration tests: a dump of a whole dataset (to
compare a server before and after a restart), pipelined pushers that record what was
acknowledged, and a small HTTP endpoint that logs the X-Task-Id of every request and can
be taken down and brought back on the same port."""
import http.server
import socket
import threading
import time

from harness import RawConn


def dataset(client):
    """{key: value} for every key: lists as lists, hashes as dicts, strings as bytes, sets
    as sets, sorted sets as (member, score) lists in order, streams as their metadata and
    entries."""
    out = {}
    for k in client.keys("*"):
        t = client.type(k)
        if t == b"list":
            out[k] = ("list", client.lrange(k, 0, -1))
        elif t == b"hash":
            out[k] = ("hash", client.hgetall(k))
        elif t == b"string":
            out[k] = ("string", client.get(k))
        elif t == b"set":
            out[k] = ("set", client.smembers(k))
        elif t == b"zset":
            out[k] = ("zset", client.zrange(k, 0, -1, withscores=True))
        elif t == b"stream":
            info = client.xinfo_stream(k)
            meta = tuple(info[f] for f in ("length", "last-generated-id", "entries-added",
                                            "max-deleted-entry-id", "recorded-first-entry-id"))
            out[k] = ("stream", meta, client.xrange(k, "-", "+"))
        else:
            out[k] = (t, None)
    return out


class Pusher(threading.Thread):
    """Pipelines LPUSH <key> <name>-<seq> in batches and records the highest seq whose
    reply came back. Stops on the first connection error (the server was killed)."""

    def __init__(self, port, name, key="q", batch=16, stop_after=None):
        super().__init__(daemon=True)
        self.port, self.name, self.key, self.batch = port, name, key, batch
        self.acked = -1          # highest acknowledged seq (acks arrive in order)
        self.errors = []         # error replies (none expected)
        self.stop_flag = False
        self.stop_after = stop_after

    def run(self):
        try:
            conn = RawConn(self.port, timeout=30)
        except OSError:
            return
        seq = 0
        try:
            while not self.stop_flag and (self.stop_after is None or seq < self.stop_after):
                n = self.batch if self.stop_after is None else min(self.batch, self.stop_after - seq)
                conn.send(b"".join(RawConn.encode("LPUSH", self.key, f"{self.name}-{seq + i}") for i in range(n)))
                for i in range(n):
                    reply = conn.read_reply()
                    if not reply.startswith(b":"):
                        self.errors.append(reply)
                        return
                    self.acked = seq + i
                seq += n
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()


def check_pushes(elements, pushers):
    """The list (LRANGE 0 -1 of an LPUSH-ed key) holds, per pusher, seq 0..k in push
    order with k >= its last acknowledged seq: nothing acknowledged is lost, nothing is
    duplicated, and the order is kept. Returns {name: k}."""
    by_name = {p.name: [] for p in pushers}
    for e in reversed(elements):          # LPUSH: the oldest element is at the right end
        name, seq = e.decode().rsplit("-", 1)
        by_name[name].append(int(seq))
    found = {}
    for p in pushers:
        seqs = by_name[p.name]
        assert seqs == list(range(len(seqs))), \
            f"{p.name}: elements out of order, duplicated or missing: {seqs[:20]}...{seqs[-20:]}"
        assert len(seqs) - 1 >= p.acked, \
            f"{p.name}: acknowledged up to {p.acked} but only {len(seqs)} elements survived"
        found[p.name] = len(seqs) - 1
    return found


class Endpoint:
    """An HTTP endpoint on a fixed port answering 200 and logging X-Task-Id and
    X-Task-Attempt. down() closes the listener (new connections are refused, requests on
    kept-alive ones get 503), up() listens again on the same port."""

    def __init__(self, port=None):
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.log = []            # (task id, attempt, time)
        self.lock = threading.Lock()
        self.server = None
        self.thread = None

    def up(self):
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if endpoint.server is None:
                    # Down: a request on a connection kept alive from before fails too.
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    return
                with endpoint.lock:
                    endpoint.log.append((self.headers.get("X-Task-Id"), self.headers.get("X-Task-Attempt"),
                                         time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def down(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self):
        with self.lock:
            return [i for i, _, _ in self.log]

    def entries(self):
        with self.lock:
            return list(self.log)


def groups_state(c, counters=True, times=True):
    """Every stream's groups as XINFO STREAM FULL shows them, seen-times left out;
    without `counters` also entries-read and lag, without `times` delivery times."""
    out = {}
    for k in sorted(c.keys("*")):
        if c.type(k) != b"stream":
            continue
        full = c.execute_command("XINFO", "STREAM", k, "FULL", "COUNT", "0")
        full = dict(zip(full[::2], full[1::2]))
        groups = []
        for g in full[b"groups"]:
            g = dict(zip(g[::2], g[1::2]))
            consumers = []
            for cons in g[b"consumers"]:
                cons = dict(zip(cons[::2], cons[1::2]))
                pending = cons[b"pending"] if times else [(p[0], p[2]) for p in cons[b"pending"]]
                consumers.append((cons[b"name"], cons[b"pel-count"], pending))
            pending = g[b"pending"] if times else [(p[0], p[1], p[3]) for p in g[b"pending"]]
            read = (g[b"entries-read"], g[b"lag"]) if counters else None
            groups.append((g[b"name"], g[b"last-delivered-id"], read, g[b"pel-count"], pending, consumers))
        out[k] = groups
    return out
