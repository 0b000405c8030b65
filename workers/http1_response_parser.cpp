// http1_response_parser: see http1_response_parser.hpp.
#include "workers/http1_response_parser.hpp"

#include <algorithm>
#include <cstring>

#include "resp/ascii.hpp"

namespace respq::workers {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

// Calls f(token) for each comma-separated element of a list header, trimmed; empty
// elements (", ,") are skipped, as RFC 9110 section 5.6.1 asks of recipients.
template <typename F>
void each_element(std::string_view v, F f) {
  while (true) {
    std::size_t comma = v.find(',');
    std::string_view e = trim(v.substr(0, comma));
    if (!e.empty()) f(e);
    if (comma == std::string_view::npos) return;
    v.remove_prefix(comma + 1);
  }
}

// 1*DIGIT into a uint64; false on anything else, overflow included.
bool parse_decimal(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const unsigned d = static_cast<unsigned>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr const char* line_too_long = "Response header line too long";
constexpr const char* head_too_large = "Response headers too large";
constexpr const char* chunk_line_too_long = "Chunk size line too long";
constexpr const char* bad_chunked = "Malformed chunked response";
constexpr const char* bad_header = "Malformed response header line";

}  // namespace

void http1_response_parser::begin(bool head_request, std::size_t keep_body) {
  keep_ = std::min(keep_body, limits_.keep_body);
  ph_ = phase::status_line;
  head_request_ = head_request;
  consumed_ = 0;
  scan_ = 0;
  started_ = false;
  error_.clear();
  code_ = 0;
  http10_ = false;
  keep_alive_ = true;
  head_.clear();
  reason_ = {0, 0};
  headers_.clear();
  head_bytes_ = 0;
  fields_ = 0;
  content_length_.reset();
  has_transfer_encoding_ = chunked_ = close_ = keep_alive_token_ = false;
  body_left_ = 0;
  body_seen_ = 0;
  truncated_ = false;
  body_.clear();
}

std::pair<std::string_view, std::string_view> http1_response_parser::header_at(std::size_t i) const {
  const span& s = headers_[i];
  std::string_view h(head_);
  return {h.substr(s.name_off, s.name_len), h.substr(s.value_off, s.value_len)};
}

std::optional<std::string_view> http1_response_parser::header(std::string_view name) const {
  for (std::size_t i = 0; i < headers_.size(); ++i) {
    auto [n, v] = header_at(i);
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

http1_response_parser::status http1_response_parser::fail(std::string msg) {
  error_ = std::move(msg);
  ph_ = phase::failed;
  return status::error;
}

http1_response_parser::status http1_response_parser::done() {
  ph_ = phase::done;
  return status::complete;
}

http1_response_parser::status http1_response_parser::cut_off() {
  // The rest of the body is never read, so the connection cannot carry another response.
  truncated_ = true;
  keep_alive_ = false;
  return done();
}

// Finds the end of the line starting at in[pos]. Limits are judged at the first byte
// that breaks one, so the outcome does not depend on how the bytes were split: the line
// (every byte before its LF) may hold max_line bytes, and in a head or trailer section
// the section (line ends included) max_head bytes.
bool http1_response_parser::next_line(std::string_view in, std::size_t pos, std::string_view& line,
                                      std::size_t& next, const char* too_long) {
  const std::size_t avail = in.size() - pos;
  const void* lf = scan_ < avail ? std::memchr(in.data() + pos + scan_, '\n', avail - scan_) : nullptr;
  const std::size_t before_lf =
      lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - (in.data() + pos)) : avail;
  const std::size_t seen = before_lf + (lf ? 1 : 0);
  // Offsets (from the line start) of the first byte over each limit, if it is in view.
  const bool counts_head = ph_ == phase::status_line || ph_ == phase::headers || ph_ == phase::trailers;
  const std::size_t line_off = limits_.max_line;
  const std::size_t head_off = limits_.max_head > head_bytes_ ? limits_.max_head - head_bytes_ : 0;
  const bool line_over = before_lf > line_off;
  const bool head_over = counts_head && seen > head_off;
  if (line_over || head_over) {
    if (line_over && (!head_over || line_off <= head_off)) fail(too_long);
    else fail(head_too_large);
    return false;
  }
  if (!lf) {
    scan_ = avail;
    return false;
  }
  scan_ = 0;
  line = in.substr(pos, before_lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  next = pos + seen;
  if (counts_head) head_bytes_ += seen;
  return true;
}

bool http1_response_parser::on_status_line(std::string_view line) {
  // HTTP-version SP 3DIGIT [ SP reason-phrase ]; "HTTP/1.1 200" without a reason too.
  if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[5] < '0' || line[5] > '9' ||
      line[6] != '.' || line[7] < '0' || line[7] > '9' || line[8] != ' ') {
    fail("Invalid HTTP status line");
    return false;
  }
  if (line[5] != '1') {
    fail("Unsupported HTTP version in response");
    return false;
  }
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      fail("Invalid HTTP status line");
      return false;
    }
    code = code * 10 + (line[i] - '0');
  }
  if (code < 100 || (line.size() > 12 && line[12] != ' ')) {
    fail("Invalid HTTP status line");
    return false;
  }
  std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view();
  if (reason.find('\0') != std::string_view::npos || reason.find('\r') != std::string_view::npos) {
    fail("Invalid HTTP status line");
    return false;
  }
  code_ = code;
  http10_ = line[7] == '0';
  head_.clear();
  headers_.clear();
  reason_ = {head_.size(), reason.size()};
  head_.append(reason);
  return true;
}

