// http1_response_fuzz: libFuzzer entry point for http1_response_parser (also replayed
// over the seed corpus by replay_main.cpp in normal builds).
//
// An input is one control byte and then the bytes a server sends. The control byte picks
// the request method (HEAD or not), whether the connection closes after the last byte,
// and the limits (default, or tiny ones that make every limit reachable with short
// inputs). Checks:
//   - fed whole, in pseudo-random pieces (derived from the input, so replays are exact)
//     with the unconsumed bytes moved to a fresh heap block before each call, and one
//     byte at a time (short inputs), the outcome is the same: status, error text, code,
//     reason, headers, kept body, body size, truncated, keep-alive, bytes consumed;
//   - the contract at every call: consumed() is within the input, need_more leaves at
//     most one line (max_line bytes) unconsumed, an error and a complete response are
//     sticky (nothing more consumed);
//   - a complete response respects the limits: kept body <= keep_body, body size <=
//     max_body + 1 and truncated exactly when it passed max_body, header count <=
//     max_headers, a 1xx other than 101 is never final; HEAD, 204 and 304 have no body;
//   - after a complete keep-alive response, the parser (begun again) parses a following
//     response, as on a reused connection.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workers/http1_response_parser.hpp"

using respq::workers::http1_response_parser;
using respq::workers::response_limits;
using status = http1_response_parser::status;

namespace {

#define FUZZ_CHECK(cond)                                                                               \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "http1_response_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                    \
    }                                                                                                  \
  } while (0)

struct outcome {
  status st = status::need_more;
  std::string error;
  int code = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::size_t body_size = 0;
  bool truncated = false;
  bool keep_alive = false;
  std::size_t consumed = 0;
  bool operator==(const outcome&) const = default;
};

// Feeds `input` in pieces of the sizes `next_piece` returns (0: the rest).
template <typename Pieces>
outcome run(std::string_view input, bool head, bool eof, const response_limits& limits, Pieces next_piece) {
  http1_response_parser p(limits);
  p.begin(head);
  std::string pending;
  std::size_t offered = 0;
  status st = status::need_more;
  while (offered < input.size()) {
    std::size_t n = next_piece();
    if (n == 0 || n > input.size() - offered) n = input.size() - offered;
    pending.append(input.substr(offered, n));
    offered += n;
    // A fresh block of exactly the unconsumed size: ASan sees any read past it, and the
    // parser must not keep pointers into the previous one.
    std::unique_ptr<char[]> block(new char[pending.size()]);
    std::copy(pending.begin(), pending.end(), block.get());
    st = p.feed(std::string_view(block.get(), pending.size()));
    FUZZ_CHECK(p.consumed() <= pending.size());
    pending.erase(0, p.consumed());
    if (st == status::need_more) {
      FUZZ_CHECK(pending.size() <= limits.max_line);
      continue;
    }
    // Sticky: nothing more is taken.
    FUZZ_CHECK(p.feed(pending) == st);
    FUZZ_CHECK(p.consumed() == 0);
    break;
  }
  if (st == status::need_more && eof) st = p.finish();
  outcome o;
  o.st = st;
  o.consumed = offered - pending.size();
  if (st == status::error) {
    o.error = std::string(p.error());
    FUZZ_CHECK(!o.error.empty());
    return o;
  }
  if (st != status::complete) return o;
  o.code = p.code();
  o.reason = std::string(p.reason());
  for (std::size_t i = 0; i < p.header_count(); ++i) {
    auto [n, v] = p.header_at(i);
    o.headers.emplace_back(std::string(n), std::string(v));
    FUZZ_CHECK(p.header(n).has_value());
  }
  o.body = p.body();
  o.body_size = p.body_size();
  o.truncated = p.truncated();
  o.keep_alive = p.keep_alive();
  // Limits and framing of a complete response.
  FUZZ_CHECK(o.code >= 100 && o.code <= 999);
  FUZZ_CHECK(o.code >= 200 || o.code == 101);
  FUZZ_CHECK(o.body.size() <= limits.keep_body);
  FUZZ_CHECK(o.body.size() == std::min(o.body_size, limits.keep_body));
  FUZZ_CHECK(o.body_size <= limits.max_body + 1);
  FUZZ_CHECK(o.truncated == (o.body_size > limits.max_body));
  FUZZ_CHECK(!o.truncated || !o.keep_alive);
  FUZZ_CHECK(o.headers.size() <= limits.max_headers);
  if (head || o.code == 204 || o.code == 304 || o.code < 200) FUZZ_CHECK(o.body_size == 0);
  if (o.keep_alive) {
    // The connection is reusable: the same parser takes the next response.
    p.begin(false);
    const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    FUZZ_CHECK(p.feed(next) == status::complete);
    FUZZ_CHECK(p.consumed() == next.size() && p.body() == "ok");
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool head = control & 1;
  const bool eof = control & 2;
  response_limits limits;
  if (control & 4) {
    limits.keep_body = 3 + (control >> 5);
    limits.max_body = 8 + (control >> 4 & 7);
    limits.max_line = 24;
    limits.max_head = 96;
    limits.max_headers = 4;
  }
  const outcome whole = run(input, head, eof, limits, [] { return std::size_t(0); });

  // Pieces from a small generator seeded by the input.
  std::uint32_t seed = 2166136261u;
  for (unsigned char c : input) seed = (seed ^ c) * 16777619u;
  auto pieces = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return std::size_t(1 + (seed >> 16) % 23);
  };
  FUZZ_CHECK(run(input, head, eof, limits, pieces) == whole);
  if (input.size() <= 4096) FUZZ_CHECK(run(input, head, eof, limits, [] { return std::size_t(1); }) == whole);
  return 0;
}
