// query: the query strings and form bodies of tasks' "param", encoded exactly as PHP's
// http_build_query($data) with default arguments encodes the value PHP's
// json_decode($json, true) gives: RFC 1738 encoding (space as '+', only [A-Za-z0-9-_.]
// kept), nested containers as a%5Bb%5D=c, lists as a%5B0%5D=x, true as 1, false as 0,
// null and empty containers skipped, floats printed like PHP's %.14G (precision=14:
// 0.1 -> 0.1, 1.0 -> 1, 1e15 -> 1.0E+15), integers beyond int64 as floats. A scalar
// argument gives "" (PHP would raise a TypeError). ordered_json keeps the producer's key
// order, as PHP arrays do; plain json iterates keys sorted. Containers nested deeper than
// max_query_depth are skipped.
//
// Pure functions that never throw (an allocation failure gives ""); any thread.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "tasks/json_view.hpp"

namespace respq::tasks {

inline constexpr int max_query_depth = 512;  // PHP json_encode/json_decode's default

std::string http_build_query(const nlohmann::ordered_json& data);
std::string http_build_query(const nlohmann::json& data);
// The decoder's path: a parsed payload's "param" value.
std::string http_build_query(const json_view::value& data);

// PHP's urlencode(): the per-string encoding http_build_query uses.
void php_urlencode(std::string_view in, std::string& out);

}  // namespace respq::tasks
