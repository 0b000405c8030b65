// admin_server: see admin_server.hpp.
#include "admin/admin_server.hpp"

// SSLServer: the admin port serves https with the RESP port's certificate when tls-port is
// on. Debian's cpp-httplib (pkg-config) builds with CPPHTTPLIB_OPENSSL_SUPPORT.
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT
#endif
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <regex>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>

#include "admin/dashboard.hpp"
#include "admin/event_hub.hpp"
#include "admin/hosts.hpp"
#include "admin/history.hpp"
#include "admin/metrics.hpp"
#include "broker/core/log.hpp"
#include "broker/core/module.hpp"
#include "broker/core/server.hpp"
#include "broker/core/task_manager.hpp"
#include "resp/ascii.hpp"
#include "tasks/egress.hpp"
#include "tasks/records.hpp"

namespace respq::admin {

namespace {

constexpr const char* json_type = "application/json";

std::string error_json(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void fail(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(error_json(message), json_type);
}

// Compares without stopping at the first difference, so the time a refusal takes does
// not tell how much of the password was right.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The HTTP status for a control command's error reply (resp_reply::error()).
int status_of_error(const std::string& e) {
  auto has = [&](std::string_view part) { return e.find(part) != std::string::npos; };
  if (has("no such HTTP queue")) return 404;
  if (has("could not be persisted") || e.rfind("OOM", 0) == 0) return 503;
  if (e.rfind("ERR syntax", 0) == 0 || e.rfind("ERR ID ", 0) == 0 || e.rfind("ERR CODE ", 0) == 0 ||
      e.rfind("ERR HOST ", 0) == 0)
    return 400;
  return 409;
}

// A refusal the broker answered (a RESP error), as a JSON error: its text without the
// generic "ERR " prefix (other codes, WRONGTYPE or OOM, say something and stay), with
// the status it calls for unless one is given.
void fail_with(httplib::Response& res, const std::string& e, int status = 0) {
  fail(res, status ? status : status_of_error(e), e.rfind("ERR ", 0) == 0 ? e.substr(4) : e);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  return true;
}

// Whether a request's Host names this server by an address or as localhost: an IP literal
// (v4, or v6 in brackets) or `localhost`, with or without a port; an absent Host (HTTP/1.0,
// which no browser sends) too. Any other name may be a DNS-rebinding page's own (its Origin then
// matches its Host), so without requirepass such requests are refused (see check).
bool host_is_address(std::string_view host) {
  if (host.empty()) return true;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    const auto a = tasks::parse_ip(host.substr(1, close - 1));
    return a && !a->v4;
  }
  std::string_view name = host.substr(0, host.rfind(':'));
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // "localhost." is localhost
  if (name.empty()) return false;
  if (const auto a = tasks::parse_ip(name)) return a->v4;
  return iequals(name, "localhost");
}

// The methods the routes (here and the dashboard's) serve at a path, for a 405's Allow:
// "" when no route has the path. A segment in brackets is a name (no '/': see
// routed_path).
std::string allowed_methods(const std::string& path) {
  static const std::pair<std::regex, const char*> routes[] = {
      {std::regex(R"(/metrics|/api/queues|/api/hosts|/api/events|/api/overview|/api/history|/|/ui/.+)"), "GET, HEAD"},
      {std::regex(R"(/api/queues/[^/]+/dead)"), "GET, HEAD"},
      {std::regex(R"(/api/tasks/[^/]+)"), "GET, HEAD, DELETE"},
      {std::regex(R"(/api/queues/[^/]+/(tasks|pause|resume|dead/replay))"), "POST"},
      {std::regex(R"(/api/queues/[^/]+/dead/[^/]+)"), "DELETE"},
      {std::regex(R"(/api/queues/[^/]+/hosts/[^/]+/reset)"), "POST"},
  };
  // Every route that takes the path adds its methods (/api/queues/q/dead/replay is a
  // replay to POST and a dead letter named "replay" to DELETE).
  std::string allow;
  for (const auto& [re, methods] : routes)
    if (std::regex_match(path, re)) allow += (allow.empty() ? "" : ", ") + std::string(methods);
  return allow;
}

}  // namespace

// The broker thread reaches the admin server as a module (from start() until stop()): the
// outcomes published for the event streams, the history's samples on the cron, and the
// settings the HTTP threads read.
struct admin_server::impl final : core::server_module {
  impl(core::server& srv, broker_bridge::post_fn post, admin_sources src)
      : s(srv), bridge(srv, std::move(post)), sources(std::move(src)), hub(std::make_shared<event_hub>()) {}

