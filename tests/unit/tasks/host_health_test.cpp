// host_health: the circuit breaker, the Retry-After hold and the adaptive cap of one
// destination host, driven by tables of (event, now) and the decisions expected.
#include <string>
#include <vector>
#include <catch2/catch.hpp>

#include "tasks/host_health.hpp"
#include "tasks/http_request.hpp"

using namespace respq::tasks;

namespace {

constexpr double t0 = 1'700'000'000.0;

http_result answer(long code, const char* retry_after = nullptr) {
  http_result r;
  r.code = code;
  if (retry_after) r.retry_after = retry_after;
  return r;
}

http_result transport(const char* error, bool timed_out = false) {
  http_result r;
  r.error = error;
  r.timed_out = timed_out;
  return r;
}

// One step of a scenario: at t0 + at, either start an attempt (expecting admit() to say
// `expect`), or end one with `signal`; then the state and cap expected.
struct step {
  enum kind { admit_start, admit_only, end } k;
  double at;
  host_signal signal = host_signal::clean;
  host_health::verdict expect = host_health::verdict::go;
  circuit_state state = circuit_state::closed;
  unsigned cap = 0;  // 0: not checked
  double hold = 0;   // for a hold: t0 + hold
};

void run(host_health& h, const host_limits& lim, const std::vector<step>& steps) {
  int i = 0;
  for (const auto& s : steps) {
    INFO("step " << i++ << " at +" << s.at);
    const double now = t0 + s.at;
    if (s.k == step::admit_start || s.k == step::admit_only) {
      const auto a = h.admit(now);
      CHECK(a.v == s.expect);
      if (s.k == step::admit_start && a.v == host_health::verdict::go) h.started(now);
    } else {
      h.ended(s.signal, now, lim, s.hold ? t0 + s.hold : 0, host_signal_name(s.signal));
    }
    CHECK(h.state() == s.state);
    if (s.cap) CHECK(h.cap() == s.cap);
  }
}

using V = host_health::verdict;
using C = circuit_state;
using S = host_signal;

}  // namespace

TEST_CASE("what an attempt's end says about its host", "[host_health]") {
  struct row {
    http_result r;
    host_signal s;
    double hold;  // expected hold_until - now, for a hold
  };
  const double now = 1'700'000'000.0;
  const row rows[] = {
      {answer(200), S::clean, 0},
      {answer(204), S::clean, 0},
      {answer(301), S::clean, 0},
      {answer(404), S::clean, 0},
      {answer(410), S::clean, 0},
      {answer(408), S::overload, 0},
      {answer(429), S::overload, 0},
      {answer(503), S::overload, 0},
      {answer(429, "7"), S::hold, 7},
      {answer(503, "2"), S::hold, 2},
      {answer(503, "0"), S::overload, 0},         // nothing to wait for
      {answer(429, "soon"), S::overload, 0},      // unreadable: ignored
      {answer(429, "99999999"), S::hold, 3600},  // capped at an hour, as the retry
      {answer(500, "5"), S::failure, 0},          // Retry-After only holds on 429 and 503
      {answer(502), S::failure, 0},
      {answer(599), S::failure, 0},
      {transport("Connection refused"), S::failure, 0},
      {transport("Timeout was reached", true), S::overload, 0},
  };
  for (const auto& row : rows) {
    INFO("code " << row.r.code << " error '" << row.r.error << "'");
    double hold = 0;
    CHECK(host_signal_of(row.r, now, hold) == row.s);
    if (row.s == S::hold) CHECK(hold == Approx(now + row.hold));
  }
  http_result denied = transport("egress denied: 127.0.0.2 port 80 (egress-deny 127.0.0.2/32)");
  denied.egress_denied = true;
  double hold = 0;
  CHECK(host_signal_of(denied, now, hold) == S::neutral);
  http_result refused = answer(302);
  refused.redirect_refused = true;
  refused.error = "Redirect to 'ftp://x/' refused";
  CHECK(host_signal_of(refused, now, hold) == S::neutral);
}

