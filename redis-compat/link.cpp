// link: see link.hpp. Wires the mirror and the shared queues to the core (a stream sink,
// and a server module: INFO mirror, cron, CONFIG SET, the shutdown grace period) and to
// the upstream connection.
#include "redis-compat/link.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <unordered_map>

#include "broker/core/figures.hpp"
#include "broker/core/log.hpp"
#include "broker/core/module.hpp"
#include "broker/core/server.hpp"
#include "broker/core/task_manager.hpp"
#include "redis-compat/mirror.hpp"
#include "redis-compat/sentinel.hpp"
#include "redis-compat/shared_queue.hpp"
#include "redis-compat/upstream_connection.hpp"
#include "tasks/http_request.hpp"
#include "tasks/queue_stats.hpp"
#include "workers/delivery_engine.hpp"

namespace respq::redis_compat {

namespace {

bool any_shared(const core::config& c) {
  for (const auto& [name, q] : c.queues)
    if (q.shared) return true;
  return false;
}

// KEYS: this node's heartbeat key. ARGV: token, ttl ms. 1 when the key still held this
// process's token, 0 when it had expired (or was another process's).
constexpr const char* heartbeat_script =
    "local v = redis.call('GET', KEYS[1])\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "if v == ARGV[1] then return 1 end\n"
    "return 0\n";

std::string random_token() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(g()),
                static_cast<unsigned long long>(g()));
  return buf;
}

}  // namespace

struct link::impl final : core::stream_sink, core::server_module {
  impl(core::server& srv, asio::io_context& i, post_fn p) : s(srv), io(i), post(std::move(p)) {}

  core::server& s;
  asio::io_context& io;
  post_fn post;
  std::string node_id;
  upstream_endpoint ep;
  std::unique_ptr<upstream_connection> main;
  std::unique_ptr<sentinel_watch> sentinel;
  std::unique_ptr<mirror> mir;
  // Heartbeat (shared queues): respq:node:<node-id> = node_token, expiring after node-timeout.
  std::string node_token = random_token();
  bool beating = false;
  std::uint64_t beats = 0, lapses = 0;
  std::chrono::steady_clock::time_point last_beat{};
  std::unique_ptr<workers::delivery_engine> engine;
  std::unique_ptr<shared_context> ctx;
  std::map<std::string, std::unique_ptr<shared_queue>, std::less<>> queues;
  std::vector<std::unique_ptr<shared_queue>> retired;  // no longer shared: finishing what they hold
  std::unordered_map<std::uint64_t, shared_queue*> ticket_owner;
  std::uint64_t next_ticket = 1;
  // The delivery engine's results are posted to the broker thread and may run after
  // stop(), or after the link is gone: they hold this cell, which stop() empties.
  std::shared_ptr<impl*> guard = std::make_shared<impl*>(this);
  bool started = false, stopped = false;
  bool draining = false;  // the shutdown grace period began: queues start nothing new

  bool on_effects(std::string_view bytes, std::span<const core::effect_meta> effects) override {
    if (mir) mir->on_effects(bytes, effects);
    if (!queues.empty()) {
      for (const auto& e : effects) {
        if (e.keyless || e.db != 0) continue;  // shared queues' spools live in database 0
        if (auto it = queues.find(e.key); it != queues.end()) it->second->spool_changed();
      }
    }
    return true;  // the link never fails a batch: it buffers
  }

  key_filter make_filter() const {
    key_filter f(s.cfg().mirror_keys);
    // The link's own keys on the upstream.
    f.exclude_prefix("respq:mirror:");
    f.exclude_prefix("respq:spool:");
    f.exclude_prefix("respq:node:");
    f.exclude_prefix("respq:reclaimed:");
    // A shared queue's keys belong to the upstream: the local key is only a spool.
    for (const auto& [name, q] : queues) {
      f.exclude_key(name);
      f.exclude_key(name + ":dead");
      f.exclude_key(name + ":retry");
      f.exclude_key(name + ":scheduled");
      f.exclude_prefix(name + ":processing:");
    }
    return f;
  }

