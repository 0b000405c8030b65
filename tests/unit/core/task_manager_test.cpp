// The HTTP task lifecycle in the core, with a fake delivery engine: requests are
// captured, results are fed back by hand.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <chrono>
#include <thread>

#include "tasks/records.hpp"
#include "broker/core/task_manager.hpp"
#include "core_fixture.hpp"
#include "tasks/http_request.hpp"

using namespace respq;
using test::fake_client;

namespace {

struct harness {
  core::server s;
  fake_client producer;
  std::vector<tasks::http_request> sent;

  explicit harness(core::config cfg) : s(std::move(cfg)), producer(s) {
    s.tasks().submit = [this](std::vector<tasks::http_request>&& b) {
      for (auto& r : b) sent.push_back(std::move(r));
    };
  }
  void result(const tasks::http_request& r, long code, std::string error = {}, bool truncated = false) {
    tasks::http_result res;
    res.ticket = r.ticket;
    res.code = code;
    res.error = std::move(error);
    res.truncated = truncated;
    std::vector<tasks::http_result> v{res};
    s.tasks().on_results(std::move(v));
    s.before_write();
  }
  std::string header(const tasks::http_request& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return {};
  }
};

core::config one_queue(int retries = 2) {
  core::config c;
  c.queues.clear();
  core::queue_options q;
  q.retries = retries;
  q.backoff_min = 0;
  q.backoff_max = 0;
  q.concurrency = 2;
  c.queues["tasks"] = q;
  return c;
}

}  // namespace

TEST_CASE("a pushed task is dispatched at once and tracked until delivered", "[tasks]") {
  harness h(one_queue());
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/send","param":{"user":"a b"}})"});
  REQUIRE(h.sent.size() == 1);
  CHECK(h.sent[0].url == "http://127.0.0.1:9/send?user=a+b");
  CHECK(h.sent[0].method == "GET");
  std::string id = h.header(h.sent[0], "X-Task-Id");
  CHECK_FALSE(id.empty());
  CHECK(h.header(h.sent[0], "X-Task-Attempt") == "1");
  CHECK(h.producer({"LLEN", "tasks"}) == ":0\r\n");
  CHECK(h.producer({"HEXISTS", "tasks:inflight", id}) == ":1\r\n");
  h.result(h.sent[0], 204);
  CHECK(h.producer({"EXISTS", "tasks:inflight"}) == ":0\r\n");
  CHECK(h.s.tasks().info().find("delivered=1") != std::string::npos);
}

TEST_CASE("concurrency caps requests in flight, oldest first", "[tasks]") {
  harness h(one_queue());
  for (int i = 0; i < 5; ++i)
    h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/t","param":{"n":)" + std::to_string(i) + "}}"});
  REQUIRE(h.sent.size() == 2);
  CHECK(h.sent[0].url.ends_with("n=0"));
  CHECK(h.sent[1].url.ends_with("n=1"));
  h.result(h.sent[0], 200);
  REQUIRE(h.sent.size() == 3);
  CHECK(h.sent[2].url.ends_with("n=2"));
}

TEST_CASE("retryable failures retry, then go dead with the payload kept", "[tasks]") {
  harness h(one_queue(1));
  const std::string payload = R"({"url":"http://127.0.0.1:9/fail"})";
  h.producer({"LPUSH", "tasks", payload});
  REQUIRE(h.sent.size() == 1);
  h.result(h.sent[0], 503);
  // backoff 0: due at once
  h.s.on_timer();
  h.s.before_write();
  REQUIRE(h.sent.size() == 2);
  CHECK(h.header(h.sent[1], "X-Task-Attempt") == "2");
  CHECK(h.header(h.sent[1], "X-Task-Id") == h.header(h.sent[0], "X-Task-Id"));
  h.result(h.sent[1], 0, "Connection refused");
  std::string dead = h.producer({"LINDEX", "tasks:dead", "0"});
  auto body = dead.substr(dead.find("\r\n") + 2);
  body.resize(body.size() - 2);
  auto j = nlohmann::json::parse(body);
  CHECK(j["payload"] == payload);
  CHECK(j["attempts"] == 2);
  CHECK(j["error"] == "Connection refused");
  CHECK(h.producer({"EXISTS", "tasks:inflight"}) == ":0\r\n");
}

