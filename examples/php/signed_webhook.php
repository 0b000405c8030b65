<?php
// An endpoint that accepts only requests respq signed (Standard Webhooks), in plain PHP:
// hash_hmac and hash_equals, no library.
//
//   WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw php -S 127.0.0.1:8080 signed_webhook.php
//
// with respq started as
//
//   respq-server --http-queue hooks signing-secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
//
// Every request of the queue "hooks" carries three headers:
//   webhook-id         the task id, the same on every attempt (deduplicate on it)
//   webhook-timestamp  unix seconds of this attempt
//   webhook-signature  "v1,<base64 HMAC-SHA256 of id.timestamp.body>", one per secret
//                      respq signs with, separated by spaces (two while a secret rotates)
// The key is the base64 after "whsec_", decoded; the body is the raw request body (empty
// for a GET: the query string is not signed, so put what matters in a POST body).
//
// What the answer means to respq: 2xx delivered; 401 and 400 are final (the task goes to
// <queue>:dead at once: retrying cannot fix a signature); 5xx would be retried.
//
// Environment: WEBHOOK_SECRET (one secret, or several separated by spaces while the
// endpoint accepts an old and a new one), WEBHOOK_LOG (one JSON line per request:
// {"time", "verdict": "ok"|"bad signature"|"stale"|"missing headers", "id", "timestamp",
// "body"}), WEBHOOK_TOLERANCE (seconds a timestamp may be off, default 300).

const TOLERANCE_DEFAULT = 300;

/**
 * Verifies a Standard Webhooks signature. Returns "ok" or why not.
 *
 * @param string[] $secrets  "whsec_..." secrets the endpoint accepts
 */
function verify_webhook(array $secrets, string $id, string $timestamp, string $signatures, string $body,
                        int $now, int $tolerance): string
{
    if ($id === '' || $timestamp === '' || $signatures === '') {
        return 'missing headers';
    }
    if (!ctype_digit($timestamp) || abs($now - (int)$timestamp) > $tolerance) {
        return 'stale';  // an old request replayed, or a clock far off
    }
    $signed = "$id.$timestamp.$body";
    foreach ($secrets as $secret) {
        $key = base64_decode(substr($secret, strlen('whsec_')), true);
        if (!str_starts_with($secret, 'whsec_') || $key === false) {
            continue;
        }
        $expected = base64_encode(hash_hmac('sha256', $signed, $key, true));
        foreach (explode(' ', $signatures) as $candidate) {
            [$version, $signature] = array_pad(explode(',', $candidate, 2), 2, '');
            // hash_equals takes the same time wherever the strings differ.
            if ($version === 'v1' && hash_equals($expected, $signature)) {
                return 'ok';
            }
        }
    }
    return 'bad signature';
}

$secrets = preg_split('/\s+/', trim((string)getenv('WEBHOOK_SECRET')), -1, PREG_SPLIT_NO_EMPTY);
$tolerance = (int)(getenv('WEBHOOK_TOLERANCE') ?: TOLERANCE_DEFAULT);
$body = file_get_contents('php://input');
$id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
$timestamp = $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '';
$verdict = verify_webhook($secrets, $id, $timestamp, $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '', $body, time(),
                          $tolerance);

$log = getenv('WEBHOOK_LOG') ?: sys_get_temp_dir() . '/webhook.log';
file_put_contents($log, json_encode(['time' => microtime(true), 'verdict' => $verdict, 'id' => $id,
                                     'timestamp' => $timestamp, 'body' => $body]) . "\n", FILE_APPEND | LOCK_EX);

if ($verdict !== 'ok') {
    http_response_code($verdict === 'bad signature' ? 401 : 400);
    header('Content-Type: text/plain');
    echo "$verdict\n";
    return;
}
// Here the app acts on the event. respq delivers at least once: the same webhook-id may
// come again after a timeout, so act once per id (see send_mail.php for a way to).
header('Content-Type: application/json');
echo json_encode(['received' => $id]), "\n";
