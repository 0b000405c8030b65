// request_parser: see request_parser.hpp for the contract.
//
// The checks, their order and their error texts follow Redis 7.0's processMultibulkBuffer,
// processInlineBuffer and sdssplitargs one for one, so that respq accepts, waits on and
// rejects exactly the byte streams redis-server does. Some of Redis's behaviour looks
// accidental but is kept because clients and tests can observe it (each case was checked
// against redis-server 7.0.15):
//   - A header line ends at its first '\r'; the byte after it is skipped without checking
//     that it is '\n', and so are the two bytes after bulk data: "*1\rX$4\rXPINGxx" is a
//     valid PING.
//   - Redis finds line ends with strchr, which stops at a NUL byte. A NUL before the end of
//     a header or inline line therefore means "no line end yet": the request waits until
//     the buffered bytes exceed the 64 KB limit and then fails with the "too big" error.
//   - The 64 KB limits apply to the bytes buffered without a line end, which is what Redis
//     checks after each read. A longer inline line that arrives whole with its newline is
//     accepted, as Redis accepts it.
//   - In "expected '$', got 'X'" a CR or LF byte is shown as a space: Redis's error replies
//     never contain them.
//   - Before AUTH, a count above 10 or a bulk above 16384 bytes fails with
//     "unauthenticated multibulk length" / "unauthenticated bulk length", but only after
//     the general limits were checked (a 1 GB bulk is still an "invalid bulk length").
//
// Speed: a pipelined server calls parse() once per command, so the common path is a few
// memchr calls over short header lines, std::from_chars, and push_back into vectors that
// keep their capacity from command to command. Bulk bytes are never copied.
#include "resp/request_parser.hpp"

#include "resp/ascii.hpp"

#include <charconv>
#include <cstring>