TEST_CASE("other 4xx and invalid tasks go straight to dead", "[tasks]") {
  harness h(one_queue(5));
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/x"})"});
  h.result(h.sent[0], 404);
  h.producer({"LPUSH", "tasks", "not json", R"({"url":"gopher://x"})"});
  CHECK(h.sent.size() == 1);
  CHECK(h.producer({"LLEN", "tasks:dead"}) == ":3\r\n");
}

TEST_CASE("a dead task moved back to the queue runs again with its id", "[tasks]") {
  harness h(one_queue(0));
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/x"})"});
  std::string id = h.header(h.sent[0], "X-Task-Id");
  h.result(h.sent[0], 500);
  CHECK(h.producer({"LMOVE", "tasks:dead", "tasks", "RIGHT", "LEFT"}).substr(0, 1) == "$");
  REQUIRE(h.sent.size() == 2);
  CHECK(h.sent[1].url == "http://127.0.0.1:9/x");
  CHECK(h.header(h.sent[1], "X-Task-Id") == id);
}

TEST_CASE("outcomes are published on <queue>:results", "[tasks]") {
  harness h(one_queue());
  fake_client sub(h.s);
  sub({"SUBSCRIBE", "tasks:results"});
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/ok","id":"job-1"})"});
  h.result(h.sent[0], 200);
  std::string msg = sub.take();
  CHECK(msg.find("\"id\":\"job-1\"") != std::string::npos);
  CHECK(msg.find("\"status\":\"delivered\"") != std::string::npos);
  CHECK(msg.find("\"code\":200") != std::string::npos);
  CHECK(msg.find("truncated") == std::string::npos);  // only said when it happened
}

TEST_CASE("an outcome says when the response body was cut at the read limit", "[tasks]") {
  harness h(one_queue(1));
  fake_client sub(h.s);
  sub({"SUBSCRIBE", "tasks:results"});
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/big","id":"job-1"})"});
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/small","id":"job-2"})"});
  REQUIRE(h.sent.size() == 2);
  h.result(h.sent[0], 200, {}, true);
  std::string big = sub.take();
  CHECK(big.find("\"status\":\"delivered\"") != std::string::npos);
  INFO(big);
  CHECK(big.find(",\"truncated\":true}") != std::string::npos);
  h.result(h.sent[1], 503, {}, true);
  std::string retrying = sub.take();
  CHECK(retrying.find("\"status\":\"retrying\"") != std::string::npos);
  CHECK(retrying.find("\"truncated\":true") != std::string::npos);
  // Retried once (retries 1) and cut again: the dead outcome says it too.
  h.s.on_timer();
  h.s.before_write();
  REQUIRE(h.sent.size() == 3);
  h.result(h.sent[2], 500, {}, true);
  std::string dead = sub.take();
  CHECK(dead.find("\"status\":\"dead\"") != std::string::npos);
  CHECK(dead.find("\"truncated\":true") != std::string::npos);
}

TEST_CASE("delayed tasks wait in the in-flight hash until due", "[tasks]") {
  harness h(one_queue());
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/later","delay":0.05})"});
  CHECK(h.sent.empty());
  CHECK(h.s.tasks().info().find("scheduled=1") != std::string::npos);
  std::this_thread::sleep_until(h.s.next_deadline() + std::chrono::milliseconds(1));
  h.s.on_timer();
  h.s.before_write();
  CHECK(h.sent.size() == 1);
}

