// slot_table: see slot_table.hpp.
#include "broker/core/slot_table.hpp"

#include <cstring>
#include <random>

namespace respq::core::slot_table {

namespace {

// splitmix64: fast, and seeded from the OS so random picks (SPOP, SRANDMEMBER,
// HRANDFIELD) differ between runs, as in Redis.
struct rng_state {
  std::uint64_t s;
  rng_state() {
    std::random_device rd;
    s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};
rng_state& rng() {
  static rng_state r;
  return r;
}
const std::uint64_t hash_seed = rng().next();

__extension__ typedef unsigned __int128 u128;  // GCC and clang; __extension__ for -Wpedantic

// The folded 128-bit product: the mixing step of wyhash-style hashes.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

std::uint64_t reverse_bits(std::uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
  v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0Full) | ((v & 0x0F0F0F0F0F0F0F0Full) << 4);
  v = ((v >> 8) & 0x00FF00FF00FF00FFull) | ((v & 0x00FF00FF00FF00FFull) << 8);
  v = ((v >> 16) & 0x0000FFFF0000FFFFull) | ((v & 0x0000FFFF0000FFFFull) << 16);
  return (v >> 32) | (v << 32);
}

}  // namespace

std::uint64_t hash(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t n = s.size();
  std::uint64_t h = hash_seed ^ (n * 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h ^ w, 0xBF58476D1CE4E5B9ull);
    p += 8;
    n -= 8;
  }
  std::uint64_t w = 0;
  if (n) std::memcpy(&w, p, n);
  h = mix(h ^ w, 0x94D049BB133111EBull);
  return mix(h, 0x9E3779B97F4A7C15ull);
}

std::uint64_t random_u64() { return rng().next(); }

std::size_t capacity_for(std::size_t n) {
  const std::size_t want = n + n / 3 + 1;
  std::size_t c = min_capacity;
  while (c < want) c <<= 1;
  return c;
}

std::uint64_t next_cursor(std::uint64_t cursor, std::uint64_t mask) {
  // Set the unmasked bits, reverse, add one, reverse.
  cursor |= ~mask;
  cursor = reverse_bits(cursor);
  ++cursor;
  return reverse_bits(cursor);
}

}  // namespace respq::core::slot_table
