"""Helpers for the Redis link tests (test_link_*.py): sidecars pointed at a real
redis-server, the link's INFO, its connections on the upstream, and comparing the
keyspaces of respq and the upstream."""
import json

from harness import RawConn, Respq, info_field, parse_info, wait_until


def sidecar(upstream, node, *args, **kw):
    """respq with the link to `upstream` (a RedisServer) as node `node`."""
    return Respq("--upstream", "127.0.0.1", str(upstream.port), "--node-id", node, "--loglevel", "verbose",
                 *args, **kw)


def mirror_info(respq):
    """INFO mirror as a dict of strings."""
    with RawConn(respq.port) as c:
        reply = c.cmd("INFO", "mirror")
    assert reply.startswith(b"$"), reply
    return parse_info(reply.split(b"\r\n", 1)[1]).get("mirror", {})


def shared_info(respq, queue):
    """The INFO tasks line of a shared queue as a dict of strings (its link figures
    included: taker, spool, waiting, finishing, ...)."""
    line = info_field(respq.port, "tasks", queue)
    if line is None:
        return None
    return dict(kv.split("=", 1) for kv in line.split(","))


def wait_caught_up(respq, timeout=30):
    """Waits until the mirror streams with nothing pending: every write is applied upstream."""
    def done():
        m = mirror_info(respq)
        return (m.get("link_status") == "up" and m.get("mirror_state") == "streaming"
                and m.get("resync_pending") == "0" and m.get("lag_commands") == "0"
                and m.get("batches_in_flight") == "0")
    wait_until(done, timeout=timeout, interval=0.02, what=f"mirror caught up (last: {mirror_info(respq)!r})")


def link_clients(redis, prefix="respq-link:", **client_kw):
    """CLIENT LIST entries on the upstream whose name starts with prefix."""
    out = []
    for line in redis.client(**client_kw).execute_command("CLIENT", "LIST").decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        if fields.get("name", "").startswith(prefix):
            out.append(fields)
    return out


def kill_link(redis, prefix="respq-link:"):
    """CLIENT KILL every upstream connection whose name starts with prefix (Redis 7.0 has
    no KILL by name: by id). Returns how many were killed."""
    n = 0
    c = redis.client()
    for f in link_clients(redis, prefix):
        try:
            n += int(c.execute_command("CLIENT", "KILL", "ID", f["id"]))
        except Exception:
            pass  # gone meanwhile
    return n


def dump_keys(client, skip_prefixes=("respq:",)):
    """{key: value} of every key (lists as lists, hashes as dicts, strings as bytes)."""
    out = {}
    for k in client.keys("*"):
        key = k.decode()
        if any(key.startswith(p) for p in skip_prefixes):
            continue
        t = client.type(k).decode()
        if t == "list":
            out[key] = client.lrange(k, 0, -1)
        elif t == "hash":
            out[key] = client.hgetall(k)
        elif t == "string":
            out[key] = client.get(k)
        elif t != "none":
            out[key] = t
    return out


def assert_same_keys(respq, redis, match=None):
    """The upstream holds exactly respq's keys (those `match` accepts, if given)."""
    mine = {k: v for k, v in dump_keys(respq.client()).items() if match is None or match(k)}
    theirs = {k: v for k, v in dump_keys(redis.client()).items() if match is None or match(k)}
    if mine != theirs:
        only_mine = sorted(set(mine) - set(theirs))
        only_theirs = sorted(set(theirs) - set(mine))
        differ = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
        detail = "; ".join(f"{k}: respq={mine[k]!r} upstream={theirs[k]!r}" for k in differ[:3])
        raise AssertionError(f"upstream differs from respq: only in respq {only_mine[:10]}, only upstream "
                             f"{only_theirs[:10]}, different {differ[:10]} {detail}")
    return mine


def eventually_same(respq, redis, match=None, timeout=30):
    """Waits until the mirror caught up (writers must have stopped), then compares once."""
    wait_caught_up(respq, timeout=timeout)
    return assert_same_keys(respq, redis, match)


class Results:
    """SUBSCRIBE <queue>:results on the upstream: every outcome the sidecars publish there.
    poll() returns all of them so far, decoded."""

    def __init__(self, up, queue):
        self.ps = up.client().pubsub()
        self.ps.subscribe(f"{queue}:results")
        wait_until(lambda: (self.ps.get_message(timeout=0.1) or {}).get("type") == "subscribe",
                   what="SUBSCRIBE confirmation")
        self.items = []

    def poll(self):
        while True:
            m = self.ps.get_message(timeout=0.01)
            if not m:
                return self.items
            if m["type"] == "message":
                self.items.append(json.loads(m["data"]))

    def of(self, status, tid=None):
        """The outcomes of that status (of task `tid` only, when given)."""
        return [o for o in self.poll() if o["status"] == status and (tid is None or o["id"] == tid)]

    def close(self):
        self.ps.close()
