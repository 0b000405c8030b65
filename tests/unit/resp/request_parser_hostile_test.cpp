// Specs for request_parser on hostile or malformed input: each case gives the error text
// redis-server 7.0.15 replies with (after "ERR Protocol error: "), or shows where Redis
// waits or accepts input that looks wrong. Errors are sticky until reset().
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "parser_driver.hpp"
#include "resp/request_parser.hpp"

using namespace std::string_literals;
using respq::resp::parser_limits;
using respq::resp::request_parser;
using respq::resp::test::every_byte;
using respq::resp::test::feed;
using respq::resp::test::feed_whole;

namespace {

struct bad_case {
  std::string bytes;
  std::string error;
};

// The error must not depend on how the bytes arrive.
void check_error_at_every_split(const bad_case& c, parser_limits limits = {}) {
  INFO("input " << c.bytes);
  {
    request_parser p(limits);
    auto r = feed_whole(p, c.bytes);
    REQUIRE(r.failed);
    CHECK(r.error == c.error);
  }
  for (std::size_t cut = 1; cut < c.bytes.size(); ++cut) {
    INFO("split at " << cut);
    request_parser p(limits);
    auto r = feed(p, c.bytes, {cut}, true);
    REQUIRE(r.failed);
    CHECK(r.error == c.error);
  }
  request_parser p(limits);
  auto r = feed(p, c.bytes, every_byte(c.bytes.size()), true);
  REQUIRE(r.failed);
  CHECK(r.error == c.error);
}

request_parser::status parse_once(request_parser& p, const std::string& s) { return p.parse(s); }

}  // namespace

TEST_CASE("multibulk counts that are not strict integers are invalid multibulk lengths", "[request_parser]") {
  for (std::string count : {"", "x", "01", "+1", " 1", "1 ", "-0", "1.0", "0x10", "--1", "-", "1\t"}) {
    check_error_at_every_split({"*" + count + "\r\n", "invalid multibulk length"});
  }
}

TEST_CASE("nested or repeated array markers are invalid multibulk lengths", "[request_parser]") {
  check_error_at_every_split({"**\r\n", "invalid multibulk length"});
  check_error_at_every_split({"**1\r\n$1\r\na\r\n", "invalid multibulk length"});
  check_error_at_every_split({"*1*\r\n", "invalid multibulk length"});
}

TEST_CASE("a multibulk count above INT_MAX is invalid and INT_MAX itself waits for its args", "[request_parser]") {
  check_error_at_every_split({"*2147483648\r\n", "invalid multibulk length"});
  check_error_at_every_split({"*99999999999999999999\r\n", "invalid multibulk length"});
  check_error_at_every_split({"*-9223372036854775809\r\n", "invalid multibulk length"});
  request_parser p;
  std::string max = "*2147483647\r\n$1\r\na\r\n";
  REQUIRE(parse_once(p, max) == request_parser::status::incomplete);
  CHECK(p.consumed() == 0);
}

TEST_CASE("zero and negative multibulk counts complete with no args", "[request_parser]") {
  for (std::string s : {"*0\r\n", "*-1\r\n", "*-5\r\n", "*-9223372036854775808\r\n"}) {
    INFO(s);
    request_parser p;
    REQUIRE(parse_once(p, s) == request_parser::status::complete);
    CHECK(p.consumed() == s.size());
    CHECK(p.args().empty());
    CHECK_FALSE(p.last_was_inline());
  }
}

TEST_CASE("a bulk header that does not start with '$' names the byte found", "[request_parser]") {
  check_error_at_every_split({"*1\r\nx\r\n", "expected '$', got 'x'"});
  check_error_at_every_split({"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"});
  check_error_at_every_split({"*2\r\n$1\r\na\r\n:5\r\n", "expected '$', got ':'"});
  check_error_at_every_split({"*1\r\n\xff\r\n", "expected '$', got '\xff'"});
  // CR and LF are shown as spaces, as Redis never puts them in an error line.
  check_error_at_every_split({"*1\r\n\r\n", "expected '$', got ' '"});
  check_error_at_every_split({"*1\r\n\n$4\r\n", "expected '$', got ' '"});
}

TEST_CASE("bulk lengths that are negative, malformed or too large are invalid bulk lengths", "[request_parser]") {
  for (std::string len : {"-1", "-0", "00", "+4", " 4", "4 ", "", "x", "9223372036854775807",
                          "99999999999999999999", "536870913"}) {
    check_error_at_every_split({"*1\r\n$" + len + "\r\n", "invalid bulk length"});
  }
}

TEST_CASE("a bulk length above max_bulk_len fails before any byte of it arrives", "[request_parser]") {
  parser_limits limits;
  limits.max_bulk_len = 100;
  request_parser p(limits);
  CHECK(parse_once(p, "*1\r\n$100\r\n") == request_parser::status::incomplete);
  request_parser q(limits);
  REQUIRE(parse_once(q, "*1\r\n$101\r\n") == request_parser::status::error);
  CHECK(q.error() == "invalid bulk length");
}