TEST_CASE("the host key of a URL: host:port, default ports, userinfo dropped", "[host_health]") {
  const std::pair<const char*, const char*> rows[] = {
      {"http://example.com/x", "example.com:80"},
      {"https://example.com/x", "example.com:443"},
      {"HTTPS://Example.COM:8443/x?y#z", "example.com:8443"},
      {"http://127.0.0.2:9000", "127.0.0.2:9000"},
      {"http://user:pw@127.0.0.1:81/a", "127.0.0.1:81"},
      {"http://[::1]:8080/x", "[::1]:8080"},
      {"https://[fe80::1]/", "[fe80::1]:443"},
      {"http://h?q", "h:80"},
      {"http:///x", ""},
      {"nourl", ""},
  };
  for (const auto& [url, key] : rows) {
    INFO(url);
    CHECK(host_key_of(url) == key);
  }
}

TEST_CASE("the circuit opens after failures-to-open consecutive failures, a probe half-opens it, success closes",
          "[host_health]") {
  host_limits lim;
  lim.failures_to_open = 3;
  lim.cooldown = 10;
  host_health h(4);
  run(h, lim,
      {
          {step::admit_start, 0, S::clean, V::go, C::closed},
          {step::end, 0.1, S::failure, V::go, C::closed},
          {step::admit_start, 0.2, S::clean, V::go, C::closed},
          {step::end, 0.3, S::clean, V::go, C::closed},  // a clean answer breaks the streak
          {step::admit_start, 1, S::clean, V::go, C::closed},
          {step::admit_start, 1, S::clean, V::go, C::closed},
          {step::admit_start, 1, S::clean, V::go, C::closed},
          {step::end, 1.1, S::failure, V::go, C::closed},
          {step::end, 1.2, S::failure, V::go, C::closed},
          {step::end, 1.3, S::failure, V::go, C::open},  // the third in a row: open until +11.3
          {step::admit_only, 1.3, S::clean, V::wait_until, C::open},
          {step::admit_only, 11.2, S::clean, V::wait_until, C::open},
          {step::admit_start, 11.3, S::clean, V::go, C::half_open},  // the probe
          {step::admit_only, 11.4, S::clean, V::wait_for_slot, C::half_open},  // one probe only
          {step::end, 12, S::failure, V::go, C::open},  // the probe failed: a new cool-down
          {step::admit_only, 21.9, S::clean, V::wait_until, C::open},
          {step::admit_start, 22, S::clean, V::go, C::half_open},
          {step::end, 22.5, S::clean, V::go, C::closed},  // the probe answered: closed
          {step::admit_start, 22.6, S::clean, V::go, C::closed},
      });
  const auto f = h.figures();
  CHECK(f.failures == 5);
  CHECK(f.opened == 2);
  CHECK(f.consecutive == 0);
  CHECK(f.last_error == "failure");
  CHECK(f.in_flight == 1);
  CHECK(f.attempts == 8);
}

TEST_CASE("an overload counts towards opening, a hold does not but keeps the host until its time", "[host_health]") {
  host_limits lim;
  lim.failures_to_open = 2;
  lim.cooldown = 5;
  host_health h(8);
  run(h, lim,
      {
          {step::admit_start, 0, S::clean, V::go, C::closed},
          {step::admit_start, 0, S::clean, V::go, C::closed},
          {step::admit_start, 0, S::clean, V::go, C::closed},
          {step::end, 0.1, S::hold, V::go, C::closed, 4, 3},  // held until +3; the cap halves
          {step::admit_only, 0.2, S::clean, V::wait_until, C::closed},
          {step::end, 0.2, S::hold, V::go, C::closed, 4, 2},  // an earlier hold does not shorten it
          {step::admit_only, 2.9, S::clean, V::wait_until, C::closed},
          {step::admit_start, 3, S::clean, V::go, C::closed},
          {step::end, 3.5, S::overload, V::go, C::closed, 2},  // a 429 without Retry-After
          {step::end, 3.6, S::overload, V::go, C::open, 2},   // second in a row: open (cap: once per 0.25 s)
          {step::admit_only, 8.5, S::clean, V::wait_until, C::open},
          {step::admit_start, 8.6, S::clean, V::go, C::half_open},
          {step::end, 8.7, S::hold, V::go, C::closed, 1, 20},  // the probe was answered: closed, held
          {step::admit_only, 19, S::clean, V::wait_until, C::closed},
          {step::admit_start, 20, S::clean, V::go, C::closed},
      });
  CHECK(h.admit(t0 + 20).v == V::wait_for_slot);  // cap 1, one in flight
  CHECK(h.figures().held == 3);
  CHECK(h.figures().held_until == Approx(t0 + 20));
}

