// stream_value: the stream type (XADD, XRANGE, XREAD, ...). Owner: the broker thread.
//
// Representation: entries live in blocks, each a byte string of entries packed one after
// another, kept in an ordered map keyed by the id of the block's first entry (Redis keeps
// listpacks in a radix tree keyed the same way). A block takes entries until it holds
// the node limit's entries (deleted ones included) or bytes of data, Redis's settings
// stream-node-max-entries (100) and stream-node-max-bytes (4096), so that approximate
// trimming ("MAXLEN ~"), which only drops whole blocks, drops what Redis drops for
// entries of the usual small sizes. A sealed block is shrunk to its size.
//
// One entry: flags (1 byte, bit 0: deleted), varint (ms - block key ms), varint seq,
// varint number of pairs, then per pair varint length + field bytes, varint length +
// value bytes. XDEL only sets the deleted flag (as Redis marks listpack entries); a block
// whose entries are all deleted is dropped.
//
// Consumer groups (XGROUP, XREADGROUP, XACK, XCLAIM, ...) are plain ordered maps, as
// Redis keeps them in radix trees: groups by name, a group's pending entries list (PEL)
// by id, its consumers by name, each consumer's own PEL as a set of ids. A pending entry
// names its consumer (Redis points at it), so the whole value copies by value (COPY).
// Names order bytewise, as rax keys do, so every listing comes out in Redis's order.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respq::core {

struct stream_id {
  std::uint64_t ms = 0, seq = 0;
  friend bool operator==(const stream_id&, const stream_id&) = default;
  friend auto operator<=>(const stream_id& a, const stream_id& b) {
    if (a.ms != b.ms) return a.ms <=> b.ms;
    return a.seq <=> b.seq;
  }
  bool is_zero() const { return ms == 0 && seq == 0; }
  bool is_max() const { return ms == UINT64_MAX && seq == UINT64_MAX; }
  // The next / previous id; false (id unchanged) at the ends.
  bool incr();
  bool decr();
  std::string str() const;
};

// A delivered, not yet acknowledged entry (Redis's streamNACK).
struct stream_nack {
  std::int64_t delivery_time = 0;   // unix ms of the last delivery
  std::uint64_t delivery_count = 0;
  std::string consumer;             // the owner; always a consumer of the group
};

struct stream_consumer {
  std::int64_t seen_time = 0;       // unix ms of its last read or claim
  std::set<stream_id> pel;          // the ids of the group PEL it owns
};

struct stream_group {
  // entries_read: the group's logical read counter, or invalid_entries_read when unknown.
  static constexpr long long invalid_entries_read = -1;
  stream_id last_id;                // last delivered id
  long long entries_read = invalid_entries_read;
  std::map<stream_id, stream_nack> pel;
  std::map<std::string, stream_consumer, std::less<>> consumers;

  // Removes one PEL entry from the group and from its consumer.
  void drop_nack(std::map<stream_id, stream_nack>::iterator it);
  // Makes `to` the owner of the entry (moving it between consumer PELs).
  void set_owner(std::map<stream_id, stream_nack>::iterator it, const std::string& to);
};

// When a block is full (streamAppendItem's test): max_bytes 0 is Redis's cap of 1 GB,
// max_entries 0 no limit on entries.
struct stream_node_limits {
  std::uint64_t max_bytes = 4096;
  std::uint64_t max_entries = 100;
};

class stream_value {
 public:

  struct entry {
    stream_id id;
    std::vector<std::pair<std::string_view, std::string_view>> fields;  // views into the block
  };

  std::uint64_t size() const { return length_; }
  bool empty() const { return length_ == 0; }

  // Appends an entry whose id is greater than every id in the stream (the caller
  // checks against last_id), in a new block when the last one is full by `limits`.
  // fields: field, value, field, value, ...
  void append(stream_id id, const std::vector<std::string_view>& fields, const stream_node_limits& limits = {});
  // Marks an entry deleted; false when there is no such live entry.
  bool erase(stream_id id);

  // Live entries with start <= id <= end, ascending (or descending when rev), at most
  // `count` (0: no limit). fn returns false to stop. Views stay valid until the next
  // change.
  void range(stream_id start, stream_id end, std::size_t count, bool rev,
             const std::function<bool(const entry&)>& fn) const;
  // The first / last live entry's id (false when empty).
  bool first_entry_id(stream_id& out) const;
  bool last_entry_id(stream_id& out) const;

  // Trimming, as Redis's streamTrim: whole blocks first; with approx, stop at the first
  // block that cannot go whole; limit (0: none) caps the entries removed with whole
  // blocks. Returns the number of entries removed.
  std::uint64_t trim_maxlen(std::uint64_t maxlen, bool approx, std::uint64_t limit);
  std::uint64_t trim_minid(stream_id minid, bool approx, std::uint64_t limit);

  // Stream metadata (XINFO STREAM, XSETID).
  stream_id last_id;               // the last id generated or set
  stream_id max_deleted_id;        // the greatest id removed by XDEL
  std::uint64_t entries_added = 0; // entries ever added

  // Consumer groups by name.
  std::map<std::string, stream_group, std::less<>> groups;

  // The lag bookkeeping of Redis 7.0 (t_stream.c): whether [start, +inf) may hold a
  // deleted entry (streamRangeHasTombstones), and the number of entries added up to `id`
  // when it can be known (streamEstimateDistanceFromFirstEverEntry; else invalid).
  bool range_has_tombstones(stream_id start) const;
  long long estimate_distance(stream_id id) const;
  // XINFO's lag of a group; false when it cannot be known (a null reply).
  bool group_lag(const stream_group& g, long long& lag) const;
  // The commands that recreate the groups on a stream that holds the entries, as Redis's
  // rewriteStreamObject writes them (AOF rewrite, the mirror's resync): per group
  // XGROUP CREATE key g last-id ENTRIESREAD n, then per consumer either XGROUP
  // CREATECONSUMER (no pending entries) or one XCLAIM ... TIME t RETRYCOUNT n JUSTID FORCE
  // per pending entry.
  void group_commands(std::string_view key, const std::function<void(const std::vector<std::string>&)>& emit) const;
  // Whether a live entry with this id exists.
  bool contains(stream_id id) const;

  std::size_t block_count() const { return blocks_.size(); }
  // The node count of Redis's radix tree holding the same block keys.
  std::size_t radix_nodes() const;
  std::size_t memory_usage() const;

 private:
  struct block {
    std::string data;
    std::uint32_t live = 0, total = 0;
  };
  using map_type = std::map<stream_id, block>;

  // Decodes the entry at data[pos]; returns the position after it.
  static std::size_t decode(const stream_id& key, const std::string& data, std::size_t pos, entry& e, bool& deleted,
                            bool with_fields);
  // Offsets of the entries of a block, in order.
  static void offsets(const block& b, std::vector<std::size_t>& out);
  // The block that may hold `id` (the last whose key <= id), or end().
  map_type::const_iterator block_for(stream_id id) const;
  // trim_maxlen (by_minid false) and trim_minid, one scan from the first block.
  std::uint64_t trim(bool by_minid, std::uint64_t maxlen, stream_id minid, bool approx, std::uint64_t limit);

  map_type blocks_;
  std::uint64_t length_ = 0;
};

}  // namespace respq::core
