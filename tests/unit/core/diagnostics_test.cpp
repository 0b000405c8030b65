// The slow log's argument vectors, the latency monitor's samples and histogram buckets,
// and CONFIG REWRITE's text (Redis 7.0's rewriteConfig rules), without a server.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "broker/core/config.hpp"
#include "broker/core/latency_monitor.hpp"
#include "broker/core/slowlog.hpp"

using namespace respq::core;

namespace {

std::vector<std::string> logged(std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return slowlog::logged_args(views);
}

}  // namespace

TEST_CASE("the slow log keeps 32 arguments of 128 bytes, as Redis", "[slowlog]") {
  std::vector<std::string> args{"sadd", "set"};
  for (int i = 3; i <= 33; ++i) args.push_back(std::to_string(i));
  auto out = logged(args);
  REQUIRE(out.size() == 32);
  CHECK(out[30] == "31");
  CHECK(out[31] == "... (2 more arguments)");
  CHECK(logged({"sadd", "set", "foo", std::string(129, 'A')})[3] == std::string(128, 'A') + "... (1 more bytes)");
  CHECK(logged({"set", "k", std::string(128, 'B')})[2] == std::string(128, 'B'));
  // Exactly 32 arguments: all kept.
  args.pop_back();
  CHECK(logged(args).back() == "32");
}

TEST_CASE("the slow log never keeps secrets", "[slowlog]") {
  CHECK(logged({"AUTH", "pw"}) == std::vector<std::string>{"AUTH", "(redacted)"});
  CHECK(logged({"auth", "user", "pw"}) == std::vector<std::string>{"auth", "(redacted)", "(redacted)"});
  CHECK(logged({"HELLO", "3", "AUTH", "u", "p", "SETNAME", "n"}) ==
        std::vector<std::string>{"HELLO", "3", "AUTH", "(redacted)", "(redacted)", "SETNAME", "n"});
  CHECK(logged({"CONFIG", "SET", "maxclients", "5", "requirepass", "pw"}) ==
        std::vector<std::string>{"CONFIG", "SET", "maxclients", "5", "requirepass", "(redacted)"});
  CHECK(logged({"config", "set", "upstream-password", "x"})[3] == "(redacted)");
  // A queue's signing secret: the whole http-queue value, as Redis shows a sensitive one.
  CHECK(logged({"CONFIG", "SET", "http-queue", "tasks retries 2 SIGNING-SECRET whsec_c2VjcmV0"}) ==
        std::vector<std::string>{"CONFIG", "SET", "http-queue", "(redacted)"});
  CHECK(logged({"CONFIG", "SET", "http-queue", "tasks retries 2"})[3] == "tasks retries 2");
  // Quotes and escapes are undone first, as CONFIG SET reads the value.
  CHECK(logged({"CONFIG", "SET", "http-queue", "mail signing\"-secret\" whsec_c2VjcmV0"})[3] == "(redacted)");
  CHECK(logged({"CONFIG", "SET", "http-queue", "mail \"signing\\x2dsecret\" whsec_c2VjcmV0"})[3] == "(redacted)");
  CHECK(logged({"CONFIG", "SET", "http-queue", "mail \"unbalanced"})[3] == "(redacted)");
}

TEST_CASE("slow log entries: newest first, trimmed to the maximum, ids growing", "[slowlog]") {
  slowlog log;
  std::vector<std::string_view> a{"ping"};
  for (int i = 0; i < 5; ++i) log.push(a, i, "127.0.0.1:1", "n", 3);
  REQUIRE(log.size() == 3);
  CHECK(log.entries().front().id == 4);
  CHECK(log.entries().back().id == 2);
  CHECK(log.entries().front().duration_us == 4);
  log.reset();
  CHECK(log.size() == 0);
  log.push(a, 1, "?:0", "", 3);
  CHECK(log.entries().front().id == 5);  // RESET does not restart the ids (as Redis)
}

TEST_CASE("latency samples: one per second, the larger kept, all-time max, reset", "[latency]") {
  latency_monitor m;
  m.add_if_needed("command", 5, 0);  // threshold 0: off
  CHECK(m.events().empty());
  m.add_if_needed("command", 5, 10);  // under the threshold
  CHECK(m.events().empty());
  m.add_if_needed("command", 12, 10);
  m.add_if_needed("command", 30, 10);  // same second: replaces the smaller sample
  m.add_if_needed("command", 20, 10);  // same second, smaller: ignored
  REQUIRE(m.events().size() == 1);
  const auto& ts = m.events().begin()->second;
  CHECK(ts.max == 30);
  std::size_t used = 0;
  for (const auto& s : ts.samples) used += s.time != 0;
  CHECK(used == 1);
  CHECK(ts.samples[0].latency == 30);
  m.add("expire-cycle", 3);
  CHECK(m.reset("COMMAND") == 1);  // case-insensitive, as Redis
  CHECK(m.reset("nothing") == 0);
  CHECK(m.reset({}) == 1);
  CHECK(m.events().empty());
}

