// callback_retries: the callbacks of one queue whose POST failed and that go again later,
// as QStash retries its callbacks. A callback of a final outcome (delivered, dead,
// cancelled, duplicate) that got no HTTP answer, or a 408, 425, 429 or 5xx
// (tasks::is_retryable), is sent again after the queue's backoff (full jitter, as a task's
// retry), up to max_attempts sends in all. One of a `retrying` outcome is not: the task's
// next outcome follows it, and a late resend would arrive after that one. Nor is one the
// egress policy refused, whose TLS failed for good, or that got any other answer. Kept in
// memory only (a restart forgets them), at most max_waiting at once: past that a failed
// callback is given up at once. Local queues (broker/core/task_manager) and shared ones
// (redis-compat/shared_queue) each keep one per queue. Pure: no clock (every call takes `now`, unix seconds), no I/O; owned by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace respq::tasks {

struct http_result;

class callback_retries {
 public:
  static constexpr int max_attempts = 5;
  static constexpr std::size_t max_waiting = 10000;

  // One callback: what its request is rebuilt from (tasks::make_callback_request).
  struct callback {
    std::string task_id, url, body;
    bool final = true;  // the outcome is the task's last (not `retrying`)
    int attempts = 1;   // sends so far, this one included
  };

  enum class verdict {
    delivered,  // a 2xx
    retry,      // waits here for its next send
    failed,     // given up: a final answer, the egress policy, its last send, or no room
  };

  // The end of a send of `cb`; `u` uniform in [0, 1) (tasks::uniform01) draws the backoff.
  verdict ended(callback&& cb, const http_result& res, double now, double backoff_min, double backoff_max, double u);

  // The callbacks due by `now`, taken out, the earliest first; each one's `attempts`
  // counts the send about to be made.
  std::vector<callback> due(double now);
  // When the next one is due; nullopt when none waits.
  std::optional<double> next_due() const;
  std::size_t waiting() const { return waiting_.size(); }
  std::uint64_t failed() const { return failed_; }    // given up, since start
  std::uint64_t retried() const { return retried_; }  // sends after the first, since start
  void clear() { waiting_.clear(); }
  // Whether the owner's log should say now that callbacks were given up: at most once a
  // minute (each one is logged at verbose level besides).
  bool notice_due(double now) {
    if (now - notice_at_ < 60) return false;
    notice_at_ = now;
    return true;
  }

 private:
  std::multimap<double, callback> waiting_;
  double notice_at_ = -1e300;
  std::uint64_t failed_ = 0, retried_ = 0;
};

}  // namespace respq::tasks
