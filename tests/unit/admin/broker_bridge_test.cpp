// broker_bridge: a command run for the admin server goes through the normal command
// path of the core (keys, INFO commandstats, errors as RESP), as its own authenticated
// client even under requirepass; a closed admin client is replaced.
#include <catch2/catch.hpp>

#include "admin/broker_bridge.hpp"
#include "broker/core/figures.hpp"
#include "broker/core/server.hpp"

using namespace respq;

namespace {

// The broker thread, for a test: the posted function runs at once on the caller's thread.
admin::broker_bridge::post_fn inline_post() {
  return [](std::function<void()> fn) { fn(); };
}

std::uint64_t calls_of(core::server& s, const std::string& name) {
  for (const auto& c : core::commands_of(s))
    if (c.name == name) return c.calls;
  return 0;
}

}  // namespace

TEST_CASE("a command runs as the admin client and answers RESP", "[admin][bridge]") {
  core::config cfg;
  cfg.requirepass = "secret";
  cfg.queues.clear();
  core::server s(std::move(cfg));
  admin::broker_bridge bridge(s, inline_post());
  auto r = bridge.command({"LPUSH", "q", "a", "b"});
  REQUIRE(r);
  CHECK(r->bytes == ":2\r\n");
  CHECK(r->integer() == 2);
  CHECK(calls_of(s, "lpush") == 1);  // counted like any client's command
  r = bridge.command({"LRANGE", "q", "0", "-1"});
  REQUIRE(r);
  CHECK(r->bytes == "*2\r\n$1\r\nb\r\n$1\r\na\r\n");
  r = bridge.command({"SET", "q", "x", "BOGUS"});
  REQUIRE(r);
  CHECK(r->is_error());
  CHECK(r->error() == "ERR syntax error");
  CHECK(core::clients_of(s).connected == 1);  // one admin client, reused
}

TEST_CASE("call runs a function on the broker side and returns its value", "[admin][bridge]") {
  core::server s(core::config{});
  admin::broker_bridge bridge(s, inline_post());
  auto n = bridge.call([](core::server& srv) { return srv.db_count(); });
  REQUIRE(n);
  CHECK(*n == 16);
}

TEST_CASE("a call the broker never runs gives up after the timeout, at once after stop", "[admin][bridge]") {
  core::server s(core::config{});
  std::vector<std::function<void()>> never_run;
  admin::broker_bridge bridge(s, [&](std::function<void()> fn) { never_run.push_back(std::move(fn)); },
                              std::chrono::milliseconds(100));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(bridge.call([](core::server&) { return 1; }));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(100));
  bridge.stop();
  CHECK_FALSE(bridge.command({"PING"}));
  CHECK(never_run.size() == 1);  // after stop nothing more is posted
}

TEST_CASE("a killed admin client is replaced by a new one", "[admin][bridge]") {
  core::server s(core::config{});
  admin::broker_bridge bridge(s, inline_post());
  auto id = bridge.command({"CLIENT", "ID"});
  REQUIRE(id);
  REQUIRE(id->integer());
  // CLIENT KILL from another client (a client's own kill skips itself: SKIPME yes).
  std::string refusal;
  core::client* other = s.accept_client("127.0.0.1:40000", "127.0.0.1:6380", -1, refusal);
  REQUIRE(other);
  const std::string id_text = std::to_string(*id->integer());
  const std::string_view kill[] = {"CLIENT", "KILL", "ID", id_text};
  s.dispatch(*other, kill);
  CHECK(other->out == ":1\r\n");
  other->out.clear();
  auto again = bridge.command({"CLIENT", "ID"});
  REQUIRE(again);
  REQUIRE(again->integer());
  CHECK(*again->integer() != *id->integer());
  CHECK(core::clients_of(s).connected == 2);  // the other client and the new admin client
}
