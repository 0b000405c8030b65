// json_view_fuzz: libFuzzer entry point for json_view, the quick parser of task payloads
// (also replayed over the seed corpus by replay_main.cpp in normal builds).
//
// An input is a payload as a producer might LPUSH it. The parser must never read outside
// it, and whatever it accepts must be JSON that nlohmann accepts too, with the same tree:
// the same compact dump, and the same dump again after a copy through assign().
// Declining valid JSON is allowed (nlohmann then decides), accepting invalid JSON is not.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tasks/json_view.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "json_view_fuzz: %s for input of %zu bytes\n", what, input.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A heap copy of exactly the input's size, so ASan sees any read past its end.
  const std::string text(reinterpret_cast<const char*>(data), size);
  respq::tasks::json_view::document doc;
  if (!doc.parse(text)) return 0;
  const auto reference = nlohmann::ordered_json::parse(text.begin(), text.end(), nullptr, false);
  if (reference.is_discarded()) fail("accepted what nlohmann rejects", text);
  const std::string dumped = reference.dump();
  if (doc.root().dump() != dumped) fail("a tree different from nlohmann's", text);
  respq::tasks::json_view::document copy;
  copy.assign(reference, 512);
  if (copy.root().dump() != dumped) fail("assign() changed the tree", text);
  return 0;
}
