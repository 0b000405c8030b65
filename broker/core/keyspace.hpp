// keyspace: one numbered database (the server holds `databases` of them, 0..N-1; SWAPDB
// exchanges two, and `index` follows). Owner: the broker thread; no locks.
//
// Values are lists (packed_list), strings, hashes (hash_value), sets (set_value), sorted sets
// (zset_value) and streams (stream_value). Lists are what respq is for;
// strings and hashes exist because operators and apps expect the basic ones, and the HTTP
// queues keep their in-flight table as a hash (<queue>:inflight) so it is visible,
// persisted and mirrored like any other key.
//
// Expiry: a value may carry a deadline (unix milliseconds). find() treats a key whose
// deadline has passed as gone, as Redis's lookups do: it hands the key to the expire
// handler (the server, which propagates a DEL and tells WATCH) and returns nullptr.
// peek() looks without expiring, for code that copies what the keyspace holds (the AOF
// rewrite, the mirror). An ordered index of deadlines lets the server's cron expire keys
// nobody reads, exactly when they are due. While an AOF is loaded nothing expires.
//
// SCAN cursors: every key gets a creation sequence number and an ordered index maps
// sequence -> key. A cursor is the next sequence to visit, so a key that exists for the
// whole scan is returned exactly once (Redis promises "at least once"), and new keys
// may or may not be returned, as in Redis.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "broker/core/hash_value.hpp"
#include "broker/core/packed_list.hpp"
#include "broker/core/set_value.hpp"
#include "broker/core/stream_value.hpp"
#include "broker/core/zset_value.hpp"

namespace respq::core {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Hash values as stored. The task manager keeps the envelope of every task in custody
// packed (tasks::envelope_packed: binary fields beside the payload) in <queue>:inflight;
// whatever shows a hash value (the hash commands, the AOF rewrite, the mirror) shows it
// through hash_text, which renders that envelope as its JSON, byte for byte what the
// command stream carried. A value a client writes is stored as given, unless it begins
// with the byte 0xFF: then behind the prefix 0xFF 0x00, so that no client value is ever
// read as a packed one (and hash_text takes the prefix off).
std::string hash_store(std::string_view v);
class hash_text {
 public:
  hash_text(std::string_view field, std::string_view stored);
  hash_text(const hash_text&) = delete;
  hash_text& operator=(const hash_text&) = delete;
  std::string_view view() const { return view_; }
  operator std::string_view() const { return view_; }
  // Whether the stored form is the text itself (most values).
  static bool plain(std::string_view stored) { return stored.empty() || stored[0] != '\xff'; }

 private:
  std::string owned_;
  std::string_view view_;
};

enum class value_type { string, list, hash, set, zset, stream };

// What Redis would call a string's encoding, where its content alone does not tell:
// APPEND to an existing string and SETRANGE leave a "raw" string, INCRBYFLOAT a string
// that is never "int" even when it looks like one (see encoding_name).
enum class string_encoding : std::uint8_t { by_content, not_int, raw };

struct value {
  std::variant<std::string, packed_list, hash_value, set_value, zset_value, stream_value> data;
  std::uint64_t seq = 0;        // creation order, for SCAN
  std::int64_t expire_at = 0;   // unix milliseconds; 0: no expiry
  std::uint32_t lru = 0;        // keyspace::lru_clock() at the last lookup (OBJECT IDLETIME; wraps after 13 years)
  string_encoding str_enc = string_encoding::by_content;

  value_type type() const { return static_cast<value_type>(data.index()); }
  std::string& str() { return std::get<std::string>(data); }
  packed_list& list() { return std::get<packed_list>(data); }
  hash_value& hash() { return std::get<hash_value>(data); }
  set_value& set() { return std::get<set_value>(data); }
  zset_value& zset() { return std::get<zset_value>(data); }
  stream_value& stream() { return std::get<stream_value>(data); }
};

const char* type_name(value_type t);
// Redis 7.0's OBJECT ENCODING name for what the value holds. respq's own representations
// differ (one packed list type, for instance): the name is the one Redis would report
// for the same content, so tools and tests that read encodings see Redis's thresholds
// (integers and embstr strings up to 20 and 44 bytes). A hash is a listpack while it
// keeps insertion order (hash_value.hpp: up to 512 fields of up to 64 bytes), a hashtable
// for good after, as in Redis.
const char* encoding_name(const value& v);
// Hashes Redis would keep as a listpack (HSCAN answers them whole): those in insertion order.
bool hash_is_small(const hash_value& h);
// A deep copy of a value's data (COPY); the deadline and creation order are the caller's.
decltype(value::data) copy_data(const value& v);

class keyspace {
 public:
  using map_type = std::unordered_map<std::string, value, string_hash, std::equal_to<>>;

