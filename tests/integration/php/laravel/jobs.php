<?php
// Job classes for the Laravel queue scenario, written as an app writes them. Every run of
// a job appends one JSON line to JobLog::$path (name, attempt, time) and INCRs the key
// "jobs:ran" through Laravel's own Redis connection, so both the worker's side and the
// server's side of each run can be checked.
use Illuminate\Bus\Queueable;
use Illuminate\Container\Container;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Queue\InteractsWithQueue;

class JobLog
{
    public static $path;

    public static function record(string $name, int $attempt, string $event = 'ran'): void
    {
        $line = json_encode(['name' => $name, 'attempt' => $attempt, 'event' => $event,
                             'at' => microtime(true)]) . "\n";
        file_put_contents(self::$path, $line, FILE_APPEND | LOCK_EX);
        if ($event === 'ran') {
            Container::getInstance()->make('redis')->connection()->incr('jobs:ran');
        }
    }

    /** Every line written so far, oldest first. */
    public static function lines(): array
    {
        if (!is_file(self::$path)) {
            return [];
        }
        return array_map(function ($l) {
            return json_decode($l, true);
        }, array_values(array_filter(explode("\n", file_get_contents(self::$path)))));
    }
}

// An object job, queued as Laravel serialises it (CallQueuedHandler@call). $behaviour:
// "ok", "fail-once" (throws on its first attempt: the worker releases it), "release-once"
// (releases itself for one second on its first attempt), "always-fail" (throws every
// time; after $tries attempts the worker fails it and calls failed()).
class RecordJob implements ShouldQueue
{
    use InteractsWithQueue, Queueable;

    public $name;
    public $behaviour;
    public $tries;

    public function __construct(string $name, string $behaviour = 'ok')
    {
        $this->name = $name;
        $this->behaviour = $behaviour;
        if ($behaviour === 'always-fail') {
            $this->tries = 2;
        }
    }

    public function handle()
    {
        $attempt = $this->attempts();
        JobLog::record($this->name, $attempt);
        if ($this->behaviour === 'fail-once' && $attempt === 1) {
            throw new RuntimeException("{$this->name} fails its first attempt");
        }
        if ($this->behaviour === 'release-once' && $attempt === 1) {
            $this->release(1);
        }
        if ($this->behaviour === 'always-fail') {
            throw new RuntimeException("{$this->name} always fails");
        }
    }

    public function failed(Throwable $e)
    {
        JobLog::record($this->name, -1, 'failed');
    }
}

// A job pushed with pushRaw: a hand-made payload naming a class with a fire() method, the
// pre-Laravel-5 style that raw payloads still use.
class RawJob
{
    public function fire($job, $data)
    {
        JobLog::record($data['name'], $job->attempts());
        $job->delete();
    }
}
