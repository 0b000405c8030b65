<?php
// Predis 1.1 (Debian's php-predis) and Lua scripting, run by test_predis_scripting.py
// against redis-server and against respq; the two outputs must be equal.
//
//     php predis_scripting.php <port>
//
// EVAL (replies of every Lua type, errors of every kind), SCRIPT LOAD / EXISTS / FLUSH,
// EVALSHA, and Predis's ScriptCommand, which sends EVALSHA and on a NOSCRIPT error
// retries the same call as EVAL (Client::onErrorResponse). Prints one JSON array of
// [label, result]: a status reply as ["+", text], an error as ["-", text] (or
// ["exception", class, text] when Predis threw), other values as Predis returns them.
// The commands each server counted (INFO commandstats) come last.
require __DIR__ . '/common.php';
require 'Predis/autoload.php';

// Predis 1.1 predates PHP 8.2, which flags "static" in callables as deprecated.
set_error_handler(function ($no, $str, $file, $line) {
    if ($no === E_DEPRECATED || $no === E_USER_DEPRECATED) {
        return true;
    }
    fwrite(STDERR, "FAIL: PHP error $str at $file:$line\n");
    exit(1);
});

use Predis\Command\ScriptCommand;
use Predis\Response\Error;
use Predis\Response\ServerException;
use Predis\Response\Status;

// A script as a command of its own, the Predis way: INCRBY that never passes a cap.
class IncrByCapped extends ScriptCommand
{
    public function getKeysCount()
    {
        return 1;
    }

    public function getScript()
    {
        return <<<'LUA'
local v = redis.call('incrby', KEYS[1], ARGV[1])
if v > tonumber(ARGV[2]) then
    redis.call('set', KEYS[1], ARGV[2])
    return tonumber(ARGV[2])
end
return v
LUA;
    }
}

$port = (int)$argv[1];
$client = new Predis\Client(['host' => '127.0.0.1', 'port' => $port]);
$client->getProfile()->defineCommand('incrbycapped', 'IncrByCapped');
$quiet = new Predis\Client(['host' => '127.0.0.1', 'port' => $port], ['exceptions' => false]);

function plain($v)
{
    if ($v instanceof Status) {
        return ['+', (string)$v];
    }
    if ($v instanceof Error) {
        return ['-', $v->getMessage()];
    }
    if (is_array($v)) {
        return array_map('plain', $v);
    }
    return $v;
}

$out = [];
function run(string $label, callable $fn): void
{
    global $out;
    try {
        $out[] = [$label, plain($fn())];
    } catch (ServerException $e) {
        $out[] = [$label, ['exception', get_class($e), $e->getMessage()]];
    }
}

$client->flushdb();
run('script flush', function () use ($client) {
    return $client->script('flush');
});
run('config resetstat', function () use ($client) {
    return $client->config('resetstat');
});

// ---- EVAL: the Lua to Redis reply conversions ---------------------------------------------
$evals = [
    'integer' => ['return 42', 0],
    'float is truncated' => ['return 3.99', 0],
    'string' => ["return 'hello'", 0],
    'true is 1' => ['return true', 0],
    'false is nil' => ['return false', 0],
    'nil' => ['return nil', 0],
    'table stops at the first nil' => ['return {1, 2, nil, 4}', 0],
    'nested table' => ["return {1, {2, 'three', {}}, 'x'}", 0],
    'status reply' => ["return {ok = 'FINE'}", 0],
    'error reply' => ["return {err = 'MYERR something went wrong'}", 0],
    'redis.status_reply' => ["return redis.status_reply('DONE')", 0],
    'redis.error_reply' => ["return redis.error_reply('OOPS it broke')", 0],
    'keys and args' => ['return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}', 2, 'k1', 'k2', 'a1', 'a2'],
    'set and get' => ["redis.call('set', KEYS[1], ARGV[1]); return redis.call('get', KEYS[1])", 1, 'greeting', 'hi there'],
    'a status reply from redis.call' => ["return redis.call('set', KEYS[1], 'v')", 1, 'skey'],
    'missing key is false' => ["return redis.call('get', 'nope') == false", 0],
    'list round trip' => ["redis.call('rpush', KEYS[1], 'a', 'b', 'c'); return redis.call('lrange', KEYS[1], 0, -1)", 1, 'list'],
    'zset with scores' => ["redis.call('zadd', KEYS[1], 1.5, 'a', 2, 'b'); return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", 1, 'zs'],
    'hash' => ["redis.call('hset', KEYS[1], 'f', 'v'); return redis.call('hgetall', KEYS[1])", 1, 'h'],
    'cjson round trip' => ['return cjson.encode(cjson.decode(ARGV[1]))', 0, '{"a":[1,2.5,"x/y"],"b":{"c":null}}'],
    'cjson of attempts + 1' => ["local j = cjson.decode(ARGV[1]); j['attempts'] = j['attempts'] + 1; return cjson.encode(j)", 0, '{"id":"x","attempts":0,"data":{"command":"O:8:\"stdClass\":0:{}"}}'],
    'bit library' => ['return bit.band(12, 10)', 0],
    'redis.sha1hex' => ["return redis.sha1hex('abc')", 0],
    'pcall turns an error into a table' => ["local r = redis.pcall('incr', KEYS[1]); return r['err']", 1, 'greeting'],
    'numkeys too big' => ['return 1', 2, 'only-one'],
    'numkeys negative' => ['return 1', -1],
    'wrong type inside the script' => ["return redis.call('lpush', KEYS[1], 'x')", 1, 'greeting'],
    'unknown command inside the script' => ["return redis.call('nosuchcommand')", 0],
    'wrong arity inside the script' => ["return redis.call('get')", 0],
    'compile error' => ['return +', 0],
    'runtime error' => ['local t = nil; return t.x', 0],
    'global write refused' => ['x = 1; return x', 0],
    'os is not there' => ['return os.time()', 0],
];
foreach ($evals as $label => $args) {
    run("eval: $label", function () use ($client, $args) {
        return $client->eval(...$args);
    });
    run("eval, no exceptions: $label", function () use ($quiet, $args) {
        return $quiet->eval(...$args);
    });
}