  void ensure_engine() {
    if (engine) return;
    auto g = guard;
    engine = std::make_unique<workers::delivery_engine>([g, p = post](std::vector<tasks::http_result>&& results) {
      p([g, r = std::move(results)]() mutable {
        if (*g) (*g)->on_results(std::move(r));
      });
    });
  }

  // A shared queue's pool and its callbacks' pool: the per-host cap, the egress rules,
  // the TLS trust and whether https offers HTTP/2.
  void set_pools(const std::string& name, const core::queue_options& opts) {
    const workers::pool_options o{opts.per_host, core::egress_rules_for(s.cfg(), opts), core::tls_trust_for(s.cfg(), opts),
                                  s.cfg().http2};
    engine->set_queue_pools(name, o);
  }

  void add_queue(const std::string& name, const core::queue_options& opts) {
    ensure_engine();
    set_pools(name, opts);
    auto q = std::make_unique<shared_queue>(*ctx, name, opts);
    shared_queue* raw = q.get();
    queues.emplace(name, std::move(q));
    if (draining) raw->drain();  // shared by CONFIG SET during the shutdown grace period
    raw->start();
    if (main->ready()) raw->on_main_ready();
  }

  void on_results(std::vector<tasks::http_result>&& results) {
    for (auto& r : results) {
      auto it = ticket_owner.find(r.ticket);
      if (it == ticket_owner.end()) continue;
      shared_queue* q = it->second;
      ticket_owner.erase(it);
      q->on_result(r);
    }
  }

