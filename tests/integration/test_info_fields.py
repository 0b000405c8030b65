"""INFO as monitoring reads it (redis_exporter, RedisInsight, Sidekiq Web, Grafana's Redis
source): every field redis-server 7.0 prints in the server, clients, memory, persistence,
stats, replication and cpu sections is there, in the same section, checked against a real
redis-server; and the figures respq computes move as they should: network rates while
traffic flows, reads and writes, the dataset and client parts of used_memory, active
expiry's time, the CPU of the main thread, and the failed calls a CLIENT UNBLOCK leaves
in INFO commandstats (as Redis 7.0.15 counts them)."""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, run_tests, wait_blocked, wait_until  # noqa: E402

SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu")
# Fields Redis prints that respq leaves out: its AOF buffer is the persistence section's
# aof_buffer_length (the memory section is the core's and does not see the AOF module).
NOT_IN_RESPQ = {"memory": {"mem_not_counted_for_evict", "mem_aof_buffer"}}


def setup():
    return RedisAndRespq()


def fields(text):
    return [line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]


def section(srv, name):
    return srv.client().execute_command("INFO", name)


def test_every_field_of_redis_in_the_same_section(pair):
    for name in SECTIONS:
        with pair.redis.raw() as c:
            redis_text = c.cmd("INFO", name).decode().split("\r\n", 1)[1]  # past the bulk's length
        with pair.respq.raw() as c:
            respq_text = c.cmd("INFO", name).decode().split("\r\n", 1)[1]
        missing = [f for f in fields(redis_text) if f not in fields(respq_text)]
        assert set(missing) == NOT_IN_RESPQ.get(name, set()), (name, missing)
        # Fields respq shares keep Redis's order.
        shared = [f for f in fields(respq_text) if f in fields(redis_text)]
        assert shared == [f for f in fields(redis_text) if f in shared], (name, shared)


def test_values_have_redis_forms(pair):
    both = {n: {s: section(srv, s) for s in SECTIONS} for n, srv in (("respq", pair.respq), ("redis", pair.redis))}
    r = both["respq"]
    assert re.fullmatch(r"[0-9a-f]{40}", r["replication"]["master_replid"])
    assert section(pair.respq, "replication")["master_replid"] == r["replication"]["master_replid"]
    assert r["replication"]["master_replid2"] in (0, "0" * 40) and r["replication"]["second_repl_offset"] == -1
    assert abs(r["server"]["lru_clock"] - both["redis"]["server"]["lru_clock"]) <= 2
    assert r["server"]["atomicvar_api"] == both["redis"]["server"]["atomicvar_api"]
    assert r["memory"]["total_system_memory"] == both["redis"]["memory"]["total_system_memory"]
    assert r["memory"]["used_memory_peak_perc"].endswith("%")
    for f in ("used_cpu_sys_main_thread", "used_cpu_user_main_thread"):
        assert 0 <= r["cpu"][f] <= r["cpu"][f.replace("_main_thread", "")] + 0.01, (f, r["cpu"])
    for f in ("instantaneous_input_kbps", "expired_stale_perc", "current_fork_perc"):
        where = "persistence" if f.startswith("current_fork") else "stats"
        assert type(r[where][f]) is type(both["redis"][where][f]), f


def test_dataset_and_client_parts_of_used_memory(pair):
    c = pair.respq.client()
    c.flushall()
    before = section(pair.respq, "memory")
    c.set("big", "x" * 1_000_000)
    m = section(pair.respq, "memory")
    assert m["used_memory_dataset"] - before["used_memory_dataset"] >= 1_000_000, (before, m)
    assert m["used_memory"] == m["used_memory_dataset"] + m["used_memory_overhead"], m
    assert m["used_memory_overhead"] == m["mem_clients_normal"] > 0, m
    assert m["used_memory_peak"] >= m["used_memory"], m
    c.delete("big")
    after = section(pair.respq, "memory")
    assert after["used_memory_dataset"] < 1_000_000 and after["used_memory_peak"] >= m["used_memory"], after
    c.execute_command("SCRIPT", "LOAD", "return 'a body that EVAL would cache'")
    assert section(pair.respq, "memory")["used_memory_scripts_eval"] > 0
    c.execute_command("SCRIPT", "FLUSH")
    assert section(pair.respq, "memory")["used_memory_scripts_eval"] == 0


