<?php
// Laravel 8's queue, outside a Laravel app: the real Illuminate\Queue (RedisQueue, Worker,
// CallQueuedHandler) and Illuminate\Redis (RedisManager over phpredis or Predis) from the
// Debian packages php-illuminate-queue, php-illuminate-redis, php-illuminate-events and
// php-predis, wired by hand the way Illuminate\Queue\Capsule\Manager documents it: a
// container, a RedisManager bound as "redis", a "redis" queue connection. Nothing of the
// framework is replaced; the only app-side pieces are the job classes and the exception
// handler, which an app always writes itself.
//
//     require __DIR__ . '/bootstrap.php';
//     $app = laravel_queue('phpredis', 6380, ['retry_after' => 2]);
//     $app->queue->push(new RecordJob('a'));           // RedisQueue::push
//     $app->worker->daemon('redis', 'default', $options);
error_reporting(E_ALL);

// Laravel 8 and Predis 1.1 predate PHP 8.2, which flags some of their code as deprecated
// (dynamic properties, "static" in callables): an app on PHP 8.2 runs with the same
// notices. They are skipped here; every other PHP error still fails the script through
// the handler set before (common.php).
$previous_handler = set_error_handler(null);
set_error_handler(function ($no, $str, $file, $line) use ($previous_handler) {
    if ($no === E_DEPRECATED || $no === E_USER_DEPRECATED) {
        return true;
    }
    return $previous_handler ? $previous_handler($no, $str, $file, $line) : false;
});

require_once 'Illuminate/Queue/autoload.php';
require_once 'Illuminate/Redis/autoload.php';
require_once 'Illuminate/Events/autoload.php';
require_once 'Illuminate/Bus/autoload.php';
require_once 'Predis/autoload.php';

use Illuminate\Bus\Dispatcher as BusDispatcher;
use Illuminate\Container\Container;
use Illuminate\Contracts\Bus\Dispatcher as BusDispatcherContract;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Events\Dispatcher as EventsContract;
use Illuminate\Events\Dispatcher as EventDispatcher;
use Illuminate\Queue\Capsule\Manager as QueueCapsule;
use Illuminate\Queue\Worker;
use Illuminate\Redis\RedisManager;

// The app's exception handler: the Worker reports every exception a job throws here.
class RecordingExceptionHandler implements ExceptionHandler
{
    public $reported = [];

    public function report(Throwable $e)
    {
        $this->reported[] = get_class($e) . ': ' . $e->getMessage();
    }

    public function shouldReport(Throwable $e)
    {
        return true;
    }

    public function render($request, Throwable $e)
    {
        throw $e;
    }

    public function renderForConsole($output, Throwable $e)
    {
        fwrite(STDERR, (string)$e);
    }
}

class LaravelQueueApp
{
    /** @var Container */
    public $container;
    /** @var QueueCapsule */
    public $capsule;
    /** @var \Illuminate\Queue\RedisQueue */
    public $queue;
    /** @var RedisManager */
    public $redis;
    /** @var Worker */
    public $worker;
    /** @var EventDispatcher */
    public $events;
    /** @var RecordingExceptionHandler */
    public $exceptions;
}

/**
 * A queue connection "redis" (driver redis) over Redis connection "default" on
 * 127.0.0.1:$port, with Laravel's default key prefix. $client: phpredis or predis.
 * $queue: the connection's options (queue, retry_after, block_for).
 */
function laravel_queue(string $client, int $port, array $queue = [], array $redis = []): LaravelQueueApp
{
    $app = new LaravelQueueApp();
    $app->container = $container = new Container();
    Container::setInstance($container);
    $container->instance(Illuminate\Contracts\Container\Container::class, $container);

    $app->events = new EventDispatcher($container);
    $container->instance(EventsContract::class, $app->events);
    $container->instance('events', $app->events);
    $container->singleton(BusDispatcherContract::class, function ($c) {
        return new BusDispatcher($c);
    });
    $app->exceptions = new RecordingExceptionHandler();
    $container->instance(ExceptionHandler::class, $app->exceptions);

    // config/database.php's "redis" section of a fresh Laravel 8 app, with this port.
    $app->redis = new RedisManager($container, $client, [
        'client' => $client,
        'options' => ['prefix' => 'laravel_database_'],
        'default' => array_merge([
            'host' => '127.0.0.1',
            'password' => null,
            'port' => $port,
            'database' => '0',
        ], $redis),
    ]);
    $container->instance('redis', $app->redis);

    $app->capsule = new QueueCapsule($container);
    $app->capsule->addConnection(array_merge([
        'driver' => 'redis',
        'connection' => 'default',
        'queue' => 'default',
        'retry_after' => 90,
        'block_for' => null,
    ], $queue), 'redis');
    $app->capsule->getContainer()['config']['queue.default'] = 'redis';
    $app->queue = $app->capsule->getConnection('redis');

    $app->worker = new Worker($app->capsule->getQueueManager(), $app->events, $app->exceptions,
        function () {
            return false;  // never "down for maintenance"
        });
    return $app;
}
