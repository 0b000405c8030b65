<?php
// Enqueues mail tasks over respq's json-port, the way the original app did before it had
// a Redis client: json_encode() each task and write it straight onto a TCP socket, back
// to back, no framing, no reply. respq pushes each object onto the queue `json-queue`
// (default "tasks") exactly as an LPUSH would, and its HTTP workers deliver it at once.
//
// This is the seed's code path with PHP's own sockets (stream_socket_client + fwrite);
// swoole_client's connect() + send() writes the same bytes.
//
//   respq-server --json-port 6390
//   php json_client.php [--count=100] [--host=127.0.0.1] [--json-port=6390]
//                       [--url=http://127.0.0.1:8080/send_mail] [--batch=NAME]
//
// Environment (used when no option is given): RESPQ_HOST, RESPQ_JSON_PORT, MAIL_ENDPOINT.
// Anything written that is not JSON lands in tasks:dead with its bytes (and a log line).

$opts = getopt('', ['count:', 'host:', 'json-port:', 'url:', 'batch:']);
$host = $opts['host'] ?? getenv('RESPQ_HOST') ?: '127.0.0.1';
$port = (int)($opts['json-port'] ?? getenv('RESPQ_JSON_PORT') ?: 6390);
$url = $opts['url'] ?? getenv('MAIL_ENDPOINT') ?: 'http://127.0.0.1:8080/send_mail';
$count = (int)($opts['count'] ?? 100);
$batch = (string)($opts['batch'] ?? '') ?: 'json-' . date('Ymd-His');

$sock = stream_socket_client("tcp://$host:$port", $errno, $errstr, 2.0);
if ($sock === false) {
    fwrite(STDERR, "Cannot connect to respq's json-port at $host:$port: $errstr\n");
    exit(1);
}
for ($i = 0; $i < $count; $i++) {
    $task = json_encode([
        'url' => $url,
        'param' => [
            'to' => "user$i@example.com",
            'subject' => "Welcome aboard, user $i",
            'batch' => $batch,
        ],
    ]);
    // fwrite may take part of the string when the socket buffer is full: write the rest.
    for ($done = 0; $done < strlen($task); $done += $n) {
        $n = fwrite($sock, substr($task, $done));
        if ($n === false || $n === 0) {
            fwrite(STDERR, "respq closed the connection after $i tasks\n");
            exit(1);
        }
    }
}
fclose($sock);
echo "Wrote $count tasks for $url to $host:$port (batch $batch)\n";
