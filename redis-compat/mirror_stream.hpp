// mirror_stream: the pure logic of the mirror, with no I/O (unit-tested on its own).
//
//   key_filter          which keys are mirrored: mirror-keys globs, minus the keys the
//                       link owns on the upstream (shared queues, its own bookkeeping).
//   translate_effects   one loop turn of the command stream -> the commands the upstream
//                       runs so that its mirrored keys end up equal to respq's.
//   mirror_backlog      those commands, numbered by a monotonically increasing offset,
//                       held until the upstream acknowledged them, bounded in bytes.
//
// Translation. Effects are forwarded byte for byte when every key they name is mirrored
// and dropped when none is; consecutive LPUSHes (RPUSHes) to one key are merged into one
// (LPUSH k a; LPUSH k b == LPUSH k a b), so a busy queue costs the upstream one command
// per turn rather than one per push. Single-key commands are filtered by the effect's key
// without parsing; the rest are parsed and their keys found by the command table. The stream's own MULTI/EXEC markers are dropped: the sender
// wraps whole turns in its MULTI, so a turn's atomic groups stay atomic. PUBLISH (the
// effects with persist == false) is always forwarded: channels are not keys. An effect
// that names mirrored and unmirrored keys is rewritten when the result is known from the
// effect alone (DEL/UNLINK/MSET keep their mirrored keys; LMOVE/RPOPLPUSH from a
// mirrored list becomes the pop; RENAME away from a mirrored key becomes DEL). Otherwise
// (an element moved *into* a mirrored list from an unmirrored one, say) the mirrored key
// joins the turn's refresh set: later effects of the turn touching a refreshed key are
// dropped (their mirrored keys join the set too), and the turn ends with DEL + RPUSH/HSET
// /SET of each refreshed key's value as respq holds it now, at the end of the turn, which
// is exactly the state those effects produced. FLUSHALL/FLUSHDB ask for a resync (the
// upstream's mirrored keys must go, and only a scan of the upstream can find them), and
// so do MOVE and SWAPDB (whose outcome upstream depends on keys respq does not mirror).
//
// Databases. respq database n is mirrored to upstream database n + db_base (db_base is
// the upstream-db setting, the database the connection is in between turns). The
// stream's SELECTs set the database of the effects after them; the translation writes
// SELECT n + db_base before the first forwarded command of another database than the last
// one written, and ends the turn back in db_base. The refresh set is per database.
//
// Offsets. Offset n is the n-th command the mirror produced (after merging) since the
// process started (a resync consumes one more). The upstream stores "<run id>:<offset>" of the last
// applied turn in respq:mirror:<node-id>:offset, written in the same MULTI as the turn.
// After a reconnect the sender reads it back and resumes right after it when it is an
// entry boundary the backlog still holds; anything else means a resync.
//
// Thread: the broker thread (called from the mirror's stream sink and sender).
#pragma once

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "broker/core/command_stream.hpp"
#include "broker/core/keyspace.hpp"

namespace respq::core {
class server;
}

namespace respq::redis_compat {

class key_filter {
 public:
  key_filter() = default;
  explicit key_filter(std::vector<std::string> patterns);
  void exclude_key(std::string key);
  void exclude_prefix(std::string prefix);
  bool matches(std::string_view key) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  std::vector<std::string> patterns_;
  bool match_all_ = false;
  std::unordered_set<std::string, core::string_hash, std::equal_to<>> excluded_;
  std::vector<std::string> excluded_prefixes_;
};

// Commands for the upstream, RESP-encoded back to back, with each one's length (hiredis
// takes one command per call).
struct command_batch {
  std::string bytes;
  std::vector<std::uint32_t> lengths;