TEST_CASE("shutdown puts unfinished tasks back at the head of their queue", "[tasks]") {
  harness h(one_queue());
  const std::string p1 = R"({"url":"http://127.0.0.1:9/a","id":"a"})", p2 = R"({"url":"http://127.0.0.1:9/b","id":"b"})";
  h.producer({"LPUSH", "tasks", p1, p2});
  REQUIRE(h.sent.size() == 2);
  h.s.tasks().stop_dispatching();
  h.s.tasks().abandon_in_flight();
  CHECK(h.s.tasks().in_flight() == 0);
  CHECK(h.producer({"RPOP", "tasks"}) == "$" + std::to_string(p1.size()) + "\r\n" + p1 + "\r\n");
  CHECK(h.producer({"RPOP", "tasks"}) == "$" + std::to_string(p2.size()) + "\r\n" + p2 + "\r\n");
}

TEST_CASE("a client blocked on <queue>:dead is woken by a dead letter", "[tasks]") {
  harness h(one_queue(0));
  fake_client consumer(h.s);
  CHECK(consumer({"BRPOP", "tasks:dead", "0"}).empty());
  h.producer({"LPUSH", "tasks", "not json"});
  std::string got = consumer.take();
  CHECK(got.find("tasks:dead") != std::string::npos);
  CHECK(got.find("not json") != std::string::npos);
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/x"})"});
  CHECK(consumer({"BRPOP", "tasks:dead", "0"}).empty());
  h.result(h.sent[0], 404);  // an outcome outside any command
  CHECK(consumer.take().find("HTTP 404 is final") != std::string::npos);
}

TEST_CASE("a task requeued at shutdown keeps the id respq gave it", "[tasks]") {
  harness h(one_queue());
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/no-id"})"});
  REQUIRE(h.sent.size() == 1);
  std::string id = h.header(h.sent[0], "X-Task-Id");
  h.s.tasks().stop_dispatching();
  h.s.tasks().abandon_in_flight();
  // A new server (a restart) finds the requeued task and sends it with the same id.
  std::string requeued = h.producer({"RPOP", "tasks"});
  requeued = requeued.substr(requeued.find("\r\n") + 2);
  requeued.resize(requeued.size() - 2);
  harness h2(one_queue());
  h2.producer({"RPUSH", "tasks", requeued});
  REQUIRE(h2.sent.size() == 1);
  CHECK(h2.sent[0].url == "http://127.0.0.1:9/no-id");
  CHECK(h2.header(h2.sent[0], "X-Task-Id") == id);
}

TEST_CASE("JSON numbers in outcomes carry up to three decimals, trailing zeros dropped", "[tasks]") {
  CHECK(tasks::json_number(0) == "0");
  CHECK(tasks::json_number(12) == "12");
  CHECK(tasks::json_number(1.5) == "1.5");
  CHECK(tasks::json_number(0.1234) == "0.123");
  CHECK(tasks::json_number(1.0005) == "1");  // 1.000499999... in binary
  CHECK(tasks::json_number(0.0625) == "0.062");  // exact tie: round half to even, as printf
  CHECK(tasks::json_number(1764000000.25) == "1764000000.25");
  CHECK(tasks::json_number(-3.5) == "-3.5");
  CHECK(tasks::json_number(1e300).size() == 301);
}