def test_network_rates_reads_and_writes_follow_traffic(pair):
    c = pair.respq.client()
    s0 = section(pair.respq, "stats")
    stop = time.time() + 2.5
    value = "v" * 50_000
    while time.time() < stop:
        c.set("k", value)
        c.get("k")
    s1 = section(pair.respq, "stats")
    # The last second's rate: about 50 KB in and out per SET/GET pair, many pairs a second.
    assert s1["instantaneous_input_kbps"] > 100 and s1["instantaneous_output_kbps"] > 100, s1
    assert s1["total_reads_processed"] > s0["total_reads_processed"] + 50, (s0, s1)
    assert s1["total_writes_processed"] > s0["total_writes_processed"] + 50, (s0, s1)
    # Once a sample second has passed with nothing but these INFOs (the cron samples once
    # a second: a loaded machine may take a little longer), the input rate is back near 0.
    wait_until(lambda: section(pair.respq, "stats")["instantaneous_input_kbps"] < 1, timeout=15, interval=0.5,
               what="instantaneous_input_kbps under 1 with the traffic stopped")


def test_active_expiry_time_is_counted(pair):
    c = pair.respq.client()
    c.flushall()
    before = section(pair.respq, "stats")
    n = 100_000
    with pair.respq.raw() as raw:
        raw.send(b"".join(raw.encode("SET", f"e:{i}", "v", "PX", "1") for i in range(n)))
        for _ in range(n):
            assert raw.read_reply() == b"+OK\r\n"
    wait_until(lambda: section(pair.respq, "stats")["expired_keys"] - before["expired_keys"] >= n,
               timeout=30, what="all keys expired by the cron")
    s = section(pair.respq, "stats")
    assert s["expire_cycle_cpu_milliseconds"] > before["expire_cycle_cpu_milliseconds"], (before, s)
    # The share left due is averaged over cycles, as Redis's: it decays to 0 once none is.
    wait_until(lambda: section(pair.respq, "stats")["expired_stale_perc"] < 0.5, timeout=30,
               what="expired_stale_perc back near 0")
    assert c.dbsize() == 0


def blocked_command_failed_calls(srv, how):
    """BLPOP on an empty list from one connection, ended by `how` (CLIENT UNBLOCK's
    TIMEOUT or ERROR, or its own timeout), then INFO commandstats' failed calls of BLPOP
    and CLIENT|UNBLOCK."""
    c = srv.client()
    c.config_resetstat()
    waiter = srv.client()
    wid = waiter.client_id()
    done = {}

    def run():
        try:
            done["reply"] = waiter.blpop(["empty"], timeout=0.2 if how == "natural" else 0)
        except Exception as e:  # noqa: BLE001 - the UNBLOCKED error is the point
            done["reply"] = type(e).__name__ + ": " + str(e)

    t = threading.Thread(target=run)
    t.start()
    if how != "natural":
        wait_blocked(srv.port, 1)
        assert c.execute_command("CLIENT", "UNBLOCK", wid, how.upper()) == 1
    t.join(5)
    stats = c.info("commandstats")
    fails = {k: v["failed_calls"] for k, v in stats.items() if k in ("cmdstat_blpop", "cmdstat_client|unblock")}
    return done["reply"], fails


def test_client_unblock_counts_the_blocked_command_as_failed_as_redis(pair):
    for how in ("error", "timeout", "natural"):
        got = {name: blocked_command_failed_calls(srv, how) for name, srv in (("respq", pair.respq), ("redis", pair.redis))}
        assert got["respq"] == got["redis"], (how, got)
    assert got["redis"][1] == {"cmdstat_blpop": 0}, got


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