  std::size_t size() const { return lengths.size(); }
  bool empty() const { return lengths.empty(); }
  std::size_t memory() const { return bytes.size() + lengths.size() * sizeof(std::uint32_t); }
  void add_encoded(std::string_view command);
  void add(std::initializer_list<std::string_view> argv);
  void add(std::span<const std::string_view> argv);
  void append(const command_batch& other);
  void clear();
  // The i-th command, given the offset where it starts (walk with begin/next).
  template <typename Fn>
  void for_each(Fn&& fn) const {
    std::size_t at = 0;
    for (std::uint32_t len : lengths) {
      fn(std::string_view(bytes).substr(at, len));
      at += len;
    }
  }
};

// Appends the commands that make `key` hold `v` on the upstream: DEL, then RPUSH/HSET in
// chunks of at most `chunk` elements, or SET, then PEXPIREAT for a key with a deadline.
// nullptr: DEL only.
void append_snapshot(command_batch& out, std::string_view key, core::value* v, std::size_t chunk = 512);

// Splits one RESP command (an array of bulk strings, as the command stream writes them)
// into views of its arguments. False when malformed.
bool parse_command(std::string_view bytes, std::vector<std::string_view>& argv);

// What the translation needs from the broker.
class key_source {
 public:
  virtual ~key_source() = default;
  // The keys argv names, by the command table. False when the command is unknown.
  virtual bool keys(std::span<const std::string_view> argv, std::vector<std::string_view>& out) const = 0;
  // True when the command (any case) names exactly one key, argv[1], whatever its
  // arguments: its effects are filtered by that key without being parsed.
  virtual bool single_key(std::string_view name) const = 0;
  // The current value of a key (of database 0), or nullptr.
  virtual core::value* find(std::string_view key) const = 0;
  // The current value of a key of database `db`, or nullptr.
  virtual core::value* find_in(int db, std::string_view key) const { return db == 0 ? find(key) : nullptr; }
};

// The key_source of a running broker: keys by its command table, values from its keyspace.
class server_key_source final : public key_source {
 public:
  explicit server_key_source(core::server& s) : s_(s) {}
  bool keys(std::span<const std::string_view> argv, std::vector<std::string_view>& out) const override;
  bool single_key(std::string_view name) const override;
  core::value* find(std::string_view key) const override;
  core::value* find_in(int db, std::string_view key) const override;

 private:
  core::server& s_;
};

enum class translate_status { ok, resync };

translate_status translate_effects(std::string_view bytes, std::span<const core::effect_meta> effects,
                                   const key_filter& filter, const key_source& src, command_batch& out,
                                   int db_base = 0);

// The value stored in respq:mirror:<node-id>:offset.
std::string offset_value(std::string_view run_id, std::uint64_t offset);
// The offset in such a value when it was written by run `run_id`; nullopt otherwise.
std::optional<std::uint64_t> parse_offset_value(std::string_view value, std::string_view run_id);

class mirror_backlog {
 public:
  struct entry {
    std::uint64_t end = 0;  // offset of its last command; it holds (end - size, end]
    command_batch commands;
  };

  explicit mirror_backlog(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
  void set_limit(std::uint64_t limit_bytes) { limit_ = limit_bytes; }

  // Forgets everything; the next command gets offset + 1.
  void reset(std::uint64_t offset);
  // Appends a turn's commands. False when that would pass the byte limit: the backlog is
  // then emptied (offsets still advance) and the caller must resync.
  bool append(command_batch&& b);

  bool has_unsent() const { return sent_ < entries_.size(); }
  std::uint64_t unsent_bytes() const { return unsent_bytes_; }
  std::size_t unsent_index() const { return sent_; }
  std::size_t size() const { return entries_.size(); }
  const entry& at(std::size_t i) const { return entries_[i]; }
  // The sender handed entries [unsent_index(), upto) to the connection.
  void mark_sent(std::size_t upto);
  // How many entries from unsent_index() fit in one send (at least one).
  std::size_t next_send_count(std::size_t max_commands, std::size_t max_bytes) const;

  // The upstream applied everything up to `offset` (an entry end): frees those entries.
  void acked(std::uint64_t offset);
  // After a reconnect the upstream says it applied up to `offset`. True when the backlog
  // can continue from there (offset is base() or an entry end): the entries up to it are
  // freed and everything after it is unsent again. False: a resync is needed.
  bool resume_from(std::uint64_t offset);

  std::uint64_t base() const { return base_; }  // applied by the upstream (as far as known)
  std::uint64_t head() const { return head_; }  // last offset produced
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t limit() const { return limit_; }

 private:
  std::deque<entry> entries_;
  std::size_t sent_ = 0;
  std::uint64_t base_ = 0, head_ = 0, bytes_ = 0, unsent_bytes_ = 0, limit_;
};

}  // namespace respq::redis_compat