TEST_CASE("INFO tasks reports dispatch latency percentiles", "[tasks]") {
  core::config cfg = one_queue();
  cfg.queues["tasks"].concurrency = 1;
  harness h(std::move(cfg));
  // Ten tasks pushed at once, one in flight at a time, each finished 5 ms after it
  // started: task k waits at least 5k ms, so the samples rise with k.
  for (int i = 0; i < 10; ++i) h.producer({"LPUSH", "tasks", "{\"url\":\"http://127.0.0.1:1/x\"}"});
  for (std::size_t k = 0; k < 10; ++k) {
    REQUIRE(h.sent.size() == k + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    h.result(h.sent[k], 204);
  }
  std::string info = h.s.tasks().info();
  auto field = [&](const std::string& name) {
    auto at = info.find(name + "=");
    REQUIRE(at != std::string::npos);
    return std::stod(info.substr(at + name.size() + 1));
  };
  // Nearest rank of 10 samples, read from the histogram: p50 falls in the 5th sample's
  // bucket (>= 20 ms), p99 is the 10th (>= 45 ms), the largest.
  const double p50 = field("latency_p50_ms"), p99 = field("latency_p99_ms");
  CHECK(p50 >= 20);
  CHECK(p99 >= 45);
  CHECK(p99 > p50);
}

TEST_CASE("the HTTP queues live in database 0: a push to <queue> in another database is a plain list", "[tasks]") {
  harness h(one_queue());
  CHECK(h.producer({"SELECT", "3"}) == "+OK\r\n");
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/x"})"});
  h.s.before_write();
  CHECK(h.sent.empty());
  CHECK(h.producer({"LLEN", "tasks"}) == ":1\r\n");
  CHECK(h.producer({"EXISTS", "tasks:inflight"}) == ":0\r\n");
  // Moved into database 0, it becomes a task there.
  CHECK(h.producer({"MOVE", "tasks", "0"}) == ":1\r\n");
  h.s.before_write();
  REQUIRE(h.sent.size() == 1);
  CHECK(h.producer({"EXISTS", "tasks"}) == ":0\r\n");
  CHECK(h.producer({"SELECT", "0"}) == "+OK\r\n");
  CHECK(h.producer({"LLEN", "tasks"}) == ":0\r\n");
  CHECK(h.producer({"HLEN", "tasks:inflight"}) == ":1\r\n");
  // EXPIRE of a key named like the in-flight record is refused only in database 0.
  CHECK(h.producer({"SELECT", "2"}) == "+OK\r\n");
  h.producer({"HSET", "tasks:inflight", "f", "v"});
  CHECK(h.producer({"EXPIRE", "tasks:inflight", "100"}) == ":1\r\n");
}

TEST_CASE("a paused queue dispatches nothing, its due retries wait without a busy timer, resume releases", "[tasks][control]") {
  harness h(one_queue(3));
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/r","id":"r1"})"});
  REQUIRE(h.sent.size() == 1);
  CHECK(h.producer({"QUEUE", "PAUSE", "tasks"}) == "+OK\r\n");
  CHECK(h.producer({"EXISTS", "tasks:paused"}) == ":1\r\n");
  h.result(h.sent[0], 503);  // retrying, due at once (backoff 0)
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/p","id":"p1"})"});
  h.s.on_timer();
  h.s.before_write();
  CHECK(h.sent.size() == 1);
  // Nothing for the timer to do while paused: no deadline that would spin the loop.
  CHECK(h.s.tasks().next_deadline() == core::clock::time_point::max());
  CHECK(h.s.tasks().info().find("paused=1") != std::string::npos);
  CHECK(h.producer({"QUEUE", "RESUME", "tasks"}) == "+OK\r\n");
  REQUIRE(h.sent.size() == 3);
  CHECK(h.header(h.sent[1], "X-Task-Id") == "r1");
  CHECK(h.header(h.sent[2], "X-Task-Id") == "p1");
  h.result(h.sent[1], 200);
  h.result(h.sent[2], 200);  // both slots free again
  // The key is the pause: SET pauses, DEL resumes.
  h.producer({"SET", "tasks:paused", "x"});
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/q","id":"q1"})"});
  CHECK(h.sent.size() == 3);
  h.producer({"DEL", "tasks:paused"});
  CHECK(h.sent.size() == 4);
}

