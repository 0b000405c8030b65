// json_view: see json_view.hpp.
#include "tasks/json_view.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "resp/ascii.hpp"

namespace respq::tasks::json_view {

// ---- value ---------------------------------------------------------------------------

value_t value::type() const { return d_->nodes_[i_].type; }
bool value::empty() const { return is_structured() ? d_->nodes_[i_].size == 0 : false; }
value::iterator value::begin() const { return iterator(d_, is_structured() ? d_->nodes_[i_].first : 0); }

value::iterator value::find(std::string_view key) const {
  if (!is_object()) return end();
  for (std::uint32_t c = d_->nodes_[i_].first; c != 0; c = d_->nodes_[c].next)
    if (d_->nodes_[c].key == key) return iterator(d_, c);
  return end();
}

value value::iterator::operator*() const { return value(d_, i_); }
value::iterator& value::iterator::operator++() {
  i_ = d_->nodes_[i_].next;
  return *this;
}
std::string_view value::iterator::key() const { return d_->nodes_[i_].key; }

std::string_view value::text() const { return d_->nodes_[i_].text; }
bool value::boolean() const { return d_->nodes_[i_].boolean; }

std::int64_t value::int64() const {
  const auto& n = d_->nodes_[i_];
  switch (n.type) {
    case value_t::number_integer: return n.i;
    case value_t::number_unsigned: return static_cast<std::int64_t>(n.u);
    case value_t::number_float: return static_cast<std::int64_t>(n.d);
    default: return 0;
  }
}

std::uint64_t value::uint64() const {
  const auto& n = d_->nodes_[i_];
  switch (n.type) {
    case value_t::number_integer: return static_cast<std::uint64_t>(n.i);
    case value_t::number_unsigned: return n.u;
    case value_t::number_float: return static_cast<std::uint64_t>(n.d);
    default: return 0;
  }
}

double value::number() const {
  const auto& n = d_->nodes_[i_];
  switch (n.type) {
    case value_t::number_integer: return static_cast<double>(n.i);
    case value_t::number_unsigned: return static_cast<double>(n.u);
    case value_t::number_float: return n.d;
    default: return 0;
  }
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

namespace {

template <typename Int>
void dump_integer(std::string& out, Int v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

std::string value::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

void value::dump_to(std::string& out) const {
  const auto& n = d_->nodes_[i_];
  switch (n.type) {
    case value_t::null: out += "null"; break;
    case value_t::boolean: out += n.boolean ? "true" : "false"; break;
    case value_t::number_integer: dump_integer(out, n.i); break;
    case value_t::number_unsigned: dump_integer(out, n.u); break;
    case value_t::number_float: out += nlohmann::json(n.d).dump(); break;  // its float format, exactly
    case value_t::string: append_string(out, n.text); break;
    case value_t::object:
    case value_t::array: {
      const bool object = n.type == value_t::object;
      out += object ? '{' : '[';
      bool first = true;
      for (auto it = begin(); it != end(); ++it) {
        if (!first) out += ',';
        first = false;
        if (object) {
          append_string(out, it.key());
          out += ':';
        }
        (*it).dump_to(out);
      }
      out += object ? '}' : ']';
      break;
    }
    default: break;
  }
}

// ---- document ------------------------------------------------------------------------

bool document::parse(std::string_view text) {
  nodes_.clear();
  nodes_.reserve(16);
  unescaped_.clear();
  text_size_ = text.size();
  p_ = text.data();
  end_ = p_ + text.size();
  skip_ws();
  if (!parse_value(0)) return false;
  skip_ws();
  return p_ == end_;
}

void document::skip_ws() {
  while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
}

bool document::literal(std::string_view word) {
  if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0)
    return false;
  p_ += word.size();
  return true;
}

bool document::parse_value(int depth) {
  if (p_ == end_) return false;
  const auto self = static_cast<std::uint32_t>(nodes_.size());
  switch (*p_) {
    case '{':
    case '[':
      return parse_container(*p_ == '{', depth);
    case '"': {
      nodes_.emplace_back().type = value_t::string;
      std::string_view s;
      if (!parse_string(s)) return false;
      nodes_[self].text = s;
      return true;
    }
    case 't':
    case 'f': {
      auto& n = nodes_.emplace_back();
      n.type = value_t::boolean;
      n.boolean = *p_ == 't';
      return literal(n.boolean ? "true" : "false");
    }
    case 'n':
      nodes_.emplace_back();
      return literal("null");
    default:
      return parse_number();
  }
}

bool document::parse_container(bool object, int depth) {
  if (depth >= max_depth) return false;
  const auto self = static_cast<std::uint32_t>(nodes_.size());
  nodes_.emplace_back().type = object ? value_t::object : value_t::array;
  ++p_;
  skip_ws();
  if (p_ != end_ && *p_ == (object ? '}' : ']')) {
    ++p_;
    return true;
  }
  std::uint32_t last = 0;
  for (;;) {
    std::string_view key;
    if (object) {
      if (p_ == end_ || *p_ != '"' || !parse_string(key)) return false;
      skip_ws();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_ws();
    }
    const auto child = static_cast<std::uint32_t>(nodes_.size());
    if (!parse_value(depth + 1)) return false;
    nodes_[child].key = key;
    append_member(self, last, child);
    skip_ws();
    if (p_ == end_) return false;
    if (*p_ == ',') {
      ++p_;
      skip_ws();
      continue;
    }
    if (*p_ != (object ? '}' : ']')) return false;
    ++p_;
    // nlohmann keeps the last value of a repeated key in the first one's place; leave
    // that to it.
    return !object || distinct_keys(self);
  }
}

bool document::distinct_keys(std::uint32_t object) const {
  const auto& o = nodes_[object];
  if (o.size <= 8) {
    for (std::uint32_t a = o.first; a != 0; a = nodes_[a].next)
      for (std::uint32_t b = nodes_[a].next; b != 0; b = nodes_[b].next)
        if (nodes_[a].key == nodes_[b].key) return false;
    return true;
  }
  std::vector<std::string_view> keys;
  keys.reserve(o.size);
  for (std::uint32_t a = o.first; a != 0; a = nodes_[a].next) keys.push_back(nodes_[a].key);
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) == keys.end();
}

namespace {

// Length of the valid UTF-8 sequence starting at p (a byte >= 0x80), or 0: the same
// sequences nlohmann's lexer accepts (no overlongs, no surrogates, at most U+10FFFF).
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end) {
  const unsigned c = p[0];
  std::size_t len;
  unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c == 0xE0) len = 3, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
  else if (c == 0xED) len = 3, hi = 0x9F;
  else if (c == 0xF0) len = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) len = 4;
  else if (c == 0xF4) len = 4, hi = 0x8F;
  else return 0;
  if (static_cast<std::size_t>(end - p) < len) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (p[k] < 0x80 || p[k] > 0xBF) return 0;
  return len;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

bool document::parse_string(std::string_view& out) {
  ++p_;  // the opening quote
  const char* start = p_;
  // Fast path: no escapes, the string is a view into the text.
  while (p_ != end_) {
    const auto c = static_cast<unsigned char>(*p_);
    if (c == '"') {
      out = std::string_view(start, static_cast<std::size_t>(p_ - start));
      ++p_;
      return true;
    }
    if (c == '\\') break;
    if (c < 0x20) return false;
    if (c < 0x80) {
      ++p_;
      continue;
    }
    const auto len = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                   reinterpret_cast<const unsigned char*>(end_));
    if (len == 0) return false;
    p_ += len;
  }
  if (p_ == end_) return false;
  // Escapes: unescape into the shared buffer. Unescaping never lengthens a string, so
  // once the buffer holds the whole text's size it never moves while views point in.
  if (unescaped_.capacity() < text_size_) unescaped_.reserve(text_size_);
  const std::size_t first = unescaped_.size();
  unescaped_.append(start, static_cast<std::size_t>(p_ - start));
  auto read_hex4 = [&](std::uint32_t& v) {
    if (end_ - p_ < 4) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_digit(p_[k]);
      if (h < 0) return false;
      v = v * 16 + static_cast<std::uint32_t>(h);
    }
    p_ += 4;
    return true;
  };
  while (p_ != end_) {
    const auto c = static_cast<unsigned char>(*p_);
    if (c == '"') {
      out = std::string_view(unescaped_.data() + first, unescaped_.size() - first);
      ++p_;
      return true;
    }
    if (c < 0x20) return false;
    if (c >= 0x80) {
      const auto len = utf8_sequence(reinterpret_cast<const unsigned char*>(p_),
                                     reinterpret_cast<const unsigned char*>(end_));
      if (len == 0) return false;
      unescaped_.append(p_, len);
      p_ += len;
      continue;
    }
    if (c != '\\') {
      unescaped_ += static_cast<char>(c);
      ++p_;
      continue;
    }
    if (++p_ == end_) return false;
    const char e = *p_++;
    switch (e) {
      case '"': unescaped_ += '"'; break;
      case '\\': unescaped_ += '\\'; break;
      case '/': unescaped_ += '/'; break;
      case 'b': unescaped_ += '\b'; break;
      case 'f': unescaped_ += '\f'; break;
      case 'n': unescaped_ += '\n'; break;
      case 'r': unescaped_ += '\r'; break;
      case 't': unescaped_ += '\t'; break;
      case 'u': {
        std::uint32_t cp;
        if (!read_hex4(cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate alone
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t low;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(unescaped_, cp);
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

bool document::parse_number() {
  const char* start = p_;
  bool negative = false, integral = true;
  if (p_ != end_ && *p_ == '-') {
    negative = true;
    ++p_;
  }
  if (p_ == end_) return false;
  if (*p_ == '0') {
    ++p_;
  } else if (*p_ >= '1' && *p_ <= '9') {
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  } else {
    return false;
  }
  const char* int_end = p_;
  if (p_ != end_ && *p_ == '.') {
    integral = false;
    ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
    integral = false;
    ++p_;
    if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  auto& n = nodes_.emplace_back();
  if (integral) {
    // Up to 18 digits always fit an int64; longer ones go to nlohmann, which turns
    // integers beyond uint64 into floats.
    const char* digits = start + (negative ? 1 : 0);
    if (int_end - digits > 18) return false;
    std::uint64_t v = 0;
    std::from_chars(digits, int_end, v);
    if (negative) {
      n.type = value_t::number_integer;  // "-0" too, as nlohmann has it
      n.i = -static_cast<std::int64_t>(v);
    } else {
      n.type = value_t::number_unsigned;
      n.u = v;
    }
    return true;
  }
  // strtod, as nlohmann uses, on a terminated copy; very long numbers are left to it.
  char buf[64];
  const auto len = static_cast<std::size_t>(p_ - start);
  if (len >= sizeof buf) return false;
  std::memcpy(buf, start, len);
  buf[len] = '\0';
  char* parsed_end = nullptr;
  const double d = std::strtod(buf, &parsed_end);
  if (parsed_end != buf + len || !(d - d == 0)) return false;  // not finite: nlohmann's error
  n.type = value_t::number_float;
  n.d = d;
  return true;
}

}  // namespace respq::tasks::json_view