  // The key, or nullptr; a key past its deadline is expired first (see above). touch
  // false: its access stamp stays (OBJECT: Redis's LOOKUP_NOTOUCH).
  value* find(std::string_view key, bool touch = true) {
    auto it = map_.find(key);
    if (it == map_.end()) return missed(key);
    if (it->second.expire_at != 0 && is_expired(it->second)) [[unlikely]] {
      if (report_misses && *report_misses) [[unlikely]] {
        // `key` may view the stored key itself, which expire() frees: report a copy.
        const std::string k(key);
        expire(it->first);
        return missed(k);
      }
      expire(it->first);
      if (count_reads && *count_reads) ++*read_misses;
      return nullptr;
    }
    if (count_reads && *count_reads) ++*read_hits;
    if (touch) it->second.lru = lru_clock_;
    return &it->second;
  }
  // The key as stored, even past its deadline.
  value* peek(std::string_view key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  // Creates the key with a default-constructed value of the given type (an existing key
  // is replaced, deadline included).
  value& create(std::string_view key, value_type t);
  bool erase(std::string_view key);
  // Moves the value of `from` to `to`, replacing what `to` held; the deadline moves too.
  void rename(std::string_view from, std::string_view to);
  void clear();
  std::size_t size() const { return map_.size(); }
  const map_type& all() const { return map_; }

  // Calls fn(key, value) for keys from cursor on, until `count` keys were visited;
  // returns the next cursor (0 when done).
  std::uint64_t scan(std::uint64_t cursor, std::size_t count,
                     const std::function<void(const std::string&, value&)>& fn);

  // A random key (RANDOMKEY), or nullptr when empty. Keys past their deadline are
  // expired on the way, as Redis's dbRandomKey does.
  const std::string* random_key();

  // ---- access clock (OBJECT IDLETIME) ----
  // Tenths of a second on a monotonic clock (lru_ticks_per_second), advanced by the
  // server's cron; find() stamps each key with it, so a lookup costs one store and no
  // clock read. Finer than Redis's one-second LRU clock, so a key looked up less than a
  // second ago never reads as idle 1 because a second boundary fell in between.
  static constexpr std::uint32_t lru_ticks_per_second = 10;
  static std::uint32_t lru_now();
  static void tick_lru_clock() { lru_clock_ = lru_now(); }
  static std::uint32_t lru_clock() { return lru_clock_; }

  // ---- expiry ----
  static std::int64_t now_ms();
  // Deadlines are compared with a clock the server sets once per command while any key
  // has a deadline (an EXEC and the blocked clients it serves share its command's) and
  // per cron tick, as Redis 7 fixes its time per command: a key cannot vanish between two
  // lookups of one command.
  void update_clock() { clock_ms_ = now_ms(); }
  std::int64_t clock() const { return clock_ms_; }
  bool is_expired(const value& v) const { return v.expire_at != 0 && !expiry_paused_ && clock_ms_ >= v.expire_at; }
  // Sets (at_ms > 0) or removes (0) the deadline of an existing key.
  void set_expire(std::string_view key, std::int64_t at_ms);
  std::size_t volatile_keys() const { return deadlines_.size(); }
  // Mean time to live of the keys with a deadline, in milliseconds (0 when none).
  std::int64_t avg_ttl_ms() const;
  // Expires keys whose deadline passed, at most `max` of them; returns how many.
  std::size_t expire_due(std::size_t max);
  // Keys whose deadline passed and that are still here, counted up to `limit`.
  std::size_t count_due(std::size_t limit) const;
  // The server's handler for an expired key: propagates it, then calls erase().
  std::function<void(const std::string& key)> on_expire;
  // Keyspace "keymiss" events: while *report_misses is true (the server sets it while a
  // read command runs, as Redis's lookupKeyRead), a find() that finds nothing tells on_miss.
  std::function<void(std::string_view key)> on_miss;
  const bool* report_misses = nullptr;
  // INFO keyspace_hits and keyspace_misses: while *count_reads is true (the server sets it
  // while a read command runs, as Redis counts its lookupKeyRead), a find() counts.
  const bool* count_reads = nullptr;
  std::uint64_t* read_hits = nullptr;
  std::uint64_t* read_misses = nullptr;
  // Told when a key comes into being (create() of a key that did not exist, the new name
  // of rename()): Redis's "new" keyspace event.
  std::function<void(const std::string& key)> on_new;
  // While an AOF loads, keys keep their deadlines but nothing expires (as in Redis).
  void pause_expiry(bool paused) { expiry_paused_ = paused; }
  // CLIENT PAUSE: a key past its deadline reads as gone but is not removed (no event, no
  // DEL to the AOF), and the cron expires nothing, until this is set back.
  void defer_expiry(bool deferred) { expiry_deferred_ = deferred; }
  // The database number this keyspace currently is (the expire handler needs it).
  int index = 0;
  // Told when a stream value is removed or replaced (erase, create over it, rename away,
  // clear), while *stream_watchers (clients blocked in XREADGROUP, the server's count)
  // is non-zero: those clients must learn that their stream is gone.
  std::function<void(int db, const std::string& key)> on_stream_removed;
  const std::size_t* stream_watchers = nullptr;

 private:
  void expire(const std::string& key);
  value* missed(std::string_view key) {
    if (count_reads && *count_reads) ++*read_misses;
    if (report_misses && *report_misses) [[unlikely]] on_miss(key);
    return nullptr;
  }
  void forget_deadline(value& v);  // and clears v.expire_at
  void removing(const std::string& key, const value& v) {
    if (stream_watchers && *stream_watchers && v.type() == value_type::stream && on_stream_removed)
      on_stream_removed(index, key);
  }

  map_type map_;
  std::map<std::uint64_t, const std::string*> by_seq_;
  std::uint64_t next_seq_ = 1;
  std::set<std::pair<std::int64_t, std::uint64_t>> deadlines_;  // (expire_at, seq)
  long double deadline_sum_ = 0;                                 // for avg_ttl
  bool expiry_paused_ = false;
  bool expiry_deferred_ = false;
  std::int64_t clock_ms_ = now_ms();
  static inline std::uint32_t lru_clock_ = lru_now();
};

}  // namespace respq::core
