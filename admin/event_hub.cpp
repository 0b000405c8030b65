// event_hub: see event_hub.hpp.
#include "admin/event_hub.hpp"

#include <algorithm>
#include <utility>

namespace respq::admin {

event_hub::subscription::status event_hub::subscription::next(std::vector<std::string>& out, std::size_t& skipped,
                                                               std::chrono::milliseconds wait) {
  std::unique_lock lock(m);
  auto ready = [this] { return !buffered.empty() || skipped_reported || dropped || closed; };
  if (!ready()) cv.wait_for(lock, wait, ready);
  if (!buffered.empty() || skipped_reported) {
    for (auto& e : buffered) out.push_back(std::move(e));
    buffered.clear();
    skipped += std::exchange(skipped_reported, 0);
    return status::events;
  }
  if (closed) return status::closed;
  if (dropped) return status::dropped;
  return status::idle;
}

// A second that has ended: its count goes to the reader, and a new one starts now.
void event_hub::subscription::roll(clock::time_point now) {
  if (now - window < std::chrono::seconds(1)) return;
  window = now;
  kept = 0;
  if (!skipped) return;
  {
    std::lock_guard lock(m);
    skipped_reported += skipped;
  }
  skipped = 0;
  cv.notify_one();
}

bool event_hub::subscription::takes(std::string_view queue, clock::time_point now) {
  if (!f.queue.empty() && f.queue != queue) return false;
  if (!f.max_rate) return true;
  roll(now);
  if (kept >= f.max_rate) {
    ++skipped;
    return false;
  }
  ++kept;
  return true;
}

std::shared_ptr<event_hub::subscription> event_hub::subscribe(std::size_t max_connections, filter f) {
  std::lock_guard lock(m_);
  if (subs_.size() >= max_connections) return nullptr;
  auto sub = std::make_shared<subscription>();
  sub->f = std::move(f);
  subs_.push_back(sub);
  count_.store(subs_.size(), std::memory_order_relaxed);
  return sub;
}

void event_hub::unsubscribe(const std::shared_ptr<subscription>& sub) {
  std::lock_guard lock(m_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
  count_.store(subs_.size(), std::memory_order_relaxed);
}

bool event_hub::choose(std::string_view queue, clock::time_point now) {
  takers_.clear();
  for (const auto& sub : subs_)
    if (sub->takes(queue, now)) takers_.push_back(sub.get());
  return !takers_.empty();
}

std::size_t event_hub::deliver(std::string_view message) {
  std::size_t taken = 0;
  for (subscription* sub : takers_) {
    {
      std::lock_guard sl(sub->m);
      if (sub->dropped || sub->closed) continue;
      if (sub->buffered.size() >= max_buffered_) {
        sub->dropped = true;
        sub->buffered.clear();
        dropped_total_.fetch_add(1, std::memory_order_relaxed);
      } else {
        sub->buffered.emplace_back(message);
        ++taken;
      }
    }
    sub->cv.notify_one();
  }
  takers_.clear();
  return taken;
}

void event_hub::flush(clock::time_point now) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(m_);
  for (const auto& sub : subs_)
    if (sub->f.max_rate) sub->roll(now);
}

void event_hub::close_all() {
  std::lock_guard lock(m_);
  for (const auto& sub : subs_) {
    {
      std::lock_guard sl(sub->m);
      sub->closed = true;
    }
    sub->cv.notify_one();
  }
}

}  // namespace respq::admin
