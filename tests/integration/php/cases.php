<?php
// phpredis scenarios, run by test_client_phpredis.py as
//     php cases.php <port> <case> [args...]
// Each case asserts what an application using phpredis relies on and exits non-zero
// (with a FAIL line on stderr) when the server answers differently from Redis 7.
require __DIR__ . '/common.php';

$port = (int)($argv[1] ?? 0);
$case = $argv[2] ?? '';
$args = array_slice($argv, 3);

$cases = [];

// connect() sends nothing itself; the first command gets a normal reply.
$cases['connect'] = function (int $port) {
    $r = new Redis();
    eq($r->connect('127.0.0.1', $port, 2.0), true, 'connect()');
    eq($r->isConnected(), true, 'isConnected()');
    eq($r->ping(), true, 'ping()');
    eq($r->echo("hello world"), "hello world", 'echo()');
    eq($r->echo(""), "", 'echo() of an empty string');
    eq($r->close(), true, 'close()');
};

// A reused persistent connection is checked with ECHO <unique id>; the server must echo
// it back byte for byte or phpredis drops the connection. The same server-side client
// (same CLIENT ID) serves both objects.
$cases['pconnect_reuse'] = function (int $port) {
    $p = new Redis();
    eq($p->pconnect('127.0.0.1', $port, 2.0), true, 'first pconnect()');
    $id1 = $p->rawCommand('CLIENT', 'ID');
    check(is_int($id1) && $id1 > 0, 'CLIENT ID is a positive integer: ' . show($id1));
    eq($p->rPush('php:pconnect', 'a'), 1, 'rPush on the first persistent connection');
    unset($p); // back to the pool
    $p2 = new Redis();
    eq($p2->pconnect('127.0.0.1', $port, 2.0), true, 'second pconnect()');
    eq($p2->rawCommand('CLIENT', 'ID'), $id1, 'the pooled connection is reused (same CLIENT ID)');
    eq($p2->lRange('php:pconnect', 0, -1), ['a'], 'data through the reused connection');
    eq($p2->del('php:pconnect'), 1, 'del');
};

// When the server closed the pooled connection, the liveness ECHO fails and phpredis
// connects afresh; the application sees no error.
$cases['pconnect_after_kill'] = function (int $port) {
    $p = new Redis();
    eq($p->pconnect('127.0.0.1', $port, 2.0), true, 'pconnect()');
    $id1 = $p->rawCommand('CLIENT', 'ID');
    $k = connect_to($port);
    eq($k->rawCommand('CLIENT', 'KILL', 'ID', (string)$id1), 1, 'CLIENT KILL ID of the pooled connection');
    unset($p);
    usleep(100000);
    $p2 = new Redis();
    eq($p2->pconnect('127.0.0.1', $port, 2.0), true, 'pconnect() after the kill');
    eq($p2->ping(), true, 'ping() on the new persistent connection');
    $id2 = $p2->rawCommand('CLIENT', 'ID');
    check($id2 !== $id1, "a new connection replaces the killed one (ids $id1, $id2)");
};

