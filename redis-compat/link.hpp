// link: the Redis link module, as the composition root sees it. respq runs beside each
// app server; when an app outgrows one machine, Redis itself is the distributed engine
// and respq adds no clustering of its own. The link gives two things:
//
//   mirror (mirror yes)        every write respq accepts on a key matching mirror-keys,
//                              and every PUBLISH, replayed on the upstream in order,
//                              exactly once across link cuts (mirror.hpp).
//   shared queues              `http-queue <name> shared yes`: the queue lives on the
//   (shared yes)               upstream; this sidecar's workers take from it
//                              (shared_queue.hpp).
//
// Directives: upstream <host> <port> (or upstream-sentinel <host> <port> ... with
// upstream-master-name: the master is asked of Sentinel and followed across failovers,
// sentinel.hpp), upstream-password, upstream-db, upstream-wait-replicas,
// upstream-wait-timeout, mirror yes|no, mirror-keys <glob> ..., mirror-backlog-size,
// node-id, node-timeout (the heartbeat's TTL: respq:node:<node-id> is refreshed every
// third of it on the main connection while there are shared queues). node-id names this sidecar on the
// upstream (its processing lists and offset key); it must be stable across restarts and
// unique among the sidecars sharing an upstream. When not configured it is
// "<hostname>:<port>", which is both on one host as long as ports differ.
//
// Connections: one main connection (mirror stream, spool forwarding, removals, outcomes)
// named respq-link:<node-id>, and per shared queue one for its blocking BLMOVE, named
// respq-take:<node-id>:<queue> (CLIENT LIST on the upstream shows them); with Sentinel,
// two to one sentinel, respq-sentinel:<node-id> and respq-sentinel-sub:<node-id>. The link owns a
// delivery engine of its own for shared-queue tasks.
//
// INFO mirror: link status and counters, the mirror's lag and backlog, and one line per
// shared queue.
//
// Thread: the broker thread, except the delivery engine's results, which come back
// through the thread-safe post function given to the constructor.
#pragma once

#include <functional>
#include <memory>
#include <string>

// The broker thread's event loop, passed by reference (asio stays out of this header).
namespace asio {
class io_context;
}

namespace respq::core {
class server;
struct link_figures;
}

namespace respq::redis_compat {

class link {
 public:
  using post_fn = std::function<void(std::function<void()>)>;

  // io_context: the broker thread's asio::io_context; post: runs a function on the
  // broker thread from any thread (network::post).
  link(core::server& s, asio::io_context& io_context, post_fn post);
  ~link();
  link(const link&) = delete;
  link& operator=(const link&) = delete;

  // Checks the configuration and starts the connections. Call after the AOF is loaded.
  // Returns an error text (the server then does not start).
  std::string start();
  // After the loop ended: stops taking, stops the delivery engine, then over a blocking
  // connection (2 s timeouts) sends what the mirror's upstream has not applied and hands
  // held shared tasks back to their queues.
  void stop();
  // The link's figures (INFO mirror's, as data); configured == false without an upstream.
  core::link_figures figures() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::redis_compat
