// queue_stats: the figures of one HTTP queue, local or shared, as plain data. Custody
// fills it (broker/core/task_manager for local queues, redis-compat/shared_queue for
// shared ones); INFO tasks renders it, one line per queue in INFO keyspace's
// name:k=v,k=v form, the same fields for both kinds, and a metrics endpoint can read the
// same struct. A value: whoever asks owns the copy.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tasks/latency_histogram.hpp"

namespace respq::tasks {

struct queue_stats {
  std::string name;
  bool shared = false;
  // Tasks waiting to be taken. Local: the list <name>. Shared: the upstream's list (as of
  // its last reading, about once a second) plus this sidecar's spool not yet forwarded.
  std::uint64_t pending = 0;
  std::uint64_t in_flight = 0;  // attempts running
  std::uint64_t retrying = 0;   // waiting for a retry
  std::uint64_t scheduled = 0;  // waiting for their time ("at", "delay"), or for a slot
  std::uint64_t delivered = 0, failed = 0, dead = 0, dispatched = 0;  // since start
  // Attempts and callbacks the egress policy refused to connect (since start).
  std::uint64_t egress_denied = 0;
  // The dead-letter list's length now (local: <name>:dead; shared: the upstream's, as of
  // its last reading).
  std::uint64_t dead_list = 0;
  // Push to dispatch (local queues; a shared queue's push happens on the upstream, so its
  // histogram stays empty). INFO shows its p50 and p99.
  latency_histogram latency;
  unsigned concurrency = 0;
  double rate = 0;
  // Figures only one kind has (shared queues' link figures), rendered after the others.
  std::vector<std::pair<std::string, std::string>> extra;
};

// "name:pending=..,in_flight=..,...,shared=0|1[,extra...]\r\n"
std::string info_line(const queue_stats& s);

}  // namespace respq::tasks