$cases['lists'] = function (int $port) {
    $r = connect_to($port);
    $k = 'php:list';
    $r->del($k);
    eq($r->lPush($k, 'b'), 1, 'lPush one');
    eq($r->lPush($k, 'a'), 2, 'lPush another');
    eq($r->rPush($k, 'c', 'd', 'e'), 5, 'rPush variadic');
    eq($r->lLen($k), 5, 'lLen');
    eq($r->lRange($k, 0, -1), ['a', 'b', 'c', 'd', 'e'], 'lRange all');
    eq($r->lRange($k, 1, 2), ['b', 'c'], 'lRange 1..2');
    eq($r->lRange($k, -2, -1), ['d', 'e'], 'lRange negative');
    eq($r->lRange($k, 10, 20), [], 'lRange out of range');
    eq($r->lIndex($k, 0), 'a', 'lIndex 0');
    eq($r->lIndex($k, -1), 'e', 'lIndex -1');
    eq($r->lIndex($k, 99), false, 'lIndex out of range is false');
    eq($r->lSet($k, 1, 'B'), true, 'lSet');
    eq($r->lIndex($k, 1), 'B', 'lIndex after lSet');
    eq($r->lSet($k, 99, 'x'), false, 'lSet out of range is false');
    check(strpos((string)last_error($r), 'ERR index out of range') === 0,
          'lSet out of range error text: ' . show(last_error($r)));
    $r->clearLastError();
    eq($r->lInsert($k, Redis::BEFORE, 'c', 'x'), 6, 'lInsert before');
    eq($r->lInsert($k, Redis::AFTER, 'c', 'y'), 7, 'lInsert after');
    eq($r->lInsert($k, Redis::AFTER, 'nope', 'z'), -1, 'lInsert with a missing pivot');
    eq($r->lRange($k, 0, -1), ['a', 'B', 'x', 'c', 'y', 'd', 'e'], 'lRange after lInsert');
    eq($r->rPush($k, 'x', 'x'), 9, 'rPush duplicates');
    eq($r->lRem($k, 'x', 2), 2, 'lRem first 2 of 3');
    eq($r->lRange($k, 0, -1), ['a', 'B', 'c', 'y', 'd', 'e', 'x'], 'lRange after lRem');
    eq($r->lRem($k, 'x', 0), 1, 'lRem all remaining');
    eq($r->lRem($k, 'nope', 0), 0, 'lRem of a missing value');
    eq($r->lPop($k), 'a', 'lPop');
    eq($r->rPop($k), 'e', 'rPop');
    eq($r->lTrim($k, 0, 1), true, 'lTrim');
    eq($r->lRange($k, 0, -1), ['B', 'c'], 'lRange after lTrim');
    eq($r->lPop($k), 'B', 'lPop');
    eq($r->lPop($k), 'c', 'lPop last');
    eq($r->lPop($k), false, 'lPop of an emptied list is false');
    eq($r->exists($k), 0, 'an emptied list is deleted');
    eq($r->lLen($k), 0, 'lLen of a missing key');
    eq($r->rPop('php:missing'), false, 'rPop of a missing key');
    eq($r->lRange('php:missing', 0, -1), [], 'lRange of a missing key');
    eq($r->lPushx('php:missing', 'a'), 0, 'lPushx on a missing key does nothing');
    eq($r->exists('php:missing'), 0, 'lPushx created nothing');
    // Binary-safe values survive the round trip.
    $bin = "a\0b\r\nc\xff";
    eq($r->rPush($k, $bin), 1, 'rPush a binary value');
    eq($r->lPop($k), $bin, 'binary value round trip');
    // A JSON task, as an app enqueues it.
    $task = json_encode(['url' => 'http://127.0.0.1:1/x', 'param' => ['user' => 'a b']]);
    eq($r->lPush('php:tasks', $task), 1, 'lPush a JSON task');
    eq($r->rPop('php:tasks'), $task, 'the JSON task comes back unchanged');
};

