<?php
// A Laravel 8 queue on respq, unchanged: jobs dispatched with Illuminate\Queue's RedisQueue
// (which pushes with Lua scripts through EVAL) and run by Laravel's own Worker, over
// phpredis or Predis. respq stands where Redis would; nothing in Laravel changes.
//
//   php laravel_queue.php push [--count=100] [--delay=0] [--client=phpredis|predis]
//                              [--host=127.0.0.1] [--port=6380]
//   php laravel_queue.php work [--client=...]    # runs the jobs until the queue is empty,
//                                                 # delayed ones included (like queue:work)
//
// In a Laravel app the same is config/queue.php's "redis" connection and
// `WelcomeMail::dispatch($user)`; here Illuminate\Queue\Capsule\Manager sets it up
// without an app. Needs Laravel's queue and redis components and Predis, as Debian
// packages them: apt install php-illuminate-queue php-illuminate-redis
// php-illuminate-events php-predis php-redis (with Composer: illuminate/queue,
// illuminate/redis, illuminate/events, predis/predis).
//
// Environment (used when no option is given): RESPQ_HOST, RESPQ_PORT; the jobs write
// their "mails" to LARAVEL_MAIL_LOG (default: laravel-mail.log in the system temp dir).
require_once 'Illuminate/Queue/autoload.php';
require_once 'Illuminate/Redis/autoload.php';
require_once 'Illuminate/Events/autoload.php';
require_once 'Illuminate/Bus/autoload.php';
require_once 'Predis/autoload.php';

use Illuminate\Bus\Queueable;
use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Events\Dispatcher as Events;
use Illuminate\Queue\Capsule\Manager as Queue;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Queue\Worker;
use Illuminate\Queue\WorkerOptions;
use Illuminate\Redis\RedisManager;

// Laravel 8 and Predis 1.1 predate PHP 8.2, which reports parts of them as deprecated.
error_reporting(E_ALL & ~E_DEPRECATED);

// The job: what an app would put in app/Jobs/WelcomeMail.php.
class WelcomeMail implements ShouldQueue
{
    use InteractsWithQueue, Queueable;

    public $to;

    public function __construct(string $to)
    {
        $this->to = $to;
    }

    public function handle()
    {
        $log = getenv('LARAVEL_MAIL_LOG') ?: sys_get_temp_dir() . '/laravel-mail.log';
        file_put_contents($log, json_encode(['to' => $this->to, 'attempt' => $this->attempts(),
                                             'job_id' => $this->job->getJobId()]) . "\n",
                          FILE_APPEND | LOCK_EX);
    }
}

$mode = $argv[1] ?? '';
$opts = [];  // --name=value options after the mode
foreach (array_slice($argv, 2) as $arg) {
    if (preg_match('/^--(count|delay|client|host|port)=(.*)$/', $arg, $m)) {
        $opts[$m[1]] = $m[2];
    } else {
        $mode = "bad option $arg";
    }
}
$host = $opts['host'] ?? getenv('RESPQ_HOST') ?: '127.0.0.1';
$port = (int)($opts['port'] ?? getenv('RESPQ_PORT') ?: 6380);
$client = $opts['client'] ?? 'phpredis';
if (!in_array($mode, ['push', 'work'], true) || !in_array($client, ['phpredis', 'predis'], true)) {
    fwrite(STDERR, "usage: php laravel_queue.php push|work [--count=N] [--delay=S] [--client=phpredis|predis]\n");
    exit(2);
}

// What a Laravel app's service providers set up: a container, the Redis manager
// (config/database.php's "redis" section) and the queue (config/queue.php's "redis").
$app = new Container();
Container::setInstance($app);
$app->instance(Illuminate\Contracts\Container\Container::class, $app);
$events = new Events($app);
$app->instance(Illuminate\Contracts\Events\Dispatcher::class, $events);
$app->singleton(Illuminate\Contracts\Bus\Dispatcher::class, function ($app) {
    return new Illuminate\Bus\Dispatcher($app);
});
$app->instance('redis', new RedisManager($app, $client, [
    'options' => ['prefix' => 'laravel_database_'],
    'default' => ['host' => $host, 'port' => $port, 'database' => 0],
]));
$queue = new Queue($app);
$queue->addConnection(['driver' => 'redis', 'connection' => 'default', 'queue' => 'default',
                       'retry_after' => 90]);
$connection = $queue->getConnection();

if ($mode === 'push') {
    $count = (int)($opts['count'] ?? 100);
    $delay = (int)($opts['delay'] ?? 0);
    $started = microtime(true);
    for ($i = 0; $i < $count; $i++) {
        $job = new WelcomeMail("user$i@example.com");
        $delay > 0 ? $connection->later($delay, $job) : $connection->push($job);
    }
    printf("Pushed %d jobs onto queue default%s in %.1f ms; %d waiting\n", $count,
           $delay > 0 ? " (delayed {$delay} s)" : '', (microtime(true) - $started) * 1000,
           $connection->size());
    exit(0);
}

// work: Laravel's Worker takes jobs one by one until nothing is left, not even a delayed
// or reserved job. A failing job would be retried up to 3 times, then reported.
$handler = new class implements Illuminate\Contracts\Debug\ExceptionHandler {
    public function report(Throwable $e)
    {
        fwrite(STDERR, "job failed: {$e->getMessage()}\n");
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
};
$worker = new Worker($queue->getQueueManager(), $events, $handler, function () {
    return false;
});
$ran = 0;
$events->listen(Illuminate\Queue\Events\JobProcessed::class, function () use (&$ran) {
    $ran++;
});
$options = new WorkerOptions('default', 0, 128, 60, 0.1, 3);
while ($connection->size() > 0) {
    $worker->runNextJob('default', 'default', $options);
}
printf("Ran %d jobs; queue default is empty\n", $ran);
