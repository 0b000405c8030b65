// keyspace: see keyspace.hpp.
#include "broker/core/keyspace.hpp"

namespace respq::core {

const char* type_name(value_type t) {
  switch (t) {
    case value_type::string: return "string";
    case value_type::list: return "list";
    case value_type::hash: return "hash";
  }
  return "none";
}

value& keyspace::create(std::string_view key, value_type t) {
  auto [it, inserted] = map_.try_emplace(std::string(key));
  value& v = it->second;
  if (!inserted) by_seq_.erase(v.seq);
  switch (t) {
    case value_type::string: v.data.emplace<std::string>(); break;
    case value_type::list: v.data.emplace<packed_list>(); break;
    case value_type::hash: v.data.emplace<hash_value>(); break;
  }
  v.seq = next_seq_++;
  by_seq_.emplace(v.seq, &it->first);
  return v;
}

bool keyspace::erase(std::string_view key) {
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  by_seq_.erase(it->second.seq);
  map_.erase(it);
  return true;
}

void keyspace::rename(std::string_view from, std::string_view to) {
  auto it = map_.find(from);
  if (it == map_.end() || from == to) return;
  value v = std::move(it->second);
  by_seq_.erase(v.seq);
  map_.erase(it);
  erase(to);
  auto [nit, inserted] = map_.try_emplace(std::string(to), std::move(v));
  (void)inserted;
  nit->second.seq = next_seq_++;
  by_seq_.emplace(nit->second.seq, &nit->first);
}

void keyspace::clear() {
  map_.clear();
  by_seq_.clear();
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
