// client: the I/O-free state of one connection. Owner: the server core (broker thread);
// the asio connection object that carries its bytes holds a pointer and `io`.
//
// The I/O layer appends received bytes to `in` and calls server::on_input(); replies
// accumulate in `out` and are written once per loop turn (see server.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/byte_buffer.hpp"
#include "broker/core/stream_value.hpp"
#include "resp/request_parser.hpp"

namespace respq::core {

using clock = std::chrono::steady_clock;

// What a client blocked in BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP waits for.
struct blocked_state {
  // pop/move/mpop wait for a list; zpop (BZPOPMIN/BZPOPMAX) and zmpop (BZMPOP) for a
  // sorted set. A waiter is served only by a key of its own type.
  // xread (XREAD BLOCK) for a stream with an entry past its id in stream_ids. wait
  // (WAIT for replicas, which respq never has) only for its deadline: answered 0 then.
  // postpone: a command CLIENT PAUSE holds (see server::pause_clients), run from the
  // start once the pause ends; it waits for no key and never times out.
  enum class kind { pop, move, mpop, zpop, zmpop, xread, wait, postpone } what = kind::pop;
  std::vector<std::string> keys;   // in argument order, duplicates removed
  bool pop_left = true;            // BLPOP / BLMPOP LEFT / BLMOVE wherefrom LEFT / BZPOPMIN / BZMPOP MIN
  bool push_left = true;           // BLMOVE whereto
  std::string target;              // BLMOVE / BRPOPLPUSH destination
  long long count = 1;             // BLMPOP / BZMPOP COUNT; XREAD COUNT (0: no limit)
  std::vector<stream_id> stream_ids;  // XREAD: per key, entries after this id are wanted
  // XREADGROUP (kind xread with xgroup): the group and consumer it reads as; its
  // stream_ids follow the group's last id when served.
  bool xgroup = false;
  bool noack = false;
  std::string group, consumer;
  clock::time_point deadline = clock::time_point::max();
  std::string command;             // lower-case name, for CLIENT LIST cmd=
  int db = 0;                      // the database the keys are in (the client's at blocking)
  // The slowlog entry to push when the client is answered (empty: none), as Redis logs a
  // blocked command once it is unblocked.
  std::vector<std::string> slowlog_args;
  std::int64_t slowlog_us = 0;
  // postpone: the command held, as it came.
  std::vector<std::string> postponed;
};

struct client {
  std::uint64_t id = 0;
  std::string name;
  std::string addr, laddr;   // "ip:port"
  int fd = -1;
  int resp = 2;
  int db = 0;                // SELECTed database
  bool authenticated = false;
  std::string lib_name, lib_ver;

  byte_buffer in;
  resp::request_parser parser;
  std::string out;           // replies not yet written
  std::size_t out_sent = 0;  // bytes of `out` already written
  // Redis keeps the first 16 KB of unsent output in a fixed buffer (CLIENT LIST's obl) and
  // the rest in its reply list (oll, omem), in blocks of at least 16 KB that count whole:
  // only the list counts against client-output-buffer-limit, so small replies never reach
  // even a tiny limit, and the first byte past the buffer counts as 16 KB. (Redis also
  // shrinks an idle client's buffer and sizes a block to a larger reply; respq counts what
  // is past 16 KB in whole 16 KB blocks.)
  static constexpr std::size_t fixed_reply_bytes = 16 * 1024;
  std::size_t pending_output() const { return out.size() - out_sent; }
  std::size_t reply_list_bytes() const {
    const std::size_t past = pending_output() > fixed_reply_bytes ? pending_output() - fixed_reply_bytes : 0;
    return (past + fixed_reply_bytes - 1) / fixed_reply_bytes * fixed_reply_bytes;
  }
  // client-output-buffer-limit: since when the unsent output has been at or over the
  // soft limit (epoch = it is not).
  clock::time_point obuf_soft_since{};

  // Lifecycle flags.
  bool close_after_reply = false;  // QUIT, protocol error: close once `out` is written
  bool close_asap = false;         // CLIENT KILL: close without writing more
  bool queued_for_write = false;   // in server::pending_writes_
  bool monitor = false;
  bool is_fake = false;            // AOF loading and internal execution: no I/O
  bool counts_stats = false;       // a fake client whose calls INFO commandstats counts (a script's)
  bool no_evict = false;
  // CLIENT REPLY: OFF silences every reply; SKIP silences the next command's (reply_skip
  // is set while that command runs and until it is answered, if it blocks).
  bool reply_off = false;
  bool reply_skip = false;
  bool reply_skip_next = false;
  bool request_open = false;  // a request was read and is not answered yet (it blocked)

  // MULTI.
  bool in_multi = false;
  bool in_exec = false;            // running EXEC's queue: blocking commands don't block
  bool multi_dirty = false;        // a queued command was rejected: EXEC aborts
  // A command queued while the transaction could still run writes or may replicate
  // (Redis's mstate.cmd_flags): CLIENT PAUSE WRITE holds its EXEC.
  bool multi_may_replicate = false;
  bool watch_dirty = false;        // a WATCHed key changed: EXEC fails
  std::vector<std::vector<std::string>> multi_queue;
  std::vector<std::string> watched;
  std::vector<int> watched_db;        // per watched key: its database
  std::vector<bool> watched_expired;  // per watched key: already past its deadline at WATCH

  // Pub/sub (ordered so UNSUBSCRIBE without arguments answers in a stable order).
  std::set<std::string> channels;
  std::set<std::string> patterns;
  std::set<std::string> shard_channels;  // SSUBSCRIBE
  // What SUBSCRIBE and PSUBSCRIBE replies count (Redis's clientSubscriptionsCount); shard
  // channels are counted apart, by SSUBSCRIBE's replies.
  std::size_t subscriptions() const { return channels.size() + patterns.size(); }
  // In pub/sub mode (Redis's CLIENT_PUBSUB): subscribed to anything, shard channels too.
  bool in_pubsub() const { return subscriptions() + shard_channels.size() > 0; }

  // CLIENT TRACKING (client-side caching; server::tracking_*), as Redis 7.0's flags.
  struct tracking_state {
    bool on = false;
    bool bcast = false;
    bool optin = false, optout = false;
    bool caching = false;       // CLIENT CACHING yes (OPTIN) / no (OPTOUT), for the next command or transaction
    bool caching_kept = false;  // the request that ends now was a CLIENT command: CACHING survives it
    bool noloop = false;
    bool broken_redirect = false;  // the client it redirects to is gone
    std::uint64_t redirect = 0;    // 0: none
    std::set<std::string> prefixes;  // BCAST
  } tracking;

  // Blocking.
  std::unique_ptr<blocked_state> blocked;
  bool unblocked_pending = false;  // woken; its remaining pipeline runs later this turn
  // A command CLIENT PAUSE held, released: it runs (from the start) before the rest of
  // the pipeline, when the client's turn to go on comes (server::process_unblocked).
  std::vector<std::string> released;
  // A json-port client stopped at a value by CLIENT PAUSE (server::hold_json): it goes
  // on, in its place among the held clients, once the pause ends (server::resume_json).
  bool json_held = false;

  // Stats for CLIENT LIST / INFO.
  std::chrono::system_clock::time_point created = std::chrono::system_clock::now();
  clock::time_point last_interaction = clock::now();
  std::string last_command = "NULL";

  void* io = nullptr;  // the I/O layer's connection object; core never touches it
};

}  // namespace respq::core