// ---- SCRIPT LOAD / EXISTS / FLUSH and EVALSHA ---------------------------------------------
$script = "return 'loaded ' .. ARGV[1]";
run('script load', function () use ($client, $script) {
    return $client->script('load', $script);
});
run('sha1 matches', function () use ($client, $script) {
    return $client->script('load', $script) === sha1($script);
});
run('script exists', function () use ($client, $script) {
    return $client->script('exists', sha1($script), sha1('never loaded'));
});
run('evalsha', function () use ($client, $script) {
    return $client->evalsha(sha1($script), 0, 'once');
});
run('evalsha in upper case', function () use ($client, $script) {
    return $client->evalsha(strtoupper(sha1($script)), 0, 'twice');
});
run('evalsha of an unknown sha', function () use ($client) {
    return $client->evalsha(sha1('never loaded'), 0);
});
run('evalsha of an unknown sha, no exceptions', function () use ($quiet) {
    return $quiet->evalsha(sha1('never loaded'), 0);
});
run('eval caches the script', function () use ($client) {
    $client->eval("return 'cached by eval'", 0);
    return $client->evalsha(sha1("return 'cached by eval'"), 0);
});
run('script flush', function () use ($client) {
    return $client->script('flush');
});
run('script exists after flush', function () use ($client, $script) {
    return $client->script('exists', sha1($script));
});
run('evalsha after flush', function () use ($client, $script) {
    return $client->evalsha(sha1($script), 0, 'again');
});
run('script flush async', function () use ($client) {
    return $client->script('flush', 'async');
});
run('script flush sync', function () use ($client) {
    return $client->script('flush', 'sync');
});
run('script flush with a bad mode', function () use ($client) {
    return $client->script('flush', 'sometimes');
});
run('script kill with nothing running', function () use ($client) {
    return $client->script('kill');
});
run('script with an unknown subcommand', function () use ($client) {
    return $client->script('nosuch');
});
run('script load of a broken script', function () use ($client) {
    return $client->script('load', 'return +');
});

// ---- ScriptCommand: EVALSHA, NOSCRIPT, then EVAL -------------------------------------------
// After the flush the first call gets NOSCRIPT and Predis sends EVAL (which caches the
// script); the calls after it succeed with EVALSHA.
run('ScriptCommand after flush (EVALSHA, NOSCRIPT, EVAL)', function () use ($client) {
    return $client->incrbycapped('capped', 7, 10);
});
run('ScriptCommand again (EVALSHA)', function () use ($client) {
    return $client->incrbycapped('capped', 7, 10);
});
run('ScriptCommand a third time', function () use ($client) {
    return [$client->incrbycapped('capped', 1, 10), $client->get('capped')];
});
run('ScriptCommand sha is cached', function () use ($client) {
    return $client->script('exists', sha1((new IncrByCapped())->getScript()));
});
run('ScriptCommand on a wrong type', function () use ($client) {
    return $client->incrbycapped('list', 1, 10);
});

// ---- pipelines and transactions ------------------------------------------------------------
run('pipeline of eval and evalsha', function () use ($quiet) {
    return $quiet->pipeline(function ($pipe) {
        $pipe->eval("return 'p1'", 0);
        $pipe->evalsha(sha1("return 'p1'"), 0);
        $pipe->evalsha(sha1('never loaded'), 0);
        $pipe->eval("return redis.call('incr', KEYS[1])", 1, 'pcount');
    });
});
run('transaction of evals', function () use ($client) {
    return $client->transaction(function ($tx) {
        $tx->eval("return redis.call('incr', KEYS[1])", 1, 'tcount');
        $tx->eval("return redis.call('incrby', KEYS[1], ARGV[1])", 1, 'tcount', 5);
    });
});
run('eval_ro reads', function () use ($client) {
    return $client->executeRaw(['EVAL_RO', "return redis.call('get', KEYS[1])", '1', 'greeting']);
});
run('eval_ro refuses a write', function () use ($client) {
    return $client->executeRaw(['EVAL_RO', "return redis.call('set', KEYS[1], 'x')", '1', 'greeting']);
});

// ---- what each server counted ------------------------------------------------------------
run('commandstats', function () use ($client) {
    $stats = [];
    foreach ($client->info('commandstats')['Commandstats'] ?? [] as $cmd => $line) {
        if (strncmp($cmd, 'cmdstat_eval', 12) === 0 || strncmp($cmd, 'cmdstat_script', 14) === 0) {
            parse_str(str_replace(',', '&', $line), $fields);
            $stats[$cmd] = [(int)$fields['calls'], (int)($fields['failed_calls'] ?? -1)];
        }
    }
    ksort($stats);
    return $stats;
});

echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
