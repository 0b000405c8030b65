<?php
// An HTTP endpoint for the HTTP worker tests, run by `php -S 127.0.0.1:PORT http_endpoint.php`
// (PHP_CLI_SERVER_WORKERS=n for parallel requests).
//
// Every request appends one JSON line to the file named by HTTP_ENDPOINT_LOG, written when
// the request arrives (before any sleep):
//   t            arrival, unix seconds with microseconds
//   method, path, uri, query (raw QUERY_STRING), headers (as sent), body (raw; body_b64
//   instead when it is not UTF-8), pid, peer (the client's port: one per connection),
//   status (the code it answers), hit (how many
//   requests with the same key arrived so far, this one included), in_progress (requests
//   of the same group being served right now, this one included; only with ?group=).
//
// What it answers is chosen by the path or the query string:
//   /status/<code>       answer <code> (also ?status=<code>)
//   ?sleep=<seconds>     wait before answering (fractions allowed)
//   ?retry_after=<v>     send `Retry-After: <v>` with a non-2xx answer
//   ?retry_after_date=<s> send Retry-After as an HTTP-date <s> seconds from now
//   ?fail_first=<n>      answer ?fail_status (default 503) to the first n requests of a key
//                        (?key=, else the X-Task-Id header), then 200
//   ?group=<name>        count requests in progress for <name> (a flock-guarded counter)
//   ?location=<url>      send `Location: <url>` (with ?status=302 or /status/302: a redirect)
// The answer body is a small JSON object.

$log = getenv('HTTP_ENDPOINT_LOG');
if ($log === false || $log === '') {
    http_response_code(500);
    echo "HTTP_ENDPOINT_LOG is not set\n";
    return true;
}
$state = dirname($log);
$arrived = microtime(true);

parse_str($_SERVER['QUERY_STRING'] ?? '', $q);
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/';
$headers = function_exists('getallheaders') ? getallheaders() : [];
$header = function (string $name) use ($headers): ?string {
    foreach ($headers as $k => $v) {
        if (strcasecmp($k, $name) === 0) {
            return $v;
        }
    }
    return null;
};
$body = file_get_contents('php://input');

// Runs $fn on the integer stored in a state file, under an exclusive lock; returns the
// new value.
function counter(string $file, callable $fn): int
{
    $h = fopen($file, 'c+');
    flock($h, LOCK_EX);
    $v = (int)stream_get_contents($h);
    $v = $fn($v);
    ftruncate($h, 0);
    rewind($h);
    fwrite($h, (string)$v);
    fflush($h);
    flock($h, LOCK_UN);
    fclose($h);
    return $v;
}

function safe_name(string $s): string
{
    return substr(preg_replace('/[^A-Za-z0-9_.-]/', '_', $s), 0, 100) . '-' . substr(md5($s), 0, 8);
}

$in_progress = null;
if (isset($q['group']) && is_string($q['group'])) {
    $gfile = $state . '/group-' . safe_name($q['group']);
    $in_progress = counter($gfile, fn($v) => $v + 1);
    register_shutdown_function(function () use ($gfile) {
        counter($gfile, fn($v) => $v - 1);
    });
}

$key = isset($q['key']) && is_string($q['key']) ? $q['key'] : ($header('X-Task-Id') ?? '');
$hit = counter($state . '/hits-' . safe_name($key), fn($v) => $v + 1);

$status = 200;
if (preg_match('#^/status/(\d{3})$#', $path, $m)) {
    $status = (int)$m[1];
} elseif (isset($q['status'])) {
    $status = (int)$q['status'];
}
if (isset($q['fail_first'])) {
    $status = $hit <= (int)$q['fail_first'] ? (int)($q['fail_status'] ?? 503) : 200;
}

$rec = [
    't' => $arrived,
    'method' => $_SERVER['REQUEST_METHOD'],
    'path' => $path,
    'uri' => $_SERVER['REQUEST_URI'],
    'query' => $_SERVER['QUERY_STRING'] ?? '',
    'headers' => $headers,
    'pid' => getmypid(),
    'peer' => (int)($_SERVER['REMOTE_PORT'] ?? 0),
    'status' => $status,
    'hit' => $hit,
    'in_progress' => $in_progress,
];
if (preg_match('//u', $body) === 1) {
    $rec['body'] = $body;
} else {
    $rec['body_b64'] = base64_encode($body);
}
file_put_contents($log, json_encode($rec, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE) . "\n",
                  FILE_APPEND | LOCK_EX);

if (isset($q['sleep'])) {
    usleep((int)((float)$q['sleep'] * 1e6));
}

http_response_code($status);
header('Content-Type: application/json');
if (isset($q['location']) && is_string($q['location'])) {
    header('Location: ' . $q['location']);
}
if ($status < 200 || $status > 299) {
    if (isset($q['retry_after'])) {
        header('Retry-After: ' . $q['retry_after']);
    } elseif (isset($q['retry_after_date'])) {
        header('Retry-After: ' . gmdate('D, d M Y H:i:s', time() + (int)$q['retry_after_date']) . ' GMT');
    }
}
echo json_encode(['ok' => $status >= 200 && $status < 300, 'status' => $status, 'hit' => $hit]), "\n";
return true;
