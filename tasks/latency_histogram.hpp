// latency_histogram: latencies counted in fixed buckets, as a metrics endpoint exposes
// them (Prometheus histogram buckets: upper bounds in milliseconds, 1-2-5 steps from
// 0.01 ms to 500 s, then everything above), with the sum and the count. Quantiles are
// read from the buckets: the nearest-rank sample's bucket, linearly interpolated inside
// it (as Prometheus' histogram_quantile does), so they are estimates within one bucket's
// width; the highest bucket in use ends at the largest latency recorded.
//
// Counts since the queue was created; a plain value, owned by the custody of its queue
// (one thread), copied into queue_stats for INFO.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace respq::tasks {

class latency_histogram {
 public:
  static constexpr std::array<double, 24> bounds_ms{
      0.01, 0.02, 0.05, 0.1,  0.2,  0.5,  1,     2,     5,     10,     20,     50,
      100,  200,  500,  1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000};
  static constexpr std::size_t bucket_count = bounds_ms.size() + 1;  // the last: above 500 s

  void record(double ms);

  // Per bucket, not cumulative: buckets()[i] counts latencies in (bounds_ms[i-1], bounds_ms[i]].
  const std::array<std::uint64_t, bucket_count>& buckets() const { return buckets_; }
  std::uint64_t count() const { return count_; }
  double sum_ms() const { return sum_ms_; }
  double max_ms() const { return max_ms_; }

  // The q-quantile (0 < q <= 1) in milliseconds; 0 when nothing was recorded.
  double quantile(double q) const;

 private:
  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  double sum_ms_ = 0;
  double max_ms_ = 0;
};

}  // namespace respq::tasks
