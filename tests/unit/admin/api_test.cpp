// api: the POST body read into the elements to push (ids added, every task checked with
// custody's own decoder, all or nothing), the queues document, SSE framing, and the
// event hub's bounded buffers (a slow reader is dropped, never waited for).
#include <string>
#include <thread>
#include <variant>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "admin/api.hpp"
#include "admin/event_hub.hpp"

using namespace respq;

namespace {

std::function<std::string()> counter_ids() {
  auto n = std::make_shared<int>(0);
  return [n] { return "gen-" + std::to_string(++*n); };
}

}  // namespace

TEST_CASE("one task object gets an id when it has none, and is pushed as compact JSON", "[admin][api]") {
  auto r = admin::read_tasks(R"({ "url": "http://127.0.0.1:9/x", "param": {"a": "b c"} })", 1e9, counter_ids());
  REQUIRE(std::holds_alternative<admin::task_batch>(r));
  const auto& b = std::get<admin::task_batch>(r);
  REQUIRE(b.ids == std::vector<std::string>{"gen-1"});
  REQUIRE(b.payloads.size() == 1);
  const auto j = nlohmann::json::parse(b.payloads[0]);
  CHECK(j["id"] == "gen-1");
  CHECK(j["url"] == "http://127.0.0.1:9/x");
  CHECK(j["param"]["a"] == "b c");
  CHECK(b.payloads[0].find('\n') == std::string::npos);
}

TEST_CASE("an array keeps its order and the producers' own ids (string or integer)", "[admin][api]") {
  auto r = admin::read_tasks(R"([{"url":"http://h/1","id":"mine"},{"url":"http://h/2"},{"url":"http://h/3","id":42},
                                 "https://h/4"])",
                             1e9, counter_ids());
  REQUIRE(std::holds_alternative<admin::task_batch>(r));
  const auto& b = std::get<admin::task_batch>(r);
  CHECK(b.ids == std::vector<std::string>{"mine", "gen-1", "42", "gen-2"});
  CHECK(nlohmann::json::parse(b.payloads[3])["url"] == "https://h/4");
}

