// The dashboard's pure parts: the history ring (rates and medians over each interval,
// gaps for queues that come and go, the ring's bound, totals), the dead-letter view
// (groups by host and code with reasons counted, filters, paging, records that are not
// dead letters), the overview document, and the embedded files.
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "admin/dashboard.hpp"
#include "admin/dashboard_assets.hpp"
#include "admin/dead_view.hpp"
#include "admin/event_hub.hpp"
#include "admin/history.hpp"
#include "tasks/records.hpp"

using namespace respq;
using nlohmann::json;

namespace {

tasks::queue_stats stats(const std::string& name, std::uint64_t pending, std::uint64_t delivered, std::uint64_t failed) {
  tasks::queue_stats s;
  s.name = name;
  s.pending = pending;
  s.delivered = delivered;
  s.failed = failed;
  return s;
}

std::string dead(const std::string& id, long code, const std::string& url, const std::string& reason) {
  const std::string payload = json{{"id", id}, {"url", url}}.dump();
  tasks::dead_fields f;
  f.id = id;
  f.queue = "q";
  f.reason = reason;
  f.code = code;
  f.attempts = 2;
  f.failed_at = 1.7e9;
  f.payload = payload;
  return tasks::dead_record_json(f);
}

}  // namespace

TEST_CASE("history: rates over each interval, the interval's median, and nulls before the first rate", "[admin][dashboard]") {
  admin::figures_history h(5, 720);
  auto a = stats("a", 3, 100, 10);
  for (int i = 0; i < 10; ++i) a.latency.record(2);  // before the first sample: not in any interval
  h.sample(1000, {a});
  a.delivered = 150;
  a.failed = 20;
  a.pending = 7;
  for (int i = 0; i < 9; ++i) a.latency.record(150);  // in the interval: (100, 200] ms
  h.sample(1005, {a});
  json j = json::parse(h.json("a"));
  REQUIRE(j["t"] == json::array({1000, 1005}));
  REQUIRE(j["pending"] == json::array({3, 7}));
  REQUIRE(j["delivered_per_s"][0].is_null());
  REQUIRE(j["delivered_per_s"][1] == 10);
  REQUIRE(j["failed_per_s"][1] == 2);
  const double median = j["dispatch_delay_p50_ms"][1].get<double>();
  REQUIRE(median > 100);
  REQUIRE(median <= 200);
  REQUIRE(j["request_duration_p50_ms"][1].is_null());  // no request in the interval
}

TEST_CASE("history: a queue that appears later or goes away leaves gaps, and the ring is bounded", "[admin][dashboard]") {
  admin::figures_history h(5, 3);
  h.sample(1, {stats("a", 1, 0, 0)});
  h.sample(2, {stats("a", 2, 0, 0), stats("b", 5, 0, 0)});
  h.sample(3, {stats("b", 6, 0, 0)});
  json a = json::parse(h.json("a"));
  REQUIRE(a["pending"] == json::array({1, 2, nullptr}));
  json b = json::parse(h.json("b"));
  REQUIRE(b["pending"] == json::array({nullptr, 5, 6}));
  json total = json::parse(h.json(""));
  REQUIRE(total["queue"].is_null());
  REQUIRE(total["pending"] == json::array({1, 7, 6}));
  REQUIRE_FALSE(total.contains("dispatch_delay_p50_ms"));  // medians don't add up
  h.sample(4, {stats("b", 7, 0, 0)});
  h.sample(5, {stats("b", 8, 0, 0)});
  REQUIRE(h.size() == 3);
  REQUIRE(json::parse(h.json("b"))["t"] == json::array({3, 4, 5}));
  // "a" has no sample left in the ring: forgotten.
  REQUIRE(json::parse(h.json("a"))["t"].empty());
}

TEST_CASE("bucket_quantile interpolates inside the rank's bucket, and is NaN when empty", "[admin][dashboard]") {
  std::array<std::uint64_t, tasks::latency_histogram::bucket_count> c{};
  REQUIRE(std::isnan(admin::bucket_quantile(c, 0.5)));
  c[6] = 4;  // (0.5, 1] ms
  REQUIRE(admin::bucket_quantile(c, 0.5) == Approx(0.75));
  REQUIRE(admin::bucket_quantile(c, 1.0) == Approx(1.0));
}

