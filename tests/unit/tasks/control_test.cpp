// control: dead-letter filters for QUEUE REPLAY, the recent outcomes kept for TASK GET,
// and the pacing of a replay.
#include <chrono>
#include <cmath>
#include <string>

#include <catch2/catch.hpp>

#include "tasks/control.hpp"
#include "tasks/records.hpp"

using namespace respq::tasks;

namespace {

std::string dead(std::string_view id, std::string_view payload, long code, std::string_view error = "") {
  const std::string reason = code ? "HTTP " + std::to_string(code) + " is final" : std::string("attempts exhausted (1)");
  dead_fields f;
  f.id = id;
  f.queue = "tasks";
  f.reason = reason;
  f.error = error;
  f.payload = payload;
  f.attempts = 1;
  f.code = code;
  f.failed_at = 1700000000.5;
  return dead_record_json(f);
}

finished_task finished(std::string id, finished_state st = finished_state::delivered) {
  finished_task t;
  t.id = std::move(id);
  t.state = st;
  t.kind = finished_task::source::element;
  t.record = R"({"url":"http://h/","id":")" + t.id + "\"}";
  return t;
}

}  // namespace

TEST_CASE("url_host is the lower-case host without userinfo, port or brackets", "[control]") {
  CHECK(url_host("http://Example.COM:8080/a?b") == "example.com");
  CHECK(url_host("https://user:pw@api.example.com/x") == "api.example.com");
  CHECK(url_host("http://[::1]:80/") == "::1");
  CHECK(url_host("http://127.0.0.1") == "127.0.0.1");
  CHECK(url_host("http://h?x=1@y") == "h");
  CHECK(url_host("not a url") == "");
}

TEST_CASE("a dead record reads back with its id, code, host and untouched payload", "[control]") {
  const std::string payload = R"({"url":"http://Hooks.Example:81/p","param":{"a":"b"},"id":"t-1"})";
  auto d = read_dead_letter(dead("t-1", payload, 503));
  REQUIRE(d);
  CHECK(d->id == "t-1");
  CHECK(d->code == 503);
  CHECK(d->host == "hooks.example");
  CHECK(d->host_port == "hooks.example:81");
  CHECK(d->payload == payload);
  CHECK(d->attempts == 1);
  CHECK(d->failed_at == Approx(1700000000.5));

  SECTION("a payload that is not UTF-8 comes back from payload_b64") {
    const std::string bin = std::string("\xff\xfe", 2) + "http://x/";
    auto b = read_dead_letter(dead("t-2", bin, 0, "connect failed"));
    REQUIRE(b);
    CHECK(b->payload == bin);
    CHECK(b->host.empty());  // does not decode as a task
    CHECK(b->error == "connect failed");
  }
  SECTION("the failing answer's body reads back, as text or from response_b64") {
    dead_fields f;
    f.id = "t-3";
    f.queue = "tasks";
    f.reason = "HTTP 422 is final";
    f.payload = payload;
    f.code = 422;
    f.failed_at = 1;
    f.response = R"({"error":"bad"})";
    auto r = read_dead_letter(dead_record_json(f));
    REQUIRE(r);
    CHECK(r->response == R"({"error":"bad"})");
    const std::string bin("\xff\x00\x01", 3);
    f.response = bin;
    r = read_dead_letter(dead_record_json(f));
    REQUIRE(r);
    CHECK(r->response == bin);
    CHECK(d->response.empty());  // none when the record has none
  }
  SECTION("what is not a dead record is refused") {
    CHECK_FALSE(read_dead_letter("plain text"));
    CHECK_FALSE(read_dead_letter(R"({"id":"x"})"));         // no failed_at
    CHECK_FALSE(read_dead_letter(R"({"id":1,"failed_at":1})"));  // id not a string
    CHECK_FALSE(read_dead_letter("[1,2]"));
  }
}

