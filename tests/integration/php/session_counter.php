<?php
// A php -S router for test_php_sessions.py: one page that counts its visits in the session,
// the classic read-modify-write that session locking exists for. The session handler is
// phpredis's, configured by the server's php.ini settings (session.save_handler=redis,
// redis.session.locking_enabled, ...). ?hold_ms=N keeps the session open N ms between
// reading and writing the counter, so that concurrent requests overlap.
//
// The response is the counter this request wrote. PHP's own warnings and notices (the
// session handler's "Failed to release session lock" among them, which it raises while
// closing the session, after the page ran) go to the server's error_log.
session_start();
$n = ($_SESSION['n'] ?? 0) + 1;
if (isset($_GET['hold_ms'])) {
    usleep((int)$_GET['hold_ms'] * 1000);
}
$_SESSION['n'] = $n;
header('Content-Type: text/plain');
echo $n;
