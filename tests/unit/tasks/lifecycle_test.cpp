// lifecycle: the one decision after an attempt, table by table: every status class,
// transport errors and timeouts, every Retry-After form and its cap, exhausted retries,
// refused redirects, invalid tasks and duplicates, and what the outcome and the dead
// letter then say.
#include <cstdint>
#include <cmath>
#include <random>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tasks/control.hpp"
#include "tasks/lifecycle.hpp"

using namespace respq::tasks;
using json = nlohmann::json;

namespace {

constexpr double now = 1'700'000'000;  // Tue, 14 Nov 2023 22:13:20 GMT

queue_options options(double backoff_min = 1, double backoff_max = 60) {
  queue_options q;
  q.backoff_min = backoff_min;
  q.backoff_max = backoff_max;
  return q;
}

task_record record(int attempts, int max_attempts) {
  task_record t;
  t.id = "t-1";
  t.queue = "tasks";
  t.url = "http://127.0.0.1:8080/send";
  t.node = "web-1";
  t.attempts = attempts;
  t.max_attempts = max_attempts;
  return t;
}

http_result answer(long code, std::string error = {}) {
  http_result r;
  r.code = code;
  r.error = std::move(error);
  r.duration_ms = 12.5;
  return r;
}

const char* name(next_state s) {
  switch (s) {
    case next_state::delivered: return "delivered";
    case next_state::retrying: return "retrying";
    case next_state::dead: return "dead";
  }
  return "?";
}

}  // namespace

TEST_CASE("every status class: 2xx delivers, 408 425 429 5xx retry, 1xx 3xx other 4xx are final", "[lifecycle]") {
  struct row {
    long code;
    const char* state;
  };
  const row rows[] = {
      {100, "dead"},      {101, "dead"},      {103, "dead"},      {199, "dead"},      {200, "delivered"},
      {201, "delivered"}, {202, "delivered"}, {204, "delivered"}, {206, "delivered"}, {299, "delivered"},
      {300, "dead"},      {301, "dead"},      {302, "dead"},      {303, "dead"},      {304, "dead"},
      {307, "dead"},      {308, "dead"},      {400, "dead"},      {401, "dead"},      {403, "dead"},
      {404, "dead"},      {405, "dead"},      {408, "retrying"},  {409, "dead"},      {410, "dead"},
      {418, "dead"},      {422, "dead"},      {425, "retrying"},  {429, "retrying"},  {451, "dead"},
      {499, "dead"},      {500, "retrying"},  {501, "retrying"},  {502, "retrying"},  {503, "retrying"},
      {504, "retrying"},  {599, "retrying"},  {600, "dead"},      {999, "dead"},
  };
  for (const auto& r : rows) {
    INFO("HTTP " << r.code);
    const auto t = record(1, 6);
    const decision d = decide(t, answer(r.code), options(), now, 0.0);
    CHECK(std::string(name(d.state)) == r.state);
    CHECK(std::string(d.outcome.status) == r.state);
    CHECK(d.outcome.code == r.code);
    CHECK(d.outcome.attempts == 1);
    CHECK(d.outcome.duration_ms == 12.5);
    CHECK(d.outcome.id == "t-1");
    CHECK(d.outcome.queue == "tasks");
    CHECK(d.outcome.node == "web-1");
    CHECK(d.attempt_failed == (d.state != next_state::delivered));
    if (d.state == next_state::delivered) {
      CHECK(d.outcome.error.empty());
      CHECK(d.reason.empty());
      CHECK(d.next_run == 0);
    } else if (d.state == next_state::retrying) {
      CHECK(d.outcome.error == "HTTP " + std::to_string(r.code));
      CHECK(d.next_run == now + 1);  // u = 0: the backoff's lower bound
      CHECK(d.outcome.next_run == d.next_run);
    } else {
      CHECK(d.reason == "HTTP " + std::to_string(r.code) + " is final");
      CHECK(d.outcome.error == d.reason);
      CHECK(d.dead_error.empty());
      CHECK(d.outcome.next_run == 0);
    }
  }
}

