// records_fuzz: libFuzzer entry point for what respq reads back about its tasks and how
// it reports their URLs (also replayed over the seed corpus by replay_main.cpp in normal
// builds): read_envelope (any client may write <queue>:inflight), salvage_payload,
// decode_element (a queue element, dead letters moved back included), check_url and the
// redaction of credentials.
//
// Checks, for any input:
//   - nothing throws (a throw aborts here) and every answer is the same twice;
//   - an envelope read back and written again reads back the same (state, attempts,
//     max_attempts, last code, payload);
//   - a dead letter written for the input as a payload unwraps to that payload again;
//   - redacting a URL twice changes nothing more than once; a URL check_url accepts
//     stays accepted once redacted, and its userinfo then ends in ***.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "tasks/records.hpp"
#include "tasks/task.hpp"
#include "tasks/url.hpp"

using namespace respq::tasks;

namespace {

#define FUZZ_CHECK(cond)                                                                          \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "records_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                               \
    }                                                                                             \
  } while (0)

constexpr double now = 1'800'000'000;

void check_envelope(const std::string& text) {
  const auto first = read_envelope(text);
  const auto again = read_envelope(text);
  FUZZ_CHECK(first.index() == again.index());
  if (const auto* why = std::get_if<std::string>(&first)) {
    FUZZ_CHECK(!why->empty());
    FUZZ_CHECK(*why == std::get<std::string>(again));
    (void)salvage_payload(text);
    return;
  }
  const auto& e = std::get<envelope_record>(first);
  envelope_fields f;
  f.id = "id";
  f.queue = "q";
  f.state = e.state;
  f.attempts = e.attempts;
  f.max_attempts = e.max_attempts.value_or(1);
  f.next_run = e.next_run.value_or(0);
  f.last_code = e.last_code;
  f.payload = e.payload;
  const auto back = read_envelope(envelope_json(f));
  FUZZ_CHECK(std::holds_alternative<envelope_record>(back));
  const auto& b = std::get<envelope_record>(back);
  FUZZ_CHECK(b.state == e.state && b.attempts == e.attempts && b.last_code == e.last_code);
  FUZZ_CHECK(b.max_attempts == e.max_attempts.value_or(1));
  FUZZ_CHECK(b.payload == e.payload);
}

void check_element(const std::string& element) {
  const decoded_element e = decode_element(element, now);
  FUZZ_CHECK(e.result.index() == decode_element(element, now).result.index());
  // The input as a producer's payload, in a dead letter moved back into its queue.
  dead_fields d;
  d.id = "dead-1";
  d.queue = "q";
  d.reason = "HTTP 404 is final";
  d.payload = element;
  d.failed_at = now;
  const std::string record = dead_record_json(d);
  const decoded_element back = decode_element(record, now);
  FUZZ_CHECK(back.was_dead_letter);
  FUZZ_CHECK(back.payload(record) == element);
}

void check_url_text(const std::string& url) {
  const std::string reason = check_url(url, "url");
  FUZZ_CHECK(reason == check_url(url, "url"));
  const std::string once = redact_url(url);
  FUZZ_CHECK(redact_url(once) == once);
  FUZZ_CHECK(redact_urls_in(redact_urls_in(url)) == redact_urls_in(url));
  if (reason.empty() && has_credentials(url)) {
    FUZZ_CHECK(check_url(once, "url").empty());
    FUZZ_CHECK(has_credentials(once));
    // The userinfo now ends in *** (user:*** or ***), right before the authority's '@'.
    const auto at = once.find('@', once.find(':'));
    FUZZ_CHECK(at != std::string::npos && at >= 3 && once.compare(at - 3, 3, "***") == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  check_envelope(input);
  check_element(input);
  check_url_text(input);
  return 0;
}
