<?php
// One Symfony Messenger scenario over its Redis transport (Debian's php-symfony-messenger
// and php-symfony-redis-messenger 5.4, phpredis), run by test_symfony_messenger.py against
// redis-server and against respq; the two outputs must be equal.
//
//     php symfony_messenger.php <port>
//
// Steps: send two messages and a delayed one; receive and ack the first, receive and
// reject the second (delete_after_reject: acked and deleted); the delayed one is not
// there before its time and arrives after it; a consumer that takes a message and dies
// without acking leaves it pending, and another consumer claims it once it has been idle
// for redeliver_timeout (XPENDING + XCLAIM), receives it and acks it. After each step
// the stream, group and delayed-queue figures that do not depend on time are printed.
// Prints one JSON object. Waits poll with deadlines; a step that never completes fails.
require '/usr/share/php/Symfony/Component/Messenger/autoload.php';
require '/usr/share/php/Symfony/Component/Messenger/Bridge/Redis/autoload.php';

use Symfony\Component\Messenger\Bridge\Redis\Transport\Connection;
use Symfony\Component\Messenger\Bridge\Redis\Transport\RedisTransport;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Stamp\DelayStamp;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;

final class Job
{
    public $name;

    public function __construct(string $name)
    {
        $this->name = $name;
    }
}

$port = (int)$argv[1];

function redis_client(int $port): Redis
{
    $r = new Redis();
    $r->connect('127.0.0.1', $port, 5.0);
    return $r;
}

// A transport as a consumer `name`; redeliver_timeout in seconds, claim_interval in ms.
function transport(int $port, string $name, float $redeliver = 3600, int $claim = 60000): array
{
    $redis = redis_client($port);
    $conn = new Connection(['stream' => 'messages', 'group' => 'symfony', 'consumer' => $name,
        'redeliver_timeout' => $redeliver, 'claim_interval' => $claim, 'delete_after_reject' => true],
        [], [], $redis);
    return [new RedisTransport($conn, new PhpSerializer()), $redis];
}

// The messages one get() returns, by name.
function receive(RedisTransport $t): array
{
    $got = [];
    foreach ($t->get() as $envelope) {
        $got[] = $envelope;
    }
    return $got;
}

function names(array $envelopes): array
{
    return array_map(fn ($e) => $e->getMessage()->name, $envelopes);
}

// Polls get() until it returns something (or the deadline passes: an empty result).
function receive_within(RedisTransport $t, float $seconds): array
{
    $deadline = microtime(true) + $seconds;
    do {
        $got = receive($t);
        if ($got) {
            return $got;
        }
        usleep(20000);
    } while (microtime(true) < $deadline);
    return [];
}

function state(Redis $r): array
{
    $pending = $r->xPending('messages', 'symfony');
    $groups = $r->xInfo('GROUPS', 'messages');
    $g = $groups[0] ?? [];
    return [
        'xlen' => $r->xLen('messages'),
        'pending' => $pending[0] ?? null,
        'pending_by_consumer' => $pending[3] ?? null,
        'group' => ['name' => $g['name'] ?? null, 'consumers' => $g['consumers'] ?? null,
                    'pending' => $g['pending'] ?? null, 'entries-read' => $g['entries-read'] ?? null,
                    'lag' => $g['lag'] ?? null],
        'delayed' => $r->zCard('messages__queue'),
        'type' => $r->type('messages'),
    ];
}

$admin = redis_client($port);
$admin->flushAll();
$out = [];
[$a, $ra] = transport($port, 'alice');

$a->setup();
$out['setup'] = state($admin);

$a->send(new Envelope(new Job('m1')));
$a->send(new Envelope(new Job('m2')));
$a->send(new Envelope(new Job('m3'), [new DelayStamp(700)]));
$out['sent'] = state($admin);

$m1 = receive($a);
$out['get1'] = names($m1);
$a->ack($m1[0]);
$m2 = receive($a);
$out['get2'] = names($m2);
$a->reject($m2[0]);
$out['acked_rejected'] = state($admin);

// The delayed message is not there before its time (700 ms from sending).
$early = receive($a);
$out['delayed_early'] = names($early);
$m3 = receive_within($a, 10.0);
$out['delayed_late'] = names($m3);
if ($m3) {
    $a->ack($m3[0]);
}
$out['delayed_done'] = state($admin);

// A consumer that dies with a message pending; another claims it.
$a->send(new Envelope(new Job('m4')));
[$d, $rd] = transport($port, 'dying');
$m4 = receive($d);
$out['dying_got'] = names($m4);
$rd->close();
unset($d, $rd);
$out['dying_gone'] = state($admin);

[$b, $rb] = transport($port, 'bob', 0.3, 0);
$claimed = receive_within($b, 10.0);
$out['claimed'] = names($claimed);
$out['claimed_state'] = state($admin);
if ($claimed) {
    $b->ack($claimed[0]);
}
$out['final'] = state($admin);
$out['nothing_left'] = names(receive($b));

echo json_encode($out, JSON_PRETTY_PRINT), "\n";
