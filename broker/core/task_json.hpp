// Small JSON helpers for the task lifecycle: writing JSON by hand on the hot path
// (envelopes, outcomes) without building nlohmann trees, and carrying a producer's
// payload bytes untouched (as a JSON string, or base64 when they are not UTF-8).
#pragma once

#include <string>
#include <string_view>

namespace respq::core {

bool valid_utf8(std::string_view s);
std::string base64_encode(std::string_view in);
std::string base64_decode(std::string_view in);
// Appends s as a JSON string literal; s must be valid UTF-8.
void append_json_string(std::string& out, std::string_view s);
// Appends "payload":"..." or, for bytes that are not UTF-8, "payload_b64":"...".
void append_payload_field(std::string& out, std::string_view payload);
// A number for JSON with at most 3 decimals and no trailing zeros.
std::string json_number(double d);

// The outcome of a task, as PUBLISHed on <queue>:results and POSTed to callbacks. Text
// fields that are not UTF-8 are replaced ("(binary)", or empty for the URL); next_run is
// written when positive, node when not empty (shared queues name the sidecar), and
// "truncated":true when the response body went past the read limit (the rest was not read).
struct outcome_fields {
  std::string_view id, queue, url, status, error, node;
  long code = 0;
  int attempts = 0;
  double duration_ms = 0, next_run = 0;
  bool truncated = false;
};
std::string outcome_json(const outcome_fields& f);

// The record a dead task leaves in <queue>:dead: the producer's payload untouched plus why
// (reason, attempts, last HTTP code and error, failed_at in unix seconds).
struct dead_fields {
  std::string_view id, queue, reason, error, payload;
  int attempts = 0;
  long code = 0;
  double failed_at = 0;
};
std::string dead_record_json(const dead_fields& f);

}  // namespace respq::core
