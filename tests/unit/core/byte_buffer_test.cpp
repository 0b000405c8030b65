// byte_buffer: the input buffer a pending read writes into must not move or rewind
// while the core consumes from it (a woken client's pipeline runs outside the read).
#include <catch2/catch.hpp>

#include <cstring>

#include "broker/core/byte_buffer.hpp"

using respq::core::byte_buffer;

TEST_CASE("a pinned buffer keeps its end while the core consumes everything", "[byte_buffer]") {
  byte_buffer b;
  std::memcpy(b.prepare(4), "PING", 4);
  b.commit(4);
  char* target = b.prepare(16);  // the I/O layer starts a read here
  b.pin();
  b.consume(4);                  // the core runs the pipeline meanwhile
  b.shrink_if_idle(0);
  b.clear();
  std::memcpy(target, "ECHO", 4);  // the read completes into the old target
  b.unpin();
  b.commit(4);
  REQUIRE(b.view() == "ECHO");
}

TEST_CASE("an unpinned empty buffer rewinds and can be released", "[byte_buffer]") {
  byte_buffer b;
  std::memcpy(b.prepare(3), "abc", 3);
  b.commit(3);
  b.consume(3);
  REQUIRE(b.empty());
  b.shrink_if_idle(0);
  REQUIRE(b.capacity() == 0);
}
