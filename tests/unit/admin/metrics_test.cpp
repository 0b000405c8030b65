// metrics: the Prometheus text rendered from the figures structs — every family with
// HELP and TYPE, label values escaped, histograms cumulative in seconds with +Inf, _sum
// and _count, counters from the queue figures.
#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "admin/metrics.hpp"
#include "tasks/http_request.hpp"

using namespace respq;

namespace {

// sample line (without value) -> value; and the families announced by TYPE lines.
struct parsed {
  std::map<std::string, std::string> samples;
  std::map<std::string, std::string> types;
  std::vector<std::string> helps;
  std::vector<std::string> order;  // sample names in order of appearance
};

parsed parse(const std::string& text) {
  parsed p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE(!line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      const auto sp = line.find(' ', 7);
      p.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) {
      p.helps.push_back(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    const auto sp = line.rfind(' ');
    REQUIRE(sp != std::string::npos);
    REQUIRE(p.samples.count(line.substr(0, sp)) == 0);  // no sample twice
    p.samples[line.substr(0, sp)] = line.substr(sp + 1);
    p.order.push_back(line.substr(0, sp));
  }
  return p;
}

core::server_figures sample_figures() {
  core::server_figures f;
  f.version = "1.2.3";
  tasks::queue_stats q;
  q.name = "tasks";
  q.pending = 7;
  q.in_flight = 2;
  q.retrying = 1;
  q.scheduled = 3;
  q.dead_list = 4;
  q.enqueued = 20;
  q.dispatched = 12;
  q.delivered = 9;
  q.dead = 4;
  q.paused = true;
  q.latency.record(0.5);   // bucket le 0.0005 s
  q.latency.record(3);     // le 0.005
  q.latency.record(7000);  // le 10
  tasks::http_result ok;
  ok.code = 200;
  ok.duration_ms = 12;
  q.attempts.record(ok, false);
  tasks::http_result busy;
  busy.code = 503;
  busy.duration_ms = 1;
  q.attempts.record(busy, true);
  tasks::http_result down;
  down.error = "Connection refused";
  down.duration_ms = 0.2;
  q.attempts.record(down, true);
  f.queues.push_back(q);
  tasks::queue_stats odd;
  odd.name = "we\"ird\\q\nname";
  odd.shared = true;
  f.queues.push_back(odd);
  f.clients.connected = 5;
  f.clients.blocked = 1;
  f.used_memory = 123456;
  f.commands.push_back({"lpush", 10, 0, 0, 5.0});
  f.commands.push_back({"client|list", 2, 1, 0, 1.0});
  f.aof.enabled = true;
  f.aof.current_size = 999;
  f.link.configured = true;
  f.link.connected = true;
  f.link.mirror_enabled = true;
  f.link.mirror_state = "streaming";
  f.link.lag_commands = 3;
  return f;
}

}  // namespace

TEST_CASE("every family the metrics endpoint promises is there, with HELP and TYPE", "[admin][metrics]") {
  const parsed p = parse(admin::render_metrics(sample_figures()));
  const std::map<std::string, std::string> expected{
      {"respq_build_info", "gauge"},
      {"respq_queue_tasks", "gauge"},
      {"respq_queue_paused", "gauge"},
      {"respq_tasks_enqueued_total", "counter"},
      {"respq_task_outcomes_total", "counter"},
      {"respq_http_responses_total", "counter"},
      {"respq_dispatch_delay_seconds", "histogram"},
      {"respq_http_request_duration_seconds", "histogram"},
      {"respq_connected_clients", "gauge"},
      {"respq_blocked_clients", "gauge"},
      {"respq_used_memory_bytes", "gauge"},
      {"respq_commands_total", "counter"},
      {"respq_aof_enabled", "gauge"},
      {"respq_aof_size_bytes", "gauge"},
      {"respq_link_up", "gauge"},
      {"respq_mirror_lag_commands", "gauge"},
  };
  for (const auto& [name, type] : expected) {
    INFO(name);
    REQUIRE(p.types.count(name) == 1);
    CHECK(p.types.at(name) == type);
    CHECK(std::count(p.helps.begin(), p.helps.end(), name) == 1);
  }
  // Every counter's name ends in _total; every sample belongs to an announced family.
  for (const auto& [name, type] : p.types)
    if (type == "counter") CHECK(name.substr(name.size() - 6) == "_total");
  for (const auto& s : p.order) {
    std::string base = s.substr(0, s.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!p.types.count(base) && base.size() > std::strlen(suffix) &&
          base.compare(base.size() - std::strlen(suffix), std::strlen(suffix), suffix) == 0)
        base.resize(base.size() - std::strlen(suffix));
    INFO(s);
    CHECK(p.types.count(base) == 1);
  }
}

TEST_CASE("queue figures become labelled samples", "[admin][metrics]") {
  const parsed p = parse(admin::render_metrics(sample_figures()));
  auto v = [&](const std::string& k) {
    INFO(k);
    REQUIRE(p.samples.count(k) == 1);
    return p.samples.at(k);
  };
  CHECK(v("respq_build_info{version=\"1.2.3\"}") == "1");
  CHECK(v("respq_queue_tasks{queue=\"tasks\",state=\"pending\"}") == "7");
  CHECK(v("respq_queue_tasks{queue=\"tasks\",state=\"in_flight\"}") == "2");
  CHECK(v("respq_queue_tasks{queue=\"tasks\",state=\"retrying\"}") == "1");
  CHECK(v("respq_queue_tasks{queue=\"tasks\",state=\"scheduled\"}") == "3");
  CHECK(v("respq_queue_tasks{queue=\"tasks\",state=\"dead\"}") == "4");
  CHECK(v("respq_queue_paused{queue=\"tasks\"}") == "1");
  CHECK(v("respq_tasks_enqueued_total{queue=\"tasks\"}") == "20");
  CHECK(v("respq_task_outcomes_total{queue=\"tasks\",outcome=\"delivered\"}") == "9");
  CHECK(v("respq_task_outcomes_total{queue=\"tasks\",outcome=\"retried\"}") == "2");
  CHECK(v("respq_task_outcomes_total{queue=\"tasks\",outcome=\"dead\"}") == "4");
  CHECK(v("respq_http_responses_total{queue=\"tasks\",code_class=\"2xx\"}") == "1");
  CHECK(v("respq_http_responses_total{queue=\"tasks\",code_class=\"5xx\"}") == "1");
  CHECK(v("respq_http_responses_total{queue=\"tasks\",code_class=\"error\"}") == "1");
  CHECK(v("respq_http_responses_total{queue=\"tasks\",code_class=\"4xx\"}") == "0");
  CHECK(v("respq_connected_clients") == "5");
  CHECK(v("respq_blocked_clients") == "1");
  CHECK(v("respq_used_memory_bytes") == "123456");
  CHECK(v("respq_commands_total{command=\"lpush\"}") == "10");
  CHECK(v("respq_commands_total{command=\"client|list\"}") == "2");
  CHECK(v("respq_aof_enabled") == "1");
  CHECK(v("respq_aof_size_bytes") == "999");
  CHECK(v("respq_link_up") == "1");
  CHECK(v("respq_mirror_streaming") == "1");
  CHECK(v("respq_mirror_lag_commands") == "3");
}

TEST_CASE("histograms are cumulative, in seconds, ending with +Inf, _sum and _count", "[admin][metrics]") {
  const parsed p = parse(admin::render_metrics(sample_figures()));
  auto bucket = [&](const char* le) {
    const std::string k = std::string("respq_dispatch_delay_seconds_bucket{queue=\"tasks\",le=\"") + le + "\"}";
    INFO(k);
    REQUIRE(p.samples.count(k) == 1);
    return p.samples.at(k);
  };
  CHECK(bucket("0.0002") == "0");
  CHECK(bucket("0.0005") == "1");
  CHECK(bucket("0.005") == "2");
  CHECK(bucket("5") == "2");
  CHECK(bucket("10") == "3");
  CHECK(bucket("+Inf") == "3");
  CHECK(std::stod(p.samples.at("respq_dispatch_delay_seconds_sum{queue=\"tasks\"}")) == Approx(7.0035));
  CHECK(p.samples.at("respq_dispatch_delay_seconds_count{queue=\"tasks\"}") == "3");
  // Request durations: 0.2 ms, 1 ms, 12 ms.
  CHECK(p.samples.at("respq_http_request_duration_seconds_bucket{queue=\"tasks\",le=\"0.001\"}") == "2");
  CHECK(p.samples.at("respq_http_request_duration_seconds_bucket{queue=\"tasks\",le=\"0.02\"}") == "3");
  CHECK(p.samples.at("respq_http_request_duration_seconds_count{queue=\"tasks\"}") == "3");
  // Bucket counts never decrease.
  std::uint64_t last = 0;
  for (const auto& s : p.order)
    if (s.rfind("respq_http_request_duration_seconds_bucket{queue=\"tasks\"", 0) == 0) {
      const auto n = std::stoull(p.samples.at(s));
      CHECK(n >= last);
      last = n;
    }
}

TEST_CASE("label values are escaped: backslash, double quote, newline", "[admin][metrics]") {
  CHECK(admin::escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  const std::string text = admin::render_metrics(sample_figures());
  CHECK(text.find("respq_queue_shared{queue=\"we\\\"ird\\\\q\\nname\"} 1\n") != std::string::npos);
}

TEST_CASE("a family without samples is left out, HELP and TYPE included", "[admin][metrics]") {
  core::server_figures f;
  f.version = "x";
  const parsed p = parse(admin::render_metrics(f));
  CHECK(p.types.count("respq_queue_tasks") == 0);
  CHECK(p.types.count("respq_commands_total") == 0);
  CHECK(p.types.count("respq_connected_clients") == 1);
  CHECK(p.samples.at("respq_connected_clients") == "0");
}