// Timeouts: an integer timeout that expires answers [] (a null multibulk); a served
// pop answers [key, value]. phpredis 5.3.7 only sends integer timeouts from brPop/blPop,
// so fractional ones (including the %.17g form newer clients send) go through
// rawCommand, which maps the same replies the same way.
$cases['blocking_timeouts'] = function (int $port) {
    $r = connect_to($port);
    $r->del('php:b1', 'php:b2');
    $t = microtime(true);
    eq($r->brPop(['php:b1'], 1), [], 'brPop timing out');
    $dt = microtime(true) - $t;
    check($dt >= 0.9 && $dt < 3.0, "brPop with timeout 1 took {$dt}s");
    $t = microtime(true);
    eq($r->blPop('php:b1', 'php:b2', 1), [], 'blPop on two keys timing out');
    $dt = microtime(true) - $t;
    check($dt >= 0.9 && $dt < 3.0, "blPop with timeout 1 took {$dt}s");
    foreach (['0.1', '0.10000000000000001', '0.25'] as $timeout) {
        $t = microtime(true);
        eq($r->rawCommand('BRPOP', 'php:b1', $timeout), [], "BRPOP with timeout $timeout");
        $dt = microtime(true) - $t;
        check($dt >= (float)$timeout - 0.02 && $dt < 2.0, "BRPOP $timeout took {$dt}s");
    }
    $t = microtime(true);
    eq($r->rawCommand('BLPOP', 'php:b1', 'php:b2', '0.2'), [], 'BLPOP two keys, float timeout');
    check(microtime(true) - $t < 2.0, 'BLPOP 0.2 returned in time');

    eq($r->rPush('php:b1', 'x', 'y'), 2, 'rPush');
    eq($r->brPop(['php:b1'], 1), ['php:b1', 'y'], 'brPop served at once from the right');
    eq($r->blPop(['php:b1'], 1), ['php:b1', 'x'], 'blPop served at once from the left');
    eq($r->rPush('php:b2', 'z'), 1, 'rPush');
    eq($r->blPop(['php:b1', 'php:b2'], 1), ['php:b2', 'z'], 'blPop: first non-empty key');
    eq($r->rPush('php:b1', '1', '2'), 2, 'rPush');
    eq($r->rPush('php:b2', '3'), 1, 'rPush');
    eq($r->brPop(['php:b2', 'php:b1'], 1), ['php:b2', '3'], 'brPop: keys in argument order');
    eq($r->rawCommand('BRPOP', 'php:b1', '0.5'), ['php:b1', '2'], 'BRPOP float timeout, served');
    eq($r->brPop(['php:b1'], 0), ['php:b1', '1'], 'brPop with timeout 0 and data');
    eq($r->exists('php:b1', 'php:b2'), 0, 'both lists emptied and deleted');
    eq($r->rawCommand('BRPOP', 'php:b1', '-1'), false, 'negative timeout is an error');
    eq(last_error($r), 'ERR timeout is negative', 'negative timeout error text');
    $r->clearLastError();
    eq($r->rawCommand('BRPOP', 'php:b1', 'abc'), false, 'non-numeric timeout is an error');
    eq(last_error($r), 'ERR timeout is not a float or out of range', 'bad timeout error text');
    eq($r->ping(), true, 'the connection still works');
};

// Inside MULTI a blocking pop does not block: it answers as if it had timed out.
$cases['blocking_in_multi'] = function (int $port) {
    $r = connect_to($port);
    $r->del('php:m:empty', 'php:m:q');
    $t = microtime(true);
    $r->multi();
    $r->lPush('php:m:q', 'a');
    $r->brPop(['php:m:empty'], 5);
    $r->blPop(['php:m:q'], 5);
    $res = $r->exec();
    check(microtime(true) - $t < 2.0, 'EXEC with blocking pops did not block');
    eq($res, [1, [], ['php:m:q', 'a']], 'EXEC results');
};

// A waiter process: blocks on brPop and asserts it is served [key, expected].
$cases['brpop_wait'] = function (int $port, string $key, string $expected, string $timeout) {
    $r = connect_to($port);
    $r->setOption(Redis::OPT_READ_TIMEOUT, (int)$timeout + 10);
    $t = microtime(true);
    $res = $r->brPop([$key], (int)$timeout);
    eq($res, [$key, $expected], 'brPop served by a push from another connection');
    check(microtime(true) - $t < (int)$timeout, 'served before the timeout');
    echo "served ", json_encode($res), "\n";
};

// A producer: waits until $n clients are blocked, then pushes one value; that value must
// go to a waiter, not stay in the list.
$cases['push_when_blocked'] = function (int $port, string $key, string $value, string $n) {
    $r = connect_to($port);
    wait_blocked($r, (int)$n);
    eq($r->lPush($key, $value), 1, 'lPush answers the length before waiters are served');
    wait_blocked($r, (int)$n - 1);
    eq($r->lLen($key), 0, 'the pushed value went to the waiter');
};

