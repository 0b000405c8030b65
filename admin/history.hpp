// history: the last hour of every queue's figures, kept by the admin server so that a
// dashboard opened now shows the past hour at once. A ring of samples taken on the
// broker's cron every `interval` seconds (5 s: 720 samples an hour): per queue its
// backlog (pending, in flight, retrying, scheduled, dead letters), delivered and failed
// per second over the interval, and the median dispatch delay and request duration of
// the interval (from the histograms' buckets counted during it, not since start).
//
// Memory: 720 samples x 9 floats per queue, about 26 KB a queue. A queue removed from the
// configuration is forgotten once its last sample leaves the ring.
//
// Threads: sample() on the broker thread, json() on HTTP threads; a mutex guards the ring
// (held for a copy-free render, never while the broker waits for anything).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/queue_stats.hpp"

namespace respq::admin {

// The q-quantile (0 < q <= 1, milliseconds) of latencies counted per bucket of
// tasks::latency_histogram (nearest rank, interpolated inside its bucket); NaN when the
// counts are all zero.
double bucket_quantile(const std::array<std::uint64_t, tasks::latency_histogram::bucket_count>& counts, double q);

class figures_history {
 public:
  static constexpr std::size_t field_count = 9;
  static constexpr std::array<const char*, field_count> field_names{
      "pending", "in_flight", "retrying", "scheduled", "dead", "delivered_per_s", "failed_per_s",
      "dispatch_delay_p50_ms", "request_duration_p50_ms"};

  explicit figures_history(double interval = 5, std::size_t capacity = 720) : interval_(interval), capacity_(capacity) {}

  double interval() const { return interval_; }

  // One sample at unix time `now` (seconds) of the queues' figures since start.
  void sample(double now, const std::vector<tasks::queue_stats>& queues);

  // {"interval":5,"queue":name|null,"t":[unix seconds...],"<field>":[...]...}: the
  // samples of one queue, oldest first, null where it had none; with `queue` empty, the
  // totals over every queue (sums; the two medians are left out). A queue without
  // samples: empty arrays.
  std::string json(std::string_view queue) const;

  std::size_t size() const;

 private:
  using point = std::array<float, field_count>;
  using buckets = std::array<std::uint64_t, tasks::latency_histogram::bucket_count>;
  struct series {
    std::deque<point> points;  // aligned with times_
    // The figures since start at the previous sample, for the rates and the medians.
    bool have_prev = false;
    std::uint64_t delivered = 0, failed = 0;
    buckets delay{}, duration{};
    double prev_t = 0;
  };
  const double interval_;
  const std::size_t capacity_;
  mutable std::mutex m_;
  std::deque<double> times_;
  std::map<std::string, series, std::less<>> queues_;
};

}  // namespace respq::admin
