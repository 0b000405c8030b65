// query: PHP's http_build_query and urlencode, byte for byte. See query.hpp.
#include "tasks/query.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

namespace respq::tasks {
namespace {

// ---- PHP number formatting ---------------------------------------------------------------

// PHP's http_build_query prints doubles with spprintf("%.*G", precision=14), which goes
// through php_gcvt(): the shortest digits correctly rounded to 14 significant digits,
// plain notation while the decimal exponent is in [-4, 14], else d.dddE+x with at least
// one digit after the point ("1.0E+25"). glibc's %.13e rounds correctly (ties to even,
// as zend_dtoa does), so the digits come from it and only the layout is PHP's.
void append_php_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NAN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "INF" : "-INF";
    return;
  }
  constexpr int precision = 14;
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%.*e", precision - 1, v);
  std::string_view s(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  const auto e_pos = s.find('e');
  if (e_pos == std::string_view::npos) return;  // unreachable for finite values
  std::string digits;
  for (char c : s.substr(0, e_pos))
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int exp10 = 0;
  std::string_view exp_text = s.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp10);
  int decpt = (digits == "0") ? 1 : exp10 + 1;  // value = 0.digits * 10^decpt

  if (negative) out += '-';
  if (decpt < 0 ? decpt < -3 : decpt > precision) {
    // Exponential: d.ddd E sign exponent, as php_gcvt lays it out.
    out += digits[0];
    out += '.';
    if (digits.size() == 1)
      out += '0';
    else
      out.append(digits, 1, std::string::npos);
    out += 'E';
    --decpt;
    out += decpt < 0 ? '-' : '+';
    out += std::to_string(decpt < 0 ? -decpt : decpt);
  } else if (decpt < 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-decpt), '0');
    out += digits;
  } else {
    // Integer part, zero-padded, then the fraction if digits remain.
    const auto int_len = static_cast<std::size_t>(decpt);
    if (int_len == 0) out += '0';
    for (std::size_t i = 0; i < int_len; ++i) out += i < digits.size() ? digits[i] : '0';
    if (digits.size() > int_len) {
      out += '.';
      out.append(digits, int_len, std::string::npos);
    }
  }
}

// ---- http_build_query ----------------------------------------------------------------------

using json_view::value;
using json_view::value_t;

void append_scalar(std::string& out, const value& v) {
  char buf[24];
  switch (v.type()) {
    case value_t::string:
      php_urlencode(v.text(), out);
      break;
    case value_t::boolean:
      out += v.boolean() ? '1' : '0';
      break;
    case value_t::number_integer: {
      const auto r = std::to_chars(buf, buf + sizeof buf, v.int64());
      out.append(buf, r.ptr);
      break;
    }
    case value_t::number_unsigned: {
      // PHP integers are int64; json_decode turns anything larger into a float.
      const auto u = v.uint64();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        const auto r = std::to_chars(buf, buf + sizeof buf, u);
        out.append(buf, r.ptr);
      } else {
        std::string text;
        append_php_double(text, static_cast<double>(u));
        php_urlencode(text, out);
      }
      break;
    }
    case value_t::number_float: {
      std::string text;
      append_php_double(text, v.number());
      php_urlencode(text, out);
      break;
    }
    default:
      break;
  }
}

// `prefix` is the encoded name of `container` ("" at the top level); it is extended in
// place for each child and restored afterwards, so deep nesting costs no copies.
void build_query(const value& container, std::string& prefix, bool top, std::string& out, int depth) {
  if (depth > max_query_depth) return;
  const std::size_t base = prefix.size();
  std::size_t index = 0;
  for (auto it = container.begin(); it != container.end(); ++it, ++index) {
    const value v = *it;
    if (v.is_null()) continue;
    if (v.is_structured() && v.empty()) continue;
    prefix.resize(base);
    if (!top) prefix += "%5B";
    if (container.is_object()) {
      php_urlencode(it.key(), prefix);
    } else {
      char buf[24];
      const auto r = std::to_chars(buf, buf + sizeof buf, index);
      prefix.append(buf, r.ptr);
    }
    if (!top) prefix += "%5D";
    if (v.is_structured()) {
      build_query(v, prefix, false, out, depth + 1);
    } else {
      if (!out.empty()) out += '&';
      out += prefix;
      out += '=';
      append_scalar(out, v);
    }
  }
  prefix.resize(base);
}

std::string query_of(const value& data) noexcept {
  std::string out;
  if (!data.is_structured()) return out;
  try {
    std::string prefix;
    build_query(data, prefix, true, out, 1);
  } catch (...) {
    // Only allocation can fail here; an empty query is the honest answer then.
    out.clear();
  }
  return out;
}
template <typename Json>
std::string http_build_query_generic(const Json& data) noexcept {
  try {
    json_view::document doc;
    doc.assign(data, max_query_depth);
    return query_of(doc.root());
  } catch (...) {
    return {};
  }
}

}  // namespace

void php_urlencode(std::string_view in, std::string& out) {
  static constexpr char hex[] = "0123456789ABCDEF";
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
        c == '.') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}

std::string http_build_query(const nlohmann::ordered_json& data) { return http_build_query_generic(data); }
std::string http_build_query(const nlohmann::json& data) { return http_build_query_generic(data); }
std::string http_build_query(const json_view::value& data) { return query_of(data); }

}  // namespace respq::tasks
