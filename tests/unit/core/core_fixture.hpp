// A socket-free harness for the broker core: clients are core::client objects fed bytes
// directly, and replies are read from their output buffers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "broker/core/server.hpp"
#include "resp/reply_writer.hpp"

namespace respq::test {

inline std::string cmd(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::reply_writer::command(out, std::vector<std::string_view>(args));
  return out;
}

// Collects the bytes of the effects that persist (what the AOF would write).
struct capture_sink : core::stream_sink {
  std::string bytes;
  bool on_effects(std::string_view b, std::span<const core::effect_meta> effects) override {
    for (const auto& e : effects)
      if (e.persist) bytes.append(b.substr(e.offset, e.length));
    return true;
  }
};

struct fake_client {
  core::server& s;
  core::client* c;

  explicit fake_client(core::server& srv) : s(srv) {
    std::string refusal;
    c = s.accept_client("127.0.0.1:40000", "127.0.0.1:6380", -1, refusal);
  }
  // Sends raw bytes and returns what the server wrote back in this turn.
  std::string send_raw(std::string_view bytes) {
    char* p = c->in.prepare(bytes.size());
    std::copy(bytes.begin(), bytes.end(), p);
    c->in.commit(bytes.size());
    s.on_input(*c);
    s.before_write();
    return take();
  }
  std::string operator()(std::initializer_list<std::string_view> args) { return send_raw(cmd(args)); }
  // Output accumulated since the last call (replies written by other clients' actions).
  std::string take() {
    s.before_write();
    std::string out = c->out.substr(c->out_sent);
    c->out.clear();
    c->out_sent = 0;
    s.pending_writes().clear();
    c->queued_for_write = false;
    return out;
  }
  void disconnect() { s.on_disconnect(*c); }
};

}  // namespace respq::test
