// services: see services.hpp.
#include "broker/services.hpp"

#include <algorithm>
#include <chrono>

#include "admin/admin_server.hpp"
#include "broker/core/figures.hpp"
#include "broker/core/log.hpp"
#include "broker/core/module.hpp"
#include "broker/core/server.hpp"
#include "broker/core/task_manager.hpp"
#include "broker/core/version.hpp"
#include "broker/migrate_sockets.hpp"
#include "broker/network.hpp"
#include "persistence/aof.hpp"
#include "redis-compat/link.hpp"
#include "workers/delivery_engine.hpp"

namespace respq::broker {

// A module of the server itself (registered in start(), after the AOF, until stop()): CONFIG
// SET of the queues and of the egress and TLS settings reaches the task manager and the
// delivery engine's pools.
struct services::impl final : core::server_module {
  impl(core::server& srv, network& n) : s(srv), net(n) {}
  core::server& s;
  network& net;
  std::unique_ptr<workers::delivery_engine> engine;
  std::unique_ptr<persistence::aof> aof;
  std::unique_ptr<redis_compat::link> link;
  std::unique_ptr<admin::admin_server> admin;
  // used_memory walks every key: a scrape reads it at most once a second.
  std::uint64_t used_memory = 0;
  std::chrono::steady_clock::time_point used_memory_at{};

  // Every HTTP queue's figures, local and shared, by name (broker thread).
  std::vector<tasks::queue_stats> queue_stats() {
    std::vector<tasks::queue_stats> all = s.tasks().stats();
    if (s.tasks().shared_stats) s.tasks().shared_stats(all);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return all;
  }

  core::server_figures figures() {
    core::server_figures f;
    f.version = RESPQ_VERSION;
    f.queues = queue_stats();
    f.hosts = s.tasks().all_host_stats();
    f.host_label_max = s.cfg().host_info_max;
    f.clients = core::clients_of(s);
    const auto now = std::chrono::steady_clock::now();
    if (now - used_memory_at >= std::chrono::seconds(1)) {
      used_memory = s.used_memory();
      used_memory_at = now;
    }
    f.used_memory = used_memory;
    f.commands = core::commands_of(s);
    if (aof) f.aof = aof->figures();
    if (link) f.link = link->figures();
    return f;
  }

  std::vector<admin::queue_view> queue_views() {
    std::vector<admin::queue_view> out;
    for (auto& st : queue_stats()) {
      auto it = s.cfg().queues.find(st.name);
      tasks::queue_options o = it != s.cfg().queues.end() ? it->second : tasks::queue_options{};
      out.push_back({std::move(st), o});
    }
    return out;
  }

  // Each local queue's pool and its callbacks' pool: the per-host cap, the egress rules,
  // the TLS trust and whether https offers HTTP/2.
  void apply_pools() {
    for (const auto& [name, per_host] : s.tasks().pools()) {
      const auto q = s.cfg().queues.find(name);
      const core::queue_options& opts = q != s.cfg().queues.end() ? q->second : core::queue_options{};
      const workers::pool_options o{per_host, core::egress_rules_for(s.cfg(), opts), core::tls_trust_for(s.cfg(), opts),
                                    s.cfg().http2};
      engine->set_queue_pools(name, o);
    }
  }

  void on_config(const std::string& name) override {
    if (name == "egress-policy" || name == "egress-allow" || name == "egress-deny" || name == "tls-ca-cert-file" ||
        name == "tls-ca-cert-dir" || name == "http2") {
      apply_pools();
      return;
    }
    if (name != "http-queue") return;
    s.tasks().reconfigure();
    apply_pools();
  }
};

services::services(core::server& s, network& net) : impl_(std::make_unique<impl>(s, net)) {}
services::~services() { stop(); }

std::string services::start() {
  auto& d = *impl_;
  d.s.set_migrate_connections(std::make_unique<migrate_sockets>());
  // Persistence first: the AOF is loaded before the task manager recovers what was in
  // flight. The process already runs in the configured dir (main.cpp), hence ".".
  d.aof = std::make_unique<persistence::aof>(d.s, ".");
  if (std::string err = d.aof->start(); !err.empty()) return err;
  d.net.on_stopping = [&d, prev = std::move(d.net.on_stopping)] {
    if (prev) prev();
    d.aof->shutdown();  // write and fsync what is buffered: a clean stop loses nothing
  };
  // Results arrive on the engine thread, batched per engine loop turn; the task state
  // they change belongs to the broker thread.
  d.engine = std::make_unique<workers::delivery_engine>([&d](std::vector<tasks::http_result>&& results) {
    d.net.post([&d, r = std::move(results)]() mutable { d.s.tasks().on_results(std::move(r)); });
  });
  d.apply_pools();
  d.s.tasks().submit = [&d](std::vector<tasks::http_request>&& batch) { d.engine->submit(std::move(batch)); };
  d.s.register_module(d);
  d.s.tasks().recover();
  std::string queues;
  for (const auto& [name, q] : d.s.cfg().queues) queues += (queues.empty() ? "" : ", ") + core::format_queue(name, q);
  core::log_notice("HTTP queues: " + (queues.empty() ? std::string("none") : queues));
  // The Redis link last: the AOF is loaded, so the mirror's first resync sends what respq
  // holds now, and shared queues start with their local spool as loaded.
  d.link = std::make_unique<redis_compat::link>(d.s, d.net.io_context(),
                                                [&d](std::function<void()> fn) { d.net.post(std::move(fn)); });
  if (std::string err = d.link->start(); !err.empty()) return err;
  // The admin HTTP server last: everything it reports on has started.
  d.admin = std::make_unique<admin::admin_server>(
      d.s, [&d](std::function<void()> fn) { d.net.post(std::move(fn)); },
      admin::admin_sources{[&d](core::server&) { return d.figures(); }, [&d](core::server&) { return d.queue_views(); }});
  if (std::string err = d.admin->start(); !err.empty()) return err;
  d.net.on_stopping = [&d, prev = std::move(d.net.on_stopping)] {
    d.admin->stop();  // its requests wait for the broker thread: end them first
    if (prev) prev();
  };
  return {};
}

void services::stop() {
  impl_->s.unregister_module(*impl_);
  if (impl_->admin) impl_->admin->stop();
  if (impl_->link) impl_->link->stop();
  if (impl_->engine) {
    impl_->engine->stop();
    impl_->engine.reset();
  }
  if (impl_->aof) impl_->aof->shutdown();
}

}  // namespace respq::broker
