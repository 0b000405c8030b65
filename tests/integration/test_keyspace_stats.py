"""INFO keyspace_hits and keyspace_misses against a real redis-server: the same data on
both, then one command at a time, and what each command adds to the two counters must
be the same (Redis counts every lookup for reading, lookupKeyRead: read commands, the
sources of the *STORE commands, OBJECT, an expired key as a miss; lookups for writing
and the blocked clients a push serves count nothing)."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RedisAndRespq, run_tests  # noqa: E402


def setup():
    return RedisAndRespq()


def stats(c):
    t = c.cmd("INFO", "stats").decode(errors="replace")
    return int(re.search(r"keyspace_hits:(\d+)", t).group(1)), int(re.search(r"keyspace_misses:(\d+)", t).group(1))


SETUP = [["FLUSHALL"], ["SET", "s", "v"], ["RPUSH", "l", "a", "b"], ["HSET", "h", "f", "v"], ["SADD", "st", "a", "b"],
         ["ZADD", "z", "1", "a", "2", "b"], ["XADD", "x", "1-1", "f", "v"], ["SET", "n", "5"], ["PFADD", "hl", "a"],
         ["GEOADD", "g", "1", "1", "p"], ["SETBIT", "b", "3", "1"], ["SET", "e", "1", "PX", "1"]]
COMMANDS = [["GET", "s"], ["GET", "nope"], ["MGET", "s", "nope", "l"], ["EXISTS", "s", "nope"], ["TYPE", "s"], ["TYPE", "nope"],
        ["TTL", "s"], ["PTTL", "nope"], ["STRLEN", "s"], ["GETRANGE", "s", "0", "1"], ["LRANGE", "l", "0", "-1"], ["LLEN", "nope"],
        ["LINDEX", "l", "0"], ["LPOS", "l", "a"], ["HGET", "h", "f"], ["HGETALL", "nope"], ["HMGET", "h", "f", "g"], ["HLEN", "h"],
        ["HEXISTS", "h", "f"], ["HSTRLEN", "h", "f"], ["HKEYS", "h"], ["HRANDFIELD", "h"], ["SMEMBERS", "st"], ["SISMEMBER", "st", "a"],
        ["SCARD", "nope"], ["SINTER", "st", "nope"], ["SUNION", "st", "st"], ["SDIFF", "st", "nope"], ["SINTERCARD", "2", "st", "st"],
        ["SRANDMEMBER", "st"], ["SMISMEMBER", "st", "a", "z"], ["ZRANGE", "z", "0", "-1"], ["ZSCORE", "z", "a"], ["ZCARD", "nope"],
        ["ZRANK", "z", "b"], ["ZCOUNT", "z", "0", "5"], ["ZUNION", "2", "z", "nope"], ["ZINTER", "2", "z", "z"], ["ZDIFF", "2", "z", "nope"],
        ["ZMSCORE", "z", "a", "q"], ["ZRANDMEMBER", "z"], ["ZRANGEBYSCORE", "z", "0", "9"], ["XRANGE", "x", "-", "+"], ["XLEN", "x"],
        ["XREAD", "STREAMS", "x", "nope", "0", "0"], ["XINFO", "STREAM", "x"], ["XREVRANGE", "nope", "+", "-"], ["PFCOUNT", "hl"],
        ["PFCOUNT", "hl", "nope"], ["GEOPOS", "g", "p"], ["GEODIST", "g", "p", "p"], ["GEOSEARCH", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "10", "km"],
        ["GETBIT", "b", "3"], ["BITCOUNT", "b"], ["BITPOS", "b", "1"], ["BITFIELD_RO", "b", "GET", "u8", "0"], ["LCS", "s", "nope"],
        ["SORT_RO", "l", "ALPHA"], ["OBJECT", "ENCODING", "s"], ["OBJECT", "FREQ", "nope"], ["MEMORY", "USAGE", "nope"], ["MEMORY", "USAGE", "e"], ["MEMORY", "USAGE", "s"],
        ["GET", "e"], ["EXISTS", "e"], ["TOUCH", "s", "nope"], ["RANDOMKEY"], ["DBSIZE"], ["KEYS", "*"], ["SCAN", "0"], ["HSCAN", "h", "0"],
        ["SSCAN", "st", "0"], ["ZSCAN", "z", "0"], ["EXPIRETIME", "s"], ["SUBSTR", "s", "0", "1"], ["EVAL", "return redis.call('get','s')", "0"],
        ["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "nope"], ["ZLEXCOUNT", "z", "-", "+"], ["HVALS", "h"],
        # writes that read
        ["GETSET", "s", "v"], ["GETDEL", "nope"], ["GETEX", "s"], ["SET", "s", "v", "GET"], ["SINTERSTORE", "d", "st", "nope"],
        ["ZUNIONSTORE", "d2", "2", "z", "nope"], ["COPY", "s", "s2"], ["SORT", "l", "ALPHA", "STORE", "d3"], ["LPUSH", "l", "c"],
        ["INCR", "n"], ["APPEND", "s", "x"], ["SMOVE", "st", "st3", "a"], ["RPOPLPUSH", "l", "l2"], ["LMOVE", "l", "l3", "LEFT", "RIGHT"],
        ["RENAME", "s2", "s4"], ["HINCRBY", "h", "k", "1"], ["BITOP", "AND", "d4", "b", "nope"], ["PFMERGE", "hl2", "hl", "nope"],
        ["GEOSEARCHSTORE", "d5", "g", "FROMLONLAT", "1", "1", "BYRADIUS", "10", "km"], ["XREADGROUP", "GROUP", "gg", "cc", "STREAMS", "x", ">"],
        ["PERSIST", "s"], ["EXPIRE", "s", "100"], ["DEL", "nope"], ["UNLINK", "s4"], ["MOVE", "n", "1"], ["ZRANGESTORE", "d6", "z", "0", "-1"]]


def test_each_command_counts_hits_and_misses_as_redis(pair):
    differences = []
    with pair.redis.raw() as d, pair.respq.raw() as r:
        # The key set with PX 1 must still be there, past its deadline, when a command
        # runs: neither server may remove it in the background meanwhile.
        for c in (d, r):
            assert c.cmd("DEBUG", "SET-ACTIVE-EXPIRE", "0") == b"+OK\r\n"
        for cmd in COMMANDS:
            for c in (d, r):
                for s in SETUP:
                    c.cmd(*s)
            time.sleep(0.01)  # the key set with PX 1 is past its deadline
            before = stats(d), stats(r)
            replies = d.cmd(*cmd), r.cmd(*cmd)
            after = stats(d), stats(r)
            counted = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before)]
            if counted[0] != counted[1]:
                differences.append((cmd, counted, replies))
            assert replies[0][:1] == replies[1][:1], (cmd, replies)
    assert not differences, differences
    # Not vacuous: the mix hits and misses on both servers.
    assert sum(1 for cmd in COMMANDS) > 100


if __name__ == "__main__":
    run_tests(globals(), setup=setup)
