// task_json: see task_json.hpp.
#include "broker/core/task_json.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "workers/json_view.hpp"

namespace respq::core {

bool valid_utf8(std::string_view s) {
  std::size_t i = 0, n = s.size();
  while (i < n) {
    // ASCII eight bytes at a time: task payloads are mostly ASCII JSON.
    while (i + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    if ((c & 0xE0) == 0xC0 && c >= 0xC2) len = 2;
    else if ((c & 0xF0) == 0xE0) len = 3;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4) len = 4;
    else return false;
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (len == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return false;
    if (len == 4 && ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))) return false;
    i += len;
  }
  return true;
}

std::string base64_encode(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16) |
                 (static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < in.size() ? tbl[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(std::string_view in) {
  auto val = [](char ch) -> int {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char ch : in) {
    int v = val(ch);
    if (v < 0) continue;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) { workers::json_view::append_string(out, s); }

void append_payload_field(std::string& out, std::string_view payload) {
  if (valid_utf8(payload)) {
    out += "\"payload\":";
    append_json_string(out, payload);
  } else {
    out += "\"payload_b64\":\"";
    out += base64_encode(payload);
    out += '"';
  }
}

std::string json_number(double d) {
  char buf[400];  // "%.3f" of the largest double fits
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 3);
  std::string s(buf, ec == std::errc() ? end : buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty() || s == "-") s = "0";
  return s;
}

namespace {

std::string_view text_or(std::string_view s, std::string_view fallback) { return valid_utf8(s) ? s : fallback; }

}  // namespace

std::string outcome_json(const outcome_fields& f) {
  std::string o;
  o.reserve(256);
  o += "{\"id\":";
  append_json_string(o, f.id);
  o += ",\"queue\":";
  append_json_string(o, f.queue);
  o += ",\"url\":";
  append_json_string(o, text_or(f.url, ""));
  o += ",\"status\":\"";
  o += f.status;
  o += "\",\"code\":";
  o += std::to_string(f.code);
  o += ",\"attempts\":";
  o += std::to_string(f.attempts);
  o += ",\"duration_ms\":";
  o += json_number(f.duration_ms);
  o += ",\"error\":";
  append_json_string(o, text_or(f.error, "(binary)"));
  if (f.next_run > 0) {
    o += ",\"next_run\":";
    o += json_number(f.next_run);
  }
  if (!f.node.empty()) {
    o += ",\"node\":";
    append_json_string(o, text_or(f.node, ""));
  }
  if (f.truncated) o += ",\"truncated\":true";
  o += '}';
  return o;
}

std::string dead_record_json(const dead_fields& f) {
  std::string d;
  d.reserve(f.payload.size() + 256);
  d += "{\"id\":";
  append_json_string(d, f.id);
  d += ",\"queue\":";
  append_json_string(d, f.queue);
  d += ",\"reason\":";
  append_json_string(d, text_or(f.reason, "(binary)"));
  d += ",\"attempts\":";
  d += std::to_string(f.attempts);
  d += ",\"code\":";
  d += std::to_string(f.code);
  d += ",\"error\":";
  append_json_string(d, text_or(f.error, "(binary)"));
  d += ",\"failed_at\":";
  d += json_number(f.failed_at);
  d += ',';
  append_payload_field(d, f.payload);
  d += '}';
  return d;
}

}  // namespace respq::core