TEST_CASE("an id the decoder does not use is replaced, so the answer names the id the task runs under", "[admin][api]") {
  auto r = admin::read_tasks(R"([{"url":"http://h/1","id":""},{"url":"http://h/2","id":"ok"}])", 1e9, counter_ids());
  REQUIRE(std::holds_alternative<admin::task_batch>(r));
  const auto& b = std::get<admin::task_batch>(r);
  CHECK(b.ids == std::vector<std::string>{"gen-1", "ok"});
  CHECK(nlohmann::json::parse(b.payloads[0])["id"] == "gen-1");
}

TEST_CASE("a batch naming one id twice is refused: the second task would not run", "[admin][api]") {
  auto r = admin::read_tasks(R"([{"url":"http://h/1","id":"same"},{"url":"http://h/2","id":"same"}])", 1e9,
                             counter_ids());
  REQUIRE(std::holds_alternative<admin::api_error>(r));
  CHECK_THAT(std::get<admin::api_error>(r).message, Catch::Contains("task 1: id 'same' is given twice"));
}

TEST_CASE("invalid JSON or an invalid task refuses the whole batch with a message", "[admin][api]") {
  struct row {
    const char* body;
    const char* message_part;
  } rows[] = {
      {"{not json", "not valid JSON"},
      {"", "not valid JSON"},
      {"[]", "empty"},
      {"42", "JSON object"},
      {R"({"param": {}})", "url"},
      {R"({"url": "ftp://h/x"})", "scheme"},
      {R"([{"url":"http://h/ok"}, {"url":"http://h/x","method":"BREW"}])", "task 1: "},
      {R"({"url":"http://h/x","id":{"no":1}})", "id"},
      {R"({"url":"http://h/x","retries":"many"})", "retries"},
  };
  for (const auto& rw : rows) {
    INFO(rw.body);
    auto r = admin::read_tasks(rw.body, 1e9, counter_ids());
    REQUIRE(std::holds_alternative<admin::api_error>(r));
    CHECK_THAT(std::get<admin::api_error>(r).message, Catch::Contains(rw.message_part, Catch::CaseSensitive::No));
  }
}

TEST_CASE("too many tasks in one request are refused", "[admin][api]") {
  std::string body = "[";
  for (int i = 0; i < 11; ++i) body += std::string(i ? "," : "") + R"({"url":"http://h/"})";
  body += "]";
  auto r = admin::read_tasks(body, 1e9, counter_ids(), 10);
  REQUIRE(std::holds_alternative<admin::api_error>(r));
}

TEST_CASE("the queues document carries figures and options", "[admin][api]") {
  admin::queue_view v;
  v.stats.name = "tasks";
  v.stats.pending = 3;
  v.stats.delivered = 2;
  v.stats.attempts.responses[tasks::attempt_figures::class_5xx] = 4;
  v.stats.egress_denied = 5;
  v.stats.cancelled = 6;
  v.stats.extra = {{"waiting_host", "7"}, {"taker", "up"}};
  v.options.concurrency = 16;
  v.options.retries = 2;
  const auto j = nlohmann::json::parse(admin::queues_json({v}));
  REQUIRE(j["queues"].size() == 1);
  const auto& q = j["queues"][0];
  CHECK(q["name"] == "tasks");
  CHECK(q["pending"] == 3);
  CHECK(q["delivered"] == 2);
  CHECK(q["paused"] == false);
  CHECK(q["responses"]["5xx"] == 4);
  CHECK(q["egress_denied"] == 5);
  CHECK(q["cancelled"] == 6);
  CHECK(q["replaying"] == 0);
  CHECK(q["reclaimed"] == 0);
  CHECK(q["link"]["waiting_host"] == 7);  // a figure: a number
  CHECK(q["link"]["taker"] == "up");
  CHECK(q["options"]["concurrency"] == 16);
  CHECK(q["options"]["retries"] == 2);
}

TEST_CASE("an SSE event is one data line per line, ended by a blank line", "[admin][api]") {
  CHECK(admin::sse_event({}, R"({"a":1})") == "data: {\"a\":1}\n\n");
  CHECK(admin::sse_event("dropped", "x\ny") == "event: dropped\ndata: x\ndata: y\n\n");
}

TEST_CASE("task ids are 24 hex digits, the counter last", "[admin][api]") {
  CHECK(admin::make_task_id(0xabcdefULL, 0x1234) == "0000000000abcdef00001234");
}

TEST_CASE("the event hub delivers to every stream and drops one that falls behind", "[admin][events]") {
  admin::event_hub hub(3);
  CHECK(hub.offer_message("q", "nobody listens") == 0);
  auto fast = hub.subscribe(2);
  auto slow = hub.subscribe(2);
  REQUIRE(fast);
  REQUIRE(slow);
  CHECK_FALSE(hub.subscribe(2));  // at most two streams
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    CHECK(hub.offer_message("q", "e" + std::to_string(i)) == 2);
    REQUIRE(fast->next(got, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::events);
  }
  CHECK(got == std::vector<std::string>{"e0", "e1", "e2"});
  // slow holds three: the fourth overflows it, and it is dropped; fast goes on.
  CHECK(hub.offer_message("q", "e3") == 1);
  std::vector<std::string> slow_got;
  CHECK(slow->next(slow_got, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::dropped);
  CHECK(slow_got.empty());
  CHECK(hub.dropped_total() == 1);
  CHECK(hub.offer_message("q", "e4") == 1);
  got.clear();
  CHECK(fast->next(got, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::events);
  CHECK(got == std::vector<std::string>{"e3", "e4"});
  hub.unsubscribe(slow);
  CHECK(hub.connections() == 1);
}

TEST_CASE("a waiting stream wakes for an event offered from another thread, and ends on close", "[admin][events]") {
  admin::event_hub hub;
  auto sub = hub.subscribe(1);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    hub.offer_message("q", "late");
  });
  std::vector<std::string> got;
  const auto st = sub->next(got, std::chrono::seconds(10));
  t.join();
  CHECK(st == admin::event_hub::subscription::status::events);
  CHECK(got == std::vector<std::string>{"late"});
  CHECK(sub->next(got, std::chrono::milliseconds(1)) == admin::event_hub::subscription::status::idle);
  hub.close_all();
  CHECK(sub->next(got, std::chrono::seconds(10)) == admin::event_hub::subscription::status::closed);
}

TEST_CASE("a task's document gives times and durations to the millisecond, as TASK GET does", "[admin][api]") {
  core::task_manager::task_view v;
  v.id = "t2";
  v.queue = "tasks";
  v.state = "dead";
  v.next_run = 1700000002.0004;
  v.finished_at = 1700000003.123456;
  v.log.started(1, 1700000000.9876543);
  v.log.finished(500, "HTTP 500", 12.3456789, 1700000001.0006);
  // The text, not a parse: 1700000003.123456 and 1700000003.123 parse to different doubles.
  const std::string text = admin::task_json(v);
  INFO(text);
  auto has = [&](std::string_view member) {
    const std::string m(member);
    return text.find(m + ",") != std::string::npos || text.find(m + "}") != std::string::npos;
  };
  CHECK(has("\"finished_at\":1700000003.123"));
  CHECK(has("\"next_run\":1700000002.0"));
  CHECK(has("\"started_at\":1700000000.988"));
  CHECK(has("\"duration_ms\":12.346"));
  CHECK(has("\"next_run\":1700000001.001"));
}

TEST_CASE("a task's document has its state, payload and every attempt, null while one runs", "[admin][api]") {
  core::task_manager::task_view v;
  v.id = "t1";
  v.queue = "tasks";
  v.state = "in_flight";
  v.attempts = 2;
  v.max_attempts = 4;
  v.last_code = 503;
  v.payload = R"({"url":"http://h/","id":"t1"})";
  v.log.started(1, 1700000000.25);
  v.log.finished(503, "", 12.5, 1700000001.5);
  v.log.started(2, 1700000001.5);
  auto j = nlohmann::json::parse(admin::task_json(v));
  CHECK(j["id"] == "t1");
  CHECK(j["state"] == "in_flight");
  CHECK(j["payload"] == v.payload);
  CHECK(j["attempts_made"] == 2);
  CHECK(j["max_attempts"] == 4);
  CHECK(j["next_run"].is_null());
  CHECK(j["finished_at"].is_null());
  REQUIRE(j["attempts"].size() == 2);
  CHECK(j["attempts"][0] == nlohmann::json::parse(
                                R"({"attempt":1,"started_at":1700000000.25,"code":503,"error":"","duration_ms":12.5,"next_run":1700000001.5})"));
  CHECK(j["attempts"][1] == nlohmann::json::parse(
                                R"({"attempt":2,"started_at":1700000001.5,"code":null,"error":null,"duration_ms":null,"next_run":null})"));
}
