// json_splitter: finding JSON values written back to back on a socket (json-port), fed
// whole, split at every point, and one byte at a time.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "broker/core/json_intake.hpp"

using respq::core::json_splitter;

namespace {

struct found {
  bool json;
  std::string bytes;
  bool operator==(const found& o) const { return json == o.json && bytes == o.bytes; }
};

// Feeds `chunks` in turn to one splitter, consuming as a connection would; eof after the last.
std::vector<found> split(const std::vector<std::string>& chunks) {
  json_splitter sp;
  std::string buf;
  std::vector<found> out;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    buf += chunks[i];
    const bool eof = i + 1 == chunks.size();
    while (true) {
      auto p = sp.next(buf, eof);
      if (p.what == json_splitter::kind::none) {
        buf.erase(0, p.size);
        break;
      }
      out.push_back({p.what == json_splitter::kind::json, buf.substr(p.skip, p.size - p.skip)});
      buf.erase(0, p.size);
    }
  }
  REQUIRE(buf.empty());
  return out;
}

const std::string seed_stream =
    R"({"url":"http:\/\/127.0.0.1\/a","param":{"user":"a b","q":"}{\"]"}}{"url":"http:\/\/x\/b","param":[]})"
    " \n[1,2]\"http://x/c\"";

const std::vector<found> seed_values = {
    {true, R"({"url":"http:\/\/127.0.0.1\/a","param":{"user":"a b","q":"}{\"]"}})"},
    {true, R"({"url":"http:\/\/x\/b","param":[]})"},
    {true, "[1,2]"},
    {true, "\"http://x/c\""},
};

}  // namespace

TEST_CASE("json_splitter finds objects written back to back, braces in strings included", "[json_intake]") {
  CHECK(split({seed_stream}) == seed_values);
}

TEST_CASE("json_splitter gives the same values whatever the read boundaries", "[json_intake]") {
  for (std::size_t cut = 0; cut <= seed_stream.size(); ++cut)
    CHECK(split({seed_stream.substr(0, cut), seed_stream.substr(cut)}) == seed_values);
  std::vector<std::string> bytes;
  for (char ch : seed_stream) bytes.emplace_back(1, ch);
  CHECK(split(bytes) == seed_values);
}

TEST_CASE("json_splitter turns what is not JSON into pieces to dead-letter", "[json_intake]") {
  CHECK(split({"hello world{\"url\":\"http://x/\"}"}) ==
        std::vector<found>{{false, "hello world"}, {true, "{\"url\":\"http://x/\"}"}});
  CHECK(split({"{bad}{\"a\":1}"}) == std::vector<found>{{false, "{bad}"}, {true, "{\"a\":1}"}});
  // An unfinished value when the connection ends: its bytes, kept.
  CHECK(split({"{\"a\":1}{\"url\":\"http://x"}) ==
        std::vector<found>{{true, "{\"a\":1}"}, {false, "{\"url\":\"http://x"}});
  CHECK(split({"  \n"}).empty());
  CHECK(split({"42"}) == std::vector<found>{{false, "42"}});
}

TEST_CASE("json_splitter waits for more bytes, and reports a value in progress", "[json_intake]") {
  json_splitter sp;
  std::string buf = "  {\"url\":\"http://x/";
  auto p = sp.next(buf, false);
  CHECK(p.what == json_splitter::kind::none);
  CHECK(p.size == 2);  // the whitespace before it can go
  buf.erase(0, p.size);
  CHECK(sp.pending() == buf.size());
  buf += "\"}";
  p = sp.next(buf, false);
  CHECK(p.what == json_splitter::kind::json);
  CHECK(p.size == buf.size());
}
