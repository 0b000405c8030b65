// schedule: the waiting tasks of a queue come out earliest first, ties by id (the order
// an ordered set of (time, id) gives), and can be found and removed by id; ids of any
// length are kept.
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "tasks/schedule.hpp"

using namespace respq::tasks;

TEST_CASE("a schedule gives its tasks back earliest first, ties by id, as an ordered set would",
          "[schedule]") {
  // Short ids (inline) and long ones (on the heap).
  auto id_of = [](int i) {
    return i % 3 == 0 ? "long-id-" + std::string(40, static_cast<char>('a' + i % 26)) + std::to_string(i)
                      : std::to_string(i);
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
    CHECK(e->id.view() == id);
    ref.erase(std::pair(e->next_run, id));
    sch.erase(e);
    CHECK_FALSE(sch.find(id));
  }
  sch.erase_if([](const schedule::entry& e) { return e.id.view().size() == 2 && e.id.view()[0] == '5'; });
  for (auto it = ref.begin(); it != ref.end();)
    it = it->first.second.size() == 2 && it->first.second[0] == '5' ? ref.erase(it) : std::next(it);
  REQUIRE(sch.size() == ref.size());
  for (const auto& [key, st] : ref) {
    REQUIRE_FALSE(sch.empty());
    CHECK(sch.front().next_run == key.first);
    const schedule::entry e = sch.pop();
    CHECK(e.next_run == key.first);
    CHECK(e.id.view() == key.second);
    CHECK(e.state() == st);
  }
  CHECK(sch.empty());
}

TEST_CASE("a schedule entry is small: the id inline up to 24 bytes", "[schedule]") {
  CHECK(sizeof(schedule::entry) <= 40);
  const short_id a("0123456789abcdef01234567");
  CHECK(a.view() == "0123456789abcdef01234567");
  short_id b(std::string(100, 'x'));
  short_id c(std::move(b));
  CHECK(c.view() == std::string(100, 'x'));
}