// phpredis's read timeout cuts a long brPop (RedisException) and closes the socket. The
// server must drop that waiter: an element pushed afterwards stays in the list (when no
// one else waits) or goes to the next waiter, never to the dead connection.
$cases['read_timeout'] = function (int $port, string $key, string $otherWaiters, string $readTimeout) {
    $a = connect_to($port, [Redis::OPT_READ_TIMEOUT => (float)$readTimeout]);
    $t = microtime(true);
    expect_exception(function () use ($a, $key) { return $a->brPop([$key], 30); },
                     'read error on connection', 'brPop cut by OPT_READ_TIMEOUT');
    $dt = microtime(true) - $t;
    check($dt >= (float)$readTimeout - 0.1 && $dt < (float)$readTimeout + 4.0,
          "the read timeout ($readTimeout s) fired after {$dt}s");
    $b = connect_to($port);
    wait_blocked($b, (int)$otherWaiters);
    eq($b->lPush($key, 'pushed-after-timeout'), 1, 'lPush after the timeout');
    if ((int)$otherWaiters === 0) {
        eq($b->lRange($key, 0, -1), ['pushed-after-timeout'], 'the element stays in the list');
        eq($b->rPop($key), 'pushed-after-timeout', 'and can be popped');
    } else {
        wait_blocked($b, (int)$otherWaiters - 1);
        eq($b->lLen($key), 0, 'the element went to the other waiter');
    }
    // The connection that timed out reconnects and works again.
    eq($a->ping(), true, 'ping() after the read timeout (phpredis reconnects)');
};

$cases['pipeline'] = function (int $port) {
    $r = connect_to($port);
    $r->del('php:pipe');
    $n = 2000;
    $p = $r->pipeline();
    for ($i = 0; $i < $n; $i++) {
        $p->rPush('php:pipe', "v$i");
    }
    $p->lLen('php:pipe');
    $p->lIndex('php:pipe', 0);
    $p->lRange('php:pipe', -2, -1);
    $p->rPop('php:pipe');
    $p->echo('end');
    $res = $p->exec();
    eq(count($res), $n + 5, 'one result per pipelined command');
    for ($i = 0; $i < $n; $i++) {
        if ($res[$i] !== $i + 1) {
            fail("pipelined rPush #$i answered " . show($res[$i]));
        }
    }
    eq(array_slice($res, $n), [$n, 'v0', ['v' . ($n - 2), 'v' . ($n - 1)], 'v' . ($n - 1), 'end'],
       'tail of the pipeline results');
    eq($r->lLen('php:pipe'), $n - 1, 'lLen after the pipeline');
    eq($r->del('php:pipe'), 1, 'del');
};

$cases['multi_exec'] = function (int $port) {
    $r = connect_to($port);
    $r->del('php:tx');
    $ret = $r->multi();
    check($ret === $r, 'multi() returns the Redis object');
    $r->rPush('php:tx', 'a');
    $r->rPush('php:tx', 'b', 'c');
    $r->lLen('php:tx');
    $r->lRange('php:tx', 0, -1);
    $r->lPop('php:tx');
    eq($r->exec(), [1, 3, 3, ['a', 'b', 'c'], 'a'], 'EXEC results in order');
    eq($r->lRange('php:tx', 0, -1), ['b', 'c'], 'effects of the transaction');
    // Chained form.
    eq($r->multi()->lPush('php:tx', 'z')->lIndex('php:tx', 0)->exec(), [3, 'z'], 'chained multi');
    $r->del('php:tx');
};

$cases['discard'] = function (int $port) {
    $r = connect_to($port);
    $r->del('php:disc');
    $r->rPush('php:disc', 'keep');
    $r->multi();
    $r->rPush('php:disc', 'dropped');
    $r->lPop('php:disc');
    eq($r->discard(), true, 'discard()');
    eq($r->lRange('php:disc', 0, -1), ['keep'], 'nothing queued ran');
    // After DISCARD the connection is out of MULTI: commands answer at once.
    eq($r->rPush('php:disc', 'next'), 2, 'commands after discard');
    // The destructor sends DISCARD for an object still in MULTI.
    $t = connect_to($port);
    $t->multi();
    $t->rPush('php:disc', 'never');
    unset($t);
    usleep(100000);
    eq($r->lRange('php:disc', 0, -1), ['keep', 'next'], 'an abandoned MULTI ran nothing');
    $r->del('php:disc');
};

