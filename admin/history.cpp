// history: see history.hpp.
#include "admin/history.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace respq::admin {

namespace {

constexpr float none = std::numeric_limits<float>::quiet_NaN();

std::array<std::uint64_t, tasks::latency_histogram::bucket_count> minus(
    const std::array<std::uint64_t, tasks::latency_histogram::bucket_count>& a,
    const std::array<std::uint64_t, tasks::latency_histogram::bucket_count>& b) {
  std::array<std::uint64_t, tasks::latency_histogram::bucket_count> d{};
  for (std::size_t i = 0; i < d.size(); ++i) d[i] = a[i] >= b[i] ? a[i] - b[i] : 0;
  return d;
}

void put(nlohmann::json& arr, float v) {
  if (std::isnan(v)) arr.push_back(nullptr);
  else arr.push_back(std::round(static_cast<double>(v) * 1000.0) / 1000.0);
}

}  // namespace

double bucket_quantile(const std::array<std::uint64_t, tasks::latency_histogram::bucket_count>& counts, double q) {
  std::uint64_t total = 0;
  for (auto n : counts) total += n;
  if (total == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  const auto& bounds = tasks::latency_histogram::bounds_ms;
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const std::uint64_t n = counts[i];
    if (below + n < rank) {
      below += n;
      continue;
    }
    const double lo = i == 0 ? 0.0 : bounds[i - 1];
    if (i == bounds.size()) return lo;  // above the highest bound: its lower end is all we know
    const double hi = bounds[i];
    return lo + (hi - lo) * static_cast<double>(rank - below) / static_cast<double>(n);
  }
  return bounds.back();
}

void figures_history::sample(double now, const std::vector<tasks::queue_stats>& queues) {
  std::lock_guard lock(m_);
  times_.push_back(now);
  const std::size_t len = times_.size();
  for (const auto& s : queues) {
    auto it = queues_.find(s.name);
    if (it == queues_.end()) it = queues_.emplace(s.name, series{}).first;
    series& q = it->second;
    while (q.points.size() + 1 < len) q.points.push_front(point{none, none, none, none, none, none, none, none, none});
    point p;
    p[0] = static_cast<float>(s.pending);
    p[1] = static_cast<float>(s.in_flight);
    p[2] = static_cast<float>(s.retrying);
    p[3] = static_cast<float>(s.scheduled);
    p[4] = static_cast<float>(s.dead_list);
    const buckets& delay = s.latency.buckets();
    const buckets& duration = s.attempts.duration.buckets();
    if (q.have_prev && now > q.prev_t) {
      const double dt = now - q.prev_t;
      p[5] = static_cast<float>(static_cast<double>(s.delivered >= q.delivered ? s.delivered - q.delivered : 0) / dt);
      p[6] = static_cast<float>(static_cast<double>(s.failed >= q.failed ? s.failed - q.failed : 0) / dt);
      p[7] = static_cast<float>(bucket_quantile(minus(delay, q.delay), 0.5));
      p[8] = static_cast<float>(bucket_quantile(minus(duration, q.duration), 0.5));
    } else {
      p[5] = p[6] = p[7] = p[8] = none;
    }
    q.have_prev = true;
    q.prev_t = now;
    q.delivered = s.delivered;
    q.failed = s.failed;
    q.delay = delay;
    q.duration = duration;
    q.points.push_back(p);
  }
  // Queues not in this sample (removed): a gap; and the rates start afresh if they return.
  for (auto it = queues_.begin(); it != queues_.end();) {
    series& q = it->second;
    if (q.points.size() < len) {
      q.points.push_back(point{none, none, none, none, none, none, none, none, none});
      q.have_prev = false;
    }
    ++it;
  }
  if (times_.size() > capacity_) {
    times_.pop_front();
    for (auto it = queues_.begin(); it != queues_.end();) {
      it->second.points.pop_front();
      const bool all_gone = std::all_of(it->second.points.begin(), it->second.points.end(),
                                        [](const point& p) { return std::isnan(p[0]); });
      if (all_gone) it = queues_.erase(it);
      else ++it;
    }
  }
}

std::size_t figures_history::size() const {
  std::lock_guard lock(m_);
  return times_.size();
}

std::string figures_history::json(std::string_view queue) const {
  nlohmann::json doc;
  doc["interval"] = interval_;
  doc["queue"] = queue.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::string(queue));
  std::lock_guard lock(m_);
  nlohmann::json t = nlohmann::json::array();
  for (double v : times_) t.push_back(std::round(v * 1000.0) / 1000.0);
  doc["t"] = std::move(t);
  const std::size_t fields = queue.empty() ? field_count - 2 : field_count;
  std::vector<nlohmann::json> cols(fields, nlohmann::json::array());
  if (!queue.empty()) {
    auto it = queues_.find(queue);
    if (it == queues_.end()) {
      doc["t"] = nlohmann::json::array();
    } else {
      for (const point& p : it->second.points)
        for (std::size_t f = 0; f < fields; ++f) put(cols[f], p[f]);
    }
  } else {
    for (std::size_t i = 0; i < times_.size(); ++i) {
      for (std::size_t f = 0; f < fields; ++f) {
        float sum = 0;
        bool any = false;
        for (const auto& [name, q] : queues_) {
          const float v = q.points[i][f];
          if (std::isnan(v)) continue;
          sum += v;
          any = true;
        }
        put(cols[f], any ? sum : none);
      }
    }
  }
  for (std::size_t f = 0; f < fields; ++f) doc[field_names[f]] = std::move(cols[f]);
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace respq::admin
