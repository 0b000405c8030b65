<?php
// One Laravel 8 queue scenario, run by test_laravel_queue.py against redis-server and
// against respq; the two outputs must be equal.
//
//     php laravel_queue.php <port> <phpredis|predis> <dir>
//
// It drives the real RedisQueue and Worker (see laravel/bootstrap.php) through push,
// pushRaw, later, bulk, size, pop, release with and without delay, delete, clear, the
// migration of delayed and expired reserved jobs, a blocking pop (block_for) woken by a
// push from another process, and a worker daemon that runs the jobs. It prints one JSON
// object: what each step returned and the keys the server held after it (job ids and
// uuids, which are random, replaced by the job's name; zset scores as seconds from the
// moment the step froze Laravel's clock), and the worker's run log. PHP-side invariants
// (a delayed job never runs early, a stale reservation comes back only after
// retry_after) are checked here and fail the run.
require __DIR__ . '/common.php';
require __DIR__ . '/laravel/bootstrap.php';
require __DIR__ . '/laravel/jobs.php';

use Illuminate\Queue\Events\JobExceptionOccurred;
use Illuminate\Queue\Events\JobProcessed;
use Illuminate\Queue\WorkerOptions;
use Illuminate\Support\Carbon;

[$port, $client, $dir] = [(int)$argv[1], $argv[2], $argv[3]];
JobLog::$path = "$dir/jobs.log";
if (is_file(JobLog::$path)) {
    unlink(JobLog::$path);
}

const RETRY_AFTER = 2;
$app = laravel_queue($client, $port, ['retry_after' => RETRY_AFTER]);
$queue = $app->queue;
$conn = $app->redis->connection();
$conn->flushdb();

$out = ['client' => $client, 'steps' => []];
$names = [];  // random job id or uuid => job name, filled as the dumps meet payloads
$t0 = 0;      // the frozen "now" of the current step, for zset scores

function step(string $name, $value): void
{
    global $out;
    $out['steps'][] = [$name, $value, (object)dump_keys()];
}

// The job name a payload belongs to, from its serialised command or raw data.
function job_name(array $p): string
{
    if (isset($p['data']['command'])) {
        return unserialize($p['data']['command'])->name;
    }
    return $p['data']['name'] ?? '?';
}

// A payload as the server holds it, byte for byte, with its random id and uuid replaced
// by "<id of NAME>" / "<uuid of NAME>". A job whose id changed on the way shows up.
function normalise_payload(string $raw): string
{
    global $names;
    $p = json_decode($raw, true);
    if (!is_array($p)) {
        return $raw;
    }
    $name = job_name($p);
    foreach (['id', 'uuid'] as $field) {
        if (!isset($p[$field])) {
            continue;
        }
        $v = $p[$field];
        if (!isset($names[$v])) {
            $names[$v] = $name;
        }
        $label = $names[$v] === $name ? "<$field of $name>" : "<$field of {$names[$v]}, now on $name>";
        $raw = str_replace(json_encode($v), json_encode($label), $raw);
    }
    return $raw;
}

// Every key of the database, through a plain phpredis connection: type and content.
function dump_keys(): array
{
    global $port, $t0;
    static $probe = null;
    if ($probe === null) {
        $probe = connect_to($port);
    }
    $keys = $probe->keys('*');
    sort($keys);
    $dump = [];
    foreach ($keys as $k) {
        $type = $probe->type($k);
        switch ($type) {
            case Redis::REDIS_LIST:
                $dump[$k] = ['list', array_map('normalise_payload', $probe->lRange($k, 0, -1))];
                break;
            case Redis::REDIS_ZSET:
                $items = [];
                foreach ($probe->zRange($k, 0, -1, true) as $member => $score) {
                    $items[] = [normalise_payload((string)$member), $t0 ? $score - $t0 : $score];
                }
                sort($items);  // members of equal score sort by their random ids
                $dump[$k] = ['zset', $items];
                break;
            case Redis::REDIS_STRING:
                $dump[$k] = ['string', $probe->get($k)];
                break;
            default:
                $dump[$k] = ['type ' . $type];
        }
    }
    return $dump;
}

// What a pop returned: the job's name, its attempts (the reserved payload's count) and
// the queue it came from.
function popped($job): array
{
    return [job_name($job->payload()), $job->attempts(), $job->getQueue()];
}

// Freezes Laravel's clock (Carbon) at the current second for the enqueueing steps, so the
// scores it writes are exact offsets; null thaws it.
function freeze(bool $on): void
{
    global $t0;
    $t0 = $on ? time() : 0;
    Carbon::setTestNow($on ? Carbon::createFromTimestamp($t0) : null);
}

// ---- enqueueing -------------------------------------------------------------------------
freeze(true);
$frozenAt = $t0;
step('size of an empty queue', $queue->size());
step('pop of an empty queue', $queue->pop());
foreach ([['a1', 'ok'], ['a2', 'fail-once'], ['a3', 'release-once']] as [$n, $b]) {
    $id = $queue->push(new RecordJob($n, $b));
    step("push $n", strlen($id));
}
$raw = json_encode(['uuid' => 'raw-uuid-1', 'displayName' => 'RawJob', 'job' => 'RawJob',
                    'maxTries' => null, 'timeout' => null, 'data' => ['name' => 'raw1'],
                    'id' => 'raw-id-1', 'attempts' => 0]);
