// keyspace: see keyspace.hpp.
#include "broker/core/keyspace.hpp"

#include <time.h>

namespace respq::core {

const char* type_name(value_type t) {
  switch (t) {
    case value_type::string: return "string";
    case value_type::list: return "list";
    case value_type::hash: return "hash";
    case value_type::zset: return "zset";
  }
  return "none";
}

value& keyspace::create(std::string_view key, value_type t) {
  auto [it, inserted] = map_.try_emplace(std::string(key));
  value& v = it->second;
  if (!inserted) {
    by_seq_.erase(v.seq);
    forget_deadline(v);
  }
  switch (t) {
    case value_type::string: v.data.emplace<std::string>(); break;
    case value_type::list: v.data.emplace<packed_list>(); break;
    case value_type::hash: v.data.emplace<hash_value>(); break;
    case value_type::zset: v.data.emplace<zset_value>(); break;
  }
  v.seq = next_seq_++;
  by_seq_.emplace(v.seq, &it->first);
  return v;
}

bool keyspace::erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  by_seq_.erase(it->second.seq);
  forget_deadline(it->second);
  map_.erase(it);
  return true;
}

void keyspace::rename(std::string_view from, std::string_view to) {
  auto it = map_.find(from);
  if (it == map_.end() || from == to) return;
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
}

void keyspace::clear() {
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
  const std::string k = key;  // `key` may be the map's own copy, gone once erased
  if (on_expire) on_expire(k);
  else erase(k);
}

std::size_t keyspace::expire_due(std::size_t max) {
  if (expiry_paused_ || deadlines_.empty()) return 0;
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