TEST_CASE("dead letters: grouped by host and code, reasons counted, largest group first", "[admin][dashboard]") {
  std::vector<std::string> recs;  // newest first, as LRANGE 0 -1 gives them
  recs.push_back(dead("n1", 500, "http://API.example:8080/a", "HTTP 500 is final"));
  recs.push_back("garbage pushed by a client");
  recs.push_back(dead("n2", 500, "http://api.example/b", "attempts exhausted (3)"));
  recs.push_back(dead("n3", 0, "https://user:pw@other.example/c", "attempts exhausted (3)"));
  recs.push_back(dead("n4", 500, "http://api.example/d", "attempts exhausted (3)"));
  json d = json::parse(admin::dead_letters_json("q", recs, {}));
  REQUIRE(d["total"] == 5);
  REQUIRE(d["matched"] == 5);
  REQUIRE(d["groups"].size() == 3);
  REQUIRE(d["groups"][0] == json{{"host", "api.example"},
                                 {"code", 500},
                                 {"count", 3},
                                 {"reasons", json::array({json{{"reason", "attempts exhausted (3)"}, {"count", 2}},
                                                          json{{"reason", "HTTP 500 is final"}, {"count", 1}}})}});
  REQUIRE(d["items"][0]["id"] == "n1");
  REQUIRE(d["items"][1]["payload"] == "garbage pushed by a client");
  REQUIRE(d["items"][1]["reason"] == "not a dead-letter record");
  REQUIRE(json::parse(d["items"][0]["payload"].get<std::string>())["url"] == "http://API.example:8080/a");
  REQUIRE(d["items"][1]["payload_truncated"] == false);
  REQUIRE(d["items"][1]["payload_bytes"] == 26);

  // A page carries the first 16 KB of a long payload, cut at a character's start.
  std::string big = "{\"url\":\"http://big.example/\",\"p\":\"";
  while (big.size() < admin::dead_query::max_listed_payload - 1) big += 'x';
  big += "\xC3\xA9\xC3\xA9";  // é straddles the limit
  big += std::string(100000, 'y') + "\"}";
  const json b = json::parse(admin::dead_letters_json("q", {big}, {}));
  const std::string shown = b["items"][0]["payload"];
  REQUIRE(b["items"][0]["payload_truncated"] == true);
  REQUIRE(b["items"][0]["payload_bytes"] == big.size());
  REQUIRE(shown.size() == admin::dead_query::max_listed_payload - 1);
  REQUIRE(shown == big.substr(0, shown.size()));

  admin::dead_query q;
  q.host = "API.EXAMPLE";
  q.code = 500;
  q.offset = 1;
  q.limit = 1;
  d = json::parse(admin::dead_letters_json("q", recs, q));
  REQUIRE(d["matched"] == 3);  // n1, n2, n4
  REQUIRE(d["items"].size() == 1);
  REQUIRE(d["items"][0]["id"] == "n2");
  REQUIRE(d["groups"].size() == 3);  // the groups always count the whole list

  q = {};
  q.code = 0;
  q.reason = "attempts exhausted (3)";
  d = json::parse(admin::dead_letters_json("q", recs, q));
  REQUIRE(d["matched"] == 1);
  REQUIRE(d["items"][0]["host"] == "other.example");
  REQUIRE(d["items"][0]["code"] == 0);

  q = {};
  q.limit = 100000;
  REQUIRE(json::parse(admin::dead_letters_json("q", recs, q))["limit"] == admin::dead_query::max_limit);
}

TEST_CASE("dead letters through the cache: the same answers, and a changed list is read afresh", "[admin][dashboard]") {
  admin::dead_letter_cache cache;
  std::vector<std::string> recs{dead("a", 500, "http://h.example/", "r1"), dead("b", 404, "http://h.example/", "r2")};
  admin::dead_query q;
  REQUIRE(cache.json("q", recs, q) == admin::dead_letters_json("q", recs, q));
  REQUIRE(cache.json("q", recs, q) == admin::dead_letters_json("q", recs, q));
  recs.insert(recs.begin(), dead("c", 0, "http://x.example/", "r3"));
  recs.pop_back();
  q.code = 0;
  const std::string again = cache.json("q", recs, q);
  REQUIRE(again == admin::dead_letters_json("q", recs, q));
  json d = json::parse(again);
  REQUIRE(d["total"] == 2);
  REQUIRE(d["items"][0]["id"] == "c");
}

