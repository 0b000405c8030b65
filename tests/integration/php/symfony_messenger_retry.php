<?php
// Symfony Messenger's retry and failure transport over its Redis transport (Debian's
// php-symfony-messenger, php-symfony-redis-messenger and php-symfony-event-dispatcher
// 5.4, phpredis), run by test_symfony_messenger.py against redis-server and against
// respq; the two outputs must be equal.
//
//     php symfony_messenger_retry.php <port>
//
// A Worker consumes the transport "messages" (stream "messages") with the listeners a
// Symfony application registers: SendFailedMessageForRetryListener (a
// MultiplierRetryStrategy: 2 retries, 100 ms then 200 ms), AddErrorDetailsStampListener
// and SendFailedMessageToFailureTransportListener (the failure transport: stream
// "failed"). Its handler throws for "bad": the message is retried twice through the
// delayed queue, then sent to the failure transport; "ok" is handled once. Then a second
// Worker consumes the failure transport with a handler that no longer throws, as
// `messenger:failed:retry` does, and the message leaves it. Every worker event, the
// stamps the handlers saw and the streams' figures after each phase are printed as one
// JSON object. Workers stop on their own condition or at a deadline (then the output
// shows what was missing).
require '/usr/share/php/Symfony/Component/Messenger/autoload.php';
require '/usr/share/php/Symfony/Component/Messenger/Bridge/Redis/autoload.php';
require '/usr/share/php/Symfony/Component/EventDispatcher/autoload.php';

use Psr\Container\ContainerInterface;
use Symfony\Component\EventDispatcher\EventDispatcher;
use Symfony\Component\Messenger\Bridge\Redis\Transport\Connection;
use Symfony\Component\Messenger\Bridge\Redis\Transport\RedisTransport;
use Symfony\Component\Messenger\Envelope;
use Symfony\Component\Messenger\Event\WorkerMessageFailedEvent;
use Symfony\Component\Messenger\Event\WorkerMessageHandledEvent;
use Symfony\Component\Messenger\Event\WorkerMessageRetriedEvent;
use Symfony\Component\Messenger\Event\WorkerRunningEvent;
use Symfony\Component\Messenger\EventListener\AddErrorDetailsStampListener;
use Symfony\Component\Messenger\EventListener\SendFailedMessageForRetryListener;
use Symfony\Component\Messenger\EventListener\SendFailedMessageToFailureTransportListener;
use Symfony\Component\Messenger\Handler\HandlersLocator;
use Symfony\Component\Messenger\MessageBus;
use Symfony\Component\Messenger\Middleware\HandleMessageMiddleware;
use Symfony\Component\Messenger\Retry\MultiplierRetryStrategy;
use Symfony\Component\Messenger\Stamp\ErrorDetailsStamp;
use Symfony\Component\Messenger\Stamp\RedeliveryStamp;
use Symfony\Component\Messenger\Stamp\SentToFailureTransportStamp;
use Symfony\Component\Messenger\Transport\Serialization\PhpSerializer;
use Symfony\Component\Messenger\Worker;

final class Job
{
    public $name;

    public function __construct(string $name)
    {
        $this->name = $name;
    }
}

// The service locators the listeners take (a Symfony application's container builds them).
final class Locator implements ContainerInterface
{
    private $services;

    public function __construct(array $services)
    {
        $this->services = $services;
    }

    public function get($id)
    {
        return $this->services[$id];
    }

    public function has($id): bool
    {
        return isset($this->services[$id]);
    }
}

$port = (int)$argv[1];

function redis_client(int $port): Redis
{
    $r = new Redis();
    $r->connect('127.0.0.1', $port, 5.0);
    return $r;
}

function transport(int $port, string $stream): RedisTransport
{
    $conn = new Connection(['stream' => $stream, 'group' => 'symfony', 'consumer' => 'worker',
        'delete_after_reject' => true, 'redeliver_timeout' => 3600, 'claim_interval' => 60000],
        [], [], redis_client($port));
    return new RedisTransport($conn, new PhpSerializer());
}

function state(Redis $r, string $stream): array
{
    $pending = $r->xPending($stream, 'symfony');
    $groups = $r->xInfo('GROUPS', $stream);
    $g = $groups[0] ?? [];
    return [
        'xlen' => $r->xLen($stream),
        'pending' => $pending[0] ?? null,
        'group' => ['consumers' => $g['consumers'] ?? null, 'pending' => $g['pending'] ?? null,
                    'entries-read' => $g['entries-read'] ?? null, 'lag' => $g['lag'] ?? null],
        'delayed' => $r->zCard($stream . '__queue'),
    ];
}

// What a handler saw of an envelope's stamps.
function stamps(Envelope $e): array
{
    $sent = $e->last(SentToFailureTransportStamp::class);
    $error = $e->last(ErrorDetailsStamp::class);
    return [
        'retry_count' => RedeliveryStamp::getRetryCountFromEnvelope($e),
        'redeliveries' => count($e->all(RedeliveryStamp::class)),
        'sent_to_failure_from' => $sent ? $sent->getOriginalReceiverName() : null,
        'error' => $error ? $error->getExceptionMessage() : null,
        'errors' => count($e->all(ErrorDetailsStamp::class)),
    ];
}

