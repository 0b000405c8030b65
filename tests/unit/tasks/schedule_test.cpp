// schedule: the waiting tasks of a queue come out earliest first, ties by id (the order
// an ordered set of (time, id) gives), and can be found and removed by id; ids of any
// length are kept.
#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tasks/schedule.hpp"

using namespace respq::tasks;

TEST_CASE("a schedule gives its tasks back earliest first, ties by id, as an ordered set would",
          "[schedule]") {
  // Short ids (inline), long ones (on the heap), ids as respq generates them (24 lowercase
  // hex digits, kept as 12 bytes) and 24 upper-case hex digits (kept as they are).
  auto id_of = [](int i) {
    char hex[25];
    switch (i % 4) {
      case 0: return "long-id-" + std::string(40, static_cast<char>('a' + i % 26)) + std::to_string(i);
      case 1:
        std::snprintf(hex, sizeof hex, "%016llx%08x", 0x9e3779b97f4a7c15ull * static_cast<unsigned>(i), i);
        return std::string(hex);
      case 3:
        std::snprintf(hex, sizeof hex, "%016llX%08X", 0x9e3779b97f4a7c15ull * static_cast<unsigned>(i), i);
        return std::string(hex);
      default: return std::to_string(i);
    }
  };
  std::mt19937 rng(7);
  schedule sch;
  std::map<std::pair<double, std::string>, custody_state> ref;
  for (int i = 0; i < 2000; ++i) {
    const double t = static_cast<double>(rng() % 50);
    const std::string id = id_of(i);
    const custody_state st = i % 2 ? custody_state::retrying : custody_state::scheduled;
    sch.insert(t, id, st);
    ref.emplace(std::pair(t, id), st);
  }
  REQUIRE(sch.size() == ref.size());
  // Removals by id, as TASK CANCEL and a client's HDEL do.
  for (int i = 0; i < 2000; i += 7) {
    const std::string id = id_of(i);
    const schedule::entry* e = sch.find(id);
    REQUIRE(e);
    CHECK(e->id.str() == id);
    ref.erase(std::pair(e->next_run, id));
    sch.erase(e);
    CHECK_FALSE(sch.find(id));
  }
  sch.erase_if([](const schedule::entry& e) { return e.id.str().size() == 2 && e.id.str()[0] == '5'; });
  for (auto it = ref.begin(); it != ref.end();)
    it = it->first.second.size() == 2 && it->first.second[0] == '5' ? ref.erase(it) : std::next(it);
  REQUIRE(sch.size() == ref.size());
  for (const auto& [key, st] : ref) {
    REQUIRE_FALSE(sch.empty());
    CHECK(sch.front().next_run == key.first);
    const schedule::entry e = sch.pop();
    CHECK(e.next_run == key.first);
    CHECK(e.id.str() == key.second);
    CHECK(e.state() == st);
  }
  CHECK(sch.empty());
}

TEST_CASE("a schedule entry is small: a generated id in 12 bytes, others inline up to 14", "[schedule]") {
  CHECK(sizeof(schedule::entry) == 24);
  for (const std::string& id : std::vector<std::string>{"0123456789abcdef01234567", "ffffffffffffffff00000000", "0123456789ABCDEF01234567",
                               "0123456789abcdef0123456", "0123456789abcdef012345678", "0123456789abcdeg01234567",
                               "", "x", "fourteen-bytes", "fifteen--bytes!", std::string(100, 'x')}) {
    short_id a(id);
    CHECK(a.str() == id);
    CHECK(a.is(id));
    CHECK_FALSE(a.is(id + "0"));
    a.set_aux(2);
    short_id b(std::move(a));
    CHECK(b.str() == id);
    CHECK(b.aux() == 2);
    short_id c;
    c = std::move(b);
    CHECK(c.str() == id);
  }
}
