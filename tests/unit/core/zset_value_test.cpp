// zset_value against a naive model (std::set of (score, member) + std::map member ->
// score) under random operations, in both representations and across the conversion;
// ZSCAN coverage while the set changes.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/core/encoding_limits.hpp"
#include "broker/core/zset_value.hpp"

using respq::core::zset_value;

namespace {

struct model {
  std::set<std::pair<double, std::string>> order;
  std::map<std::string, double> scores;

  bool set(const std::string& m, double s) {
    auto it = scores.find(m);
    if (it != scores.end()) {
      order.erase({it->second, m});
      it->second = s;
      order.insert({s, m});
      return false;
    }
    scores[m] = s;
    order.insert({s, m});
    return true;
  }
  bool erase(const std::string& m) {
    auto it = scores.find(m);
    if (it == scores.end()) return false;
    order.erase({it->second, m});
    scores.erase(it);
    return true;
  }
  std::vector<std::pair<double, std::string>> vec() const { return {order.begin(), order.end()}; }
};

void check_all(const zset_value& z, const model& m) {
  REQUIRE(z.size() == m.order.size());
  auto v = m.vec();
  std::size_t i = 0;
  z.walk(0, z.size(), false, [&](const zset_value::entry& e) {
    REQUIRE(e.member == v[i].second);
    REQUIRE(e.score == v[i].first);
    ++i;
  });
  REQUIRE(i == v.size());
  if (!v.empty()) {
    i = v.size();
    z.walk(v.size() - 1, v.size(), true, [&](const zset_value::entry& e) {
      --i;
      REQUIRE(e.member == v[i].second);
    });
    REQUIRE(i == 0);
  }
}

std::string member_name(std::mt19937& rng, std::size_t universe, bool long_ones) {
  std::string s = "m:" + std::to_string(rng() % universe);
  if (long_ones && rng() % 50 == 0) s += std::string(70, 'x');
  return s;
}

void random_ops(std::size_t universe, int ops, bool long_ones, std::uint32_t seed) {
  std::mt19937 rng(seed);
  zset_value z;
  model m;
  for (int step = 0; step < ops; ++step) {
    int op = static_cast<int>(rng() % 100);
    std::string mem = member_name(rng, universe, long_ones);
    double score = static_cast<double>(static_cast<int>(rng() % 50)) - 25;  // many ties
    if (op < 55) {
      REQUIRE(z.set(mem, score) == m.set(mem, score));
    } else if (op < 80) {
      REQUIRE(z.erase(mem) == m.erase(mem));
    } else if (op < 85) {
      double s1 = 0;
      bool found = z.score(mem, s1);
      REQUIRE(found == (m.scores.count(mem) == 1));
      if (found) REQUIRE(s1 == m.scores[mem]);
      auto v = m.vec();
      long long r = z.rank(mem);
      if (!found) {
        REQUIRE(r == -1);
      } else {
        REQUIRE(v[static_cast<std::size_t>(r)].second == mem);
      }
    } else if (op < 92) {
      auto v = m.vec();
      std::size_t lt = 0, le = 0;
      for (auto& p : v) {
        if (p.first < score) ++lt;
        if (p.first <= score) ++le;
      }
      REQUIRE(z.score_rank(score, false) == lt);
      REQUIRE(z.score_rank(score, true) == le);
      if (!v.empty()) {
        std::size_t r = rng() % v.size();
        auto e = z.at(r);
        REQUIRE(e.member == v[r].second);
        REQUIRE(e.score == v[r].first);
      }
    } else if (op < 94) {
      if (z.size()) {
        std::size_t from = rng() % z.size();
        std::size_t n = rng() % std::min<std::size_t>(z.size() - from + 1, 300);
        auto v = m.vec();
        for (std::size_t i = from; i < from + n; ++i) m.erase(v[i].second);
        z.erase_ranks(from, n);
      }
    } else {
      check_all(z, m);
    }
  }
  check_all(z, m);
  zset_value copy(z);
  check_all(copy, m);
}

}  // namespace