TEST_CASE("event hub: one queue's outcomes, at most max_rate a second, the rest counted and never built",
          "[admin][dashboard]") {
  using clock = admin::event_hub::clock;
  using status = admin::event_hub::subscription::status;
  const auto t0 = clock::now();
  admin::event_hub hub;
  auto watcher = hub.subscribe(4, {"mail", 2});
  int built = 0;
  auto offer = [&](std::string_view queue, const std::string& id, clock::time_point now) {
    return hub.offer(queue, [&] {
      ++built;
      tasks::outcome_fields f;
      f.id = id;
      f.queue = queue;
      f.url = "http://h.example/";
      f.status = "delivered";
      f.code = 200;
      return tasks::outcome_json(f);
    }, now);
  };
  REQUIRE(offer("mail2", "x", t0) == 0);  // another queue whose name starts alike
  REQUIRE(offer("other", "mail", t0) == 0);
  REQUIRE(built == 0);
  REQUIRE(offer("mail", "1", t0) == 1);
  REQUIRE(offer("mail", "2", t0 + std::chrono::milliseconds(100)) == 1);
  REQUIRE(built == 2);
  REQUIRE(offer("mail", "3", t0 + std::chrono::milliseconds(200)) == 0);
  REQUIRE(offer("mail", "4", t0 + std::chrono::milliseconds(300)) == 0);
  REQUIRE(built == 2);  // over the rate: counted, not built
  std::vector<std::string> got;
  std::size_t skipped = 0;
  REQUIRE(watcher->next(got, skipped, std::chrono::milliseconds(0)) == status::events);
  REQUIRE(got.size() == 2);
  CHECK(nlohmann::json::parse(got[0])["id"] == "1");
  CHECK(nlohmann::json::parse(got[1])["queue"] == "mail");
  CHECK(skipped == 0);
  hub.flush(t0 + std::chrono::milliseconds(400));  // the second is not over
  REQUIRE(watcher->next(got, skipped, std::chrono::milliseconds(0)) == status::idle);
  hub.flush(t0 + std::chrono::milliseconds(1100));  // it is: its count goes to the reader
  REQUIRE(watcher->next(got, skipped, std::chrono::milliseconds(0)) == status::events);
  CHECK(skipped == 2);
  CHECK(got.size() == 2);
  hub.flush(t0 + std::chrono::milliseconds(2200));
  REQUIRE(watcher->next(got, skipped, std::chrono::milliseconds(0)) == status::idle);
  // A new second: two more taken, then counted; the next offer after it ends reports them.
  const auto t3 = t0 + std::chrono::seconds(3);
  for (int i = 0; i < 10; ++i) offer("mail", "b" + std::to_string(i), t3 + std::chrono::milliseconds(i));
  CHECK(built == 4);
  REQUIRE(offer("mail", "c", t3 + std::chrono::milliseconds(1000)) == 1);
  skipped = 0;
  got.clear();
  REQUIRE(watcher->next(got, skipped, std::chrono::milliseconds(0)) == status::events);
  CHECK(skipped == 8);
  CHECK(got.size() == 3);
  // A stream with no filter takes every outcome of every queue; it is built once for all.
  auto all = hub.subscribe(4);
  built = 0;
  for (int i = 0; i < 100; ++i) REQUIRE(offer("q" + std::to_string(i), "x", t3 + std::chrono::seconds(2)) == 1);
  CHECK(built == 100);
  REQUIRE(offer("mail", "d", t3 + std::chrono::seconds(2)) == 2);
  CHECK(built == 101);
  got.clear();
  skipped = 0;
  REQUIRE(all->next(got, skipped, std::chrono::milliseconds(0)) == status::events);
  CHECK(got.size() == 101);
  CHECK(skipped == 0);
}

TEST_CASE("event hub: a stream's filter chooses what it is offered, nothing else is buffered", "[admin][dashboard]") {
  admin::event_hub hub;
  auto picky = hub.subscribe(4, {"a", 1});
  auto all = hub.subscribe(4);
  const auto t0 = admin::event_hub::clock::now();
  REQUIRE(hub.offer_message("a", R"({"id":"1","queue":"a"})", t0) == 2);
  REQUIRE(hub.offer_message("b", R"({"id":"2","queue":"b"})", t0) == 1);
  REQUIRE(hub.offer_message("a", R"({"id":"3","queue":"a"})", t0) == 1);  // over the rate: counted, not taken
  std::vector<std::string> got;
  REQUIRE(picky->next(got, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::events);
  REQUIRE(got == std::vector<std::string>{R"({"id":"1","queue":"a"})"});
  got.clear();
  REQUIRE(all->next(got, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::events);
  REQUIRE(got.size() == 3);
  // No outcome for the closed tab; with nothing subscribed nothing is built.
  hub.unsubscribe(picky);
  hub.unsubscribe(all);
  bool built = false;
  REQUIRE(hub.offer("a", [&] { built = true; return std::string("x"); }) == 0);
  CHECK_FALSE(built);
}

TEST_CASE("event hub: a reader waiting on its stream wakes for the count of a second that ended",
          "[admin][dashboard]") {
  using clock = admin::event_hub::clock;
  admin::event_hub hub;
  auto sub = hub.subscribe(1, {"a", 1});
  const auto t0 = clock::now();
  hub.offer_message("a", "1", t0);
  hub.offer_message("a", "2", t0);
  hub.offer_message("a", "3", t0);
  std::vector<std::string> got;
  std::size_t skipped = 0;
  REQUIRE(sub->next(got, skipped, std::chrono::milliseconds(0)) == admin::event_hub::subscription::status::events);
  REQUIRE(got == std::vector<std::string>{"1"});
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    hub.flush(t0 + std::chrono::seconds(1));
  });
  got.clear();
  const auto st = sub->next(got, skipped, std::chrono::seconds(10));
  t.join();
  CHECK(st == admin::event_hub::subscription::status::events);
  CHECK(got.empty());
  CHECK(skipped == 2);
}