step('pushRaw raw1', $queue->pushRaw($raw));
step('later 2 s d2', strlen($queue->later(2, new RecordJob('d2'))));
step('later 1 s d1', strlen($queue->later(1, new RecordJob('d1'))));
$queue->bulk([new RecordJob('b1'), new RecordJob('b2'), new RecordJob('f1', 'always-fail')]);
step('bulk b1 b2 f1', null);
step('size', $queue->size());

// ---- a worker runs them -----------------------------------------------------------------
// The worker daemon (queue:work) runs until every attempt the scenario plans has run:
// a1, a2 twice (fails once, released at once), a3 twice (releases itself for 1 s), raw1,
// d1 and d2 when due, b1, b2, f1 twice (then failed). It polls every 50 ms when idle.
freeze(false);
$expected = 12;
$attempts = 0;
$app->events->listen([JobProcessed::class, JobExceptionOccurred::class],
    function () use (&$attempts, $expected, $app) {
        if (++$attempts >= $expected) {
            $app->worker->shouldQuit = true;
        }
    });
$started = microtime(true);
$options = new WorkerOptions('default', 0, 128, 60, 0.05, 3, false, false, 0, 30);
$status = $app->worker->daemon('redis', 'default', $options);
$elapsed = microtime(true) - $started;
check($attempts === $expected, "the worker stopped after $attempts of $expected attempts in " .
      round($elapsed, 2) . " s (status $status); log: " . show(JobLog::lines()));
$log = JobLog::lines();
foreach ($log as $l) {
    if ($l['name'] === 'd1' || $l['name'] === 'd2') {
        $due = $frozenAt + (int)substr($l['name'], 1);
        check($l['at'] >= $due, "{$l['name']} ran at {$l['at']}, before it was due at $due");
    }
}
$out['worker'] = [
    'status' => $status,
    'runs' => array_map(function ($l) {
        return [$l['name'], $l['attempt'], $l['event']];
    }, $log),
    'reported' => $app->exceptions->reported,
];
step('after the worker', $queue->size());

// ---- a reservation that expires ---------------------------------------------------------
// A worker pops x1 and dies without deleting it: after retry_after seconds a pop migrates
// it from :reserved back to the queue, and it comes back with attempts 2.
freeze(true);
$queue->push(new RecordJob('x1'));
$job = $queue->pop();
step('pop x1, then the worker dies', popped($job));
step('size with x1 reserved', $queue->size());
$reservedAt = $t0;
$deadline = microtime(true) + 10;
do {
    freeze(true);  // the real current second, as Laravel reads it
    $again = $queue->pop();
    if ($again === null) {
        usleep(50000);
    }
} while ($again === null && microtime(true) < $deadline);
check($again !== null, 'the expired reservation of x1 never came back');
check(time() >= $reservedAt + RETRY_AFTER, 'x1 came back before retry_after');
step('pop after retry_after', array_merge(popped($again), [$again->getJobId() === $job->getJobId()]));
$again->delete();
step('delete x1', $queue->size());

// ---- release by hand, with and without delay, then delete --------------------------------
freeze(true);
$queue->push(new RecordJob('r1'));
$r1 = $queue->pop();
$r1->release();
step('release r1 without delay', [$r1->isReleased(), $queue->size()]);
$r1 = $queue->pop();
step('pop r1 again', popped($r1));
$r1->release(5);
step('release r1 for 5 s', $queue->size());
step('pop while r1 waits', $queue->pop());
$queue->push(new RecordJob('r2'));
$r2 = $queue->pop();
$r2->delete();
step('delete r2', [$r2->isDeleted(), $queue->size()]);

// ---- clear ------------------------------------------------------------------------------
$queue->push(new RecordJob('c1'));
$queue->later(60, new RecordJob('c2'));
step('clear', $queue->clear('default'));
step('size after clear', $queue->size());
freeze(false);

// ---- a blocking pop (block_for) woken by a push from another process --------------------
// BLPOP on queues:blocking:notify; the child pushes 300 ms later on a connection of its
// own, which wakes the pop.
$blocking = laravel_queue($client, $port, ['queue' => 'blocking', 'block_for' => 5]);
$pid = pcntl_fork();
if ($pid === 0) {
    usleep(300000);
    $pusher = laravel_queue($client, $port, ['queue' => 'blocking']);
    $pusher->queue->push(new RecordJob('w1'));
    exit(0);
}
$before = microtime(true);
freeze(true);
$woken = $blocking->queue->pop();
$waited = microtime(true) - $before;
pcntl_waitpid($pid, $childStatus);
check($woken !== null, 'the blocking pop returned nothing');
check($waited >= 0.2 && $waited < 4.0, "the blocking pop returned after $waited s");
step('blocking pop woken by a push', popped($woken));
$woken->delete();
freeze(false);
$short = laravel_queue($client, $port, ['queue' => 'blocking', 'block_for' => 1]);
$before = microtime(true);
step('blocking pop of an empty queue', $short->queue->pop());
$waited = microtime(true) - $before;
check($waited >= 0.9, "a pop with block_for 1 on an empty queue returned after $waited s");

echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
