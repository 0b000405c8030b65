// hash_value against a std::map model: random sequences of sets, reassignments and
// erases (values crossing the one- and two-byte length prefixes, empty fields and values,
// NUL bytes), copies and moves, a value replaced by a part of itself, uniform random
// entries, memory accounting, and HSCAN's guarantee that a field present for the whole
// scan is returned even when the table grows or shrinks between steps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/core/encoding_limits.hpp"
#include "broker/core/hash_value.hpp"

using respq::core::hash_value;
namespace limits = respq::core::encoding_limits;

namespace {

std::map<std::string, std::string> contents(const hash_value& h) {
  std::map<std::string, std::string> out;
  for (const auto [f, v] : h) REQUIRE(out.emplace(f, v).second);  // no field twice
  return out;
}

void check_equal(const hash_value& h, const std::map<std::string, std::string>& model) {
  REQUIRE(h.size() == model.size());
  REQUIRE(h.empty() == model.empty());
  REQUIRE(contents(h) == model);
  for (const auto& [f, v] : model) {
    auto it = h.find(f);
    REQUIRE(it != h.end());
    REQUIRE((*it).field == f);
    REQUIRE((*it).value == v);
  }
}

// Every field reached by a full scan from cursor 0.
std::set<std::string> scan_all(const hash_value& h) {
  std::set<std::string> out;
  std::uint64_t cursor = 0;
  do {
    cursor = h.scan_step(cursor, [&](const hash_value::entry& e) { out.emplace(e.field); });
  } while (cursor != 0);
  return out;
}

}  // namespace

TEST_CASE("a hash sets, finds, replaces and erases fields", "[hash_value]") {
  hash_value h;
  REQUIRE(h.empty());
  REQUIRE(h.find("a") == h.end());
  REQUIRE_FALSE(h.erase("a"));
  REQUIRE(h.set("a", "1"));
  REQUIRE(h.set("", ""));  // an empty field and an empty value are fields like any
  REQUIRE(h.set(std::string("n\0ul", 4), std::string("v\0v", 3)));
  REQUIRE_FALSE(h.set("a", "two"));
  check_equal(h, {{"a", "two"}, {"", ""}, {std::string("n\0ul", 4), std::string("v\0v", 3)}});
  REQUIRE(h.contains(""));
  REQUIRE_FALSE(h.contains("b"));
  REQUIRE(h.erase(""));
  REQUIRE_FALSE(h.erase(""));
  REQUIRE(h.erase("a"));
  REQUIRE(h.erase(std::string("n\0ul", 4)));
  REQUIRE(h.empty());
  REQUIRE(h.memory_usage() == 0);
  REQUIRE(h.begin() == h.end());
}

TEST_CASE("a value set again keeps its field across every length prefix size", "[hash_value]") {
  hash_value h;
  const std::string field(200, 'f');  // a two-byte length prefix of its own
  std::map<std::string, std::string> model;
  h.set("other", "x");
  model["other"] = "x";
  for (std::size_t len : {0, 1, 127, 128, 5, 16383, 16384, 300000, 127, 0, 20000, 3}) {
    const std::string v(len, static_cast<char>('a' + len % 26));
    h.set(field, v);
    model[field] = v;
    check_equal(h, model);
  }
  // Through an iterator, as recovery does while it walks.
  for (auto it = h.begin(); it != h.end(); ++it) h.assign(it, std::string((*it).field.size() + 1, 'z'));
  check_equal(h, {{"other", std::string(6, 'z')}, {field, std::string(201, 'z')}});
}

TEST_CASE("a value may be replaced by a part of itself", "[hash_value]") {
  hash_value h;
  h.set("k", "0123456789abcdef0123456789");
  auto it = h.find("k");
  h.assign(it, (*it).value.substr(3, 5));
  REQUIRE((*h.find("k")).value == "34567");
  it = h.find("k");
  h.assign(it, (*it).field);
  REQUIRE((*h.find("k")).value == "k");
}

