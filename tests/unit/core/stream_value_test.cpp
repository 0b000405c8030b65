// stream_value against a naive model (std::map id -> fields) under random appends,
// deletions, trims and range reads; block boundaries as Redis's stream nodes.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "broker/core/stream_value.hpp"

using respq::core::stream_id;
using respq::core::stream_value;

namespace {

using model = std::map<stream_id, std::vector<std::string>>;

std::vector<std::pair<stream_id, std::vector<std::string>>> read(const stream_value& s, stream_id a, stream_id b,
                                                                 std::size_t count, bool rev) {
  std::vector<std::pair<stream_id, std::vector<std::string>>> out;
  s.range(a, b, count, rev, [&](const stream_value::entry& e) {
    std::vector<std::string> f;
    for (const auto& [k, v] : e.fields) {
      f.emplace_back(k);
      f.emplace_back(v);
    }
    out.emplace_back(e.id, f);
    return true;
  });
  return out;
}

std::vector<std::pair<stream_id, std::vector<std::string>>> read(const model& m, stream_id a, stream_id b,
                                                                 std::size_t count, bool rev) {
  std::vector<std::pair<stream_id, std::vector<std::string>>> out;
  if (a > b) return out;
  if (!rev) {
    for (auto it = m.lower_bound(a); it != m.end() && it->first <= b; ++it) {
      out.emplace_back(it->first, it->second);
      if (count && out.size() == count) break;
    }
  } else {
    for (auto it = m.upper_bound(b); it != m.begin();) {
      --it;
      if (it->first < a) break;
      out.emplace_back(it->first, it->second);
      if (count && out.size() == count) break;
    }
  }
  return out;
}

void add(stream_value& s, model& m, stream_id id, std::vector<std::string> fields,
         respq::core::stream_node_limits limits = {}) {
  std::vector<std::string_view> views(fields.begin(), fields.end());
  s.append(id, views, limits);
  m[id] = std::move(fields);
}

}  // namespace

TEST_CASE("stream ids order, increment and print like Redis's", "[stream]") {
  stream_id a{1, 2}, b{1, 3}, c{2, 0};
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c.str() == "2-0");
  stream_id x{5, UINT64_MAX};
  CHECK(x.incr());
  CHECK(x == stream_id{6, 0});
  CHECK(x.decr());
  CHECK(x == stream_id{5, UINT64_MAX});
  stream_id top{UINT64_MAX, UINT64_MAX};
  CHECK_FALSE(top.incr());
  stream_id zero;
  CHECK_FALSE(zero.decr());
  CHECK(top.str() == "18446744073709551615-18446744073709551615");
}

TEST_CASE("stream nodes hold 100 entries, deleted ones included", "[stream]") {
  stream_value s;
  model m;
  for (std::uint64_t i = 1; i <= 250; ++i) add(s, m, {i, 0}, {"f", std::to_string(i)});
  CHECK(s.size() == 250);
  CHECK(s.block_count() == 3);
  CHECK(s.entries_added == 250);
  CHECK(s.last_id == stream_id{250, 0});
  // Approximate trimming drops whole nodes only.
  CHECK(s.trim_maxlen(160, true, 0) == 0);
  CHECK(s.trim_maxlen(150, true, 0) == 100);
  CHECK(s.size() == 150);
  CHECK(s.trim_maxlen(10, true, 0) == 100);
  CHECK(s.size() == 50);
  // Exact trimming marks entries inside the first node.
  CHECK(s.trim_maxlen(45, false, 0) == 5);
  stream_id first;
  REQUIRE(s.first_entry_id(first));
  CHECK(first == stream_id{206, 0});
  CHECK(s.trim_minid({240, 0}, false, 0) == 34);
  REQUIRE(s.first_entry_id(first));
  CHECK(first == stream_id{240, 0});
  CHECK(s.trim_minid({1000, 0}, false, 0) == 11);
  CHECK(s.empty());
  CHECK(s.block_count() == 0);
  CHECK(s.last_id == stream_id{250, 0});
}

TEST_CASE("large entries start new nodes past 4096 bytes", "[stream]") {
  stream_value s;
  model m;
  const std::string big(1500, 'x');
  for (std::uint64_t i = 1; i <= 6; ++i) add(s, m, {i, 0}, {"f", big});
  CHECK(s.block_count() == 3);
  CHECK(read(s, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, false) == read(m, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, false));
}