// A subscriber process: subscribes to the given channels, collects $n messages, then
// leaves. Prints one JSON line with what it got.
$cases['subscriber'] = function (int $port, string $n, string ...$channels) {
    $r = connect_to($port, [Redis::OPT_READ_TIMEOUT => -1]);
    $got = [];
    try {
        $r->subscribe($channels, function ($redis, $chan, $msg) use (&$got, $n) {
            $got[] = [$chan, $msg];
            if (count($got) >= (int)$n) {
                $redis->close(); // ends the subscribe loop with "Connection closed"
            }
        });
        fail('subscribe() returned without the connection being closed');
    } catch (RedisException $e) {
        eq($e->getMessage(), 'Connection closed', 'subscribe loop ended by close()');
    }
    eq(count($got), (int)$n, 'messages received');
    echo json_encode($got), "\n";
};

// A publisher process: publishes $n messages to $chan; each must reach $subs subscribers.
$cases['publisher'] = function (int $port, string $chan, string $n, string $subs) {
    $r = connect_to($port);
    for ($i = 0; $i < (int)$n; $i++) {
        eq($r->publish($chan, "message $i"), (int)$subs, "publish #$i receivers");
    }
    eq($r->publish('php:nobody-listens', 'x'), 0, 'publish to a channel without subscribers');
};

$cases['rawcommand'] = function (int $port) {
    $r = connect_to($port);
    $count = $r->rawCommand('COMMAND', 'COUNT');
    check(is_int($count) && $count > 20, 'COMMAND COUNT: ' . show($count));
    $all = $r->rawCommand('COMMAND');
    check(is_array($all), 'COMMAND answers an array');
    eq(count($all), $count, 'COMMAND returns COMMAND COUNT entries');
    $byName = [];
    foreach ($all as $entry) {
        $byName[$entry[0]] = $entry;
    }
    foreach (['lpush' => -3, 'rpush' => -3, 'brpop' => -3, 'blpop' => -3, 'llen' => 2,
              'lrange' => 4, 'ping' => -1, 'publish' => 3, 'exec' => 1] as $name => $arity) {
        check(isset($byName[$name]), "COMMAND lists $name");
        eq($byName[$name][1], $arity, "arity of $name");
    }
    $info = $r->rawCommand('COMMAND', 'INFO', 'lpush', 'nosuchcommand');
    eq(count($info), 2, 'COMMAND INFO answers one entry per name');
    eq(array_slice($info[0], 0, 2), ['lpush', -3], 'COMMAND INFO lpush name and arity');
    eq(array_slice($info[0], 3, 3), [1, 1, 1], 'COMMAND INFO lpush first/last key and step');
    eq($info[1], false, 'COMMAND INFO of an unknown command is a null');
    $list = $r->rawCommand('COMMAND', 'LIST');
    check(is_array($list) && in_array('brpop', $list, true) && in_array('lpush', $list, true),
          'COMMAND LIST names brpop and lpush');

    $text = $r->rawCommand('INFO');
    check(is_string($text) && strncmp($text, "# Server\r\n", 10) === 0,
          'INFO starts with "# Server": ' . show(substr((string)$text, 0, 40)));
    check(preg_match('/^redis_version:\d+\.\d+\.\d+\r$/m', $text) === 1, 'INFO has redis_version');
    $parsed = $r->info();
    check(isset($parsed['redis_version']), 'info() parses redis_version');
    check(isset($parsed['connected_clients']) && (int)$parsed['connected_clients'] >= 1,
          'info() parses connected_clients');
    $clients = $r->info('clients');
    check(isset($clients['blocked_clients']), 'info("clients") has blocked_clients');

    eq($r->rawCommand('CLIENT', 'SETNAME', 'php-worker'), true, 'CLIENT SETNAME');
    eq($r->rawCommand('CLIENT', 'GETNAME'), 'php-worker', 'CLIENT GETNAME');
    $id = $r->rawCommand('CLIENT', 'ID');
    check(is_int($id) && $id > 0, 'CLIENT ID: ' . show($id));
    $list = $r->rawCommand('CLIENT', 'LIST');
    check(is_string($list) && preg_match("/^id=$id addr=127\\.0\\.0\\.1:\\d+ .*name=php-worker /m", $list) === 1,
          'CLIENT LIST shows this connection with its name: ' . show($list));
    $mine = $r->rawCommand('CLIENT', 'INFO');
    check(is_string($mine) && strncmp($mine, "id=$id ", strlen("id=$id ")) === 0,
          'CLIENT INFO describes this connection: ' . show($mine));
    $parsedList = $r->client('list');
    $names = array_column($parsedList, 'name');
    check(in_array('php-worker', $names, true), 'client("list") parses the name');
    eq($r->rawCommand('CLIENT', 'SETNAME', 'bad name'), false, 'CLIENT SETNAME with a space');
    check(strpos((string)last_error($r), 'ERR Client names cannot contain spaces') === 0,
          'CLIENT SETNAME error text: ' . show(last_error($r)));
    eq($r->rawCommand('NOSUCHCMD', 'a'), false, 'an unknown command answers an error');
    eq(last_error($r), "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' ",
       'unknown command error text');
};

