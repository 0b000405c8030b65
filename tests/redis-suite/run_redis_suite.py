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
run downloads it with `apt-get source --download-only redis` (from the deb-src twins of
the machine's own apt sources, into a private apt state directory) and keeps it in the
cache directory (RESPQ_REDIS_SUITE_CACHE, default .cache/redis-suite in the source tree).
RESPQ_REDIS_SUITE_DIR names an already unpacked Redis source tree instead. When neither
is available (no network) the script says so and exits 77, which ctest reports as
skipped.

Before running, three lines of the suite's harness are adapted to respq (see patch_suite):
`FUNCTION FLUSH` (respq has no functions) and `CONFIG SET` of Redis's encoding settings
(list-max-listpack-size and the like: respq has its own list encoding) are ignored.

    /usr/bin/python3 tests/redis-suite/run_redis_suite.py [--keep-log FILE] [unit ...]
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Respq, SOURCE_DIR  # noqa: E402

SKIP = 77
UNITS = [
    "unit/type/list", "unit/type/list-2", "unit/type/list-3", "unit/pubsub", "unit/multi",
    "unit/protocol", "unit/quit", "unit/introspection", "unit/introspection-2",
    "unit/info-command", "unit/keyspace", "unit/type/incr", "unit/type/string", "unit/other",
]
# Not run: units about what respq does not have (sets, sorted sets, streams, expiry,
# scripting, ACL, replication, ...), and unit/type/hash, which stops at its start on
# MEMORY USAGE (respq keeps hashes only for its own bookkeeping keys).
EXPECTED = os.path.join(HERE, "expected-failures.txt")


def skip(why):
    print(f"redis suite: skipped: {why}")
    sys.exit(SKIP)


# ------------------------------------------------------------------------- the suite
def apt_source_lines():
    """The machine's apt sources turned into deb-src entries (one-line format)."""
    lines = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line.startswith("deb "):
                        lines.append("deb-src " + line[4:])
        except OSError:
            pass
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            opts = f"[signed-by={fields['signed-by']}] " if fields.get("signed-by", "").startswith("/") else ""
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    lines.append(f"deb-src {opts}{uri} {suite} {fields.get('components', '')}".strip())
    return lines


def fetch_suite(cache):
    """Downloads and unpacks the Redis source package; returns the tree or None."""
    for tree in sorted(glob.glob(os.path.join(cache, "redis-*"))):
        if os.path.exists(os.path.join(tree, "tests", "test_helper.tcl")):
            return tree
    if not shutil.which("apt-get"):
        skip("no apt-get to download the Redis source package with")
    sources = apt_source_lines()
    if not sources:
        skip("no apt sources to derive deb-src entries from")
    work = tempfile.mkdtemp(prefix="apt-", dir=cache)
    try:
        for d in ("lists/partial", "cache/archives/partial", "parts"):
            os.makedirs(os.path.join(work, d))
        with open(os.path.join(work, "sources.list"), "w") as f:
            f.write("\n".join(sources) + "\n")
        opts = []
        for o in (f"Dir::Etc::sourcelist={work}/sources.list", f"Dir::Etc::sourceparts={work}/parts",
                  f"Dir::State::Lists={work}/lists", f"Dir::Cache={work}/cache", "Debug::NoLocking=1"):
            opts += ["-o", o]
        print("redis suite: downloading the Redis source package (apt-get source --download-only redis)")
        for args in (["update"], ["source", "--download-only", "redis"]):
            p = subprocess.run(["apt-get", "-qq"] + opts + args, cwd=work, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                skip(f"apt-get {args[0]} failed: {(p.stderr or p.stdout).strip()[-500:]}")
        tarballs = glob.glob(os.path.join(work, "redis_*.orig.tar.*"))
        if not tarballs:
            skip("apt-get source left no redis_*.orig.tar.* behind")
        subprocess.run(["tar", "-xf", tarballs[0], "-C", cache], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for tree in sorted(glob.glob(os.path.join(cache, "redis-*"))):
        if os.path.exists(os.path.join(tree, "tests", "test_helper.tcl")):
            return tree
    skip("the Redis source package has no tests/test_helper.tcl")


def patch_suite(tree):
    """Adapts the suite's harness to respq, once (each edit must find its target)."""
    edits = [
        # respq has no functions: the harness's FUNCTION FLUSH before each unit is ignored.
        ("tests/support/server.tcl", "    r function flush\n", "    catch {r function flush}\n"),
        # Redis's encoding settings (list-max-listpack-size, hash-max-ziplist-value, ...)
        # do not apply to respq's own encodings: setting them is ignored.
        ("tests/test_helper.tcl", '''    [srv $level "client"] {*}$args
}''', '''    if {[string tolower [lindex $args 0]] eq "config" && [string tolower [lindex $args 1]] eq "set" &&
        [regexp {^(list-|hash-max-|set-max-|zset-max-|stream-node-max-)} [lindex $args 2]]} {
        catch {[srv $level "client"] {*}$args}
        return OK
    }
    [srv $level "client"] {*}$args
}'''),
    ]
    for rel, old, new in edits:
        path = os.path.join(tree, rel)
        text = open(path).read()
        if new in text:
            continue
        if old not in text:
            raise SystemExit(f"redis suite: {rel} has changed: cannot adapt it to respq")
        open(path, "w").write(text.replace(old, new, 1))


# --------------------------------------------------------------------- the outcome
def load_expected():
    """{(unit, test name): reason} from expected-failures.txt."""
    expected = {}
    with open(EXPECTED) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(" | ")
            if len(parts) < 3:
                raise SystemExit(f"{EXPECTED}:{n}: expected 'unit | test name | reason'")
            expected[(parts[0].strip(), " | ".join(parts[1:-1]).strip())] = parts[-1].strip()
    return expected


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
        os.makedirs(cache, exist_ok=True)
        tree = fetch_suite(cache)
    patch_suite(tree)
    expected = load_expected()

    with Respq("--http-queue", "tasks", "off") as rq:
        cmd = ["tclsh", "tests/test_helper.tcl", "--host", "127.0.0.1", "--port", str(rq.port), "--singledb",
               "--durable", "--clients", "1", "--timeout", "300", "--ignore-encoding",
               # Tags the suite gives to tests that need what an external server lacks.
               "--tags", "-needs:debug", "--tags", "-needs:repl", "--tags", "-needs:config-maxmemory"]
        for u in units:
            cmd += ["--single", u]
        print("redis suite: " + " ".join(cmd[2:]))
        p = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=1800,
                           env=dict(os.environ, TERM="dumb"))
        alive = rq.alive()
    output = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout + p.stderr)
    if keep_log:
        open(keep_log, "w").write(output)

    passed, failed, exceptions = parse(output)
    in_scope = {k: v for k, v in expected.items() if k[0] in units}
    unexpected = {k: v for k, v in failed.items() if k not in expected}
    now_passing = sorted(k for k in in_scope if k in passed)
    print(f"redis suite: {len(passed)} passed, {len(failed)} failed "
          f"({len(failed) - len(unexpected)} of them listed in expected-failures.txt)")
    for k in now_passing:
        print(f"  listed as failing but passed: {k[0]} | {k[1]}")
    ok = True
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