TEST_CASE("random sets and erases agree with a map model", "[hash_value]") {
  std::mt19937_64 rng(7);
  hash_value h;
  std::map<std::string, std::string> model;
  for (int round = 0; round < 20000; ++round) {
    const std::string f = "f" + std::to_string(rng() % 700);
    switch (rng() % 4) {
      case 0:
      case 1: {
        const std::string v(rng() % 3 == 0 ? rng() % 200 : rng() % 20, static_cast<char>('a' + rng() % 26));
        REQUIRE(h.set(f, v) == (model.count(f) == 0));
        model[f] = v;
        break;
      }
      case 2: REQUIRE(h.erase(f) == (model.erase(f) == 1)); break;
      default:
        if (auto it = h.find(f); it != h.end()) {
          h.erase(it);
          model.erase(f);
        }
    }
    if (round % 997 == 0) check_equal(h, model);
  }
  check_equal(h, model);
  // Shrinking back: erase nearly everything, every lookup still right.
  for (auto it = model.begin(); model.size() > 3;) {
    REQUIRE(h.erase(it->first));
    it = model.erase(it);
  }
  check_equal(h, model);
}

TEST_CASE("a copy is deep and a move leaves the source empty", "[hash_value]") {
  hash_value h;
  for (int i = 0; i < 100; ++i) h.set("field" + std::to_string(i), std::string(i, 'v'));
  hash_value copy(h);
  REQUIRE(contents(copy) == contents(h));
  REQUIRE(copy.memory_usage() == h.memory_usage());
  copy.set("field1", "changed");
  copy.erase("field2");
  REQUIRE((*h.find("field1")).value == "v");
  REQUIRE(h.contains("field2"));
  hash_value moved(std::move(copy));
  REQUIRE(copy.empty());  // NOLINT(bugprone-use-after-move): a moved-from hash is empty
  REQUIRE(moved.size() == 99);
  hash_value assigned;
  assigned = h;
  REQUIRE(contents(assigned) == contents(h));
  assigned = std::move(moved);
  REQUIRE(assigned.size() == 99);
  REQUIRE((*assigned.find("field1")).value == "changed");
}

TEST_CASE("memory usage follows the blocks and the table", "[hash_value]") {
  hash_value h;
  h.set("id", std::string(100, 'p'));
  const std::size_t one = h.memory_usage();
  REQUIRE(one == 8 * sizeof(std::uint64_t) + 112);  // the smallest table; 2 + 2 + 100 bytes in a 112-byte class
  h.set("id", std::string(10, 'p'));
  REQUIRE(h.memory_usage() == 8 * sizeof(std::uint64_t) + 16);
  for (int i = 0; i < 1000; ++i) h.set(std::to_string(i), "x");
  REQUIRE(h.memory_usage() < 1001 * 16 + 2048 * sizeof(std::uint64_t) + 1);
  for (int i = 0; i < 1000; ++i) h.erase(std::to_string(i));
  REQUIRE(h.memory_usage() == 8 * sizeof(std::uint64_t) + 16);  // the table shrank back
}

TEST_CASE("random entries reach every field about equally", "[hash_value]") {
  hash_value h;
  for (int i = 0; i < 20; ++i) h.set("f" + std::to_string(i), std::to_string(i));
  std::map<std::string, int> seen;
  for (int i = 0; i < 20000; ++i) {
    const auto e = h.random_entry();
    REQUIRE((*h.find(e.field)).value == e.value);
    ++seen[std::string(e.field)];
  }
  REQUIRE(seen.size() == 20);
  for (const auto& [f, n] : seen) {
    CHECK(n > 700);
    CHECK(n < 1300);
  }
}

TEST_CASE("a scan returns every field present throughout, across growth and shrinking", "[hash_value]") {
  hash_value h;
  std::set<std::string> all;
  for (int i = 0; i < 500; ++i) {
    h.set("k" + std::to_string(i), "v");
    all.insert("k" + std::to_string(i));
  }
  REQUIRE(scan_all(h) == all);

  // Growth between steps: the first 500 fields stay, 3000 more arrive.
  std::set<std::string> seen;
  std::uint64_t cursor = 0;
  int step = 0, added = 0;
  do {
    cursor = h.scan_step(cursor, [&](const hash_value::entry& e) { seen.emplace(e.field); });
    if (++step % 3 == 0 && added < 3000)
      for (int j = 0; j < 60; ++j, ++added) h.set("new" + std::to_string(added), "v");
  } while (cursor != 0);
  for (const auto& f : all) REQUIRE(seen.count(f));

  // Shrinking between steps: the new fields go, the first 500 stay.
  seen.clear();
  cursor = 0;
  int removed = 0;
  do {
    cursor = h.scan_step(cursor, [&](const hash_value::entry& e) { seen.emplace(e.field); });
    for (int j = 0; j < 100 && removed < added; ++j, ++removed) h.erase("new" + std::to_string(removed));
  } while (cursor != 0);
  for (const auto& f : all) REQUIRE(seen.count(f));
  REQUIRE(h.size() == 500);
}