// requirepass: commands before AUTH throw NOAUTH, a wrong password throws WRONGPASS, the
// right one works, and the connect() context can carry the password.
$cases['auth'] = function (int $port, string $password) {
    $r = connect_to($port);
    expect_exception(function () use ($r) { return $r->lPush('php:auth', 'x'); },
                     'NOAUTH Authentication required.', 'lPush before auth');
    expect_exception(function () use ($r) { return $r->ping(); },
                     'NOAUTH Authentication required.', 'ping before auth');
    expect_exception(function () use ($r, $password) { return $r->auth('wrong-' . $password); },
                     'WRONGPASS invalid username-password pair or user is disabled.', 'auth with a wrong password');
    expect_exception(function () use ($r) { return $r->lLen('php:auth'); },
                     'NOAUTH', 'still unauthenticated after a wrong password');
    eq($r->auth($password), true, 'auth with the right password');
    eq($r->lPush('php:auth', 'x'), 1, 'lPush after auth');
    eq($r->auth(['default', $password]), true, 'auth with user "default" and the password');
    expect_exception(function () use ($r, $password) { return $r->auth(['someone', $password]); },
                     'WRONGPASS', 'auth as an unknown user');

    $c = new Redis();
    eq($c->connect('127.0.0.1', $port, 2.0, null, 0, 0, ['auth' => $password]), true,
       'connect() with the password in the context');
    eq($c->lLen('php:auth'), 1, 'a command on the connection authenticated at connect');

    $p = new Redis();
    eq($p->pconnect('127.0.0.1', $port, 2.0), true, 'pconnect()');
    eq($p->auth($password), true, 'auth on a persistent connection');
    eq($p->rPop('php:auth'), 'x', 'rPop after auth');
};

// Databases 0..15: SELECT switches, the keys stay in their database, 16 is a Redis-style
// error, and phpredis's own database tracking (getDbNum) follows.
$cases['select'] = function (int $port) {
    $r = connect_to($port);
    eq($r->select(0), true, 'select(0)');
    eq($r->rPush('php:select', 'in-0'), 1, 'rPush in db 0');
    eq($r->select(3), true, 'select(3)');
    eq($r->getDbNum(), 3, 'getDbNum() after select(3)');
    eq($r->lRange('php:select', 0, -1), [], 'db 3 does not see db 0\'s list');
    eq($r->rPush('php:select', 'in-3'), 1, 'rPush in db 3');
    eq($r->move('php:select', 5), true, 'move() to db 5');
    eq($r->select(16), false, 'select(16)');
    eq(last_error($r), 'ERR DB index is out of range', 'select(16) error text');
    $r->clearLastError();
    eq($r->ping(), true, 'the connection still works after a failed select');
    eq($r->swapdb(0, 5), true, 'swapdb(0, 5)');
    $c = new Redis();
    eq($c->connect('127.0.0.1', $port, 2.0), true, 'connect');
    eq($c->lRange('php:select', 0, -1), ['in-3'], 'a fresh connection is in db 0, which now holds db 5\'s list');
    eq($c->select(5), true, 'select(5) on a fresh connection');
    eq($c->lRange('php:select', 0, -1), ['in-0'], 'db 5 holds what db 0 had');
    eq($c->del('php:select'), 1, 'del in db 5');
    eq($c->select(0), true, 'select(0)');
    eq($c->del('php:select'), 1, 'del in db 0');
};

if (!isset($cases[$case])) {
    fail("unknown case " . show($case) . "; cases: " . implode(' ', array_keys($cases)));
}
$cases[$case]($port, ...$args);
echo "ok $case\n";
exit(0);
