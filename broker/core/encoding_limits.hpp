// encoding_limits: when a hash, a set or a sorted set leaves its small form, as Redis's
// settings say (hash-max-listpack-entries and -value, set-max-intset-entries,
// zset-max-listpack-entries and -value; the -ziplist- names are their aliases).
//
// Process-wide, as Redis's server.* fields are: the server sets them from its
// configuration when it starts and after CONFIG SET (apply_encoding_limits), and the
// value classes read them on each write that may convert. Like Redis, a change applies to
// the next write: a value already converted stays so, and a small one is not converted
// until it is written. Relaxed atomics: a value is built or copied off the broker thread
// too (DUMP payloads, the AOF rewrite), where a stale limit is harmless.
#pragma once

#include <atomic>
#include <cstddef>

namespace respq::core {

struct config;

namespace encoding_limits {
inline std::atomic<std::size_t> hash_entries{512}, hash_value{64}, set_intset_entries{512}, zset_entries{128},
    zset_value{64};

inline std::size_t hash_max_entries() { return hash_entries.load(std::memory_order_relaxed); }
inline std::size_t hash_max_value() { return hash_value.load(std::memory_order_relaxed); }
// Redis caps it at 2^30 (intset internals).
inline std::size_t set_max_intset_entries() {
  const std::size_t n = set_intset_entries.load(std::memory_order_relaxed);
  return n >= (std::size_t{1} << 30) ? std::size_t{1} << 30 : n;
}
inline std::size_t zset_max_entries() { return zset_entries.load(std::memory_order_relaxed); }
inline std::size_t zset_max_value() { return zset_value.load(std::memory_order_relaxed); }
}  // namespace encoding_limits

// Sets the limits from the configuration (config.cpp).
void apply_encoding_limits(const config& c);

}  // namespace respq::core
