// request_parser: incremental, zero-copy parser for client requests (RESP multibulk
// and inline "telnet" commands). No I/O, no allocation per command in the common case.
//
// Contract
//   The caller keeps the unconsumed input contiguous, starting at the first byte of the
//   command being parsed, and calls parse() with all of it each time more bytes arrive.
//   The parser remembers its progress as offsets from that start (never pointers), so the
//   caller may move (compact, reallocate) the buffer between calls as long as the bytes
//   keep their order from the command's first byte on.
//
//   parse() returns:
//     complete  - one command is ready: args() are views into the buffer passed to this
//                 call (valid until the caller changes those bytes) or, for inline commands
//                 with escapes, into the parser's own storage (valid until the next parse()).
//                 consumed() bytes belong to it; drop them and call parse() again for the
//                 next command. args() may be empty (a blank inline line, "*0\r\n", "*-1\r\n"):
//                 Redis skips those, and so should the caller.
//     incomplete - more bytes are needed; nothing is consumed. bytes_needed() is a lower
//                 bound on the total input (from the command start) needed to make progress,
//                 used to reserve room for a large bulk in one allocation.
//     error      - a protocol error; error() is the text after "ERR Protocol error: ",
//                 exactly as Redis 7 words it (e.g. "invalid multibulk length",
//                 "invalid bulk length", "expected '$', got 'x'", "too big inline request",
//                 "too big mbulk count string", "too big bulk count string",
//                 "unbalanced quotes in request", "unauthenticated multibulk length",
//                 "unauthenticated bulk length"). The error is sticky until reset(); the
//                 caller replies "-ERR Protocol error: <error()>" and closes the connection.
//
// Limits are checked before any allocation or wait: a multibulk count above
// max_multibulk_count or a bulk length above max_bulk_len fails at once, as Redis does
// (and as Redis does, tighter limits apply to clients that have not authenticated: the
// caller switches limits with set_limits(), e.g. to parser_limits::unauthenticated()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respq::resp {

struct parser_limits {
  std::size_t max_bulk_len = 512ull * 1024 * 1024;        // proto-max-bulk-len
  std::size_t max_multibulk_count = 2147483647ull;        // Redis: INT_MAX
  std::size_t max_inline_len = 64 * 1024;                 // PROTO_INLINE_MAX_SIZE
  // Redis's limits before AUTH: multibulk count <= 10, bulk length <= 16384. Redis checks
  // them after the limits above and reports them with their own texts
  // ("unauthenticated multibulk length", "unauthenticated bulk length"), so they are
  // separate fields; unlimited once the client is authenticated.
  std::size_t unauth_max_multibulk_count = static_cast<std::size_t>(-1);
  std::size_t unauth_max_bulk_len = static_cast<std::size_t>(-1);
  static parser_limits unauthenticated(parser_limits base) {
    base.unauth_max_multibulk_count = 10;
    base.unauth_max_bulk_len = 16384;
    return base;
  }
  static parser_limits unauthenticated() { return unauthenticated(parser_limits()); }
  // A NUL in a header line: on the network Redis's strchr never sees the line's '\r', so
  // the line waits for ever (false, the default); in a file (the AOF loader) the header
  // simply does not parse (true), an error, not a cut-off end.
  bool nul_is_error = false;
};

class request_parser {
 public:
  enum class status { complete, incomplete, error };

  explicit request_parser(parser_limits limits = {}) : limits_(limits) {}

  status parse(const char* data, std::size_t len);
  status parse(std::string_view in) { return parse(in.data(), in.size()); }

  std::span<const std::string_view> args() const { return {args_.data(), args_.size()}; }
  std::size_t consumed() const { return consumed_; }
  std::size_t bytes_needed() const { return needed_; }
  std::string_view error() const { return error_; }
  // True when the last complete command was an inline (telnet style) one.
  bool last_was_inline() const { return inline_; }

  void set_limits(parser_limits limits) { limits_ = limits; }
  const parser_limits& limits() const { return limits_; }
  // Forgets all progress and any sticky error.
  void reset();

 private:
  status parse_multibulk(const char* data, std::size_t len);
  status parse_inline(const char* data, std::size_t len);
  std::size_t find_header_end(const char* data, std::size_t len, std::size_t start);
  bool nul_blocks_line(const char* data, std::size_t start, std::size_t cr);
  status no_line_yet(std::size_t len, std::size_t start, const char* too_big);
  bool split_inline(const char* data, std::size_t n);
  status finish(const char* data, std::size_t consumed, bool is_inline);
  void clear_progress();
  status fail(std::string msg);

  parser_limits limits_;
  // Progress of the multibulk command being parsed, as offsets from its first byte.
  long long multibulk_count_ = -1;   // -1: header not parsed yet
  std::size_t pos_ = 0;              // offset of the next unparsed byte
  long long bulk_len_ = -1;          // length of the bulk at pos_; -1: its header not parsed
  // Line-end search: bytes before scan_ were searched already; line_blocked_ means a NUL
  // came first, so (as with Redis's strchr) this line never ends and only its size counts.
  std::size_t scan_ = 0;
  bool line_blocked_ = false;
  // (offset, length) per arg; an inline arg held in inline_storage_ is (npos, index).
  std::vector<std::pair<std::size_t, std::size_t>> spans_;
  // Results of the last complete command.
  std::vector<std::string_view> args_;
  std::vector<std::string> inline_storage_;
  std::size_t consumed_ = 0;
  std::size_t needed_ = 0;
  bool inline_ = false;
  std::string error_;
};

}  // namespace respq::resp