  core::server& s;
  broker_bridge bridge;
  admin_sources sources;
  std::shared_ptr<event_hub> hub;
  // The last hour of figures, sampled on the broker's cron while serving (dashboard).
  std::shared_ptr<figures_history> history = std::make_shared<figures_history>();
  std::chrono::steady_clock::time_point next_sample{};  // broker thread

  // Settings the HTTP threads read; the broker thread updates them on CONFIG SET.
  struct settings {
    std::mutex m;
    std::string password;
    bool readonly = false;
  };
  std::shared_ptr<settings> conf = std::make_shared<settings>();

  std::vector<std::unique_ptr<httplib::Server>> servers;
  std::string scheme = "http";  // "https" when the servers are SSLServers (tls-port on)
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};
  bool started = false;

  std::mutex id_m;
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t id_counter = 0;

  std::string new_id() {
    std::lock_guard lock(id_m);
    return make_task_id(rng(), ++id_counter);
  }

  void load_settings() {  // broker thread
    std::lock_guard lock(conf->m);
    conf->password = s.cfg().requirepass;
    conf->readonly = s.cfg().admin_readonly;
  }

  // ---- the broker thread's calls (server_module) ----------------------------------------
  // Outcomes: every message on <queue>:results of a configured queue goes to the streams.
  void on_publish(std::string_view channel, std::string_view message) override {
    if (hub->connections() == 0) return;
    static constexpr std::string_view suffix = ":results";
    if (channel.size() <= suffix.size() || channel.substr(channel.size() - suffix.size()) != suffix) return;
    const std::string_view queue = channel.substr(0, channel.size() - suffix.size());
    if (!s.cfg().queues.count(queue)) return;
    hub->offer_message(queue, message);
  }

