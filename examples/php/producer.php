<?php
// Enqueues mail tasks on respq with phpredis, exactly as against Redis, and returns at
// once: respq's HTTP workers deliver each task to send_mail.php in the background.
//
// From the command line:
//   php producer.php [--count=10000] [--host=127.0.0.1] [--port=6380]
//                    [--url=http://127.0.0.1:8080/send_mail] [--batch=NAME]
//
// As a web page (a form; pressing the button POSTs the count and enqueues):
//   php -S 127.0.0.1:8000 producer.php      # then open http://127.0.0.1:8000/
//
// Environment (used when no option is given): RESPQ_HOST, RESPQ_PORT, MAIL_ENDPOINT.

const QUEUE = 'tasks';
const PIPELINE_CHUNK = 1000;  // commands per round trip

$cli = PHP_SAPI === 'cli';
if (!$cli && $_SERVER['REQUEST_METHOD'] !== 'POST') {
    page();  // show the form
}

// Connection settings: options on the command line, else the environment, else defaults.
// Count and batch: options on the command line, the form fields on the web.
$opts = $cli ? getopt('', ['count:', 'host:', 'port:', 'url:', 'batch:']) : [];
$host = $opts['host'] ?? getenv('RESPQ_HOST') ?: '127.0.0.1';
$port = (int)($opts['port'] ?? getenv('RESPQ_PORT') ?: 6380);
$url = $opts['url'] ?? getenv('MAIL_ENDPOINT') ?: 'http://127.0.0.1:8080/send_mail';
$choice = $cli ? $opts : $_POST;
$count = (int)($choice['count'] ?? 10000);
$batch = (string)($choice['batch'] ?? '') ?: 'welcome-' . date('Ymd-His') . '-' . bin2hex(random_bytes(2));

if ($count < 1 || $count > 1000000) {
    done(false, "count must be between 1 and 1000000\n");
}

try {
    $redis = new Redis();
    $redis->connect($host, $port, 2.0);

    $started = microtime(true);
    for ($first = 0; $first < $count; $first += PIPELINE_CHUNK) {
        // Pipelining sends a chunk of LPUSHes in one write and reads the replies together.
        $pipe = $redis->multi(Redis::PIPELINE);
        for ($i = $first; $i < min($first + PIPELINE_CHUNK, $count); $i++) {
            $pipe->lPush(QUEUE, json_encode([
                'url' => $url,
                'param' => [
                    'to' => "user$i@example.com",
                    'subject' => "Welcome aboard, user $i",
                    'batch' => $batch,
                ],
            ]));
        }
        foreach ($pipe->exec() as $reply) {
            if ($reply === false) {
                throw new RedisException('LPUSH failed: ' . $redis->getLastError());
            }
        }
    }
    $ms = (microtime(true) - $started) * 1000;
} catch (RedisException $e) {
    done(false, "respq at $host:$port: {$e->getMessage()}\n");
}

done(true, sprintf("Enqueued %d tasks for %s in %.1f ms (batch %s)\n", $count, $url, $ms, $batch));

// Prints the outcome: plain text on the command line, the page in a browser.
function done(bool $ok, string $message): never
{
    if (PHP_SAPI === 'cli') {
        fwrite($ok ? STDOUT : STDERR, $message);
        exit($ok ? 0 : 1);
    }
    http_response_code($ok ? 200 : 503);
    page($message);
}

function page(string $message = ''): never
{
    header('Content-Type: text/html; charset=utf-8');
    $msg = $message === '' ? '' : '<p>' . htmlspecialchars($message) . '</p>';
    echo <<<HTML
        <!doctype html>
        <title>respq producer</title>
        <h1>Send the welcome mail</h1>
        $msg
        <form method="post">
          <input type="number" name="count" value="10000" min="1" max="1000000"> mails
          <button>Enqueue</button>
        </form>
        HTML;
    exit;
}