TEST_CASE("a reset closes the circuit, ends the hold and restores the cap, keeping what is in flight", "[host_health]") {
  host_limits lim;
  lim.failures_to_open = 2;
  lim.cooldown = 60;
  host_health h(8);
  h.started(t0);
  h.started(t0);
  h.started(t0);
  h.ended(host_signal::overload, t0 + 0.1, lim);
  h.ended(host_signal::overload, t0 + 0.5, lim);  // open for a minute, the cap halved twice
  REQUIRE(h.state() == circuit_state::open);
  REQUIRE(h.cap() < 8);
  h.reset();
  CHECK(h.state() == circuit_state::closed);
  CHECK(h.cap() == 8);
  CHECK(h.admit(t0 + 1).v == host_health::verdict::go);
  CHECK(h.in_flight() == 1);
  CHECK(h.figures().opened == 1);  // the totals stay

  SECTION("a hold ends") {
    h.ended(host_signal::hold, t0 + 2, lim, t0 + 600);
    REQUIRE(h.admit(t0 + 3).v == host_health::verdict::wait_until);
    h.reset();
    CHECK(h.admit(t0 + 3).v == host_health::verdict::go);
  }
}

TEST_CASE("the cap: halves on overload (once per gap), grows by one per cap clean answers, within 1..per-host",
          "[host_health]") {
  host_limits lim;
  lim.failures_to_open = 0;  // never opens: only the cap is under test
  host_health h(8);
  CHECK(h.cap() == 8);
  double now = t0;
  auto end = [&](S s) {
    h.started(now);
    h.ended(s, now, lim);
  };
  end(S::overload);
  CHECK(h.cap() == 4);
  end(S::overload);  // the same instant: a burst of 429s is one sign
  CHECK(h.cap() == 4);
  now += aimd_decrease_gap_s;
  end(S::overload);
  CHECK(h.cap() == 2);
  now += 1;
  end(S::overload);
  now += 1;
  end(S::overload);
  CHECK(h.cap() == 1);  // never below 1
  CHECK(h.state() == C::closed);
  // Additive increase by 1/cap per clean answer: 1 -> 2 -> 2.5 -> 2.9 -> 3.24 ...
  end(S::clean);
  CHECK(h.cap() == 2);
  end(S::clean);
  end(S::clean);
  CHECK(h.cap() == 2);
  end(S::clean);
  CHECK(h.cap() == 3);
  for (int i = 0; i < 100; ++i) end(S::clean);
  CHECK(h.cap() == 8);  // never above per-host
  end(S::failure);      // a 500 is no overload: the cap stays
  CHECK(h.cap() == 8);
  end(S::neutral);
  CHECK(h.cap() == 8);
  h.set_max_cap(3);
  CHECK(h.cap() == 3);
  // Admission follows the cap.
  host_health g(2);
  CHECK(g.admit(now).v == V::go);
  g.started(now);
  g.started(now);
  CHECK(g.admit(now).v == V::wait_for_slot);
  g.ended(S::clean, now, lim);
  CHECK(g.admit(now).v == V::go);
}

