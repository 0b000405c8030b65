// queue_stats: the figures INFO tasks renders, the same fields for local and shared
// queues, and latencies kept in fixed buckets with p50/p99 read from them.
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "tasks/queue_stats.hpp"

using namespace respq::tasks;

namespace {

std::map<std::string, std::string> fields_of(const std::string& line) {
  REQUIRE(line.size() > 2);
  REQUIRE(line.substr(line.size() - 2) == "\r\n");
  const auto colon = line.find(':');
  REQUIRE(colon != std::string::npos);
  std::map<std::string, std::string> out;
  std::string rest = line.substr(colon + 1, line.size() - colon - 3);
  std::size_t at = 0;
  while (at <= rest.size()) {
    const auto comma = std::min(rest.find(',', at), rest.size());
    const std::string kv = rest.substr(at, comma - at);
    const auto eq = kv.find('=');
    REQUIRE(eq != std::string::npos);
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
    at = comma + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("a latency lands in the bucket whose upper bound is the first at or above it", "[stats][histogram]") {
  struct row {
    double ms;
    std::size_t bucket;
  };
  const row rows[] = {{0, 0},     {0.01, 0},  {0.0100001, 1}, {0.3, 5},    {1, 6},       {1.5, 7},
                      {2, 7},     {49.9, 11}, {50, 11},       {50.1, 12},  {499999, 23}, {500000, 23},
                      {500001, 24}, {1e12, 24}, {-5, 0}};
  for (const auto& r : rows) {
    INFO(r.ms << " ms");
    latency_histogram h;
    h.record(r.ms);
    CHECK(h.buckets()[r.bucket] == 1);
    CHECK(h.count() == 1);
  }
  CHECK(latency_histogram::bucket_count == 25);
}

TEST_CASE("quantiles come from the buckets: nearest rank, interpolated inside its bucket", "[stats][histogram]") {
  latency_histogram empty;
  CHECK(empty.quantile(0.5) == 0);
  CHECK(empty.quantile(0.99) == 0);

  // Ten samples 21..30 ms: one bucket, (20, 50], the highest in use: it ends at 30.
  latency_histogram h;
  for (int i = 21; i <= 30; ++i) h.record(i);
  CHECK(h.quantile(0.5) == Approx(20 + 10 * 5.0 / 10));  // rank 5 of 10 in the bucket
  CHECK(h.quantile(0.99) == Approx(30));                  // rank 10: the bucket's top
  CHECK(h.sum_ms() == Approx(255));
  h.record(70);  // now (20, 50] ends at its bound, and (50, 100] at 70
  CHECK(h.quantile(10.0 / 11) == Approx(50));
  CHECK(h.quantile(1.0) == Approx(70));
  CHECK(h.count() == 11);

  // 99 fast ones and one slow one: p50 stays fast, p99 still fast, the max is the slow one.
  latency_histogram tail;
  for (int i = 0; i < 99; ++i) tail.record(0.3);
  tail.record(800);
  CHECK(tail.quantile(0.5) <= 0.5);
  CHECK(tail.quantile(0.5) > 0.2);
  CHECK(tail.quantile(0.99) <= 0.5);
  CHECK(tail.quantile(1.0) == Approx(800));

  // Estimates stay within the bucket of the true nearest-rank sample, on random data.
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> dist(1.0, 2.0);
  latency_histogram r;
  std::vector<double> samples;
  for (int i = 0; i < 5000; ++i) {
    samples.push_back(dist(rng));
    r.record(samples.back());
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.9, 0.99}) {
    const double truth = samples[static_cast<std::size_t>(std::ceil(q * samples.size())) - 1];
    const auto b = std::lower_bound(latency_histogram::bounds_ms.begin(), latency_histogram::bounds_ms.end(), truth);
    const double hi = b == latency_histogram::bounds_ms.end() ? samples.back() : *b;
    const double lo = b == latency_histogram::bounds_ms.begin() ? 0 : *(b - 1);
    INFO("q " << q << " truth " << truth);
    CHECK(r.quantile(q) >= lo);
    CHECK(r.quantile(q) <= hi);
  }
}

TEST_CASE("INFO lines of local and shared queues carry the same fields", "[stats]") {
  queue_stats local;
  local.name = "tasks";
  local.pending = 3;
  local.delivered = 7;
  local.egress_denied = 2;
  local.callbacks_failed = 5;
  local.concurrency = 64;
  local.rate = 12.5;
  local.latency.record(4);
  queue_stats shared = local;
  shared.name = "jobs";
  shared.shared = true;
  shared.extra = {{"node", "web-1"}, {"taker", "up"}};
  const std::string l = info_line(local), s = info_line(shared);
  CHECK(l.rfind("tasks:pending=3,", 0) == 0);
  CHECK(s.rfind("jobs:pending=3,", 0) == 0);
  auto lf = fields_of(l), sf = fields_of(s);
  for (const char* k : {"pending", "in_flight", "retrying", "scheduled", "delivered", "failed", "dead", "dead_list",
                        "dispatched", "egress_denied", "reclaimed", "latency_p50_ms", "latency_p99_ms", "concurrency", "rate", "shared",
                        "callbacks_retrying", "callbacks_failed"}) {
    INFO(k);
    CHECK(lf.count(k) == 1);
    CHECK(sf.count(k) == 1);
  }
  CHECK(lf.size() + 2 == sf.size());
  CHECK(lf["shared"] == "0");
  CHECK(sf["shared"] == "1");
  CHECK(sf["node"] == "web-1");
  CHECK(lf["rate"] == "12.5");
  CHECK(lf["egress_denied"] == "2");
  CHECK(lf["callbacks_failed"] == "5");
  CHECK(lf["latency_p50_ms"] == "4");
}
