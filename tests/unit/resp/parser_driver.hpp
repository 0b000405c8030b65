// parser_driver: feeds a byte stream to a request_parser the way a connection does, in
// chosen chunks, and records every command with the bytes it consumed. Shared by the
// request_parser tests.
//
// At every parse() call the driver checks the contract: complete consumes between 1 and
// the bytes given, incomplete consumes nothing, has no args and asks for more than it was
// given; args lie inside the buffer passed to that call unless the command was inline.
// With move_buffer, the unconsumed bytes are copied to a fresh heap block before every
// call and the previous block is freed, so a parser that kept a pointer across calls
// reads freed memory (AddressSanitizer reports it).
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resp/request_parser.hpp"

namespace respq::resp::test {

using command = std::vector<std::string>;

struct feed_result {
  std::vector<command> commands;
  std::vector<std::size_t> consumed;  // consumed() of each complete command
  std::vector<bool> inline_flags;     // last_was_inline() of each complete command
  bool failed = false;
  std::string error;
  std::size_t leftover = 0;  // bytes given but not consumed at the end
};

inline command copy_args(const request_parser& p) {
  command out;
  for (std::string_view a : p.args()) out.emplace_back(a);
  return out;
}

// Feeds `stream`, appending the bytes up to each offset in `cuts` (ascending; the stream's
// end is implied) and parsing after each append until the parser wants more.
inline feed_result feed(request_parser& p, std::string_view stream, const std::vector<std::size_t>& cuts,
                        bool move_buffer) {
  feed_result r;
  std::size_t start = 0;  // first unconsumed byte of the stream
  std::unique_ptr<char[]> block;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(stream.size());
  for (std::size_t end : ends) {
    while (start < end) {
      const char* data = stream.data() + start;
      std::size_t len = end - start;
      if (move_buffer) {
        auto fresh = std::make_unique<char[]>(len);
        std::memcpy(fresh.get(), data, len);
        block = std::move(fresh);  // frees the block the previous call saw
        data = block.get();
      }
      auto st = p.parse(data, len);
      if (st == request_parser::status::error) {
        CHECK(p.consumed() == 0);
        CHECK(p.args().empty());
        r.failed = true;
        r.error = std::string(p.error());
        r.leftover = stream.size() - start;
        return r;
      }
      if (st == request_parser::status::incomplete) {
        CHECK(p.consumed() == 0);
        CHECK(p.args().empty());
        CHECK(p.bytes_needed() > len);
        break;
      }
      REQUIRE(p.consumed() >= 1);
      REQUIRE(p.consumed() <= len);
      if (!p.last_was_inline()) {
        for (std::string_view a : p.args()) {
          CHECK(a.data() >= data);
          CHECK(a.data() + a.size() <= data + p.consumed());
        }
      }
      r.commands.push_back(copy_args(p));
      r.consumed.push_back(p.consumed());
      r.inline_flags.push_back(p.last_was_inline());
      start += p.consumed();
    }
  }
  r.leftover = stream.size() - start;
  return r;
}

inline feed_result feed_whole(request_parser& p, std::string_view stream) { return feed(p, stream, {}, false); }

inline std::vector<std::size_t> every_byte(std::size_t n) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

}  // namespace respq::resp::test