TEST_CASE("an unauthenticated client gets Redis's unauthenticated errors above 10 args or 16384 bytes",
          "[request_parser]") {
  auto unauth = parser_limits::unauthenticated();
  check_error_at_every_split({"*11\r\n", "unauthenticated multibulk length"}, unauth);
  check_error_at_every_split({"*1\r\n$16385\r\n", "unauthenticated bulk length"}, unauth);
  // The general limits are checked first, with their own texts.
  check_error_at_every_split({"*2147483648\r\n", "invalid multibulk length"}, unauth);
  check_error_at_every_split({"*1\r\n$536870913\r\n", "invalid bulk length"}, unauth);
  check_error_at_every_split({"*1\r\n$-1\r\n", "invalid bulk length"}, unauth);
  // Counts that run nothing are not limited.
  request_parser p(unauth);
  CHECK(parse_once(p, "*-5\r\n") == request_parser::status::complete);
}

TEST_CASE("bulk data not followed by CRLF is accepted: Redis skips the two bytes unread", "[request_parser]") {
  request_parser p;
  std::string s = "*2\r\n$4\r\nECHO\r\n$2\r\nhixx*1\r\n$4\r\nPING\r\n";
  auto r = feed_whole(p, s);
  REQUIRE_FALSE(r.failed);
  REQUIRE(r.commands.size() == 2);
  CHECK(r.commands[0] == respq::resp::test::command{"ECHO", "hi"});
  CHECK(r.commands[1] == respq::resp::test::command{"PING"});
  // Until those two bytes arrive the command waits.
  request_parser q;
  CHECK(parse_once(q, "*1\r\n$4\r\nPINGx") == request_parser::status::incomplete);
  CHECK(q.bytes_needed() == 14);
}

TEST_CASE("bulk data longer than announced runs into the next header", "[request_parser]") {
  // "$2" takes "hi" and skips "lo"; "\r\n" is then where the next '$' should be.
  check_error_at_every_split({"*3\r\n$4\r\nECHO\r\n$2\r\nhilo\r\n$1\r\nx\r\n", "expected '$', got ' '"});
}

TEST_CASE("a header line waits for one byte after its CR, whatever that byte is", "[request_parser]") {
  request_parser p;
  CHECK(parse_once(p, "*1\r") == request_parser::status::incomplete);
  CHECK(parse_once(p, "*1\r?$4\r!PING..") == request_parser::status::complete);
  CHECK(p.consumed() == 14);
  // No size check meanwhile: a long count line ending in CR waits, then is invalid.
  std::string digits(70000, '1');
  request_parser q;
  CHECK(parse_once(q, "*" + digits + "\r") == request_parser::status::incomplete);
  REQUIRE(parse_once(q, "*" + digits + "\r\n") == request_parser::status::error);
  CHECK(q.error() == "invalid multibulk length");
}

TEST_CASE("a count or bulk header line without CR fails only past 64 KB", "[request_parser]") {
  std::string at_limit = "*" + std::string(65535, '1');  // 65536 bytes buffered
  request_parser p;
  CHECK(parse_once(p, at_limit) == request_parser::status::incomplete);
  REQUIRE(parse_once(p, at_limit + "1") == request_parser::status::error);
  CHECK(p.error() == "too big mbulk count string");

  // For a bulk header the limit counts from the header's first byte.
  std::string bulk = "*1\r\n$" + std::string(65535, '1');
  request_parser q;
  CHECK(parse_once(q, bulk) == request_parser::status::incomplete);
  REQUIRE(parse_once(q, bulk + "1") == request_parser::status::error);
  CHECK(q.error() == "too big bulk count string");

  // With the CR present, an overlong number is just an invalid length.
  request_parser r;
  REQUIRE(parse_once(r, "*1\r\n$" + std::string(70000, '1') + "\r\n") == request_parser::status::error);
  CHECK(r.error() == "invalid bulk length");
}

TEST_CASE("a NUL before a header's CR hides the line end, as Redis's strchr does", "[request_parser]") {
  request_parser p;
  std::string s = "*1\0\r\n$4\r\nPING\r\n"s;
  CHECK(parse_once(p, s) == request_parser::status::incomplete);
  REQUIRE(parse_once(p, s + std::string(70000, 'x')) == request_parser::status::error);
  CHECK(p.error() == "too big mbulk count string");

  request_parser q;
  std::string b = "*1\r\n$4\0\r\nPING\r\n"s;
  CHECK(parse_once(q, b) == request_parser::status::incomplete);
  REQUIRE(parse_once(q, b + std::string(70000, 'x')) == request_parser::status::error);
  CHECK(q.error() == "too big bulk count string");

  request_parser r;
  std::string c = "*1\r\n\0$4\r\nPING\r\n"s;
  CHECK(parse_once(r, c) == request_parser::status::incomplete);

  // NULs inside bulk data are ordinary bytes.
  request_parser d;
  auto res = feed_whole(d, "*1\r\n$3\r\na\0b\r\n"s);
  REQUIRE_FALSE(res.failed);
  CHECK(res.commands.at(0).at(0) == "a\0b"s);
}

