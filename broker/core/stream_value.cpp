// stream_value: see stream_value.hpp.
#include "broker/core/stream_value.hpp"

#include <algorithm>

namespace respq::core {

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::uint64_t get_varint(const std::string& in, std::size_t& pos) {
  std::uint64_t v = 0;
  int shift = 0;
  while (true) {
    const auto b = static_cast<unsigned char>(in[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
    shift += 7;
  }
}

// Redis's rax node count for a set of 16-byte keys sharing their first `depth` bytes:
// a compressed node for a common run, a branching node where they differ, a key node
// at the end.
std::size_t rax_nodes(const std::vector<std::string>& keys, std::size_t lo, std::size_t hi, std::size_t depth) {
  if (depth == 16) return 1;
  // Longest common run from depth.
  std::size_t run = 0;
  while (depth + run < 16) {
    const char ch = keys[lo][depth + run];
    bool same = true;
    for (std::size_t i = lo + 1; i < hi && same; ++i) same = keys[i][depth + run] == ch;
    if (!same) break;
    ++run;
  }
  if (run > 0) return 1 + rax_nodes(keys, lo, hi, depth + run);
  std::size_t n = 1;
  for (std::size_t i = lo; i < hi;) {
    std::size_t j = i + 1;
    while (j < hi && keys[j][depth] == keys[i][depth]) ++j;
    n += rax_nodes(keys, i, j, depth + 1);
    i = j;
  }
  return n;
}

}  // namespace

bool stream_id::incr() {
  if (seq == UINT64_MAX) {
    if (ms == UINT64_MAX) return false;
    ++ms;
    seq = 0;
  } else {
    ++seq;
  }
  return true;
}

bool stream_id::decr() {
  if (seq == 0) {
    if (ms == 0) return false;
    --ms;
    seq = UINT64_MAX;
  } else {
    --seq;
  }
  return true;
}

std::string stream_id::str() const { return std::to_string(ms) + "-" + std::to_string(seq); }

std::size_t stream_value::decode(const stream_id& key, const std::string& data, std::size_t pos, entry& e,
                                 bool& deleted, bool with_fields) {
  deleted = data[pos++] & 1;
  e.id.ms = key.ms + get_varint(data, pos);
  e.id.seq = get_varint(data, pos);
  const std::uint64_t pairs = get_varint(data, pos);
  e.fields.clear();
  for (std::uint64_t i = 0; i < pairs; ++i) {
    const std::size_t fl = get_varint(data, pos);
    const std::size_t fpos = pos;
    pos += fl;
    const std::size_t vl = get_varint(data, pos);
    const std::size_t vpos = pos;
    pos += vl;
    if (with_fields) e.fields.emplace_back(std::string_view(data).substr(fpos, fl), std::string_view(data).substr(vpos, vl));
  }
  return pos;
}

void stream_value::offsets(const block& b, std::vector<std::size_t>& out) {
  out.clear();
  std::size_t pos = 0;
  entry e;
  bool deleted;
  // The key does not matter for walking.
  while (pos < b.data.size()) {
    out.push_back(pos);
    pos = decode(stream_id{}, b.data, pos, e, deleted, false);
  }
}

stream_value::map_type::const_iterator stream_value::block_for(stream_id id) const {
  auto it = blocks_.upper_bound(id);
  if (it == blocks_.begin()) return blocks_.end();
  return std::prev(it);
}

void stream_value::append(stream_id id, const std::vector<std::string_view>& fields,
                          const stream_node_limits& limits) {
  constexpr std::uint64_t listpack_max_size = 1ull << 30;  // Redis's STREAM_LISTPACK_MAX_SIZE
  const std::uint64_t max_bytes =
      limits.max_bytes == 0 || limits.max_bytes > listpack_max_size ? listpack_max_size : limits.max_bytes;
  std::size_t payload = 0;
  for (auto f : fields) payload += f.size();
  block* b = nullptr;
  stream_id key;
  if (!blocks_.empty()) {
    auto& [k, last] = *blocks_.rbegin();
    if (last.data.size() + payload < max_bytes && (!limits.max_entries || last.total < limits.max_entries)) {
      b = &last;
      key = k;
    } else {
      last.data.shrink_to_fit();
    }
  }
  if (!b) {
    key = id;
    b = &blocks_[id];
  }
  b->data.push_back(0);
  put_varint(b->data, id.ms - key.ms);
  put_varint(b->data, id.seq);
  put_varint(b->data, fields.size() / 2);
  for (auto f : fields) {
    put_varint(b->data, f.size());
    b->data.append(f);
  }
  ++b->live;
  ++b->total;
  ++length_;
  ++entries_added;
  last_id = id;
}

bool stream_value::erase(stream_id id) {
  auto cit = block_for(id);
  if (cit == blocks_.end()) return false;
  auto it = blocks_.find(cit->first);
  block& b = it->second;
  std::size_t pos = 0;
  entry e;
  bool deleted;
  while (pos < b.data.size()) {
    const std::size_t at = pos;
    pos = decode(it->first, b.data, pos, e, deleted, false);
    if (e.id > id) return false;
    if (e.id == id) {
      if (deleted) return false;
      b.data[at] = static_cast<char>(b.data[at] | 1);
      --b.live;
      --length_;
      if (b.live == 0) blocks_.erase(it);
      return true;
    }
  }
  return false;
}

void stream_value::range(stream_id start, stream_id end, std::size_t count, bool rev,
                         const std::function<bool(const entry&)>& fn) const {
  if (start > end || blocks_.empty()) return;
  std::size_t emitted = 0;
  entry e;
  bool deleted;
  if (!rev) {
    auto it = block_for(start);
    if (it == blocks_.end()) it = blocks_.begin();
    for (; it != blocks_.end() && it->first <= end; ++it) {
      std::size_t pos = 0;
      const std::string& d = it->second.data;
      while (pos < d.size()) {
        pos = decode(it->first, d, pos, e, deleted, true);
        if (deleted || e.id < start) continue;
        if (e.id > end) return;
        if (!fn(e)) return;
        if (count && ++emitted == count) return;
      }
    }
    return;
  }
  auto it = block_for(end);
  if (it == blocks_.end()) return;
  std::vector<std::size_t> offs;
  while (true) {
    offsets(it->second, offs);
    for (auto o = offs.rbegin(); o != offs.rend(); ++o) {
      decode(it->first, it->second.data, *o, e, deleted, true);
      if (deleted || e.id > end) continue;
      if (e.id < start) return;
      if (!fn(e)) return;
      if (count && ++emitted == count) return;
    }
    if (it == blocks_.begin()) return;
    --it;
  }
}

bool stream_value::first_entry_id(stream_id& out) const {
  bool found = false;
  range(stream_id{0, 0}, stream_id{UINT64_MAX, UINT64_MAX}, 1, false, [&](const entry& e) {
    out = e.id;
    found = true;
    return false;
  });
  return found;
}

bool stream_value::last_entry_id(stream_id& out) const {
  bool found = false;
  range(stream_id{0, 0}, stream_id{UINT64_MAX, UINT64_MAX}, 1, true, [&](const entry& e) {
    out = e.id;
    found = true;
    return false;
  });
  return found;
}

std::uint64_t stream_value::trim_maxlen(std::uint64_t maxlen, bool approx, std::uint64_t limit) {
  return trim(false, maxlen, {}, approx, limit);
}

std::uint64_t stream_value::trim_minid(stream_id minid, bool approx, std::uint64_t limit) {
  return trim(true, 0, minid, approx, limit);
}

std::uint64_t stream_value::trim(bool by_minid, std::uint64_t maxlen, stream_id minid, bool approx,
                                 std::uint64_t limit) {
  std::uint64_t removed = 0;
  entry e;
  bool deleted;
  const auto long_enough = [&] { return !by_minid && length_ <= maxlen; };
  while (!blocks_.empty() && !long_enough()) {
    auto it = blocks_.begin();
    block& b = it->second;
    if (limit && removed + b.live > limit) break;
    // The whole block goes when what stays is still maxlen long, or when its last entry
    // (deleted or not) is below minid.
    bool whole;
    if (by_minid) {
      for (std::size_t pos = 0; pos < b.data.size();) pos = decode(it->first, b.data, pos, e, deleted, false);
      whole = e.id < minid;
    } else {
      whole = length_ - b.live >= maxlen;
    }
    if (whole) {
      length_ -= b.live;
      removed += b.live;
      blocks_.erase(it);
      continue;
    }
    if (approx) break;
    // Mark entries of this block deleted, from its start, until the goal is reached.
    for (std::size_t pos = 0; pos < b.data.size() && !long_enough();) {
      const std::size_t at = pos;
      pos = decode(it->first, b.data, pos, e, deleted, false);
      if (by_minid && e.id >= minid) break;
      if (deleted) continue;
      b.data[at] = static_cast<char>(b.data[at] | 1);
      --b.live;
      --length_;
      ++removed;
    }
    if (b.live == 0) blocks_.erase(it);
    break;
  }
  return removed;
}

void stream_group::drop_nack(std::map<stream_id, stream_nack>::iterator it) {
  auto cit = consumers.find(it->second.consumer);
  if (cit != consumers.end()) cit->second.pel.erase(it->first);
  pel.erase(it);
}

void stream_group::set_owner(std::map<stream_id, stream_nack>::iterator it, const std::string& to) {
  if (it->second.consumer == to) return;
  auto old = consumers.find(it->second.consumer);
  if (old != consumers.end()) old->second.pel.erase(it->first);
  it->second.consumer = to;
  consumers[to].pel.insert(it->first);
}

void stream_value::group_commands(std::string_view key,
                                  const std::function<void(const std::vector<std::string>&)>& emit) const {
  const std::string k(key);
  for (const auto& [name, g] : groups) {
    emit({"XGROUP", "CREATE", k, name, g.last_id.str(), "ENTRIESREAD", std::to_string(g.entries_read)});
    for (const auto& [cname, cons] : g.consumers) {
      if (cons.pel.empty()) {
        emit({"XGROUP", "CREATECONSUMER", k, name, cname});
        continue;
      }
      for (const stream_id& id : cons.pel) {
        const stream_nack& n = g.pel.at(id);
        emit({"XCLAIM", k, name, cname, "0", id.str(), "TIME", std::to_string(n.delivery_time), "RETRYCOUNT",
              std::to_string(n.delivery_count), "JUSTID", "FORCE"});
      }
    }
  }
}

bool stream_value::contains(stream_id id) const {
  bool found = false;
  range(id, id, 1, false, [&](const entry&) {
    found = true;
    return false;
  });
  return found;
}

bool stream_value::range_has_tombstones(stream_id start) const {
  if (!length_ || max_deleted_id.is_zero()) return false;
  stream_id first;
  if (!first_entry_id(first)) first = {0, 0};
  if (first > max_deleted_id) return false;
  return start <= max_deleted_id;
}

long long stream_value::estimate_distance(stream_id id) const {
  if (!entries_added) return 0;
  if (!length_ && id <= last_id) return static_cast<long long>(entries_added);
  if (id == last_id) return static_cast<long long>(entries_added);
  if (id > last_id) return stream_group::invalid_entries_read;
  stream_id first;
  if (!first_entry_id(first)) first = {0, 0};
  if (max_deleted_id.is_zero() || max_deleted_id < first) {
    if (id < first) return static_cast<long long>(entries_added - length_);
    if (id == first) return static_cast<long long>(entries_added - length_ + 1);
  }
  return stream_group::invalid_entries_read;
}

bool stream_value::group_lag(const stream_group& g, long long& lag) const {
  if (!entries_added) {
    lag = 0;
    return true;
  }
  if (g.entries_read != stream_group::invalid_entries_read && !range_has_tombstones(g.last_id)) {
    lag = static_cast<long long>(entries_added) - g.entries_read;
    return true;
  }
  const long long read = estimate_distance(g.last_id);
  if (read == stream_group::invalid_entries_read) return false;
  lag = static_cast<long long>(entries_added) - read;
  return true;
}

std::size_t stream_value::radix_nodes() const {
  if (blocks_.empty()) return 1;
  std::vector<std::string> keys;
  keys.reserve(blocks_.size());
  for (const auto& [k, b] : blocks_) {
    std::string s(16, '\0');
    for (int i = 0; i < 8; ++i) {
      s[static_cast<std::size_t>(i)] = static_cast<char>(k.ms >> (56 - 8 * i));
      s[static_cast<std::size_t>(8 + i)] = static_cast<char>(k.seq >> (56 - 8 * i));
    }
    keys.push_back(std::move(s));
  }
  return rax_nodes(keys, 0, keys.size(), 0);
}

std::size_t stream_value::memory_usage() const {
  // Map nodes (three pointers, a colour word, key and block) plus each block's bytes.
  std::size_t n = sizeof(*this);
  for (const auto& [k, b] : blocks_) {
    n += 4 * sizeof(void*) + sizeof(stream_id) + sizeof(block);
    if (b.data.capacity() > 15) n += b.data.capacity() + 1;
  }
  // Groups: a tree node and the name per group, consumer and pending entry.
  constexpr std::size_t node = 4 * sizeof(void*);
  for (const auto& [name, g] : groups) {
    n += node + sizeof(std::string) + name.size() + sizeof(stream_group);
    n += g.pel.size() * (node + sizeof(stream_id) + sizeof(stream_nack));
    for (const auto& [cname, cons] : g.consumers) {
      n += node + sizeof(std::string) + 2 * cname.size() + sizeof(stream_consumer);
      n += cons.pel.size() * (node + sizeof(stream_id));
    }
  }
  return n;
}

}  // namespace respq::core
