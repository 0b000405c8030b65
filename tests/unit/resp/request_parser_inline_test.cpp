// Specs for inline (telnet style) commands: the line ends at '\n' (a CR before it is
// dropped) and splits into arguments exactly as Redis's sdssplitargs does. Expected
// results were checked against redis-server 7.0.15 with ECHO.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "parser_driver.hpp"
#include "resp/request_parser.hpp"

using namespace std::string_literals;
using respq::resp::request_parser;
using respq::resp::test::command;
using respq::resp::test::feed_whole;

namespace {

command split(const std::string& line) {
  request_parser p;
  auto r = feed_whole(p, line);
  REQUIRE_FALSE(r.failed);
  REQUIRE(r.commands.size() == 1);
  CHECK(r.consumed[0] == line.size());
  CHECK(r.inline_flags[0]);
  return r.commands[0];
}

}  // namespace

TEST_CASE("inline arguments are separated by runs of spaces and tabs", "[request_parser][inline]") {
  CHECK(split("PING\r\n") == command{"PING"});
  CHECK(split("PING\n") == command{"PING"});
  CHECK(split("LPUSH q a b\r\n") == command{"LPUSH", "q", "a", "b"});
  CHECK(split("  LPUSH \t q\t\ta  \r\n") == command{"LPUSH", "q", "a"});
}

TEST_CASE("a CR inside an inline line separates arguments and only the one before LF is dropped",
          "[request_parser][inline]") {
  CHECK(split("ECHO x\rY\r\n") == command{"ECHO", "x", "Y"});
  CHECK(split("ECHO x\r\r\n") == command{"ECHO", "x"});
}

TEST_CASE("vertical tab and form feed are skipped between arguments but kept inside one",
          "[request_parser][inline]") {
  CHECK(split("ECHO a\vb\r\n") == command{"ECHO", "a\vb"});
  CHECK(split("\vECHO\vx\r\n") == command{"ECHO\vx"});
  CHECK(split("ECHO \fa\r\n") == command{"ECHO", "a"});
}

TEST_CASE("blank inline lines complete with no args", "[request_parser][inline]") {
  CHECK(split("\r\n").empty());
  CHECK(split("\n").empty());
  CHECK(split(" \t \r\n").empty());
  CHECK(split("\r\r\n").empty());
}

TEST_CASE("double quotes group words and understand C escapes", "[request_parser][inline]") {
  CHECK(split("ECHO \"hello world\"\r\n") == command{"ECHO", "hello world"});
  CHECK(split("ECHO \"\"\r\n") == command{"ECHO", ""});
  CHECK(split("ECHO \"a\\x41\\n\\q\"\r\n") == command{"ECHO", "aA\nq"});
  CHECK(split("ECHO \"\\r\\t\\b\\a\\\\\\\"\"\r\n") == command{"ECHO", "\r\t\b\a\\\""});
  CHECK(split("ECHO \"\\xfF\\x00\"\r\n") == command{"ECHO", "\xff\0"s});
  // \x without two hex digits is just an escaped 'x'.
  CHECK(split("ECHO \"\\x4\"\r\n") == command{"ECHO", "x4"});
  CHECK(split("ECHO \"\\xZZ\"\r\n") == command{"ECHO", "xZZ"});
  // Quoted bytes are literal, including CR and single quotes.
  CHECK(split("ECHO \"a'b\rc\"\n") == command{"ECHO", "a'b\rc"});
}

TEST_CASE("single quotes only understand the escaped single quote", "[request_parser][inline]") {
  CHECK(split("ECHO 'it\\'s'\r\n") == command{"ECHO", "it's"});
  CHECK(split("ECHO 'a\\nb'\r\n") == command{"ECHO", "a\\nb"});
  CHECK(split("ECHO ''\n") == command{"ECHO", ""});
  CHECK(split("ECHO 'say \"hi\"'\n") == command{"ECHO", "say \"hi\""});
}

TEST_CASE("a quote may open in the middle of an argument", "[request_parser][inline]") {
  CHECK(split("ECHO a\"b c\"\r\n") == command{"ECHO", "ab c"});
  CHECK(split("ECHO a'b c'\r\n") == command{"ECHO", "ab c"});
  // A closing quote may be followed by any blank, including a vertical tab.
  CHECK(split("ECHO \"a\"\vx\r\n") == command{"ECHO", "a", "x"});
}

TEST_CASE("plain inline arguments are views into the input, escaped ones into the parser",
          "[request_parser][inline]") {
  request_parser p;
  std::string line = "SET plain \"quoted\" \"esc\\n\" a\"b\"\r\n";
  REQUIRE(p.parse(line) == request_parser::status::complete);
  auto args = p.args();
  REQUIRE(args.size() == 5);
  auto inside = [&](std::string_view a) { return a.data() >= line.data() && a.data() < line.data() + line.size(); };
  CHECK(inside(args[0]));
  CHECK(inside(args[1]));
  CHECK(inside(args[2]));
  CHECK(args[2] == "quoted");
  CHECK_FALSE(inside(args[3]));
  CHECK(args[3] == "esc\n");
  CHECK_FALSE(inside(args[4]));
  CHECK(args[4] == "ab");
}

TEST_CASE("many escaped inline arguments all stay valid together", "[request_parser][inline]") {
  std::string line = "CMD";
  command expected{"CMD"};
  for (int i = 0; i < 60; ++i) {
    std::string n = std::to_string(i);
    line += " \"\\t" + n + std::string(static_cast<std::size_t>(i), 'z') + "\"";
    expected.push_back("\t" + n + std::string(static_cast<std::size_t>(i), 'z'));
  }
  line += "\r\n";
  request_parser p;
  // Twice: the second command reuses the storage of the first.
  for (int round = 0; round < 2; ++round) {
    REQUIRE(p.parse(line) == request_parser::status::complete);
    command got(p.args().begin(), p.args().end());
    CHECK(got == expected);
  }
}

TEST_CASE("inline and multibulk commands can alternate on one connection", "[request_parser][inline]") {
  request_parser p;
  auto r = feed_whole(p, "PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n*0\r\n\r\n");
  REQUIRE_FALSE(r.failed);
  REQUIRE(r.commands.size() == 5);
  CHECK(r.inline_flags == std::vector<bool>{true, false, true, false, true});
  CHECK(r.commands[2] == command{"ECHO", "x"});
}
