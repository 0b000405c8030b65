// byte_buffer: the client input buffer (reads append, the parser consumes from the front).
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "broker/core/byte_buffer.hpp"

using respq::core::byte_buffer;

TEST_CASE("an empty buffer rewinds and can be released", "[byte_buffer]") {
  byte_buffer b;
  std::memcpy(b.prepare(3), "abc", 3);
  b.commit(3);
  b.consume(3);
  REQUIRE(b.empty());
  b.shrink_if_idle(0);
  REQUIRE(b.capacity() == 0);
}

TEST_CASE("growth and compaction keep the unconsumed bytes in order", "[byte_buffer]") {
  byte_buffer b;
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string chunk = "chunk" + std::to_string(i) + ";";
    std::memcpy(b.prepare(chunk.size()), chunk.data(), chunk.size());
    b.commit(chunk.size());
    expected += chunk;
    if (i % 3 == 0) {  // the parser takes a few bytes from the front now and then
      b.consume(4);
      expected.erase(0, 4);
    }
    REQUIRE(b.view() == expected);
  }
  b.clear();
  REQUIRE(b.empty());
}