TEST_CASE("zset_value small sets stay a listpack and match the model", "[zset]") {
  random_ops(60, 5000, false, 1);
}

TEST_CASE("zset_value large sets match the model across the conversion", "[zset]") {
  random_ops(3000, 30000, false, 2);
  random_ops(8000, 30000, true, 3);
}

TEST_CASE("zset_value converts on entry count and member length, never back by itself", "[zset]") {
  zset_value z;
  for (int i = 0; i < 128; ++i) z.set("e" + std::to_string(i), i);
  REQUIRE(std::string(z.encoding_name()) == "listpack");
  z.set("e128", 128);
  REQUIRE(std::string(z.encoding_name()) == "skiplist");
  z.erase_ranks(0, 100);
  REQUIRE(std::string(z.encoding_name()) == "skiplist");
  z.compact_if_small();
  REQUIRE(std::string(z.encoding_name()) == "listpack");
  REQUIRE(z.size() == 29);
  REQUIRE(z.at(0).member == "e100");

  zset_value y;
  y.set("a", 1);
  y.set(std::string(64, 'x'), 2);
  REQUIRE(y.packed());
  y.set(std::string(65, 'x'), 3);
  REQUIRE(!y.packed());
  REQUIRE(y.rank(std::string(65, 'x')) == 2);
  std::string huge(300, 'h');  // the long length form of a node
  y.set(huge, -1);
  double s;
  REQUIRE(y.score(huge, s));
  REQUIRE(s == -1);
  REQUIRE(y.rank(huge) == 0);
}

TEST_CASE("zset_value lex ranks order members bytewise", "[zset]") {
  for (int big = 0; big < 2; ++big) {
    zset_value z;
    const char* ms[] = {"a", "b", "ba", "c", "d\xff", ""};
    for (auto m : ms) z.set(m, 0);
    if (big) z.convert_to_index();
    REQUIRE(z.lex_rank("b", false) == 2);
    REQUIRE(z.lex_rank("b", true) == 3);
    REQUIRE(z.lex_rank("", false) == 0);
    REQUIRE(z.lex_rank("", true) == 1);
    REQUIRE(z.lex_rank("zz", false) == 6);
    REQUIRE(z.at(5).member == "d\xff");
  }
}

TEST_CASE("zset_value scan returns every member present for the whole scan", "[zset]") {
  std::mt19937 rng(7);
  zset_value z;
  for (int i = 0; i < 5000; ++i) z.set("k" + std::to_string(i), i);
  std::set<std::string> seen;
  std::uint64_t cur = 0;
  int calls = 0;
  int next_new = 5000;
  do {
    cur = z.scan(cur, 10, [&](const zset_value::entry& e) { seen.insert(std::string(e.member)); });
    // Churn: add members (the table doubles several times during the scan) and remove
    // ones >= 2500.
    for (int k = 0; k < 20; ++k) z.set("n" + std::to_string(next_new++), 0);
    z.erase("k" + std::to_string(2500 + rng() % 2500));
    ++calls;
    REQUIRE(calls < 20000);
  } while (cur != 0);
  for (int i = 0; i < 2500; ++i) REQUIRE(seen.count("k" + std::to_string(i)) == 1);
}

