// zset_value: the sorted set value. Members are unique byte strings, each with a double
// score; order is (score, member bytes), as Redis's.
//
// Two representations, as Redis 7.0 (OBJECT ENCODING names):
//  - "listpack": up to zset-max-listpack-entries members (128 by default) of at most
//    zset-max-listpack-value bytes (64 by default; encoding_limits.hpp) packed in one
//    sorted buffer, each entry <score f64><len><bytes> (len as in a node, below). Every
//    operation is a linear walk over the buffer (a few KB at the defaults), as Redis's.
//  - "skiplist" (the name Redis reports; the structure is an order-statistics index):
//    each member is one allocation <score f64><len><bytes> (~24 B for a short member).
//    The order is a vector of fixed-size chunks of node pointers (128 per chunk) with a
//    Fenwick tree of chunk sizes: rank, select and range start are O(log n); an insert or
//    delete moves at most one chunk's pointers, and a chunk split or removal rebuilds the
//    Fenwick tree, O(n / 128), once per ~64 inserts. Member -> node is an open-addressing
//    hash table of node pointers (linear probing from the top bits of the hash,
//    tombstones, so entries never move except on a resize). About 24 + 8..16 + 8..12 bytes per member, where Redis spends
//    ~100 (skiplist node, dict entry, sds).
// A listpack converts to the index when it grows past the limits, never back, except
// that results built by *STORE commands are compacted (compact_if_small) as Redis's
// zsetConvertToListpackIfNeeded does.
//
// Owner: the keyspace (broker thread). Views returned in entries are valid until the next
// modification. Scores are never NaN (the commands refuse them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace respq::core {

class zset_value {
 public:
  struct entry {
    std::string_view member;
    double score;
  };
  using visit_fn = std::function<void(const entry&)>;

  zset_value();
  zset_value(const zset_value& o);
  zset_value& operator=(const zset_value& o);
  zset_value(zset_value&& o) noexcept;
  zset_value& operator=(zset_value&& o) noexcept;
  ~zset_value();

  std::size_t size() const;
  bool empty() const { return size() == 0; }
  bool packed() const { return !big_; }
  const char* encoding_name() const { return big_ ? "skiplist" : "listpack"; }
  std::size_t memory_usage() const;

  // The score of a member; false when absent.
  bool score(std::string_view member, double& out) const;
  // Adds the member or changes its score; true when it was added. A listpack converts
  // when the count passes zset-max-listpack-entries or the member is longer than
  // zset-max-listpack-value.
  bool set(std::string_view member, double score);
  bool erase(std::string_view member);
  // 0-based rank in ascending order, or -1 when absent.
  long long rank(std::string_view member) const;
  entry at(std::size_t rank) const;
  // How many members sort before the first with score >= s (after_equal false) or
  // > s (after_equal true). Likewise by member bytes for lex ranges (which assume one
  // score for all members, as Redis's do).
  std::size_t score_rank(double s, bool after_equal) const;
  std::size_t lex_rank(std::string_view m, bool after_equal) const;
  // Visits n members from rank `from`: ascending, or descending (from, from-1, ...).
  void walk(std::size_t from, std::size_t n, bool reverse, const visit_fn& fn) const;
  // Removes ranks [from, from + n).
  void erase_ranks(std::size_t from, std::size_t n);
  // ZSCAN: visits about `count` members from the cursor; returns the next cursor (0 when
  // done). A listpack is returned whole. For the index the cursor is a position in hash
  // order, valid across resizes: a member present for the whole scan is returned at
  // least once (twice at most after the table shrank), as Redis promises.
  std::uint64_t scan(std::uint64_t cursor, std::size_t count, const visit_fn& fn) const;
  // Listpack -> index (when a limit is passed); index -> listpack when small enough (by
  // zset-max-listpack-entries, and -value unless `lengths` is false), as Redis's
  // zsetConvertToListpackIfNeeded.
  void convert_to_index();
  void compact_if_small(bool lengths = true);
  // An empty set about to receive up to n members, to be compacted after (a *STORE result,
  // a RESTORE): built in the index form when n passes 128, so that each insert is not a
  // walk of a listpack that zset-max-listpack-entries lets grow large.
  void expect(std::size_t n) {
    if (n > 128 && empty()) convert_to_index();
  }

  struct index;  // zset_value.cpp

 private:
  // Listpack: entries <score f64><len><bytes>, sorted.
  std::string packed_;
  std::uint32_t packed_n_ = 0;
  std::unique_ptr<index> big_;

  std::size_t packed_find(std::string_view member) const;  // offset or npos
  void packed_remove_at(std::size_t off);
  void packed_insert(std::string_view member, double score);
};

}  // namespace respq::core
