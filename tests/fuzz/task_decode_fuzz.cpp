// task_decode_fuzz: libFuzzer entry point for decode_task, the full decoding of a task
// payload as a producer LPUSHes it (also replayed over the seed corpus by
// replay_main.cpp in normal builds).
//
// Checks, for any input:
//   - decode_task returns (it promises never to throw; a throw aborts here) and gives
//     the same result twice;
//   - a decoded task keeps the documented contract: a supported method, an http(s) URL,
//     no body on HEAD, an id of at most 256 bytes without control characters, timeout in
//     (0, 86400], retries in [0, 1000], header names non-empty and values free of CR, LF
//     and NUL; and make_http_request turns it into a request;
//   - the quick parser (json_view, objects up to 64 KB) and nlohmann (everything else)
//     decide alike: a valid JSON object padded past the quick parser's size with
//     whitespace decodes to the same task or the same error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "tasks/http_request.hpp"
#include "tasks/task.hpp"
#include "tasks/url.hpp"

using namespace respq::tasks;

namespace {

#define FUZZ_CHECK(cond)                                                                             \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::fprintf(stderr, "task_decode_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                                  \
    }                                                                                                \
  } while (0)

constexpr double now = 1'800'000'000;

bool same_task(const task& a, const task& b) {
  return a.id == b.id && a.method == b.method && a.url == b.url && a.headers == b.headers && a.body == b.body &&
         a.timeout == b.timeout && a.retries == b.retries && a.run_at == b.run_at && a.callback == b.callback &&
         a.follow_redirects == b.follow_redirects;
}

bool same(const decode_result& a, const decode_result& b) {
  if (a.index() != b.index()) return false;
  if (const task* t = std::get_if<task>(&a)) return same_task(*t, std::get<task>(b));
  return std::get<decode_error>(a).reason == std::get<decode_error>(b).reason;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if ((s[i] | 0x20) != prefix[i]) return false;
  return true;
}

void check_task(const task& t) {
  FUZZ_CHECK(t.method == "GET" || t.method == "POST" || t.method == "PUT" || t.method == "PATCH" ||
             t.method == "DELETE" || t.method == "HEAD");
  // The scheme is http or https; the rest is as curl's URL parser accepts it (it also
  // takes "http:/host", as curl will when sending).
  FUZZ_CHECK(starts_with_icase(t.url, "http:") || starts_with_icase(t.url, "https:"));
  FUZZ_CHECK(!(t.method == "HEAD" && t.body));
  FUZZ_CHECK(t.id.size() <= max_id_bytes);
  for (unsigned char c : t.id) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
  if (t.timeout) FUZZ_CHECK(*t.timeout > 0 && *t.timeout <= max_timeout_s);
  if (t.retries) FUZZ_CHECK(*t.retries >= 0 && *t.retries <= max_retries);
  for (const auto& [name, value] : t.headers) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  const http_request r = make_http_request(t, 1, "tasks", 30);
  FUZZ_CHECK(r.url == encode_non_ascii(t.url) && r.method == t.method);  // bytes past ASCII as %XX
  FUZZ_CHECK(r.keep_body == response_read_bytes && !r.keep_body_of_2xx);
  FUZZ_CHECK(r.timeout_s > 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  const decode_result first = decode_task(payload, now);
  FUZZ_CHECK(same(first, decode_task(payload, now)));
  if (const task* t = std::get_if<task>(&first)) check_task(*t);

  // The same object past the quick parser's size limit goes through nlohmann instead.
  const std::size_t open = payload.find_first_not_of(" \t\r\n");
  if (open == std::string::npos || payload[open] != '{' || payload.size() > 64 * 1024) return 0;
  const auto reference = nlohmann::ordered_json::parse(payload.begin(), payload.end(), nullptr, false);
  if (reference.is_discarded() || !reference.is_object()) return 0;
  std::string padded = payload;
  padded.insert(open + 1, std::string(64 * 1024 + 1, ' '));
  FUZZ_CHECK(same(first, decode_task(padded, now)));
  return 0;
}
