<?php
// Assertion helpers for the phpredis integration scripts: a failed check prints what
// was expected and what came back, then exits 1 (an uncaught exception exits 255).
error_reporting(E_ALL);
set_error_handler(function ($no, $str, $file, $line) {
    fwrite(STDERR, "FAIL: PHP error $str at $file:$line\n");
    exit(1);
});

function fail(string $msg): void
{
    fwrite(STDERR, "FAIL: $msg\n");
    exit(1);
}

function show($v): string
{
    return var_export($v, true);
}

function check(bool $cond, string $msg): void
{
    if (!$cond) {
        fail($msg);
    }
}

function eq($actual, $expected, string $msg): void
{
    if ($actual !== $expected) {
        fail("$msg: expected " . show($expected) . ", got " . show($actual));
    }
}

function connect_to(int $port, array $opts = []): Redis
{
    $r = new Redis();
    if (!$r->connect('127.0.0.1', $port, 5.0)) {
        fail("connect to port $port failed");
    }
    foreach ($opts as $k => $v) {
        $r->setOption($k, $v);
    }
    return $r;
}

// Waits until INFO clients shows $n blocked clients.
function wait_blocked(Redis $r, int $n, float $timeout = 10.0): void
{
    $deadline = microtime(true) + $timeout;
    do {
        $info = $r->info('clients');
        if (isset($info['blocked_clients']) && (int)$info['blocked_clients'] === $n) {
            return;
        }
        usleep(10000);
    } while (microtime(true) < $deadline);
    fail("blocked_clients never became $n: " . show($info ?? null));
}

// Expects $fn to throw a RedisException whose message starts with $prefix.
function expect_exception(callable $fn, string $prefix, string $msg): string
{
    try {
        $ret = $fn();
    } catch (RedisException $e) {
        check(strncmp($e->getMessage(), $prefix, strlen($prefix)) === 0,
              "$msg: exception " . show($e->getMessage()) . " does not start with " . show($prefix));
        return $e->getMessage();
    }
    fail("$msg: expected a RedisException starting " . show($prefix) . ", got " . show($ret));
}

// getLastError() without the stray NUL some phpredis 5.3 reply paths leave at the end.
function last_error(Redis $r): ?string
{
    $e = $r->getLastError();
    return $e === null ? null : rtrim($e, "\0");
}
