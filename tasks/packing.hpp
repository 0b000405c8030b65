// packing: the binary pieces of respq's compact records (a packed task envelope in
// records.cpp, a packed attempt log in control.cpp), one copy for both. Header-only,
// internal to the tasks library. Readers take from the front of a view and say false
// on a short or malformed input.
//  - varint: LEB128, 7 bits a byte, low first;
//  - zigzag: a signed value as a varint-friendly unsigned one;
//  - double: its 8 bytes as in memory (records are read back by the same build);
//  - bytes: a varint length, then the bytes;
//  - text: an attempt's error as bytes, the phrases delivery errors are made of ("Failed
//    to connect to ", ": Connection refused", ...) a byte each: after a first byte 1 every
//    byte below 0x20 is a phrase; a first byte 0 keeps the rest as is (a text that has
//    such bytes itself); the empty text is no byte at all. A task waiting for its retry
//    keeps its last error this way: "Failed to connect to 127.0.0.1 port 8080:
//    Connection refused" takes 17 bytes instead of 62.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
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

inline void put_text(std::string& out, std::string_view s) {
  if (s.empty()) {
    put_bytes(out, s);
    return;
  }
  std::string coded(1, '\1');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20) {  // not codable: as is
      coded.assign(1, '\0');
      coded += s;
      break;
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
  put_bytes(out, coded);
}

inline bool get_text(std::string_view& in, std::string& s) {
  std::string_view coded;
  if (!get_bytes(in, coded)) return false;
  s.clear();
  if (coded.empty()) return true;
  const char form = coded.front();
  coded.remove_prefix(1);
  if (form == '\0') {
    s.assign(coded);
    return true;
  }
  if (form != '\1') return false;
  for (const char ch : coded) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20) {
      s += ch;
    } else if (c >= 1 && c <= text_phrases.size()) {
      s += text_phrases[c - 1];
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace respq::tasks::packing
