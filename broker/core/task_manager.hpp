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
#include <optional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "broker/core/client.hpp"
#include "broker/core/config.hpp"
#include "tasks/control.hpp"

namespace respq::tasks {
struct http_request;
struct http_result;
struct queue_stats;
struct dead_filter;
struct host_figures;
struct outcome_fields;
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
  // An outcome is built and published on Q:results only when the Redis side wants it (a
  // subscriber of Q:results, a pattern, the mirror, a callback); the admin server's
  // streams then get it from the publish. When not, it is handed to this (set by the
  // admin server while it runs), which builds it only if a stream takes it now.
  std::function<void(std::string_view queue, const tasks::outcome_fields&)> outcome_watch;
  // Set by the Redis link while it runs: appends the figures of the shared queues.
  std::function<void(std::vector<tasks::queue_stats>&)> shared_stats;
  // The destination hosts of the local queues (tasks/host_health.hpp), unordered.
  std::vector<tasks::host_figures> host_stats() const;
  // Local and shared (shared_host_stats adds those), the busiest first.
  std::vector<tasks::host_figures> all_host_stats() const;
  // INFO hosts: a summary line, then host-info-max hosts, the busiest first.
  std::string hosts_info() const;
  // Set by the Redis link while it runs: appends the hosts of the shared queues.
  std::function<void(std::vector<tasks::host_figures>&)> shared_host_stats;

  // Wiring to the delivery engine (set by the I/O layer). Called on the broker thread
  // with the requests of one turn.
  std::function<void(std::vector<tasks::http_request>&&)> submit;
  // Results of finished requests, on the broker thread. While CLIENT PAUSE is on they are
  // kept, unapplied (the dataset must not change), until clients_unpaused() or shutdown.
  void on_results(std::vector<tasks::http_result>&& results);
  // CLIENT PAUSE ended: the results kept meanwhile are applied, and dispatch resumes.
  void clients_unpaused();

  // Start-up after the AOF is loaded: rebuild the schedule from every Q:inflight hash.
  void recover();
  // Shutdown: stop dispatching; in-flight requests are put back at the head of their
  // queue by abandon_in_flight() when the grace period ends.
  void stop_dispatching();
  std::size_t in_flight() const;
  void abandon_in_flight();

  // Queue options changed (CONFIG SET http-queue, task-history-max-len).
  void reconfigure();

  // ---- Control (the QUEUE and TASK commands, cmd_queue.cpp) ----------------------------
  // Pause: a queue is paused while the key <queue>:paused exists in database 0 (any
  // value; QUEUE PAUSE sets it to the unix time of the pause, QUEUE RESUME deletes it),
  // so the pause is written to the command stream like any key (AOF, its rewrite, the
  // mirror) and survives a restart. A paused local queue dispatches nothing new: attempts
  // in flight finish, retries and scheduled tasks wait past their time. Shared queues
  // (redis-compat/shared_queue) read the same key and stop taking from the upstream.
  // Returns "" or an error reply text. Writes as the task manager (logged effects).
  std::string set_paused(std::string_view queue, bool paused);

  // A task found by id, wherever respq has it.
  struct task_view {
    std::string id, queue;
    std::string state;  // pending in_flight retrying scheduled dead delivered cancelled
    int attempts = 0, max_attempts = 0;
    double next_run = 0;     // unix seconds (retrying, scheduled, a pending "at"/"delay")
    long last_code = 0;
    std::string last_error;
    double finished_at = 0;  // unix seconds (dead, delivered, cancelled)
    std::string payload;     // the producer's bytes
    tasks::attempt_log log;  // the attempts this process saw, oldest first
  };
  // Looks in custody (in flight, retrying, scheduled), then the pending lists, then the
  // dead letters, then the recent outcomes each queue keeps (task-history-max-len); then
  // in the shared queues (shared_find): only what this sidecar holds and its recent
  // outcomes, not the upstream's keys. Pending tasks are found when their payload carries
  // the id (an id respq generates is given at dispatch).
  std::optional<task_view> find_task(std::string_view id);
  // Cancels a task in custody: a pending one leaves its list, a waiting one its hash; one
  // in flight is not attempted again (its attempt runs to its end, unreported). Its
  // outcome "cancelled" is published. A shared queue's task only while this sidecar holds
  // it (shared_cancel). False when no such task is in custody.
  bool cancel_task(std::string_view id);
  // Set by the Redis link while it runs (redis-compat/shared_queue): TASK GET and TASK
  // CANCEL over the shared queues' tasks this sidecar holds.
  std::function<std::optional<task_view>(std::string_view id)> shared_find;
  std::function<bool(std::string_view id)> shared_cancel;
  // True when shared queues are configured: their tasks on the upstream are not searched.
  bool has_shared_queues() const;
  // Selects the dead letters of `queue` that match (oldest first) and moves them back
  // into the queue at replay-rate per second. Returns how many were selected, or an error
  // reply text.
  std::variant<std::size_t, std::string> replay_dead(std::string_view queue, const tasks::dead_filter& f);
  // QUEUE HOSTRESET: the host (host:port, as INFO hosts names it) of `queue` is trusted
  // afresh (host_health::reset) and the tasks waiting for it go. 1, 0 when the queue
  // knows no such host, or an error reply text. A shared queue's through shared_reset_host.
  std::variant<std::size_t, std::string> reset_host(std::string_view queue, std::string_view host);
  // Set by the Redis link while it runs: the same for a shared queue's host on this
  // sidecar; nullopt when `queue` is not one of its shared queues.
  std::function<std::optional<std::size_t>(std::string_view queue, std::string_view host)> shared_reset_host;
  // Deletes the dead letter with this id. 1 or 0, or an error reply text.
  std::variant<std::size_t, std::string> delete_dead(std::string_view queue, std::string_view id);
  // The delivery pools the engine needs: (queue name, per-host connection cap).
  std::vector<std::pair<std::string, unsigned>> pools() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;

  server& s_;
  bool stopping_ = false;
};

}  // namespace respq::core