TEST_CASE("zset_value scan survives the table shrinking and returns each member once when nothing changes", "[zset]") {
  zset_value z;
  for (int i = 0; i < 20000; ++i) z.set("k" + std::to_string(i), i);
  std::map<std::string, int> seen;
  std::uint64_t cur = 0;
  bool shrunk = false;
  do {
    cur = z.scan(cur, 50, [&](const zset_value::entry& e) { ++seen[std::string(e.member)]; });
    if (!shrunk && seen.size() > 5000) {
      for (int i = 1000; i < 20000; ++i) z.erase("k" + std::to_string(i));  // the table shrinks
      shrunk = true;
    }
  } while (cur != 0);
  for (int i = 0; i < 1000; ++i) REQUIRE(seen.count("k" + std::to_string(i)) == 1);

  zset_value y;
  for (int i = 0; i < 3000; ++i) y.set("m" + std::to_string(i), i);
  std::map<std::string, int> once;
  cur = 0;
  do {
    cur = y.scan(cur, 7, [&](const zset_value::entry& e) { ++once[std::string(e.member)]; });
    // Small cursors, as Redis's: clients such as phpredis keep them in a signed integer.
    REQUIRE(cur < (std::uint64_t{1} << 32));
  } while (cur != 0);
  REQUIRE(once.size() == 3000);
  for (auto& [m, n] : once) REQUIRE(n == 1);
}

TEST_CASE("zset_value scan treats a cursor no scan returned as finished", "[zset]") {
  zset_value z;
  for (int i = 0; i < 1000; ++i) z.set("k" + std::to_string(i), i);
  std::size_t n = 0;
  REQUIRE(z.scan(~std::uint64_t{0}, 10, [&](const zset_value::entry&) { ++n; }) == 0);
  REQUIRE(z.scan(std::uint64_t{1} << 40, 10, [&](const zset_value::entry&) { ++n; }) == 0);
  REQUIRE(n == 0);
}

TEST_CASE("zset_value small scan returns everything at once", "[zset]") {
  zset_value z;
  z.set("a", 1);
  z.set("b", 2);
  std::size_t n = 0;
  REQUIRE(z.scan(0, 1, [&](const zset_value::entry&) { ++n; }) == 0);
  REQUIRE(n == 2);
}

TEST_CASE("zset_value follows zset-max-listpack-entries and -value, and a listpack holds long members", "[zset]") {
  namespace limits = respq::core::encoding_limits;
  struct restore {
    ~restore() {
      limits::zset_entries = 128;
      limits::zset_value = 64;
    }
  } defaults;
  limits::zset_entries = 1000;
  limits::zset_value = 1000;
  std::mt19937 rng(7);
  model m;
  zset_value z;
  const std::size_t lengths[] = {1, 12, 254, 255, 256, 300, 900};
  for (int op = 0; op < 6000; ++op) {
    std::string member = "m" + std::to_string(rng() % 100);
    member += std::string(lengths[rng() % 7], 'x');
    if (rng() % 4 == 0) {
      REQUIRE(z.erase(member) == m.erase(member));
    } else {
      const double score = static_cast<double>(rng() % 50);
      REQUIRE(z.set(member, score) == m.set(member, score));
    }
    if (op % 500 == 0) check_all(z, m);
  }
  REQUIRE(z.packed());  // at most 100 x 7 members (long ones included), under 1000 entries of 1000 bytes
  check_all(z, m);
  z.set(std::string(1001, 'y'), 1);
  REQUIRE_FALSE(z.packed());
  m.set(std::string(1001, 'y'), 1);
  check_all(z, m);

  limits::zset_entries = 0;
  zset_value none;
  none.set("a", 1);
  REQUIRE_FALSE(none.packed());

  // RESTORE's form of a listpack: built as the index, compacted by the count alone.
  limits::zset_entries = 2;
  limits::zset_value = 64;
  zset_value r;
  r.expect(1000);
  REQUIRE_FALSE(r.packed());
  r.set(std::string(300, 'r'), 1);
  r.set("b", 2);
  r.compact_if_small();
  REQUIRE_FALSE(r.packed());  // by the lengths too: a member is too long
  r.compact_if_small(false);
  REQUIRE(r.packed());
  REQUIRE(r.at(0).member == std::string(300, 'r'));
  r.set("c", 3);
  REQUIRE_FALSE(r.packed());
  r.erase("c");
  r.compact_if_small(false);
  REQUIRE(r.packed());
  zset_value few;
  few.expect(128);  // not past 128: stays a listpack
  REQUIRE(few.packed());
}
