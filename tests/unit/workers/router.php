<?php
// Test endpoint for the delivery engine tests, run by `php -S 127.0.0.1:<port> router.php`.
//
// The path chooses the behaviour as name/value pairs, so the query string stays free
// for what a task sends:
//   /code/<n>             answer with status n
//   /retry-after/<text>   add a Retry-After header (value URL-decoded)
//   /sleep/<seconds>      wait before answering
//   /size/<bytes>         answer with that many bytes of 'x' instead of the echo
//   /redirect/<url>       answer 302 with Location: <url> (URL-decoded)
//   /track/<seconds>      count concurrent requests in the JSON file named by the
//                         RESPQ_TEST_STATE environment variable, holding each for <seconds>
// Otherwise the answer is JSON describing the request as PHP saw it: method, path,
// query, parsed query (get) and form (post), headers, raw body.

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$parts = explode('/', trim($path, '/'));
$opt = [];
for ($i = 0; $i + 1 < count($parts); $i += 2) {
    $opt[$parts[$i]] = urldecode($parts[$i + 1]);
}

function track_concurrency(int $delta): void {
    $file = getenv('RESPQ_TEST_STATE');
    $f = fopen($file, 'c+');
    flock($f, LOCK_EX);
    $text = stream_get_contents($f);
    $state = $text ? json_decode($text, true) : ['current' => 0, 'max' => 0, 'total' => 0];
    $state['current'] += $delta;
    $state['max'] = max($state['max'], $state['current']);
    if ($delta > 0) {
        $state['total'] += 1;
    }
    ftruncate($f, 0);
    rewind($f);
    fwrite($f, json_encode($state));
    fflush($f);
    flock($f, LOCK_UN);
    fclose($f);
}

if (isset($opt['track'])) {
    track_concurrency(1);
    usleep((int)((float)$opt['track'] * 1e6));
    track_concurrency(-1);
}
if (isset($opt['sleep'])) {
    usleep((int)((float)$opt['sleep'] * 1e6));
}
if (isset($opt['redirect'])) {
    header('Location: ' . $opt['redirect'], true, 302);
    exit;
}
if (isset($opt['retry-after'])) {
    header('Retry-After: ' . $opt['retry-after']);
}
http_response_code(isset($opt['code']) ? (int)$opt['code'] : 200);
if (isset($opt['size'])) {
    $left = (int)$opt['size'];
    $chunk = str_repeat('x', 1 << 20);
    while ($left > 0) {
        $n = min($left, strlen($chunk));
        echo substr($chunk, 0, $n);
        $left -= $n;
    }
    exit;
}
header('Content-Type: application/json');
echo json_encode([
    'method' => $_SERVER['REQUEST_METHOD'],
    'path' => $path,
    'query' => $_SERVER['QUERY_STRING'] ?? '',
    'get' => $_GET,
    'post' => $_POST,
    'headers' => getallheaders(),
    'body' => file_get_contents('php://input'),
]);
