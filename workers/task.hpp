// task: what one HTTP task says, decoded from the JSON a producer LPUSHes, plus the
// pure policy functions the broker uses to decide what happens after an attempt.
//
// Contract: everything here is a pure function of its arguments. decode_task and
// http_build_query never throw (they catch internally and report a decode_error or an
// empty result); nothing does I/O, nothing keeps state. The broker thread calls them; any
// thread may. This header pulls in neither asio nor curl, and only nlohmann's forward
// declarations, so the broker's core can include it cheaply; the .cpp uses libcurl's URL
// API (curl_url) to validate URLs.
//
// The JSON fields and their defaults are the task contract of the design (section 3):
// url, param, method, headers, body, json, timeout, retries, delay, at, id, callback,
// follow_redirects. Unknown fields are ignored, so producers may add their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace respq::workers {

// A decoded task. Headers keep the producer's order; the decoder adds the Content-Type
// that the body implies (form or JSON) unless the producer set one. It does not add
// X-Task-Id: the id may be empty here (the broker generates one), so the request
// builder (make_http_request) adds it.
struct task {
  std::string id;              // from "id"; empty: the broker generates one
  std::string method = "GET";  // GET POST PUT PATCH DELETE HEAD
  std::string url;             // final URL, param query string already appended
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  std::optional<double> timeout;  // seconds for the whole request; none: the queue's
  std::optional<int> retries;     // retries after the first attempt; none: the queue's
  std::optional<double> run_at;   // unix seconds; none: now
  std::string callback;           // URL receiving the outcome by POST; empty: none
  bool follow_redirects = false;
};

struct decode_error {
  std::string reason;  // one line, meant for the dead-letter outcome and the log
};

using decode_result = std::variant<task, decode_error>;

// Limits the decoder enforces (each violation is a decode_error naming it).
inline constexpr int max_json_depth = 512;  // PHP json_encode/json_decode's default
inline constexpr double max_timeout_s = 86400;
inline constexpr int max_retries = 1000;
inline constexpr std::size_t max_id_bytes = 256;

// Decodes one payload. `now` is the current unix time in seconds (for "delay").
// A payload that is not JSON but a bare string starting with http:// or https:// (also
// a JSON string holding such a URL) means GET that URL. Method defaults to GET, or to
// POST when "body" or "json" is given without a method.
decode_result decode_task(std::string_view payload, double now);

// PHP's http_build_query($data) with default arguments, byte for byte, for the value
// PHP's json_decode($json, true) gives: RFC 1738 encoding (space as '+', only
// [A-Za-z0-9-_.] kept), nested containers as a%5Bb%5D=c, lists as a%5B0%5D=x, true as 1,
// false as 0, null and empty containers skipped, floats printed like PHP's %.14G
// (precision=14: 0.1 -> 0.1, 1.0 -> 1, 1e15 -> 1.0E+15), integers beyond int64 as
// floats. A scalar argument gives "" (PHP would raise a TypeError). ordered_json keeps
// the producer's key order, as PHP arrays do; plain json iterates keys sorted.
// Containers nested deeper than max_json_depth are skipped.
std::string http_build_query(const nlohmann::ordered_json& data);
std::string http_build_query(const nlohmann::json& data);

// PHP's urlencode(): the per-string encoding http_build_query uses.
void php_urlencode(std::string_view in, std::string& out);

// ---- retry policy --------------------------------------------------------------------

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

template <typename Urbg>
double backoff_delay(int attempt, double min_s, double max_s, Urbg& rng) {
  // Map the generator's whole range onto [0, 1) without <random>'s distributions, whose
  // output differs between standard libraries.
  const double span = static_cast<double>(Urbg::max() - Urbg::min()) + 1.0;
  double u = static_cast<double>(rng() - Urbg::min()) / span;
  if (u >= 1.0) u = 0.0;
  return backoff_delay_at(attempt, min_s, max_s, u);
}

// The delay actually used for a retry: the backoff, or longer when the server asked for
// it with Retry-After, but never more than cap_s (a server must not park a task forever).
double retry_delay(double backoff_s, std::optional<double> retry_after_s, double cap_s);

// Parses a Retry-After header value into seconds from `now` (unix seconds): either
// delta-seconds (1*DIGIT) or an HTTP-date in any of the three forms RFC 9110 requires
// recipients to accept (IMF-fixdate, RFC 850, asctime). A date in the past gives 0.
// Surrounding whitespace is ignored; anything else gives nullopt.
std::optional<double> parse_retry_after(std::string_view header, double now);

}  // namespace respq::workers
