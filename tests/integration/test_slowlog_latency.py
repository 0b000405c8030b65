"""SLOWLOG and LATENCY as Redis 7.0 answers them, checked against a real redis-server run
through the same steps: reply shapes, which commands are logged (EXEC's commands and not
EXEC, a script's calls with the Lua client's "?:0", a blocked BLPOP once it is served),
trimming and redaction of arguments, the thresholds, the latency events and reports,
and what redis_exporter and redis-py read (SLOWLOG LEN, SLOWLOG GET parsed into
dictionaries, LATENCY LATEST)."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Respq, RedisServer, run_tests, wait_until, wait_blocked  # noqa: E402


class Pair:
    """respq and redis-server side by side (DEBUG allowed on Redis, as respq has it)."""

    def __enter__(self):
        self.respq = Respq("--http-queue", "tasks", "off")
        self.redis = RedisServer("--enable-debug-command", "yes")
        return self

    def __exit__(self, *exc):
        for s in (self.respq, self.redis):
            s.__exit__(*exc)
        return False

    def both(self):
        return (("respq", self.respq), ("redis", self.redis))


def setup():
    return Pair().__enter__()


def raw_both(pair, *cmd):
    out = {}
    for name, srv in pair.both():
        with srv.raw() as c:
            out[name] = c.cmd(*cmd)
    return out


def shape(entries):
    """A SLOWLOG GET reply (redis-py, raw lists) without what differs between runs: ids
    as offsets from the newest, times and durations checked for type, ports dropped."""
    out = []
    newest = entries[0][0] if entries else 0
    for e in entries:
        assert len(e) == 6, e
        ident, when, dur, argv, peer, name = e
        assert isinstance(when, int) and abs(when - time.time()) < 60, when
        assert isinstance(dur, int) and dur >= 0, dur
        peer = peer.decode()
        assert peer == "?:0" or re.fullmatch(r"127\.0\.0\.1:\d+", peer), peer
        out.append((newest - ident, [a.decode() for a in argv], "?:0" if peer == "?:0" else "addr", name.decode()))
    return out


def slowlog_raw(client, count="-1"):
    return client.execute_command("SLOWLOG", "GET", count, NEVER_DECODE=True)


def test_slowlog_get_entries_match_redis_trimmed_and_redacted(pair):
    shapes = {}
    for name, srv in pair.both():
        c = srv.client()
        c.config_set("slowlog-log-slower-than", 0)
        c.config_set("slowlog-max-len", 128)
        c.slowlog_reset()
        c.client_setname("worker-7")
        c.set("k", "v")
        c.sadd("set", *range(3, 34))                     # 33 arguments: trimmed to 32
        c.sadd("set", "foo", "A" * 129)                  # an argument of 129 bytes
        # (HELLO: SETNAME's argument is no option; a version refused leaves AUTH in clear.)
        for cmd in (("AUTH", "secret"), ("AUTH", "user", "pw"), ("HELLO", "2", "SETNAME", "auth", "AUTH", "default", "pw"),
                    ("CLIENT", "SETNAME", "worker-7"), ("HELLO", "2", "AUTH", "default", "pw"),
                    ("HELLO", "4", "AUTH", "u", "p")):
            try:
                c.execute_command(*cmd)
            except Exception:  # noqa: BLE001 - no password is set: both refuse, both log it
                pass
        c.execute_command("CONFIG", "SET", "requirepass", "")
        shapes[name] = shape(slowlog_raw(c))
        c.config_set("slowlog-log-slower-than", 10000)
    assert shapes["respq"] == shapes["redis"], f"\nrespq: {shapes['respq']}\nredis: {shapes['redis']}"
    argvs = [e[1] for e in shapes["respq"]]
    assert ["sadd", "set"] + [str(i) for i in range(3, 32)] + ["... (2 more arguments)"] in [
        [a.lower() if i == 0 else a for i, a in enumerate(v)] for v in argvs]
    assert ["sadd", "set", "foo", "A" * 128 + "... (1 more bytes)"] in [
        [a.lower() if i == 0 else a for i, a in enumerate(v)] for v in argvs]
    assert ["AUTH", "(redacted)"] in argvs and ["CONFIG", "SET", "requirepass", "(redacted)"] in argvs
    assert all(e[3] == "worker-7" for e in shapes["respq"][:3])


def test_slowlog_thresholds_max_len_and_disabling(pair):
    for name, srv in pair.both():
        c = srv.client()
        c.config_set("slowlog-log-slower-than", 100000)
        c.slowlog_reset()
        c.ping()
        assert c.slowlog_len() == 0, name
        c.execute_command("DEBUG", "SLEEP", "0.2")
        assert c.slowlog_len() == 1, name
        e = c.slowlog_get(1)[0]
        assert e["duration"] >= 100000 and e["command"] == b"DEBUG SLEEP 0.2", (name, e)
        c.config_set("slowlog-log-slower-than", -1)
        c.slowlog_reset()
        c.execute_command("DEBUG", "SLEEP", "0.2")
        assert c.slowlog_len() == 0, name
        c.config_set("slowlog-log-slower-than", 0)
        c.config_set("slowlog-max-len", 10)
        for _ in range(50):
            c.ping()
        assert c.slowlog_len() == 10, name
        assert len(c.slowlog_get(5)) == 5 and len(c.slowlog_get(-1)) == 10 and len(c.slowlog_get(0)) == 0
        c.config_set("slowlog-max-len", 128)
        c.config_set("slowlog-log-slower-than", 10000)
        assert c.config_get("slowlog-*") == {"slowlog-log-slower-than": "10000", "slowlog-max-len": "128"}


def test_slowlog_exec_scripts_and_blocked_commands_are_logged_as_redis_logs_them(pair):
    shapes = {}
    for name, srv in pair.both():
        c = srv.client()
        c.config_set("slowlog-log-slower-than", 0)
        c.delete("l")
        c.slowlog_reset()
        # EXEC is not logged; the commands it ran are.
        p = c.pipeline(transaction=True)
        p.set("a", "1")
        p.incr("a")
        p.execute()
        # A script's calls (Lua client: "?:0", no name), then the script.
        c.eval("redis.call('set', KEYS[1], ARGV[1]) return 1", 1, "s", "v")
        # A BLPOP that blocked: logged once it is served, with its own arguments.
        got = {}
        waiter = srv.client()
        t = threading.Thread(target=lambda: got.setdefault("v", waiter.blpop(["l"], 0)))
        t.start()
        wait_blocked(srv.port, 1)
        c.rpush("l", "x")
        t.join(10)
        assert got["v"] == (b"l", b"x")
        wait_until(lambda: any(e["command"] == b"BLPOP l 0" for e in c.slowlog_get(-1)), what="BLPOP logged")
        entries = shape(slowlog_raw(c))
        # The commands this test made, in order (without the ids: the SLOWLOG GETs of the
        # wait above are logged too, as many as it took).
        shapes[name] = [e[1:] for e in entries if e[1][0].lower() in ("set", "incrby", "eval", "blpop", "rpush",
                                                                       "multi", "exec")]
        c.config_set("slowlog-log-slower-than", 10000)
    assert shapes["respq"] == shapes["redis"], f"\nrespq: {shapes['respq']}\nredis: {shapes['redis']}"
    cmds = [e[0][0].lower() for e in shapes["respq"]]
    assert "exec" not in cmds and "multi" in cmds and "blpop" in cmds
    assert [e[1] for e in shapes["respq"] if e[0] == ["set", "s", "v"]] == ["?:0"]


def test_slowlog_help_errors_and_resp3_match_redis(pair):
    for cmd in (("SLOWLOG", "HELP"), ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "GET", "x"), ("SLOWLOG", "LEN", "x"),
                ("SLOWLOG", "FOO"), ("SLOWLOG",), ("SLOWLOG", "RESET", "x"), ("SLOWLOG", "GET", "0")):
        r = raw_both(pair, *cmd)
        assert r["respq"] == r["redis"], (cmd, r)
    for name, srv in pair.both():
        with srv.raw() as c:
            assert c.cmd("HELLO", "3").startswith(b"%")
            c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
            c.cmd("SLOWLOG", "RESET")
            c.cmd("CLIENT", "SETNAME", "r3")
            reply = c.cmd("SLOWLOG", "GET", "1")
            c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        # *1 / *6 / :id / :time / :duration / *3 client setname r3 / $addr / $2 r3
        assert re.fullmatch(rb"\*1\r\n\*6\r\n:\d+\r\n:\d+\r\n:\d+\r\n\*3\r\n\$6\r\nCLIENT\r\n\$7\r\nSETNAME\r\n"
                            rb"\$2\r\nr3\r\n\$\d+\r\n127\.0\.0\.1:\d+\r\n\$2\r\nr3\r\n", reply), (name, reply)


def test_latency_off_by_default_and_its_texts_match_redis(pair):
    for name, srv in pair.both():
        srv.client().config_set("latency-monitor-threshold", 0)
        srv.client().execute_command("LATENCY", "RESET")
    for cmd in (("LATENCY", "LATEST"), ("LATENCY", "DOCTOR"), ("LATENCY", "HELP"), ("LATENCY", "HISTORY", "command"),
                ("LATENCY", "GRAPH", "command"), ("LATENCY", "RESET", "nothing"), ("LATENCY", "HELP", "x"),
                ("LATENCY", "FOO"), ("LATENCY", "LATEST", "x"), ("CONFIG", "GET", "latency-monitor-threshold")):
        r = raw_both(pair, *cmd)
        assert r["respq"] == r["redis"], (cmd, r)
    # RESP3: the reports are verbatim strings.
    for name, srv in pair.both():
        with srv.raw() as c:
            c.cmd("HELLO", "3")
            assert c.cmd("LATENCY", "DOCTOR").startswith(b"=")


def test_latency_records_command_events_as_redis(pair):
    seen = {}
    for name, srv in pair.both():
        c = srv.client()
        c.config_set("latency-monitor-threshold", 100)
        c.execute_command("LATENCY", "RESET")
        c.ping()
        assert c.execute_command("LATENCY", "LATEST") == [], name
        c.execute_command("DEBUG", "SLEEP", "0.25")
        latest = c.execute_command("LATENCY", "LATEST")
        assert len(latest) == 1, (name, latest)
        event, when, last, top = latest[0]
        assert event == b"command" and abs(when - time.time()) < 60 and 240 <= last < 2000 and top == last, latest
        hist = c.execute_command("LATENCY", "HISTORY", "command")
        assert hist == [[when, last]], (name, hist)
        graph = c.execute_command("LATENCY", "GRAPH", "command").decode()
        lines = graph.split("\n")
        assert lines[0] == f"command - high {last} ms, low {last} ms (all time high {top} ms)", graph
        assert lines[1] == "-" * 80, graph
        doctor = c.execute_command("LATENCY", "DOCTOR").decode()
        assert doctor.startswith("Dave, I have observed latency spikes") and "1. command: 1 latency spikes" in doctor
        # The drawing and the report, numbers aside (milliseconds, seconds-ago labels).
        seen[name] = (re.sub(r"\d", "N", "\n".join(lines[1:])), re.sub(r"\d+", "N", doctor))
        assert c.execute_command("LATENCY", "RESET", "command", "other") == 1
        assert c.execute_command("LATENCY", "LATEST") == []
        c.config_set("latency-monitor-threshold", 0)
    assert seen["respq"] == seen["redis"], f"\nrespq: {seen['respq']}\nredis: {seen['redis']}"


def test_latency_records_the_expire_cycle(pair):
    # 100,000 keys expiring together: the cron's active expiry removes them in slices of
    # several milliseconds each, which the monitor records as expire-cycle, on both
    # servers (one big key would not do: freeing it can take under a millisecond).
    for name, srv in pair.both():
        c = srv.client()
        c.flushall()
        c.execute_command("LATENCY", "RESET")
        # On before the keys are made: a slow or loaded machine may start expiring them as
        # soon as the script ends, and no slice of the cycle goes unmonitored.
        c.config_set("latency-monitor-threshold", 1)
        c.eval("for i = 1, tonumber(ARGV[1]) do redis.call('set', 'k' .. i, i, 'px', 300) end", 0, 100000)
        wait_until(lambda: c.dbsize() == 0, timeout=30, what=f"{name}: the keys expired")
        events = [e[0] for e in c.execute_command("LATENCY", "LATEST")]
        c.config_set("latency-monitor-threshold", 0)
        c.execute_command("LATENCY", "RESET")
        assert b"expire-cycle" in events, (name, events)


def test_latency_histogram_shape_matches_redis(pair):
    shapes = {}
    for name, srv in pair.both():
        c = srv.client()
        c.config_resetstat()
        c.set("a", "b")
        c.set("c", "d")
        c.client_id()
        h = c.execute_command("LATENCY", "HISTOGRAM", "set", "client", "nosuchcommand")
        d = {k.decode(): v for k, v in zip(h[::2], h[1::2])}
        out = {}
        for cmd, v in d.items():
            fields = dict(zip(v[::2], v[1::2]))
            buckets = fields[b"histogram_usec"]
            counts = buckets[1::2]
            assert counts == sorted(counts) and counts[-1] == fields[b"calls"], (name, v)
            out[cmd] = fields[b"calls"]
        shapes[name] = out
        assert c.execute_command("LATENCY", "HISTOGRAM", "nosuchcommand") == []
    assert shapes["respq"] == shapes["redis"] == {"set": 2, "client|id": 1}, shapes


def latencystats(c):
    """INFO latencystats (asked on a raw connection) as {command: [(percentile label,
    usec text), ...]}."""
    out = {}
    for line in c.cmd("INFO", "latencystats").decode().splitlines():
        if line.startswith("latency_percentiles_usec_"):
            name, _, values = line[len("latency_percentiles_usec_"):].partition(":")
            out[name] = [tuple(v.split("=")) for v in values.split(",")] if values else []
    return out


def test_info_latencystats_and_its_percentiles_as_redis(pair):
    # Which commands show, with which percentiles in which form; durations differ between
    # servers (each a number with 3 decimals, not decreasing along the percentiles).
    seen = {}
    for name, srv in pair.both():
        with srv.raw() as c:
            steps = [c.cmd("CONFIG", "GET", "latency-tracking-info-percentiles"), c.cmd("CONFIG", "RESETSTAT")]
            c.cmd("SET", "a", "b")
            c.cmd("GET", "a")
            c.cmd("CLIENT", "ID")
            first = latencystats(c)
            for value in ("0 0.5 33.333333333 100", "99.9", "", "101", "abc", "50 99 99.9"):
                steps.append(c.cmd("CONFIG", "SET", "latency-tracking-info-percentiles", value))
                steps.append(c.cmd("CONFIG", "GET", "latency-tracking-info-percentiles"))
                steps.append(sorted((k, [p for p, _ in v]) for k, v in latencystats(c).items()))
            steps.append(c.cmd("CONFIG", "SET", "latency-tracking", "no"))
            steps.append(latencystats(c))
            steps.append(c.cmd("CONFIG", "SET", "latency-tracking", "yes"))
            steps.append(b"# Latencystats" in c.cmd("INFO", "everything"))
            steps.append(b"# Latencystats" in c.cmd("INFO"))
        for cmd, values in first.items():
            usec = [float(v) for _, v in values]
            assert all(re.fullmatch(r"\d+\.\d{3}", v) for _, v in values) and usec == sorted(usec), (name, cmd, values)
        seen[name] = (sorted((k, [p for p, _ in v]) for k, v in first.items()), steps)
    assert seen["respq"] == seen["redis"], seen
    assert seen["redis"][0] == [("client|id", ["p50", "p99", "p99.9"]), ("config|resetstat", ["p50", "p99", "p99.9"]),
                                   ("get", ["p50", "p99", "p99.9"]), ("set", ["p50", "p99", "p99.9"])], seen["redis"][0]


def test_redis_exporter_and_redis_py_read_slowlog_and_latency(pair):
    # What redis_exporter asks on every scrape, through redis-py's own parsers.
    with Respq("--http-queue", "tasks", "off", "--slowlog-log-slower-than", "0",
               "--latency-monitor-threshold", "50") as r:
        c = r.client()
        c.client_setname("exporter")
        c.execute_command("DEBUG", "SLEEP", "0.06")
        assert c.slowlog_len() >= 2
        entries = c.slowlog_get(10)
        assert all(set(e) >= {"id", "start_time", "duration", "command"} for e in entries), entries
        sleep = [e for e in entries if e["command"].startswith(b"DEBUG")]
        assert [e["command"] for e in sleep] == [b"DEBUG SLEEP 0.06"] and sleep[0]["duration"] >= 60000, entries
        raw = c.execute_command("SLOWLOG", "GET", "10")
        assert [e[5] for e in raw if e[3][0] == b"DEBUG"] == [b"exporter"], raw
        latest = c.execute_command("LATENCY", "LATEST")
        command = [e for e in latest if e[0] == b"command"]
        assert len(command) == 1 and command[0][2] >= 60, latest
        cfg = c.config_get("*")
        assert cfg["slowlog-log-slower-than"] == "0" and cfg["latency-monitor-threshold"] == "50"
        assert cfg["slowlog-max-len"] == "128" and cfg["latency-tracking"] == "yes"


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
