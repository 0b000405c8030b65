// shared_queue: an HTTP queue whose tasks live on the upstream Redis (`http-queue <name>
// shared yes`), so that the sidecars of several hosts share them. The local task_manager
// ignores such queues; this class runs their whole lifecycle against the upstream.
//
// Keys (all on the upstream unless said otherwise):
//   <name>                       the shared queue (producers LPUSH; taken from the right)
//   <name>:processing:<node-id>  the tasks this sidecar holds (BLMOVE target)
//   <name>:dead                  dead letters, same record format as local queues
//   <name>:results               channel: the outcome JSON of every attempt
//   <name>:retry                 sorted set: envelopes of tasks waiting for a retry (score = due, ms)
//   <name>:scheduled             sorted set: envelopes of tasks waiting for their delay/at
//   respq:node:<node-id>         this sidecar's heartbeat (expires after node-timeout)
//   respq:reclaimed:<node-id>:<name>  set when another sidecar reclaimed this node's list
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
// rate allows); while the queue has work and no rate is set, one non-blocking LMOVE per
// free slot (up to 64) goes out pipelined instead, so one round trip takes many tasks. Each task taken is decoded and delivered by the link's delivery engine,
// and what its answer means is tasks::decide, the local queues' decision too:
// delivered -> removed from the processing list; retryable failure -> removed from the
// processing list and ZADDed to <name>:retry as an envelope (tasks/records: the payload
// untouched, its id, attempts so far, next run) scored by its due time in ms; dead ->
// removed from the processing list and LPUSHed to <name>:dead. A task whose delay/at is
// to come goes to <name>:scheduled the same way. Removal, the dead letter or the park,
// and the outcome's PUBLISH run in one script; when it is resent after a lost reply, it
// writes only if its LREM removed the task, so a resend doesn't duplicate them. Outcomes
// are published locally at once and on the upstream by that script. A task is released
// from this sidecar's custody only when the upstream acknowledged the script.
//
// Waiting upstream. Every sidecar runs a due mover (about five times a second): one
// script moves the envelopes whose time came from both sets onto the queue (LPUSH, like a
// new push), so any sidecar takes them, and a taken envelope runs with the attempts it
// carries. A sidecar's death neither loses a waiting task nor resets its count.
//
// Heartbeats and reclaim. The link keeps respq:node:<node-id> alive with a TTL of
// node-timeout (refreshed every third of it). Each sidecar SCANs for <name>:processing:*
// (one page of 1000 per cron tick, a pass at most every node-timeout / 5) and hands each
// other node's list to one script that, only when that node's heartbeat key is gone,
// moves every element back to the right end of <name> (taken next) and sets that node's
// reclaimed marker: exactly one sidecar wins, within about 2 x node-timeout of a death
// (the key expires within node-timeout of the last beat; the next pass finds it). An
// attempt in flight at the death is not counted in the attempts (it may have reached the
// endpoint: at least once).
//
// Recovery. Every time the taking connection comes up (at start, after each cut, and
// after the heartbeat was found lapsed) one script refreshes the heartbeat and reads the
// processing list, so the list it reads is this node's and cannot be reclaimed any more
// while it beats. When the reclaimed marker is set, the tasks held here that the list no
// longer has were reclaimed: they are given up (an attempt in flight finishes, its result
// ignored; the finalize script also refuses a task missing from the list while the marker
// is set). Then it adopts every element this sidecar does not hold: after a crash that
// is every task that was in flight; after a cut it is the task a BLMOVE moved just before
// the reply was lost. The at-least-once window: a task whose attempt was in flight when
// its node lost the upstream for longer than node-timeout runs again elsewhere (X-Task-Id
// lets endpoints deduplicate). A graceful shutdown hands every task it holds back to the
// right end of <name> (taken next, by any sidecar). Identical payloads held twice by one
// node are indistinguishable in the processing list.
//
// Duplicates. A task taken whose id this sidecar already holds is dropped (its outcome
// says "duplicate") by the finalize script only while the held copy's element is still in
// the processing list. Until a lapsed node's next beat notices the lapse it goes on
// taking, and the reclaimed tasks are at the end of <name> taken next: the copy it takes
// may be the reclaimed one, the only custody of a task whose held copy is given up. Then
// the script refuses the drop and the copy runs here.
//
// Thread: the broker thread.
#pragma once

#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/core/config.hpp"
#include "broker/core/task_manager.hpp"
#include "redis-compat/upstream_connection.hpp"

struct redisContext;

namespace respq::core {
class server;
}
namespace respq::tasks {
struct http_request;
struct http_result;
struct queue_stats;
struct host_figures;
}  // namespace respq::tasks

namespace respq::redis_compat {

class shared_queue;

// What a shared queue needs from the link.
struct shared_context {
  core::server& s;
  asio::io_context& io;
  upstream_connection& main;  // spool forwarding, removals, outcomes
  upstream_endpoint endpoint;  // for each queue's own taking connection
  std::string node_id;
  std::string node_token;  // this process's value of its heartbeat key
  // Hands requests to the link's delivery engine.
  std::function<void(std::vector<tasks::http_request>&&)> submit;
  // A ticket whose result the link routes back to `owner`.
  std::function<std::uint64_t(shared_queue* owner)> new_ticket;
  // Until when this node's heartbeat key surely exists (the last beat that set it, sent
  // at t, holds it until t + node-timeout): past it another sidecar may have reclaimed the
  // tasks held here, so none of them starts an attempt until a beat says (shut until the
  // first script that sets the key: the first beat, or a queue's recovery, which runs
  // before it takes anything).
  std::chrono::steady_clock::time_point custody_sure_until{};
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
  // The heartbeat found this node's key gone: its list may have been reclaimed.
  void on_heartbeat_lapsed();
  // A Sentinel switch: the taking connection follows the new master.
  void set_endpoint(const upstream_endpoint& ep);
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

  // TASK GET / TASK CANCEL: what this sidecar holds (taken from the queue, waiting for a
  // slot, in flight, or finishing) and the recent outcomes it recorded. Tasks that wait on
  // the upstream (in <name>, <name>:retry, <name>:scheduled, <name>:dead, or held by
  // another sidecar) are not searched: the broker thread does not wait for the upstream.
  std::optional<core::task_manager::task_view> find_task(std::string_view id) const;
  // Cancels a task this sidecar holds and has not started finishing: out of the
  // processing list, outcome "cancelled" published; an attempt in flight runs to its end,
  // unreported. False when it does not hold it.
  bool cancel_task(std::string_view id);
  // QUEUE HOSTRESET on this sidecar: the host (host:port, lower case) is trusted afresh
  // and the tasks here that wait for it go. False when it knows no such host.
  bool reset_host(std::string_view host);

  const std::string& name() const;
  std::size_t held() const;
  // Pushes acknowledged here that the upstream has not taken yet (the local spool list).
  std::size_t spooled() const;
  // Its figures for INFO tasks, in the same struct as the local queues'.
  tasks::queue_stats stats() const;
  // Its destination hosts, for INFO hosts and /metrics (appended to `out`).
  void host_stats(std::vector<tasks::host_figures>& out) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::redis_compat