TEST_CASE("overview document: every queue's figures and the server's", "[admin][dashboard]") {
  core::server_figures f;
  f.version = "9.9.9";
  f.used_memory = 1234;
  f.clients.connected = 3;
  auto s = stats("mail", 4, 10, 1);
  s.paused = true;
  s.dead_list = 2;
  s.attempts.duration.record(40);
  f.queues.push_back(s);
  json j = json::parse(admin::overview_json(f, 1700000000.5));
  REQUIRE(j["t"] == 1700000000.5);
  REQUIRE(j["version"] == "9.9.9");
  REQUIRE(j["clients"]["connected"] == 3);
  REQUIRE(j["used_memory"] == 1234);
  REQUIRE(j["queues"][0]["name"] == "mail");
  REQUIRE(j["queues"][0]["paused"] == true);
  REQUIRE(j["queues"][0]["pending"] == 4);
  REQUIRE(j["queues"][0]["dead_list"] == 2);
  REQUIRE(j["queues"][0]["request_duration_p50_ms"].get<double>() > 20);
  REQUIRE(j["link"]["configured"] == false);
}

TEST_CASE("the embedded files: the page, its modules and uPlot, each with a type and an ETag", "[admin][dashboard]") {
  const admin::asset* page = admin::find_asset("/");
  REQUIRE(page);
  REQUIRE(page->content_type == "text/html; charset=utf-8");
  REQUIRE(page->body.find("/ui/app.js") != std::string_view::npos);
  const admin::asset* uplot = admin::find_asset("/ui/uPlot.esm.js");
  REQUIRE(uplot);
  REQUIRE(uplot->body.find("export { uPlot as default }") != std::string_view::npos);
  // Byte for byte what npm installed.
  std::ifstream in(std::string(RESPQ_SOURCE_DIR) + "/admin/web/node_modules/uplot/dist/uPlot.esm.js", std::ios::binary);
  const std::string disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(disk == uplot->body);
  REQUIRE(uplot->etag.size() == 18);  // a quoted 16-digit hash
  REQUIRE_FALSE(admin::find_asset("/ui/nope.js"));
  REQUIRE(admin::is_public_path("/"));
  REQUIRE(admin::is_public_path("/ui/app.js"));
  REQUIRE_FALSE(admin::is_public_path("/api/overview"));
  REQUIRE_FALSE(admin::is_public_path("/metrics"));
}

TEST_CASE("a routed path keeps %2F and %25 inside their segment, decoded once captured", "[dashboard]") {
  CHECK(admin::routed_path("/api/tasks/order%2F17?x=%2F") == "/api/tasks/order%2F17");
  CHECK(admin::routed_path("/api/queues/q%2fslash/pause") == "/api/queues/q%2fslash/pause");
  CHECK(admin::routed_path("/api/tasks/caf%C3%A9%20x") == "/api/tasks/caf\xC3\xA9 x");
  CHECK(admin::routed_path("/api/tasks/a%2525b") == "/api/tasks/a%2525b");
  // A '%' that starts no escape is kept as %25: decoding the segment gives it back as it was.
  CHECK(admin::routed_path("/api/tasks/bad%zz%4") == "/api/tasks/bad%25zz%254");
  CHECK(admin::path_segment(admin::routed_path("/t/%%34%31").substr(3)) == "%41");
  CHECK(admin::path_segment(admin::routed_path("/t/%2%35").substr(3)) == "%25");
  CHECK(admin::routed_path("/ui/app.js") == "/ui/app.js");
  CHECK(admin::path_segment("order%2F17") == "order/17");
  CHECK(admin::path_segment("a%2525b") == "a%25b");
  CHECK(admin::path_segment("a+b") == "a+b");  // '+' is a space in a query only
}
