// parser_fuzz: libFuzzer entry point for request_parser (also replayed over the seed
// corpus by replay_main.cpp in normal builds).
//
// An input is the byte stream a client sends. For each of three limit sets (default,
// unauthenticated, and tiny limits that make the size checks reachable with short inputs)
// it checks:
//   - the parser against a reference model: a plain, non-incremental transcription of
//     Redis 7.0's processMultibulkBuffer / processInlineBuffer / sdssplitargs working on
//     the whole stream; fed whole, the parser must produce the same commands, consumed
//     counts and final error or leftover;
//   - contract invariants at every call: complete consumes 1..len bytes, incomplete
//     consumes nothing and bytes_needed() > len, and fewer bytes than bytes_needed()
//     cannot complete; multibulk args lie inside the consumed bytes; inline args lie
//     either inside them or wholly outside the input (the parser's storage);
//   - fed in pseudo-random chunks (derived from the input, so replays are exact) with the
//     unconsumed bytes copied to a fresh heap block before each call, the result is the
//     same as fed whole; the one allowed difference is Redis's own: a "too big ..." size
//     error that fires on a partial buffer, after a prefix of the same commands;
//   - errors are sticky (same text, nothing consumed, no args) until reset(), after which
//     a PING parses.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resp/request_parser.hpp"

using respq::resp::parser_limits;
using respq::resp::request_parser;

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "parser_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

struct run_result {
  std::vector<std::vector<std::string>> commands;
  std::vector<std::size_t> consumed;
  std::vector<bool> inline_flags;
  bool failed = false;
  std::string error;
  std::size_t leftover = 0;

  bool same_commands(const run_result& o) const {
    return commands == o.commands && consumed == o.consumed && inline_flags == o.inline_flags;
  }
};

// ---- Reference model: Redis 7.0's request parsing, transcribed without optimisation ----

// Redis's string2ll.
bool ref_string2ll(const char* s, std::size_t slen, long long* value) {
  if (slen == 0 || slen >= 21) return false;
  std::size_t i = 0;
  if (slen == 1 && s[0] == '0') {
    *value = 0;
    return true;
  }
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (++i == slen) return false;
  }
  unsigned long long v;
  if (s[i] >= '1' && s[i] <= '9') {
    v = static_cast<unsigned long long>(s[i] - '0');
    ++i;
  } else {
    return false;
  }
  while (i < slen && s[i] >= '0' && s[i] <= '9') {
    if (v > ~0ull / 10) return false;
    v *= 10;
    unsigned long long d = static_cast<unsigned long long>(s[i] - '0');
    if (v > ~0ull - d) return false;
    v += d;
    ++i;
  }
  if (i < slen) return false;
  if (negative) {
    if (v > 9223372036854775808ull) return false;
    *value = v == 9223372036854775808ull ? INT64_MIN : -static_cast<long long>(v);
  } else {
    if (v > 9223372036854775807ull) return false;
    *value = static_cast<long long>(v);
  }
  return true;
}

// strchr over the stream as Redis's NUL-terminated query buffer: stops at a NUL.
std::size_t ref_strchr(const std::string& buf, std::size_t from, char c) {
  for (std::size_t i = from; i < buf.size(); ++i) {
    if (buf[i] == c) return i;
    if (buf[i] == '\0') return std::string::npos;
  }
  return std::string::npos;
}

bool ref_isspace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
bool ref_ishex(char c) { return std::strchr("0123456789abcdefABCDEF", c) != nullptr && c != '\0'; }
int ref_hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

// Redis's sdssplitargs on a NUL-terminated line.
bool ref_splitargs(const char* p, std::vector<std::string>& out) {
  while (true) {
    while (*p && ref_isspace(*p)) p++;
    if (!*p) return true;
    bool inq = false, insq = false, done = false;
    std::string current;
    while (!done) {
      if (inq) {
        if (*p == '\\' && *(p + 1) == 'x' && ref_ishex(*(p + 2)) && ref_ishex(*(p + 3))) {
          current.push_back(static_cast<char>(ref_hexval(*(p + 2)) * 16 + ref_hexval(*(p + 3))));
          p += 3;
        } else if (*p == '\\' && *(p + 1)) {
          p++;
          char c;
          switch (*p) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'a': c = '\a'; break;
            default: c = *p; break;
          }
          current.push_back(c);
        } else if (*p == '"') {
          if (*(p + 1) && !ref_isspace(*(p + 1))) return false;
          done = true;
        } else if (!*p) {
          return false;
        } else {
          current.push_back(*p);
        }
      } else if (insq) {
        if (*p == '\\' && *(p + 1) == '\'') {
          p++;
          current.push_back('\'');
        } else if (*p == '\'') {
          if (*(p + 1) && !ref_isspace(*(p + 1))) return false;
          done = true;
        } else if (!*p) {
          return false;
        } else {
          current.push_back(*p);
        }
      } else {
        switch (*p) {
          case ' ': case '\n': case '\r': case '\t': case '\0': done = true; break;
          case '"': inq = true; break;
          case '\'': insq = true; break;
          default: current.push_back(*p); break;
        }
      }
      if (*p) p++;
    }
    out.push_back(std::move(current));
  }
}

