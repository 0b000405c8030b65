// upstream_connection: one hiredis asynchronous connection to the upstream Redis, driven
// by the broker thread's asio loop, plus the two loop services the link needs (a timer
// and a same-thread post). This header has no asio and no hiredis types beyond a forward
// declaration, so the link's other files compile fast; everything asio lives in the .cpp.
//
// hiredis 0.14 has no asio adapter and no timers. The adapter watches hiredis's socket
// with a non-owning asio::posix::stream_descriptor (released in hiredis's cleanup hook,
// before hiredis closes the fd); connect and reply timeouts are our own steady_timer.
//
// Lifecycle: start() connects; once connected the handshake runs (AUTH when a password is
// configured, SELECT when db != 0, CLIENT SETNAME <name>, PING) and on_ready() fires.
// Any failure (connect error or timeout, handshake error, I/O error, no reply within the
// reply timeout while replies are awaited) closes the connection, fires on_lost(why) and
// reconnects after a capped exponential backoff with jitter (100 ms doubling to 2 s).
// stop() closes for good. Every command's reply handler runs exactly once: with the
// reply, or with nullptr when the connection was lost before the reply came (the command
// may or may not have been executed upstream). A handler that gets nullptr must not send
// commands; it waits for the next on_ready().
//
// Limits: hiredis resolves a host name with a blocking getaddrinfo() at each (re)connect,
// on the broker thread; configure an IP address, or a name the resolver answers at once.
// AUTH sends the password alone (the default user), as Redis's requirepass expects.
//
// Replies: inside arrays, integers, status replies and nils are shared placeholders
// (type only, no value): the link only looks for errors there, and reads strings (SCAN
// keys, LRANGE elements), which are real. Top-level replies are complete.
//
// Thread: the broker thread only (every call, every callback).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

// The broker thread's event loop, passed by reference (asio stays out of this header).
namespace asio {
class io_context;
}

namespace respq::redis_compat {

struct upstream_endpoint {
  std::string host;
  int port = 6379;
  std::string password;
  int db = 0;
};

class upstream_connection {
 public:
  // nullptr: the connection was lost before the reply arrived.
  using reply_fn = std::function<void(const redisReply*)>;

  // io_context: the broker thread's asio::io_context (network::io_context()).
  // name: sent as CLIENT SETNAME so operators (and tests) can find the connection.
  // reply_timeout_s: how long replies may be awaited without any arriving.
  upstream_connection(asio::io_context& io_context, upstream_endpoint ep, std::string name, double reply_timeout_s = 10);
  ~upstream_connection();
  upstream_connection(const upstream_connection&) = delete;
  upstream_connection& operator=(const upstream_connection&) = delete;

  void start();
  // Closes without reconnecting; handlers of pending commands get nullptr now.
  void stop();
  bool ready() const;

  std::function<void()> on_ready;
  std::function<void(const std::string& why)> on_lost;

  // Sends one command (false, and fn is dropped uncalled, when not ready).
  bool command(std::initializer_list<std::string_view> argv, reply_fn fn);
  bool command(const std::vector<std::string_view>& argv, reply_fn fn);
  // One command already RESP-encoded (an array of bulk strings).
  bool formatted(std::string_view command, reply_fn fn);
  // Same, but the reply is discarded unseen (the commands queued inside MULTI, whose
  // fate EXEC's reply tells).
  bool formatted_noreply(std::string_view command);

  // SUBSCRIBE to one channel: fn gets each message (the reply array) for as long as the
  // connection lasts (subscribe again after on_ready). Nothing else may be sent on this
  // connection afterwards. Messages are not replies awaited: no reply timeout applies.
  bool subscribe(std::string_view channel, reply_fn fn);

  // Points the connection at another address (a Sentinel switch): a connection up or on
  // its way to the old one is dropped and reconnects to the new one at once. An empty
  // host means no address is known: it stays down until one is set.
  void set_endpoint(const upstream_endpoint& ep);
  const upstream_endpoint& endpoint() const;

  // Extra time a reply may take while a blocking command (BLMOVE) is outstanding.
  void set_blocking_allowance(double seconds);

  // "up", "connecting", "down", "stopped", "idle" (never started).
  std::string status() const;
  std::uint64_t reconnects() const;   // times it became ready again after a loss
  std::uint64_t connects() const;     // times it became ready
  const std::string& last_error() const;
  std::size_t pending() const;        // replies awaited with a handler
  std::uint64_t bytes_pending_write() const;  // bytes hiredis has not written yet

 public:
  struct impl;  // defined in the .cpp (its hiredis callbacks need the name)

 private:
  std::shared_ptr<impl> impl_;
};

// A timer on the broker loop. at() replaces whatever was armed; the callback runs on the
// broker thread and never after cancel() or destruction.
class loop_timer {
 public:
  explicit loop_timer(asio::io_context& io_context);
  ~loop_timer();
  loop_timer(const loop_timer&) = delete;
  loop_timer& operator=(const loop_timer&) = delete;
  void at(std::chrono::steady_clock::time_point t, std::function<void()> fn);
  void after(double seconds, std::function<void()> fn);
  void cancel();
  bool armed() const;
  std::chrono::steady_clock::time_point when() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Runs fn later on the broker loop (same thread; not thread-safe, unlike network::post).
void loop_post(asio::io_context& io_context, std::function<void()> fn);

}  // namespace respq::redis_compat
