<?php
// Prints the outcome of every task as respq reports it on tasks:results.
//
//   php results.php [--count=N] [--timeout=SECONDS] [--host=127.0.0.1] [--port=6380]
//                   [--queue=tasks]
//
// --count: exit after N outcomes (default: run until stopped).
// --timeout: exit when no outcome arrives for that many seconds (default: never).
// Environment (used when no option is given): RESPQ_HOST, RESPQ_PORT.
//
// An outcome is JSON: {"id", "queue", "url", "status", "code", "attempts",
// "duration_ms", "error", "node"}, plus "next_run" (unix time) when status is "retrying"
// and "truncated": true when the answer was longer than respq reads.
// status: delivered | retrying | dead | duplicate | cancelled.
//
// respq publishes outcomes only while someone listens, so start this before the producer
// if you want to see every one of them.

$opts = getopt('', ['count:', 'timeout:', 'host:', 'port:', 'queue:']);
$host = $opts['host'] ?? getenv('RESPQ_HOST') ?: '127.0.0.1';
$port = (int)($opts['port'] ?? getenv('RESPQ_PORT') ?: 6380);
$queue = $opts['queue'] ?? 'tasks';
$limit = (int)($opts['count'] ?? 0);
$timeout = (float)($opts['timeout'] ?? 0);

$redis = new Redis();
try {
    $redis->connect($host, $port, 2.0);
    // A subscriber waits for messages: the read timeout is the idle timeout (-1: none).
    $redis->setOption(Redis::OPT_READ_TIMEOUT, $timeout > 0 ? $timeout : -1);
} catch (RedisException $e) {
    fwrite(STDERR, "respq at $host:$port: {$e->getMessage()}\n");
    exit(1);
}

$seen = 0;
$byStatus = [];             // status => count
$last = microtime(true);    // when the last outcome arrived
try {
    $redis->subscribe(["$queue:results"], function (Redis $redis, string $channel, string $message)
                      use ($limit, &$seen, &$byStatus, &$last) {
        $last = microtime(true);
        $o = json_decode($message, true);
        if (!is_array($o)) {
            echo "? $message\n";
            return;
        }
        $seen++;
        $byStatus[$o['status']] = ($byStatus[$o['status']] ?? 0) + 1;
        printf("%-9s %3d  attempt %d  %7.1f ms  %s  %s%s\n", $o['status'], $o['code'], $o['attempts'],
               $o['duration_ms'], $o['id'], $o['url'], $o['error'] !== '' ? "  ($o[error])" : '');
        if ($limit > 0 && $seen >= $limit) {
            // The one way out of phpredis' subscribe(): close the connection, which makes
            // subscribe() throw.
            $redis->close();
        }
    });
} catch (RedisException $e) {
    $parts = [];
    foreach ($byStatus as $status => $n) {
        $parts[] = "$n $status";
    }
    printf("%d outcomes%s\n", $seen, $parts ? ': ' . implode(', ', $parts) : '');
    if ($limit > 0 && $seen >= $limit) {
        exit(0);
    }
    if ($timeout > 0 && microtime(true) - $last >= $timeout - 0.1) {
        exit(0);  // the read timeout expired: nothing arrived for --timeout seconds
    }
    fwrite(STDERR, "respq at $host:$port: {$e->getMessage()}\n");
    exit(1);
}