TEST_CASE("a dead filter selects by id, code (0: no HTTP answer) and host, all of them", "[control]") {
  dead_letter_info d;
  d.id = "a";
  d.code = 500;
  d.host = "api.example";
  CHECK(matches(dead_filter{}, d));
  CHECK(dead_filter{}.any());
  CHECK(matches(dead_filter{"a", "", -1}, d));
  CHECK_FALSE(matches(dead_filter{"b", "", -1}, d));
  CHECK(matches(dead_filter{"", "", 500}, d));
  CHECK_FALSE(matches(dead_filter{"", "", 0}, d));
  CHECK(matches(dead_filter{"", "API.Example", -1}, d));
  CHECK_FALSE(matches(dead_filter{"", "other", -1}, d));
  CHECK_FALSE(matches(dead_filter{"a", "api.example", 404}, d));
  d.code = 0;
  CHECK(matches(dead_filter{"", "", 0}, d));
  // "-" selects the letters with no host, and only them.
  CHECK_FALSE(matches(dead_filter{"", std::string(no_host), 0}, d));
  d.host.clear();
  CHECK(matches(dead_filter{"", std::string(no_host), 0}, d));
  CHECK(matches(dead_filter{"", "", 0}, d));
  CHECK_FALSE(matches(dead_filter{"", "api.example", 0}, d));
}

TEST_CASE("a dead filter's host with a port matches that port only, as INFO hosts names hosts", "[control]") {
  dead_letter_info d;
  d.id = "a";
  d.host = "api.example";
  d.host_port = "api.example:8080";
  CHECK(matches(dead_filter{"", "API.example:8080", -1}, d));
  CHECK_FALSE(matches(dead_filter{"", "api.example:8081", -1}, d));
  CHECK(matches(dead_filter{"", "api.example", -1}, d));  // without a port: any port
  d.host = "::1";
  d.host_port = "[::1]:443";
  CHECK(matches(dead_filter{"", "::1", -1}, d));  // a bare IPv6 address names the host
  CHECK(matches(dead_filter{"", "[::1]:443", -1}, d));
  CHECK_FALSE(matches(dead_filter{"", "[::1]:80", -1}, d));
  CHECK_FALSE(matches(dead_filter{"", "api.example:", -1}, d));
}

TEST_CASE("the history keeps the newest max_len tasks and finds each by id", "[control]") {
  task_history h;
  for (int i = 0; i < 10; ++i) h.add(finished("t" + std::to_string(i)), 4);
  CHECK(h.size() == 4);
  CHECK_FALSE(h.find("t5"));
  REQUIRE(h.find("t6"));
  CHECK(h.find("t9")->id == "t9");

  SECTION("a task finished again replaces its older entry") {
    h.add(finished("t6", finished_state::cancelled), 4);
    CHECK(h.size() == 4);
    REQUIRE(h.find("t6"));
    CHECK(h.find("t6")->state == finished_state::cancelled);
    CHECK(h.find("t7"));  // the replaced entry did not push out a live one
    h.add(finished("n1"), 4);
    CHECK_FALSE(h.find("t7"));
    CHECK(h.find("t6"));
  }
  SECTION("one id finished over and over stays bounded") {
    for (int i = 0; i < 1000; ++i) h.add(finished("same"), 4);
    CHECK(h.size() <= 4);
    CHECK(h.find("same"));
  }
  SECTION("trim to a smaller length drops the oldest; 0 keeps nothing") {
    h.trim(2);
    CHECK(h.size() == 2);
    CHECK(h.find("t9"));
    CHECK(h.find("t8"));
    CHECK_FALSE(h.find("t7"));
    h.add(finished("x"), 0);
    CHECK(h.size() == 0);
    CHECK_FALSE(h.find("x"));
  }
}

TEST_CASE("a finished task's payload is read from the record it kept", "[control]") {
  const std::string payload = R"({"url":"http://h/","id":"e1"})";
  finished_task t;
  t.id = "e1";
  t.kind = finished_task::source::envelope;
  envelope_fields f;
  f.id = "e1";
  f.queue = "tasks";
  f.payload = payload;
  t.record = envelope_json(f);
  CHECK(finished_payload(t) == payload);
  t.kind = finished_task::source::dead_record;
  t.record = dead("e1", payload, 404);
  CHECK(finished_payload(t) == payload);
  t.kind = finished_task::source::element;
  t.record = payload;
  CHECK(finished_payload(t) == payload);
  t.record = dead("e1", payload, 404);  // a replayed dead letter, cancelled while pending
  CHECK(finished_payload(t) == payload);
}

