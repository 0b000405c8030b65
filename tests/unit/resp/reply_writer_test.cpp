// Specs for reply_writer: the exact bytes of every reply shape in RESP2 and RESP3, as
// redis-server 7.0 writes them.
#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "resp/reply_writer.hpp"

using namespace std::string_literals;
using respq::resp::format_double;
using respq::resp::reply_writer;

namespace {

template <typename F>
std::string written(int protocol, F&& write) {
  std::string out;
  reply_writer w(out, protocol);
  write(w);
  return out;
}

}  // namespace

TEST_CASE("shapes common to RESP2 and RESP3 are written the same in both", "[reply_writer]") {
  for (int proto : {2, 3}) {
    INFO("protocol " << proto);
    CHECK(written(proto, [](auto& w) { w.simple("PONG"); }) == "+PONG\r\n");
    CHECK(written(proto, [](auto& w) { w.ok(); }) == "+OK\r\n");
    CHECK(written(proto, [](auto& w) { w.error("ERR bad"); }) == "-ERR bad\r\n");
    CHECK(written(proto, [](auto& w) { w.integer(0); }) == ":0\r\n");
    CHECK(written(proto, [](auto& w) { w.integer(-42); }) == ":-42\r\n");
    CHECK(written(proto, [](auto& w) { w.integer(LLONG_MAX); }) == ":9223372036854775807\r\n");
    CHECK(written(proto, [](auto& w) { w.integer(LLONG_MIN); }) == ":-9223372036854775808\r\n");
    CHECK(written(proto, [](auto& w) { w.bulk("hello"); }) == "$5\r\nhello\r\n");
    CHECK(written(proto, [](auto& w) { w.bulk(""); }) == "$0\r\n\r\n");
    CHECK(written(proto, [](auto& w) { w.bulk("a\0\r\nb"s); }) == "$5\r\na\0\r\nb\r\n"s);
    CHECK(written(proto, [](auto& w) { w.array(0); }) == "*0\r\n");
    CHECK(written(proto, [](auto& w) { w.array(3); }) == "*3\r\n");
    CHECK(written(proto, [](auto& w) { w.raw("*1\r\n:1\r\n"); }) == "*1\r\n:1\r\n");
  }
}

TEST_CASE("nulls are $-1 and *-1 in RESP2 and _ in RESP3", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.null(); }) == "$-1\r\n");
  CHECK(written(2, [](auto& w) { w.null_array(); }) == "*-1\r\n");
  CHECK(written(3, [](auto& w) { w.null(); }) == "_\r\n");
  CHECK(written(3, [](auto& w) { w.null_array(); }) == "_\r\n");
}

TEST_CASE("maps are flat arrays of twice the pairs in RESP2 and % in RESP3", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.map(2); }) == "*4\r\n");
  CHECK(written(3, [](auto& w) { w.map(2); }) == "%2\r\n");
  CHECK(written(2, [](auto& w) { w.map(0); }) == "*0\r\n");
  CHECK(written(3, [](auto& w) { w.map(0); }) == "%0\r\n");
}

TEST_CASE("sets and pushes are arrays in RESP2 and ~ and > in RESP3", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.set(3); }) == "*3\r\n");
  CHECK(written(3, [](auto& w) { w.set(3); }) == "~3\r\n");
  CHECK(written(2, [](auto& w) { w.push(3); }) == "*3\r\n");
  CHECK(written(3, [](auto& w) { w.push(3); }) == ">3\r\n");
}

TEST_CASE("booleans are :1/:0 in RESP2 and #t/#f in RESP3", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.boolean(true); }) == ":1\r\n");
  CHECK(written(2, [](auto& w) { w.boolean(false); }) == ":0\r\n");
  CHECK(written(3, [](auto& w) { w.boolean(true); }) == "#t\r\n");
  CHECK(written(3, [](auto& w) { w.boolean(false); }) == "#f\r\n");
}

TEST_CASE("doubles are %.17g bulks in RESP2 and , lines in RESP3", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.double_value(1.5); }) == "$3\r\n1.5\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(1.5); }) == ",1.5\r\n");
  CHECK(written(2, [](auto& w) { w.double_value(0.1); }) == "$19\r\n0.10000000000000001\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(0.1); }) == ",0.10000000000000001\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(-2); }) == ",-2\r\n");
  CHECK(written(2, [](auto& w) { w.double_value(INFINITY); }) == "$3\r\ninf\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(INFINITY); }) == ",inf\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(-INFINITY); }) == ",-inf\r\n");
  CHECK(written(3, [](auto& w) { w.double_value(std::nan("")); }) == ",nan\r\n");
}

TEST_CASE("format_double spells numbers like Redis's %.17g", "[reply_writer]") {
  CHECK(format_double(0) == "0");
  CHECK(format_double(10) == "10");
  CHECK(format_double(1e20) == "1e+20");
  CHECK(format_double(3.14) == "3.1400000000000001");
  CHECK(format_double(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(format_double(-std::numeric_limits<double>::infinity()) == "-inf");
}

TEST_CASE("verbatim strings carry a txt: prefix in RESP3 and are plain bulks in RESP2", "[reply_writer]") {
  CHECK(written(2, [](auto& w) { w.verbatim("# Server\r\n"); }) == "$10\r\n# Server\r\n\r\n");
  CHECK(written(3, [](auto& w) { w.verbatim("# Server\r\n"); }) == "=14\r\ntxt:# Server\r\n\r\n");
  CHECK(written(3, [](auto& w) { w.verbatim(""); }) == "=4\r\ntxt:\r\n");
}

TEST_CASE("replies append to what the buffer already holds", "[reply_writer]") {
  std::string out = "+QUEUED\r\n";
  reply_writer w(out, 3);
  CHECK(w.protocol() == 3);
  w.array(2);
  w.bulk("a");
  w.integer(7);
  CHECK(out == "+QUEUED\r\n*2\r\n$1\r\na\r\n:7\r\n");
  CHECK(&w.buffer() == &out);
}

TEST_CASE("command() writes a RESP array of bulks whatever the protocol", "[reply_writer]") {
  std::string out;
  std::vector<std::string> args{"LPUSH", "q", ""};
  reply_writer::command(out, args);
  CHECK(out == "*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$0\r\n\r\n");
  std::string out2;
  std::vector<std::string_view> none;
  reply_writer::command(out2, none);
  CHECK(out2 == "*0\r\n");
}
