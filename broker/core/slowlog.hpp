// slowlog: Redis's slow log (SLOWLOG GET | LEN | RESET | HELP). Owner: the broker thread.
//
// server::call() times every command it runs (the cycle counter INFO commandstats
// already reads); a command that took at least slowlog-log-slower-than microseconds is
// pushed here, newest first, and the oldest entries beyond slowlog-max-len are dropped.
// What an entry keeps is Redis 7.0's (slowlog.c): a growing id, the unix time, the
// duration in microseconds, the arguments (at most 32: the 32nd says "... (N more
// arguments)"; each at most 128 bytes, then "... (N more bytes)"), the client's address
// and name. Secrets are never kept: AUTH's password, HELLO's AUTH pair, MIGRATE's AUTH and the values of
// CONFIG SET requirepass / upstream-password become "(redacted)", as in Redis.
//
// As in Redis: EXEC itself is not logged, the commands it ran are; a script's own
// redis.call()s are logged (client "?:0", no name) after which EVAL is; a blocking
// command that blocked is logged when it is answered (served or timed out), with the
// time it spent running, not the time it waited.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace respq::core {

struct slowlog_entry {
  std::uint64_t id = 0;
  std::int64_t time = 0;         // unix seconds
  std::int64_t duration_us = 0;
  std::vector<std::string> argv;
  std::string peer;              // "ip:port", "?:0" for a script's commands
  std::string name;              // CLIENT SETNAME
};

// Which arguments Redis 7.0 replaces with "(redacted)" before the slow log and MONITOR see
// them (redactClientCommandArgument: AUTH, HELLO ... AUTH, MIGRATE's AUTH and AUTH2,
// CONFIG SET of a sensitive setting).
std::vector<bool> redacted_args(std::span<const std::string_view> args);

class slowlog {
 public:
  static constexpr std::size_t max_argc = 32;
  static constexpr std::size_t max_string = 128;

  // Adds an entry (the caller checked the threshold), then trims to max_len (a lowered
  // slowlog-max-len takes effect at the next push, as in Redis).
  void push(std::span<const std::string_view> args, std::int64_t duration_us, std::string peer, std::string name,
            std::size_t max_len);
  // The same with the arguments already as logged_args() makes them (a blocked command's,
  // kept until it is answered).
  void push_logged(std::vector<std::string> logged, std::int64_t duration_us, std::string peer, std::string name,
                   std::size_t max_len);
  // SLOWLOG RESET: the entries go, the ids go on.
  void reset() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  const std::deque<slowlog_entry>& entries() const { return entries_; }  // newest first

  // The argument vector as the slow log keeps it: redacted, trimmed.
  static std::vector<std::string> logged_args(std::span<const std::string_view> args);

 private:
  std::deque<slowlog_entry> entries_;
  std::uint64_t next_id_ = 0;
};

}  // namespace respq::core
