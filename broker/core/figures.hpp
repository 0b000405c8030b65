// figures: the server's figures as plain data, for INFO and the admin server's /metrics
// alike. Each module fills its own struct on the broker thread (the core: clients and
// commands; persistence: aof_figures; the Redis link: link_figures; the queues:
// tasks::queue_stats); whoever asks owns the copy and may read it on any thread, so the
// metrics endpoint never parses INFO text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/host_health.hpp"
#include "tasks/queue_stats.hpp"

namespace respq::core {

class server;

struct client_figures {
  std::uint64_t connected = 0;  // INFO connected_clients
  std::uint64_t blocked = 0;    // waiting in a blocking command (or held by CLIENT PAUSE)
  std::uint64_t timed = 0;      // ... of those, waiting with a timeout (Redis's timeout table)
  std::uint64_t pubsub = 0;     // subscribed to a channel or pattern
  std::uint64_t maxclients = 0;
  std::uint64_t max_input_buffer = 0, max_output_buffer = 0;  // the largest now, in bytes
};

// One line of INFO commandstats: a command, or a container's subcommand ("client|list").
struct command_figures {
  std::string name;
  std::uint64_t calls = 0, rejected = 0, failed = 0;
  double usec = 0;  // time spent in the command, microseconds
};

// The append-only file (persistence/aof.hpp fills it).
struct aof_figures {
  bool enabled = false;
  bool rewrite_in_progress = false, rewrite_scheduled = false;
  bool last_write_ok = true, last_rewrite_ok = true;
  std::uint64_t current_size = 0, base_size = 0;  // bytes (while enabled)
  std::uint64_t buffer_length = 0;                // bytes written but not yet on the file
  std::uint64_t pending_fsync = 0, delayed_fsync = 0;
  std::uint64_t rewrites = 0, rewrite_failures = 0;
};

// The link to an upstream Redis (redis-compat/link.hpp fills it): the main connection,
// and the mirror's stream when mirroring.
struct link_figures {
  bool configured = false;  // an upstream is set
  std::string status;       // the main connection's state ("connected", "connecting", ...)
  bool connected = false;
  std::uint64_t reconnects = 0, pending_replies = 0, output_bytes = 0;
  bool mirror_enabled = false;
  std::string mirror_state;  // down, handshake, resync, streaming
  std::uint64_t lag_commands = 0, backlog_bytes = 0, backlog_limit = 0, backlog_overflows = 0;
  std::uint64_t resyncs = 0, commands_applied = 0;
  std::uint64_t shared_queues = 0;
};

// Everything /metrics shows, gathered in one visit to the broker thread.
struct server_figures {
  std::string version;
  std::vector<tasks::queue_stats> queues;  // local and shared, by name
  client_figures clients;
  std::uint64_t used_memory = 0;
  std::vector<command_figures> commands;  // those called, rejected or failed at least once
  aof_figures aof;
  link_figures link;
  // Destination hosts of every queue, the busiest first; /metrics names the first
  // host_label_max and sums the rest of each queue under host="other".
  std::vector<tasks::host_figures> hosts;
  std::size_t host_label_max = 20;
};

// The core's own parts (broker thread).
client_figures clients_of(server& s);
std::vector<command_figures> commands_of(server& s);

}  // namespace respq::core
