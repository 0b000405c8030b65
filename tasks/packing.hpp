// packing: the binary pieces of respq's compact records (a packed task envelope in
// records.cpp, a packed attempt log in control.cpp), one copy for both. Header-only,
// internal to the tasks library. Readers take from the front of a view and say false
// on a short or malformed input.
//  - varint: LEB128, 7 bits a byte, low first;
//  - zigzag: a signed value as a varint-friendly unsigned one;
//  - double: its 8 bytes as in memory (records are read back by the same build);
//  - bytes: a varint length, then the bytes;
//  - thousandths: a time or duration shown to 3 decimals (started_at in seconds,
//    duration_ms in ms) as the integer count of thousandths its JSON shows, read back
//    as the double nearest that decimal (to_thousandths; the attempt log in control.cpp
//    stores differences of them);
//  - time: a unix time in seconds (next_run) in thousandths from the process's start
//    time (a zigzag varint of the difference, plus 1, times 2; 0 is the time 0; a value
//    with no thousandths form, negative or huge, as varint 1 then its 8 bytes): a time
//    an hour ahead takes 4 bytes instead of 8. Records never leave the process;
//  - text: an attempt's error as bytes: a varint of its length times 2, plus 1 when
//    coded. Coded, every byte below 0x20 stands for something: 1 to 23 the phrases
//    delivery errors are made of ("Failed to connect to ", ": Connection refused", ...),
//    24 a decimal number of 3 to 19 digits (a varint follows), 25 an IPv4 address (its 4
//    bytes follow). A text that has such bytes itself is kept as is. A task waiting for
//    its retry keeps its last error this way: "Failed to connect to 127.0.0.1 port
//    44381: Connection refused" takes 13 bytes instead of 62.
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