TEST_CASE("transport errors and timeouts retry whatever code was seen, then exhaust", "[lifecycle]") {
  struct row {
    long code;
    const char* error;
    bool timed_out;
  };
  const row rows[] = {
      {0, "Failed to connect to 127.0.0.1 port 9: Connection refused", false},
      {0, "Could not resolve host: nowhere.invalid", false},
      {0, "Operation timed out after 300 milliseconds with 0 bytes received", true},
      {200, "Recv failure: Connection reset by peer", false},
      {404, "transfer closed with 10 bytes remaining to read", false},
      {0, "SSL certificate problem: self-signed certificate", false},
  };
  for (const auto& r : rows) {
    INFO(r.error);
    http_result res = answer(r.code, r.error);
    res.timed_out = r.timed_out;
    const decision retry = decide(record(2, 6), res, options(), now, 0.0);
    CHECK(retry.state == next_state::retrying);
    CHECK(retry.outcome.error == r.error);
    CHECK(retry.next_run == now + 1);

    const decision dead = decide(record(6, 6), res, options(), now, 0.0);
    CHECK(dead.state == next_state::dead);
    CHECK(dead.reason == "attempts exhausted (6)");
    CHECK(dead.dead_error == r.error);
    CHECK(dead.outcome.error == r.error);
    CHECK(std::string(dead.outcome.status) == "dead");
  }
  // No response and no error text (nothing was heard): retried like a transport error.
  CHECK(decide(record(1, 2), answer(0), options(), now, 0.0).state == next_state::retrying);
}

TEST_CASE("retryable codes with no attempt left are dead: attempts exhausted", "[lifecycle]") {
  for (long code : {408L, 425L, 429L, 500L, 503L, 599L}) {
    INFO("HTTP " << code);
    for (int attempts : {1, 3}) {
      const decision d = decide(record(attempts, attempts), answer(code), options(), now, 0.5);
      CHECK(d.state == next_state::dead);
      CHECK(d.reason == "attempts exhausted (" + std::to_string(attempts) + ")");
      CHECK(d.dead_error.empty());
      CHECK(d.outcome.error == d.reason);
      CHECK(d.outcome.attempts == attempts);
    }
  }
  // retries 0: one attempt only. A final code on the last attempt says why it is final.
  CHECK(decide(record(1, 1), answer(503), options(), now, 0).reason == "attempts exhausted (1)");
  CHECK(decide(record(1, 1), answer(404), options(), now, 0).reason == "HTTP 404 is final");
  CHECK(decide(record(1, 6), answer(404), options(), now, 0).reason == "HTTP 404 is final");
}

TEST_CASE("the backoff grows with the attempts, full jitter within [min, max]", "[lifecycle][backoff]") {
  struct row {
    int attempts;
    double u, delay;
  };
  const row rows[] = {
      {1, 0.0, 1},  {1, 0.5, 1.5}, {2, 0.5, 2.5}, {3, 0.5, 4.5},
      {3, 1.0, 8},  // u at 1 is clamped just below: at most min * 2^attempts
      {5, 0.0, 1},  {6, 0.5, 30.5}, {10, 0.5, 30.5}, {10, 0.999999, 60},
  };
  for (const auto& r : rows) {
    INFO("attempts " << r.attempts << " u " << r.u);
    const decision d = decide(record(r.attempts, 20), answer(503), options(1, 60), now, r.u);
    REQUIRE(d.state == next_state::retrying);
    CHECK(d.next_run - now == Approx(r.delay).margin(1e-4));
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const decision d = decide(record(8, 20), answer(500), options(0.5, 10), now, rng);
    REQUIRE(d.next_run - now >= 0.5);
    REQUIRE(d.next_run - now <= 10);
  }
}

