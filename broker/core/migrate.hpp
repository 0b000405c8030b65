// migrate: what MIGRATE needs of the network, as an interface the server is given (the
// broker's migrate_sockets; without one, as in the core's unit tests, MIGRATE cannot
// connect). Owner: the broker thread.
//
// MIGRATE runs as Redis runs it: the server waits while the command connects, writes
// the RESTOREs and reads their replies, each step bounded by the command's timeout. A
// connection is kept per "host:port" for the next MIGRATE to the same target, with the
// database it last selected; one unused for more than 10 seconds is closed by the cron,
// and at most 64 are kept (a random one is closed for a new one), as Redis's
// migrate_cached_sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace respq::core {

// One connection to a target instance.
class migrate_target {
 public:
  virtual ~migrate_target() = default;
  // Writes all of data, each 64 KB within timeout_ms; false on an error or a time-out
  // (errno ETIMEDOUT then).
  virtual bool write_all(std::string_view data, long long timeout_ms) = 0;
  // One reply line as Redis's syncReadLine reads it: up to a line feed or 1023 bytes (the
  // rest of a longer line is the next one), without its CR and LF, each byte within
  // timeout_ms of the one before. Returns the bytes read before the line feed (a CR
  // counted), so 0 for a bare line feed; -1 on an error, the peer closing or a time-out
  // (errno ETIMEDOUT then).
  virtual long read_line(std::string& line, long long timeout_ms) = 0;
  long long last_dbid = -1;  // -1: SELECT before the next RESTORE
};

// The cache of connections, by host and port.
class migrate_connections {
 public:
  static constexpr std::size_t max_cached = 64;
  static constexpr std::int64_t idle_seconds = 10;
  virtual ~migrate_connections() = default;
  // The cached connection to host:port, or a new one made within timeout_ms (nullptr if
  // it cannot be: no address, refused, timed out). `now` in unix seconds.
  virtual migrate_target* get(std::string_view host, std::string_view port, long long timeout_ms,
                              std::int64_t now) = 0;
  virtual void close(std::string_view host, std::string_view port) = 0;
  virtual void close_idle(std::int64_t now) = 0;
  virtual std::size_t size() const = 0;
};

}  // namespace respq::core
