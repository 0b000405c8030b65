<?php
// The endpoint respq delivers mail tasks to. It pretends to send the mail: it checks the
// parameters, appends a line to a log and answers 200.
//
//   PHP_CLI_SERVER_WORKERS=4 php -S 127.0.0.1:8080 send_mail.php
//
// A task {"url": "http://127.0.0.1:8080/send_mail", "param": {"to": ..., "subject": ...}}
// arrives as GET /send_mail?to=...&subject=... (or as a form POST when the task says
// "method": "POST"), with the task's id in the X-Task-Id header.
//
// What the answer means to respq:
//   2xx        delivered, done
//   422 (4xx)  final: the task goes to tasks:dead at once (retrying cannot fix bad input)
//   5xx        respq retries later with backoff
//
// respq delivers at least once: after a timeout or a restart the same task can arrive
// again, so the endpoint is idempotent on X-Task-Id and sends each mail once.
//
// Environment: MAIL_LOG, the log file (default: mail.log in the system temp directory).
// Each line is a JSON object: {"time", "status": "sent"|"duplicate", "task_id",
// "attempt", "to", "subject", "batch"}.

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($path !== '/send_mail') {
    reply(404, "not found: use /send_mail\n");
}

$params = $_SERVER['REQUEST_METHOD'] === 'POST' ? $_POST : $_GET;
$to = $params['to'] ?? '';
$subject = $params['subject'] ?? '';
if (!is_string($to) || filter_var($to, FILTER_VALIDATE_EMAIL) === false) {
    reply(422, "invalid or missing 'to'\n");
}
if (!is_string($subject) || trim($subject) === '' || strlen($subject) > 200) {
    reply(422, "invalid or missing 'subject'\n");
}

$log = getenv('MAIL_LOG') ?: sys_get_temp_dir() . '/mail.log';
$taskId = $_SERVER['HTTP_X_TASK_ID'] ?? '';
$entry = [
    'time' => date('c'),
    'status' => 'sent',
    'task_id' => $taskId,
    'attempt' => (int)($_SERVER['HTTP_X_TASK_ATTEMPT'] ?? 1),
    'to' => $to,
    'subject' => $subject,
    'batch' => is_string($params['batch'] ?? null) ? $params['batch'] : '',
];

// Remember each task id with a marker file. fopen mode 'x' creates the file atomically
// and fails if it exists, so concurrent workers cannot both claim the same task.
$marker = null;
if ($taskId !== '') {
    $seen = "$log.seen";
    if (!is_dir($seen)) {
        @mkdir($seen, 0777, true);
    }
    $marker = "$seen/" . sha1($taskId);
    $claim = @fopen($marker, 'x');
    if ($claim === false) {
        $entry['status'] = 'duplicate';
        append_log($log, $entry);
        reply(200, "already sent\n");
    }
    fclose($claim);
}

// "Send" the mail. On failure give the claim back and answer 5xx: respq retries.
if (!append_log($log, $entry)) {
    if ($marker !== null) {
        @unlink($marker);
    }
    reply(500, "cannot write the mail log\n");
}
reply(200, "sent\n");

function append_log(string $log, array $entry): bool
{
    $line = json_encode($entry, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) . "\n";
    return file_put_contents($log, $line, FILE_APPEND | LOCK_EX) !== false;
}

function reply(int $code, string $text): never
{
    http_response_code($code);
    header('Content-Type: text/plain');
    echo $text;
    exit;
}