  void on_config(const std::string& name) override {
    if (name == "egress-policy" || name == "egress-allow" || name == "egress-deny" || name == "tls-ca-cert-file" ||
        name == "tls-ca-cert-dir" || name == "http2") {
      if (!engine) return;
      for (const auto& [qname, q] : queues)
        if (auto c = s.cfg().queues.find(qname); c != s.cfg().queues.end()) set_pools(qname, c->second);
      return;
    }
    if (name != "http-queue") return;
    if (!main) {
      if (any_shared(s.cfg()))
        core::log_warning("A queue became shared, but the upstream link was not started: restart respq to share it");
      return;
    }
    bool changed = false;
    for (const auto& [qname, opts] : s.cfg().queues) {
      if (!opts.shared) continue;
      if (auto it = queues.find(qname); it != queues.end()) {
        it->second->reconfigure(opts);
        set_pools(qname, opts);
      } else {
        add_queue(qname, opts);
        changed = true;
      }
    }
    for (auto it = queues.begin(); it != queues.end();) {
      auto c = s.cfg().queues.find(it->first);
      if (c == s.cfg().queues.end() || !c->second.shared) {
        core::log_notice("Queue '" + it->first + "' is no longer shared: this sidecar stops taking from it");
        it->second->stop();
        retired.push_back(std::move(it->second));
        it = queues.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    if (changed && mir) mir->set_filter(make_filter());
  }

  void cron() override {
    if (mir) mir->cron();
    heartbeat(false);
    for (auto& [name, q] : queues) q->cron();
  }

  // Every third of node-timeout (and at once when the main connection comes up), while
  // this sidecar has shared queues. A beat that finds the key gone after an earlier one
  // means this node was taken for dead meanwhile: each queue re-reads its processing list.
  void heartbeat(bool now) {
    if (queues.empty() && retired.empty()) return;
    if (beating || !main || !main->ready()) return;
    const auto t = std::chrono::steady_clock::now();
    const double every = s.cfg().node_timeout / 3;
    if (!now && t - last_beat < std::chrono::duration<double>(every)) return;
    last_beat = t;
    beating = true;
    const std::string ttl = std::to_string(static_cast<long long>(s.cfg().node_timeout * 1000));
    bool sent = main->command({"EVAL", heartbeat_script, "1", "respq:node:" + node_id, node_token, ttl},
                              [this, t](const redisReply* r) {
                                beating = false;
                                if (!r || r->type != REDIS_REPLY_INTEGER) {
                                  if (r) core::log_warning("Heartbeat: " + std::string(r->str ? r->str : "?", r->len));
                                  return;
                                }
                                // The key is set from the beat's send on: surely there
                                // until node-timeout after it.
                                if (ctx)
                                  ctx->custody_sure_until = std::max(
                                      ctx->custody_sure_until,
                                      t + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                              std::chrono::duration<double>(s.cfg().node_timeout)));
                                if (r->integer == 0 && beats > 0) {
                                  ++lapses;
                                  core::log_warning("Heartbeat: this node's key respq:node:" + node_id +
                                                    " had expired (node-timeout passed without a beat): other " +
                                                    "sidecars may have reclaimed its tasks");
                                  for (auto& [name, q] : queues) q->on_heartbeat_lapsed();
                                }
                                ++beats;
                              });
    if (!sent) beating = false;
  }

  void on_master(const std::string& host, int port) {
    ep.host = host;
    ep.port = port;
    if (ctx) ctx->endpoint = ep;
    if (main) main->set_endpoint(ep);
    for (auto& [name, q] : queues) q->set_endpoint(ep);
    for (auto& q : retired) q->set_endpoint(ep);
  }

  bool info_section(std::string_view name, std::string& body) override {
    if (name != "mirror") return false;
    body += info();
    return true;
  }

  // Shutdown's grace period: the shared queues start no new request.
  void drain() override {
    draining = true;
    for (auto& [name, q] : queues) q->drain();
    for (auto& q : retired) q->drain();
  }

  std::size_t in_flight() const override {
    std::size_t n = 0;
    for (const auto& [name, q] : queues) n += q->requests_in_flight();
    for (const auto& q : retired) n += q->requests_in_flight();
    return n;
  }

  std::string info() const {
    std::string o;
    auto line = [&o](const char* k, const std::string& v) {
      o += k;
      o += ':';
      o += v;
      o += "\r\n";
    };
    line("mirror_enabled", mir ? "1" : "0");
    line("link_status", main ? main->status() : std::string("idle"));
    line("upstream", ep.host + ":" + std::to_string(ep.port));
    line("upstream_db", std::to_string(ep.db));
    if (sentinel) {
      line("sentinel", sentinel->sentinel_address());
      line("sentinel_status", sentinel->status());
      line("sentinel_master", sentinel->master());
      line("master_switches", std::to_string(sentinel->switches()));
    }
    line("node_id", node_id);
    line("heartbeats", std::to_string(beats));
    line("heartbeat_lapses", std::to_string(lapses));
    line("reconnects", std::to_string(main ? main->reconnects() : 0));
    line("link_connects", std::to_string(main ? main->connects() : 0));
    line("link_last_error", main ? main->last_error() : std::string());
    line("link_pending_replies", std::to_string(main ? main->pending() : 0));
    line("link_output_bytes", std::to_string(main ? main->bytes_pending_write() : 0));
    if (mir) o += mir->info();
    // The shared queues' own figures are in INFO tasks, beside the local queues'.
    line("shared_queues", std::to_string(queues.size()));
    return o;
  }

  // Shutdown: over a blocking connection, send what the mirror's upstream has not applied,
  // finish removals and hand held tasks back.
  void shutdown_sync() {
    // The spool is forwarded while the loop runs (the grace period included); what is left
    // now stays in this sidecar: kept by the AOF for the next start, or lost without it.
    std::size_t spooled = 0;
    for (auto& [name, q] : queues) spooled += q->spooled();
    if (spooled)
      core::log_warning("Shutdown: " + std::to_string(spooled) +
                        " pushes acknowledged by this sidecar are still in its spool (the upstream may not have "
                        "them): " +
                        (s.cfg().appendonly ? std::string("the AOF keeps them for the next start")
                                            : std::string("without appendonly they are lost")));
    std::size_t held = 0;
    for (auto& [name, q] : queues) held += q->held();
    for (auto& q : retired) held += q->held();
    const bool mirror_behind = mir && mir->has_unapplied();
    if (held == 0 && !mirror_behind) return;
    if (ep.host.empty()) {
      core::log_warning("Shutdown: no upstream master known; shared tasks held stay in this node's processing lists");
      return;
    }
    timeval tv{2, 0};
    redisContext* c = redisConnectWithTimeout(ep.host.c_str(), ep.port, tv);
    if (!c || c->err) {
      core::log_warning("Shutdown: can't reach the upstream" +
                        (held ? "; " + std::to_string(held) +
                                    " shared tasks stay in this node's processing lists for its next start"
                              : std::string()) +
                        (mirror_behind ? "; the mirror is behind until the next start resyncs" : ""));
      if (c) redisFree(c);
      return;
    }
    redisSetTimeout(c, tv);
    auto simple = [c](std::initializer_list<std::string> argv) {
      std::vector<const char*> a;
      std::vector<std::size_t> l;
      for (const auto& x : argv) {
        a.push_back(x.data());
        l.push_back(x.size());
      }
      auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(a.size()), a.data(), l.data()));
      bool ok = r && r->type != REDIS_REPLY_ERROR;
      if (r) freeReplyObject(r);
      return ok;
    };
    bool ok = true;
    if (!ep.password.empty()) ok = simple({"AUTH", ep.password});
    if (ok && ep.db != 0) ok = simple({"SELECT", std::to_string(ep.db)});
    if (ok) {
      if (mirror_behind) {
        std::size_t n = mir->drain(c);
        core::log_notice("Shutdown: mirror drained " + std::to_string(n) + " commands to the upstream" +
                         (mir->has_unapplied() ? " (not all: the next start resyncs)" : ""));
      }
      for (auto& [name, q] : queues) q->hand_back(c);
      for (auto& q : retired) q->hand_back(c);
    } else {
      core::log_warning("Shutdown: the upstream refused AUTH/SELECT; nothing more is sent");
    }
    redisFree(c);
  }
};

