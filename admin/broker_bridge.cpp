// broker_bridge: see broker_bridge.hpp.
#include "admin/broker_bridge.hpp"

#include <charconv>

#include "broker/core/server.hpp"

namespace respq::admin {

std::string resp_reply::error() const {
  if (!is_error()) return {};
  std::string e = bytes.substr(1);
  const auto end = e.find("\r\n");
  if (end != std::string::npos) e.resize(end);
  return e;
}

std::optional<long long> resp_reply::integer() const {
  if (bytes.size() < 4 || bytes[0] != ':') return std::nullopt;
  long long v = 0;
  const char* end = bytes.data() + bytes.size() - 2;
  auto [p, ec] = std::from_chars(bytes.data() + 1, end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

broker_bridge::broker_bridge(core::server& s, post_fn post, std::chrono::milliseconds timeout)
    : s_(s), post_(std::move(post)), timeout_(timeout) {}

broker_bridge::~broker_bridge() = default;

std::optional<resp_reply> broker_bridge::command(std::vector<std::string> args) {
  return call([this, args = std::move(args)](core::server&) { return command_here(args); });
}

resp_reply broker_bridge::command_here(const std::vector<std::string>& args) {
  if (args.empty()) return {"-ERR empty command\r\n"};
  // The admin client: made on first use, made again when it was closed (CLIENT KILL, an
  // idle timeout, or replies withheld because the AOF failed mark it close_asap; it has
  // no connection, so nothing else frees it).
  core::client* c = client_id_ ? s_.find_client(client_id_) : nullptr;
  if (c && c->close_asap) {
    s_.on_disconnect(*c);
    c = nullptr;
  }
  if (!c) {
    std::string refusal;
    c = s_.accept_client("admin-http", "admin-http", -1, refusal);
    if (!c) return {refusal.empty() ? std::string("-ERR max number of clients reached\r\n") : refusal};
    c->authenticated = true;
    c->name = "respq-admin";
    c->parser.set_limits(s_.parser_limits(true));
    client_id_ = c->id;
  }
  std::vector<std::string_view> views(args.begin(), args.end());
  c->last_interaction = std::chrono::steady_clock::now();  // CLIENT LIST's idle, as a connection's
  c->out.clear();
  c->out_sent = 0;
  s_.dispatch(*c, std::span<const std::string_view>(views.data(), views.size()));
  if (c->blocked) {
    // Not a facility for blocking commands; and a command CLIENT PAUSE would hold is
    // refused rather than left waiting behind an HTTP request.
    const bool held = c->blocked->what == core::blocked_state::kind::postpone;
    s_.unblock_client(*c, !held);
    if (held) {
      c->out.clear();
      c->out_sent = 0;
      return {"-ERR clients are paused (CLIENT PAUSE): try again once the pause ends\r\n"};
    }
  }
  // The turn's effects go to the AOF (group commit) before the reply counts: the same
  // promise a RESP client gets. When they could not be written, before_write() dropped
  // this client's reply and marked it to be closed.
  const bool killed = c->close_asap;  // it killed itself (CLIENT KILL): its reply stands
  s_.before_write();
  resp_reply r;
  if (c->close_asap && !killed) r.bytes = "-ERR the change could not be persisted (see the log); it was not acknowledged\r\n";
  else r.bytes = std::move(c->out);
  c->out.clear();
  c->out_sent = 0;
  return r;
}

void broker_bridge::close_here() {
  if (core::client* c = client_id_ ? s_.find_client(client_id_) : nullptr) s_.on_disconnect(*c);
  client_id_ = 0;
}

}  // namespace respq::admin
