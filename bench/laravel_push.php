<?php
// bench/run laravel: one Laravel 8 producer. Pushes <count> jobs through the real
// Illuminate\Queue\RedisQueue::push (an EVAL of Laravel's push script per job) over
// phpredis or Predis, after a warm-up, and prints "<jobs> <seconds>" for the timed part.
//
//     php laravel_push.php <port> <phpredis|predis> <count> <queue>
error_reporting(E_ALL & ~E_DEPRECATED);  // Laravel 8 and Predis 1.1 on PHP 8.2
require_once 'Illuminate/Queue/autoload.php';
require_once 'Illuminate/Redis/autoload.php';
require_once 'Predis/autoload.php';

use Illuminate\Bus\Queueable;
use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Queue\Capsule\Manager as Queue;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Redis\RedisManager;

class BenchJob implements ShouldQueue
{
    use InteractsWithQueue, Queueable;

    public $n;

    public function __construct(int $n)
    {
        $this->n = $n;
    }
}

[$port, $client, $count, $name] = [(int)$argv[1], $argv[2], (int)$argv[3], $argv[4]];
$app = new Container();
$app->instance('redis', new RedisManager($app, $client, [
    'options' => ['prefix' => 'laravel_database_'],
    'default' => ['host' => '127.0.0.1', 'port' => $port, 'database' => 0],
]));
$capsule = new Queue($app);
$capsule->addConnection(['driver' => 'redis', 'connection' => 'default', 'queue' => $name]);
$queue = $capsule->getConnection();

for ($i = 0; $i < 200; $i++) {  // warm-up: connection, autoloading, opcode caches
    $queue->push(new BenchJob($i));
}
$t0 = microtime(true);
for ($i = 0; $i < $count; $i++) {
    $queue->push(new BenchJob($i));
}
printf("%d %.6f\n", $count, microtime(true) - $t0);