link::link(core::server& s, asio::io_context& io_context, post_fn post)
    : impl_(std::make_unique<impl>(s, io_context, std::move(post))) {}

link::~link() { stop(); }

std::string link::start() {
  auto& d = *impl_;
  const core::config& cfg = d.s.cfg();
  const bool use_sentinel = !cfg.upstream_sentinels.empty();
  if (cfg.upstream_host.empty() && !use_sentinel) {
    if (cfg.mirror) return "mirror yes needs an upstream Redis: upstream <host> <port>";
    for (const auto& [name, q] : cfg.queues)
      if (q.shared) return "http-queue '" + name + "' is shared but no upstream Redis is configured (upstream <host> <port>)";
    return {};
  }
  d.node_id = core::node_name(cfg);
  // With Sentinel the master is unknown until a sentinel names it.
  d.ep = upstream_endpoint{use_sentinel ? std::string() : cfg.upstream_host, use_sentinel ? 0 : cfg.upstream_port,
                           cfg.upstream_password, cfg.upstream_db};
  d.started = true;

  // Until stop(): it unregisters the module and clears the task manager's functions.
  d.s.register_module(d);
  d.s.tasks().shared_stats = [&d](std::vector<tasks::queue_stats>& out) {
    for (const auto& [name, q] : d.queues) out.push_back(q->stats());
  };
  d.s.tasks().shared_find = [&d](std::string_view id) -> std::optional<core::task_manager::task_view> {
    for (const auto& [name, q] : d.queues)
      if (auto v = q->find_task(id)) return v;
    return std::nullopt;
  };
  d.s.tasks().shared_cancel = [&d](std::string_view id) {
    for (auto& [name, q] : d.queues)
      if (q->cancel_task(id)) return true;
    return false;
  };
  d.s.tasks().shared_host_stats = [&d](std::vector<tasks::host_figures>& out) {
    for (const auto& [name, q] : d.queues) q->host_stats(out);
  };
  d.s.tasks().shared_reset_host = [&d](std::string_view queue, std::string_view host) -> std::optional<std::size_t> {
    auto q = d.queues.find(queue);
    if (q == d.queues.end()) return std::nullopt;
    return q->second->reset_host(host) ? 1 : 0;
  };
  if (!cfg.mirror && !any_shared(cfg)) {
    core::log_notice("Upstream " + d.ep.host + ":" + std::to_string(d.ep.port) +
                     " configured, but neither mirror nor shared queues use it");
    return {};
  }

  d.main = std::make_unique<upstream_connection>(d.io, d.ep, "respq-link:" + d.node_id);
  d.main->on_ready = [&d] {
    d.heartbeat(true);  // first on the connection: before the removals the queues resend
    if (d.mir) d.mir->on_link_ready();
    for (auto& [name, q] : d.queues) q->on_main_ready();
    for (auto& q : d.retired) q->on_main_ready();
  };
  d.main->on_lost = [&d](const std::string&) {
    if (d.mir) d.mir->on_link_lost();
    for (auto& [name, q] : d.queues) q->on_main_lost();
    for (auto& q : d.retired) q->on_main_lost();
  };
  d.ctx = std::make_unique<shared_context>(shared_context{
      d.s, d.io, *d.main, d.ep, d.node_id, d.node_token,
      [&d](std::vector<tasks::http_request>&& batch) {
        if (d.engine) d.engine->submit(std::move(batch));
      },
      [&d](shared_queue* owner) {
        std::uint64_t t = d.next_ticket++;
        d.ticket_owner.emplace(t, owner);
        return t;
      }});
  std::string shared_names;
  for (const auto& [name, q] : cfg.queues) {
    if (!q.shared) continue;
    d.add_queue(name, q);
    shared_names += (shared_names.empty() ? "" : ", ") + name;
  }
  if (cfg.mirror) d.mir = std::make_unique<mirror>(d.s, *d.main, d.io, d.node_id, d.make_filter());
  d.s.stream().add_sink(&d);
  d.main->start();
  std::string where = d.ep.host + ":" + std::to_string(d.ep.port);
  if (use_sentinel) {
    d.sentinel = std::make_unique<sentinel_watch>(d.io, cfg.upstream_sentinels, cfg.upstream_master_name, d.node_id);
    d.sentinel->on_master = [&d](const std::string& host, int port) { d.on_master(host, port); };
    d.sentinel->start();
    where = "master '" + cfg.upstream_master_name + "' (asking " + std::to_string(cfg.upstream_sentinels.size()) +
            " sentinels)";
  }
  core::log_notice("Upstream link to " + where + " as node '" + d.node_id + "': mirror " + (cfg.mirror ? "on" : "off") +
                   (shared_names.empty() ? std::string() : ", shared queues: " + shared_names));
  return {};
}

