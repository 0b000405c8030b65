// Specs for request_parser on valid input arriving in arbitrary pieces: every frame shape
// (multibulk, inline, binary and empty bulks, skipped empty commands, a large bulk) must
// give the same commands, each consuming exactly its own bytes, whether the stream comes
// whole, split at any byte, one byte at a time, or moved to a new address between calls.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "parser_driver.hpp"
#include "resp/request_parser.hpp"

using namespace std::string_literals;
using respq::resp::parser_limits;
using respq::resp::request_parser;
using respq::resp::test::command;
using respq::resp::test::every_byte;
using respq::resp::test::feed;
using respq::resp::test::feed_result;
using respq::resp::test::feed_whole;

namespace {

struct frame {
  std::string bytes;
  command args;
  bool is_inline;
};

std::vector<frame> sample_frames() {
  return {
      {"*1\r\n$4\r\nPING\r\n", {"PING"}, false},
      {"*3\r\n$5\r\nLPUSH\r\n$5\r\ntasks\r\n$11\r\nhello world\r\n", {"LPUSH", "tasks", "hello world"}, false},
      // Binary bulk: NUL, CRLF and a lone CR inside the data.
      {"*2\r\n$4\r\nECHO\r\n$9\r\na\0b\r\n\r\nc\r\r\n"s, {"ECHO", "a\0b\r\n\r\nc\r"s}, false},
      {"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", {"ECHO", ""}, false},
      {"*0\r\n", {}, false},
      {"*-1\r\n", {}, false},
      {"PING\r\n", {"PING"}, true},
      {"SET k \"a\\x00b\\n\"\n", {"SET", "k", "a\0b\n"s}, true},
      {"\r\n", {}, true},
      {"\n", {}, true},
      {"ECHO 'it\\'s'\r\n", {"ECHO", "it's"}, true},
      {"  LPUSH\tq  a   \"\" b \n", {"LPUSH", "q", "a", "", "b"}, true},
      // Redis skips the byte after each '\r' and the two bytes after bulk data unchecked.
      {"*1\rX$4\rXPINGxx", {"PING"}, false},
      {"*12\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n"
       "$1\r\n7\r\n$1\r\n8\r\n$1\r\n9\r\n$2\r\n10\r\n",
       {"RPUSH", "q", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"},
       false},
      {"*2\r\n$4\r\nECHO\r\n$3\r\n\xff\xfe\x80\r\n", {"ECHO", "\xff\xfe\x80"}, false},
  };
}

std::string concat(const std::vector<frame>& frames) {
  std::string s;
  for (const auto& f : frames) s += f.bytes;
  return s;
}

void check_matches(const feed_result& r, const std::vector<frame>& frames) {
  INFO("error: " << r.error);
  REQUIRE_FALSE(r.failed);
  CHECK(r.leftover == 0);
  REQUIRE(r.commands.size() == frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    INFO("command " << i);
    CHECK(r.commands[i] == frames[i].args);
    CHECK(r.consumed[i] == frames[i].bytes.size());
    CHECK(r.inline_flags[i] == frames[i].is_inline);
  }
}

}  // namespace

TEST_CASE("each frame alone parses to its arguments and consumes exactly its bytes", "[request_parser]") {
  for (const auto& f : sample_frames()) {
    INFO("frame " << f.bytes);
    request_parser p;
    auto r = feed_whole(p, f.bytes);
    check_matches(r, {f});
  }
}

TEST_CASE("a pipeline of all frames parses the same when split at any byte", "[request_parser]") {
  auto frames = sample_frames();
  std::string stream = concat(frames);
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    INFO("split at " << cut);
    request_parser in_place;
    check_matches(feed(in_place, stream, {cut}, false), frames);
    request_parser moved;
    check_matches(feed(moved, stream, {cut}, true), frames);
  }
}

TEST_CASE("a pipeline of all frames parses the same when fed one byte at a time", "[request_parser]") {
  auto frames = sample_frames();
  std::string stream = concat(frames);
  request_parser in_place;
  check_matches(feed(in_place, stream, every_byte(stream.size()), false), frames);
  request_parser moved;
  check_matches(feed(moved, stream, every_byte(stream.size()), true), frames);
}

TEST_CASE("a pipeline of all frames parses the same in random chunks", "[request_parser]") {
  auto frames = sample_frames();
  std::string stream = concat(frames);
  std::mt19937 rng(20240601);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (true) {
      at += 1 + rng() % 23;
      if (at >= stream.size()) break;
      cuts.push_back(at);
    }
    request_parser p;
    check_matches(feed(p, stream, cuts, round % 2 == 1), frames);
  }
}

TEST_CASE("every frame alone parses the same when split at any byte with the buffer moved", "[request_parser]") {
  for (const auto& f : sample_frames()) {
    for (std::size_t cut = 1; cut < f.bytes.size(); ++cut) {
      INFO("frame " << f.bytes << " split at " << cut);
      request_parser p;
      check_matches(feed(p, f.bytes, {cut}, true), {f});
    }
  }
}

