// task_manager: custody of the tasks of every local HTTP queue, owned by the broker thread.
// What an attempt's answer means is decided by tasks::decide (tasks/lifecycle.hpp), the
// same decision the shared queues of the Redis link make; this class keeps the state.
//
//   Q (list) --dispatch--> in flight --2xx--> delivered (outcome PUBLISHed on Q:results)
//                              | retryable failure: retrying (backoff, Retry-After)
//                              v attempts exhausted, other 4xx, invalid task
//                            Q:dead (list)
//
// Pending tasks are the list Q itself. A dispatched task leaves Q (RPOP, oldest first)
// and enters the hash Q:inflight (field: task id, value: a JSON envelope holding the
// original payload, attempts, state and next run time) in one atomic step of the
// command stream, so the AOF, the mirror and redis-cli all see the same truth, and a
// restart finds every task that was in flight or waiting for a retry. The delivery
// thread (workers/) only executes requests; results come back through on_results().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/core/client.hpp"
#include "broker/core/config.hpp"

namespace respq::tasks {
struct http_request;
struct http_result;
struct queue_stats;
}  // namespace respq::tasks

namespace respq::core {

class server;

class task_manager {
 public:
  explicit task_manager(server& s);
  ~task_manager();

  // A list got elements: when it is an HTTP queue, dispatch after this command.
  void on_list_push(std::string_view key);
  void after_command();
  // A client's write command touched `key` (not the task manager's own writes).
  void on_key_written(std::string_view key);
  // The queue whose tasks in flight `key` (a <queue>:inflight hash) records, or nullptr.
  const std::string* inflight_owner(std::string_view key) const;
  void before_write();
  void on_timer();
  clock::time_point next_deadline() const;
  void cron();
  void on_flush();
  // The figures of the local queues, by name.
  std::vector<tasks::queue_stats> stats();
  // INFO tasks: a line per HTTP queue, local and shared (shared_stats adds those), by name.
  std::string info();
  // Set by the admin server while it runs: true while its event streams want outcomes.
  // An outcome is built and published only when someone listens (a subscriber, a
  // pattern, the mirror, a callback, or this).
  std::function<bool()> outcome_listeners;
  // Set by the Redis link while it runs: appends the figures of the shared queues.
  std::function<void(std::vector<tasks::queue_stats>&)> shared_stats;

  // Wiring to the delivery engine (set by the I/O layer). Called on the broker thread
  // with the requests of one turn.
  std::function<void(std::vector<tasks::http_request>&&)> submit;
  // Results of finished requests, on the broker thread.
  void on_results(std::vector<tasks::http_result>&& results);

  // Start-up after the AOF is loaded: rebuild the schedule from every Q:inflight hash.
  void recover();
  // Shutdown: stop dispatching; in-flight requests are put back at the head of their
  // queue by abandon_in_flight() when the grace period ends.
  void stop_dispatching();
  std::size_t in_flight() const;
  void abandon_in_flight();

  // Queue options changed (CONFIG SET http-queue).
  void reconfigure();
  // The delivery pools the engine needs: (queue name, per-host connection cap).
  std::vector<std::pair<std::string, unsigned>> pools() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;

  server& s_;
  bool stopping_ = false;
};

}  // namespace respq::core
