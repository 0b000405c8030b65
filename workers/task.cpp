// task: decoding of task payloads, PHP-compatible query strings, and the retry policy.
//
// Everything here is pure and thread-agnostic. nlohmann::json reports errors by
// throwing; decode_task catches them all and turns them into decode_error reasons, so
// no exception leaves this file. URLs are checked with libcurl's URL API, the same
// parser that will later send them.
#include "workers/task.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "workers/json_view.hpp"

namespace respq::workers {
namespace {

// ---- small string helpers --------------------------------------------------------------

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s, std::string_view chars = " \t\r\n") {
  const auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
}

bool is_http_url_text(std::string_view s) {
  return istarts_with(s, "http://") || istarts_with(s, "https://");
}

// Quotes a producer-supplied value for an error reason: bounded, control bytes hidden.
std::string quote_for_reason(std::string_view s) {
  constexpr std::size_t limit = 64;
  std::string out = "'";
  for (char c : s.substr(0, limit)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > limit) out += "...";
  out += '\'';
  return out;
}

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
  if (depth > max_json_depth) return;
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
    doc.assign(data, max_json_depth);
    return query_of(doc.root());
  } catch (...) {
    return {};
  }
}

// ---- JSON and URL checks ---------------------------------------------------------------

// True when brackets nest deeper than `limit` (strings skipped). Checked before parsing
// so a hostile payload costs a linear scan, not a deep tree.
bool nests_deeper_than(std::string_view s, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

struct curl_url_deleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct curl_string_deleter {
  void operator()(char* s) const { curl_free(s); }
};

// The last URLs check_url accepted, per thread. An app sends most tasks to a handful of
// endpoints, and libcurl's parse (with its allocations) was a tenth of the broker
// thread's work per task; a URL seen here was accepted before and is accepted again.
class accepted_urls {
 public:
  bool contains(const std::string& url) const {
    return std::find(urls_.begin(), urls_.end(), url) != urls_.end();
  }
  void add(const std::string& url) {
    if (url.size() > max_url_bytes) return;
    urls_[next_] = url;
    next_ = (next_ + 1) % urls_.size();
  }

 private:
  static constexpr std::size_t max_url_bytes = 2048;
  std::array<std::string, 8> urls_;
  std::size_t next_ = 0;
};

// Returns an error reason, or empty when `url` is an http(s) URL with a host.
std::string check_url_uncached(const std::string& url, std::string_view field) {
  if (url.find('\0') != std::string::npos) return std::string(field) + " contains a NUL byte";
  std::unique_ptr<CURLU, curl_url_deleter> h(curl_url());
  if (!h) return std::string(field) + " could not be checked (out of memory)";
  // Parse any scheme so the reason can name a refused one instead of "unsupported".
  const CURLUcode rc = curl_url_set(h.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) return std::string(field) + " is not a valid URL (" + curl_url_strerror(rc) + ")";
  char* raw = nullptr;
  if (curl_url_get(h.get(), CURLUPART_SCHEME, &raw, 0) != CURLUE_OK)
    return std::string(field) + " has no scheme";
  std::unique_ptr<char, curl_string_deleter> scheme(raw);
  std::string lower(scheme.get());
  std::transform(lower.begin(), lower.end(), lower.begin(), ascii_lower);
  if (lower != "http" && lower != "https")
    return std::string(field) + " scheme " + quote_for_reason(lower) +
           " is not allowed (http and https only)";
  raw = nullptr;
  if (curl_url_get(h.get(), CURLUPART_HOST, &raw, 0) != CURLUE_OK) return std::string(field) + " has no host";
  std::unique_ptr<char, curl_string_deleter> host(raw);
  if (!host || *host == '\0') return std::string(field) + " has no host";
  return {};
}

std::string check_url(const std::string& url, std::string_view field) {
  thread_local accepted_urls accepted;
  if (!url.empty() && accepted.contains(url)) return {};
  std::string err = check_url_uncached(url, field);
  if (err.empty()) accepted.add(url);
  return err;
}

// Appends an encoded query to a URL: after '?' or '&' as the URL needs, dropping any
// fragment (never sent on the wire, and it would otherwise swallow the query).
void append_query(std::string& url, std::string_view query) {
  if (query.empty()) return;
  if (const auto hash = url.find('#'); hash != std::string::npos) url.resize(hash);
  const auto qm = url.find('?');
  if (qm == std::string::npos)
    url += '?';
  else if (qm + 1 != url.size() && url.back() != '&')
    url += '&';
  url += query;
}

bool is_token_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool has_header(const task& t, std::string_view name) {
  return std::any_of(t.headers.begin(), t.headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

std::string number_text(const value& v) {
  if (v.is_number_float()) {
    const double d = v.number();
    if (std::trunc(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  }
  return v.dump();
}

using ojson = nlohmann::ordered_json;

// Decodes a JSON object payload. Returns the task or the first problem found.
decode_result decode_object(const value& j, double now) {
  task t;
  auto field = [&](std::string_view name) -> std::optional<value> {
    const auto it = j.find(name);
    // JSON null means absent: PHP arrays often carry 'key' => null.
    if (it == j.end() || (*it).is_null()) return std::nullopt;
    return *it;
  };
  auto fail = [](std::string reason) -> decode_result { return decode_error{std::move(reason)}; };

  // url
  const auto url = field("url");
  if (!url) return fail("url is missing");
  if (!url->is_string()) return fail("url must be a string");
  t.url = std::string(url->text());
  if (auto err = check_url(t.url, "url"); !err.empty()) return fail(std::move(err));

  // body / json
  const auto body = field("body");
  const auto json_body = field("json");
  if (body && json_body) return fail("body and json cannot both be given");
  if (body) {
    if (!body->is_string()) return fail("body must be a string (use json for a JSON body)");
    t.body = std::string(body->text());
  } else if (json_body) {
    t.body = json_body->dump();
  }

  // method
  if (const auto m = field("method")) {
    if (!m->is_string()) return fail("method must be a string");
    std::string name(m->text());
    std::transform(name.begin(), name.end(), name.begin(), ascii_upper);
    static constexpr std::array<std::string_view, 6> methods{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    if (std::find(methods.begin(), methods.end(), name) == methods.end())
      return fail("method " + quote_for_reason(m->text()) +
                  " is not supported (GET POST PUT PATCH DELETE HEAD)");
    t.method = std::move(name);
  } else if (t.body) {
    t.method = "POST";  // a body with no method: what anyone sending a body means
  }
  if (t.method == "HEAD" && t.body) return fail("a HEAD request cannot have a body");

  // headers
  if (const auto hs = field("headers")) {
    if (!hs->is_object()) return fail("headers must be an object of name: value");
    for (auto it = hs->begin(); it != hs->end(); ++it) {
      const std::string_view name = it.key();
      if (name.empty() || !std::all_of(name.begin(), name.end(),
                                       [](char c) { return is_token_char(static_cast<unsigned char>(c)); }))
        return fail("header name " + quote_for_reason(name) + " is not a valid HTTP token");
      if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding"))
        return fail("header " + quote_for_reason(name) + " is set by respq from the body");
      std::string value;
      if ((*it).is_string())
        value = std::string((*it).text());
      else if ((*it).is_number())
        value = number_text(*it);
      else
        return fail("header " + quote_for_reason(name) + " value must be a string or number");
      if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
        return fail("header " + quote_for_reason(name) + " value contains CR, LF or NUL");
      t.headers.emplace_back(name, std::move(value));
    }
  }
  if (json_body && !has_header(t, "Content-Type")) t.headers.emplace_back("Content-Type", "application/json");

  // param: a form body for POST/PUT/PATCH without another body, else the query string.
  if (const auto p = field("param")) {
    if (!p->is_structured()) return fail("param must be an object or an array");
    std::string query = query_of(*p);
    const bool form = !t.body && (t.method == "POST" || t.method == "PUT" || t.method == "PATCH");
    if (form) {
      t.body = std::move(query);
      if (!has_header(t, "Content-Type"))
        t.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    } else {
      append_query(t.url, query);
    }
  }

  // timeout, retries
  if (const auto v = field("timeout")) {
    if (!v->is_number() || !(v->number() > 0) || v->number() > max_timeout_s)
      return fail("timeout must be a number of seconds > 0 and <= 86400");
    t.timeout = v->number();
  }
  if (const auto v = field("retries")) {
    const bool integral =
        v->is_number_integer() || (v->is_number_float() && std::trunc(v->number()) == v->number());
    if (!integral || v->number() < 0 || v->number() > max_retries)
      return fail("retries must be an integer from 0 to 1000");
    t.retries = static_cast<int>(v->number());
  }

  // delay / at
  const auto delay = field("delay");
  const auto at = field("at");
  if (delay && at) return fail("delay and at cannot both be given");
  if (delay) {
    if (!delay->is_number() || !(delay->number() >= 0) || !std::isfinite(delay->number()))
      return fail("delay must be a number of seconds >= 0");
    t.run_at = now + delay->number();
  } else if (at) {
    if (!at->is_number() || !(at->number() >= 0) || !std::isfinite(at->number()))
      return fail("at must be a unix time in seconds (a number >= 0)");
    t.run_at = at->number();
  }

  // id
  if (const auto v = field("id")) {
    if (v->is_string())
      t.id = std::string(v->text());
    else if (v->is_number_integer())
      t.id = v->dump();
    else
      return fail("id must be a string or an integer");
    if (t.id.size() > max_id_bytes) return fail("id is longer than 256 bytes");
    if (std::any_of(t.id.begin(), t.id.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      return fail("id contains control characters");
  }

  // callback
  if (const auto v = field("callback")) {
    if (!v->is_string()) return fail("callback must be a string");
    t.callback = std::string(v->text());
    if (!t.callback.empty())
      if (auto err = check_url(t.callback, "callback"); !err.empty()) return fail(std::move(err));
  }

  // follow_redirects
  if (const auto v = field("follow_redirects")) {
    if (!v->is_boolean()) return fail("follow_redirects must be true or false");
    t.follow_redirects = v->boolean();
  }
  return t;
}

decode_result decode_bare_url(std::string_view text) {
  task t;
  t.url = std::string(text);
  if (auto err = check_url(t.url, "url"); !err.empty()) return decode_error{std::move(err)};
  return t;
}

// ---- HTTP dates ------------------------------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

long long year_of_unix(double now) {
  // Inverse of days_from_civil, year only.
  long long z = static_cast<long long>(std::floor(now / 86400)) + 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<long long>(yoe) + era * 400 + (m <= 2);
}

class date_cursor {
 public:
  explicit date_cursor(std::string_view s) : s_(s) {}
  bool literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }
  // Exactly `n` digits.
  bool digits(int n, int& value) {
    value = 0;
    for (int i = 0; i < n; ++i, ++pos_) {
      if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return false;
      value = value * 10 + (s_[pos_] - '0');
    }
    return true;
  }
  // One of `names`; the index goes to `which`.
  template <std::size_t N>
  bool one_of(const std::array<std::string_view, N>& names, int& which) {
    for (std::size_t i = 0; i < N; ++i)
      if (literal(names[i])) {
        which = static_cast<int>(i);
        return true;
      }
    return false;
  }
  bool time(int& h, int& m, int& sec) {
    return digits(2, h) && literal(":") && digits(2, m) && literal(":") && digits(2, sec);
  }
  bool at_end() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> day_names{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_day_names{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                         "Friday", "Saturday", "Sunday"};

bool valid_date(int year, int month0, int day, int h, int m, int s) {
  static constexpr std::array<int, 12> days_in{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month0 < 0 || month0 > 11 || day < 1 || day > days_in[static_cast<std::size_t>(month0)]) return false;
  if (month0 == 1 && day == 29) {
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (!leap) return false;
  }
  return h <= 23 && m <= 59 && s <= 60;  // 60: a leap second
}

// Parses the three HTTP-date forms into unix seconds.
std::optional<double> parse_http_date(std::string_view s, double now) {
  int wd = 0, day = 0, month = 0, year = 0, h = 0, mi = 0, sec = 0;
  auto to_unix = [&]() -> std::optional<double> {
    if (!valid_date(year, month, day, h, mi, sec)) return std::nullopt;
    const long long days =
        days_from_civil(year, static_cast<unsigned>(month + 1), static_cast<unsigned>(day));
    return static_cast<double>(days * 86400 + h * 3600 + mi * 60 + sec);
  };
  {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    date_cursor c(s);
    if (c.one_of(day_names, wd) && c.literal(", ") && c.digits(2, day) && c.literal(" ") &&
        c.one_of(month_names, month) && c.literal(" ") && c.digits(4, year) && c.literal(" ") &&
        c.time(h, mi, sec) && c.literal(" GMT") && c.at_end())
      return to_unix();
  }
  {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    date_cursor c(s);
    int yy = 0;
    if (c.one_of(long_day_names, wd) && c.literal(", ") && c.digits(2, day) && c.literal("-") &&
        c.one_of(month_names, month) && c.literal("-") && c.digits(2, yy) && c.literal(" ") &&
        c.time(h, mi, sec) && c.literal(" GMT") && c.at_end()) {
      // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
      const long long this_year = year_of_unix(now);
      long long full = this_year - this_year % 100 + yy;
      if (full > this_year + 50) full -= 100;
      year = static_cast<int>(full);
      return to_unix();
    }
  }
  {  // asctime: Sun Nov  6 08:49:37 1994
    date_cursor c(s);
    if (c.one_of(day_names, wd) && c.literal(" ") && c.one_of(month_names, month) && c.literal(" ")) {
      int d1 = 0;
      bool ok = c.literal(" ") ? c.digits(1, d1) : c.digits(2, d1);
      day = d1;
      if (ok && c.literal(" ") && c.time(h, mi, sec) && c.literal(" ") && c.digits(4, year) && c.at_end())
        return to_unix();
    }
  }
  return std::nullopt;
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

decode_result decode_task(std::string_view payload, double now) {
  try {
    const std::string_view text = trim(payload);
    if (text.empty()) return decode_error{"payload is empty"};
    const char first = text.front();
    if (first != '{' && first != '[' && first != '"' && is_http_url_text(text)) return decode_bare_url(text);
    if (nests_deeper_than(text, max_json_depth)) return decode_error{"payload nests deeper than 512 levels"};
    json_view::document doc;
    // The quick parser's nodes are larger than nlohmann's values: beyond a typical task's
    // size its speed no longer matters, and nlohmann keeps big payloads' memory as before.
    constexpr std::size_t quick_parse_max_bytes = 64 * 1024;
    if (first == '{' && text.size() <= quick_parse_max_bytes && doc.parse(text))
      return decode_object(doc.root(), now);
    // What the quick parser declines (invalid JSON included) goes through nlohmann, whose
    // results and messages are the reference.
    const ojson j = ojson::parse(text.begin(), text.end());
    if (j.is_string() && is_http_url_text(j.get_ref<const std::string&>()))
      return decode_bare_url(j.get_ref<const std::string&>());
    if (!j.is_object()) return decode_error{"payload must be a JSON object or an http(s) URL"};
    doc.assign(j, max_json_depth);
    return decode_object(doc.root(), now);
  } catch (const nlohmann::json::parse_error& e) {
    return decode_error{"payload is not valid JSON (at byte " + std::to_string(e.byte) + ")"};
  } catch (const nlohmann::json::out_of_range&) {
    return decode_error{"payload has a number out of range"};
  } catch (const std::exception& e) {
    return decode_error{std::string("payload could not be decoded: ") + e.what()};
  } catch (...) {
    return decode_error{"payload could not be decoded"};
  }
}

// ---- retry policy ------------------------------------------------------------------------

attempt_outcome classify_attempt(long code, bool transport_error) {
  if (transport_error || code <= 0) return attempt_outcome::retry;
  if (code >= 200 && code <= 299) return attempt_outcome::delivered;
  if (code == 408 || code == 425 || code == 429 || (code >= 500 && code <= 599))
    return attempt_outcome::retry;
  return attempt_outcome::failed;
}

double backoff_delay_at(int attempt, double min_s, double max_s, double u) {
  if (!(min_s >= 0)) min_s = 0;  // also catches NaN
  if (!(max_s >= min_s)) max_s = min_s;
  attempt = std::clamp(attempt, 1, 1024);  // 2^1024 is already inf: the cap applies
  const double upper = std::min(max_s, std::ldexp(min_s, attempt));
  if (!(u >= 0)) u = 0;
  if (u >= 1) u = std::nextafter(1.0, 0.0);
  return std::clamp(min_s + (upper - min_s) * u, min_s, max_s);
}

double retry_delay(double backoff_s, std::optional<double> retry_after_s, double cap_s) {
  double d = backoff_s >= 0 ? backoff_s : 0;
  if (retry_after_s && *retry_after_s > d) d = *retry_after_s;
  if (cap_s >= 0 && d > cap_s) d = cap_s;
  return d;
}

std::optional<double> parse_retry_after(std::string_view header, double now) {
  const std::string_view v = trim(header, " \t");
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Accumulated as a double: a giant delta is valid syntax, retry_delay caps it.
    double seconds = 0;
    for (char c : v) seconds = seconds * 10 + (c - '0');
    return seconds;
  }
  const auto when = parse_http_date(v, now);
  if (!when) return std::nullopt;
  return std::max(0.0, *when - now);
}

}  // namespace respq::workers
