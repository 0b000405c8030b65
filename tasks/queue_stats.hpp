// queue_stats: the figures of one HTTP queue, local or shared, as plain data. Custody
// fills it (broker/core/task_manager for local queues, redis-compat/shared_queue for
// shared ones); INFO tasks renders it, one line per queue in INFO keyspace's
// name:k=v,k=v form, the same fields for both kinds, and a metrics endpoint can read the
// same struct. A value: whoever asks owns the copy.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tasks/latency_histogram.hpp"

namespace respq::tasks {

struct http_result;

// What the attempts of one queue answered, counted by its custody after each decision
// (local and shared queues alike): responses by status class, retries decided, and how
// long the requests took.
struct attempt_figures {
  // 2xx, 3xx, 4xx, 5xx, and "error": no HTTP answer (network error, timeout) or a status
  // outside 200..599.
  enum code_class : std::size_t { class_2xx, class_3xx, class_4xx, class_5xx, class_error, class_count };
  static constexpr std::array<const char*, class_count> class_names{"2xx", "3xx", "4xx", "5xx", "error"};
  std::array<std::uint64_t, class_count> responses{};
  std::uint64_t retried = 0;    // attempts whose task was scheduled for another one
  latency_histogram duration;   // request durations (hand-over to the HTTP client until done)

  static code_class classify(long code, bool transport_error);
  // After tasks::decide(): the attempt's result and whether the task goes on retrying.
  void record(const http_result& r, bool retrying);
};

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
  // Tasks this server moved back to the queue from the processing list of a sidecar whose
  // heartbeat expired (shared queues; 0 for local ones), since start.
  std::uint64_t reclaimed = 0;
  std::uint64_t cancelled = 0;  // cancelled by TASK CANCEL, since start
  // Paused (QUEUE PAUSE: the key <name>:paused exists): nothing new is dispatched.
  bool paused = false;
  // Dead letters selected by QUEUE REPLAY and not yet moved back (they move at replay-rate).
  std::uint64_t replaying = 0;
  // Callbacks whose POST failed: waiting to be sent again, and given up since start
  // (tasks/callback_retries.hpp).
  std::uint64_t callbacks_retrying = 0, callbacks_failed = 0;
  // Tasks pushed onto the queue since start (local: counted as the list grows; shared:
  // the tasks this sidecar forwarded to the upstream, the only pushes it sees).
  std::uint64_t enqueued = 0;
  // The dead-letter list's length now (local: <name>:dead; shared: the upstream's, as of
  // its last reading).
  std::uint64_t dead_list = 0;
  // Push to dispatch (local queues; a shared queue's push happens on the upstream, so its
  // histogram stays empty). INFO shows its p50 and p99.
  latency_histogram latency;
  attempt_figures attempts;
  unsigned concurrency = 0;
  double rate = 0;
  // Figures only one kind has (shared queues' link figures), rendered after the others.
  std::vector<std::pair<std::string, std::string>> extra;
};

// "name:pending=..,in_flight=..,...,shared=0|1[,extra...]\r\n"
std::string info_line(const queue_stats& s);

}  // namespace respq::tasks