TEST_CASE("a probe that never answers (forgotten) lets another go, and idle hosts can be dropped", "[host_health]") {
  host_limits lim;
  lim.failures_to_open = 1;
  lim.cooldown = 1;
  host_health h(2);
  CHECK(h.idle(t0));
  h.started(t0);
  h.ended(S::failure, t0, lim);
  CHECK(h.state() == C::open);
  CHECK_FALSE(h.idle(t0));
  h.started(t0 + 1);
  CHECK(h.state() == C::half_open);
  CHECK(h.admit(t0 + 1.5).v == V::wait_for_slot);
  h.forget(t0 + 2);
  CHECK(h.state() == C::open);
  CHECK(h.admit(t0 + 2).v == V::go);
  h.started(t0 + 2);
  h.ended(S::clean, t0 + 2.1, lim);
  CHECK(h.state() == C::closed);
  for (int i = 0; i < 4; ++i) {
    h.started(t0 + 3);
    h.ended(S::clean, t0 + 3, lim);
  }
  CHECK(h.idle(t0 + 3));
}

TEST_CASE("INFO hosts: a summary, then the busiest hosts first, bounded, last_error made safe", "[host_health]") {
  std::vector<host_figures> hosts(3);
  hosts[0].host = "a.example:80";
  hosts[0].queue = "q";
  hosts[0].cap = 32;
  hosts[0].max_cap = 32;
  hosts[1].host = "b.example:80";
  hosts[1].queue = "q";
  hosts[1].in_flight = 5;
  hosts[1].cap = 8;
  hosts[1].max_cap = 32;
  hosts[2].host = "127.0.0.2:9";
  hosts[2].queue = "q";
  hosts[2].waiting = 2;
  hosts[2].cap = 1;
  hosts[2].max_cap = 32;
  hosts[2].state = circuit_state::open;
  hosts[2].failures = 7;
  hosts[2].last_error = "Failed to connect, port 9: Connection refused\r\nx=y";
  hosts[2].held_until = t0 + 5;
  const std::string out = hosts_info(hosts, 2, t0);
  CHECK(out ==
        "hosts:count=3,open=1,half_open=0,held=1,shown=2\r\n"
        "host_0:addr=b.example:80,queue=q,in_flight=5,waiting=0,cap=8,max_cap=32,state=closed,failures=0,"
        "consecutive=0,opened=0,attempts=0,held_until=0,last_error=\r\n"
        "host_1:addr=127.0.0.2:9,queue=q,in_flight=0,waiting=2,cap=1,max_cap=32,state=open,failures=7,"
        "consecutive=0,opened=0,attempts=0,held_until=1700000005.000,"
        "last_error=Failed to connect; port 9: Connection refused  x y\r\n");
  CHECK(hosts_info({}, 10, t0) == "hosts:count=0,open=0,half_open=0,held=0,shown=0\r\n");
}

