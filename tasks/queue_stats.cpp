// queue_stats: see queue_stats.hpp.
#include "tasks/queue_stats.hpp"

#include "tasks/http_request.hpp"
#include "tasks/records.hpp"

namespace respq::tasks {

attempt_figures::code_class attempt_figures::classify(long code, bool transport_error) {
  if (transport_error || code < 200 || code > 599) return class_error;
  return static_cast<code_class>(code / 100 - 2);
}

void attempt_figures::record(const http_result& r, bool retrying) {
  ++responses[classify(r.code, !r.error.empty())];
  if (retrying) ++retried;
  duration.record(r.duration_ms);
}

std::string info_line(const queue_stats& s) {
  std::string out;
  out.reserve(360);
  out += s.name;
  auto field = [&out, first = true](const char* k, const std::string& v) mutable {
    out += first ? ':' : ',';
    first = false;
    out += k;
    out += '=';
    out += v;
  };
  field("pending", std::to_string(s.pending));
  field("in_flight", std::to_string(s.in_flight));
  field("retrying", std::to_string(s.retrying));
  field("scheduled", std::to_string(s.scheduled));
  field("delivered", std::to_string(s.delivered));
  field("failed", std::to_string(s.failed));
  field("dead", std::to_string(s.dead));
  field("dead_list", std::to_string(s.dead_list));
  field("dispatched", std::to_string(s.dispatched));
  field("egress_denied", std::to_string(s.egress_denied));
  field("reclaimed", std::to_string(s.reclaimed));
  field("latency_p50_ms", json_number(s.latency.quantile(0.50)));
  field("latency_p99_ms", json_number(s.latency.quantile(0.99)));
  field("concurrency", std::to_string(s.concurrency));
  field("rate", json_number(s.rate));
  field("shared", s.shared ? "1" : "0");
  field("paused", s.paused ? "1" : "0");
  field("cancelled", std::to_string(s.cancelled));
  field("replaying", std::to_string(s.replaying));
  field("callbacks_retrying", std::to_string(s.callbacks_retrying));
  field("callbacks_failed", std::to_string(s.callbacks_failed));
  for (const auto& [k, v] : s.extra) field(k.c_str(), v);
  out += "\r\n";
  return out;
}

}  // namespace respq::tasks
