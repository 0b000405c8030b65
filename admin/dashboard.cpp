// dashboard: see dashboard.hpp.
#include "admin/dashboard.hpp"

#include <httplib.h>

#include <charconv>
#include <utility>
#include <chrono>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "admin/dashboard_assets.hpp"
#include "admin/dead_view.hpp"
#include "broker/core/server.hpp"
#include "resp/ascii.hpp"
#include "tasks/records.hpp"

namespace respq::admin {

namespace {

constexpr const char* json_type = "application/json";

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void fail(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(dump(nlohmann::json{{"error", message}}), json_type);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double ms(double v) { return std::round(v * 1000.0) / 1000.0; }

bool read_size(const std::string& text, std::size_t& out) {
  if (text.empty()) return false;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

// Headers of every embedded file: it is the same for every user, so it may be cached,
// but revalidated (ETag) so that an upgraded server is picked up at once.
void serve_asset(const httplib::Request& req, httplib::Response& res, const asset& a) {
  res.set_header("ETag", std::string(a.etag));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
                 "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
  if (req.get_header_value("If-None-Match") == a.etag) {
    res.status = 304;
    return;
  }
  res.set_content(std::string(a.body), std::string(a.content_type));
}

}  // namespace

namespace {

// Decodes %XX escapes, except those `keep` says stay as written. A '%' that starts no
// escape stays as it is, or becomes %25 with `escape_stray` (so that a later decoding
// of the result reads it as the '%' it was, not as the start of an escape).
template <typename Keep>
std::string percent_decode(std::string_view s, Keep keep, bool escape_stray = false) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        const char c = static_cast<char>(hi * 16 + lo);
        if (keep(c)) out.append(s.substr(i, 3));
        else out.push_back(c);
        i += 2;
        continue;
      }
    }
    if (s[i] == '%' && escape_stray) out += "%25";
    else out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string routed_path(std::string_view target) {
  return percent_decode(target.substr(0, target.find('?')), [](char c) { return c == '/' || c == '%'; }, true);
}

std::string path_segment(std::string_view captured) {
  return percent_decode(captured, [](char) { return false; });
}

bool is_public_path(std::string_view path) { return path == "/" || path.rfind("/ui/", 0) == 0; }

std::string overview_json(const core::server_figures& f, double now) {
  nlohmann::json queues = nlohmann::json::array();
  for (const auto& s : f.queues) {
    nlohmann::json responses = nlohmann::json::object();
    for (std::size_t i = 0; i < tasks::attempt_figures::class_count; ++i)
      responses[tasks::attempt_figures::class_names[i]] = s.attempts.responses[i];
    queues.push_back({{"name", s.name},
                      {"shared", s.shared},
                      {"paused", s.paused},
                      {"pending", s.pending},
                      {"in_flight", s.in_flight},
                      {"retrying", s.retrying},
                      {"scheduled", s.scheduled},
                      {"dead_list", s.dead_list},
                      {"replaying", s.replaying},
                      {"enqueued", s.enqueued},
                      {"delivered", s.delivered},
                      {"failed", s.failed},
                      {"dead", s.dead},
                      {"cancelled", s.cancelled},
                      {"responses", responses},
                      {"dispatch_delay_p50_ms", ms(s.latency.quantile(0.50))},
                      {"dispatch_delay_p99_ms", ms(s.latency.quantile(0.99))},
                      {"request_duration_p50_ms", ms(s.attempts.duration.quantile(0.50))},
                      {"request_duration_p99_ms", ms(s.attempts.duration.quantile(0.99))}});
  }
  const auto& a = f.aof;
  const auto& l = f.link;
  nlohmann::json doc{
      {"t", ms(now)},
      {"version", f.version},
      {"clients",
       {{"connected", f.clients.connected},
        {"blocked", f.clients.blocked},
        {"pubsub", f.clients.pubsub},
        {"maxclients", f.clients.maxclients}}},
      {"used_memory", f.used_memory},
      {"aof",
       {{"enabled", a.enabled},
        {"last_write_ok", a.last_write_ok},
        {"rewrite_in_progress", a.rewrite_in_progress},
        {"current_size", a.current_size},
        {"buffer_length", a.buffer_length}}},
      {"link",
       {{"configured", l.configured},
        {"status", l.status},
        {"connected", l.connected},
        {"mirror_enabled", l.mirror_enabled},
        {"mirror_state", l.mirror_state},
        {"lag_commands", l.lag_commands},
        {"shared_queues", l.shared_queues}}},
      {"queues", std::move(queues)},
  };
  return dump(doc);
}

namespace {

// One dead_letter_cache per queue asked about.
struct dead_caches {
  std::mutex m;
  std::map<std::string, std::shared_ptr<dead_letter_cache>, std::less<>> by_queue;
  std::shared_ptr<dead_letter_cache> of(const std::string& queue) {
    std::lock_guard lock(m);
    auto& c = by_queue[queue];
    if (!c) c = std::make_shared<dead_letter_cache>();
    return c;
  }
};

}  // namespace

void add_dashboard_routes(httplib::Server& svr, dashboard_context ctx) {
  auto caches = std::make_shared<dead_caches>();
  svr.Get("/", [](const httplib::Request& req, httplib::Response& res) {
    if (const asset* a = find_asset("/")) serve_asset(req, res, *a);
    else fail(res, 404, "not found");
  });
  svr.Get(R"(/ui/[A-Za-z0-9_.\-]+)", [](const httplib::Request& req, httplib::Response& res) {
    if (const asset* a = find_asset(req.path)) serve_asset(req, res, *a);
    else fail(res, 404, "not found");
  });
  svr.Get("/api/overview", [ctx](const httplib::Request&, httplib::Response& res) {
    auto f = ctx.bridge->call([ctx](core::server& s) { return ctx.figures(s); });
    if (!f) return fail(res, 503, "the broker did not answer in time");
    res.set_content(overview_json(*f, unix_now()), json_type);
  });
  svr.Get("/api/history", [ctx](const httplib::Request& req, httplib::Response& res) {
    res.set_content(ctx.history->json(req.get_param_value("queue")), json_type);
  });
  svr.Get(R"(/api/queues/([^/]+)/dead)", [ctx, caches](const httplib::Request& req, httplib::Response& res) {
    const std::string queue = path_segment(req.matches[1].str());
    dead_query q;
    q.host = req.get_param_value("host");
    q.reason = req.get_param_value("reason");
    if (req.has_param("code")) {
      std::size_t code;
      if (!read_size(req.get_param_value("code"), code) || code > 999)
        return fail(res, 400, "code must be an HTTP status code, or 0 for no HTTP answer");
      q.code = static_cast<long>(code);
    }
    if (req.has_param("offset") && !read_size(req.get_param_value("offset"), q.offset))
      return fail(res, 400, "offset must be a number");
    if (req.has_param("limit") && !read_size(req.get_param_value("limit"), q.limit))
      return fail(res, 400, "limit must be a number");
    // The records are copied on the broker thread (a copy of the list's strings) and read
    // and grouped here, so 10,000 dead letters cost the broker a memcpy, not a parse.
    struct copied {
      int status = 200;
      std::string error;
      std::vector<std::string> records;
    };
    auto r = ctx.bridge->call([queue](core::server& s) {
      copied c;
      auto it = s.cfg().queues.find(queue);
      if (it == s.cfg().queues.end()) {
        c.status = 404;
        c.error = "no HTTP queue named '" + queue + "'";
        return c;
      }
      if (it->second.shared) {
        c.status = 409;
        c.error = "the dead letters of shared queue '" + queue + "' are on the upstream Redis";
        return c;
      }
      core::server::db_scope in_db0(s, 0);
      core::value* l = s.db(0).find(queue + ":dead");
      if (!l || l->type() != core::value_type::list) return c;
      c.records.reserve(l->list().size());
      for (auto cur = l->list().seek(0); cur.valid(); cur.next()) c.records.emplace_back(cur.value());
      return c;
    });
    if (!r) return fail(res, 503, "the broker did not answer in time");
    if (r->status != 200) return fail(res, r->status, r->error);
    res.set_content(caches->of(queue)->json(queue, r->records, q), json_type);
  });
}

}  // namespace respq::admin
