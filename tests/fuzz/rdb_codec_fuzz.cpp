// rdb_codec_fuzz: libFuzzer entry point for the DUMP payload decoder (also replayed over
// the seed corpus by replay_main.cpp in normal builds). RESTORE takes payloads from any
// client. The input is a payload's body (type byte and value): the footer (RDB version
// and CRC64) is added here, so the fuzzer spends its time in the decoder rather than on
// checksums. The seed corpus is bodies of what redis-server 7.0.15 answered to DUMP, and
// of the older forms (ziplists, zipmap) it RESTOREs.
//
// Checks, for any input:
//   - nothing throws or crashes; the answer is the same twice;
//   - a value that decodes encodes again (DUMP of it), and that payload decodes to a value
//     of the same type and size, twice over.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "broker/core/rdb_codec.hpp"

using namespace respq::core;

namespace {

#define FUZZ_CHECK(cond)                                                                             \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::fprintf(stderr, "rdb_codec_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                  \
    }                                                                                                \
  } while (0)

std::string with_footer(std::string body) {
  body.push_back(static_cast<char>(rdb::rdb_version & 0xff));
  body.push_back(static_cast<char>(rdb::rdb_version >> 8));
  const std::uint64_t crc = rdb::crc64(0, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return body;
}

std::size_t size_of(value& v) {
  switch (v.type()) {
    case value_type::string: return v.str().size();
    case value_type::list: return v.list().size();
    case value_type::set: return v.set().size();
    case value_type::zset: return v.zset().size();
    case value_type::hash: return v.hash().size();
    case value_type::stream: return 0;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string payload = with_footer(std::string(reinterpret_cast<const char*>(data), size));
  value v;
  const auto st = rdb::restore_value(payload, v);
  value twice;
  FUZZ_CHECK(rdb::restore_value(payload, twice) == st);
  FUZZ_CHECK(st != rdb::restore_status::bad_footer);
  if (st != rdb::restore_status::ok) return 0;
  std::string first;
  FUZZ_CHECK(rdb::dump_value(v, first));
  value w;
  FUZZ_CHECK(rdb::restore_value(first, w) == rdb::restore_status::ok);
  FUZZ_CHECK(w.type() == v.type());
  FUZZ_CHECK(size_of(w) == size_of(v));
  std::string second;
  FUZZ_CHECK(rdb::dump_value(w, second));
  value x;
  FUZZ_CHECK(rdb::restore_value(second, x) == rdb::restore_status::ok);
  FUZZ_CHECK(size_of(x) == size_of(v));
  return 0;
}
