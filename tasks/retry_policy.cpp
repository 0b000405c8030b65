// retry_policy: see retry_policy.hpp.
#include "tasks/retry_policy.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace respq::tasks {
namespace {

std::string_view trim(std::string_view s, std::string_view chars) {
  const auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(chars);
  return s.substr(b, e - b + 1);
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

}  // namespace respq::tasks
