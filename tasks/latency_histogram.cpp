// latency_histogram: see latency_histogram.hpp.
#include "tasks/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace respq::tasks {

void latency_histogram::record(double ms) {
  if (!(ms >= 0)) ms = 0;  // a clock step backwards (or NaN) counts as no wait
  const auto it = std::lower_bound(bounds_ms.begin(), bounds_ms.end(), ms);
  ++buckets_[static_cast<std::size_t>(it - bounds_ms.begin())];
  ++count_;
  sum_ms_ += ms;
  max_ms_ = std::max(max_ms_, ms);
}

double latency_histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest sample with at least q of the samples at or below it.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  // The highest bucket in use ends at the largest latency recorded, not at its bound.
  std::size_t top = bucket_count - 1;
  while (top > 0 && buckets_[top] == 0) --top;
  std::uint64_t below = 0;
  for (std::size_t i = 0; i <= top; ++i) {
    const std::uint64_t n = buckets_[i];
    if (below + n < rank) {
      below += n;
      continue;
    }
    const double lo = i == 0 ? 0.0 : bounds_ms[i - 1];
    const double hi = i == top ? std::max(max_ms_, lo) : bounds_ms[i];
    return lo + (hi - lo) * static_cast<double>(rank - below) / static_cast<double>(n);
  }
  return max_ms_;
}

}  // namespace respq::tasks
