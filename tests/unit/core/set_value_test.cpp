// set_value against a std::set model: the intset encoding and its widening, conversion to
// a table (by a non-integer member and by size), random operation sequences, copies,
// random sampling that reaches every member about equally, and SSCAN's guarantee that a
// member present for the whole scan is returned even when the table grows or shrinks
// between steps.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/core/encoding_limits.hpp"
#include "broker/core/set_value.hpp"

using respq::core::set_value;

namespace {

std::set<std::string> members(const set_value& s) {
  std::set<std::string> out;
  s.for_each([&](std::string_view m) { out.emplace(m); });
  return out;
}

void check_equal(const set_value& s, const std::set<std::string>& model) {
  REQUIRE(s.size() == model.size());
  REQUIRE(members(s) == model);
  for (const auto& m : model) REQUIRE(s.contains(m));
}

// Every member reached by a full scan from cursor 0.
std::set<std::string> scan_all(const set_value& s) {
  std::set<std::string> out;
  std::uint64_t cursor = 0;
  do {
    cursor = s.scan_step(cursor, [&](std::string_view m) { out.emplace(m); });
  } while (cursor != 0);
  return out;
}

}  // namespace

TEST_CASE("a set of small integers is an intset, ascending", "[set_value]") {
  set_value s;
  REQUIRE(s.encoding_name() == std::string("intset"));
  REQUIRE(s.insert("3"));
  REQUIRE(s.insert("-1"));
  REQUIRE(s.insert("2"));
  REQUIRE_FALSE(s.insert("2"));
  std::vector<std::string> order;
  s.for_each([&](std::string_view m) { order.emplace_back(m); });
  REQUIRE(order == std::vector<std::string>{"-1", "2", "3"});
  REQUIRE(s.encoding_name() == std::string("intset"));
  REQUIRE(s.contains("2"));
  REQUIRE_FALSE(s.contains("02"));  // not string2ll's spelling of 2
  REQUIRE_FALSE(s.contains("x"));
  REQUIRE(s.erase("-1"));
  REQUIRE_FALSE(s.erase("-1"));
  REQUIRE(s.size() == 2);
}

TEST_CASE("an intset widens to 32 and 64 bits and keeps every member", "[set_value]") {
  set_value s;
  std::set<std::string> model;
  for (long long v : {1LL, -32768LL, 32767LL, 32768LL, -2147483649LL, 9223372036854775807LL,
                      -9223372036854775807LL - 1, 0LL, 70000LL}) {
    REQUIRE(s.insert(std::to_string(v)));
    model.insert(std::to_string(v));
    check_equal(s, model);
  }
  REQUIRE(s.encoding_name() == std::string("intset"));
  REQUIRE(s.contains("-9223372036854775808"));
  REQUIRE_FALSE(s.contains("9223372036854775808"));  // out of range: not an integer
}

TEST_CASE("members that are not string2ll integers make a hashtable", "[set_value]") {
  for (const char* m : {"a", "+1", "01", "-0", " 1", "1 ", "", "9223372036854775808", "1.5"}) {
    set_value s;
    REQUIRE(s.insert("5"));
    REQUIRE(s.insert(m));
    INFO(m);
    REQUIRE(s.encoding_name() == std::string("hashtable"));
    check_equal(s, {"5", m});
  }
}

TEST_CASE("the 513th integer converts an intset to a hashtable", "[set_value]") {
  set_value s;
  std::set<std::string> model;
  for (int i = 0; i < 512; ++i) {
    s.insert(std::to_string(i * 7));
    model.insert(std::to_string(i * 7));
  }
  REQUIRE(s.encoding_name() == std::string("intset"));
  REQUIRE_FALSE(s.insert("0"));  // a duplicate does not convert
  REQUIRE(s.encoding_name() == std::string("intset"));
  s.insert("1");
  model.insert("1");
  REQUIRE(s.encoding_name() == std::string("hashtable"));
  check_equal(s, model);
  // A hashtable stays one (as in Redis) even when it becomes small again.
  for (int i = 0; i < 512; ++i) s.erase(std::to_string(i * 7));
  REQUIRE(s.size() == 1);
  REQUIRE(s.encoding_name() == std::string("hashtable"));
}

TEST_CASE("set_value behaves like std::set under random operations", "[set_value]") {
  for (unsigned seed = 1; seed <= 10; ++seed) {
    std::mt19937 rng(seed);
    set_value s;
    std::set<std::string> model;
    const bool ints_only = seed % 2;
    for (int step = 0; step < 20000; ++step) {
      std::string m = ints_only ? std::to_string(static_cast<int>(rng() % 3000) - 1500)
                                : (rng() % 4 ? "m:" : "") + std::to_string(rng() % 3000) + std::string(rng() % 3 ? 0 : 200, 'x');
      switch (rng() % 5) {
        case 0:
        case 1: REQUIRE(s.insert(m) == model.insert(m).second); break;
        case 2: REQUIRE(s.erase(m) == (model.erase(m) == 1)); break;
        case 3: REQUIRE(s.contains(m) == (model.count(m) == 1)); break;
        case 4:
          if (!model.empty()) {
            std::string p = s.pop_random();
            REQUIRE(model.erase(p) == 1);
          }
          break;
      }
      REQUIRE(s.size() == model.size());
    }
    check_equal(s, model);
    set_value copy(s);
    check_equal(copy, model);
    set_value moved(std::move(copy));
    check_equal(moved, model);
  }
}