TEST_CASE("host-rate: at most n starts in any n / rate seconds, a sliding window", "[host_health]") {
  const host_limits lim;
  using v = host_health::verdict;
  SECTION("25 a second: 25 go at once, the 26th waits for the first's second to pass") {
    host_health h(1000, 25);
    for (int i = 0; i < 25; ++i) {
      REQUIRE(h.admit(t0 + i * 0.001).v == v::go);
      h.started(t0 + i * 0.001);
      h.ended(host_signal::clean, t0 + i * 0.001, lim);
    }
    auto a = h.admit(t0 + 0.5);
    CHECK(a.v == v::wait_until);
    CHECK(a.rate);
    CHECK(a.until == Approx(t0 + 1.0));
    CHECK_FALSE(h.idle(t0 + 0.5));  // the window still counts: not forgotten
    CHECK(h.turn_at(t0 + 0.5, 0) == Approx(t0 + 1.0));
    CHECK(h.turn_at(t0 + 0.5, 5) == Approx(t0 + 1.0 + 5 / 25.0));  // a step (1/25 s) per task ahead
    CHECK_FALSE(h.turn_at(t0 + 1.0, 5));  // it may go now
    CHECK(h.admit(t0 + 1.0).v == v::go);
    h.started(t0 + 1.0);
    // The second start (t0 + 0.001) leaves the window next.
    a = h.admit(t0 + 1.0005);
    CHECK(a.v == v::wait_until);
    CHECK(a.until == Approx(t0 + 1.001));
  }
  SECTION("0.5 a second: one in any 2 s") {
    host_health h(8, 0.5);
    REQUIRE(h.admit(t0).v == v::go);
    h.started(t0);
    h.ended(host_signal::clean, t0 + 0.1, lim);
    auto a = h.admit(t0 + 1.9);
    CHECK((a.v == v::wait_until && a.rate && a.until == Approx(t0 + 2.0)));
    CHECK(h.admit(t0 + 2.0).v == v::go);
    CHECK(h.idle(t0 + 2.0));
  }
  SECTION("2.5 a second: two in any 0.8 s") {
    host_health h(8, 2.5);
    h.started(t0);
    h.started(t0 + 0.1);
    auto a = h.admit(t0 + 0.2);
    CHECK((a.v == v::wait_until && a.until == Approx(t0 + 0.8)));
  }
  SECTION("the cap and the circuit come first; a reset keeps the window; set_rate(0) lifts it") {
    host_health h(1, 1);
    h.started(t0);
    CHECK(h.admit(t0 + 0.1).v == v::wait_for_slot);  // at the cap of 1
    h.ended(host_signal::clean, t0 + 0.2, lim);
    CHECK(h.admit(t0 + 0.3).rate);
    h.reset();
    CHECK(h.admit(t0 + 0.3).rate);
    h.set_rate(0);
    CHECK(h.admit(t0 + 0.3).v == v::go);
    h.set_rate(1);  // back on: the start at t0 is not remembered once lifted
    CHECK(h.admit(t0 + 0.3).v == v::go);
  }
  SECTION("a steady stream over many windows never has more than n in a window") {
    host_health h(1000, 3);
    std::vector<double> started;
    double now = t0;
    while (started.size() < 50) {
      const auto a = h.admit(now);
      if (a.v == v::go) {
        h.started(now);
        started.push_back(now);
        h.ended(host_signal::clean, now, lim);
      } else {
        REQUIRE(a.v == v::wait_until);
        REQUIRE(a.until > now);
        now = a.until;
        continue;
      }
      now += 0.05;
    }
    for (std::size_t i = 3; i < started.size(); ++i) CHECK(started[i] - started[i - 3] >= 1.0 - 1e-9);
    CHECK(started.back() - started.front() < 17.0);  // no slower than the rate either
  }
  SECTION("a new rate keeps the newest starts") {
    host_health h(1000, 4);
    for (int i = 0; i < 4; ++i) h.started(t0 + i * 0.1);
    h.set_rate(2);  // the two newest (t0 + 0.2, t0 + 0.3): the next at t0 + 1.2
    auto a = h.admit(t0 + 0.5);
    CHECK((a.v == v::wait_until && a.until == Approx(t0 + 1.2)));
    h.set_rate(8);  // room for four more
    CHECK(h.admit(t0 + 0.5).v == v::go);
  }
  SECTION("the probe of an open circuit waits for the rate too") {
    host_limits one;
    one.failures_to_open = 1;
    one.cooldown = 1;
    host_health h(8, 0.1);  // one in any 10 s
    h.started(t0);
    h.ended(host_signal::failure, t0 + 0.1, one);
    REQUIRE(h.state() == circuit_state::open);
    auto a = h.admit(t0 + 2);  // the cool-down is over, the rate's window is not
    CHECK((a.v == v::wait_until && a.rate && a.until == Approx(t0 + 10)));
    CHECK(h.admit(t0 + 10).v == v::go);
  }
  SECTION("below the lowest rate, the lowest") {
    host_health h(8, 1e-12);
    h.started(t0);
    CHECK(h.admit(t0 + 1).until == Approx(t0 + 1000));
    CHECK(h.rate_step() == Approx(1000));
  }
  SECTION("no rate: never a wait on its account") {
    host_health h(100, 0);
    for (int i = 0; i < 100; ++i) {
      REQUIRE(h.admit(t0).v == v::go);
      h.started(t0);
      h.ended(host_signal::clean, t0, lim);
    }
    CHECK(h.admit(t0).v == v::go);
    CHECK(h.idle(t0));
  }
}
