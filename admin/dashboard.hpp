// dashboard: the admin port's dashboard in the browser (issue "a dashboard"): the page
// and its files (embedded, admin/dashboard_assets.hpp), and the endpoints it needs beyond
// the JSON API of admin_server:
//
//   GET /                              the page (no credentials needed: it holds no data)
//   GET /ui/<file>                     its scripts and styles (likewise)
//   GET /api/overview                  server figures and every queue's figures now
//   GET /api/history[?queue=<q>]       the last hour (admin/history.hpp): one queue, or
//                                      the totals over all queues
//   GET /api/queues/<q>/dead           dead letters grouped by host and code, with
//       [?host=&code=&reason=&offset=&limit=]   reasons counted, and one page of them
//
// GET /api/events?figures=1 adds a "figures" event (the overview document) once a second
// to the outcome stream (admin_server), so an open page is updated live without polling;
// with outcomes=0 the stream has the figures alone (no outcome is built for it), and
// queue=<q>&max_rate=<n> keeps one queue's outcomes, at most n a second, and reports the
// rest once a second as an `event: skipped` with their count, so the page can say how many
// it did not get (a page can't show thousands of outcomes a second anyway, and its browser
// then parses tens, not thousands); the broker builds only those it sends (event_hub.hpp).
//
// Auth: the page and its files are public; every /api request needs the credentials as
// before. The page keeps the password the user typed in sessionStorage and sends it as
// `Authorization: Bearer`: a browser never attaches it on its own, so no other site can
// make a request that carries it (no cookie, so no CSRF by construction; the Origin and
// Sec-Fetch-Site checks of admin_server stay as a second line). A strict
// Content-Security-Policy (scripts and connections to this origin only, no inline
// script) keeps injected text from running, the one way the password could leak.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "admin/broker_bridge.hpp"
#include "admin/history.hpp"
#include "broker/core/figures.hpp"

namespace httplib {
class Server;
}

namespace respq::admin {

// The paths served without credentials: "/" and "/ui/...".
bool is_public_path(std::string_view path);

// The document of GET /api/overview (and of the "figures" events): `now` in unix seconds.
std::string overview_json(const core::server_figures& f, double now);

struct dashboard_context {
  broker_bridge* bridge = nullptr;
  std::function<core::server_figures(core::server&)> figures;
  std::shared_ptr<figures_history> history;
};

void add_dashboard_routes(httplib::Server& svr, dashboard_context ctx);

// Paths with names in them (queues, task ids, which may hold '/'): the routed path is the
// request-target's path decoded except for %2F and %25, which stay encoded so that a '/'
// inside a name does not split it; a captured segment is then decoded with
// path_segment. Without this, /api/tasks/order%2F17 was routed as /api/tasks/order/17.
std::string routed_path(std::string_view target);
std::string path_segment(std::string_view captured);

}  // namespace respq::admin
