// The text rules every library shares, header-only so that any of them (resp, tasks,
// workers, the broker, the Redis link) uses the one copy without a link dependency:
//  - iequals: ASCII case-insensitive equality (command names, options, HTTP header names,
//    URL schemes); locale-free, unlike strcasecmp.
//  - hex_digit: the value of a hexadecimal digit in either case, or -1 (escapes: %XX in
//    paths, \uXXXX in JSON, \xHH in config lines).
//  - string2ll: Redis's string2ll, the strict integer every Redis argument and RESP length
//    is read with: an optional '-', no '+', no spaces, no leading zeros ("0" alone is
//    fine, "-0" is not), at most 20 characters, and the value fits a long long.
#pragma once

#include <charconv>
#include <cstddef>
#include <string_view>

namespace respq {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

constexpr int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool string2ll(std::string_view s, long long& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    out = 0;
    return true;
  }
  const std::size_t first = s[0] == '-' ? 1 : 0;
  if (first >= s.size() || s[first] < '1' || s[first] > '9') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace respq
