// packing: the binary pieces of respq's compact records (a packed task envelope in
// records.cpp, a packed attempt log in control.cpp), one copy for both. Header-only,
// internal to the tasks library. Readers take from the front of a view and say false
// on a short or malformed input.
//  - varint: LEB128, 7 bits a byte, low first;
//  - zigzag: a signed value as a varint-friendly unsigned one;
//  - double: its 8 bytes as in memory (records are read back by the same build);
//  - bytes: a varint length, then the bytes.
#pragma once

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

}  // namespace respq::tasks::packing