TEST_CASE("Retry-After: seconds, the three HTTP dates, garbage, huge, negative, and the cap", "[lifecycle][retry-after]") {
  struct row {
    const char* header;
    double backoff_max;
    double delay;
  };
  // 503 on attempt 1 with u = 0: the backoff alone is 1 s.
  const row rows[] = {
      {nullptr, 60, 1},
      {"30", 60, 30},
      {" 45 ", 60, 45},
      {"0", 60, 1},  // shorter than the backoff: the backoff
      {"120", 60, 120},  // longer than backoff-max: honoured up to the cap
      {"Tue, 14 Nov 2023 22:15:20 GMT", 60, 120},  // IMF-fixdate, 2 minutes ahead
      {"Tuesday, 14-Nov-23 22:15:20 GMT", 60, 120},  // RFC 850
      {"Tue Nov 14 22:15:20 2023", 60, 120},  // asctime
      {"Tue, 14 Nov 2023 21:00:00 GMT", 60, 1},  // in the past: now, so the backoff
      {"soon", 60, 1},  // garbage: ignored
      {"Tue, 14 Nov 2023 22:15:20", 60, 1},  // no GMT: ignored
      {"", 60, 1},
      {"-5", 60, 1},  // negative: not delta-seconds, ignored
      {"1.5", 60, 1},  // fractions are not delta-seconds
      {"99999999999", 60, 3600},  // huge: capped at an hour
      {"99999999999999999999999999", 60, 3600},
      {"Fri, 31 Dec 9999 23:59:59 GMT", 60, 3600},
      {"99999999999", 7200, 7200},  // the cap is backoff-max when that is longer
      {"5000", 7200, 5000},
  };
  for (const auto& r : rows) {
    INFO("Retry-After: " << (r.header ? r.header : "(none)") << ", backoff-max " << r.backoff_max);
    http_result res = answer(503);
    if (r.header) res.retry_after = r.header;
    const decision d = decide(record(1, 6), res, options(1, r.backoff_max), now, 0.0);
    REQUIRE(d.state == next_state::retrying);
    CHECK(d.next_run - now == Approx(r.delay));
    CHECK(d.outcome.next_run == d.next_run);
  }
  // Retry-After on a final answer changes nothing; on 429 it is the point.
  http_result gone = answer(410);
  gone.retry_after = "30";
  CHECK(decide(record(1, 6), gone, options(), now, 0).state == next_state::dead);
  http_result slow_down = answer(429);
  slow_down.retry_after = "17";
  CHECK(decide(record(1, 6), slow_down, options(), now, 0).next_run == now + 17);
}

TEST_CASE("a redirect to a refused scheme is dead at once, attempts left or not", "[lifecycle]") {
  http_result r = answer(302, "Redirect to 'ftp://bob:secret@files.example/x' refused: only http and https are followed");
  r.redirect_refused = true;
  for (int attempts : {1, 3, 6}) {
    const decision d = decide(record(attempts, 6), r, options(), now, 0.3);
    CHECK(d.state == next_state::dead);
    CHECK(d.reason == "Redirect to 'ftp://bob:***@files.example/x' refused: only http and https are followed");
    CHECK(d.dead_error == d.reason);
    CHECK(d.outcome.error == d.reason);
    CHECK(d.outcome.code == 302);
  }
}

TEST_CASE("an address the egress policy denied is dead at once, attempts left or not, with the denial", "[lifecycle][egress]") {
  struct row {
    long code;  // the last response before the denial: 0, or a redirect hop's 3xx
    const char* error;
    const char* reason;
  };
  const row rows[] = {
      {0, "egress denied: 127.0.0.1 port 8080 (policy public: loopback 127.0.0.0/8)",
       "egress denied: 127.0.0.1 port 8080 (policy public: loopback 127.0.0.0/8)"},
      {302, "egress denied: 127.0.0.2 port 80 (egress-deny 127.0.0.2/32)",
       "egress denied: 127.0.0.2 port 80 (egress-deny 127.0.0.2/32)"},
      {0, "an address of family 1 is not judged", "egress denied: an address of family 1 is not judged"},
  };
  for (const auto& row : rows) {
    for (int attempts : {1, 3, 6}) {
      INFO(row.error << ", attempt " << attempts);
      http_result r = answer(row.code, row.error);
      r.egress_denied = true;
      r.retry_after = "5";
      const decision d = decide(record(attempts, 6), r, options(), now, 0.3);
      CHECK(d.state == next_state::dead);
      CHECK(d.attempt_failed);
      CHECK(d.reason == row.reason);
      CHECK(d.dead_error == d.reason);
      CHECK(std::string(d.outcome.status) == "dead");
      CHECK(d.outcome.error == d.reason);
      CHECK(d.outcome.code == row.code);
      CHECK(d.next_run == 0);
    }
  }
  // No jitter is drawn for it: the attempt cannot be retried.
  struct counting {
    using result_type = std::uint32_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return 0xffffffff; }
    int draws = 0;
    result_type operator()() { return ++draws, 7u; }
  } rng;
  http_result r = answer(0, "egress denied: 127.0.0.1 port 1 (policy public: loopback 127.0.0.0/8)");
  r.egress_denied = true;
  CHECK(decide(record(1, 6), r, options(), now, rng).state == next_state::dead);
  CHECK(rng.draws == 0);
}

