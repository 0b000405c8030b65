// keyspace: see keyspace.hpp.
#include "broker/core/keyspace.hpp"

#include <time.h>

#include "broker/core/random_pick.hpp"
#include "broker/core/server.hpp"
#include "tasks/records.hpp"

namespace respq::core {

const char* type_name(value_type t) {
  switch (t) {
    case value_type::string: return "string";
    case value_type::list: return "list";
    case value_type::hash: return "hash";
    case value_type::set: return "set";
    case value_type::zset: return "zset";
    case value_type::stream: return "stream";
  }
  return "none";
}

std::string hash_store(std::string_view v) {
  if (v.empty() || v[0] != '\xff') return std::string(v);
  std::string out;
  out.reserve(v.size() + 2);
  out += '\xff';
  out += '\0';
  out += v;
  return out;
}

hash_text::hash_text(std::string_view field, std::string_view stored) {
  if (plain(stored)) {
    view_ = stored;
  } else if (stored.size() >= 2 && stored[1] == '\0') {
    view_ = stored.substr(2);
  } else if (tasks::is_packed_envelope(stored)) {
    owned_ = tasks::packed_envelope_json(field, stored);
    view_ = owned_;
  } else {
    view_ = stored;
  }
}

bool hash_is_small(const hash_value& h) { return h.ordered(); }

const char* encoding_name(const value& v) {
  switch (v.type()) {
    case value_type::string: {
      const std::string& s = std::get<std::string>(v.data);
      long long n;
      if (v.str_enc == string_encoding::raw) return "raw";
      if (v.str_enc == string_encoding::by_content && s.size() <= 20 && string2ll(s, n)) return "int";
      return s.size() <= 44 ? "embstr" : "raw";
    }
    case value_type::list: return "quicklist";  // Redis 7.0's only list encoding
    case value_type::hash: return hash_is_small(std::get<hash_value>(v.data)) ? "listpack" : "hashtable";
    case value_type::set: return std::get<set_value>(v.data).encoding_name();
    case value_type::zset: return std::get<zset_value>(v.data).encoding_name();
    case value_type::stream: return "stream";
  }
  return "unknown";
}

decltype(value::data) copy_data(const value& v) {
  switch (v.type()) {
    case value_type::list: {
      decltype(value::data) out{std::in_place_type<packed_list>};
      packed_list& dst = std::get<packed_list>(out);
      const packed_list& src = std::get<packed_list>(v.data);
      if (!src.empty())
        for (auto cur = src.seek(0); cur.valid(); cur.next()) dst.push_back(cur.value());
      return out;
    }
    case value_type::string: return decltype(value::data){std::in_place_type<std::string>, std::get<std::string>(v.data)};
    case value_type::hash: return decltype(value::data){std::in_place_type<hash_value>, std::get<hash_value>(v.data)};
    case value_type::set: return decltype(value::data){std::in_place_type<set_value>, std::get<set_value>(v.data)};
    case value_type::zset: return decltype(value::data){std::in_place_type<zset_value>, std::get<zset_value>(v.data)};
    case value_type::stream: return decltype(value::data){std::in_place_type<stream_value>, std::get<stream_value>(v.data)};
  }
  return {};
}

std::uint32_t keyspace::lru_now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint32_t>(ts.tv_sec * lru_ticks_per_second +
                                    ts.tv_nsec / (1000000000 / lru_ticks_per_second));
}

const std::string* keyspace::random_key() {
  // As dbRandomKey: a key found past its deadline is expired and another one drawn. While
  // expiry is deferred nothing is removed: after 100 such draws the first live key in
  // table order is answered, or none (a keyspace of expired keys only would draw forever).
  for (int deferred_draws = 0; !map_.empty();) {
    auto it = random_element(map_);
    if (it->second.expire_at != 0 && is_expired(it->second)) {
      if (expiry_deferred_ && ++deferred_draws == 100) {
        for (const auto& [k, v] : map_)
          if (!is_expired(v)) return &k;
        return nullptr;
      }
      expire(it->first);
      continue;
    }
    return &it->first;
  }
  return nullptr;
}

