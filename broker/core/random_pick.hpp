// random_pick: the broker thread's random source, and fair-enough picks of a random
// element from the standard unordered containers (RANDOMKEY, HRANDFIELD).
//
// A std::unordered_map never shrinks its bucket array: after mass deletion most buckets
// are empty. A pick tries random buckets a bounded number of times (each non-empty one
// holds about one element at the default load factor), then falls back to walking the
// element list to a random position, which is cheap exactly when the table is that sparse.
#pragma once

#include <cstdint>
#include <iterator>
#include <random>

namespace respq::core {

// One generator for the broker thread; seeded once from the OS.
inline std::mt19937_64& random_engine() {
  static std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// A random index in [0, n); n > 0.
inline std::size_t random_index(std::size_t n) {
  return static_cast<std::size_t>(std::uniform_int_distribution<std::uint64_t>(0, n - 1)(random_engine()));
}

// An iterator to a random element of a non-empty unordered container.
template <typename Container>
auto random_element(Container& c) {
  const std::size_t buckets = c.bucket_count();
  for (int tries = 0; tries < 32; ++tries) {
    const std::size_t b = random_index(buckets);
    const std::size_t n = c.bucket_size(b);
    if (n == 0) continue;
    auto local = c.begin(b);
    std::advance(local, static_cast<std::ptrdiff_t>(random_index(n)));
    return c.find(local->first);
  }
  return std::next(c.begin(), static_cast<std::ptrdiff_t>(random_index(c.size())));
}

}  // namespace respq::core