namespace {

std::vector<std::pair<std::string, std::string>> in_order(const hash_value& h) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto [f, v] : h) out.emplace_back(f, v);
  return out;
}

}  // namespace

TEST_CASE("a small hash keeps insertion order, as Redis's listpack", "[hash_value]") {
  hash_value h;
  for (const char* f : {"c", "a", "b", "e", "d"}) h.set(f, std::string("v") + f);
  REQUIRE(h.ordered());
  h.set("a", "again");   // a value set again keeps its place
  REQUIRE(h.erase("b"));  // a field deleted closes the gap
  h.set("b", "back");    // and comes back last
  using P = std::vector<std::pair<std::string, std::string>>;
  REQUIRE(in_order(h) == P{{"c", "vc"}, {"a", "again"}, {"e", "ve"}, {"d", "vd"}, {"b", "back"}});
  // HSCAN's step of a small hash: every field at once, in order, cursor 0.
  std::vector<std::string> scanned;
  REQUIRE(h.scan_step(0, [&](const hash_value::entry& e) { scanned.emplace_back(e.field); }) == 0);
  REQUIRE(scanned == std::vector<std::string>{"c", "a", "e", "d", "b"});
  // Copies and moves keep the order.
  hash_value copy(h);
  hash_value moved(std::move(copy));
  REQUIRE(in_order(moved) == in_order(h));
  REQUIRE(moved.ordered());
  // Random entries come from the fields there.
  for (int i = 0; i < 50; ++i) REQUIRE(h.contains(h.random_entry().field));
}

TEST_CASE("a small hash becomes a table past 512 fields or 64 bytes, for good until emptied", "[hash_value]") {
  SECTION("the 513th field") {
    hash_value h;
    for (int i = 0; i < 512; ++i) h.set("f" + std::to_string(i), "v");
    REQUIRE(h.ordered());
    REQUIRE(in_order(h).front().first == "f0");
    REQUIRE(in_order(h).back().first == "f511");
    h.set("f512", "v");
    REQUIRE_FALSE(h.ordered());
    REQUIRE(h.size() == 513);
    for (int i = 0; i <= 512; ++i) REQUIRE(h.contains("f" + std::to_string(i)));
    for (int i = 0; i < 500; ++i) REQUIRE(h.erase("f" + std::to_string(i)));
    REQUIRE_FALSE(h.ordered());  // smaller again, still a table (as Redis's hashtable)
    REQUIRE(h.size() == 13);
  }
  SECTION("lengths as the client's, and a listpack restored whatever its lengths") {
    hash_value h;
    // A client's value of 65 bytes beginning with 0xFF, stored behind 0xFF 0x00.
    h.set("a", std::string("\xff\0\xff", 3) + std::string(64, 'x'));
    REQUIRE_FALSE(h.ordered());
    hash_value g;
    g.set("a", std::string("\xff\0\xff", 3) + std::string(63, 'x'));  // 64 bytes: still small
    REQUIRE(g.ordered());
    g.set("b", std::string("\xff\x01packed", 8));  // a packed task envelope
    REQUIRE_FALSE(g.ordered());
    hash_value r;
    r.set("z", "1", false);
    r.set("y", std::string(100, 'v'), false);
    r.set("a", "3", false);
    REQUIRE(r.ordered());
    r.set("n", "7");  // a short one later: still small, last
    REQUIRE(r.ordered());
    REQUIRE(in_order(r).back().first == "n");
  }
  SECTION("a long value set again, a long new field, a long first value") {
    hash_value h;
    h.set("a", "1");
    h.set("a", std::string(64, 'x'));
    REQUIRE(h.ordered());
    h.set("a", std::string(65, 'x'));
    REQUIRE_FALSE(h.ordered());
    REQUIRE((*h.find("a")).value == std::string(65, 'x'));
    hash_value g;
    g.set("a", "1");
    g.set(std::string(65, 'f'), "1");
    REQUIRE_FALSE(g.ordered());
    REQUIRE(g.size() == 2);
    hash_value first;
    first.set("k", std::string(100, 'v'));
    REQUIRE_FALSE(first.ordered());
    REQUIRE(first.erase("k"));
    REQUIRE(first.empty());
    first.set("k", "v");  // emptied: a small hash again
    REQUIRE(first.ordered());
  }
}