run_result reference_run(const std::string& buf, const parser_limits& lim) {
  run_result r;
  const std::size_t n = buf.size();
  std::size_t q = 0;
  auto fail = [&](const char* e) {
    r.failed = true;
    r.error = e;
    r.leftover = n - q;
    return r;
  };
  while (q < n) {
    const std::size_t start = q;
    std::vector<std::string> argv;
    if (buf[q] != '*') {
      std::size_t nl = ref_strchr(buf, q, '\n');
      if (nl == std::string::npos) {
        if (n - q > lim.max_inline_len) return fail("too big inline request");
        break;
      }
      std::size_t end = nl;
      if (end != q && buf[end - 1] == '\r') end--;
      std::string line = buf.substr(q, end - q);  // holds no NUL: strchr stopped at none
      if (!ref_splitargs(line.c_str(), argv)) return fail("unbalanced quotes in request");
      q = nl + 1;
      r.commands.push_back(argv);
      r.consumed.push_back(q - start);
      r.inline_flags.push_back(true);
      continue;
    }
    std::size_t cr = ref_strchr(buf, q, '\r');
    if (cr == std::string::npos) {
      if (n - q > lim.max_inline_len) return fail("too big mbulk count string");
      break;
    }
    if (cr + 1 >= n) break;
    long long ll;
    if (!ref_string2ll(buf.data() + q + 1, cr - (q + 1), &ll) || ll > 2147483647 ||
        (ll > 0 && static_cast<unsigned long long>(ll) > lim.max_multibulk_count))
      return fail("invalid multibulk length");
    if (ll > 0 && static_cast<unsigned long long>(ll) > lim.unauth_max_multibulk_count)
      return fail("unauthenticated multibulk length");
    std::size_t pos = cr + 2;
    bool complete = true;
    for (long long k = 0; k < ll; ++k) {
      std::size_t bcr = ref_strchr(buf, pos, '\r');
      if (bcr == std::string::npos) {
        if (n - pos > lim.max_inline_len) return fail("too big bulk count string");
        complete = false;
        break;
      }
      if (bcr + 1 >= n) {
        complete = false;
        break;
      }
      if (buf[pos] != '$') {
        char got = buf[pos] == '\r' || buf[pos] == '\n' ? ' ' : buf[pos];
        std::string e = std::string("expected '$', got '") + got + "'";
        return fail(e.c_str());
      }
      long long bl;
      if (!ref_string2ll(buf.data() + pos + 1, bcr - (pos + 1), &bl) || bl < 0 ||
          static_cast<unsigned long long>(bl) > lim.max_bulk_len)
        return fail("invalid bulk length");
      if (static_cast<unsigned long long>(bl) > lim.unauth_max_bulk_len) return fail("unauthenticated bulk length");
      pos = bcr + 2;
      if (n - pos < static_cast<std::size_t>(bl) + 2) {
        complete = false;
        break;
      }
      argv.push_back(buf.substr(pos, static_cast<std::size_t>(bl)));
      pos += static_cast<std::size_t>(bl) + 2;
    }
    if (!complete) break;
    q = pos;
    r.commands.push_back(argv);
    r.consumed.push_back(q - start);
    r.inline_flags.push_back(false);
  }
  r.leftover = n - q;
  return r;
}

// ---- Driving the parser ----

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void check_sticky(request_parser& p, const std::string& err, const char* data, std::size_t len) {
  for (int i = 0; i < 2; ++i) {
    auto st = i == 0 ? p.parse(data, len) : p.parse("*1\r\n$4\r\nPING\r\n");
    FUZZ_CHECK(st == request_parser::status::error);
    FUZZ_CHECK(p.error() == err);
    FUZZ_CHECK(p.consumed() == 0);
    FUZZ_CHECK(p.args().empty());
  }
  p.reset();
  FUZZ_CHECK(p.error().empty());
  FUZZ_CHECK(p.parse("*1\r\n$4\r\nPING\r\n") == request_parser::status::complete);
  FUZZ_CHECK(p.args().size() == 1 && p.args()[0] == "PING");
}