TEST_CASE("a task cancelled in flight is not retried and its result is dropped", "[tasks][control]") {
  harness h(one_queue(3));
  fake_client sub(h.s);
  sub({"SUBSCRIBE", "tasks:results"});
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/c","id":"c1"})"});
  REQUIRE(h.sent.size() == 1);
  CHECK(h.producer({"TASK", "CANCEL", "c1"}) == ":1\r\n");
  CHECK(h.producer({"TASK", "CANCEL", "c1"}) == ":0\r\n");
  CHECK(h.producer({"HEXISTS", "tasks:inflight", "c1"}) == ":0\r\n");
  CHECK(sub.take().find(R"("status":"cancelled")") != std::string::npos);
  h.result(h.sent[0], 503);
  h.s.on_timer();
  h.s.before_write();
  CHECK(h.sent.size() == 1);
  CHECK(sub.take().empty());  // no second outcome
  const std::string info = h.s.tasks().info();
  CHECK(info.find("in_flight=0") != std::string::npos);
  CHECK(info.find("retrying=0") != std::string::npos);
  CHECK(info.find("cancelled=1") != std::string::npos);
  auto v = h.s.tasks().find_task("c1");
  REQUIRE(v);
  CHECK(v->state == "cancelled");
  CHECK(v->payload == R"({"url":"http://127.0.0.1:9/c","id":"c1"})");
}

TEST_CASE("the pause follows its key through FLUSHALL, SWAPDB and MOVE", "[tasks][control]") {
  harness h(one_queue());
  CHECK(h.producer({"QUEUE", "PAUSE", "tasks"}) == "+OK\r\n");
  h.producer({"FLUSHALL"});
  CHECK(h.s.tasks().info().find("paused=0") != std::string::npos);
  h.producer({"SELECT", "1"});
  h.producer({"SET", "tasks:paused", "1"});
  h.producer({"SWAPDB", "0", "1"});
  CHECK(h.s.tasks().info().find("paused=1") != std::string::npos);
  h.producer({"SELECT", "0"});
  h.producer({"MOVE", "tasks:paused", "2"});
  CHECK(h.s.tasks().info().find("paused=0") != std::string::npos);
  h.producer({"SELECT", "2"});
  h.producer({"MOVE", "tasks:paused", "0"});
  CHECK(h.s.tasks().info().find("paused=1") != std::string::npos);
  CHECK(h.producer({"QUEUE", "RESUME", "tasks"}) == "+OK\r\n");
  CHECK(h.s.tasks().info().find("paused=0") != std::string::npos);
}

TEST_CASE("a packed envelope's bytes written by a client are not taken for respq's own record", "[tasks]") {
  // respq keeps its envelopes packed; the same bytes written by a client are a malformed
  // record (moved to tasks:dead when read back), not a task with the client's fields.
  harness h(one_queue());
  h.producer({"LPUSH", "tasks", R"({"url":"http://127.0.0.1:9/later","id":"p1","delay":0.05})",
              R"({"url":"http://127.0.0.1:9/later","id":"p2","delay":3600})"});
  REQUIRE(h.sent.empty());
  tasks::envelope_fields f;
  f.id = "p1";
  f.queue = "tasks";
  f.state = tasks::custody_state::scheduled;
  f.payload = R"({"url":"http://127.0.0.1:9/planted"})";
  const std::string planted = tasks::envelope_packed(f);
  REQUIRE(tasks::is_packed_envelope(planted));
  CHECK(h.producer({"HSET", "tasks:inflight", "p1", planted}) == ":0\r\n");
  f.id = "p2";
  CHECK(h.producer({"HSET", "tasks:inflight", "p2", tasks::envelope_packed(f)}) == ":0\r\n");
  // Due: read back as JSON, which these bytes are not.
  std::this_thread::sleep_until(h.s.next_deadline() + std::chrono::milliseconds(1));
  h.s.on_timer();
  h.s.before_write();
  CHECK(h.sent.empty());
  const std::string dead = h.producer({"LINDEX", "tasks:dead", "0"});
  CHECK(dead.find("not valid JSON") != std::string::npos);
  CHECK(dead.find("'p1'") != std::string::npos);
  // Cancelled before its time: its history keeps the client's bytes as the payload.
  CHECK(h.producer({"TASK", "CANCEL", "p2"}) == ":1\r\n");
  auto v = h.s.tasks().find_task("p2");
  REQUIRE(v);
  CHECK(v->state == "cancelled");
  CHECK(v->payload == tasks::envelope_packed(f));
}
