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

}  // namespace respq::core
