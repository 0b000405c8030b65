// event_hub: see event_hub.hpp.
#include "admin/event_hub.hpp"

#include <algorithm>

namespace respq::admin {

event_hub::subscription::status event_hub::subscription::next(std::vector<std::string>& out,
                                                               std::chrono::milliseconds wait) {
  std::unique_lock lock(m);
  if (buffered.empty() && !dropped && !closed) cv.wait_for(lock, wait, [this] { return !buffered.empty() || dropped || closed; });
  if (!buffered.empty()) {
    for (auto& e : buffered) out.push_back(std::move(e));
    buffered.clear();
    return status::events;
  }
  if (closed) return status::closed;
  if (dropped) return status::dropped;
  return status::idle;
}

std::shared_ptr<event_hub::subscription> event_hub::subscribe(std::size_t max_connections,
                                                              std::function<bool(std::string_view)> accept) {
  std::lock_guard lock(m_);
  if (subs_.size() >= max_connections) return nullptr;
  auto sub = std::make_shared<subscription>();
  sub->accept = std::move(accept);
  subs_.push_back(sub);
  count_.store(subs_.size(), std::memory_order_relaxed);
  return sub;
}

void event_hub::unsubscribe(const std::shared_ptr<subscription>& sub) {
  std::lock_guard lock(m_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), sub), subs_.end());
  count_.store(subs_.size(), std::memory_order_relaxed);
}

std::size_t event_hub::offer(std::string_view message) {
  if (count_.load(std::memory_order_relaxed) == 0) return 0;
  std::size_t taken = 0;
  std::lock_guard lock(m_);
  for (const auto& sub : subs_) {
    if (sub->accept && !sub->accept(message)) continue;
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
  return taken;
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