TEST_CASE("a TLS failure is dead at the first attempt with a reason starting TLS, drawing no jitter", "[lifecycle]") {
  struct counting {
    using result_type = std::uint32_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return 0xffffffff; }
    int draws = 0;
    result_type operator()() { return ++draws, 7u; }
  } rng;
  for (int attempts : {1, 3}) {
    http_result r = answer(0, "TLS peer verification failed: SSL certificate problem: unable to get local issuer certificate");
    r.tls_failed = true;
    const decision d = decide(record(attempts, 6), r, options(), now, rng);
    CHECK(d.state == next_state::dead);
    CHECK(d.attempt_failed);
    CHECK(d.reason == r.error);
    CHECK(d.dead_error == d.reason);
    CHECK(d.outcome.error == d.reason);
  }
  CHECK(rng.draws == 0);
  // An engine error text without the prefix gets it.
  http_result r = answer(0, "alert certificate required");
  r.tls_failed = true;
  CHECK(decide(record(1, 6), r, options(), now, 0.5).reason == "TLS: alert certificate required");
  // The same text without the flag is an ordinary transport error: retried.
  CHECK(decide(record(1, 6), answer(0, "alert certificate required"), options(), now, 0.5).state == next_state::retrying);
}

TEST_CASE("410 Gone and a 3xx not followed are final at the first attempt, whatever Retry-After says", "[lifecycle]") {
  struct row {
    long code;
    const char* reason;
  };
  const row rows[] = {{410, "HTTP 410 is final"}, {301, "HTTP 301 is final"}, {302, "HTTP 302 is final"},
                      {303, "HTTP 303 is final"}, {307, "HTTP 307 is final"}, {308, "HTTP 308 is final"}};
  for (const auto& row : rows) {
    for (const char* retry_after : {"", "1", "Wed, 21 Oct 2099 07:28:00 GMT"}) {
      INFO("HTTP " << row.code << ", Retry-After '" << retry_after << "'");
      http_result r = answer(row.code);
      if (*retry_after) r.retry_after = retry_after;
      const decision d = decide(record(1, 100), r, options(), now, 0.5);
      CHECK(d.state == next_state::dead);
      CHECK(d.attempt_failed);
      CHECK(d.reason == row.reason);
      CHECK(d.dead_error.empty());
      CHECK(d.outcome.error == row.reason);
      CHECK(d.outcome.attempts == 1);
      CHECK(d.next_run == 0);
    }
  }
}

TEST_CASE("a truncated body is said in the outcome, whatever the state", "[lifecycle]") {
  for (long code : {200L, 503L, 404L}) {
    http_result r = answer(code);
    r.truncated = true;
    const decision d = decide(record(1, 2), r, options(), now, 0);
    CHECK(d.outcome.truncated);
    CHECK(json::parse(outcome_json(d.outcome))["truncated"] == true);
  }
  CHECK_FALSE(json::parse(outcome_json(decide(record(1, 2), answer(200), options(), now, 0).outcome)).contains("truncated"));
}