  // The dashboard's history: a sample every interval.
  void sample() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_sample) return;
    next_sample = now + std::chrono::milliseconds(static_cast<long>(history->interval() * 1000));
    std::vector<tasks::queue_stats> stats;
    for (auto& v : sources.queues(s)) stats.push_back(std::move(v.stats));
    history->sample(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(), stats);
  }

  // The streams' counts of skipped outcomes reach them within a tick of their second's end.
  void cron() override {
    sample();
    hub->flush();
  }

  void on_config(const std::string& name) override {
    if (name == "requirepass" || name == "admin-readonly") load_settings();
  }

  // ---- checks before routing ----------------------------------------------------------
  httplib::Server::HandlerResponse check(const httplib::Request& req, httplib::Response& res) {
    std::string password;
    bool readonly;
    {
      std::lock_guard lock(conf->m);
      password = conf->password;
      readonly = conf->readonly;
    }
    const bool reads = req.method == "GET" || req.method == "HEAD";
    // The dashboard's page and files hold no data: served to anyone who can connect, so
    // that it can ask for the password (its /api requests need it as usual).
    if (reads && is_public_path(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    // DNS rebinding: a page elsewhere whose name comes to resolve to this address reaches
    // the port as its own origin, its Origin and Host alike, and would pass the checks
    // below. Without a password, only requests addressed to an IP address or localhost are
    // served; with one, the browser has no credentials to send for that page's origin.
    if (password.empty() && !host_is_address(req.get_header_value("Host"))) {
      fail(res, 403, "Host '" + req.get_header_value("Host") +
                         "' refused: without requirepass the admin port serves requests addressed to an IP "
                         "address or localhost only (DNS rebinding); set requirepass to reach it by a name");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!password.empty() && !authorized(req.get_header_value("Authorization"), password)) {
      // A script's request in a browser (the dashboard's fetch: Sec-Fetch-Mode other than
      // navigate) gets a Bearer challenge, for which the browser shows no password dialog
      // of its own over the page's login form; everyone else is offered Basic.
      const std::string mode = req.get_header_value("Sec-Fetch-Mode");
      if (!mode.empty() && mode != "navigate") res.set_header("WWW-Authenticate", "Bearer realm=\"respq\"");
      else res.set_header("WWW-Authenticate", "Basic realm=\"respq\", charset=\"UTF-8\"");
      fail(res, 401, "authentication required: Authorization: Bearer <requirepass> (or Basic)");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!reads) {
      if (readonly) {
        fail(res, 403, "admin-readonly is on: only GET requests are served");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (req.has_header("Origin")) {
        const std::string origin = req.get_header_value("Origin");
        const std::string own = scheme + "://" + req.get_header_value("Host");
        if (origin != own) {
          fail(res, 403, "cross-origin request refused (Origin " + origin + ")");
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (req.get_header_value("Sec-Fetch-Site") == "cross-site") {
        fail(res, 403, "cross-site request refused");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  static bool authorized(const std::string& header, const std::string& password) {
    std::string_view h = header;
    while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
    if (starts_with_ci(h, "Bearer ")) {
      std::string_view token = h.substr(7);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      return same_secret(token, password);
    }
    if (starts_with_ci(h, "Basic ")) {
      std::string_view enc = h.substr(6);
      while (!enc.empty() && enc.front() == ' ') enc.remove_prefix(1);
      std::string dec;
      if (!tasks::base64_decode_strict(enc, dec)) return false;
      const auto colon = dec.find(':');
      if (colon == std::string::npos) return false;
      return same_secret(std::string_view(dec).substr(colon + 1), password);
    }
    return false;
  }

  // ---- endpoints ------------------------------------------------------------------------
  void get_metrics(httplib::Response& res) {
    auto figures = bridge.call([this](core::server& srv) { return sources.figures(srv); });
    if (!figures) return fail(res, 503, "the broker did not answer in time");
    // The text (about 480 KB for 100 queues) is rendered into a buffer this worker thread
    // keeps, and written from there: a scrape allocates nothing large. A fresh 600 KB
    // string per scrape, then set_content's copy of it, cost each thread's first scrapes
    // ~2 ms of page faults, and that was the p99 of a scraper (cpp-httplib handed its
    // connection to another worker every 5 requests). The worker writes the response
    // before it takes its next request, so the buffer is not reused while being sent.
    thread_local std::string text;
    text.clear();
    render_metrics(*figures, text);
    if (text.capacity() > (1u << 20) && text.capacity() > 4 * text.size()) text.shrink_to_fit();  // queues went away
    res.set_content_provider(text.size(), std::string(metrics_content_type),
                             [buf = &text](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               return sink.write(buf->data() + offset, length);
                             });
  }

  void get_queues(httplib::Response& res) {
    auto queues = bridge.call([this](core::server& srv) { return sources.queues(srv); });
    if (!queues) return fail(res, 503, "the broker did not answer in time");
    res.set_content(queues_json(*queues), json_type);
  }

  void get_hosts(httplib::Response& res) {
    auto hosts = bridge.call([](core::server& srv) {
      return std::make_pair(srv.tasks().all_host_stats(), static_cast<std::size_t>(srv.cfg().host_info_max));
    });
    if (!hosts) return fail(res, 503, "the broker did not answer in time");
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    res.set_content(hosts_json(std::move(hosts->first), hosts->second, now), json_type);
  }

  void post_tasks(const httplib::Request& req, httplib::Response& res, const std::string& queue) {
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto parsed = read_tasks(req.body, now, [this] { return new_id(); });
    if (auto* e = std::get_if<api_error>(&parsed)) return fail(res, 400, e->message);
    auto& batch = std::get<task_batch>(parsed);
    // One LPUSH for the whole batch: one atomic record for the AOF and the mirror, and
    // the first task of the array is the first dispatched (the queue is taken from the
    // right).
    std::vector<std::string> args;
    args.reserve(batch.payloads.size() + 2);
    args.emplace_back("LPUSH");
    args.push_back(queue);
    for (auto& p : batch.payloads) args.push_back(std::move(p));
    struct outcome {
      bool known_queue = false;
      resp_reply reply;
    };
    auto r = bridge.call([this, args = std::move(args)](core::server& srv) {
      outcome o;
      o.known_queue = srv.cfg().queues.count(args[1]) != 0;
      if (o.known_queue) o.reply = bridge.command_here(args);
      return o;
    });
    if (!r) return fail(res, 503, "the broker did not answer in time; the tasks may or may not be queued");
    if (!r->known_queue) return fail(res, 404, "no HTTP queue named '" + queue + "'");
    if (r->reply.is_error()) return fail_with(res, r->reply.error(), 503);
    res.status = 201;
    res.set_content(nlohmann::json{{"queue", queue}, {"ids", batch.ids}}.dump(-1, ' ', false,
                                                                              nlohmann::json::error_handler_t::replace),
                    json_type);
  }

  // ---- control: each maps onto a QUEUE / TASK command -------------------------------------
  static std::string not_found(const std::string& id, bool shared) {
    std::string m = "no task with id '" + id + "' (not pending, in custody, dead, nor among the recent outcomes)";
    if (shared)
      m += "; of the shared queues only the tasks this sidecar holds and its recent outcomes were searched, "
           "not the upstream's <queue>, <queue>:retry, <queue>:scheduled and <queue>:dead";
    return m;
  }

  void get_task(httplib::Response& res, const std::string& id) {
    struct found {
      std::optional<core::task_manager::task_view> task;
      bool shared = false;
    };
    auto v = bridge.call([id](core::server& srv) {
      return found{srv.tasks().find_task(id), srv.tasks().has_shared_queues()};
    });
    if (!v) return fail(res, 503, "the broker did not answer in time");
    if (!v->task) return fail(res, 404, not_found(id, v->shared));
    res.set_content(task_json(*v->task), json_type);
  }

  void delete_task(httplib::Response& res, const std::string& id) {
    struct outcome {
      std::optional<core::task_manager::task_view> before;
      resp_reply reply;
      bool shared = false;
    };
    auto r = bridge.call([this, id](core::server& srv) {
      outcome o;
      o.before = srv.tasks().find_task(id);
      o.shared = srv.tasks().has_shared_queues();
      o.reply = bridge.command_here({"TASK", "CANCEL", id});
      return o;
    });
    if (!r) return fail(res, 503, "the broker did not answer in time; the task may or may not be cancelled");
    if (r->reply.is_error()) return fail_with(res, r->reply.error());
    if (r->reply.integer() == 1) {
      nlohmann::json j = {{"id", id}, {"cancelled", true}};
      if (r->before) {
        j["queue"] = r->before->queue;
        j["state"] = r->before->state;
      }
      return res.set_content(dump(j), json_type);
    }
    if (!r->before) return fail(res, 404, not_found(id, r->shared));
    fail(res, 409, "task '" + id + "' is " + r->before->state + ": not in respq's custody, nothing to cancel");
  }

  // Runs a QUEUE command and answers its reply: the integer under `count_name`, or "OK".
  void queue_command(httplib::Response& res, std::vector<std::string> args, nlohmann::json body,
                     const char* count_name = nullptr) {
    auto reply = bridge.command(std::move(args));
    if (!reply) return fail(res, 503, "the broker did not answer in time; the change may or may not be made");
    if (reply->is_error()) return fail_with(res, reply->error());
    if (count_name) body[count_name] = reply->integer().value_or(0);
    res.set_content(dump(body), json_type);
  }

  void post_replay(const httplib::Request& req, httplib::Response& res, const std::string& queue) {
    std::vector<std::string> args{"QUEUE", "REPLAY", queue};
    for (const auto& [name, value] : req.params) {
      if (name != "id" && name != "host" && name != "code")
        return fail(res, 400, "unknown parameter '" + name + "' (id, host, code)");
      if (req.get_param_value_count(name) > 1) return fail(res, 400, "parameter '" + name + "' given twice");
    }
    for (const char* name : {"id", "host", "code"})
      if (req.has_param(name)) {
        std::string opt = name;
        for (char& ch : opt) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        args.push_back(std::move(opt));
        args.push_back(req.get_param_value(name));
      }
    queue_command(res, std::move(args), {{"queue", queue}}, "replaying");
  }

  void delete_dead(httplib::Response& res, const std::string& queue, const std::string& id) {
    auto reply = bridge.command({"QUEUE", "DELDEAD", queue, id});
    if (!reply) return fail(res, 503, "the broker did not answer in time; the dead letter may or may not be deleted");
    if (reply->is_error()) return fail_with(res, reply->error());
    if (reply->integer() != 1) return fail(res, 404, "no dead letter with id '" + id + "' in '" + queue + ":dead'");
    res.set_content(dump({{"queue", queue}, {"id", id}, {"deleted", true}}), json_type);
  }

  // ?figures=1: a "figures" event (the overview document) once a second besides the
  // outcomes, for the dashboard's live view.
  void get_events(const httplib::Request& req, httplib::Response& res) {
    const bool figures = req.get_param_value("figures") == "1";
    if (figures && req.get_param_value("outcomes") == "0") return get_figures_stream(res);
    std::size_t max_rate = 0;
    if (const std::string r = req.get_param_value("max_rate"); !r.empty()) max_rate = std::strtoull(r.c_str(), nullptr, 10);
    // queue=<q>&max_rate=<n>: the hub builds and hands over only what this stream sends
    // (event_hub.hpp), and counts the rest for the "skipped" events.
    event_hub::filter filter{req.get_param_value("queue"), max_rate};
    auto sub = hub->subscribe(max_event_streams, std::move(filter));
    if (!sub) return fail(res, 503, "too many event streams open (at most " + std::to_string(max_event_streams) + ")");
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto hub_ref = hub;
    auto last_write = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    auto last_figures = std::make_shared<std::chrono::steady_clock::time_point>();
    res.set_chunked_content_provider(
        "text/event-stream",
        [sub, last_write, last_figures, figures, this](std::size_t offset, httplib::DataSink& sink) {
          if (offset == 0) {
            // A comment first: the stream is open and subscribed from here on.
            const std::string hello = ": respq outcomes\n\n";
            if (!sink.write(hello.data(), hello.size())) return false;
          }
          if (figures && std::chrono::steady_clock::now() - *last_figures >= std::chrono::seconds(1)) {
            *last_figures = std::chrono::steady_clock::now();
            auto f = bridge.call([this](core::server& srv) { return sources.figures(srv); });
            if (f) {
              const double now =
                  std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
              const std::string e = sse_event("figures", overview_json(*f, now));
              *last_write = *last_figures;
              if (!sink.write(e.data(), e.size())) return false;
            }
          }
          std::vector<std::string> events;
          std::size_t skipped = 0;
          switch (sub->next(events, skipped, std::chrono::milliseconds(250))) {
            case event_hub::subscription::status::events: {
              std::string chunk;
              for (const auto& e : events) chunk += sse_event({}, e);  // filtered when offered
              if (skipped) chunk += sse_event("skipped", "{\"skipped\":" + std::to_string(skipped) + "}");
              if (chunk.empty()) return true;
              *last_write = std::chrono::steady_clock::now();
              return sink.write(chunk.data(), chunk.size());
            }
            case event_hub::subscription::status::idle:
              if (stopped.load()) {
                sink.done();
                return true;
              }
              if (std::chrono::steady_clock::now() - *last_write > std::chrono::seconds(15)) {
                *last_write = std::chrono::steady_clock::now();
                const std::string ping = ": keepalive\n\n";
                return sink.write(ping.data(), ping.size());
              }
              return true;
            case event_hub::subscription::status::dropped: {
              const std::string bye =
                  sse_event("dropped", error_json("this reader fell behind by more than " +
                                                  std::to_string(event_hub::default_max_buffered) +
                                                  " outcomes; reconnect to go on"));
              sink.write(bye.data(), bye.size());
              sink.done();
              return true;
            }
            case event_hub::subscription::status::closed:
              sink.done();
              return true;
          }
          return false;
        },
        [sub, hub_ref](bool) { hub_ref->unsubscribe(sub); });
  }

  // ?figures=1&outcomes=0: the figures alone, once a second. Such a stream does not
  // subscribe to the outcomes, so while only these are open the broker does not build
  // outcome events at all (an open overview costs one copy of the figures a second).
  static constexpr std::size_t max_figure_streams = 8;
  std::shared_ptr<std::atomic<std::size_t>> figure_streams = std::make_shared<std::atomic<std::size_t>>(0);

  void get_figures_stream(httplib::Response& res) {
    if (figure_streams->fetch_add(1) >= max_figure_streams) {
      figure_streams->fetch_sub(1);
      return fail(res, 503, "too many figure streams open (at most " + std::to_string(max_figure_streams) + ")");
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    auto next = std::make_shared<std::chrono::steady_clock::time_point>();
    res.set_chunked_content_provider(
        "text/event-stream",
        [next, this](std::size_t offset, httplib::DataSink& sink) {
          if (offset == 0) {
            const std::string hello = ": respq figures\n\n";
            if (!sink.write(hello.data(), hello.size())) return false;
          }
          if (stopped.load()) {
            sink.done();
            return true;
          }
          const auto now = std::chrono::steady_clock::now();
          if (now < *next) {
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(*next - now, std::chrono::milliseconds(250)));
            return true;
          }
          *next = now + std::chrono::seconds(1);
          auto f = bridge.call([this](core::server& srv) { return sources.figures(srv); });
          if (!f) return true;
          const double t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
          const std::string e = sse_event("figures", overview_json(*f, t));
          return sink.write(e.data(), e.size());
        },
        [counter = figure_streams](bool) { counter->fetch_sub(1); });
  }

  void routes(httplib::Server& svr) {
    svr.new_task_queue = [] { return new httplib::ThreadPool(worker_threads); };
    svr.set_payload_max_length(64ull * 1024 * 1024);
    // cpp-httplib writes a response's headers and its body with separate send()s; with
    // Nagle's algorithm on (its default) a small body waits for the client's delayed ACK of
    // the headers: 40 ms per request on a keep-alive connection. Accepted sockets inherit
    // TCP_NODELAY from the listening one.
    svr.set_tcp_nodelay(true);
    // A scraper or a dashboard keeps its connection (cpp-httplib's default closes it after
    // 5 requests, and the next one lands on another worker); idle ones still close after
    // 5 s.
    svr.set_keep_alive_max_count(1000);
    // A reader that stops reading (a paused tab, a stalled consumer) keeps its socket full;
    // the event hub drops it once 1,024 outcomes wait, and the "dropped" event reaches it
    // when it reads again. The write gives up only after a minute (cpp-httplib's default,
    // 5 s, cut such a stream before it could learn why), and SSE streams are capped at
    // max_event_streams, so the workers for other requests stay free meanwhile.
    svr.set_write_timeout(60, 0);
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112
      // 6.3), as `curl -X POST` sends one; cpp-httplib would read a POST's body until the
      // connection closes, and answer 400 when its read times out. It runs this handler
      // before it reads the body and routes, on its own (non-const) Request.
      auto& r = const_cast<httplib::Request&>(req);
      if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) r.set_header("Content-Length", "0");
      r.path = routed_path(req.target);  // a '/' inside a name (%2F) stays in its segment
      return check(req, res);
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) { get_metrics(res); });
    svr.Get("/api/queues", [this](const httplib::Request&, httplib::Response& res) { get_queues(res); });
    svr.Get("/api/hosts", [this](const httplib::Request&, httplib::Response& res) { get_hosts(res); });
    svr.Post(R"(/api/queues/([^/]+)/tasks)", [this](const httplib::Request& req, httplib::Response& res) {
      post_tasks(req, res, path_segment(req.matches[1].str()));
    });
    svr.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) { get_events(req, res); });
    add_dashboard_routes(svr, dashboard_context{&bridge, sources.figures, history});
    svr.Get(R"(/api/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      get_task(res, path_segment(req.matches[1].str()));
    });
    svr.Delete(R"(/api/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      delete_task(res, path_segment(req.matches[1].str()));
    });
    svr.Post(R"(/api/queues/([^/]+)/(pause|resume))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string queue = path_segment(req.matches[1].str());
      const bool pause = req.matches[2].str() == "pause";
      queue_command(res, {"QUEUE", pause ? "PAUSE" : "RESUME", queue}, {{"queue", queue}, {"paused", pause}});
    });
    svr.Post(R"(/api/queues/([^/]+)/dead/replay)", [this](const httplib::Request& req, httplib::Response& res) {
      post_replay(req, res, path_segment(req.matches[1].str()));
    });
    svr.Delete(R"(/api/queues/([^/]+)/dead/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      delete_dead(res, path_segment(req.matches[1].str()), path_segment(req.matches[2].str()));
    });
    svr.Post(R"(/api/queues/([^/]+)/hosts/([^/]+)/reset)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string queue = path_segment(req.matches[1].str()), host = path_segment(req.matches[2].str());
      auto reply = bridge.command({"QUEUE", "HOSTRESET", queue, host});
      if (!reply) return fail(res, 503, "the broker did not answer in time; the host may or may not be reset");
      if (reply->is_error()) return fail_with(res, reply->error());
      if (reply->integer() != 1) return fail(res, 404, "queue '" + queue + "' knows no host '" + host + "'");
      res.set_content(dump({{"queue", queue}, {"host", host}, {"reset", true}}), json_type);
    });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      // No route took it: a path served under other methods is 405 with those in Allow.
      if (res.status == 404) {
        const std::string allow = allowed_methods(req.path);
        // A route of this very method refused the path (a GET of /ui/../x): it stays 404.
        bool served = false;
        for (std::string_view rest = allow; !rest.empty();) {
          const auto comma = rest.find(", ");
          served = served || rest.substr(0, comma) == req.method;
          rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 2);
        }
        if (!allow.empty() && !served) {
          res.status = 405;
          res.set_header("Allow", allow);
          res.set_content(error_json(req.method + " is not served here (Allow: " + allow + ")"), json_type);
          return;
        }
      }
      res.set_content(error_json(res.status == 404 ? "not found" : "error"), json_type);
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      fail(res, 500, "internal error");
    });
  }
};

