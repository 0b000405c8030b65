// event_hub: the outcomes of HTTP tasks, fanned out to the admin server's Server-Sent
// Events connections (GET /api/events).
//
// Two ways in, both on the broker thread: the task manager offers each outcome of a local
// queue before it is written out (task_manager::outcome_watch), with a function that
// builds its JSON, and every message published on a channel `<queue>:results` of a
// configured queue is offered as it is (the admin server's server_module::on_publish: a
// client's PUBLISH, a shared queue's outcome, or a local outcome that was built anyway for
// a subscriber, a pattern, the mirror or a callback; the task manager then does not offer
// it itself).
//
// Each stream has a filter: one queue's outcomes or every queue's, and at most max_rate a
// second or all of them. The hub decides per offer which streams take it, before anything
// is built: an outcome no stream takes now (another queue, or its stream's second is full)
// is only counted, with a plain integer per stream, and never becomes JSON; one that a
// stream takes is built once and copied into each taker's buffer. So a dashboard watching
// a queue costs the broker about max_rate outcomes a second, not one per task. A stream's
// count of skipped outcomes is handed to it when its second ends (at the next offer, or at
// flush() on the broker's cron), and next() reports it; the page shows it as "counted".
//
// Each stream has a bounded buffer of its own (max_buffered events). Offering never waits
// for a reader: it takes a stream's lock only to append, and a stream whose buffer is full
// is marked dropped and gets nothing more, so a slow reader costs the broker nothing and
// loses its stream (its HTTP thread ends the response; the client reconnects). With no
// stream open an offer costs one atomic load.
//
// Threads: offer() and flush() on the broker thread (the filters' windows and counts are
// guarded by the hub's lock, which HTTP threads take only to subscribe and unsubscribe);
// subscribe()/next() on HTTP threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respq::admin {

class event_hub {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t default_max_buffered = 1024;

  // What a stream takes: the outcomes of `queue` ("" = every queue), at most max_rate in
  // a second (0 = no cap); those of its queue over the cap are counted.
  struct filter {
    std::string queue;
    std::size_t max_rate = 0;
  };

  class subscription {
   public:
    enum class status { events, idle, dropped, closed };
    // Waits up to `wait` for events or a count of skipped outcomes; moves what is buffered
    // into `out` and adds the outcomes counted in seconds that have ended to `skipped`.
    status next(std::vector<std::string>& out, std::size_t& skipped, std::chrono::milliseconds wait);
    status next(std::vector<std::string>& out, std::chrono::milliseconds wait) {
      std::size_t ignored = 0;
      return next(out, ignored, wait);
    }

   private:
    friend class event_hub;
    // Shared with the reader, under m.
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::string> buffered;
    std::size_t skipped_reported = 0;
    bool dropped = false, closed = false;
    // The broker thread's, under the hub's lock: the filter and its current second.
    filter f;
    clock::time_point window{};
    std::size_t kept = 0, skipped = 0;
    bool takes(std::string_view queue, clock::time_point now);
    void roll(clock::time_point now);
  };

  explicit event_hub(std::size_t max_buffered = default_max_buffered) : max_buffered_(max_buffered) {}

  // A new stream; nullptr when max_connections are open already.
  std::shared_ptr<subscription> subscribe(std::size_t max_connections, filter f);
  std::shared_ptr<subscription> subscribe(std::size_t max_connections) { return subscribe(max_connections, filter{}); }
  void unsubscribe(const std::shared_ptr<subscription>& sub);

  // Broker thread: an outcome of `queue`; build() makes its JSON (a std::string or
  // anything convertible to std::string_view), called at most once and only when a
  // stream takes it. Returns how many streams took it.
  template <typename Build>
  std::size_t offer(std::string_view queue, Build&& build, clock::time_point now) {
    if (count_.load(std::memory_order_relaxed) == 0) return 0;
    std::lock_guard lock(m_);
    if (!choose(queue, now)) return 0;
    const auto& message = build();
    return deliver(std::string_view(message));
  }
  template <typename Build>
  std::size_t offer(std::string_view queue, Build&& build) {
    if (count_.load(std::memory_order_relaxed) == 0) return 0;
    return offer(queue, std::forward<Build>(build), clock::now());
  }
  // An outcome already built (a message published on `<queue>:results`).
  std::size_t offer_message(std::string_view queue, std::string_view message) {
    return offer(queue, [message] { return message; });
  }
  std::size_t offer_message(std::string_view queue, std::string_view message, clock::time_point now) {
    return offer(queue, [message] { return message; }, now);
  }
  // Broker thread (cron): hands the counts of seconds that have ended to their streams,
  // so a stream learns them though no further outcome comes.
  void flush(clock::time_point now = clock::now());
  // Ends every stream (shutdown).
  void close_all();
  std::size_t connections() const { return count_.load(std::memory_order_relaxed); }
  std::uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  const std::size_t max_buffered_;
  mutable std::mutex m_;  // guards subs_, takers_ and the subscriptions' filter state
  std::vector<std::shared_ptr<subscription>> subs_;
  std::vector<subscription*> takers_;  // of the offer being made
  std::atomic<std::size_t> count_{0};
  std::atomic<std::uint64_t> dropped_total_{0};
  // Under m_: which streams take an outcome of `queue` now (into takers_), counting it
  // for those that skip it; true when any takes it.
  bool choose(std::string_view queue, clock::time_point now);
  std::size_t deliver(std::string_view message);
};

}  // namespace respq::admin
