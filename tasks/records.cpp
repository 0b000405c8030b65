// records: see records.hpp.
#include "tasks/records.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>

#include <nlohmann/json.hpp>

#include "tasks/http_request.hpp"
#include "tasks/json_view.hpp"
#include "tasks/packing.hpp"
#include "tasks/url.hpp"

namespace respq::tasks {

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

namespace {

int base64_value(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

// Decodes into out; a byte outside the alphabet is skipped, or with `strict` ends the
// decoding with false.
bool base64_decode_into(std::string_view in, std::string& out, bool strict) {
  out.clear();
  unsigned buf = 0;
  int bits = 0;
  for (char ch : in) {
    const int v = base64_value(ch);
    if (v < 0) {
      if (strict) return false;
      continue;
    }
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return true;
}

}  // namespace

std::string base64_decode(std::string_view in) {
  std::string out;
  base64_decode_into(in, out, false);
  return out;
}

bool base64_decode_strict(std::string_view text, std::string& out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    out.clear();
    return false;
  }
  return base64_decode_into(text, out, true);
}

void append_json_string(std::string& out, std::string_view s) { json_view::append_string(out, s); }

// "<name>":"<bytes>" when they are UTF-8 text, else "<name>_b64":"<their base64>".
void append_bytes_field(std::string& out, std::string_view name, std::string_view bytes) {
  out += '"';
  out += name;
  if (valid_utf8(bytes)) {
    out += "\":";
    append_json_string(out, bytes);
  } else {
    out += "_b64\":\"";
    out += base64_encode(bytes);
    out += '"';
  }
}

void append_payload_field(std::string& out, std::string_view payload) { append_bytes_field(out, "payload", payload); }

// The start of a failing answer's body (what the engine read: up to response_read_bytes);
// nothing for none. Past response_kept_bytes it ends at the last character's start at or
// before that length (the bytes read beyond tell where that is), so a character is not
// cut; when that start is no UTF-8 text, the first response_kept_bytes go as base64.
void append_response_field(std::string& out, std::string_view body) {
  if (body.empty()) return;
  out += ',';
  if (body.size() <= response_kept_bytes) {
    append_bytes_field(out, "response", body);
    return;
  }
  // A whole character that crosses the length (its lead byte among the last three kept,
  // announcing more bytes than are left there) ends the text at its start.
  std::size_t end = response_kept_bytes;
  for (std::size_t back = 1; back <= 3; ++back) {
    const auto b = static_cast<unsigned char>(body[end - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: its lead is further back
    const std::size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (len > back && end - back + len <= body.size() && valid_utf8(body.substr(end - back, len))) end -= back;
    break;
  }
  const std::string_view text = body.substr(0, end);
  append_bytes_field(out, "response", valid_utf8(text) ? text : body.substr(0, response_kept_bytes));
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

// Error texts and reasons may quote a URL (a redirect's target, libcurl's messages):
// shown without credentials. Most have none, and cost one scan.
void append_redacted_text(std::string& out, std::string_view s) {
  s = text_or(s, "(binary)");
  if (s.find('@') == std::string_view::npos) {
    append_json_string(out, s);
    return;
  }
  append_json_string(out, redact_urls_in(s));
}

}  // namespace

// ---- in-flight envelope ------------------------------------------------------------------

const char* state_name(custody_state s) {
  switch (s) {
    case custody_state::in_flight: return "in_flight";
    case custody_state::retrying: return "retrying";
    case custody_state::scheduled: return "scheduled";
  }
  return "in_flight";
}

std::string envelope_json(const envelope_fields& f) {
  std::string e;
  // The fixed fields take about 150 bytes; a JSON payload's quotes are escaped. Enough
  // room up front, so the record is not regrown to twice its size on the way.
  e.reserve(f.payload.size() + f.payload.size() / 4 + f.id.size() + f.queue.size() + f.last_error.size() + 160);
  e += "{\"id\":";
  append_json_string(e, text_or(f.id, ""));
  e += ",\"queue\":";
  append_json_string(e, text_or(f.queue, ""));
  e += ",\"state\":\"";
  e += state_name(f.state);
  e += "\",\"attempts\":";
  e += std::to_string(f.attempts);
  e += ",\"max_attempts\":";
  e += std::to_string(f.max_attempts);
  e += ",\"next_run\":";
  e += json_number(f.next_run);
  e += ",\"last_code\":";
  e += std::to_string(f.last_code);
  e += ",\"last_error\":";
  append_redacted_text(e, f.last_error);
  e += ',';
  append_payload_field(e, f.payload);
  e += '}';
  return e;
}

namespace {

constexpr char packed_tag = '\xff';  // then 1 + the state: 0xFF 0x00 is a client value's prefix
using namespace packing;

// The names of the queues packed envelopes were written for, each kept once for the
// process: an envelope holds its queue's number (a byte), not the name. Names are added,
// never removed (a queue's name stays valid for the envelopes that have it), and read by
// any thread that renders an envelope (the AOF rewrite's, the mirror's).
class queue_names {
 public:
  std::uint64_t number(std::string_view name) {
    std::lock_guard lock(m_);
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return i;
    names_.emplace_back(name);
    return names_.size() - 1;
  }
  bool name(std::uint64_t number, std::string_view& out) {
    std::lock_guard lock(m_);
    if (number >= names_.size()) return false;
    out = names_[number];  // a deque's elements stay where they are
    return true;
  }

 private:
  std::mutex m_;
  std::deque<std::string> names_;
};

queue_names& known_queues() {
  static queue_names q;
  return q;
}

// The fields of a packed envelope, as views into it.
struct packed_view {
  custody_state state = custody_state::in_flight;
  long long attempts = 0, max_attempts = 1, last_code = 0;
  double next_run = 0;
  std::string_view queue, log, payload;
  std::string last_error;  // decoded (packing's text)
};

bool unpack(std::string_view in, packed_view& p) {
  if (!is_packed_envelope(in)) return false;
  p.state = static_cast<custody_state>(in[1] - 1);
  in.remove_prefix(2);
  std::uint64_t a, m, c, q;
  if (!get_varint(in, a) || !get_varint(in, m) || !get_varint(in, c)) return false;
  p.attempts = unzigzag(a);
  p.max_attempts = unzigzag(m);
  p.last_code = unzigzag(c);
  if (!get_time(in, p.next_run) || !get_varint(in, q) || !known_queues().name(q, p.queue) ||
      !get_text(in, p.last_error) || !get_bytes(in, p.log))
    return false;
  p.payload = in;
  return true;
}

}  // namespace

bool is_packed_envelope(std::string_view s) {
  return s.size() >= 2 && s[0] == packed_tag && s[1] >= 1 && s[1] <= 3;
}

std::string envelope_packed(const envelope_fields& f) {
  std::string e;
  e.reserve(2 + 3 * 10 + 10 + 10 + 10 + f.last_error.size() + f.log.size() + f.payload.size());
  e += packed_tag;
  e += static_cast<char>(1 + static_cast<int>(f.state));
  put_varint(e, zigzag(f.attempts));
  put_varint(e, zigzag(f.max_attempts));
  put_varint(e, zigzag(f.last_code));
  put_time(e, f.next_run);
  put_varint(e, known_queues().number(f.queue));
  put_text(e, f.last_error);
  put_bytes(e, f.log);
  e += f.payload;
  return e;
}

std::string packed_envelope_json(std::string_view id, std::string_view packed) {
  packed_view p;
  if (!unpack(packed, p)) return {};
  envelope_fields f;
  f.id = id;
  f.queue = p.queue;
  f.state = p.state;
  f.attempts = static_cast<int>(p.attempts);
  f.max_attempts = static_cast<int>(p.max_attempts);
  f.next_run = p.next_run;
  f.last_code = static_cast<long>(p.last_code);
  f.last_error = p.last_error;
  f.payload = p.payload;
  return envelope_json(f);
}

bool read_packed_envelope(std::string_view packed, envelope_record& out) {
  packed_view p;
  if (!unpack(packed, p)) return false;
  out.state = p.state;
  out.attempts = static_cast<int>(p.attempts);
  out.max_attempts = static_cast<int>(p.max_attempts);
  out.next_run = p.next_run;  // to the millisecond, as the JSON says it
  out.last_code = static_cast<long>(p.last_code);
  // As the JSON shows it: "(binary)" for bytes that are not UTF-8, URLs without credentials.
  const std::string_view err = text_or(p.last_error, "(binary)");
  out.last_error = err.find('@') == std::string_view::npos ? std::string(err) : redact_urls_in(err);
  out.payload.assign(p.payload);
  out.log.assign(p.log);
  return true;
}

namespace {

// An integer field within [lo, hi]; absent leaves `out` unchanged. Returns a reason.
template <typename Int>
std::string read_int(const nlohmann::json& j, const char* name, long long lo, long long hi, Int& out) {
  const auto it = j.find(name);
  if (it == j.end()) return {};
  if (!it->is_number_integer()) return std::string(name) + " is not an integer";
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
    return std::string(name) + " is out of range";
  const long long v = it->get<long long>();
  if (v < lo || v > hi) return std::string(name) + " is out of range";
  out = static_cast<Int>(v);
  return {};
}

}  // namespace

std::variant<envelope_record, std::string> read_envelope(std::string_view text) {
  if (envelope_record packed; read_packed_envelope(text, packed)) return packed;
  return read_envelope_json(text);
}

std::variant<envelope_record, std::string> read_envelope_json(std::string_view text) {
  const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return std::string("is not valid JSON");
  if (!j.is_object()) return std::string("is not a JSON object");
  envelope_record r;
  constexpr long long max_count = 1'000'000;
  if (auto err = read_int(j, "attempts", 0, max_count, r.attempts); !err.empty()) return err;
  int max_attempts = 0;
  if (auto err = read_int(j, "max_attempts", 1, max_count, max_attempts); !err.empty()) return err;
  if (j.contains("max_attempts")) r.max_attempts = max_attempts;
  if (auto err = read_int(j, "last_code", 0, 999, r.last_code); !err.empty()) return err;
  if (const auto s = j.find("state"); s != j.end()) {
    if (!s->is_string()) return std::string("state is not a string");
    const auto& name = s->get_ref<const std::string&>();
    if (name == "in_flight") r.state = custody_state::in_flight;
    else if (name == "retrying") r.state = custody_state::retrying;
    else if (name == "scheduled") r.state = custody_state::scheduled;
    else return std::string("state is not in_flight, retrying or scheduled");
  }
  if (const auto n = j.find("next_run"); n != j.end()) {
    if (!n->is_number() || !std::isfinite(n->get<double>()) || n->get<double>() < 0)
      return std::string("next_run is not a unix time");
    r.next_run = n->get<double>();
  }
  if (const auto e = j.find("last_error"); e != j.end() && e->is_string()) r.last_error = e->get<std::string>();
  if (const auto p = j.find("payload"); p != j.end() && p->is_string()) {
    r.payload = p->get<std::string>();
  } else if (const auto b = j.find("payload_b64"); b != j.end() && b->is_string()) {
    r.payload = base64_decode(b->get_ref<const std::string&>());
  } else {
    return std::string("has no payload");
  }
  return r;
}

std::string salvage_payload(std::string_view record) {
  const auto j = nlohmann::json::parse(record.begin(), record.end(), nullptr, false);
  if (j.is_object()) {
    if (const auto p = j.find("payload"); p != j.end() && p->is_string()) return p->get<std::string>();
    if (const auto b = j.find("payload_b64"); b != j.end() && b->is_string())
      return base64_decode(b->get_ref<const std::string&>());
  }
  return std::string(record);
}

// ---- outcome -------------------------------------------------------------------------------

std::string outcome_json(const outcome_fields& f) {
  std::string o;
  o.reserve(256);
  o += "{\"id\":";
  append_json_string(o, text_or(f.id, "(binary)"));
  o += ",\"queue\":";
  append_json_string(o, text_or(f.queue, ""));
  o += ",\"url\":";
  const std::string_view url = text_or(f.url, "");
  if (url.find('@') == std::string_view::npos)
    append_json_string(o, url);
  else
    append_json_string(o, redact_url(url));
  o += ",\"status\":\"";
  o += f.status;
  o += "\",\"code\":";
  o += std::to_string(f.code);
  o += ",\"attempts\":";
  o += std::to_string(f.attempts);
  o += ",\"duration_ms\":";
  o += json_number(f.duration_ms);
  o += ",\"error\":";
  append_redacted_text(o, f.error);
  if (f.next_run > 0) {
    o += ",\"next_run\":";
    o += json_number(f.next_run);
  }
  if (!f.node.empty()) {
    o += ",\"node\":";
    append_json_string(o, text_or(f.node, ""));
  }
  if (f.truncated) o += ",\"truncated\":true";
  append_response_field(o, f.response);
  o += '}';
  return o;
}

// ---- dead letter ---------------------------------------------------------------------------

std::string dead_record_json(const dead_fields& f) {
  std::string d;
  d.reserve(f.payload.size() + 256);
  d += "{\"id\":";
  append_json_string(d, text_or(f.id, "(binary)"));
  d += ",\"queue\":";
  append_json_string(d, text_or(f.queue, ""));
  d += ",\"reason\":";
  append_redacted_text(d, f.reason);
  d += ",\"attempts\":";
  d += std::to_string(f.attempts);
  d += ",\"code\":";
  d += std::to_string(f.code);
  d += ",\"error\":";
  append_redacted_text(d, f.error);
  d += ",\"failed_at\":";
  d += json_number(f.failed_at);
  append_response_field(d, f.response);
  d += ',';
  append_payload_field(d, f.payload);
  d += '}';
  return d;
}

}  // namespace respq::tasks
