// callback_retries: see callback_retries.hpp.
#include "tasks/callback_retries.hpp"

#include "tasks/http_request.hpp"
#include "tasks/retry_policy.hpp"

namespace respq::tasks {

callback_retries::verdict callback_retries::ended(callback&& cb, const http_result& res, double now,
                                                  double backoff_min, double backoff_max, double u) {
  const bool transport_error = !res.error.empty();
  if (!transport_error && res.code >= 200 && res.code < 300) return verdict::delivered;
  if (!cb.final || res.egress_denied || res.tls_failed || res.redirect_refused || !is_retryable(res.code, transport_error) || cb.attempts >= max_attempts ||
      waiting_.size() >= max_waiting) {
    ++failed_;
    return verdict::failed;
  }
  const double at = now + backoff_delay_at(cb.attempts, backoff_min, backoff_max, u);
  waiting_.emplace(at, std::move(cb));
  return verdict::retry;
}

std::vector<callback_retries::callback> callback_retries::due(double now) {
  std::vector<callback> out;
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    out.push_back(std::move(waiting_.begin()->second));
    waiting_.erase(waiting_.begin());
    ++out.back().attempts;
    ++retried_;
  }
  return out;
}

std::optional<double> callback_retries::next_due() const {
  if (waiting_.empty()) return std::nullopt;
  return waiting_.begin()->first;
}

}  // namespace respq::tasks