bool http1_response_parser::on_header_line(std::string_view line) {
  if (!line.empty() && is_ws(line.front())) {
    // obs-fold: the previous field's value goes on, joined by one space.
    if (headers_.empty()) {
      fail(bad_header);
      return false;
    }
    std::string_view more = trim(line);
    if (more.find('\0') != std::string_view::npos || more.find('\r') != std::string_view::npos) {
      fail(bad_header);
      return false;
    }
    span& last = headers_.back();
    if (!more.empty()) {
      if (last.value_len > 0) {
        head_ += ' ';
        ++last.value_len;
      }
      head_.append(more);
      last.value_len += more.size();
    }
    return true;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    fail(bad_header);
    return false;
  }
  std::string_view name = line.substr(0, colon);
  for (unsigned char c : name) {
    if (!is_tchar(c)) {
      fail(bad_header);
      return false;
    }
  }
  std::string_view value = trim(line.substr(colon + 1));
  if (value.find('\0') != std::string_view::npos || value.find('\r') != std::string_view::npos) {
    fail(bad_header);
    return false;
  }
  if (headers_.size() >= limits_.max_headers) {
    fail("Too many response headers");
    return false;
  }
  span s{head_.size(), name.size(), 0, value.size()};
  head_.append(name);
  s.value_off = head_.size();
  head_.append(value);
  headers_.push_back(s);
  return true;
}

// The blank line after the headers: decides the framing (RFC 9112 section 6.3).
bool http1_response_parser::on_head_end() {
  for (std::size_t i = 0; i < headers_.size(); ++i) {
    auto [name, value] = header_at(i);
    if (iequals(name, "Content-Length")) {
      // "5", or a list ("5, 5") or repeated fields that must all agree.
      bool valid = true, conflict = false, any = false;
      each_element(value, [&](std::string_view e) {
        any = true;
        std::uint64_t v = 0;
        if (!parse_decimal(e, v)) valid = false;
        else if (content_length_ && *content_length_ != v) conflict = true;
        else content_length_ = v;
      });
      if (!valid || !any) {
        fail("Invalid Content-Length in response");
        return false;
      }
      if (conflict) {
        fail("Conflicting Content-Length values in response");
        return false;
      }
    } else if (iequals(name, "Transfer-Encoding")) {
      has_transfer_encoding_ = true;
      // The last coding of all Transfer-Encoding fields decides; parameters aside.
      each_element(value, [&](std::string_view e) { chunked_ = iequals(trim(e.substr(0, e.find(';'))), "chunked"); });
    } else if (iequals(name, "Connection")) {
      each_element(value, [&](std::string_view e) {
        if (iequals(e, "close")) close_ = true;
        else if (iequals(e, "keep-alive")) keep_alive_token_ = true;
      });
    }
  }
  return true;
}

bool http1_response_parser::on_chunk_size(std::string_view line) {
  // chunk-size [ BWS ";" chunk-ext ]
  std::size_t i = 0;
  std::uint64_t size = 0;
  while (i < line.size() && line[i] == '0') ++i;
  std::size_t digits = i;  // leading zeros count as digits
  std::size_t significant = 0;
  for (; i < line.size(); ++i) {
    int d = hex_value(line[i]);
    if (d < 0) break;
    if (++significant > 15) {  // 2^60 and up: no body is that long
      fail("Chunk size too large");
      return false;
    }
    size = size * 16 + static_cast<unsigned>(d);
  }
  digits += significant;
  std::size_t j = i;
  while (j < line.size() && is_ws(line[j])) ++j;
  if (digits == 0 || (j < line.size() && line[j] != ';')) {
    fail(bad_chunked);
    return false;
  }
  body_left_ = size;
  return true;
}

void http1_response_parser::keep(std::string_view data) {
  if (body_.size() < keep_) body_.append(data.substr(0, keep_ - body_.size()));
}

