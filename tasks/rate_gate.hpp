// rate_gate: a queue's `rate` (dispatches per second) as a gate in front of every
// attempt, new or retried. No burst beyond one: after an attempt starts at t, the next
// may start at t + 1/rate at the earliest (or at once when the gate was idle longer).
// A rate of 0 or less means no limit.
//
// A plain value owned by whoever owns the queue (the broker thread for local queues, the
// Redis link for shared ones, on the same thread); it reads no clock itself.
#pragma once

#include <algorithm>
#include <chrono>

namespace respq::tasks {

class rate_gate {
 public:
  using clock = std::chrono::steady_clock;

  bool allows(clock::time_point now, double rate) const { return rate <= 0 || now >= next_allowed_; }

  // An attempt starts now.
  void consume(clock::time_point now, double rate) {
    if (rate <= 0) return;
    const auto step = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / rate));
    next_allowed_ = std::max(next_allowed_, now) + step;
  }

  // The earliest time the next attempt may start (in the past when it may start now).
  clock::time_point next_allowed() const { return next_allowed_; }

 private:
  clock::time_point next_allowed_{};
};

}  // namespace respq::tasks