core::link_figures link::figures() const {
  const auto& d = *impl_;
  core::link_figures f;
  if (!d.started) return f;
  f.configured = true;
  f.status = d.main ? d.main->status() : std::string("idle");
  f.connected = f.status == "up";
  f.reconnects = d.main ? d.main->reconnects() : 0;
  f.pending_replies = d.main ? d.main->pending() : 0;
  f.output_bytes = d.main ? d.main->bytes_pending_write() : 0;
  if (d.mir) d.mir->figures(f);
  f.shared_queues = d.queues.size();
  return f;
}

void link::stop() {
  auto& d = *impl_;
  if (d.stopped || !d.started) return;
  d.stopped = true;
  *d.guard = nullptr;
  d.s.unregister_module(d);
  d.s.tasks().shared_stats = nullptr;
  d.s.tasks().shared_find = nullptr;
  d.s.tasks().shared_cancel = nullptr;
  d.s.tasks().shared_host_stats = nullptr;
  d.s.tasks().shared_reset_host = nullptr;
  d.s.stream().remove_sink(&d);
  for (auto& [name, q] : d.queues) q->stop();
  for (auto& q : d.retired) q->stop();
  if (d.sentinel) d.sentinel->stop();
  if (d.engine) d.engine->stop();
  if (d.main) d.main->stop();
  d.shutdown_sync();
}

}  // namespace respq::redis_compat