TEST_CASE("the token bucket allows rate per second with a burst of a tenth of a second", "[control]") {
  using namespace std::chrono;
  token_bucket b;
  const auto t0 = token_bucket::clock::time_point{} + hours(1);
  CHECK(b.take(t0, 100, 1000) == 10);  // the burst
  CHECK(b.take(t0, 100, 1000) == 0);
  CHECK(b.next(t0, 100) > t0);
  CHECK(b.next(t0, 100) <= t0 + milliseconds(10));
  CHECK(b.take(t0 + milliseconds(50), 100, 1000) == 5);
  CHECK(b.take(t0 + seconds(10), 100, 1000) == 10);  // capped at the burst
  CHECK(b.take(t0 + seconds(20), 100, 3) == 3);      // never more than wanted
  // Over a long run: rate per second, whatever the polling.
  token_bucket r;
  std::size_t moved = 0;
  for (int ms = 0; ms <= 10000; ms += 7) moved += r.take(t0 + milliseconds(ms), 20, 1000000);
  CHECK(moved >= 199);
  CHECK(moved <= 203);
  // A slow rate still moves one at a time.
  token_bucket s;
  CHECK(s.take(t0, 1, 5) == 1);
  CHECK(s.take(t0 + milliseconds(500), 1, 5) == 0);
  CHECK(s.take(t0 + milliseconds(1000), 1, 5) == 1);
}

TEST_CASE("the attempt log keeps each attempt's answer and the newest 16 of them", "[control]") {
  attempt_log log;
  CHECK(log.empty());
  log.finished(200, "", 1, 0);  // nothing running: ignored
  CHECK(log.empty());
  log.started(1, 100.0);
  CHECK_FALSE(log.entries().back().finished);
  log.finished(503, "", 12.5, 160.0);
  log.finished(200, "", 1, 0);  // already finished: ignored
  log.started(2, 160.0);
  log.finished(0, "Timeout was reached", 30000, 0);
  REQUIRE(log.entries().size() == 2);
  const attempt_info& a = log.entries()[0];
  CHECK((a.number == 1 && a.started_at == 100.0 && a.finished && a.code == 503 && a.duration_ms == 12.5 &&
         a.next_run == 160.0));
  const attempt_info& b = log.entries()[1];
  CHECK((b.number == 2 && b.code == 0 && b.error == "Timeout was reached" && b.next_run == 0));
  for (int i = 3; i <= 40; ++i) {
    log.started(i, 100.0 + i);
    log.finished(500, "", 1, 0);
  }
  REQUIRE(log.entries().size() == attempt_log::max_logged_attempts);
  CHECK(log.entries().front().number == 40 - static_cast<int>(attempt_log::max_logged_attempts) + 1);
  CHECK(log.entries().back().number == 40);
}

