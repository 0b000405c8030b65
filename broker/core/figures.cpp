// figures: see figures.hpp.
#include "broker/core/figures.hpp"

#include <algorithm>

#include "broker/core/server.hpp"

namespace respq::core {

client_figures clients_of(server& s) {
  client_figures f;
  f.connected = s.clients().size();
  f.blocked = s.blocked_clients();
  f.timed = s.timed_blocked_clients();
  f.pubsub = s.pubsub_clients();
  f.maxclients = s.cfg().maxclients;
  for (const auto& [id, c] : s.clients()) {
    f.max_input_buffer = std::max<std::uint64_t>(f.max_input_buffer, c->in.capacity());
    f.max_output_buffer = std::max<std::uint64_t>(f.max_output_buffer, c->out.size());
  }
  return f;
}

std::vector<command_figures> commands_of(server& s) {
  std::vector<command_figures> out;
  const double per_usec = s.cycles_per_usec();
  auto add = [&](const command_def& d, std::string name) {
    const auto& st = d.stats;
    if (!st.calls && !st.rejected && !st.failed) return;
    const double usec = per_usec > 0 ? static_cast<double>(st.cycles) / per_usec : 0;
    out.push_back({std::move(name), st.calls, st.rejected, st.failed, usec});
  };
  for (const command_def* d : s.commands()) {
    add(*d, std::string(d->name));
    for (const auto& sc : d->subcommands) add(sc, std::string(d->name) + "|" + std::string(sc.name));
  }
  return out;
}

}  // namespace respq::core
