// Retry policy: which attempts retry, backoff bounds and jitter, Retry-After parsing.
#include <cmath>
#include <limits>
#include <random>

#include <catch2/catch.hpp>

#include "tasks/retry_policy.hpp"

using namespace respq::tasks;

namespace {

// A generator stuck at one end of its range, to hit the backoff bounds exactly.
struct fixed_rng {
  using result_type = std::uint32_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return 0xffffffffu; }
  result_type value;
  result_type operator()() { return value; }
};

}  // namespace

TEST_CASE("2xx is delivered, network errors, timeouts, 408, 425, 429 and 5xx retry, the rest fail",
          "[retry]") {
  for (long c : {200L, 201L, 202L, 204L, 299L})
    CHECK(classify_attempt(c, false) == attempt_outcome::delivered);
  for (long c : {408L, 425L, 429L, 500L, 502L, 503L, 504L, 599L}) {
    CHECK(classify_attempt(c, false) == attempt_outcome::retry);
    CHECK(is_retryable(c, false));
  }
  for (long c : {400L, 401L, 403L, 404L, 405L, 409L, 410L, 422L, 451L}) {
    CHECK(classify_attempt(c, false) == attempt_outcome::failed);
    CHECK_FALSE(is_retryable(c, false));
  }
  // Redirects not followed and informational codes are final answers, not successes.
  for (long c : {100L, 101L, 300L, 301L, 302L, 304L, 307L, 308L, 600L})
    CHECK(classify_attempt(c, false) == attempt_outcome::failed);
  // A transport error retries whatever code was seen before it.
  CHECK(classify_attempt(0, true) == attempt_outcome::retry);
  CHECK(classify_attempt(200, true) == attempt_outcome::retry);
  CHECK(classify_attempt(404, true) == attempt_outcome::retry);
  CHECK(classify_attempt(0, false) == attempt_outcome::retry);
}

TEST_CASE("backoff grows exponentially with full jitter inside [min, max]", "[retry]") {
  CHECK(backoff_delay_at(1, 1, 60, 0.0) == 1.0);
  CHECK(backoff_delay_at(1, 1, 60, 0.5) == 1.5);
  CHECK(backoff_delay_at(3, 1, 60, 0.5) == 4.5);  // uniform in [1, 8]
  CHECK(backoff_delay_at(3, 1, 60, 0.999999) == Approx(8.0).epsilon(1e-5));
  CHECK(backoff_delay_at(10, 1, 60, 0.5) == 30.5);  // capped by max
  CHECK(backoff_delay_at(1'000'000, 0.5, 300, 0.999) <= 300.0);
  CHECK(backoff_delay_at(0, 2, 60, 0.0) == 2.0);  // attempt < 1 counts as the first retry
  CHECK(backoff_delay_at(-5, 2, 60, 0.999) <= 4.0);
  CHECK(backoff_delay_at(3, 10, 5, 0.7) == 10.0);  // max below min: min
  CHECK(backoff_delay_at(3, -1, 5, 0.0) == 0.0);
  CHECK(backoff_delay_at(3, std::nan(""), 5, 0.5) >= 0.0);
  CHECK(backoff_delay_at(3, 1, 60, std::nan("")) == 1.0);
  CHECK(backoff_delay_at(3, 1, 60, 7.0) < 8.0);

  fixed_rng low{0}, high{0xffffffffu};
  CHECK(backoff_delay(4, 0.5, 100, low) == 0.5);
  CHECK(backoff_delay(4, 0.5, 100, high) == Approx(8.0).epsilon(1e-6));
  CHECK(backoff_delay(4, 0.5, 100, high) < 8.0);

  std::mt19937_64 rng(7);
  double sum = 0, lo = 1e9, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    const double d = backoff_delay(10, 1, 60, rng);
    REQUIRE(d >= 1.0);
    REQUIRE(d <= 60.0);
    sum += d, lo = std::min(lo, d), hi = std::max(hi, d);
  }
  CHECK(sum / 10000 == Approx(30.5).margin(1.5));  // uniform over [1, 60]
  CHECK(lo < 2.0);
  CHECK(hi > 59.0);
}

TEST_CASE("retry_delay honours Retry-After up to a cap", "[retry]") {
  CHECK(retry_delay(2, std::nullopt, 3600) == 2);
  CHECK(retry_delay(2, 30.0, 3600) == 30);
  CHECK(retry_delay(40, 30.0, 3600) == 40);
  CHECK(retry_delay(2, 1e9, 3600) == 3600);
  CHECK(retry_delay(-3, std::nullopt, 3600) == 0);
}

TEST_CASE("Retry-After accepts delta-seconds", "[retry-after]") {
  const double now = 1'700'000'000;
  CHECK(parse_retry_after("120", now) == 120.0);
  CHECK(parse_retry_after(" 5\t", now) == 5.0);
  CHECK(parse_retry_after("0", now) == 0.0);
  CHECK(parse_retry_after("007", now) == 7.0);
  CHECK(*parse_retry_after("99999999999999999999999", now) > 1e22);
  for (const char* bad : {"", "  ", "-5", "+5", "1.5", "5s", "abc", "5 5", "0x10", "\xff"})
    CHECK_FALSE(parse_retry_after(bad, now));
}

TEST_CASE("Retry-After accepts the three HTTP-date forms", "[retry-after]") {
  const double when = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", when - 10) == 10.0);
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", when - 10) == 10.0);
  CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", when - 10) == 10.0);
  CHECK(parse_retry_after("Sun Nov 16 08:49:37 1994", when) == 10 * 86400.0);
  CHECK(parse_retry_after("  Sun, 06 Nov 1994 08:49:37 GMT ", when - 1) == 1.0);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", when + 500) == 0.0);  // past: now
  CHECK(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 0) == 0.0);
  CHECK(parse_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", 1'835'395'200 - 60) == 60.0);
  CHECK(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0) == 253402300799.0);
  // RFC 850's two-digit year: more than 50 years ahead means the past century.
  const double in_2026 = 1'780'000'000;
  CHECK(parse_retry_after("Monday, 01-Jan-70 00:00:00 GMT", in_2026) == 3155760000.0 - in_2026);
  CHECK(parse_retry_after("Friday, 01-Jan-99 00:00:00 GMT", in_2026) == 0.0);

  for (const char* bad :
       {"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Tue, 29 Feb 2027 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "06 Nov 1994", "tomorrow"})
    CHECK_FALSE(parse_retry_after(bad, when));
}