TEST_CASE("empty and long members round-trip", "[set_value]") {
  set_value s;
  std::string big(100000, 'z');
  big[5] = '\0';
  REQUIRE(s.insert(""));
  REQUIRE(s.insert(big));
  REQUIRE(s.insert(std::string(127, 'a')));
  REQUIRE(s.insert(std::string(128, 'a')));
  check_equal(s, {"", big, std::string(127, 'a'), std::string(128, 'a')});
  REQUIRE(s.memory_usage() > big.size());
}

TEST_CASE("random members are spread evenly over the set", "[set_value]") {
  for (bool table : {false, true}) {
    set_value s;
    const int n = 100;
    for (int i = 0; i < n; ++i) s.insert(table ? "k" + std::to_string(i) : std::to_string(i));
    REQUIRE(s.encoding_name() == std::string(table ? "hashtable" : "intset"));
    std::map<std::string, int> hits;
    const int draws = 100000;
    set_value::member_buf buf;
    for (int i = 0; i < draws; ++i) ++hits[std::string(s.member_at(s.random_position(), buf))];
    REQUIRE(hits.size() == static_cast<std::size_t>(n));
    // Expected 1000 each; binomial sd ~31: a member outside [800, 1200] means bias.
    for (const auto& [m, count] : hits) {
      INFO(m);
      REQUIRE(count > 800);
      REQUIRE(count < 1200);
    }
  }
}

TEST_CASE("a full scan returns every member, once per home bucket", "[set_value]") {
  set_value s;
  std::set<std::string> model;
  for (int i = 0; i < 5000; ++i) {
    s.insert("member:" + std::to_string(i));
    model.insert("member:" + std::to_string(i));
  }
  std::vector<std::string> seen;
  std::uint64_t cursor = 0;
  do {
    cursor = s.scan_step(cursor, [&](std::string_view m) { seen.emplace_back(m); });
  } while (cursor != 0);
  REQUIRE(seen.size() == model.size());  // no resize: each member exactly once
  REQUIRE(std::set<std::string>(seen.begin(), seen.end()) == model);
  REQUIRE(scan_all(s) == model);
}

TEST_CASE("a scan returns members present throughout while the table grows and shrinks", "[set_value]") {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    std::mt19937 rng(seed);
    set_value s;
    std::set<std::string> stable;
    for (int i = 0; i < 600; ++i) {
      s.insert("stable:" + std::to_string(i));
      stable.insert("stable:" + std::to_string(i));
    }
    std::set<std::string> seen;
    std::uint64_t cursor = 0;
    int step = 0, extra = 0;
    const bool grow = seed % 2;
    do {
      cursor = s.scan_step(cursor, [&](std::string_view m) { seen.emplace(m); });
      // Between steps, add (or add and then remove) many other members: the table
      // doubles or halves several times during the scan.
      if (step < 40) {
        for (int k = 0; k < 200; ++k) s.insert("extra:" + std::to_string(extra++));
      } else if (!grow) {
        for (int k = 0; k < 400 && extra > 0; ++k) s.erase("extra:" + std::to_string(--extra));
      }
      ++step;
    } while (cursor != 0 && step < 1000000);
    REQUIRE(cursor == 0);
    for (const auto& m : stable) {
      INFO(m);
      REQUIRE(seen.count(m) == 1);
    }
  }
}

TEST_CASE("an intset follows set-max-intset-entries as set at the time of each insert", "[set_value]") {
  namespace limits = respq::core::encoding_limits;
  struct restore {
    ~restore() { limits::set_intset_entries = 512; }
  } defaults;
  limits::set_intset_entries = 3;
  set_value s;
  for (const char* m : {"3", "1", "2"}) s.insert(m);
  REQUIRE(s.encoding_name() == std::string("intset"));
  s.insert("4");
  REQUIRE(s.encoding_name() == std::string("hashtable"));
  check_equal(s, {"1", "2", "3", "4"});

  limits::set_intset_entries = 0;
  set_value z;
  z.insert("1");
  REQUIRE(z.encoding_name() == std::string("hashtable"));

  limits::set_intset_entries = 5000;
  set_value big;
  std::set<std::string> model;
  for (int i = 0; i < 4000; ++i) {
    big.insert(std::to_string(i * 3 - 6000));
    model.insert(std::to_string(i * 3 - 6000));
  }
  REQUIRE(big.encoding_name() == std::string("intset"));
  check_equal(big, model);
  // Redis caps the setting at 2^30 (intset internals).
  limits::set_intset_entries = std::size_t{1} << 40;
  REQUIRE(limits::set_max_intset_entries() == std::size_t{1} << 30);
}
