#!/usr/bin/python3
"""Runs Redis's own test suite (the Tcl tests shipped in the Redis source) against respq.

The Redis test suite can test an external server (`--host/--port`); this script points it
at a respq it starts on a free loopback port, runs the units in UNITS one after another,
and compares the outcome with expected-failures.txt:

  - every test that fails must be listed there, with the reason (a command respq does not
    have, a Redis setting respq does not have, a test that fails because an earlier one
    left a client behind). Any other failure, or an exception that stops a unit, fails
    this test;
  - a listed test that passes is reported, so the list can shrink.

The suite comes from the Redis source package of the machine's distribution: the first
run downloads it (source_package.py) and keeps it in the cache directory
(RESPQ_REDIS_SUITE_CACHE, default .cache/redis-suite in the source tree).
RESPQ_REDIS_SUITE_DIR names an already unpacked Redis source tree instead. When neither
is available (no network) the script says so and exits 77, which ctest reports as
skipped.

Before running, a few places in the suite are adapted to respq (see patch_suite): `CONFIG
SET` of Redis's list encoding settings (list-max-listpack-size, list-compress-depth: respq
has its own list encoding) is ignored, and each unit begins with the hash, set and sorted
set encoding settings at Redis's defaults, as on a server of its own. The tests' encoding
assertions (OBJECT ENCODING) are checked. unit/scripting runs every test twice, through
FUNCTION LOAD + FCALL and through EVAL, under the same test names: a listed failure stands
for both passes.

Tests that would leave respq unable to serve the tests after them are not run at all:
skipped-tests.txt lists them, with the reason, and each goes to the suite as --skiptest.

    /usr/bin/python3 tests/redis-suite/run_redis_suite.py [--keep-log FILE] [unit ...]
"""
import os
import re
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Respq, SOURCE_DIR  # noqa: E402
import source_package  # noqa: E402

UNITS = [
    "unit/type/list", "unit/type/list-2", "unit/type/list-3", "unit/pubsub", "unit/multi",
    "unit/protocol", "unit/quit", "unit/introspection", "unit/introspection-2",
    "unit/info-command", "unit/keyspace", "unit/type/incr", "unit/type/string", "unit/type/hash",
    "unit/other", "unit/type/set", "unit/type/zset", "unit/scripting", "unit/type/stream",
    "unit/type/stream-cgroups", "unit/slowlog", "unit/latency-monitor", "unit/bitops", "unit/bitfield",
    "unit/hyperloglog", "unit/expire", "unit/scan", "unit/sort", "unit/pause", "unit/pubsubshard", "unit/geo", "unit/tracking",
    "unit/dump", "unit/functions",
]
# Not run: units about what respq does not have (ACL, replication, ...).
EXPECTED = os.path.join(HERE, "expected-failures.txt")
# Tests not run at all: they would leave respq unable to answer the tests after them.
SKIPPED = os.path.join(HERE, "skipped-tests.txt")


def skip(why):
    source_package.skip("redis suite", why)


OLD_CONFIG_SET_EDITS = tuple('''    if {[string tolower [lindex $args 0]] eq "config" && [string tolower [lindex $args 1]] eq "set" &&
        [regexp {^(%s)} [lindex $args 2]]} {
        catch {[srv $level "client"] {*}$args}
        return OK
    }
    [srv $level "client"] {*}$args
}''' % names for names in ("list-|hash-max-|set-max-|zset-max-|stream-node-max-", "list-|hash-max-|set-max-|zset-max-"))


def patch_suite(tree):
    """Adapts the suite's harness to respq, once (each edit must find its target)."""
    edits = [
        # Redis's list encoding settings (list-max-listpack-size, list-compress-depth) do
        # not apply to respq's own list encoding: setting them is ignored. (The hash, set,
        # sorted set and stream settings are respq's too: they reach it. The first forms
        # are this edit as made before they were, in an already adapted cached tree; each
        # holds the last, so they are looked for first.)
        ("tests/test_helper.tcl", OLD_CONFIG_SET_EDITS + ('''    [srv $level "client"] {*}$args
}''',), '''    if {[string tolower [lindex $args 0]] eq "config" && [string tolower [lindex $args 1]] eq "set" &&
        [regexp {^(list-)} [lindex $args 2]]} {
        catch {[srv $level "client"] {*}$args}
        return OK
    }
    [srv $level "client"] {*}$args
}'''),
        # Each unit begins with Redis's encoding settings at their defaults, as it would on
        # a server of its own: against one external server, a unit that changes them and
        # ends (unit/type/hash leaves hash-max-ziplist-entries at 2) would change what
        # OBJECT ENCODING answers in the units after it.
        ("tests/test_helper.tcl", '''    set ::curfile $path
    source $path
''', '''    set ::curfile $path
    if {$::external} {
        set defaults [redis $::host $::port 0 $::tls]
        $defaults config set hash-max-listpack-entries 512 hash-max-listpack-value 64 set-max-intset-entries 512 \\
            zset-max-listpack-entries 128 zset-max-listpack-value 64
        $defaults close
    }
    source $path
'''),
    ]
    for rel, olds, new in edits:
        path = os.path.join(tree, rel)
        text = open(path).read()
        if new in text:
            continue
        old = next((o for o in (olds if isinstance(olds, tuple) else (olds,)) if o in text), None)
        if old is None:
            raise SystemExit(f"redis suite: {rel} has changed: cannot adapt it to respq")
        open(path, "w").write(text.replace(old, new, 1))