http1_response_parser::status http1_response_parser::feed(std::string_view in) {
  consumed_ = 0;
  if (ph_ == phase::done) return status::complete;
  if (ph_ == phase::failed) return status::error;
  if (!in.empty()) started_ = true;
  std::size_t pos = 0;
  // Room left before the body passes max_body (then one more byte shows it does).
  auto body_room = [&] { return limits_.max_body + 1 - body_seen_; };
  auto take_body = [&](std::uint64_t want) {
    std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>({want, in.size() - pos, body_room()}));
    keep(in.substr(pos, take));
    body_seen_ += take;
    pos += take;
    return take;
  };
  while (true) {
    consumed_ = pos;
    switch (ph_) {
      case phase::status_line:
      case phase::headers:
      case phase::trailers: {
        std::string_view line;
        std::size_t next = 0;
        if (!next_line(in, pos, line, next, line_too_long)) return ph_ == phase::failed ? status::error : status::need_more;
        pos = next;
        if (ph_ == phase::status_line) {
          if (!on_status_line(line)) return status::error;
          ph_ = phase::headers;
          continue;
        }
        if (ph_ == phase::trailers) {
          if (line.empty()) {
            consumed_ = pos;
            return done();
          }
          if (++fields_ > limits_.max_headers) return fail("Too many response trailers");
          continue;
        }
        if (!line.empty()) {
          if (!on_header_line(line)) return status::error;
          continue;
        }
        if (!on_head_end()) return status::error;
        consumed_ = pos;
        if (code_ >= 100 && code_ < 200 && code_ != 101) {
          // An interim response: the real one follows, with headers of its own.
          ph_ = phase::status_line;
          head_bytes_ = 0;
          content_length_.reset();
          has_transfer_encoding_ = chunked_ = close_ = keep_alive_token_ = false;
          continue;
        }
        keep_alive_ = !close_ && (!http10_ || keep_alive_token_);
        if (code_ == 101) keep_alive_ = false;  // the connection now speaks something else
        if (head_request_ || code_ < 200 || code_ == 204 || code_ == 304) return done();
        if (has_transfer_encoding_) {
          // Transfer-Encoding wins over Content-Length; either oddity (both, or chunked
          // on HTTP/1.0) means the framing may be in doubt: no reuse afterwards.
          if (content_length_ || http10_) keep_alive_ = false;
          if (chunked_) {
            ph_ = phase::chunk_size;
          } else {
            keep_alive_ = false;
            ph_ = phase::until_close;
          }
        } else if (content_length_) {
          if (*content_length_ == 0) return done();
          body_left_ = *content_length_;
          ph_ = phase::length;
        } else {
          keep_alive_ = false;
          ph_ = phase::until_close;
        }
        continue;
      }
      case phase::length: {
        const std::size_t took = take_body(body_left_);
        body_left_ -= took;
        consumed_ = pos;
        if (body_seen_ > limits_.max_body) return cut_off();
        if (body_left_ == 0) return done();
        return status::need_more;
      }
      case phase::until_close: {
        take_body(UINT64_MAX);
        consumed_ = pos;
        if (body_seen_ > limits_.max_body) return cut_off();
        return status::need_more;
      }
      case phase::chunk_size: {
        std::string_view line;
        std::size_t next = 0;
        if (!next_line(in, pos, line, next, chunk_line_too_long))
          return ph_ == phase::failed ? status::error : status::need_more;
        if (!on_chunk_size(line)) return status::error;
        pos = next;
        if (body_left_ == 0) {
          ph_ = phase::trailers;
          head_bytes_ = 0;
          fields_ = 0;
        } else {
          ph_ = phase::chunk_data;
        }
        continue;
      }
      case phase::chunk_data: {
        const std::size_t took = take_body(body_left_);
        body_left_ -= took;
        consumed_ = pos;
        if (body_seen_ > limits_.max_body) return cut_off();
        if (body_left_ > 0) return status::need_more;
        ph_ = phase::chunk_end;
        continue;
      }
      case phase::chunk_end: {
        // The CRLF (or LF) closing a chunk's data.
        const std::size_t avail = in.size() - pos;
        if (avail == 0) return status::need_more;
        if (in[pos] == '\n') {
          pos += 1;
        } else if (in[pos] == '\r') {
          if (avail < 2) return status::need_more;
          if (in[pos + 1] != '\n') return fail(bad_chunked);
          pos += 2;
        } else {
          return fail(bad_chunked);
        }
        ph_ = phase::chunk_size;
        continue;
      }
      case phase::done:
        return status::complete;
      case phase::failed:
        return status::error;
    }
  }
}

http1_response_parser::status http1_response_parser::finish() {
  consumed_ = 0;
  switch (ph_) {
    case phase::done:
      return status::complete;
    case phase::failed:
      return status::error;
    case phase::until_close:
      return done();
    default:
      return fail(started_ ? "Transferred a partial file" : "Empty reply from server");
  }
}

}  // namespace respq::workers
