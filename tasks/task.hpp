// task: what one HTTP task says, decoded from the JSON a producer LPUSHes.
//
// Contract: pure functions of their arguments. decode_task and decode_element never
// throw (they catch internally and report a decode_error); nothing does I/O, nothing
// keeps state; any thread. URLs are checked by tasks/url.hpp (the rules of libcurl's URL
// parser, without libcurl).
//
// The JSON fields and their defaults are the task contract (README, "A task"): url,
// param, method, headers, body, json, timeout, retries, delay, at, id, callback,
// follow_redirects. Unknown fields are ignored, so producers may add their own.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace respq::tasks {

// A decoded task. Headers keep the producer's order; the decoder adds the Content-Type
// that the body implies (form or JSON) unless the producer set one. It does not add
// X-Task-Id: the id may be empty here (custody generates one), so the request builder
// (make_http_request) adds it.
struct task {
  std::string id;              // from "id"; empty: custody generates one
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
  std::string reason;  // one line, meant for the dead-letter record and the log
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

// One element taken from a queue, as both kinds of queue read it. A dead letter moved
// back into the queue (LMOVE Q:dead Q RIGHT LEFT) is unwrapped to its original payload
// and id, so a replay runs the task as the producer wrote it. The id is the task's own
// ("id"), or the dead letter's, or, for a task that does not decode, the producer's
// "id" when it has a usable one; empty when custody must generate one.
struct decoded_element {
  decode_result result;
  bool was_dead_letter = false;
  std::string unwrapped;  // the original payload when was_dead_letter
  std::string id;
  // The task's payload: the original one of a dead letter, else the element itself.
  std::string_view payload(std::string_view element) const { return was_dead_letter ? unwrapped : element; }
};
decoded_element decode_element(std::string_view element, double now);

// The "url" a payload names when it is a JSON object whose "url" is a string, whether or
// not the task is valid; "" otherwise. A refused task's outcome names it, so subscribers
// can tell which endpoint it was for.
std::string payload_url(std::string_view payload);

}  // namespace respq::tasks