$admin = redis_client($port);
$admin->flushAll();
$out = [];
$log = [];
$throwFor = ['bad' => true];

$messages = transport($port, 'messages');
$failed = transport($port, 'failed');
$messages->setup();
$failed->setup();

$handler = function (Job $job) use (&$throwFor) {
    if (isset($throwFor[$job->name])) {
        throw new RuntimeException('cannot handle ' . $job->name);
    }
};
$seen = [];
// A middleware before the handler records each attempt with the stamps it carries.
$recorder = new class($seen) implements \Symfony\Component\Messenger\Middleware\MiddlewareInterface {
    private $seen;

    public function __construct(array &$seen)
    {
        $this->seen = &$seen;
    }

    public function handle(Envelope $envelope, \Symfony\Component\Messenger\Middleware\StackInterface $stack): Envelope
    {
        $this->seen[] = [$envelope->getMessage()->name, stamps($envelope)];
        return $stack->next()->handle($envelope, $stack);
    }
};
$bus = new MessageBus([$recorder, new HandleMessageMiddleware(new HandlersLocator([Job::class => [$handler]]))]);

$dispatcher = new EventDispatcher();
$dispatcher->addSubscriber(new SendFailedMessageForRetryListener(new Locator(['messages' => $messages]),
    new Locator(['messages' => new MultiplierRetryStrategy(2, 100, 2)]), null, $dispatcher));
$dispatcher->addSubscriber(new AddErrorDetailsStampListener());
$dispatcher->addSubscriber(new SendFailedMessageToFailureTransportListener(new Locator(['messages' => $failed])));
$dispatcher->addListener(WorkerMessageFailedEvent::class, function (WorkerMessageFailedEvent $e) use (&$log) {
    $log[] = ['failed', $e->getReceiverName(), $e->getEnvelope()->getMessage()->name,
              RedeliveryStamp::getRetryCountFromEnvelope($e->getEnvelope()), $e->willRetry()];
}, -200);
$dispatcher->addListener(WorkerMessageRetriedEvent::class, function (WorkerMessageRetriedEvent $e) use (&$log) {
    $log[] = ['retried', $e->getReceiverName(), $e->getEnvelope()->getMessage()->name,
              RedeliveryStamp::getRetryCountFromEnvelope($e->getEnvelope())];
});
$dispatcher->addListener(WorkerMessageHandledEvent::class, function (WorkerMessageHandledEvent $e) use (&$log) {
    $log[] = ['handled', $e->getReceiverName(), $e->getEnvelope()->getMessage()->name];
});
// Stops a worker once `$done()` holds while it is idle, or at its deadline.
$stopWhen = function (callable $done, float $seconds) use ($dispatcher, &$log) {
    $deadline = microtime(true) + $seconds;
    $listener = function (WorkerRunningEvent $e) use ($done, $deadline, &$log) {
        if ($e->isWorkerIdle() && $done()) {
            $e->getWorker()->stop();
        } elseif (microtime(true) > $deadline) {
            $log[] = ['deadline'];
            $e->getWorker()->stop();
        }
    };
    $dispatcher->addListener(WorkerRunningEvent::class, $listener);
    return $listener;
};

// Phase 1: "bad" fails three times (two retries), then goes to the failure transport.
$messages->send(new Envelope(new Job('bad')));
$messages->send(new Envelope(new Job('ok')));
$out['sent'] = state($admin, 'messages');
$l = $stopWhen(fn () => $admin->xLen('failed') >= 1 && $admin->zCard('messages__queue') == 0, 20.0);
(new Worker(['messages' => $messages], $bus, $dispatcher))->run(['sleep' => 10000]);
$dispatcher->removeListener(WorkerRunningEvent::class, $l);
$out['phase1_log'] = $log;
$out['phase1_seen'] = $seen;
$out['phase1_messages'] = state($admin, 'messages');
$out['phase1_failed'] = state($admin, 'failed');
// The failed message as the failure transport holds it (its stamps), not yet received.
$raw = $admin->xRange('failed', '-', '+');
$out['failed_entries'] = count($raw);

// Phase 2: retry from the failure transport, the handler now succeeds.
$log = [];
$seen = [];
unset($throwFor['bad']);
$l = $stopWhen(function () use (&$log) {
    return count(array_filter($log, fn ($x) => $x[0] === 'handled')) >= 1;
}, 20.0);
(new Worker(['failed' => $failed], $bus, $dispatcher))->run(['sleep' => 10000]);
$out['phase2_log'] = $log;
$out['phase2_seen'] = $seen;
$out['phase2_messages'] = state($admin, 'messages');
$out['phase2_failed'] = state($admin, 'failed');
$out['nothing_left'] = [iterator_count($messages->get()), iterator_count($failed->get())];

echo json_encode($out, JSON_PRETTY_PRINT), "\n";
