// random_element: every element of an unordered map is picked about equally often, also
// when several elements share a bucket (a bucket-then-element pick would favour the
// elements that sit alone), and in a table left sparse by mass deletion.
#include <catch2/catch.hpp>

#include <cstddef>
#include <map>
#include <unordered_map>

#include "broker/core/random_pick.hpp"

using respq::core::random_element;

namespace {

// Keys 0..4 all hash to 0, so they share one bucket; the others hash to themselves.
struct crowding_hash {
  std::size_t operator()(int k) const { return k < 5 ? 0 : static_cast<std::size_t>(k); }
};

template <typename Map>
std::map<int, int> draw(Map& m, int picks) {
  std::map<int, int> seen;
  for (int i = 0; i < picks; ++i) ++seen[random_element(m)->first];
  return seen;
}

// 100,000 picks over 10 elements: 10,000 expected each, standard deviation about 95, so
// a 10% band is ten deviations wide; a pick that favours lone elements gives the crowded
// ones about a fifth of their share and lands far outside it.
void check_uniform(const std::map<int, int>& seen, int elements, int picks) {
  REQUIRE(static_cast<int>(seen.size()) == elements);
  const double expected = static_cast<double>(picks) / elements;
  for (const auto& [key, count] : seen) {
    INFO("key " << key << " picked " << count << " times, expected " << expected);
    CHECK(count > expected * 0.9);
    CHECK(count < expected * 1.1);
  }
}

}  // namespace

TEST_CASE("random_element is uniform when elements share a bucket", "[random_pick]") {
  std::unordered_map<int, int, crowding_hash> m;
  for (int k = 0; k < 10; ++k) m.emplace(k, k);
  REQUIRE(m.bucket(0) == m.bucket(4));
  check_uniform(draw(m, 100000), 10, 100000);
}

TEST_CASE("random_element is uniform in a table left sparse by deletion", "[random_pick]") {
  std::unordered_map<int, int> m;
  for (int k = 0; k < 100000; ++k) m.emplace(k, k);
  for (int k = 10; k < 100000; ++k) m.erase(k);
  REQUIRE(m.bucket_count() > 10000);
  check_uniform(draw(m, 100000), 10, 100000);
}
