// Declarations of the command handlers and the helpers they share. Each cmd_*.cpp
// file holds one family; the table that names them is in command_table.cpp.
#pragma once

#include "broker/core/server.hpp"

namespace respq::core {

inline constexpr std::string_view wrongtype_error = "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view not_integer_error = "ERR value is not an integer or out of range";
inline constexpr std::string_view syntax_error = "ERR syntax error";

// Parses an integer argument; on failure replies Redis's "value is not an integer or out
// of range" and returns false.
bool integer_arg(server& s, client& c, std::string_view arg, long long& out);
// The string at `key`, or nullptr when absent. When the key holds another type, replies
// WRONGTYPE and sets `wrong`.
std::string* lookup_string(server& s, client& c, std::string_view key, bool& wrong);
// The list at `key`, or nullptr when absent. When the key holds another type, replies
// WRONGTYPE and sets `wrong`.
packed_list* lookup_list(server& s, client& c, std::string_view key, bool& wrong);
// Redis's getDoubleFromObject: the whole string, no leading space, no overflow, no NaN.
bool parse_score(std::string_view arg, double& out);
// The sorted set at `key` (nullptr when absent); WRONGTYPE replied and `wrong` set when the
// key holds something else.
zset_value* lookup_zset(server& s, client& c, std::string_view key, bool& wrong);
// Pushes values onto a list (creating it), wakes waiters, tells the keyspace event
// ("lpush"/"rpush") unless `notify` is false (the task manager's own moves); returns the
// new length.
std::size_t list_push(server& s, std::string_view key, args_t values, bool left, value* existing = nullptr,
                      bool notify = true);
// After elements were popped from the list at `key` (Redis's listElementsRemoved): the
// pop's keyspace event, and the key is deleted ("del") when the list is left empty.
void list_popped(server& s, std::string_view key, packed_list& list, bool left);
// LMOVE's move, served BLMOVE's too: one element from the list `from` at `src` (known to
// hold one) onto `dst` (created if absent; a list, or src itself), waiters on dst woken,
// keyspace events in Redis's order; `src` deleted if left empty. Returns the element.
std::string list_move(server& s, std::string_view src, packed_list& from, std::string_view dst, bool from_left,
                      bool to_left);

// Redis's addReplySubcommandSyntaxError: "unknown subcommand or wrong number of arguments
// for '<sub>'. Try <COMMAND> HELP." (a[0] the container as typed, a[1] the subcommand).
void subcommand_syntax_error(server& s, client& c, args_t a);
// CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO (tracking.cpp).
void client_tracking(server& s, client& c, args_t a);
void client_caching(server& s, client& c, args_t a);
void client_getredir(server& s, client& c);
void client_trackinginfo(server& s, client& c);

// SCAN / HSCAN / SSCAN / ZSCAN arguments: a cursor at a[cursor_index], then MATCH, COUNT
// and (SCAN only: allow_type) TYPE, with Redis's errors. False after replying the error.
struct scan_args {
  unsigned long long cursor = 0;
  long long count = 10;
  std::string_view pattern;
  bool has_pattern = false;  // false for no MATCH or MATCH *
  std::string type;          // lower case; empty for any
};
bool parse_scan_args(server& s, client& c, args_t a, std::size_t cursor_index, bool allow_type, scan_args& out);
// The cursor alone ("ERR invalid cursor"). HSCAN, SSCAN and ZSCAN check it before they
// look the key up, and the options only for a key that exists, as Redis does.
bool parse_scan_cursor(server& s, client& c, std::string_view arg, unsigned long long& out);
// The reply to <CONTAINER> HELP: one status line per text line, as Redis's addReplyHelp.
template <std::size_t N>
void help_reply(server& s, client& c, const char* const (&lines)[N]) {
  auto w = s.reply(c);
  w.array(N);
  for (const char* l : lines) w.simple(l);
}

// What HSCAN, SSCAN and ZSCAN answer for a missing key: cursor 0, no elements.
void empty_scan_reply(server& s, client& c);

// After `popped` members were popped from the sorted set at `key`: the pop's keyspace
// event ("zpopmin"/"zpopmax"), and the key is deleted ("del") when the set is left empty.
void zset_popped(server& s, std::string_view key, zset_value& z, bool min, std::size_t popped);
// Pops up to `count` members of a sorted set (min or max end) and writes the reply in
// one of Redis's shapes: 'f' flat [m, s, ...] (ZPOPMIN), 'r' pairs [[m, s], ...] (ZPOPMIN
// with count in RESP3), 'k' [key, m, s] (BZPOPMIN), 'n' [key, [[m, s], ...]] (ZMPOP,
// BZMPOP). The caller deletes the key if it empties. Returns how many were popped.
std::size_t zset_pop_reply(resp::reply_writer& w, zset_value& z, std::string_view key, bool min, std::size_t count,
                           char shape);

// Serves a client blocked in XREAD on `key` if the stream there has entries past its id:
// writes the reply and returns true (the caller unblocks it).
bool serve_xread_waiter(server& s, client& c, std::string_view key);

// Redis's ld2string(LD_STR_HUMAN): 17 decimals, trailing zeros dropped, no "-0"
// (INCRBYFLOAT's result, GEOPOS's coordinates).
std::string format_long_double(long double v);

// "ERR invalid expire time in '<command>' command".
void expire_time_error(server& s, client& c, std::string_view command);

// A database number argument (SELECT, MOVE): Redis's errors for a non-integer and for a
// number outside 0..databases-1.
bool db_index_arg(server& s, client& c, std::string_view arg, int& out);

#define RESPQ_COMMANDS(X)                                                                             \
  X(ping) X(echo) X(quit) X(select) X(auth) X(hello) X(client) X(reset)                              \
  X(lpush) X(rpush) X(lpushx) X(rpushx) X(lpop) X(rpop) X(llen) X(lrange) X(lindex) X(lset) X(lrem)  \
  X(ltrim) X(linsert) X(lpos) X(lmove) X(rpoplpush) X(blpop) X(brpop) X(blmove) X(brpoplpush)          \
  X(lmpop) X(blmpop)                                                                                 \
  X(del) X(unlink) X(exists) X(type) X(ttl) X(pttl) X(persist) X(keys) X(scan) X(dbsize) X(flushdb)   \
  X(flushall) X(rename) X(renamenx) X(dump) X(restore) X(migrate)                                    \
  X(move) X(swapdb)                                                                                  \
  X(expire) X(pexpire) X(expireat) X(pexpireat) X(expiretime) X(pexpiretime)                         \
  X(get) X(set) X(setnx) X(mget) X(mset) X(incr) X(decr) X(incrby) X(decrby) X(append) X(strlen) X(lcs)      \
  X(getset) X(getdel) X(getrange) X(substr) X(setrange) X(incrbyfloat) X(msetnx)                     \
  X(setex) X(psetex) X(getex)                                                                        \
  X(setbit) X(getbit) X(bitcount) X(bitpos) X(bitop) X(bitfield) X(bitfield_ro)                      \
  X(pfadd) X(pfcount) X(pfmerge) X(pfdebug) X(pfselftest)                                            \
  X(sort) X(sort_ro)                                                                                 \
  X(geoadd) X(geodist) X(geohash) X(geopos) X(georadius) X(georadius_ro) X(georadiusbymember)         \
  X(georadiusbymember_ro) X(geosearch) X(geosearchstore)                                             \
  X(hset) X(hget) X(hdel) X(hlen) X(hgetall) X(hkeys) X(hvals) X(hexists) X(hmget)                   \
  X(hmset) X(hsetnx) X(hincrby) X(hincrbyfloat) X(hstrlen) X(hscan) X(hrandfield)                  \
  X(sadd) X(srem) X(smembers) X(sismember) X(smismember) X(scard) X(spop) X(srandmember) X(smove)     \
  X(sunion) X(sinter) X(sdiff) X(sunionstore) X(sinterstore) X(sdiffstore) X(sintercard) X(sscan)     \
  X(zadd) X(zincrby) X(zrem) X(zcard) X(zscore) X(zmscore) X(zrank) X(zrevrank) X(zcount) X(zlexcount) \
  X(zrange) X(zrangestore) X(zrangebyscore) X(zrevrangebyscore) X(zrangebylex) X(zrevrangebylex)       \
  X(zrevrange) X(zremrangebyscore) X(zremrangebyrank) X(zremrangebylex) X(zpopmin) X(zpopmax)        \
  X(zmpop) X(zrandmember) X(zscan) X(zunion) X(zinter) X(zdiff) X(zunionstore) X(zinterstore)         \
  X(zdiffstore) X(zintercard) X(bzpopmin) X(bzpopmax) X(bzmpop)                                      \
  X(xadd) X(xlen) X(xrange) X(xrevrange) X(xdel) X(xtrim) X(xread) X(xsetid) X(xinfo) X(xreadgroup) X(xgroup) X(xack) X(xpending) X(xclaim) X(xautoclaim)                \
  X(publish) X(spublish) X(ssubscribe) X(sunsubscribe) X(subscribe) X(unsubscribe) X(psubscribe) X(punsubscribe) X(pubsub)                     \
  X(multi) X(exec) X(discard) X(watch) X(unwatch)                                                    \
  X(info) X(command) X(config) X(time) X(shutdown) X(bgrewriteaof) X(monitor) X(lastsave) X(wait) X(role) \
  X(memory) X(debug) X(object) X(copy) X(touch) X(randomkey)                                      \
  X(eval) X(evalsha) X(eval_ro) X(evalsha_ro) X(script) X(slowlog) X(latency)                       \
  X(fcall) X(fcall_ro) X(function)                                                                   \
  X(queue) X(task)

#define RESPQ_DECLARE(name) void cmd_##name(server&, client&, args_t);
RESPQ_COMMANDS(RESPQ_DECLARE)
#undef RESPQ_DECLARE

}  // namespace respq::core