namespace respq::resp {
namespace {

constexpr std::size_t npos = static_cast<std::size_t>(-1);
// find_header_end's answers when there is no complete line.
constexpr std::size_t no_line = npos;
constexpr std::size_t wait_for_byte = npos - 1;
constexpr long long int_max = 2147483647;

bool contains_nul(const char* p, std::size_t n) { return n != 0 && std::memchr(p, '\0', n) != nullptr; }

// isspace() in the C locale, which sdssplitargs uses to skip blanks and to accept the
// byte after a closing quote.
bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The bytes that end an unquoted token in sdssplitargs: a narrower set than is_space
// ('\v' and '\f' are kept inside a token, though skipped between tokens).
bool ends_token(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0'; }

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

request_parser::status request_parser::parse(const char* data, std::size_t len) {
  consumed_ = 0;
  args_.clear();
  if (!error_.empty()) return status::error;
  if (len == 0) {
    needed_ = 1;
    return status::incomplete;
  }
  // The contract has the input only grow between calls; if a caller breaks it, start the
  // command over rather than read out of bounds.
  if (pos_ > len || scan_ > len) clear_progress();
  // As Redis decides per command: '*' starts a multibulk, anything else is inline.
  return data[0] == '*' ? parse_multibulk(data, len) : parse_inline(data, len);
}

void request_parser::reset() {
  clear_progress();
  args_.clear();
  consumed_ = 0;
  needed_ = 0;
  inline_ = false;
  error_.clear();
}

// Offset of the '\r' ending the header line that starts at `start`; or no_line when there
// is none yet (Redis then checks the size of what is buffered); or wait_for_byte when the
// '\r' is the last byte: Redis wants one more byte (whatever it is) before it reads the
// line, and does not check the size meanwhile. The search resumes at scan_, so a slowly
// arriving line is scanned once.
std::size_t request_parser::find_header_end(const char* data, std::size_t len, std::size_t start) {
  if (line_blocked_) return no_line;
  std::size_t from = scan_ > start ? scan_ : start;
  const void* hit = std::memchr(data + from, '\r', len - from);
  if (hit == nullptr) {
    scan_ = len;
    return no_line;
  }
  std::size_t cr = static_cast<std::size_t>(static_cast<const char*>(hit) - data);
  scan_ = cr;
  if (cr + 1 >= len) return nul_blocks_line(data, start, cr) ? no_line : wait_for_byte;
  return cr;
}

// Called when a header line did not parse, or is waiting for the byte after its '\r':
// if it holds a NUL, Redis's strchr never saw the '\r', so the line is treated as not
// ended (for good). Only checked off the hot path: a header that parses has no NUL.
bool request_parser::nul_blocks_line(const char* data, std::size_t start, std::size_t cr) {
  if (!limits_.nul_is_error && contains_nul(data + start, cr - start)) line_blocked_ = true;
  return line_blocked_;
}

// The line starting at `start` has not ended: fail with `too_big` if more than the inline
// limit is buffered (when too_big is given), else wait for more bytes.
request_parser::status request_parser::no_line_yet(std::size_t len, std::size_t start,
                                                   const char* too_big) {
  if (too_big != nullptr && len - start > limits_.max_inline_len) return fail(too_big);
  needed_ = len + 1;
  return status::incomplete;
}

request_parser::status request_parser::parse_multibulk(const char* data, std::size_t len) {
  if (multibulk_count_ < 0) {
    constexpr const char* too_big = "too big mbulk count string";
    std::size_t cr = find_header_end(data, len, 0);
    if (cr >= wait_for_byte) return no_line_yet(len, 0, cr == no_line ? too_big : nullptr);
    long long count = 0;
    if (!string2ll({data + 1, cr - 1}, count)) {
      if (nul_blocks_line(data, 0, cr)) return no_line_yet(len, 0, too_big);
      return fail("invalid multibulk length");
    }
    if (count > int_max || (count > 0 && static_cast<std::size_t>(count) > limits_.max_multibulk_count))
      return fail("invalid multibulk length");
    if (count > 0 && static_cast<std::size_t>(count) > limits_.unauth_max_multibulk_count)
      return fail("unauthenticated multibulk length");
    pos_ = cr + 2;
    // "*0", "*-1": Redis consumes the header and runs nothing.
    if (count <= 0) return finish(data, pos_, false);
    multibulk_count_ = count;
    spans_.clear();
    bulk_len_ = -1;
    scan_ = pos_;
  }

  while (spans_.size() < static_cast<std::size_t>(multibulk_count_)) {
    if (bulk_len_ < 0) {
      constexpr const char* too_big = "too big bulk count string";
      std::size_t cr = find_header_end(data, len, pos_);
      if (cr >= wait_for_byte) return no_line_yet(len, pos_, cr == no_line ? too_big : nullptr);
      if (data[pos_] != '$') {
        if (nul_blocks_line(data, pos_, cr)) return no_line_yet(len, pos_, too_big);
        char got = data[pos_];
        if (got == '\r' || got == '\n') got = ' ';
        return fail(std::string("expected '$', got '") + got + "'");
      }
      long long n = 0;
      if (!string2ll({data + pos_ + 1, cr - pos_ - 1}, n)) {
        if (nul_blocks_line(data, pos_, cr)) return no_line_yet(len, pos_, too_big);
        return fail("invalid bulk length");
      }
      if (n < 0 || static_cast<std::size_t>(n) > limits_.max_bulk_len) return fail("invalid bulk length");
      if (static_cast<std::size_t>(n) > limits_.unauth_max_bulk_len) return fail("unauthenticated bulk length");
      bulk_len_ = n;
      pos_ = cr + 2;
    }
    // The bulk and the two bytes after it (meant to be CRLF; Redis does not look).
    std::size_t end = pos_ + static_cast<std::size_t>(bulk_len_) + 2;
    if (len < end) {
      needed_ = end;
      return status::incomplete;
    }
    spans_.emplace_back(pos_, static_cast<std::size_t>(bulk_len_));
    pos_ = end;
    bulk_len_ = -1;
    scan_ = pos_;
  }
  return finish(data, pos_, false);
}

request_parser::status request_parser::parse_inline(const char* data, std::size_t len) {
  // The line ends at the first '\n', unless a NUL comes before it (see the top of file).
  std::size_t nl = npos;
  if (!line_blocked_) {
    const void* hit = std::memchr(data + scan_, '\n', len - scan_);
    std::size_t end = hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data) : len;
    if (contains_nul(data + scan_, end - scan_))
      line_blocked_ = true;
    else if (hit)
      nl = end;
    else
      scan_ = len;
  }
  if (nl == npos) return no_line_yet(len, 0, "too big inline request");
  std::size_t line_len = nl > 0 && data[nl - 1] == '\r' ? nl - 1 : nl;
  if (!split_inline(data, line_len)) return fail("unbalanced quotes in request");
  return finish(data, nl + 1, true);
}

// sdssplitargs over data[0, n), as if data[n] were the string's terminating NUL (the line
// holds no NUL: parse_inline made sure). A token that is a contiguous run of input bytes
// (plain words, quoted words without escapes) becomes a view into the input; any other is
// built in inline_storage_, whose strings keep their capacity across commands.
// Returns false on unbalanced quotes.
bool request_parser::split_inline(const char* data, std::size_t n) {
  spans_.clear();
  std::size_t stored = 0;
  auto at = [&](std::size_t i) { return i < n ? data[i] : '\0'; };
  std::size_t i = 0;
  while (true) {
    while (i < n && is_space(data[i])) ++i;
    if (i >= n) break;

    // The token so far: a view [start, start + length) while contiguous, else a string.
    std::size_t start = i;
    std::size_t length = 0;
    std::string* copy = nullptr;
    auto to_copy = [&] {
      if (copy != nullptr) return;
      if (stored == inline_storage_.size()) inline_storage_.emplace_back();
      copy = &inline_storage_[stored++];
      copy->assign(data + start, length);
    };
    auto take_input = [&](std::size_t k) {  // append input byte k
      if (copy == nullptr) {
        if (length == 0) start = k;
        if (k == start + length) {
          ++length;
          return;
        }
        to_copy();
      }
      copy->push_back(data[k]);
    };
    auto take_byte = [&](char c) {  // append a byte produced by an escape
      to_copy();
      copy->push_back(c);
    };

    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && is_hex(at(i + 2)) && is_hex(at(i + 3))) {
          take_byte(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          switch (data[i]) {
            case 'n': take_byte('\n'); break;
            case 'r': take_byte('\r'); break;
            case 't': take_byte('\t'); break;
            case 'b': take_byte('\b'); break;
            case 'a': take_byte('\a'); break;
            default: take_input(i); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a blank or the end of the line.
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          take_input(i);
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          take_input(i);
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          take_input(i);
        }
      } else if (ends_token(c)) {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        take_input(i);
      }
      if (at(i) != '\0') ++i;
    }
    if (copy != nullptr)
      spans_.emplace_back(npos, stored - 1);
    else
      spans_.emplace_back(start, length);
  }
  return true;
}

// Publishes the command: views are made only now, from this call's buffer (and from
// inline_storage_, which no longer grows), then the progress is cleared for the next one.
request_parser::status request_parser::finish(const char* data, std::size_t consumed, bool is_inline) {
  for (const auto& [off, n] : spans_) {
    if (off == npos)
      args_.emplace_back(inline_storage_[n]);
    else
      args_.emplace_back(data + off, n);
  }
  consumed_ = consumed;
  needed_ = 0;
  inline_ = is_inline;
  clear_progress();
  return status::complete;
}

void request_parser::clear_progress() {
  multibulk_count_ = -1;
  pos_ = 0;
  bulk_len_ = -1;
  scan_ = 0;
  line_blocked_ = false;
  spans_.clear();
}

request_parser::status request_parser::fail(std::string msg) {
  error_ = std::move(msg);
  consumed_ = 0;
  needed_ = 0;
  args_.clear();
  return status::error;
}

}  // namespace respq::resp