TEST_CASE("an inline line fails only when more than 64 KB is buffered without a newline", "[request_parser]") {
  std::string line(65536, 'a');
  request_parser p;
  CHECK(parse_once(p, line) == request_parser::status::incomplete);
  REQUIRE(parse_once(p, line + "a") == request_parser::status::error);
  CHECK(p.error() == "too big inline request");

  request_parser q;
  REQUIRE(parse_once(q, line + "\n") == request_parser::status::complete);
  CHECK(q.consumed() == 65537);
  CHECK(q.args().size() == 1);

  // Redis checks what is buffered, not the line length: a longer line that is already
  // complete is accepted.
  request_parser r;
  std::string longer = std::string(70000, 'b') + "\r\n";
  REQUIRE(parse_once(r, longer) == request_parser::status::complete);
  CHECK(r.args()[0].size() == 70000);
}

TEST_CASE("max_inline_len sets the inline and header line limits", "[request_parser]") {
  parser_limits limits;
  limits.max_inline_len = 8;
  request_parser p(limits);
  CHECK(parse_once(p, "PINGPING") == request_parser::status::incomplete);
  REQUIRE(parse_once(p, "PINGPINGx") == request_parser::status::error);
  CHECK(p.error() == "too big inline request");
  request_parser q(limits);
  REQUIRE(parse_once(q, "*123456789") == request_parser::status::error);
  CHECK(q.error() == "too big mbulk count string");
}

TEST_CASE("in a file (nul_is_error) a NUL in a header is an error at once", "[request_parser]") {
  parser_limits strict;
  strict.nul_is_error = true;
  const std::pair<std::string, std::string> cases[] = {
      {"*1\0\r\n$4\r\nPING\r\n"s, "invalid multibulk length"},
      {"*1\r\n$4\0\r\nPING\r\n"s, "invalid bulk length"},
      {"*1\r\n\0$4\r\nPING\r\n"s, "expected '$', got '\0'"s}};
  for (const auto& [input, error] : cases) {
    request_parser p(strict);
    REQUIRE(parse_once(p, input) == request_parser::status::error);
    CHECK(p.error() == error);
  }
  // A header cut after its CR still waits (a file cut short there).
  request_parser q(strict);
  CHECK(parse_once(q, "*1\r\n$4\r"s) == request_parser::status::incomplete);
}

TEST_CASE("a NUL in an inline line hides its newline until the 64 KB limit", "[request_parser]") {
  request_parser p;
  std::string s = "PING\0\r\nPING\r\n"s;
  CHECK(parse_once(p, s) == request_parser::status::incomplete);
  CHECK(parse_once(p, s + std::string(65000, '\n')) == request_parser::status::incomplete);
  REQUIRE(parse_once(p, s + std::string(65536, '\n')) == request_parser::status::error);
  CHECK(p.error() == "too big inline request");
}

TEST_CASE("unbalanced quotes in an inline command are a protocol error", "[request_parser]") {
  for (std::string line : {"ECHO \"abc\r\n", "ECHO 'abc\n", "ECHO a\"b c\"d\r\n", "ECHO \"a\"\"b\"\r\n",
                           "ECHO 'a'b\r\n", "ECHO \"a\\\"\r\n", "ECHO \"\\\r\n", "\"\n"}) {
    check_error_at_every_split({line, "unbalanced quotes in request"});
  }
}

TEST_CASE("an error is sticky until reset", "[request_parser]") {
  request_parser p;
  REQUIRE(parse_once(p, "*x\r\n") == request_parser::status::error);
  CHECK(p.error() == "invalid multibulk length");
  for (std::string next : {"*1\r\n$4\r\nPING\r\n", "PING\r\n", "", "*0\r\n"}) {
    CHECK(parse_once(p, next) == request_parser::status::error);
    CHECK(p.error() == "invalid multibulk length");
    CHECK(p.consumed() == 0);
    CHECK(p.args().empty());
  }
  p.reset();
  CHECK(p.error().empty());
  std::string ping = "*1\r\n$4\r\nPING\r\n";
  REQUIRE(parse_once(p, ping) == request_parser::status::complete);
  CHECK(p.args()[0] == "PING");
}

TEST_CASE("reset forgets a half-parsed command", "[request_parser]") {
  request_parser p;
  CHECK(parse_once(p, "*2\r\n$4\r\nECHO\r\n$3\r\nab") == request_parser::status::incomplete);
  p.reset();
  std::string ping = "PING\r\n";
  REQUIRE(parse_once(p, ping) == request_parser::status::complete);
  CHECK(p.last_was_inline());
  CHECK(p.args()[0] == "PING");
}

TEST_CASE("a caller that shrinks the input restarts the command instead of reading past it",
          "[request_parser]") {
  request_parser p;
  std::string s = "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n";
  CHECK(parse_once(p, s.substr(0, 20)) == request_parser::status::incomplete);
  CHECK(p.parse(s.data(), 3) == request_parser::status::incomplete);
  REQUIRE(parse_once(p, s) == request_parser::status::complete);
  CHECK(p.args()[1] == "abc");
}