value& keyspace::create(std::string_view key, value_type t) {
  // A key past its deadline is expired first, as Redis's write lookup does: its
  // "expired" event and count, then the new key's "new".
  if (auto old = map_.find(key); old != map_.end() && is_expired(old->second)) expire(std::string(key));
  auto [it, inserted] = map_.try_emplace(std::string(key));
  value& v = it->second;
  if (!inserted) {
    removing(it->first, v);
    by_seq_.erase(v.seq);
    forget_deadline(v);
  }
  switch (t) {
    case value_type::string: v.data.emplace<std::string>(); break;
    case value_type::list: v.data.emplace<packed_list>(); break;
    case value_type::hash: v.data.emplace<hash_value>(); break;
    case value_type::set: v.data.emplace<set_value>(); break;
    case value_type::zset: v.data.emplace<zset_value>(); break;
    case value_type::stream: v.data.emplace<stream_value>(); break;
  }
  v.seq = next_seq_++;
  v.lru = lru_clock_;
  v.str_enc = string_encoding::by_content;
  by_seq_.emplace(v.seq, &it->first);
  if (inserted && on_new) on_new(it->first);
  return v;
}

bool keyspace::erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  removing(it->first, it->second);
  by_seq_.erase(it->second.seq);
  forget_deadline(it->second);
  map_.erase(it);
  return true;
}

void keyspace::rename(std::string_view from, std::string_view to) {
  auto it = map_.find(from);
  if (it == map_.end() || from == to) return;
  removing(it->first, it->second);
  value v = std::move(it->second);
  by_seq_.erase(v.seq);
  const std::int64_t deadline = v.expire_at;
  forget_deadline(v);
  map_.erase(it);
  erase(to);
  auto [nit, inserted] = map_.try_emplace(std::string(to), std::move(v));
  (void)inserted;
  nit->second.seq = next_seq_++;
  by_seq_.emplace(nit->second.seq, &nit->first);
  if (deadline) set_expire(nit->first, deadline);
  if (on_new) on_new(nit->first);  // as Redis, which deletes the old value and adds the key
}

void keyspace::clear() {
  if (stream_watchers && *stream_watchers)
    for (const auto& [k, v] : map_) removing(k, v);
  map_.clear();
  by_seq_.clear();
  deadlines_.clear();
  deadline_sum_ = 0;
}

std::int64_t keyspace::now_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void keyspace::forget_deadline(value& v) {
  if (!v.expire_at) return;
  deadlines_.erase({v.expire_at, v.seq});
  deadline_sum_ -= static_cast<long double>(v.expire_at);
  if (deadlines_.empty()) deadline_sum_ = 0;  // no rounding left behind
  v.expire_at = 0;
}

void keyspace::set_expire(std::string_view key, std::int64_t at_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  value& v = it->second;
  forget_deadline(v);
  v.expire_at = at_ms > 0 ? at_ms : 0;
  if (!v.expire_at) return;
  deadlines_.emplace(v.expire_at, v.seq);
  deadline_sum_ += static_cast<long double>(v.expire_at);
}

std::int64_t keyspace::avg_ttl_ms() const {
  if (deadlines_.empty()) return 0;
  const long double avg = deadline_sum_ / static_cast<long double>(deadlines_.size());
  const long double ttl = avg - static_cast<long double>(now_ms());
  return ttl > 0 ? static_cast<std::int64_t>(ttl) : 0;
}

void keyspace::expire(const std::string& key) {
  if (expiry_deferred_) return;
  const std::string k = key;  // `key` may be the map's own copy, gone once erased
  if (on_expire) on_expire(k);
  else erase(k);
}

std::size_t keyspace::expire_due(std::size_t max) {
  if (expiry_paused_ || expiry_deferred_ || deadlines_.empty()) return 0;
  const std::int64_t now = clock_ms_;
  std::size_t n = 0;
  while (n < max && !deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto seq = by_seq_.find(deadlines_.begin()->second);
    if (seq == by_seq_.end()) {  // cannot happen: the index follows every change
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    expire(*seq->second);
    ++n;
  }
  return n;
}

std::size_t keyspace::count_due(std::size_t limit) const {
  std::size_t n = 0;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= clock_ms_ && n < limit; ++it) ++n;
  return n;
}

std::uint64_t keyspace::scan(std::uint64_t cursor, std::size_t count,
                             const std::function<void(const std::string&, value&)>& fn) {
  auto it = by_seq_.lower_bound(cursor);
  std::size_t visited = 0;
  while (it != by_seq_.end() && visited < count) {
    const std::string& key = *it->second;
    ++it;
    fn(key, map_.find(key)->second);
    ++visited;
  }
  return it == by_seq_.end() ? 0 : it->first;
}

}  // namespace respq::core
