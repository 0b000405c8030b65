// keyspace: the one database (db 0). Owner: the broker thread; no locks.
//
// Values are lists (packed_list), strings and hashes. Lists are what respq is for;
// strings and hashes exist because operators and apps expect the basic ones, and the HTTP
// queues keep their in-flight table as a hash (<queue>:inflight) so it is visible,
// persisted and mirrored like any other key.
//
// SCAN cursors: every key gets a creation sequence number and an ordered index maps
// sequence -> key. A cursor is the next sequence to visit, so a key that exists for the
// whole scan is returned exactly once (Redis promises "at least once"), and new keys
// may or may not be returned, as in Redis.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "broker/core/packed_list.hpp"

namespace respq::core {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

using hash_value = std::unordered_map<std::string, std::string, string_hash, std::equal_to<>>;

enum class value_type { string, list, hash };

struct value {
  std::variant<std::string, packed_list, hash_value> data;
  std::uint64_t seq = 0;  // creation order, for SCAN

  value_type type() const { return static_cast<value_type>(data.index()); }
  std::string& str() { return std::get<std::string>(data); }
  packed_list& list() { return std::get<packed_list>(data); }
  hash_value& hash() { return std::get<hash_value>(data); }
};

const char* type_name(value_type t);

class keyspace {
 public:
  using map_type = std::unordered_map<std::string, value, string_hash, std::equal_to<>>;

  value* find(std::string_view key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  // Creates the key with a default-constructed value of the given type.
  value& create(std::string_view key, value_type t);
  bool erase(std::string_view key);
  // Moves the value of `from` to `to`, replacing what `to` held.
  void rename(std::string_view from, std::string_view to);
  void clear();
  std::size_t size() const { return map_.size(); }
  const map_type& all() const { return map_; }

  // Calls fn(key, value) for keys from cursor on, until `count` keys were visited;
  // returns the next cursor (0 when done).
  std::uint64_t scan(std::uint64_t cursor, std::size_t count,
                     const std::function<void(const std::string&, value&)>& fn);

 private:
  map_type map_;
  std::map<std::uint64_t, const std::string*> by_seq_;
  std::uint64_t next_seq_ = 1;
};

}  // namespace respq::core
