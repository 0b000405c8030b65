// callback_retries: which failed callbacks go again, when, how often, and how many wait.
#include <catch2/catch.hpp>

#include "tasks/callback_retries.hpp"
#include "tasks/http_request.hpp"

using namespace respq::tasks;

namespace {

http_result answer(long code, std::string error = {}) {
  http_result r;
  r.code = code;
  r.error = std::move(error);
  return r;
}

callback_retries::callback cb(const std::string& id) { return {id, "http://app/cb", R"({"id":")" + id + "\"}"}; }

}  // namespace

TEST_CASE("a callback that got no answer, a 429 or a 5xx goes again after the backoff", "[callback_retries]") {
  struct row {
    http_result res;
    callback_retries::verdict want;
  } rows[] = {
      {answer(200), callback_retries::verdict::delivered},
      {answer(204), callback_retries::verdict::delivered},
      {answer(0, "Failed to connect"), callback_retries::verdict::retry},
      {answer(500), callback_retries::verdict::retry},
      {answer(503), callback_retries::verdict::retry},
      {answer(429), callback_retries::verdict::retry},
      {answer(408), callback_retries::verdict::retry},
      {answer(404), callback_retries::verdict::failed},
      {answer(400), callback_retries::verdict::failed},
      {answer(301), callback_retries::verdict::failed},
  };
  for (const auto& r : rows) {
    INFO(r.res.code << " " << r.res.error);
    callback_retries c;
    CHECK(c.ended(cb("t"), r.res, 1000, 1, 300, 0.5) == r.want);
    CHECK(c.waiting() == (r.want == callback_retries::verdict::retry ? 1u : 0u));
    CHECK(c.failed() == (r.want == callback_retries::verdict::failed ? 1u : 0u));
  }
  SECTION("a `retrying` outcome's callback is not sent again: the next outcome follows it") {
    callback_retries c;
    auto x = cb("t");
    x.final = false;
    CHECK(c.ended(std::move(x), answer(503), 1000, 1, 300, 0.5) == callback_retries::verdict::failed);
    CHECK(c.waiting() == 0);
  }
  SECTION("the egress policy's refusal, a TLS failure and a refused redirect are final") {
    callback_retries c;
    auto denied = answer(0, "egress denied");
    denied.egress_denied = true;
    auto tls = answer(0, "TLS certificate");
    tls.tls_failed = true;
    auto redirect = answer(302);
    redirect.redirect_refused = true;
    for (const auto& r : {denied, tls, redirect}) CHECK(c.ended(cb("t"), r, 1000, 1, 300, 0.5) == callback_retries::verdict::failed);
    CHECK(c.failed() == 3);
  }
}

TEST_CASE("failed callbacks are due after their backoff, earliest first, at most max_attempts sends", "[callback_retries]") {
  callback_retries c;
  // u = 0.999: the backoff's upper bound, min(max, min * 2^attempts): 2 s after the first send.
  REQUIRE(c.ended(cb("a"), answer(500), 1000, 1, 300, 0.999) == callback_retries::verdict::retry);
  REQUIRE(c.ended(cb("b"), answer(500), 999, 1, 300, 0.0) == callback_retries::verdict::retry);
  REQUIRE(c.next_due());
  CHECK(*c.next_due() == Approx(1000.0));  // b: 999 + the lower bound, 1 s
  CHECK(c.due(999.5).empty());
  auto first = c.due(1000.5);
  REQUIRE(first.size() == 1);
  CHECK(first[0].task_id == "b");
  CHECK(first[0].attempts == 2);
  CHECK(first[0].body == R"({"id":"b"})");
  CHECK(*c.next_due() == Approx(1002.0).margin(0.01));
  CHECK(c.due(1003).size() == 1);
  CHECK_FALSE(c.next_due());
  CHECK(c.retried() == 2);

  SECTION("its last send's failure gives it up") {
    callback_retries::callback x = cb("x");
    int sends = 1;
    while (c.ended(std::move(x), answer(502), 2000, 1, 1, 0.5) == callback_retries::verdict::retry) {
      auto d = c.due(1e9);
      REQUIRE(d.size() == 1);
      x = std::move(d[0]);
      ++sends;
    }
    CHECK(sends == callback_retries::max_attempts);
    CHECK(c.failed() == 1);
  }
}

TEST_CASE("past max_waiting waiting callbacks a new failure is given up", "[callback_retries]") {
  callback_retries c;
  for (std::size_t i = 0; i < callback_retries::max_waiting; ++i)
    REQUIRE(c.ended(cb("t" + std::to_string(i)), answer(503), 1000, 60, 60, 0.5) == callback_retries::verdict::retry);
  CHECK(c.ended(cb("one more"), answer(503), 1000, 60, 60, 0.5) == callback_retries::verdict::failed);
  CHECK(c.waiting() == callback_retries::max_waiting);
  CHECK(c.failed() == 1);
  c.clear();
  CHECK(c.waiting() == 0);
}

TEST_CASE("the log's notice that callbacks were given up comes at most once a minute", "[callback_retries]") {
  callback_retries c;
  CHECK(c.notice_due(1000));
  CHECK_FALSE(c.notice_due(1030));
  CHECK_FALSE(c.notice_due(1059.9));
  CHECK(c.notice_due(1060));
}
