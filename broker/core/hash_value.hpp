// hash_value: the hash value (HSET, HGET, ...; and every HTTP queue's <queue>:inflight).
//
// One heap block per field holds the field's name and its value together:
//
//     [LEB128 field length][LEB128 value length][field bytes][value bytes]
//
// and an open-addressing table of 8-byte slots (slot_table.hpp, shared with set_value)
// points to the blocks, each slot tagged with 16 bits of the field's hash. Per field that
// is the block (2 bytes of lengths beside the bytes, rounded to the allocator's size
// class) plus 8 to 16 bytes of table, against a std::unordered_map node (pair of two
// std::string, next pointer, cached hash: 80 bytes), two string buffers beyond 15 bytes
// and a bucket. A value set again is written over the old one in the same block when it
// has the same length prefix size (realloc keeps the block where the allocator can).
//
// Values are stored as the caller gives them; the stored form of hash values (packed
// task envelopes, the 0xFF prefix) is keyspace.hpp's hash_store / hash_text.
//
// A small hash (at most hash-max-listpack-entries fields, 512 by default, none of its
// fields and values longer than hash-max-listpack-value, 64 by default: see
// encoding_limits.hpp) keeps its slots in one array in the order the fields were added,
// found by a walk that compares the slots' hash tags first: it iterates, and so answers
// HGETALL, HKEYS, HSCAN, DUMP and the AOF rewrite, in insertion order, as Redis does (a
// value set again keeps its place; a field deleted closes the gap). Past those bounds it
// becomes the table below for good (as Redis converts a listpack to a hashtable once),
// until it is emptied. A value's length is the client's: a stored value that begins with
// 0xFF 0x00 (keyspace.hpp's hash_store) counts 2 bytes less, and a packed task envelope
// (0xFF then another byte: its JSON is longer than 64 bytes) counts as long.
//
// Scan (HSCAN) is slot_table's: by home slot with Redis's reverse-binary cursor, so a
// field present for the whole scan is returned at least once across resizes. A small
// hash's step returns every field, with cursor 0.
//
// Owner: the keyspace (broker thread). An entry's views (field, value) point into its
// block: valid until the hash changes (any set, assign or erase; a resize moves no block,
// but an erase may move another entry's slot, so iterators are invalidated too).
//
// Costs: find, set, erase O(1) expected (a small hash: O(n) over its 8-byte slots, at
// most 512 by default, comparing hash tags first, as Redis's listpack walk is O(n)). A
// resize rehashes every field at once (a latency spike for very large hashes; Redis
// rehashes incrementally).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "broker/core/slot_table.hpp"

namespace respq::core {

class hash_value {
 public:
  struct entry {
    std::string_view field;
    std::string_view value;
  };

  // Walks the full slots in table order; yields entries by value.
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = entry;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = entry;

    iterator() = default;
    entry operator*() const { return entry_of(t_[i_]); }
    iterator& operator++() {
      ++i_;
      skip();
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& o) const { return i_ == o.i_; }
    bool operator!=(const iterator& o) const { return i_ != o.i_; }

   private:
    friend class hash_value;
    iterator(const std::uint64_t* t, std::size_t cap, std::size_t i) : t_(t), cap_(cap), i_(i) { skip(); }
    void skip() {
      while (i_ < cap_ && !t_[i_]) ++i_;
    }
    const std::uint64_t* t_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t i_ = 0;
  };

  hash_value() = default;
  hash_value(const hash_value& o);
  hash_value& operator=(const hash_value& o);
  hash_value(hash_value&& o) noexcept;
  hash_value& operator=(hash_value&& o) noexcept;
  ~hash_value();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Heap bytes held: the table and the blocks (rounded to 16-byte classes).
  std::size_t memory_usage() const;

  iterator begin() const { return iterator(slots_, cap_, 0); }
  iterator end() const { return iterator(slots_, cap_, cap_); }
  iterator find(std::string_view field) const {
    return iterator(slots_, cap_, find_index(field, slot_table::hash(field)));
  }
  bool contains(std::string_view field) const { return find(field) != end(); }

  // Sets a field's value; true when the field is new. A long field or value makes a small
  // hash a table unless `lengths_convert` is false (RESTORE of a listpack, which Redis
  // keeps as one whatever its lengths).
  bool set(std::string_view field, std::string_view value, bool lengths_convert = true);
  // set() of a field the caller knows is absent (RESTORE checks for duplicates itself):
  // no walk of a small hash to find it.
  void add_new(std::string_view field, std::string_view value, bool lengths_convert = true);
  // Sets the value of the entry at `it` (from find or a walk); `it` stays valid, the views
  // of that entry do not. (A small hash stays in insertion order even if the value is
  // long: set() converts it.)
  void assign(iterator it, std::string_view value);
  // True when the field was there.
  bool erase(std::string_view field);
  void erase(iterator it);
  void clear();

  // A uniformly chosen entry of a hash that is not empty.
  entry random_entry() const {
    if (ordered_) return entry_of(slots_[slot_table::random_u64() % size_]);
    return entry_of(slots_[slot_table::random_slot(slots_, cap_)]);
  }

  // One HSCAN step from `cursor`: calls fn(entry) for the fields whose home is the
  // cursor's slot (a small hash: for every field); returns the next cursor (0 when done).
  template <typename Fn>
  std::uint64_t scan_step(std::uint64_t cursor, Fn&& fn) const {
    if (!slots_) return 0;
    if (ordered_) {
      for (std::size_t i = 0; i < size_; ++i) fn(entry_of(slots_[i]));
      return 0;
    }
    return slot_table::scan_step(slots_, cap_, cursor, field_of, [&](std::uint64_t slot) { fn(entry_of(slot)); });
  }

  // Whether the fields are kept in insertion order (a small hash, above).
  bool ordered() const { return ordered_; }

 private:
  static entry entry_of(std::uint64_t slot);
  static std::string_view field_of(std::uint64_t slot) { return entry_of(slot).field; }
  static std::size_t block_size(std::size_t field_len, std::size_t value_len);
  // A new block holding the field and the value.
  static unsigned char* make_block(std::string_view field, std::string_view value);
  // Adds a field known to be absent (h: its hash; long_entry: too long for a small hash).
  void insert_new(std::string_view field, std::string_view value, std::uint64_t h, bool long_entry);
  void grow_for(std::size_t n);
  void remove_slot(std::size_t i);
  // The slot of field (hash h), or cap_ when absent.
  std::size_t find_index(std::string_view field, std::uint64_t h) const;
  // A small hash becomes a table (for good, until emptied).
  void to_table();

  std::uint64_t* slots_ = nullptr;  // cap_ slots (a power of two), or null while empty
  std::size_t cap_ = 0;
  std::size_t size_ = 0;
  std::size_t block_bytes_ = 0;  // bytes of blocks, rounded (for memory_usage)
  bool ordered_ = true;          // slots_[0, size_) in insertion order, the rest empty
};

}  // namespace respq::core
