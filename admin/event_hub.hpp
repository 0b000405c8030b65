// event_hub: the outcomes of HTTP tasks, fanned out to the admin server's Server-Sent
// Events connections (GET /api/events).
//
// The broker thread offers every message published on a channel `<queue>:results` of a
// configured queue (server::publish_observer); each SSE connection has a bounded buffer
// of its own (max_buffered events). Offering never waits for a reader: it takes a
// connection's lock only to append, and a connection whose buffer is full is marked
// dropped and gets nothing more, so a slow reader costs the broker nothing and loses its
// stream (its HTTP thread ends the response; the client reconnects). With no connection
// open an offer costs one atomic load.
//
// Threads: offer() on the broker thread; subscribe()/next() on HTTP threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace respq::admin {

class event_hub {
 public:
  static constexpr std::size_t default_max_buffered = 1024;

  class subscription {
   public:
    enum class status { events, idle, dropped, closed };
    // Waits up to `wait` for events; moves what is buffered into `out`.
    status next(std::vector<std::string>& out, std::chrono::milliseconds wait);

   private:
    friend class event_hub;
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::string> buffered;
    bool dropped = false, closed = false;
    // Set once at subscribe(): which offers this stream takes (called on the broker
    // thread, before anything is copied or any reader woken).
    std::function<bool(std::string_view)> accept;
  };

  explicit event_hub(std::size_t max_buffered = default_max_buffered) : max_buffered_(max_buffered) {}

  // A new stream; nullptr when max_connections are open already. `accept`, when given,
  // chooses the offers it takes (a dashboard's queue and rate: admin/dashboard.hpp).
  std::shared_ptr<subscription> subscribe(std::size_t max_connections,
                                          std::function<bool(std::string_view)> accept = {});
  void unsubscribe(const std::shared_ptr<subscription>& sub);
  // Broker thread: one outcome JSON. Returns how many connections took it.
  std::size_t offer(std::string_view message);
  // Ends every stream (shutdown).
  void close_all();
  std::size_t connections() const { return count_.load(std::memory_order_relaxed); }
  std::uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  const std::size_t max_buffered_;
  mutable std::mutex m_;  // guards subs_
  std::vector<std::shared_ptr<subscription>> subs_;
  std::atomic<std::size_t> count_{0};
  std::atomic<std::uint64_t> dropped_total_{0};
};

}  // namespace respq::admin