# --------------------------------------------------------------------- the outcome
def parse(output):
    """Returns (passed, failed, exceptions): sets of (unit, name) and a list of texts."""
    passed, failed, exceptions = set(), {}, []
    unit = None
    lines = output.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^Testing (unit/\S+)$", line)
        if m:
            unit = m.group(1)
            continue
        m = re.match(r"^\[ok\]: (.*) \(\d+ ms\)$", line)
        if m:
            passed.add((unit, m.group(1)))
            continue
        m = re.match(r"^\[err\]: (.*) in tests/(unit/\S+)\.tcl$", line)
        if m:
            failed[(m.group(2), m.group(1))] = lines[i + 1] if i + 1 < len(lines) else ""
            continue
        m = re.match(r"^\[err\]: (.*)$", line)
        if m:  # a unit whose server set-up failed
            failed[(unit, m.group(1))] = lines[i + 1] if i + 1 < len(lines) else ""
            continue
        if line.startswith("[exception]"):
            exceptions.append("\n".join(lines[i:i + 12]))
    return passed, failed, exceptions


def main():
    args = sys.argv[1:]
    keep_log = None
    if args[:1] == ["--keep-log"]:
        keep_log, args = args[1], args[2:]
    units = args or UNITS
    if not shutil.which("tclsh"):
        skip("tclsh is not installed (Debian package tcl)")
    tree = os.environ.get("RESPQ_REDIS_SUITE_DIR")
    if not tree:
        cache = os.environ.get("RESPQ_REDIS_SUITE_CACHE", os.path.join(SOURCE_DIR, ".cache", "redis-suite"))
        tree = source_package.fetch("redis suite", "redis", cache, "redis-*", "tests/test_helper.tcl")
    patch_suite(tree)
    expected = source_package.read_expected(EXPECTED, 2)  # (unit, test name): reason
    skipped = source_package.read_expected(SKIPPED, 2)

    with Respq("--http-queue", "tasks", "off") as rq:
        cmd = ["tclsh", "tests/test_helper.tcl", "--host", "127.0.0.1", "--port", str(rq.port),
               "--durable", "--clients", "1", "--timeout", "300",
               # Tags the suite gives to tests that need what an external server lacks.
               "--tags", "-needs:debug", "--tags", "-needs:repl"]
        for u in units:
            cmd += ["--single", u]
        for unit, name in sorted(skipped):
            if unit in units:
                cmd += ["--skiptest", name]
        print("redis suite: " + " ".join(cmd[2:]))
        # Its own session, so that a time-out also stops the test client it spawns.
        proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=dict(os.environ, TERM="dumb"), start_new_session=True)
        try:
            raw, _ = proc.communicate(timeout=1400)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raw, _ = proc.communicate()
            timed_out = True
        alive = rq.alive()
    output = re.sub(r"\x1b\[[0-9;]*m", "", raw)
    if keep_log:
        open(keep_log, "w").write(output)

    passed, failed, exceptions = parse(output)
    in_scope = {k: v for k, v in expected.items() if k[0] in units}
    unexpected = {k: v for k, v in failed.items() if k not in expected}
    now_passing = sorted(k for k in in_scope if k in passed)
    n_skipped = sum(1 for k in skipped if k[0] in units)
    print(f"redis suite: {len(passed)} passed, {len(failed)} failed "
          f"({len(failed) - len(unexpected)} of them listed in expected-failures.txt), "
          f"{n_skipped} not run (skipped-tests.txt)")
    for k in now_passing:
        print(f"  listed as failing but passed: {k[0]} | {k[1]}")
    ok = True
    # Every unit must have run to its end: a hung test ends the suite early with
    # "[TIMEOUT]", and the units after it never run.
    done = set(re.findall(r"^\[\d+/\d+ done\]: (unit/\S+)", output, re.M))
    if timed_out:
        ok = False
        print("redis suite: the suite did not finish within 1,400 s")
    if "[TIMEOUT]" in output:
        ok = False
        print("redis suite: a test timed out:\n" + output[output.index("[TIMEOUT]"):][:1500])
    for u in units:
        if u not in done:
            ok = False
            print(f"redis suite: unit {u} did not run to its end")
    if not alive:
        print("redis suite: respq exited during the run")
        ok = False
    if exceptions:
        ok = False
        for e in exceptions:
            print("redis suite: a unit stopped on an exception:\n" + e)
    for (unit, name), msg in sorted(unexpected.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        ok = False
        print(f"  UNEXPECTED FAILURE: {unit} | {name}\n      {msg.strip()[:400]}")
    if not passed:
        ok = False
        print("redis suite: no test passed; the output was:\n" + output[-3000:])
    print("redis suite: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
