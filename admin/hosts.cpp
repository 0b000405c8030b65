// hosts: see hosts.hpp.
#include "admin/hosts.hpp"

#include <nlohmann/json.hpp>

namespace respq::admin {

std::string hosts_json(std::vector<tasks::host_figures> hosts, std::size_t max_hosts, double now) {
  tasks::sort_busiest_first(hosts);
  nlohmann::json arr = nlohmann::json::array();
  for (std::size_t i = 0; i < hosts.size() && i < max_hosts; ++i) {
    const auto& h = hosts[i];
    auto time_or_null = [](double t) { return t > 0 ? nlohmann::json(t) : nlohmann::json(nullptr); };
    arr.push_back({
        {"host", h.host},
        {"queue", h.queue},
        {"state", tasks::circuit_name(h.state)},
        {"in_flight", h.in_flight},
        {"waiting", h.waiting},
        {"cap", h.cap},
        {"max_cap", h.max_cap},
        {"failures", h.failures},
        {"consecutive", h.consecutive},
        {"opened", h.opened},
        {"held", h.held},
        {"attempts", h.attempts},
        {"open_until", time_or_null(h.open_until)},
        {"held_until", time_or_null(h.held_until > now ? h.held_until : 0)},
        {"last_error", h.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(h.last_error)},
        {"last_error_at", time_or_null(h.last_error_at)},
    });
  }
  return nlohmann::json{{"total", hosts.size()}, {"hosts", arr}}.dump(-1, ' ', false,
                                                                       nlohmann::json::error_handler_t::replace);
}

}  // namespace respq::admin
