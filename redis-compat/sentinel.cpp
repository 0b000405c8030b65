// sentinel: see sentinel.hpp.
#include "redis-compat/sentinel.hpp"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <string_view>

#include "broker/core/log.hpp"
#include "redis-compat/upstream_connection.hpp"

namespace respq::redis_compat {

namespace {
constexpr double poll_every_s = 1.0;
constexpr double reply_timeout_s = 2.0;
}  // namespace

struct sentinel_watch::impl {
  impl(asio::io_context& i, std::vector<std::pair<std::string, int>> s, std::string m, std::string n)
      : io(i), sentinels(std::move(s)), master_name(std::move(m)), node_id(std::move(n)), poll_timer(i) {}

  asio::io_context& io;
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master_name, node_id;
  std::size_t current = 0;
  std::unique_ptr<upstream_connection> ask, sub;
  loop_timer poll_timer;
  bool asking = false, stopped = false;
  bool moving_on = false;  // this side dropped the connection to ask the next sentinel
  std::string master_host;
  int master_port = 0;
  std::uint64_t switches = 0;
  sentinel_watch* outer = nullptr;

  upstream_endpoint endpoint() const { return upstream_endpoint{sentinels[current].first, sentinels[current].second, {}, 0}; }

  void next_sentinel() {
    if (sentinels.size() < 2) return;
    current = (current + 1) % sentinels.size();
    ask->set_endpoint(endpoint());
    sub->set_endpoint(endpoint());
  }

  void report(std::string host, int port, const char* how) {
    if (host.empty() || port <= 0) return;
    if (host == master_host && port == master_port) return;
    const bool first = master_host.empty();
    if (!first) ++switches;
    core::log_notice("Sentinel " + sentinels[current].first + ":" + std::to_string(sentinels[current].second) + " " +
                     how + ": master '" + master_name + "' is " + host + ":" + std::to_string(port));
    master_host = std::move(host);
    master_port = port;
    if (outer && outer->on_master) outer->on_master(master_host, master_port);
  }

  void ask_master() {
    if (stopped || asking || !ask->ready()) return;
    asking = true;
    bool sent = ask->command({"SENTINEL", "get-master-addr-by-name", master_name}, [this](const redisReply* r) {
      asking = false;
      if (!r) return;  // on_lost moves on
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
          r->element[1]->type == REDIS_REPLY_STRING) {
        report(std::string(r->element[0]->str, r->element[0]->len), std::atoi(r->element[1]->str), "answers");
      } else if (r->type == REDIS_REPLY_ERROR) {
        core::log_warning("Sentinel " + sentinels[current].first + ":" + std::to_string(sentinels[current].second) +
                          ": " + std::string(r->str, r->len));
        if (sentinels.size() > 1) {
          moving_on = true;
          next_sentinel();
        }
      }
    });
    if (!sent) asking = false;
  }

  void poll() {
    ask_master();
    poll_timer.after(poll_every_s, [this] { poll(); });
  }

  // "+switch-master" message: "<name> <old ip> <old port> <new ip> <new port>".
  void on_message(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        std::string_view(r->element[0]->str, r->element[0]->len) != "message" ||
        r->element[2]->type != REDIS_REPLY_STRING)
      return;
    std::string_view text(r->element[2]->str, r->element[2]->len);
    std::vector<std::string> w;
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t j = text.find(' ', i);
      if (j == std::string_view::npos) j = text.size();
      if (j > i) w.emplace_back(text.substr(i, j - i));
      i = j + 1;
    }
    if (w.size() != 5 || w[0] != master_name) return;
    report(w[3], std::atoi(w[4].c_str()), "announces +switch-master");
  }
};

sentinel_watch::sentinel_watch(asio::io_context& io, std::vector<std::pair<std::string, int>> sentinels, std::string master_name,
                               std::string node_id)
    : impl_(std::make_unique<impl>(io, std::move(sentinels), std::move(master_name), std::move(node_id))) {
  impl_->outer = this;
}

sentinel_watch::~sentinel_watch() { stop(); }

void sentinel_watch::start() {
  auto& d = *impl_;
  if (d.sentinels.empty() || d.ask) return;
  d.ask = std::make_unique<upstream_connection>(d.io, d.endpoint(), "respq-sentinel:" + d.node_id, reply_timeout_s);
  d.sub = std::make_unique<upstream_connection>(d.io, d.endpoint(), "respq-sentinel-sub:" + d.node_id, reply_timeout_s);
  d.ask->on_ready = [&d] { d.ask_master(); };
  d.ask->on_lost = [&d](const std::string&) {
    d.asking = false;
    if (d.moving_on) d.moving_on = false;
    else d.next_sentinel();
  };
  d.sub->on_ready = [&d] {
    d.sub->subscribe("+switch-master", [&d](const redisReply* r) { d.on_message(r); });
  };
  d.ask->start();
  d.sub->start();
  d.poll_timer.after(poll_every_s, [&d] { d.poll(); });
}

void sentinel_watch::stop() {
  auto& d = *impl_;
  if (d.stopped) return;
  d.stopped = true;
  d.poll_timer.cancel();
  if (d.ask) d.ask->stop();
  if (d.sub) d.sub->stop();
}

std::string sentinel_watch::sentinel_address() const {
  const auto& d = *impl_;
  if (d.sentinels.empty()) return {};
  return d.sentinels[d.current].first + ":" + std::to_string(d.sentinels[d.current].second);
}
std::string sentinel_watch::status() const { return impl_->ask ? impl_->ask->status() : std::string("idle"); }
std::uint64_t sentinel_watch::switches() const { return impl_->switches; }
std::string sentinel_watch::master() const {
  return impl_->master_host.empty() ? std::string() : impl_->master_host + ":" + std::to_string(impl_->master_port);
}

}  // namespace respq::redis_compat