// Feeds `in` up to each chunk end in turn; with `move`, every call sees a fresh copy.
run_result parser_run(const std::string& in, const parser_limits& lim, const std::vector<std::size_t>& ends,
                      bool move) {
  run_result r;
  request_parser p(lim);
  std::size_t start = 0;
  std::size_t needed = 0;  // bytes_needed() of the last incomplete answer, 0 after progress
  std::unique_ptr<char[]> block;
  for (std::size_t end : ends) {
    while (start < end) {
      const char* data = in.data() + start;
      std::size_t len = end - start;
      if (move) {
        auto fresh = std::make_unique<char[]>(len);
        std::memcpy(fresh.get(), data, len);
        block = std::move(fresh);
        data = block.get();
      }
      auto st = p.parse(data, len);
      if (len < needed) FUZZ_CHECK(st == request_parser::status::incomplete);
      if (st == request_parser::status::incomplete) {
        FUZZ_CHECK(p.consumed() == 0);
        FUZZ_CHECK(p.args().empty());
        FUZZ_CHECK(p.bytes_needed() > len);
        needed = p.bytes_needed();
        break;
      }
      needed = 0;
      if (st == request_parser::status::error) {
        FUZZ_CHECK(!p.error().empty());
        FUZZ_CHECK(p.consumed() == 0);
        FUZZ_CHECK(p.args().empty());
        r.failed = true;
        r.error = std::string(p.error());
        r.leftover = in.size() - start;
        check_sticky(p, r.error, data, len);
        return r;
      }
      FUZZ_CHECK(p.consumed() >= 1 && p.consumed() <= len);
      std::vector<std::string> args;
      for (std::string_view a : p.args()) {
        bool inside = a.data() >= data && a.data() + a.size() <= data + p.consumed();
        bool outside = a.data() + a.size() <= data || a.data() >= data + len;
        if (a.empty()) inside = outside = true;  // an empty view may point anywhere
        FUZZ_CHECK(inside || (p.last_was_inline() && outside));
        args.emplace_back(a);
      }
      r.commands.push_back(std::move(args));
      r.consumed.push_back(p.consumed());
      r.inline_flags.push_back(p.last_was_inline());
      start += p.consumed();
    }
  }
  r.leftover = in.size() - start;
  return r;
}

bool is_size_error(const std::string& e) {
  return e == "too big inline request" || e == "too big mbulk count string" || e == "too big bulk count string";
}

void check_limits(const std::string& in, const parser_limits& lim, std::uint64_t seed) {
  run_result ref = reference_run(in, lim);
  run_result whole = parser_run(in, lim, {in.size()}, false);
  FUZZ_CHECK(whole.same_commands(ref));
  FUZZ_CHECK(whole.failed == ref.failed);
  FUZZ_CHECK(whole.error == ref.error);
  FUZZ_CHECK(whole.leftover == ref.leftover);

  for (int round = 0; round < 3; ++round) {
    std::vector<std::size_t> ends;
    std::size_t max_chunk = round == 0 ? 1 : round == 1 ? 7 : 64;
    for (std::size_t at = 0; at < in.size();) {
      at += 1 + static_cast<std::size_t>(splitmix(seed) % max_chunk);
      ends.push_back(at < in.size() ? at : in.size());
    }
    if (ends.empty()) ends.push_back(0);
    run_result split = parser_run(in, lim, ends, round != 1);
    if (split.failed && is_size_error(split.error) && !(whole.failed && split.error == whole.error &&
                                                        split.commands.size() == whole.commands.size())) {
      // A size limit hit on a partial buffer: a prefix of the same commands came first.
      FUZZ_CHECK(split.commands.size() <= whole.commands.size());
      for (std::size_t i = 0; i < split.commands.size(); ++i) {
        FUZZ_CHECK(split.commands[i] == whole.commands[i]);
        FUZZ_CHECK(split.consumed[i] == whole.consumed[i]);
      }
      continue;
    }
    FUZZ_CHECK(split.same_commands(whole));
    FUZZ_CHECK(split.failed == whole.failed);
    FUZZ_CHECK(split.error == whole.error);
    FUZZ_CHECK(split.leftover == whole.leftover);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  std::uint64_t seed = 1469598103934665603ull;
  for (unsigned char c : in) seed = (seed ^ c) * 1099511628211ull;

  check_limits(in, parser_limits{}, seed);
  check_limits(in, parser_limits::unauthenticated(), seed + 1);
  parser_limits tiny;
  tiny.max_bulk_len = 40;
  tiny.max_multibulk_count = 6;
  tiny.max_inline_len = 24;
  check_limits(in, tiny, seed + 2);
  check_limits(in, parser_limits::unauthenticated(tiny), seed + 3);
  return 0;
}
