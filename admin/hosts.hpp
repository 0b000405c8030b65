// hosts: GET /api/hosts, the destination hosts of every HTTP queue (tasks/host_health.hpp)
// as JSON for the dashboard: the figures INFO hosts shows, the busiest first, at most
// host-info-max of them ("total" says how many there are). A pure function; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tasks/host_health.hpp"

namespace respq::admin {

// {"total":N,"hosts":[{"host":"127.0.0.1:8080","queue":"tasks","state":"closed",
//  "in_flight":..,"waiting":..,"cap":..,"max_cap":..,"failures":..,"consecutive":..,
//  "opened":..,"held":..,"attempts":..,"open_until":..|null,"held_until":..|null,
//  "last_error":".."|null,"last_error_at":..|null}, ...]}
std::string hosts_json(std::vector<tasks::host_figures> hosts, std::size_t max_hosts, double now);

}  // namespace respq::admin
