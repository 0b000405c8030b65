#!/usr/bin/python3
"""Runs phpredis's own test suite (tests/RedisTest.php of the php-redis source package)
against respq, with the phpredis extension installed on this machine: the client respq's
PHP users enqueue with, tested the way its authors test it against Redis.

Each test method of the Redis class runs in its own php process (a small driver that does
what the suite's TestSuite::run does for one method), so a PHP fatal error in one test
(a method called on the `false` a failed command returned) costs only that test. The outcome is compared with
phpredis-expected-failures.txt:

  - every test that fails must be listed there with its reason; any other failure fails
    this test;
  - a listed test that passes is reported, so the list can shrink.

The suite comes from the machine's php-redis source package, downloaded once into
RESPQ_REDIS_SUITE_CACHE (default .cache/redis-suite); RESPQ_PHPREDIS_SUITE_DIR names an
unpacked phpredis source tree instead. Without either, or without php and its redis
extension, the script says why and exits 77 (skipped).

    /usr/bin/python3 tests/redis-suite/run_phpredis_suite.py [testName ...]
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Respq, SOURCE_DIR  # noqa: E402
import source_package  # noqa: E402

WHAT = "phpredis suite"
EXPECTED = os.path.join(HERE, "phpredis-expected-failures.txt")


def skip(why):
    source_package.skip(WHAT, why)


# Runs exactly one test method the way the suite's TestSuite::run does (setUp, the
# method, PASSED when it added no error), printing "<status>" and the errors.
RUN_ONE = r"""<?php define('PHPREDIS_TESTRUN', true);
error_reporting(E_ALL & ~E_DEPRECATED);
ini_set('display_errors', '1');
require_once(__DIR__ . '/TestSuite.php');
require_once(__DIR__ . '/RedisTest.php');
TestSuite::flagColorization(false);
[$host, $port, $name] = [$argv[1], (int)$argv[2], $argv[3]];
$count = count(Redis_Test::$errors);
$t = new Redis_Test($host, $port, NULL);
try {
    $t->setUp();
    $t->$name();
    $status = $count === count(Redis_Test::$errors) ? 'PASSED' : 'FAILED';
} catch (TestSkippedException $e) {
    $status = 'SKIPPED';
} catch (Exception $e) {
    Redis_Test::$errors[] = "Uncaught exception '" . $e->getMessage() . "'\n";
    $status = 'FAILED';
}
echo "<$status>\n" . implode('', Redis_Test::$errors);
"""


def run_one(tests_dir, port, name):
    """Returns (PASSED|FAILED|SKIPPED|FATAL|TIMEOUT, output) for one test method."""
    try:
        # The session tests start php processes of their own, with the extension built in
        # the source tree unless TEST_PHP_ARGS is set: the installed one is used here.
        env = dict(os.environ, TEST_PHP_ARGS="-d display_startup_errors=0")
        p = subprocess.run(["php", "respq_run_one.php", "127.0.0.1", str(port), name], cwd=tests_dir,
                           capture_output=True, text=True, errors="replace", timeout=30, env=env)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return "TIMEOUT", "<timed out after 30 s>"
    m = re.search(r"^<(PASSED|FAILED|SKIPPED)>$", out, re.M)
    return (m.group(1) if m else "FATAL"), out


def main():
    only = sys.argv[1:]
    if not shutil.which("php"):
        skip("php is not installed")
    version = subprocess.run(["php", "-r", 'echo phpversion("redis");'], capture_output=True, text=True).stdout
    if not version.strip():
        skip("the php redis extension (php-redis) is not installed")
    tree = os.environ.get("RESPQ_PHPREDIS_SUITE_DIR")
    if not tree:
        cache = os.environ.get("RESPQ_REDIS_SUITE_CACHE", os.path.join(SOURCE_DIR, ".cache", "redis-suite"))
        # The package holds the sources of two releases; test the one that is installed.
        tree = source_package.fetch(WHAT, "php-redis", cache, f"redis-{version.strip()}", "tests/RedisTest.php")
    tests_dir = os.path.join(tree, "tests")
    source = open(os.path.join(tests_dir, "RedisTest.php")).read()
    names = re.findall(r"public function (test\w+)\s*\(", source)
    # Tests that assert wall-clock bounds (a session lock waited 2.5-3.5 s, ...) measure the
    # machine as much as the server: one that fails is run once more, and says so.
    bodies = re.split(r"public function (test\w+)\s*\(", source)
    timed = {bodies[i] for i in range(1, len(bodies) - 1, 2) if "microtime(" in bodies[i + 1]}
    if only:
        names = [n for n in names if n in only]
    expected = source_package.read_expected(EXPECTED, 1)  # test name: reason

    with open(os.path.join(tests_dir, "respq_run_one.php"), "w") as f:
        f.write(RUN_ONE)
    results, outputs = {}, {}
    with Respq("--http-queue", "tasks", "off") as rq:
        for name in names:
            results[name], outputs[name] = run_one(tests_dir, rq.port, name)
            if results[name] not in ("PASSED", "SKIPPED") and name in timed and name not in expected:
                first = results[name]
                results[name], outputs[name] = run_one(tests_dir, rq.port, name)
                print(f"  {name} (it times itself) {first} once, then {results[name]} when run again")
        alive = rq.alive()

    wanted = [n for n in names if n in results]
    passed = [n for n in wanted if results[n] in ("PASSED", "SKIPPED")]
    failed = [n for n in wanted if n not in passed]
    unexpected = [n for n in failed if n not in expected]
    print(f"{WHAT}: phpredis {version.strip()}, {len(wanted)} tests: {len(passed)} passed or skipped, "
          f"{len(failed)} failed ({len(failed) - len(unexpected)} of them listed in "
          f"{os.path.basename(EXPECTED)})")
    for n in wanted:
        if n in expected and n in passed:
            print(f"  listed as failing but passed: {n}")
    ok = alive and bool(passed) and not unexpected
    if not alive:
        print(f"{WHAT}: respq exited during the run")
    for n in unexpected:
        print(f"  UNEXPECTED {results[n]}: {n}\n" + "\n".join("      " + l for l in outputs[n].splitlines()[-15:]))
    print(f"{WHAT}: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