TEST_CASE("incomplete input consumes nothing and the parse resumes where it stopped", "[request_parser]") {
  request_parser p;
  std::string cmd = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
  for (std::size_t n = 0; n < cmd.size(); ++n) {
    INFO("prefix " << n);
    REQUIRE(p.parse(cmd.data(), n) == request_parser::status::incomplete);
    CHECK(p.consumed() == 0);
    CHECK(p.args().empty());
    CHECK(p.bytes_needed() > n);
  }
  REQUIRE(p.parse(cmd) == request_parser::status::complete);
  CHECK(p.consumed() == cmd.size());
  REQUIRE(p.args().size() == 2);
  CHECK(p.args()[1] == "hello");
  // The args are views into the buffer given, not copies.
  CHECK(p.args()[1].data() == cmd.data() + 18);
}

TEST_CASE("a complete command leaves the bytes of the next one untouched", "[request_parser]") {
  request_parser p;
  std::string two = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n";
  REQUIRE(p.parse(two) == request_parser::status::complete);
  CHECK(p.consumed() == 14);
  CHECK(p.args()[0] == "PING");
  REQUIRE(p.parse(std::string_view(two).substr(14)) == request_parser::status::complete);
  CHECK(p.consumed() == 14);
  CHECK(p.args()[0] == "QUIT");
}

TEST_CASE("a large bulk is announced by bytes_needed and parsed without copying", "[request_parser]") {
  std::string data(70000, 'x');
  for (std::size_t i = 0; i < data.size(); i += 97) data[i] = '\0';
  for (std::size_t i = 5; i + 1 < data.size(); i += 1009) data.replace(i, 2, "\r\n");
  std::string head = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$70000\r\n";
  std::string cmd = head + data + "\r\n";
  std::vector<frame> frames = {{cmd, {"SET", "big", data}, false}, {"*1\r\n$4\r\nPING\r\n", {"PING"}, false}};
  std::string stream = concat(frames);

  SECTION("bytes_needed covers the whole bulk once its header is read") {
    request_parser p;
    REQUIRE(p.parse(stream.data(), head.size() + 10) == request_parser::status::incomplete);
    CHECK(p.bytes_needed() == cmd.size());
    REQUIRE(p.parse(stream.data(), cmd.size() - 1) == request_parser::status::incomplete);
    CHECK(p.bytes_needed() == cmd.size());
    REQUIRE(p.parse(stream.data(), cmd.size()) == request_parser::status::complete);
    CHECK(p.args()[2].data() == stream.data() + head.size());
    CHECK(p.args()[2].size() == data.size());
  }
  SECTION("split at any byte") {
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
      request_parser p;
      auto r = feed(p, stream, {cut}, false);
      REQUIRE_FALSE(r.failed);
      REQUIRE(r.commands.size() == 2);
      REQUIRE(r.consumed[0] == cmd.size());
      REQUIRE(r.commands[0][2] == data);
    }
  }
  SECTION("one byte at a time") {
    request_parser p;
    check_matches(feed(p, stream, every_byte(stream.size()), false), frames);
  }
  SECTION("in chunks, moved between calls") {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 4093; at < stream.size(); at += 4093) cuts.push_back(at);
    request_parser p;
    check_matches(feed(p, stream, cuts, true), frames);
  }
}

TEST_CASE("the largest bulk allowed by default waits for its bytes instead of failing", "[request_parser]") {
  request_parser p;
  std::string head = "*1\r\n$536870912\r\n";
  REQUIRE(p.parse(head) == request_parser::status::incomplete);
  CHECK(p.bytes_needed() == head.size() + 536870912 + 2);
}

TEST_CASE("the limits of an unauthenticated client accept commands up to them", "[request_parser]") {
  request_parser p(parser_limits::unauthenticated());
  std::string ten = "*10\r\n";
  for (int i = 0; i < 10; ++i) ten += "$1\r\na\r\n";
  auto r = feed_whole(p, ten);
  REQUIRE_FALSE(r.failed);
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0].size() == 10);

  std::string big = "*2\r\n$4\r\nAUTH\r\n$16384\r\n" + std::string(16384, 'p') + "\r\n";
  r = feed_whole(p, big);
  REQUIRE_FALSE(r.failed);
  REQUIRE(r.commands.size() == 1);
  CHECK(r.commands[0][1].size() == 16384);
}

TEST_CASE("set_limits between commands switches from unauthenticated to normal limits", "[request_parser]") {
  request_parser p(parser_limits::unauthenticated());
  std::string twelve = "*12\r\n";
  for (int i = 0; i < 12; ++i) twelve += "$1\r\na\r\n";
  p.set_limits(parser_limits{});
  auto r = feed_whole(p, twelve);
  REQUIRE_FALSE(r.failed);
  CHECK(r.commands.at(0).size() == 12);
}