TEST_CASE("a failing answer's body shows in the outcome and the dead letter, as text or base64", "[lifecycle]") {
  struct row {
    long code;
    int attempts;
    const char* state;
  };
  for (const row& w : {row{500, 1, "retrying"}, row{422, 1, "dead"}, row{503, 2, "dead"}}) {
    INFO(w.code << " at attempt " << w.attempts);
    http_result r = answer(w.code);
    r.body = R"({"error":"invalid signature","detail":"café"})";
    const decision d = decide(record(w.attempts, 2), r, options(), now, 0);
    CHECK(std::string(d.outcome.status) == w.state);
    CHECK(d.outcome.response == r.body);
    CHECK(json::parse(outcome_json(d.outcome))["response"] == r.body);
    if (d.state == next_state::dead) {
      const json dead = json::parse(dead_record_json(dead_letter(record(w.attempts, 2), d, "{}", now)));
      CHECK(dead["response"] == r.body);
      CHECK(dead["code"] == w.code);
    }
  }
  // Delivered, a transport error, an empty body: no response field.
  http_result ok = answer(200);
  ok.body = "fine";
  CHECK_FALSE(json::parse(outcome_json(decide(record(1, 2), ok, options(), now, 0).outcome)).contains("response"));
  http_result cut = answer(0, "Recv failure: Connection reset by peer");
  cut.body = "partial";
  CHECK(decide(record(1, 2), cut, options(), now, 0).outcome.response.empty());
  CHECK_FALSE(json::parse(outcome_json(decide(record(2, 2), answer(404), options(), now, 0).outcome)).contains("response"));
  // Not UTF-8: base64. Cut inside a character at the kept length: cut back to its start.
  http_result bin = answer(500);
  bin.body = std::string("\xff\xfe\x00\x01", 4);
  const json b = json::parse(outcome_json(decide(record(2, 2), bin, options(), now, 0).outcome));
  CHECK(b["response_b64"] == "//4AAQ==");
  CHECK_FALSE(b.contains("response"));
  // Past the kept length: cut at a character's start, told by the bytes read beyond it.
  http_result longer = answer(500);
  longer.body = std::string(response_kept_bytes - 1, 'a') + "\xc3\xa9" + std::string(100, 'b');
  const decision ld = decide(record(2, 2), longer, options(), now, 0);
  CHECK(ld.outcome.response.size() == response_read_bytes);
  CHECK(json::parse(outcome_json(ld.outcome))["response"] == std::string(response_kept_bytes - 1, 'a'));
  struct odd_row {
    std::string body;
    std::string text;  // the response shown as text, or "" when base64
  };
  const std::string a1023(response_kept_bytes - 1, 'a');
  for (const odd_row& w : {
           // Bytes that are no UTF-8 are not dropped, whatever the length: base64.
           odd_row{a1023 + "\xff", ""},
           odd_row{a1023 + "\xffxyz", ""},
           odd_row{std::string(response_kept_bytes - 4, 'a') + "caf\xe9", ""},  // Latin-1, whole
           odd_row{std::string(response_kept_bytes - 4, 'a') + "caf\xe9 and more", ""},
           odd_row{std::string(response_kept_bytes - 5, 'a') + "caf\xe9", ""},    // shorter
           // A character crossing the length: cut back to its start.
           odd_row{std::string(response_kept_bytes - 2, 'a') + "\xe6\x97\xa5zz", std::string(response_kept_bytes - 2, 'a')},
           odd_row{std::string(response_kept_bytes, 'a') + "\xe6\x97\xa5", std::string(response_kept_bytes, 'a')},
           // What only looks like a character at the length is no reason to cut.
           odd_row{a1023 + "\x80\x80", ""},
           odd_row{a1023 + "\xb0\xb0" + std::string(100, 'a'), ""},
           odd_row{std::string(response_kept_bytes, 'a') + "\x80", std::string(response_kept_bytes, 'a')},
           odd_row{std::string(response_kept_bytes - 2, 'a') + "\xc3\xa9\x80", std::string(response_kept_bytes - 2, 'a') + "\xc3\xa9"},
           odd_row{a1023 + "\xc0\x80", ""},           // an overlong form crossing it
           odd_row{a1023 + "\xe2\x82x", ""},          // a character the bytes beyond do not finish
           odd_row{std::string(response_kept_bytes - 2, 'a') + "\xed\xa0\x80", ""},  // a surrogate
       }) {
    INFO(w.body.size() << " bytes");
    http_result odd = answer(500);
    odd.body = w.body.substr(0, response_read_bytes);
    const json j = json::parse(outcome_json(decide(record(2, 2), odd, options(), now, 0).outcome));
    if (!w.text.empty()) {
      CHECK(j["response"] == w.text);
    } else {
      CHECK_FALSE(j.contains("response"));
      CHECK(j["response_b64"] == base64_encode(odd.body.substr(0, response_kept_bytes)));
    }
  }
}