admin_server::admin_server(core::server& s, broker_bridge::post_fn post, admin_sources sources)
    : impl_(std::make_unique<impl>(s, std::move(post), std::move(sources))) {}

admin_server::~admin_server() { stop(); }

std::string admin_server::start() {
  auto& d = *impl_;
  const core::config& cfg = d.s.cfg();
  if (cfg.admin_port == 0) return {};
  d.load_settings();
  for (const auto& raw : cfg.admin_bind) {
    const std::string addr = raw == "*" ? "0.0.0.0" : raw;
    std::unique_ptr<httplib::Server> svr;
    if (cfg.tls_port != 0) {
      auto ssl = std::make_unique<httplib::SSLServer>(cfg.tls_cert_file.c_str(), cfg.tls_key_file.c_str());
      if (!ssl->is_valid()) return "admin-port: can't use tls-cert-file/tls-key-file for https";
      svr = std::move(ssl);
      d.scheme = "https";
    } else {
      svr = std::make_unique<httplib::Server>();
    }
    d.routes(*svr);
    if (!svr->bind_to_port(addr, cfg.admin_port)) {
      d.servers.clear();
      return "admin-port: can't listen on " + addr + ":" + std::to_string(cfg.admin_port);
    }
    d.servers.push_back(std::move(svr));
  }
  d.started = true;
  for (auto& svr : d.servers) d.threads.emplace_back([p = svr.get()] { p->listen_after_bind(); });
  // stop() only reaches a server that runs its loop already: wait for that (briefly).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& svr : d.servers)
    while (!svr->is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  d.s.register_module(d, core::server_module::observes_publish);
  // A local queue's outcome that nothing on the Redis side wants: built only when a stream
  // takes it now (a watched queue, within its stream's rate), else counted.
  d.s.tasks().outcome_watch = [hub = d.hub](std::string_view queue, const tasks::outcome_fields& f) {
    hub->offer(queue, [&f] { return tasks::outcome_json(f); });
  };
  d.sample();  // the history's first sample now, the next ones on the cron
  std::string where;
  for (const auto& a : cfg.admin_bind) where += (where.empty() ? "" : ", ") + a + ":" + std::to_string(cfg.admin_port);
  core::log_notice("Admin HTTP server on " + where + (cfg.admin_readonly ? " (read-only)" : "") +
                   (cfg.requirepass.empty() ? "" : ", requirepass needed"));
  return {};
}

void admin_server::stop() {
  auto& d = *impl_;
  if (d.stopped.exchange(true)) return;
  if (!d.started) return;
  d.bridge.stop();
  d.hub->close_all();
  for (auto& svr : d.servers) svr->stop();
  for (auto& t : d.threads) t.join();
  d.threads.clear();
  d.servers.clear();
  d.s.unregister_module(d);
  d.s.tasks().outcome_watch = nullptr;
  d.bridge.close_here();
}

}  // namespace respq::admin
