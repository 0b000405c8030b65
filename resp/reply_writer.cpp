// reply_writer: see reply_writer.hpp.
#include "resp/reply_writer.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace respq::resp {

void reply_writer::header(char type, long long n) {
  char buf[32];
  buf[0] = type;
  auto r = std::to_chars(buf + 1, buf + sizeof buf - 2, n);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out_.append(buf, static_cast<std::size_t>(r.ptr + 2 - buf));
}

void reply_writer::simple(std::string_view s) {
  out_.push_back('+');
  out_.append(s);
  out_.append("\r\n", 2);
}

void reply_writer::error(std::string_view s) {
  out_.push_back('-');
  out_.append(s);
  out_.append("\r\n", 2);
}

void reply_writer::integer(long long v) { header(':', v); }

void reply_writer::bulk(std::string_view s) {
  header('$', static_cast<long long>(s.size()));
  out_.append(s);
  out_.append("\r\n", 2);
}

void reply_writer::null() {
  if (proto_ >= 3)
    out_.append("_\r\n", 3);
  else
    out_.append("$-1\r\n", 5);
}

void reply_writer::null_array() {
  if (proto_ >= 3)
    out_.append("_\r\n", 3);
  else
    out_.append("*-1\r\n", 5);
}

void reply_writer::array(std::size_t n) { header('*', static_cast<long long>(n)); }

void reply_writer::map(std::size_t n) {
  if (proto_ >= 3)
    header('%', static_cast<long long>(n));
  else
    header('*', static_cast<long long>(2 * n));
}

void reply_writer::set(std::size_t n) { header(proto_ >= 3 ? '~' : '*', static_cast<long long>(n)); }

void reply_writer::push(std::size_t n) { header(proto_ >= 3 ? '>' : '*', static_cast<long long>(n)); }

void reply_writer::boolean(bool b) {
  if (proto_ >= 3)
    out_.append(b ? "#t\r\n" : "#f\r\n", 4);
  else
    out_.append(b ? ":1\r\n" : ":0\r\n", 4);
}

void reply_writer::double_value(double d) {
  std::string s = format_double(d);
  if (proto_ >= 3) {
    out_.push_back(',');
    out_.append(s);
    out_.append("\r\n", 2);
  } else {
    bulk(s);
  }
}

void reply_writer::verbatim(std::string_view s) {
  if (proto_ >= 3) {
    header('=', static_cast<long long>(s.size() + 4));
    out_.append("txt:", 4);
    out_.append(s);
    out_.append("\r\n", 2);
  } else {
    bulk(s);
  }
}

std::string format_double(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (std::isnan(d)) return "nan";
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%.17g", d);
  return std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace respq::resp