TEST_CASE("invalid tasks are refused: dead before any attempt, with the decoder's reason", "[lifecycle][invalid]") {
  struct row {
    const char* payload;
    const char* reason;
  };
  const row rows[] = {
      {"", "payload is empty"},
      {"   ", "payload is empty"},
      {"{}", "url is missing"},
      {"[1,2]", "payload must be a JSON object or an http(s) URL"},
      {"not json", "payload is not valid JSON (at byte 2)"},
      {R"({"url":"ftp://h/x"})", "url scheme 'ftp' is not allowed (http and https only)"},
      {R"({"url":"http://h/","method":"BREW"})", "method 'BREW' is not supported (GET POST PUT PATCH DELETE HEAD)"},
      {R"({"url":"http://h/","retries":-1})", "retries must be an integer from 0 to 1000"},
      {R"({"url":"http://h/","timeout":0})", "timeout must be a number of seconds > 0 and <= 86400"},
      {R"({"url":"http://h/","callback":"file:///x"})", "callback scheme 'file' is not allowed (http and https only)"},
      {R"({"url":"http://u:p@h/","delay":-1})", "delay must be a number of seconds >= 0"},
  };
  for (const auto& r : rows) {
    INFO("payload: " << r.payload);
    const decoded_element e = decode_element(r.payload, now);
    const auto* err = std::get_if<decode_error>(&e.result);
    REQUIRE(err);
    CHECK(err->reason == r.reason);
    task_record t = record(0, 1);
    t.url = {};
    const decision d = refuse(t, err->reason);
    CHECK(d.state == next_state::dead);
    CHECK(d.reason == r.reason);
    CHECK(d.outcome.error == r.reason);
    CHECK(std::string(d.outcome.status) == "dead");
    CHECK(d.outcome.attempts == 0);
    CHECK(d.outcome.code == 0);
    const json dead = json::parse(dead_record_json(dead_letter(t, d, r.payload, now)));
    CHECK(dead["reason"] == r.reason);
    CHECK(dead["attempts"] == 0);
    CHECK(dead["code"] == 0);
    CHECK(dead["payload"] == r.payload);  // untouched, for replay
  }
}

TEST_CASE("a refused task keeps the producer's id, a dead letter moved back is unwrapped", "[lifecycle][invalid]") {
  CHECK(decode_element(R"({"id":"mine","url":"ftp://h/"})", now).id == "mine");
  CHECK(decode_element(R"({"id":42,"url":7})", now).id == "42");
  CHECK(decode_element(R"({"id":")" + std::string(300, 'x') + R"(","url":7})", now).id.empty());
  CHECK(decode_element(R"({"url":"http://h/"})", now).id.empty());

  const std::string original = R"({"url":"http://h/again","id":"orig-7"})";
  const task_record t = record(3, 3);
  const decision d = decide(t, answer(503), options(), now, 0);
  const std::string dead = dead_record_json(dead_letter(t, d, original, now));
  const decoded_element e = decode_element(dead, now);
  CHECK(e.was_dead_letter);
  CHECK(e.payload(dead) == original);
  CHECK(e.id == "orig-7");
  REQUIRE(std::holds_alternative<task>(e.result));
  CHECK(std::get<task>(e.result).url == "http://h/again");
  // A task of the producer's own that happens to carry these fields is not unwrapped.
  const std::string own = R"({"url":"http://h/","failed_at":1,"payload":"x"})";
  CHECK_FALSE(decode_element(own, now).was_dead_letter);
}

TEST_CASE("duplicates are not sent twice, their outcome says so", "[lifecycle]") {
  const outcome_fields o = duplicate_outcome(record(0, 1));
  const json j = json::parse(outcome_json(o));
  CHECK(j["status"] == "duplicate");
  CHECK(j["attempts"] == 0);
  CHECK(j["error"] == "a task with this id is already in flight or waiting to retry");
}

TEST_CASE("credentials in a task URL are hidden in outcomes, reasons and dead letters, not in the payload",
          "[lifecycle][redact]") {
  const std::string payload = R"({"url":"http://alice:s3cret@127.0.0.1:9/x"})";
  task_record t = record(2, 2);
  t.url = "http://alice:s3cret@127.0.0.1:9/x";
  const decision d = decide(t, answer(0, "Failed to connect to http://alice:s3cret@127.0.0.1:9/x"), options(), now, 0);
  REQUIRE(d.state == next_state::dead);
  const std::string outcome = outcome_json(d.outcome);
  const std::string dead = dead_record_json(dead_letter(t, d, payload, now));
  CHECK(outcome.find("s3cret") == std::string::npos);
  CHECK(json::parse(outcome)["url"] == "http://alice:***@127.0.0.1:9/x");
  CHECK(json::parse(outcome)["error"] == "Failed to connect to http://alice:***@127.0.0.1:9/x");
  CHECK(json::parse(dead)["error"] == "Failed to connect to http://alice:***@127.0.0.1:9/x");
  CHECK(json::parse(dead)["payload"] == payload);  // replay needs the real URL
  CHECK(json::parse(dead).dump().find("s3cret") != std::string::npos);
  // A token as the user, with no password.
  t.url = "https://tok_123@hooks.example/x";
  CHECK(json::parse(outcome_json(decide(t, answer(200), options(), now, 0).outcome))["url"] ==
        "https://***@hooks.example/x");
}

TEST_CASE("429 and 503 with a Retry-After in the future cost no attempt, even the last", "[lifecycle][hold]") {
  struct row {
    long code;
    const char* retry_after;
    int attempts, max_attempts;
    const char* state;
    int outcome_attempts;
    bool refunded;
  };
  const row rows[] = {
      {429, "5", 1, 6, "retrying", 0, true},
      {503, "5", 6, 6, "retrying", 5, true},      // the last attempt: refunded, retried
      {429, "Wed, 21 Oct 2099 07:28:00 GMT", 3, 3, "retrying", 2, true},
      {429, nullptr, 6, 6, "dead", 6, false},     // no Retry-After: spent
      {503, "0", 6, 6, "dead", 6, false},         // nothing to wait for: spent
      {503, "soon", 2, 6, "retrying", 2, false},  // unreadable: spent
      {500, "5", 6, 6, "dead", 6, false},         // only 429 and 503 hold
      {410, "5", 1, 6, "dead", 1, false},
  };
  for (const auto& r : rows) {
    INFO("HTTP " << r.code << " Retry-After " << (r.retry_after ? r.retry_after : "(none)") << ", attempt " << r.attempts
                 << "/" << r.max_attempts);
    http_result res = answer(r.code);
    if (r.retry_after) res.retry_after = r.retry_after;
    const decision d = decide(record(r.attempts, r.max_attempts), res, options(), now, 0.0);
    CHECK(std::string(d.outcome.status) == r.state);
    CHECK(d.attempt_refunded == r.refunded);
    CHECK(d.outcome.attempts == r.outcome_attempts);
    if (r.refunded) CHECK(d.next_run >= now + 5);
  }
}

TEST_CASE("a task's free holds are bounded: past them a hold is an attempt spent", "[lifecycle][hold]") {
  http_result res = answer(429);
  res.retry_after = "5";
  task_record t = record(1, 1);
  t.holds = max_free_holds - 1;
  decision d = decide(t, res, options(), now, 0.0);
  CHECK(d.attempt_refunded);
  CHECK(std::string(d.outcome.status) == "retrying");
  t.holds = max_free_holds;
  d = decide(t, res, options(), now, 0.0);
  CHECK_FALSE(d.attempt_refunded);
  CHECK(std::string(d.outcome.status) == "dead");
  CHECK(d.reason == "attempts exhausted (1)");
  // With attempts left, the hold still sets the time of the next one.
  t = record(1, 3);
  t.holds = max_free_holds;
  d = decide(t, res, options(), now, 0.0);
  CHECK_FALSE(d.attempt_refunded);
  CHECK(std::string(d.outcome.status) == "retrying");
  CHECK(d.outcome.attempts == 1);
  CHECK(d.next_run >= now + 5);
}

TEST_CASE("an attempt log counts the attempts taken back", "[lifecycle][hold]") {
  attempt_log log;
  CHECK(log.holds() == 0);
  log.started(1, 10);
  log.finished(429, "", 1, 20);
  log.started(1, 20);  // taken back: the same number again
  log.finished(429, "", 1, 30);
  log.started(1, 30);
  CHECK(log.holds() == 2);
  log.finished(500, "", 1, 40);
  log.started(2, 40);
  CHECK(log.holds() == 2);
  // Packed into an envelope and back (a retrying task's log), the count holds.
  CHECK(attempt_log::unpack(log.pack()).holds() == 2);
}

TEST_CASE("a failure's text: the transfer error with credentials hidden, else the HTTP code", "[lifecycle]") {
  http_result r;
  r.code = 503;
  CHECK(failure_text(r) == "HTTP 503");
  r.error = "Failed to connect to http://user:secret@h/ port 80";
  CHECK(failure_text(r) == "Failed to connect to http://user:***@h/ port 80");
}