TEST_CASE("a small hash against an ordered model, random operations", "[hash_value]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    hash_value h;
    std::vector<std::pair<std::string, std::string>> model;
    for (int op = 0; op < 400; ++op) {
      const std::string f = "f" + std::to_string(rng() % 40);
      auto at = std::find_if(model.begin(), model.end(), [&](const auto& p) { return p.first == f; });
      if (rng() % 3) {
        const std::string v(rng() % 20, static_cast<char>('a' + rng() % 26));
        REQUIRE(h.set(f, v) == (at == model.end()));
        if (at == model.end()) model.emplace_back(f, v);
        else at->second = v;
      } else {
        REQUIRE(h.erase(f) == (at != model.end()));
        if (at != model.end()) model.erase(at);
      }
      REQUIRE(h.ordered());
      REQUIRE(in_order(h) == model);
      for (const auto& [mf, mv] : model) REQUIRE((*h.find(mf)).value == mv);
    }
  }
}

TEST_CASE("a small hash follows hash-max-listpack-entries and -value as set at the time of each write",
          "[hash_value]") {
  struct restore {
    ~restore() {
      limits::hash_entries = 512;
      limits::hash_value = 64;
    }
  } defaults;
  SECTION("a limit raised keeps more and longer fields in order") {
    limits::hash_entries = 2000;
    limits::hash_value = 1000;
    hash_value h;
    for (int i = 1500; i > 0; --i) h.set("f" + std::to_string(i), std::string(i % 7 == 0 ? 900 : 3, 'v'));
    REQUIRE(h.ordered());
    REQUIRE(h.size() == 1500);
    REQUIRE(in_order(h).front().first == "f1500");
    REQUIRE(in_order(h).back().first == "f1");
    REQUIRE(h.find("f700") != h.end());
    h.set("long", std::string(1001, 'x'));
    REQUIRE_FALSE(h.ordered());
    REQUIRE(h.size() == 1501);
  }
  SECTION("a limit lowered converts at the next write, a value set again included") {
    hash_value h;
    h.set("a", "1");
    h.set("b", "2");
    limits::hash_entries = 1;
    REQUIRE(h.ordered());  // nothing written yet
    h.set("a", "3");
    REQUIRE_FALSE(h.ordered());
    REQUIRE(h.size() == 2);
  }
  SECTION("a limit of 0: a table from the first field") {
    limits::hash_entries = 0;
    hash_value h;
    h.set("only", "1");
    REQUIRE_FALSE(h.ordered());
  }
  SECTION("the length limit counts fields and values, not a RESTOREd listpack's") {
    limits::hash_value = 4;
    hash_value h;
    h.set("abcd", "1234");
    REQUIRE(h.ordered());
    h.set("abcde", "1");
    REQUIRE_FALSE(h.ordered());
    hash_value r;
    r.set("restored", "a long value", false);
    REQUIRE(r.ordered());
    // ...until a write: a long field set again converts it, as Redis's HSET checks it.
    r.set("restored", "1");
    REQUIRE_FALSE(r.ordered());
    hash_value n;
    n.add_new("a", "1");
    n.add_new("long field", "1", false);
    REQUIRE(n.ordered());
    n.add_new("b", "too long");
    REQUIRE_FALSE(n.ordered());
    REQUIRE(n.size() == 3);
    REQUIRE(n.contains("a"));
    REQUIRE(n.contains("long field"));
  }
}