TEST_CASE("an attempt that never ended stays in the log, and the running one is always last", "[control]") {
  attempt_log log;
  log.started(1, 10.0);
  CHECK_FALSE(log.empty());
  log.started(2, 20.0);  // the first never ended (its result was lost)
  log.finished(503, "", 5, 30.0);
  REQUIRE(log.entries().size() == 2);
  CHECK((log.entries()[0].number == 1 && !log.entries()[0].finished && log.entries()[0].started_at == 10.0));
  CHECK((log.entries()[1].number == 2 && log.entries()[1].finished && log.entries()[1].code == 503));
  // Read while running, then ended: one entry, finished.
  log.started(3, 40.0);
  REQUIRE(log.entries().size() == 3);
  CHECK_FALSE(log.entries().back().finished);
  log.finished(200, "", 1, 0);
  REQUIRE(log.entries().size() == 3);
  CHECK((log.entries().back().number == 3 && log.entries().back().finished && log.entries().back().code == 200));
  // At the cap, the running attempt is the newest of the 16 kept.
  for (int i = 4; i <= 16; ++i) {
    log.started(i, 40.0 + i);
    log.finished(500, "", 1, 0);
  }
  log.started(17, 100.0);
  const attempt_log copy = log;  // a copy (TASK GET's) shows it too
  REQUIRE(copy.entries().size() == attempt_log::max_logged_attempts);
  CHECK(copy.entries().front().number == 2);
  CHECK((copy.entries().back().number == 17 && !copy.entries().back().finished));
  log.finished(0, "Connection refused", 2, 0);
  REQUIRE(log.entries().size() == attempt_log::max_logged_attempts);
  CHECK((log.entries().front().number == 2 && log.entries().back().error == "Connection refused"));
  // A log moved while its attempt runs leaves nothing behind.
  attempt_log running;
  running.started(1, 5.0);
  attempt_log moved = std::move(running);
  CHECK(running.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, as a vector
  CHECK(running.entries().empty());
  REQUIRE(moved.entries().size() == 1);
  attempt_log assigned;
  moved.started(2, 6.0);
  assigned = std::move(moved);
  CHECK(moved.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(assigned.entries().size() == 2);
}

TEST_CASE("an attempt log packs into bytes and back", "[control][attempts]") {
  auto same = [](const attempt_log& x, const attempt_log& y) {
    REQUIRE(x.entries().size() == y.entries().size());
    for (std::size_t i = 0; i < x.entries().size(); ++i) {
      const attempt_info& a = x.entries()[i];
      const attempt_info& b = y.entries()[i];
      CHECK(a.number == b.number);
      CHECK(a.started_at == b.started_at);
      CHECK(a.finished == b.finished);
      CHECK(a.code == b.code);
      CHECK(a.error == b.error);
      CHECK(a.duration_ms == b.duration_ms);
      CHECK(a.next_run == b.next_run);
    }
  };
  attempt_log log;
  log.started(1, 1'700'000'000.25);
  log.finished(503, "HTTP 503", 12.5, 1'700'000'010);
  log.started(2, 1'700'000'010.5);
  log.finished(0, "Connection refused", 1.25, 1'700'000'030.125);
  log.started(3, 1'700'000'030.2);  // running
  same(attempt_log::unpack(log.pack()), log);

  // What the envelope says of the newest attempt is not stored twice.
  attempt_log one;
  one.started(1, 1'700'000'000.25);
  one.finished(0, "Failed to connect to 127.0.0.1 port 44381: Connection refused", 0.217, 1'700'003'600.25);
  const log_known known{"Failed to connect to 127.0.0.1 port 44381: Connection refused", 0, 1'700'003'600.25};
  const std::string packed = one.pack(known);
  CHECK(packed.size() <= 8);  // flags, started_at from next_run (an hour: 4 bytes), duration
  same(attempt_log::unpack(packed, known), one);
  CHECK(one.pack().size() > packed.size() + 10);
  same(attempt_log::unpack(one.pack()), one);
  // With other known values, each field is stored and read back as it was.
  same(attempt_log::unpack(log.pack(known), known), log);
  const log_known other{"HTTP 503", 503, 1'700'000'010};
  same(attempt_log::unpack(log.pack(other), other), log);

  // Times are kept to the thousandth, as TASK GET shows them.
  attempt_log fine;
  fine.started(4, 1'700'000'000.123456);  // a log that starts after a restart: number 4
  fine.finished(200, "", 3.0004, 0);
  const attempt_log back = attempt_log::unpack(fine.pack());
  REQUIRE(back.entries().size() == 1);
  CHECK(back.entries()[0].number == 4);
  CHECK(json_number(back.entries()[0].started_at) == json_number(1'700'000'000.123456));
  CHECK(json_number(back.entries()[0].duration_ms) == "3");
  CHECK(back.entries()[0].next_run == 0);
  CHECK(back.entries()[0].error.empty());

  // A time with no thousandths form (negative, huge) is kept as it is.
  attempt_log odd;
  odd.started(1, -5.5);
  odd.finished(0, "x", 1e300, 1e20);
  odd.started(2, 1'700'000'000.5);
  same(attempt_log::unpack(odd.pack()), odd);

  // -0 and a next_run shown as 1e12 have no thousandths form: kept as they are, and the
  // times of the other entries still read back.
  attempt_log zeros;
  zeros.started(1, -0.0);
  zeros.finished(0, "x", -0.0, 1'700'000'010);
  zeros.started(2, 1'700'000'010.5);
  zeros.finished(500, "", 2.5, 999'999'999'999.9996);
  same(attempt_log::unpack(zeros.pack()), zeros);
  CHECK(std::signbit(attempt_log::unpack(zeros.pack()).entries()[0].started_at));
  for (const double next_run : {999'999'999'999.9996, 999'999'999'999.999, -0.0, 1e12}) {
    const log_known edge{"x", 0, next_run};
    same(attempt_log::unpack(one.pack(edge), edge), one);
  }

  // A malformed log: a number past an int's range, given or implied, is no log.
  std::string huge(1, '\x02');  // f_number
  huge += '\xfe';
  huge += '\xff';
  huge += '\xff';
  huge += '\xff';
  huge += '\x0f';  // zigzag varint of 2^31 - 1
  huge += std::string("\x00\x00", 2);  // started_at, duration
  CHECK(attempt_log::unpack(huge).entries().size() == 1);
  CHECK(attempt_log::unpack(huge).entries()[0].number == 2147483647);
  CHECK(attempt_log::unpack(huge + std::string("\x00\x00\x00", 3)).empty());  // then 2^31, implied

  CHECK(attempt_log::unpack("").empty());
  CHECK(attempt_log::unpack(log.pack().substr(0, 3)).empty());  // truncated: nothing
}
