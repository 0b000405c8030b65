"""phpredis's session handler with session locking, under php -S, against respq and
against redis-server.

Many concurrent requests on one session id each increment a counter in the session
(php/session_counter.php). With `redis.session.locking_enabled=1` phpredis takes a lock
(`SET <key>_LOCK <secret> NX PX`), polls it while another request holds it, checks it
before writing (`GET`, as `lock_expire` is set) and releases it with `EVALSHA` of its
release script, falling back to `EVAL` on NOSCRIPT. So the requests must run one after
the other: every counter value from 1 to N is handed out exactly once, the session ends
at N, no lock is left behind, and PHP logs no "Failed to release session lock" (or any
other warning). Half way, SCRIPT FLUSH empties the script cache, so the EVAL fallback
runs again. A run without locking shows that the same requests do race.
"""
import os
import secrets
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PhpServer, RawConn, RedisAndRespq, parse_info, run_tests  # noqa: E402

ROUTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "session_counter.php")
WORKERS = 8        # php -S worker processes
CONCURRENCY = 16   # requests in flight at once
PER_PHASE = 60     # requests before and after SCRIPT FLUSH
LOCK_WARNINGS = ("Failed to release session lock", "Failed to refresh session lock",
                 "Acquire of session lock was not successful", "Acquiring session lock failed")


def session_server(port, locking):
    """php -S with phpredis as the session handler on 127.0.0.1:port; PHP's errors go to
    <server dir>/php-errors.log."""
    srv = PhpServer(ROUTER, workers=WORKERS, start=False)
    srv.error_log = os.path.join(srv.dir, "php-errors.log")
    srv.ini = {
        "session.save_handler": "redis",
        "session.save_path": f"tcp://127.0.0.1:{port}",
        "session.use_strict_mode": "0",
        "redis.session.locking_enabled": "1" if locking else "0",
        "redis.session.lock_expire": "30",        # seconds the lock lives
        "redis.session.lock_wait_time": "5000",   # microseconds between attempts
        "redis.session.lock_retries": "2000",     # up to 10 s of waiting
        "display_errors": "0",
        "log_errors": "1",
        "error_reporting": "32767",               # E_ALL
        "error_log": srv.error_log,
    }
    return srv.start()


def visit(port, sid, hold_ms):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/?hold_ms={hold_ms}",
                                 headers={"Cookie": f"PHPSESSID={sid}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read().decode()
        assert resp.status == 200, (resp.status, body)
    return int(body)


def visits(port, sid, n, hold_ms, concurrency=CONCURRENCY):
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: visit(port, sid, hold_ms), range(n)))


def cmdstat(client, name):
    """calls= of one INFO commandstats line (0 when the command never ran)."""
    with RawConn(client.connection_pool.connection_kwargs["port"]) as raw:
        reply = raw.cmd("INFO", "commandstats")
    stats = parse_info(reply.split(b"\r\n", 1)[1]).get("commandstats", {})
    line = stats.get(f"cmdstat_{name}")
    return int(dict(kv.split("=") for kv in line.split(","))["calls"]) if line else 0


def locked_run(srv):
    """The locked scenario against one server; returns what it observed."""
    c = srv.client()
    c.config_resetstat()
    sid = "respq" + secrets.token_hex(12)
    with session_server(srv.port, locking=True) as php:
        got = visits(php.port, sid, PER_PHASE, hold_ms=3)
        assert c.script_flush()
        got += visits(php.port, sid, PER_PHASE, hold_ms=3)
        php.stop()
        errors = open(php.error_log).read() if os.path.exists(php.error_log) else ""
        server_log = php.log_text()
    return {
        "values": sorted(got),
        "session": c.get(f"PHPREDIS_SESSION:{sid}"),
        "lock_left": c.exists(f"PHPREDIS_SESSION:{sid}_LOCK"),
        "errors": errors,
        "server_log": server_log,
        "eval": cmdstat(c, "eval"),
        "evalsha": cmdstat(c, "evalsha"),
    }


def test_locked_session_counter_counts_every_request_once_as_on_redis_server(s):
    n = 2 * PER_PHASE
    results = {name: locked_run(srv) for name, srv in (("redis-server", s.redis), ("respq", s.respq))}
    for name, r in results.items():
        lock_lines = [l for l in (r["errors"] + r["server_log"]).splitlines() if any(w in l for w in LOCK_WARNINGS)]
        assert not lock_lines, f"{name}: {lock_lines[:5]}"
        assert r["errors"] == "", f"{name}: PHP logged errors:\n{r['errors'][:3000]}"
        assert r["values"] == list(range(1, n + 1)), (
            f"{name}: the {n} requests handed out the counters {r['values']} (a lost or repeated increment)")
        assert r["session"] == f"n|i:{n};".encode(), f"{name}: the session holds {r['session']!r}"
        assert r["lock_left"] == 0, f"{name}: the session lock key was left behind"
        # One EVAL to load the release script into the cache, and one more after SCRIPT
        # FLUSH; every release tries EVALSHA first.
        assert r["eval"] == 2 and r["evalsha"] == n, f"{name}: EVAL {r['eval']}, EVALSHA {r['evalsha']} calls"
    ref, got = results["redis-server"], results["respq"]
    assert (got["values"], got["session"], got["eval"], got["evalsha"]) == \
        (ref["values"], ref["session"], ref["eval"], ref["evalsha"])


def test_without_locking_the_same_requests_race(s):
    # The control: the same page without the lock loses increments, so the locked run
    # above passes because of the lock and not by luck of scheduling.
    n = 40
    sid = "respq" + secrets.token_hex(12)
    with session_server(s.respq.port, locking=False) as php:
        visits(php.port, sid, n, hold_ms=20, concurrency=WORKERS)
    session = s.respq.client().get(f"PHPREDIS_SESSION:{sid}")
    final = int(session.decode().split("i:")[1].rstrip(";"))
    assert 0 < final < n, f"without locking {n} concurrent increments still ended at {final}"


if __name__ == "__main__":
    run_tests(globals(), setup=RedisAndRespq)
