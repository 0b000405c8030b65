// config_fuzz: libFuzzer entry point for the config-file parser (also replayed over the
// seed corpus by replay_main.cpp in normal builds).
//
// An input is the text of a config file, applied with load_config_text to a default
// config as at start-up. Checks:
//   - it returns: empty, or an error naming the line ("at line N", N within the text);
//   - applying the same text to another default config gives the same result;
//   - on success, what CONFIG GET shows for each setting, when it is one plain word (no
//     blank, quote, backslash or control character, which a written-out config would
//     have to quote), is accepted back by the same setting and shows the same value.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/core/config.hpp"

using namespace respq::core;

namespace {

#define FUZZ_CHECK(cond)                                                                        \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "config_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

// Every setting's value as CONFIG GET shows it.
std::string snapshot(const config& c) {
  std::string out;
  for (const auto& e : config_table()) {
    out += e.name;
    out += '=';
    out += e.get(c);
    out += '\n';
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  config c;
  const std::string err = load_config_text(c, text);
  config other;
  FUZZ_CHECK(load_config_text(other, text) == err);
  FUZZ_CHECK(snapshot(c) == snapshot(other));
  if (!err.empty()) {
    const auto at = err.find("at line ");
    FUZZ_CHECK(at != std::string::npos);
    const long line = std::strtol(err.c_str() + at + 8, nullptr, 10);
    std::size_t lines = 1;
    for (char ch : text) lines += ch == '\n';
    FUZZ_CHECK(line >= 1 && static_cast<std::size_t>(line) <= lines);
    return 0;
  }
  for (const auto& e : config_table()) {
    const std::string shown = e.get(c);
    if (shown.empty() || !std::all_of(shown.begin(), shown.end(), [](unsigned char ch) {
          return ch > ' ' && ch < 0x7f && ch != '"' && ch != '\'' && ch != '\\';
        }))
      continue;
    config copy = c;
    const std::string set_err = e.set(copy, {shown});
    if (!set_err.empty()) {
      std::fprintf(stderr, "config_fuzz: '%s' rejects its own value '%s': %s\n", e.name, shown.c_str(),
                   set_err.c_str());
      std::abort();
    }
    FUZZ_CHECK(e.get(copy) == shown);
  }
  return 0;
}