TEST_CASE("node limits: stream-node-max-entries and stream-node-max-bytes, 0 for none", "[stream]") {
  stream_value s;
  model m;
  // Ten entries a node: MAXLEN ~ drops whole nodes of ten.
  for (std::uint64_t i = 1; i <= 100; ++i) add(s, m, {i, 0}, {"xitem", "v"}, {4096, 10});
  CHECK(s.block_count() == 10);
  CHECK(s.trim_maxlen(55, true, 30) == 30);
  CHECK(s.size() == 70);
  // Entries limit 0: only the bytes limit splits (2 bytes of fields an entry, 10 bytes encoded).
  stream_value t;
  for (std::uint64_t i = 1; i <= 1000; ++i) add(t, m, {i, 0}, {"a", "b"}, {4096, 0});
  CHECK(t.block_count() > 1);
  CHECK(t.block_count() < 10);
  // Bytes limit 0 is Redis's 1 GB cap: the entries limit alone splits.
  stream_value u;
  for (std::uint64_t i = 1; i <= 1000; ++i) add(u, m, {i, 0}, {"f", std::string(100, 'x')}, {0, 250});
  CHECK(u.block_count() == 4);
  // One entry a node.
  stream_value w;
  for (std::uint64_t i = 1; i <= 5; ++i) add(w, m, {i, 0}, {"f", "v"}, {4096, 1});
  CHECK(w.block_count() == 5);
  CHECK(w.trim_maxlen(0, true, 2) == 2);
  CHECK(w.size() == 3);
}

TEST_CASE("stream matches a naive model under random operations", "[stream]") {
  std::mt19937_64 rng(15);
  stream_value s;
  model m;
  stream_id last{};
  for (int round = 0; round < 20000; ++round) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 60) {
      stream_id id = last;
      if (rng() % 3 == 0) id = {last.ms + 1 + rng() % 1000, rng() % 3};
      else id.incr();
      std::vector<std::string> f;
      const int pairs = 1 + static_cast<int>(rng() % 3);
      for (int p = 0; p < pairs; ++p) {
        f.push_back("f" + std::to_string(p));
        f.push_back(std::string(rng() % 40, static_cast<char>('a' + rng() % 26)));
      }
      add(s, m, id, f);
      last = id;
    } else if (op < 80 && !m.empty()) {
      auto it = m.begin();
      std::advance(it, static_cast<long>(rng() % m.size()));
      const stream_id id = it->first;
      CHECK(s.erase(id));
      m.erase(id);
      CHECK_FALSE(s.erase(id));
    } else if (op < 85) {
      const std::uint64_t maxlen = m.size() > 10 ? m.size() - rng() % 10 : m.size();
      const bool approx = rng() % 2;
      const std::uint64_t removed = s.trim_maxlen(maxlen, approx, 0);
      for (std::uint64_t i = 0; i < removed; ++i) m.erase(m.begin());
      if (!approx) CHECK(s.size() <= maxlen);
    } else if (op < 88 && !m.empty()) {
      auto it = m.begin();
      std::advance(it, static_cast<long>(rng() % std::min<std::size_t>(m.size(), 20)));
      const stream_id minid = it->first;
      const bool approx = rng() % 2;
      const std::uint64_t removed = s.trim_minid(minid, approx, 0);
      for (std::uint64_t i = 0; i < removed; ++i) {
        CHECK(m.begin()->first < minid);
        m.erase(m.begin());
      }
      if (!approx && !m.empty()) CHECK(m.begin()->first >= minid);
    } else {
      stream_id a{rng() % (last.ms + 2), rng() % 3}, b{rng() % (last.ms + 2), rng() % 3};
      if (rng() % 4 == 0) a = {0, 0};
      if (rng() % 4 == 0) b = {UINT64_MAX, UINT64_MAX};
      const std::size_t count = rng() % 3 == 0 ? 0 : 1 + rng() % 20;
      const bool rev = rng() % 2;
      REQUIRE(read(s, a, b, count, rev) == read(m, a, b, count, rev));
    }
    REQUIRE(s.size() == m.size());
  }
  CHECK(read(s, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, false) == read(m, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, false));
  stream_value copy = s;
  CHECK(read(copy, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, true) == read(m, {0, 0}, {UINT64_MAX, UINT64_MAX}, 0, true));
}

TEST_CASE("radix node count follows Redis's rax for stream node keys", "[stream]") {
  stream_value s;
  CHECK(s.radix_nodes() == 1);
  s.append({1, 1}, {"f", "v"});
  CHECK(s.radix_nodes() == 2);
}
