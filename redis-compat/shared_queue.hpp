// shared_queue: an HTTP queue whose tasks live on the upstream Redis (`http-queue <name>
// shared yes`), so that the sidecars of several hosts share them. The local task_manager
// ignores such queues; this class runs their whole lifecycle against the upstream.
//
// Keys (all on the upstream unless said otherwise):
//   <name>                       the shared queue (producers LPUSH; taken from the right)
//   <name>:processing:<node-id>  the tasks this sidecar holds (BLMOVE target)
//   <name>:dead                  dead letters, same record format as local queues
//   <name>:results               channel: the outcome JSON of every attempt
//   respq:spool:<node-id>:<name> the id of the last spool batch forwarded (dedupe marker)
//   local <name>                 the spool: what apps LPUSH to respq, forwarded upstream
//
// Spool. A push to respq's own key <name> lands in the local list (so LPUSH to respq keeps
// working while the upstream is down, and the spool persists through the AOF). Whenever
// the main link is up, the oldest elements (up to 512 or 1 MB) are forwarded by a script
// that LPUSHes them and records the batch id in the marker key, skipping a batch whose id
// is already there; only after the upstream acknowledged are they removed from the local
// list (RPOP through the command stream, so the AOF agrees). A link cut while a batch is
// in flight resends the same batch with the same id: exactly once. A crash of respq
// between the upstream's acknowledgement and the local removal forwards that batch again
// after the restart (at least once; X-Task-Id lets endpoints deduplicate).
//
// Taking. A connection of its own per queue runs BLMOVE <name> <processing> RIGHT LEFT 2,
// one at a time, while fewer than `concurrency` attempts are in flight (and the queue's
// rate allows). Each task taken is decoded and delivered by the link's delivery engine,
// and what its answer means is tasks::decide, the local queues' decision too:
// delivered -> removed from the processing list; retryable failure ->
// waits here, in memory, still in the processing list; dead -> removed from the
// processing list and LPUSHed to <name>:dead. Removal, the dead letter and the outcome's
// PUBLISH run in one script; when it is resent after a lost reply, it does the
// LPUSH/PUBLISH only if its LREM removed the task, so a resend doesn't duplicate them. Outcomes are published
// locally at once and on the upstream by that script (retrying outcomes by a plain
// PUBLISH). A task is released from this sidecar's custody only when the upstream
// acknowledged its removal.
//
// Recovery. Every time the taking connection comes up (at start and after each cut) it
// reads the processing list and adopts every element this sidecar does not hold: after a
// crash that is every task that was in flight or waiting to retry; after a cut it is the
// task a BLMOVE moved just before the reply was lost. Adopted tasks run at once with a
// fresh attempt count (the count lived in memory). A graceful shutdown hands every task
// it holds back to the right end of <name> (taken next, by any sidecar); kill -9 leaves
// them in the processing list for this node's restart. A node that never comes back
// leaves its processing list behind: LMOVE its elements back to <name> to share them.
// Identical payloads held twice by one node are indistinguishable in the processing list.
//
// Thread: the broker thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/core/config.hpp"
#include "redis-compat/upstream_connection.hpp"

struct redisContext;

namespace respq::core {
class server;
}
namespace respq::tasks {
struct http_request;
struct http_result;
struct queue_stats;
}  // namespace respq::tasks

namespace respq::redis_compat {

class shared_queue;

// What a shared queue needs from the link.
struct shared_context {
  core::server& s;
  void* io;
  upstream_connection& main;  // spool forwarding, removals, outcomes
  upstream_endpoint endpoint;  // for each queue's own taking connection
  std::string node_id;
  // Hands requests to the link's delivery engine.
  std::function<void(std::vector<tasks::http_request>&&)> submit;
  // A ticket whose result the link routes back to `owner`.
  std::function<std::uint64_t(shared_queue* owner)> new_ticket;
};

class shared_queue {
 public:
  shared_queue(shared_context& ctx, std::string name, core::queue_options opts);
  ~shared_queue();
  shared_queue(const shared_queue&) = delete;
  shared_queue& operator=(const shared_queue&) = delete;

  void start();
  // Stops taking and closes the taking connection (tasks held stay held).
  void stop();
  void reconfigure(const core::queue_options& opts);

  void on_main_ready();
  void on_main_lost();
  // The local spool key got elements.
  void spool_changed();
  void on_result(tasks::http_result& r);
  void cron();

  // Shutdown's grace period: no new attempt starts (tasks taken meanwhile wait); the
  // requests in flight finish and their outcomes are recorded as usual.
  void drain();
  std::size_t requests_in_flight() const;

  // Shutdown, after the loop ended: finishes pending removals and hands every task held
  // back to the queue, over a blocking connection.
  void hand_back(redisContext* c);

  const std::string& name() const;
  std::size_t held() const;
  // Its figures for INFO tasks, in the same struct as the local queues'.
  tasks::queue_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::redis_compat
