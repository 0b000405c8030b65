// network: the asio layer of the broker. It owns the io_context of the broker thread,
// the listening sockets, one connection object per client, the timer that wakes the
// core for deadlines, the 100 ms cron, and signals. It moves bytes between sockets and
// the core (broker/core/server.hpp) and nothing else: no command logic lives here.
//
// A loop turn: each readable connection reads once and hands its bytes to the core;
// the replies of every connection served in that turn are written by one posted
// flush (after the core's before_write(), which runs the AOF group commit), so a
// pipelined or busy turn costs one write per connection.
//
// This header does not include asio: it is included by main.cpp only, and the
// implementation keeps the expensive asio templates in one translation unit.
#pragma once

#include <functional>
#include <memory>
#include <string>

// The broker thread's event loop, passed by reference (asio stays out of this header).
namespace asio {
class io_context;
}

namespace respq::core {
class server;
}

namespace respq::broker {

class network {
 public:
  explicit network(core::server& s);
  ~network();

  // Binds every configured address. Returns an error text (nothing listens then).
  std::string listen();
  // Runs the loop until shutdown. Returns the exit code.
  int run();
  // Begins a graceful shutdown (signals, SHUTDOWN): stop accepting, let in-flight HTTP
  // work finish within the grace period, flush, close, return from run().
  void shutdown();
  // Runs fn on the broker thread (thread-safe).
  void post(std::function<void()> fn);
  // Hooks run during shutdown, before the loop exits (persistence flush, engine stop).
  std::function<void()> on_stopping;
  // Loop access for modules that need their own asio objects on the broker thread
  // (the hiredis link). Returns an asio::io_context*.
  asio::io_context& io_context();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::broker
