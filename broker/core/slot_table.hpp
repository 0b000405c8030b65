// slot_table: the open-addressing table shared by set_value (members) and hash_value
// (fields with their values). The table is an array of 8-byte slots, a power of two of
// them, with linear probing. A slot holds a pointer to a heap block that the owning class
// lays out (the key's bytes, and for a hash the value's), and in the pointer's unused top
// 16 bits 16 bits of the key's hash, so a probe rarely touches a block that is not the one
// sought. Deletion shifts later slots of the cluster back (no tombstones), so every key
// stays reachable from its home slot (hash & mask) without crossing an empty slot: what
// lookups and scan_step rely on.
//
// These are functions over (slots, capacity), parameterised by how the owner reads a
// block's key (key_of: slot -> std::string_view); the owner keeps the array, its size and
// its blocks, and frees a block before or after removing its slot as it needs.
//
// Scan: by home slot with Redis's reverse-binary cursor. A step visits one home slot and
// the keys whose home it is (they all sit in the run of full slots that starts there).
// Because a key's home is its hash masked, exactly as a chained table's bucket, Redis's
// guarantee carries over: a key present from the first call to the last is returned at
// least once, even if the table grew or shrank between calls (a resize happens all at
// once, inside one command); keys may be returned more than once.
//
// Hashing: a wyhash-style mix of 8-byte words with a per-process seed, so collisions are
// unpredictable from outside (as Redis's siphash key). Owner of the seed and of the random
// source: the broker thread (the tables are the keyspace's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>

namespace respq::core::slot_table {

constexpr std::size_t min_capacity = 8;
constexpr std::uint64_t pointer_mask = (std::uint64_t{1} << 48) - 1;

// The seeded hash of a key.
std::uint64_t hash(std::string_view s);
// The process's random source (splitmix64, seeded from the OS).
std::uint64_t random_u64();
// Smallest table holding n keys at most 3/4 full.
std::size_t capacity_for(std::size_t n);
// Redis's reverse-binary increment of a scan cursor over a table of mask + 1 slots.
std::uint64_t next_cursor(std::uint64_t cursor, std::uint64_t mask);

inline unsigned char* block_of(std::uint64_t slot) { return reinterpret_cast<unsigned char*>(slot & pointer_mask); }
// The slot for a block whose key hashes to h (aborts on a pointer wider than 48 bits: no
// room for the tag, which no x86-64 or AArch64 user-space allocation has).
inline std::uint64_t make_slot(const void* block, std::uint64_t h) {
  const auto addr = reinterpret_cast<std::uintptr_t>(block);
  if (addr & ~pointer_mask) std::abort();
  return (h & ~pointer_mask) | addr;
}
// The same slot pointing at another block (the key unchanged: a value moved by realloc).
inline std::uint64_t with_block(std::uint64_t slot, const void* block) {
  return (slot & ~pointer_mask) | reinterpret_cast<std::uintptr_t>(block);
}

// A zeroed array of n slots.
inline std::uint64_t* allocate(std::size_t n) {
  auto* t = static_cast<std::uint64_t*>(std::calloc(n, sizeof(std::uint64_t)));
  if (!t) throw std::bad_alloc();
  return t;
}

// The slot holding key k (hash h), or cap when absent (or t is null).
template <typename KeyOf>
std::size_t find(const std::uint64_t* t, std::size_t cap, std::string_view k, std::uint64_t h, KeyOf key_of) {
  if (!t) return cap;
  const std::size_t mask = cap - 1;
  const std::uint64_t tag = h & ~pointer_mask;
  for (std::size_t i = static_cast<std::size_t>(h) & mask;; i = (i + 1) & mask) {
    const std::uint64_t s = t[i];
    if (!s) return cap;
    if ((s & ~pointer_mask) == tag && key_of(s) == k) return i;
  }
}

// Puts a slot into the first free place from its home; there must be one.
inline void place(std::uint64_t* t, std::size_t cap, std::uint64_t slot, std::uint64_t h) {
  const std::size_t mask = cap - 1;
  std::size_t i = static_cast<std::size_t>(h) & mask;
  while (t[i]) i = (i + 1) & mask;
  t[i] = slot;
}

// Moves every slot of t (old_cap of them) into a new array of new_cap, frees t and
// returns the new array.
template <typename KeyOf>
std::uint64_t* rehash(std::uint64_t* t, std::size_t old_cap, std::size_t new_cap, KeyOf key_of) {
  std::uint64_t* fresh = allocate(new_cap);
  for (std::size_t i = 0; i < old_cap; ++i)
    if (t[i]) place(fresh, new_cap, t[i], hash(key_of(t[i])));
  std::free(t);
  return fresh;
}

// Empties slot i (its block is the caller's) with backward-shift deletion: slots after
// the hole move back into it when the hole lies between their home and their place.
template <typename KeyOf>
void erase(std::uint64_t* t, std::size_t cap, std::size_t i, KeyOf key_of) {
  t[i] = 0;
  const std::size_t mask = cap - 1;
  for (std::size_t j = (i + 1) & mask; t[j]; j = (j + 1) & mask) {
    const std::size_t home = static_cast<std::size_t>(hash(key_of(t[j]))) & mask;
    // Move j into the hole unless its home lies cyclically in (i, j].
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t[i] = t[j];
      t[j] = 0;
      i = j;
    }
  }
}

// The capacity to shrink to after a removal left size keys in cap slots, or cap.
inline std::size_t shrunk_capacity(std::size_t cap, std::size_t size) {
  if (cap <= min_capacity || size * 8 >= cap) return cap;
  const std::size_t c = capacity_for(size * 2);
  return c < cap ? c : cap;
}

// A random full slot of a table that is not empty.
inline std::size_t random_slot(const std::uint64_t* t, std::size_t cap) {
  const std::size_t mask = cap - 1;
  for (;;) {
    const std::size_t i = static_cast<std::size_t>(random_u64()) & mask;
    if (t[i]) return i;
  }
}

// One scan step from `cursor`: calls fn(slot) for the keys whose home is the cursor's
// slot, and returns the next cursor (0 when done).
template <typename KeyOf, typename Fn>
std::uint64_t scan_step(const std::uint64_t* t, std::size_t cap, std::uint64_t cursor, KeyOf key_of, Fn&& fn) {
  const std::uint64_t mask = cap - 1;
  const std::size_t home = static_cast<std::size_t>(cursor & mask);
  for (std::size_t j = home; t[j]; j = (j + 1) & mask)
    if ((hash(key_of(t[j])) & mask) == home) fn(t[j]);
  return next_cursor(cursor, mask);
}

}  // namespace respq::core::slot_table
