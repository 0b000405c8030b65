// set_value: the set value (SADD, SMEMBERS, ...), with Redis 7.0's two encodings.
//
//  - intset: while every member is an integer as Redis's string2ll reads it and there are
//    at most set-max-intset-entries of them (512 by default: encoding_limits.hpp), a
//    sorted array of 16-, 32- or 64-bit integers (the width of the widest member; it only
//    widens). Membership is a binary search.
//  - hashtable: otherwise (and for good: like Redis, a set never goes back to intset).
//    An open-addressing table of 8-byte slots (slot_table.hpp, shared with hash_value). A
//    slot points to a heap blob (a LEB128 length, then the member's bytes) and carries 16
//    bits of the member's hash. The table holds at most 3/4 of its slots and shrinks
//    below 1/8.
//    Per member that is the blob (a 14-byte member: a 16-byte block with mimalloc) plus
//    8-16 bytes of table, against Redis's dictEntry (24) + sds (24) + bucket (8).
//
// Random members: a uniformly chosen member (a random intset index, or random slots until
// a full one: at least 1/8 of the slots are full, so few tries), unlike Redis's
// bucket-then-chain pick, which favours members of short chains.
//
// Scan (SSCAN): an intset is returned whole with cursor 0, as Redis does for small
// encodings. A table is scanned by home bucket with Redis's reverse-binary cursor
// (slot_table::scan_step): a member present from the first call to the last is returned
// at least once, even if the table grew or shrank between calls; members may be returned
// more than once.
//
// Owner: the keyspace (broker thread). A string_view handed out (member callbacks,
// member_at) is valid until the set changes or, for intset members, until the callback
// returns / the buffer is reused.
//
// Costs: insert, erase, contains O(1) expected for a table, O(log n) search plus O(n)
// move for an intset (n <= set-max-intset-entries). A resize rehashes every member at
// once: a latency spike for very large sets (Redis rehashes incrementally).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "broker/core/slot_table.hpp"

namespace respq::core {

class set_value {
 public:
  // Room to spell an intset member (at most 20 characters).
  struct member_buf {
    char data[24];
  };

  set_value() = default;
  set_value(const set_value& o);
  set_value& operator=(const set_value& o);
  set_value(set_value&& o) noexcept;
  set_value& operator=(set_value&& o) noexcept;
  ~set_value();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool is_intset() const { return width_ != 0 || data_ == nullptr; }
  // Redis's OBJECT ENCODING for the current representation.
  const char* encoding_name() const { return is_intset() ? "intset" : "hashtable"; }
  // Heap bytes held (table or array, blobs rounded to the allocator's 16-byte classes).
  std::size_t memory_usage() const;

  bool contains(std::string_view m) const;
  // True when m was added (false: already a member).
  bool insert(std::string_view m);
  // True when m was removed.
  bool erase(std::string_view m);
  void clear();
  // Makes room for n members in total (a table: no resize while it fills up to n).
  void reserve(std::size_t n);

  // Calls fn(std::string_view) for every member (intset: ascending; table: slot order).
  template <typename Fn>
  void for_each(Fn&& fn) const {
    member_buf buf;
    if (is_intset()) {
      for (std::size_t i = 0; i < size_; ++i) fn(format_int(int_at(i), buf));
    } else {
      const std::uint64_t* t = slots();
      for (std::size_t i = 0; i < cap_; ++i)
        if (t[i]) fn(blob_view(t[i]));
    }
  }

  // Positions name a member until the next change: an intset index or a table slot.
  // random_position() needs a non-empty set.
  std::size_t random_position() const;
  // Every position is below position_limit(); occupied() says which hold a member.
  std::size_t position_limit() const { return is_intset() ? size_ : cap_; }
  bool occupied(std::size_t pos) const { return is_intset() ? pos < size_ : slots()[pos] != 0; }
  // The random source behind random_position (seeded per process).
  static std::uint64_t random_u64();
  std::string_view member_at(std::size_t pos, member_buf& buf) const;
  void erase_at(std::size_t pos);
  // Removes a random member and returns it (non-empty set).
  std::string pop_random();

  // One SSCAN step from `cursor`: calls fn(member) for what it visits and returns the next
  // cursor (0 when done). An intset is visited whole. A table step visits one home bucket.
  template <typename Fn>
  std::uint64_t scan_step(std::uint64_t cursor, Fn&& fn) const {
    if (is_intset()) {
      for_each(fn);
      return 0;
    }
    return slot_table::scan_step(slots(), cap_, cursor, blob_view, [&](std::uint64_t slot) { fn(blob_view(slot)); });
  }

  // Redis's string2ll: is m an integer an intset can hold?
  static bool as_integer(std::string_view m, long long& out);
  // Whether Redis would build this set as an intset: every member an integer, and at most
  // set-max-intset-entries of them.
  bool intset_eligible() const;
  // A non-empty intset becomes a table, for good (Redis's setTypeConvert).
  void make_table() {
    if (is_intset() && size_ > 0) to_table(size_);
  }

 private:
  // intset
  long long int_at(std::size_t i) const;
  void set_int_at(std::size_t i, long long v);
  bool find_int(long long v, std::size_t& pos) const;
  bool insert_int(long long v);
  void to_table(std::size_t capacity_for);
  static std::string_view format_int(long long v, member_buf& buf);
  // table
  static std::string_view blob_view(std::uint64_t slot);
  static std::uint64_t hash_bytes(std::string_view s);
  static std::uint64_t hash_of(std::uint64_t slot) { return hash_bytes(blob_view(slot)); }
  static std::size_t blob_size(std::size_t len);
  std::size_t find_slot(std::string_view m, std::uint64_t h) const;  // cap_ when absent
  void place(std::uint64_t slot, std::uint64_t h);
  void rehash(std::size_t new_cap);
  void erase_slot(std::size_t i);
  void maybe_shrink();

  // intset: data_ holds cap_ integers of width_ bytes (2, 4 or 8; 0 while nothing was
  // ever allocated). table: data_ holds cap_ (a power of two) slots, width_ == 0.
  unsigned char* ints() const { return static_cast<unsigned char*>(data_); }
  std::uint64_t* slots() const { return static_cast<std::uint64_t*>(data_); }
  void* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t size_ = 0;
  std::size_t blob_bytes_ = 0;  // table: bytes of member blobs (for memory_usage)
  std::uint8_t width_ = 0;
};

}  // namespace respq::core
