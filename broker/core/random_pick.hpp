// random_pick: the broker thread's random source, and uniform picks of a random
// element from the standard unordered containers (RANDOMKEY).
//
// A std::unordered_map never shrinks its bucket array: after mass deletion most buckets
// are empty. A pick tries random buckets a bounded number of times, then falls back to
// walking the element list to a random position, which is cheap exactly when the table
// is that sparse.
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

// An iterator to a uniformly random element of a non-empty unordered container.
//
// Rejection sampling over (bucket, slot) pairs: a random bucket and a random slot below
// kSlots; the pick stands when the bucket holds an element at that slot. Every element in
// a bucket of at most kSlots elements is hit with the same chance, 1 / (buckets * kSlots),
// so the pick is uniform (picking a bucket, then an element in it, is not: elements that
// share a bucket would be picked less often). At the default load factor a bucket holds
// one half to one element, so a try succeeds with a chance of 1/16 to 1/8 (128 misses in a
// row: under 3e-4); a bucket with more elements than kSlots (about one in a million), or a run of misses in a sparse table, falls back to walking the
// element list to a random position, which is uniform too.
template <typename Container>
auto random_element(Container& c) {
  constexpr std::size_t kSlots = 8;
  const std::size_t buckets = c.bucket_count();
  for (int tries = 0; tries < 128; ++tries) {
    const std::size_t b = random_index(buckets);
    const std::size_t n = c.bucket_size(b);
    if (n > kSlots) break;
    const std::size_t slot = random_index(kSlots);
    if (slot >= n) continue;
    auto local = c.begin(b);
    std::advance(local, static_cast<std::ptrdiff_t>(slot));
    return c.find(local->first);
  }
  return std::next(c.begin(), static_cast<std::ptrdiff_t>(random_index(c.size())));
}

}  // namespace respq::core
