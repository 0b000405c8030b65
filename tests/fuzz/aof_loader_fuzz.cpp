// aof_loader_fuzz: libFuzzer entry point for the AOF loader (also replayed over the seed
// corpus by replay_main.cpp in normal builds).
//
// An input is the content of an append-only file. It is written to a temporary file and
// loaded into a fresh core server, as at start-up (aof-load-truncated yes). Checks:
//   - the loader returns: an error (corrupt file), or the file loaded whole, or a torn
//     tail cut off; the server is out of loading mode either way;
//   - loaded whole: the size reported is the input's;
//   - a torn tail: the file on disk now ends where the loader says (before the input's
//     end), and loading that file again into another fresh server applies the same
//     number of commands with no error and nothing more to cut.
// The server's proto-max-bulk-len is 1 MB, so commands that grow a string (SETRANGE,
// APPEND) stay small. Inputs holding "sleep" (any case) are skipped: DEBUG SLEEP is a
// command a loaded file may run, and it would only make the fuzzer wait.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker/core/config.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "persistence/aof_loader.hpp"

using namespace respq;

namespace {

#define FUZZ_CHECK(cond)                                                                            \
  do {                                                                                              \
    if (!(cond)) {                                                                                  \
      std::fprintf(stderr, "aof_loader_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                 \
    }                                                                                               \
  } while (0)

const std::string& scratch_file() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/respq-aof-fuzz-XXXXXX";
    char* dir = ::mkdtemp(dir_template.data());
    FUZZ_CHECK(dir != nullptr);
    // Loads log warnings on torn tails; the fuzzer's output is no place for them.
    core::log_init("/dev/null", "warning");
    return std::string(dir) + "/appendonly.aof";
  }();
  return path;
}

void write_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr);
  FUZZ_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  FUZZ_CHECK(std::fclose(f) == 0);
}

long long size_on_disk(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

core::config fuzz_config() {
  core::config c;
  c.queues.clear();
  c.proto_max_bulk_len = 1024 * 1024;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string lower(input);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.find("sleep") != std::string::npos) return 0;

  const std::string& path = scratch_file();
  write_file(path, input);
  persistence::load_result first;
  {
    core::server s(fuzz_config());
    first = persistence::load_aof(s, path, true);
    FUZZ_CHECK(!s.loading());
  }
  if (!first.error.empty()) return 0;
  FUZZ_CHECK(first.found);
  FUZZ_CHECK(first.original_size == size);
  if (!first.truncated) {
    FUZZ_CHECK(first.size == size);
    return 0;
  }
  FUZZ_CHECK(first.size < size);
  FUZZ_CHECK(size_on_disk(path) == static_cast<long long>(first.size));
  core::server again(fuzz_config());
  const persistence::load_result second = persistence::load_aof(again, path, true);
  FUZZ_CHECK(second.error.empty());
  FUZZ_CHECK(!second.truncated);
  FUZZ_CHECK(second.size == first.size);
  FUZZ_CHECK(second.commands == first.commands);
  return 0;
}