TEST_CASE("latency graph and doctor use Redis's texts", "[latency]") {
  latency_monitor m;
  CHECK(m.doctor(0, 10000, false).rfind("I'm sorry, Dave, I can't do that.", 0) == 0);
  CHECK(m.doctor(100, 10000, false).rfind("Dave, no latency spike was observed", 0) == 0);
  m.add("command", 250);
  const std::string report = m.doctor(100, -1, false);
  CHECK(report.find("1. command: 1 latency spikes (average 250ms, mean deviation 0ms, period 1.00 sec). Worst all "
                    "time event 250ms.") != std::string::npos);
  CHECK(report.find("CONFIG SET slowlog-log-slower-than 100000") != std::string::npos);
  const std::string graph = latency_monitor::graph("command", m.events().begin()->second);
  CHECK(graph.rfind("command - high 250 ms, low 250 ms (all time high 250 ms)\n" + std::string(80, '-') + "\n", 0) == 0);
}

TEST_CASE("histogram buckets are HDR's log buckets from 1024 ns, doubling", "[latency]") {
  CHECK(latency_histogram::bucket_usec(0) == 1);
  CHECK(latency_histogram::bucket_usec(1) == 2);
  CHECK(latency_histogram::bucket_usec(3) == 8);
  CHECK(latency_histogram::bucket_usec(6) == 66);  // 65536 ns widened by 1/128: 66047 ns
  latency_histogram h;
  h.record(1);
  h.record(1024);
  h.record(1500);
  h.record(1030);      // within 1024's HDR bucket (up to 1031 ns)
  h.record(5000000000);  // past a second: the last bucket
  CHECK(h.calls == 5);
  CHECK(h.counts[0] == 3);
  CHECK(h.counts[1] == 1);
  CHECK(h.counts[latency_histogram::buckets - 1] == 1);
}

TEST_CASE("CONFIG REWRITE keeps comments and order, updates lines in place", "[config]") {
  config c;
  REQUIRE(load_config_text(c, "# head\nmaxclients 100\n\n\n# mid\ntimeout 5\ntimeout 6\nloglevel notice\n").empty());
  c.maxclients = 200;
  c.timeout = 0;  // back to the default: its line stays, with the default value
  c.slowlog_max_len = 7;
  const std::string out = rewrite_config_text(c, "# head\nmaxclients 100\n\n\n# mid\ntimeout 5\ntimeout 6\nloglevel notice\n");
  // (The file's last newline reads as one more, empty, line: as in Redis.)
  const std::string head =
      "# head\nmaxclients 200\n\n# mid\ntimeout 0\n\nloglevel notice\n\n# Generated by CONFIG REWRITE\n";
  REQUIRE(out.rfind(head, 0) == 0);
  const std::string tail = out.substr(head.size());
  CHECK(tail.find("slowlog-max-len 7\n") != std::string::npos);
  CHECK(tail.find("dir \"/") != std::string::npos);  // always written, absolute
  CHECK(tail.find("maxclients") == std::string::npos);
  CHECK(tail.find("port") == std::string::npos);  // at its default
  // As Redis: the last newline reads as one more empty line, kept by the next rewrite;
  // after that the text settles.
  const std::string again = rewrite_config_text(c, out);
  CHECK(again == out + "\n");
  CHECK(rewrite_config_text(c, again) == again);
}

TEST_CASE("CONFIG REWRITE: unknown lines commented, queues, quoting, memory units", "[config]") {
  config c;
  REQUIRE(apply_queue_directive(c, {"tasks", "off"}).empty());
  REQUIRE(apply_queue_directive(c, {"jobs", "concurrency", "3"}).empty());
  c.maxmemory = 3ull * 1024 * 1024 * 1024;
  c.json_queue = "a b";
  c.bind = {"127.0.0.1", "::1"};
  const std::string out = rewrite_config_text(c, "no-such-directive 1\n# Generated by CONFIG REWRITE\nhttp-queue tasks\n");
  // The removed queue's line says so in place; the new queue is appended.
  CHECK(out.rfind("# ??? no-such-directive 1\n# Generated by CONFIG REWRITE\nhttp-queue tasks off\n\n", 0) == 0);
  CHECK(out.find("\nhttp-queue jobs concurrency 3 ") != std::string::npos);
  CHECK(out.find("\nmaxmemory 3gb\n") != std::string::npos);
  CHECK(out.find("\njson-queue \"a b\"\n") != std::string::npos);
  CHECK(out.find("\nbind 127.0.0.1 ::1\n") != std::string::npos);
  const std::string marker = "# Generated by CONFIG REWRITE";
  CHECK(out.find(marker, out.find(marker) + 1) == std::string::npos);  // the marker once
  // What it wrote loads back to the same settings.
  config back;
  std::string text;
  for (std::string_view rest = out; !rest.empty();) {
    const std::size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (line.rfind("dir ", 0) != 0) (text += line) += '\n';  // the test's cwd need not exist later
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  REQUIRE(load_config_text(back, text).empty());
  CHECK(back.queues.size() == 1);
  CHECK(back.queues.count("jobs") == 1);
  CHECK(back.maxmemory == c.maxmemory);
  CHECK(back.json_queue == "a b");
  CHECK(back.bind == c.bind);
}
