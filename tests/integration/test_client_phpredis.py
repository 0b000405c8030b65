"""phpredis (the PHP extension, RESP2) against the broker, as a PHP app uses it.

Each case runs tests/integration/php/cases.php with the php CLI; the PHP side asserts
and exits non-zero with a FAIL line on a mismatch. Multi-process cases (a waiter and a
producer, a subscriber and a publisher) are orchestrated from here.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Monitor, Respq, php, run_tests, wait_blocked  # noqa: E402

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "php", "cases.php")
PASSWORD = "s3cret-pass"


class Servers:
    """One broker without a password for most cases, started once for the file."""

    def __init__(self):
        self.r = Respq()

    def dump_log(self):
        self.r.dump_log()

    def __exit__(self, *a):
        self.r.__exit__(None, None, None)


def case(port, name, *args, timeout=120):
    p = php(CASES, port, name, *args, timeout=timeout, check=False)
    assert p.returncode == 0 and f"ok {name}" in p.stdout, (
        f"php case {name} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p.stdout


def spawn_case(port, name, *args):
    return subprocess.Popen(["php", CASES, str(port), name] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, name, timeout=30):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"php case {name} did not finish in {timeout}s\nstdout: {out}\nstderr: {err}")
    assert proc.returncode == 0 and f"ok {name}" in out, (
        f"php case {name} exited {proc.returncode}\nstdout: {out}\nstderr: {err}")
    return out


def test_connect_then_ping_and_echo(s):
    case(s.r.port, "connect")


def test_pconnect_reuse_checks_liveness_with_echo_and_keeps_the_connection(s):
    with Monitor(s.r.port) as mon:
        case(s.r.port, "pconnect_reuse")
        line = mon.wait_for(lambda l: '"ECHO" "phpredis' in l or '"echo" "phpredis' in l)
    assert line.split('"')[1].lower() == "echo", line


def test_pconnect_reconnects_when_the_pooled_connection_was_killed(s):
    case(s.r.port, "pconnect_after_kill")


def test_list_commands_behave_like_redis_lists(s):
    case(s.r.port, "lists")


def test_brpop_blpop_integer_and_float_timeouts_return_empty_array_or_key_value(s):
    case(s.r.port, "blocking_timeouts")


def test_blocking_pops_inside_multi_answer_as_timed_out(s):
    case(s.r.port, "blocking_in_multi")


def test_brpop_is_served_by_a_push_from_a_second_connection(s):
    waiter = spawn_case(s.r.port, "brpop_wait", "php:served", "job-1", 20)
    try:
        case(s.r.port, "push_when_blocked", "php:served", "job-1", 1)
        out = finish(waiter, "brpop_wait")
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert 'served ["php:served","job-1"]' in out, out


def test_read_timeout_cuts_brpop_and_a_later_push_stays_in_the_list(s):
    case(s.r.port, "read_timeout", "php:rt1", 0, 1)
    assert s.r.client().llen("php:rt1") == 0


def test_read_timeout_cuts_brpop_and_a_later_push_goes_to_the_next_waiter(s):
    # The waiter that times out blocks first (oldest); a second, patient waiter blocks
    # after it, before the first one's read timeout fires. The push must skip the dead
    # connection and serve the second waiter.
    port = s.r.port
    first = spawn_case(port, "read_timeout", "php:rt2", 1, 3)
    second = None
    try:
        wait_blocked(port, 1)
        second = spawn_case(port, "brpop_wait", "php:rt2", "pushed-after-timeout", 20)
        wait_blocked(port, 2, timeout=2.5)
        finish(first, "read_timeout")
        out = finish(second, "brpop_wait")
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert 'served ["php:rt2","pushed-after-timeout"]' in out, out
    assert s.r.client().llen("php:rt2") == 0


def test_pipeline_of_many_commands_returns_every_reply_in_order(s):
    case(s.r.port, "pipeline")


def test_multi_exec_runs_queued_commands_atomically(s):
    case(s.r.port, "multi_exec")


def test_discard_and_abandoned_multi_run_nothing(s):
    case(s.r.port, "discard")


def test_publish_from_one_process_reaches_a_subscriber_in_another(s):
    port = s.r.port
    c = s.r.client()
    n = 25
    sub = spawn_case(port, "subscriber", n, "php:events", "php:other")
    try:
        # Both channels subscribed before anything is published.
        deadline = time.time() + 10
        while time.time() < deadline:
            counts = dict(c.pubsub_numsub("php:events", "php:other"))
            if counts.get(b"php:events") == 1 and counts.get(b"php:other") == 1:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"subscriber never subscribed: {c.pubsub_numsub('php:events', 'php:other')}")
        case(port, "publisher", "php:events", n, 1)
        out = finish(sub, "subscriber")
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    got = json.loads(out.splitlines()[0])
    assert got == [["php:events", f"message {i}"] for i in range(n)], got
    # The subscriber left: nobody listens any more.
    deadline = time.time() + 10
    while dict(c.pubsub_numsub("php:events")).get(b"php:events") != 0:
        assert time.time() < deadline, "subscription outlived the subscriber's connection"
        time.sleep(0.02)


def test_rawcommand_command_info_and_client(s):
    case(s.r.port, "rawcommand")


def test_select_move_and_swapdb_across_databases(s):
    case(s.r.port, "select")


def test_auth_with_requirepass_noauth_wrongpass_and_success():
    with Respq("--requirepass", PASSWORD) as r:
        case(r.port, "auth", PASSWORD)


if __name__ == "__main__":
    run_tests(globals(), setup=Servers)