namespace respq::tasks::packing {

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

inline bool get_varint(std::string_view& in, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

inline std::uint64_t zigzag(long long v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline long long unzigzag(std::uint64_t v) { return static_cast<long long>(v >> 1) ^ -static_cast<long long>(v & 1); }

inline void put_double(std::string& out, double d) {
  char b[sizeof d];
  std::memcpy(b, &d, sizeof d);
  out.append(b, sizeof d);
}

inline bool get_double(std::string_view& in, double& d) {
  if (in.size() < sizeof d) return false;
  std::memcpy(&d, in.data(), sizeof d);
  in.remove_prefix(sizeof d);
  return true;
}

inline void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out += s;
}

inline bool get_bytes(std::string_view& in, std::string_view& s) {
  std::uint64_t n;
  if (!get_varint(in, n) || n > in.size()) return false;
  s = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

// False for a value with no such form: negative (-0 included: its JSON shows "-0"), not
// finite, or 1e12 and above once shown (exact to the thousandth below that).
inline bool to_thousandths(double v, std::uint64_t& n) {
  if (!(v >= 0 && v < 1e12) || std::signbit(v)) return false;
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
  if (ec != std::errc()) return false;
  n = 0;
  for (const char* c = buf; c != end; ++c)
    if (*c != '.') n = n * 10 + static_cast<std::uint64_t>(*c - '0');
  return n < 1'000'000'000'000'000ull;  // v just under 1e12 shows as 1e12
}

// The process's epoch for times, in thousandths of a second (fixed at its first use).
inline std::uint64_t time_epoch() {
  static const std::uint64_t epoch = [] {
    std::uint64_t n = 0;
    to_thousandths(static_cast<double>(std::time(nullptr)), n);
    return n;
  }();
  return epoch;
}

inline void put_time(std::string& out, double v) {
  if (v == 0 && !std::signbit(v)) {
    put_varint(out, 0);
    return;
  }
  if (std::uint64_t n; to_thousandths(v, n)) {
    put_varint(out, (zigzag(static_cast<long long>(n - time_epoch())) + 1) << 1);
    return;
  }
  put_varint(out, 1);
  put_double(out, v);
}

inline bool get_time(std::string_view& in, double& v) {
  std::uint64_t h;
  if (!get_varint(in, h)) return false;
  if (h == 1) return get_double(in, v);
  if (h & 1) return false;
  v = h == 0 ? 0.0 : static_cast<double>(time_epoch() + static_cast<std::uint64_t>(unzigzag((h >> 1) - 1))) / 1000.0;
  return true;
}

// The phrases of `text`: byte i + 1 stands for text_phrases[i]. Appending is fine;
// changing or reordering one changes what records written by this build read back as,
// and records are only read back by the same build (they live in memory).
inline constexpr std::array<std::string_view, 23> text_phrases{
    "Failed to connect to ", " port ", ": Connection refused", "Operation timed out after ",
    " milliseconds with ", " bytes received", "Could not resolve host: ", "Empty reply from server",
    "Recv failure: ", "Send failure: ", "Connection reset by peer", ": Connection timed out",
    ": No route to host", ": Network is unreachable", "Transferred a partial file", "egress denied: ",
    "TLS handshake refused: ", "TLS peer verification failed: ", "HTTP/2 stream ", " was not closed cleanly: ",
    "REFUSED_STREAM", "Redirect refused: ", "SSL certificate problem: "};
inline constexpr unsigned char text_number = text_phrases.size() + 1, text_ipv4 = text_phrases.size() + 2;
static_assert(text_ipv4 < 0x20);

namespace detail {

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The digits at the front of s (at most `max`), as a number; false when none, more than
// `max`, or a leading zero in a number of more than one digit (not shown that way).
inline bool canonical_number(std::string_view s, std::size_t max, std::size_t& len, std::uint64_t& v) {
  len = 0;
  while (len < s.size() && is_digit(s[len])) ++len;
  if (len == 0 || len > max || (len > 1 && s[0] == '0')) return false;
  v = 0;
  for (std::size_t i = 0; i < len; ++i) v = v * 10 + static_cast<std::uint64_t>(s[i] - '0');
  return true;
}

// An IPv4 address at the front of s as shown (four numbers 0 to 255, no leading zeros).
inline std::size_t ipv4_at(std::string_view s, unsigned char (&b)[4]) {
  std::size_t at = 0;
  for (int k = 0; k < 4; ++k) {
    if (k > 0) {
      if (at >= s.size() || s[at] != '.') return 0;
      ++at;
    }
    std::size_t len;
    std::uint64_t v;
    if (!canonical_number(s.substr(at), 3, len, v) || v > 255) return 0;
    b[k] = static_cast<unsigned char>(v);
    at += len;
  }
  return at;
}

}  // namespace detail

inline void put_text(std::string& out, std::string_view s) {
  std::string coded;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20) {  // not codable: as is
      put_varint(out, s.size() << 1);
      out += s;
      return;
    }
    if (detail::is_digit(s[i])) {
      unsigned char ip[4];
      std::size_t len;
      std::uint64_t v;
      if (const std::size_t n = detail::ipv4_at(s.substr(i), ip); n != 0) {
        coded += static_cast<char>(text_ipv4);
        coded.append(reinterpret_cast<const char*>(ip), 4);
        i += n;
        continue;
      }
      if (detail::canonical_number(s.substr(i), 19, len, v) && len >= 3) {
        coded += static_cast<char>(text_number);
        put_varint(coded, v);
        i += len;
        continue;
      }
      coded += s[i++];
      continue;
    }
    std::size_t best = 0, best_len = 0;
    for (std::size_t k = 0; k < text_phrases.size(); ++k)
      if (text_phrases[k].size() > best_len && s.substr(i).starts_with(text_phrases[k])) {
        best = k;
        best_len = text_phrases[k].size();
      }
    if (best_len > 1) {
      coded += static_cast<char>(best + 1);
      i += best_len;
    } else {
      coded += s[i++];
    }
  }
  put_varint(out, coded.size() << 1 | (s.empty() ? 0 : 1));
  out += coded;
}

inline bool get_text(std::string_view& in, std::string& s) {
  std::uint64_t h;
  if (!get_varint(in, h) || (h >> 1) > in.size()) return false;
  std::string_view body = in.substr(0, h >> 1);
  in.remove_prefix(h >> 1);
  s.clear();
  if (!(h & 1)) {
    s.assign(body);
    return true;
  }
  while (!body.empty()) {
    const auto c = static_cast<unsigned char>(body.front());
    body.remove_prefix(1);
    if (c >= 0x20) {
      s += static_cast<char>(c);
    } else if (c >= 1 && c <= text_phrases.size()) {
      s += text_phrases[c - 1];
    } else if (c == text_number) {
      std::uint64_t v;
      if (!get_varint(body, v)) return false;
      s += std::to_string(v);
    } else if (c == text_ipv4) {
      if (body.size() < 4) return false;
      for (int k = 0; k < 4; ++k) {
        if (k > 0) s += '.';
        s += std::to_string(static_cast<unsigned char>(body[static_cast<std::size_t>(k)]));
      }
      body.remove_prefix(4);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace respq::tasks::packing
