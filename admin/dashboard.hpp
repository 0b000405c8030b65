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
// queue=<q>&max_rate=<n> keeps one queue's outcomes, at most n a second (outcome_filter).
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

// What a dashboard's outcome stream keeps (GET /api/events?queue=<q>&max_rate=<n>): the
// outcomes of one queue (its JSON's "queue" field, as tasks::outcome_json writes it) and
// at most max_rate of them a second; the rest are counted, and reported once a second as
// an `event: skipped` so the page can say how many it did not get. A page can't show
// thousands of outcomes a second anyway, and its browser then parses tens, not thousands.
// One per stream: keep() on the broker thread (event_hub::offer, so a skipped outcome is
// neither copied nor wakes the reader), take_skipped() on the stream's HTTP thread.
class outcome_filter {
 public:
  using clock = std::chrono::steady_clock;
  outcome_filter(std::string_view queue, std::size_t max_rate);  // "" = every queue; 0 = no cap
  bool keep(std::string_view outcome, clock::time_point now);
  // The count skipped in a second that has ended (then 0 until the next one ends).
  std::size_t take_skipped(clock::time_point now);

 private:
  std::string needle_;  // "queue":"<name>"
  std::size_t max_rate_;
  std::mutex m_;  // guards what follows
  clock::time_point window_{};
  std::size_t kept_ = 0, skipped_ = 0, to_report_ = 0;
  void roll(clock::time_point now);
};

struct dashboard_context {
  broker_bridge* bridge = nullptr;
  std::function<core::server_figures(core::server&)> figures;
  std::shared_ptr<figures_history> history;
};

void add_dashboard_routes(httplib::Server& svr, dashboard_context ctx);

}  // namespace respq::admin
