// broker_bridge: how the admin server's threads reach broker state. Nothing here touches
// the core from an HTTP thread: call() posts a function to the broker thread (the
// network's post, the same way delivery results come back) and waits for its result
// with a future; command() runs a Redis command there as the admin server's own client
// and hands back its RESP2 reply, so an endpoint that maps onto a command (enqueue
// today; pause, resume, cancel when they exist as commands) is a few lines.
//
// Limits, stated: a call waits at most `timeout` (the broker is stopping, or a script
// holds it past busy-reply-threshold); the caller then answers 503 and the function, if
// it still runs later, runs against a result nobody reads. A command that blocks (BLPOP
// ...) is not for this facility: it is answered as timed out at once (the client is
// unblocked before the reply is read).
//
// Threads: call()/command() from any thread but the broker's; the posted work runs on
// the broker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace respq::core {
class server;
}

namespace respq::admin {

// A command's RESP2 reply bytes.
struct resp_reply {
  std::string bytes;
  bool is_error() const { return !bytes.empty() && bytes[0] == '-'; }
  // The error text without '-' and CRLF ("ERR ...", "OOM ..."); empty when not an error.
  std::string error() const;
  // The integer of a ":n" reply, or nullopt.
  std::optional<long long> integer() const;
};

class broker_bridge {
 public:
  using post_fn = std::function<void(std::function<void()>)>;

  broker_bridge(core::server& s, post_fn post, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~broker_bridge();
  broker_bridge(const broker_bridge&) = delete;
  broker_bridge& operator=(const broker_bridge&) = delete;

  // Runs fn(server&) on the broker thread and returns its result; nullopt when the broker
  // did not run it within the timeout.
  template <typename Fn>
  auto call(Fn fn) -> std::optional<std::invoke_result_t<Fn&, core::server&>> {
    using result_t = std::invoke_result_t<Fn&, core::server&>;
    auto promise = std::make_shared<std::promise<result_t>>();
    auto future = promise->get_future();
    core::server* s = &s_;
    if (stopping_.load()) return std::nullopt;
    post_([promise, s, fn = std::move(fn)]() mutable { promise->set_value(fn(*s)); });
    // In slices, so that stop() releases every waiter at once.
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready)
      if (stopping_.load() || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    return future.get();
  }

  // From now on call() and command() answer nullopt at once (the broker is stopping).
  void stop() { stopping_.store(true); }

  // Runs one command (args[0] is its name) on the broker thread, as a client of its own
  // (authenticated, database 0, RESP2) through the normal command path: AOF, mirror,
  // MONITOR, the dispatcher and INFO commandstats see it like any client's. The reply is
  // taken after the turn's effects were flushed to the AOF (under appendfsync always: on
  // disk), and when they could not be, it is an error. nullopt: the timeout passed.
  std::optional<resp_reply> command(std::vector<std::string> args);

  // The same, already on the broker thread (for work composed inside call()).
  resp_reply command_here(const std::vector<std::string>& args);

  // On the broker thread, at shutdown: the admin client is closed.
  void close_here();

 private:
  core::server& s_;
  post_fn post_;
  std::chrono::milliseconds timeout_;
  std::uint64_t client_id_ = 0;  // broker thread: the admin client, 0 when none yet
  std::atomic<bool> stopping_{false};
};

}  // namespace respq::admin
