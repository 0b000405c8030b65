// admin_server: the admin HTTP port (`admin-port`, off by default): Prometheus /metrics
// and a JSON API over respq's queues, served by cpp-httplib (a maintained HTTP server
// library; no HTTP parsing of our own).
//
//   GET  /metrics                   Prometheus text format 0.0.4 (admin/metrics.hpp)
//   GET  /api/queues                every HTTP queue, local and shared: figures and options
//   POST /api/queues/<queue>/tasks  one task object or an array; 201 {"queue","ids"}
//   GET  /api/events                Server-Sent Events: one outcome JSON per event
//   GET    /api/tasks/<id>                    TASK GET: the task, its state and attempts; 404
//   DELETE /api/tasks/<id>                    TASK CANCEL; 404 unknown, 409 not in custody
//   POST   /api/queues/<queue>/pause|resume   QUEUE PAUSE|RESUME
//   POST   /api/queues/<queue>/dead/replay    QUEUE REPLAY [?id= | ?host= &code=]
//   DELETE /api/queues/<queue>/dead/<id>      QUEUE DELDEAD; 404 when there is none
//   GET  /, /ui/<file>, /api/overview, /api/history, /api/queues/<queue>/dead, and
//   /api/events?figures=1[&outcomes=0][&queue=&max_rate=]: the dashboard (dashboard.hpp)
// Each control endpoint runs the RESP command (broker_bridge::command_here) on the broker
// thread, so the AOF, the mirror, MONITOR and INFO commandstats see it as that command,
// and the reply's error maps onto a status: no such queue 404, a bad argument 400, a
// change that could not be persisted 503, any other refusal 409.
//
// Security: with `requirepass` every request needs `Authorization: Bearer <password>` or
// Basic with any user name and that password (else 401). A request that changes state
// (anything but GET/HEAD) is refused with 403 when `admin-readonly yes`, when it carries
// an Origin other than this server's own (http://<Host>), or when Sec-Fetch-Site says
// cross-site: a web page elsewhere can't make a browser enqueue tasks here.
// The dashboard's page and files (GET / and /ui/...) need no credentials: they hold no
// data. A browser script's refused request (Sec-Fetch-Mode other than navigate) gets a
// Bearer challenge, so the browser shows no password dialog over the page's login form.
//
// Threads: one listening thread per `admin-bind` address, and cpp-httplib's pool of
// workers for the requests (worker_threads each; a Server-Sent Events stream holds one
// worker while it is open, so at most max_event_streams are open at a time). Every
// access to broker state goes through the broker thread (broker_bridge); the figures are
// copied there and rendered here, so a scrape costs the broker a copy of the structs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admin/api.hpp"
#include "admin/broker_bridge.hpp"
#include "broker/core/figures.hpp"

namespace respq::core {
class server;
}

namespace respq::admin {

// What the composition root supplies; each runs on the broker thread.
struct admin_sources {
  std::function<core::server_figures(core::server&)> figures;
  std::function<std::vector<queue_view>(core::server&)> queues;
};

class admin_server {
 public:
  static constexpr std::size_t worker_threads = 24;
  static constexpr std::size_t max_event_streams = 4;

  admin_server(core::server& s, broker_bridge::post_fn post, admin_sources sources);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  // Broker thread, at start-up: binds every admin-bind address on admin-port and starts
  // serving. Returns an error text (nothing listens then).
  std::string start();
  // Stops serving: open event streams end, waiting requests get 503, threads are joined.
  // Call on the broker thread (during shutdown, or after the loop ended); idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace respq::admin
