// retry_policy: what an attempt's answer means (delivered, retry, final), how long to wait
// before the next attempt (exponential backoff with full jitter), and what a server's
// Retry-After asks for (seconds or an HTTP date) within a cap.
//
// Pure functions of their arguments; no state, no I/O, any thread. lifecycle.hpp puts
// them together into the one decision both kinds of queue use.
#pragma once

#include <optional>
#include <string_view>

namespace respq::tasks {

enum class attempt_outcome {
  delivered,  // 2xx
  retry,      // transport error, timeout, 408, 425, 429, 5xx
  failed,     // any other code: other 4xx, and 1xx/3xx (redirects are only followed
              // when the task asks, so a 3xx left over is the final answer)
};

// code: the HTTP status (0 when no response); transport_error: the attempt failed below
// HTTP (connect, TLS, timeout, reset). A transport error always retries, whatever code
// was seen before it failed.
attempt_outcome classify_attempt(long code, bool transport_error);
inline bool is_retryable(long code, bool transport_error) {
  return classify_attempt(code, transport_error) == attempt_outcome::retry;
}

// Backoff before retry number `attempt` (1 = the first retry): exponential with full
// jitter, uniform in [min_s, min(max_s, min_s * 2^attempt)]. Always within [min_s, max_s]
// (min_s below 0 counts as 0; max_s below min_s counts as min_s). `u` is uniform in
// [0, 1); the template below draws it from any uniform random bit generator.
double backoff_delay_at(int attempt, double min_s, double max_s, double u);

// A draw uniform in [0, 1) from any uniform random bit generator, without <random>'s
// distributions, whose output differs between standard libraries.
template <typename Urbg>
double uniform01(Urbg& rng) {
  const double span = static_cast<double>(Urbg::max() - Urbg::min()) + 1.0;
  double u = static_cast<double>(rng() - Urbg::min()) / span;
  return u >= 1.0 ? 0.0 : u;
}

template <typename Urbg>
double backoff_delay(int attempt, double min_s, double max_s, Urbg& rng) {
  return backoff_delay_at(attempt, min_s, max_s, uniform01(rng));
}

// The longest a server's Retry-After may park a task when the queue's backoff-max is
// shorter: a server must not park a task forever.
inline constexpr double retry_after_cap_s = 3600;

// The delay actually used for a retry: the backoff, or longer when the server asked for
// it with Retry-After, but never more than cap_s.
double retry_delay(double backoff_s, std::optional<double> retry_after_s, double cap_s);

// Parses a Retry-After header value into seconds from `now` (unix seconds): either
// delta-seconds (1*DIGIT) or an HTTP-date in any of the three forms RFC 9110 requires
// recipients to accept (IMF-fixdate, RFC 850, asctime). A date in the past gives 0.
// Surrounding whitespace is ignored; anything else (a negative number, a fraction,
// garbage) gives nullopt.
std::optional<double> parse_retry_after(std::string_view header, double now);

}  // namespace respq::tasks
