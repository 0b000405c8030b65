// List commands, Redis 7 semantics and error texts. Blocking variants park the client
// (see blocking.cpp) when every key is empty, except inside EXEC, where they answer as
// if they timed out.
#include <algorithm>
#include <limits>

#include "broker/core/commands.hpp"

namespace respq::core {

bool integer_arg(server& s, client& c, std::string_view arg, long long& out) {
  if (string2ll(arg, out)) return true;
  s.add_error(c, not_integer_error);
  return false;
}

packed_list* lookup_list(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::list) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->list();
}

std::size_t list_push(server& s, std::string_view key, args_t values, bool left, value* existing, bool notify) {
  value* v = existing ? existing : s.db().find(key);
  if (!v) v = &s.db().create(key, value_type::list);
  packed_list& l = v->list();
  for (auto e : values) {
    if (left) l.push_front(e);
    else l.push_back(e);
  }
  s.add_dirty(values.size());
  s.signal_key_as_ready(key);
  const std::size_t size = l.size();
  if (notify) s.notify(notify_list, left ? "lpush" : "rpush", key);
  return size;
}

void list_popped(server& s, std::string_view key, packed_list& list, bool left) {
  s.notify(notify_list, left ? "lpop" : "rpop", key);
  if (!list.empty()) return;
  s.db().erase(key);
  s.notify(notify_generic, "del", key);
}

std::string list_move(server& s, std::string_view src, packed_list& from, std::string_view dst, bool from_left,
                      bool to_left) {
  std::string elem(from_left ? from.front() : from.back());
  if (from_left) from.pop_front();
  else from.pop_back();
  // `from` stays valid: creating dst moves no value (and dst may be src itself).
  value* d = s.db().find(dst);
  if (!d) d = &s.db().create(dst, value_type::list);
  if (to_left) d->list().push_front(elem);
  else d->list().push_back(elem);
  s.signal_key_as_ready(dst);
  // Redis's order of events: the push onto dst, then the pop from src (and its "del").
  s.notify(notify_list, to_left ? "lpush" : "rpush", dst);
  list_popped(s, src, from, from_left);
  return elem;
}

namespace {

void push_generic(server& s, client& c, args_t a, bool left, bool only_if_exists) {
  value* v = s.db().find(a[1]);
  if (v && v->type() != value_type::list) {
    s.add_error(c, wrongtype_error);
    return;
  }
  if (!v && only_if_exists) {
    s.reply(c).integer(0);
    return;
  }
  s.reply(c).integer(static_cast<long long>(list_push(s, a[1], a.subspan(2), left, v)));
}

void pop_generic(server& s, client& c, args_t a, bool left) {
  long long count = 0;
  const bool has_count = a.size() == 3;
  if (a.size() > 3) {
    s.add_error(c, "ERR wrong number of arguments for '" + to_lower(a[0]) + "' command");
    return;
  }
  if (has_count && (!string2ll(a[2], count) || count < 0)) {
    s.add_error(c, "ERR value is out of range, must be positive");
    return;
  }
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!l) {
    if (has_count) w.null_array();
    else w.null();
    return;
  }
  if (!has_count) {
    w.bulk(left ? l->front() : l->back());
    if (left) l->pop_front();
    else l->pop_back();
    s.add_dirty();
    list_popped(s, a[1], *l, left);
    return;
  }
  if (count == 0) {
    w.array(0);
    return;
  }
  std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(count), l->size());
  w.array(n);
  for (std::size_t i = 0; i < n; ++i) {
    w.bulk(left ? l->front() : l->back());
    if (left) l->pop_front();
    else l->pop_back();
  }
  s.add_dirty(n);
  list_popped(s, a[1], *l, left);
}

// Redis's index normalisation for LRANGE/LTRIM.
bool normalize_range(long long start, long long end, long long len, long long& from, long long& to) {
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (start > end || start >= len) return false;
  if (end >= len) end = len - 1;
  from = start;
  to = end;
  return true;
}

bool parse_where(std::string_view s, bool& left) {
  if (s.size() == 4 && strncasecmp(s.data(), "left", 4) == 0) left = true;
  else if (s.size() == 5 && strncasecmp(s.data(), "right", 5) == 0) left = false;
  else return false;
  return true;
}

// LMOVE/RPOPLPUSH core: moves one element; replies it or null. Returns false on error.
void move_generic(server& s, client& c, std::string_view src, std::string_view dst, bool from_left, bool to_left) {
  bool wrong;
  packed_list* l = lookup_list(s, c, src, wrong);
  if (wrong) return;
  if (!l) {
    s.reply(c).null();
    return;
  }
  value* d = s.db().find(dst);
  if (d && d->type() != value_type::list) {
    s.add_error(c, wrongtype_error);
    return;
  }
  const std::string elem = list_move(s, src, *l, dst, from_left, to_left);
  s.add_dirty();
  // In Redis's order (client-side caching shows it): the destination, then the source.
  s.signal_modified_key(dst);
  s.signal_modified_key(src);
  s.keys_signalled();
  s.reply(c).bulk(elem);
}

// Shared by BLPOP/BRPOP/BLMPOP/BLMOVE/BRPOPLPUSH when nothing is there yet.
void block_or_timeout(server& s, client& c, std::unique_ptr<blocked_state> b) {
  if (c.in_exec || c.is_fake) {
    // What the non-blocking variant answers on an empty list: BLMOVE/BRPOPLPUSH a null
    // bulk (like LMOVE), the pops a null array.
    if (b->what == blocked_state::kind::move) s.reply(c).null();
    else s.reply(c).null_array();
    return;
  }
  s.block_client(c, std::move(b));
}

void bpop_generic(server& s, client& c, args_t a, bool left) {
  clock::time_point deadline;
  if (!parse_timeout(s, c, a.back(), deadline)) return;
  for (std::size_t i = 1; i + 1 < a.size(); ++i) {
    value* v = s.db().find(a[i]);
    if (!v) continue;
    if (v->type() != value_type::list) {
      s.add_error(c, wrongtype_error);
      return;
    }
    packed_list& l = v->list();
    auto w = s.reply(c);
    w.array(2);
    w.bulk(a[i]);
    w.bulk(left ? l.front() : l.back());
    if (left) l.pop_front();
    else l.pop_back();
    s.add_dirty();
    s.stream().append({left ? "LPOP" : "RPOP", a[i]});
    s.effects_logged();
    list_popped(s, a[i], l, left);
    return;
  }
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::pop;
  b->pop_left = left;
  b->deadline = deadline;
  b->command = left ? "blpop" : "brpop";
  for (std::size_t i = 1; i + 1 < a.size(); ++i)
    if (std::find(b->keys.begin(), b->keys.end(), a[i]) == b->keys.end()) b->keys.emplace_back(a[i]);
  block_or_timeout(s, c, std::move(b));
}

void bmove_generic(server& s, client& c, std::string_view src, std::string_view dst, bool from_left, bool to_left,
                   std::string_view timeout, const char* name) {
  clock::time_point deadline;
  if (!parse_timeout(s, c, timeout, deadline)) return;
  value* v = s.db().find(src);
  if (v) {
    if (v->type() != value_type::list) {
      s.add_error(c, wrongtype_error);
      return;
    }
    const std::uint64_t before = s.dirty();
    move_generic(s, c, src, dst, from_left, to_left);
    if (s.dirty() != before) {
      if (std::string_view(name) == "brpoplpush") s.stream().append({"RPOPLPUSH", src, dst});
      else s.stream().append({"LMOVE", src, dst, from_left ? "LEFT" : "RIGHT", to_left ? "LEFT" : "RIGHT"});
      s.effects_logged();
    }
    return;
  }
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::move;
  b->pop_left = from_left;
  b->push_left = to_left;
  b->target = std::string(dst);
  b->deadline = deadline;
  b->command = name;
  b->keys.emplace_back(src);
  block_or_timeout(s, c, std::move(b));
}

// LMPOP/BLMPOP argument parsing: numkeys key... LEFT|RIGHT [COUNT n], from index `at`.
bool parse_mpop(server& s, client& c, args_t a, std::size_t at, std::vector<std::string_view>& keys, bool& left,
                long long& count) {
  long long numkeys;
  if (!string2ll(a[at], numkeys) || numkeys <= 0) {
    s.add_error(c, "ERR numkeys should be greater than 0");
    return false;
  }
  std::size_t where_idx = at + 1 + static_cast<std::size_t>(numkeys);
  if (static_cast<std::size_t>(numkeys) > a.size() - at - 1 || where_idx >= a.size()) {
    s.add_error(c, syntax_error);
    return false;
  }
  keys.assign(a.begin() + static_cast<std::ptrdiff_t>(at + 1), a.begin() + static_cast<std::ptrdiff_t>(where_idx));
  if (!parse_where(a[where_idx], left)) {
    s.add_error(c, syntax_error);
    return false;
  }
  count = 1;
  bool seen_count = false;
  for (std::size_t i = where_idx + 1; i < a.size(); ++i) {
    if (!seen_count && strncasecmp(a[i].data(), "count", 5) == 0 && a[i].size() == 5 && i + 1 < a.size()) {
      if (!string2ll(a[i + 1], count) || count <= 0) {
        s.add_error(c, "ERR count should be greater than 0");
        return false;
      }
      seen_count = true;
      ++i;
    } else {
      s.add_error(c, syntax_error);
      return false;
    }
  }
  return true;
}

// Pops up to count from the first non-empty key; false when all are empty.
bool mpop_serve(server& s, client& c, const std::vector<std::string_view>& keys, bool left, long long count,
                bool& error) {
  error = false;
  for (auto k : keys) {
    value* v = s.db().find(k);
    if (!v) continue;
    if (v->type() != value_type::list) {
      s.add_error(c, wrongtype_error);
      error = true;
      return false;
    }
    packed_list& l = v->list();
    std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(count), l.size());
    auto w = s.reply(c);
    w.array(2);
    w.bulk(k);
    w.array(n);
    for (std::size_t i = 0; i < n; ++i) {
      w.bulk(left ? l.front() : l.back());
      if (left) l.pop_front();
      else l.pop_back();
    }
    s.add_dirty(n);
    std::string cnt = std::to_string(n);
    s.stream().append({left ? "LPOP" : "RPOP", k, cnt});
    s.effects_logged();
    list_popped(s, k, l, left);
    s.signal_modified_key(k);  // the list popped from, not every key named
    s.keys_signalled();
    return true;
  }
  return false;
}

}  // namespace

void cmd_lpush(server& s, client& c, args_t a) { push_generic(s, c, a, true, false); }
void cmd_rpush(server& s, client& c, args_t a) { push_generic(s, c, a, false, false); }
void cmd_lpushx(server& s, client& c, args_t a) { push_generic(s, c, a, true, true); }
void cmd_rpushx(server& s, client& c, args_t a) { push_generic(s, c, a, false, true); }
void cmd_lpop(server& s, client& c, args_t a) { pop_generic(s, c, a, true); }
void cmd_rpop(server& s, client& c, args_t a) { pop_generic(s, c, a, false); }

void cmd_llen(server& s, client& c, args_t a) {
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(l ? static_cast<long long>(l->size()) : 0);
}

void cmd_lrange(server& s, client& c, args_t a) {
  long long start, end;
  if (!integer_arg(s, c, a[2], start) || !integer_arg(s, c, a[3], end)) return;
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  long long from, to;
  if (!l || !normalize_range(start, end, static_cast<long long>(l->size()), from, to)) {
    w.array(0);
    return;
  }
  w.array(static_cast<std::size_t>(to - from + 1));
  auto cur = l->seek(static_cast<std::size_t>(from));
  for (long long i = from; i <= to; ++i, cur.next()) w.bulk(cur.value());
}

void cmd_lindex(server& s, client& c, args_t a) {
  // As Redis: the key first (a missing key is nil whatever the index), then the index.
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  if (!l) {
    s.reply(c).null();
    return;
  }
  long long idx;
  if (!integer_arg(s, c, a[2], idx)) return;
  auto w = s.reply(c);
  long long len = static_cast<long long>(l->size());
  if (idx < 0) idx += len;
  if (idx < 0 || idx >= len) {
    w.null();
    return;
  }
  w.bulk(l->at(static_cast<std::size_t>(idx)));
}

void cmd_lset(server& s, client& c, args_t a) {
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  if (!l) {
    s.add_error(c, "ERR no such key");
    return;
  }
  long long idx;
  if (!integer_arg(s, c, a[2], idx)) return;
  long long len = static_cast<long long>(l->size());
  if (idx < 0) idx += len;
  if (idx < 0 || idx >= len) {
    s.add_error(c, "ERR index out of range");
    return;
  }
  l->set(static_cast<std::size_t>(idx), a[3]);
  s.add_dirty();
  s.notify(notify_list, "lset", a[1]);
  s.reply(c).ok();
}

void cmd_lrem(server& s, client& c, args_t a) {
  long long count;
  if (!integer_arg(s, c, a[2], count)) return;
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  if (!l) {
    s.reply(c).integer(0);
    return;
  }
  std::size_t removed = l->remove(a[3], count);
  if (removed) {
    s.add_dirty(removed);
    s.notify(notify_list, "lrem", a[1]);
    if (l->empty()) {
      s.db().erase(a[1]);
      s.notify(notify_generic, "del", a[1]);
    }
  }
  s.reply(c).integer(static_cast<long long>(removed));
}

void cmd_ltrim(server& s, client& c, args_t a) {
  long long start, end;
  if (!integer_arg(s, c, a[2], start) || !integer_arg(s, c, a[3], end)) return;
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  if (l) {
    long long from, to;
    if (!normalize_range(start, end, static_cast<long long>(l->size()), from, to)) {
      l->clear();
    } else {
      l->keep_range(static_cast<std::size_t>(from), static_cast<std::size_t>(to - from + 1));
    }
    s.notify(notify_list, "ltrim", a[1]);
    if (l->empty()) {
      s.db().erase(a[1]);
      s.notify(notify_generic, "del", a[1]);
    }
    s.add_dirty();
  }
  s.reply(c).ok();
}

void cmd_linsert(server& s, client& c, args_t a) {
  bool after;
  if (a[2].size() == 5 && strncasecmp(a[2].data(), "after", 5) == 0) after = true;
  else if (a[2].size() == 6 && strncasecmp(a[2].data(), "before", 6) == 0) after = false;
  else {
    s.add_error(c, syntax_error);
    return;
  }
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  if (!l) {
    s.reply(c).integer(0);
    return;
  }
  std::size_t i = 0;
  for (auto cur = l->seek(0); cur.valid(); cur.next(), ++i) {
    if (cur.value() == a[3]) {
      l->insert(after ? i + 1 : i, a[4]);
      s.add_dirty();
      s.signal_key_as_ready(a[1]);
      s.notify(notify_list, "linsert", a[1]);
      s.reply(c).integer(static_cast<long long>(l->size()));
      return;
    }
  }
  s.reply(c).integer(-1);
}

void cmd_lpos(server& s, client& c, args_t a) {
  long long rank = 1, count = -1, maxlen = 0;
  for (std::size_t i = 3; i < a.size(); i += 2) {
    std::string opt = to_lower(a[i]);
    if (i + 1 >= a.size()) {
      s.add_error(c, syntax_error);
      return;
    }
    long long v = 0;
    const bool is_int = string2ll(a[i + 1], v);
    if (opt == "rank") {
      if (!is_int) {
        s.add_error(c, not_integer_error);
        return;
      }
      if (v == 0) {
        s.add_error(c, "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use "
                       "negative to start from the end of the list");
        return;
      }
      // Redis 7.0 negates the rank; the smallest value stays negative and matches the
      // first element from the tail, i.e. behaves as -1.
      rank = v == std::numeric_limits<long long>::min() ? -1 : v;
    } else if (opt == "count") {
      if (!is_int || v < 0) {
        s.add_error(c, "ERR COUNT can't be negative");
        return;
      }
      count = v;
    } else if (opt == "maxlen") {
      if (!is_int || v < 0) {
        s.add_error(c, "ERR MAXLEN can't be negative");
        return;
      }
      maxlen = v;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  bool wrong;
  packed_list* l = lookup_list(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!l) {
    if (count >= 0) w.array(0);
    else w.null();
    return;
  }
  std::vector<long long> matches;
  long long want = count == 0 ? std::numeric_limits<long long>::max() : (count < 0 ? 1 : count);
  long long skip = (rank > 0 ? rank : -rank) - 1;
  const long long len = static_cast<long long>(l->size());
  long long scanned = 0;
  if (rank > 0) {
    long long i = 0;
    for (auto cur = l->seek(0); cur.valid() && (maxlen == 0 || scanned < maxlen); cur.next(), ++i, ++scanned) {
      if (cur.value() == a[2]) {
        if (skip > 0) --skip;
        else {
          matches.push_back(i);
          if (static_cast<long long>(matches.size()) >= want) break;
        }
      }
    }
  } else {
    long long i = len - 1;
    for (auto cur = l->seek(static_cast<std::size_t>(len - 1)); cur.valid() && (maxlen == 0 || scanned < maxlen);
         cur.prev(), --i, ++scanned) {
      if (cur.value() == a[2]) {
        if (skip > 0) --skip;
        else {
          matches.push_back(i);
          if (static_cast<long long>(matches.size()) >= want) break;
        }
      }
    }
  }
  if (count < 0) {
    if (matches.empty()) w.null();
    else w.integer(matches[0]);
    return;
  }
  w.array(matches.size());
  for (long long m : matches) w.integer(m);
}

void cmd_lmove(server& s, client& c, args_t a) {
  bool from_left, to_left;
  if (!parse_where(a[3], from_left) || !parse_where(a[4], to_left)) {
    s.add_error(c, syntax_error);
    return;
  }
  move_generic(s, c, a[1], a[2], from_left, to_left);
}

void cmd_rpoplpush(server& s, client& c, args_t a) { move_generic(s, c, a[1], a[2], false, true); }
void cmd_blpop(server& s, client& c, args_t a) { bpop_generic(s, c, a, true); }
void cmd_brpop(server& s, client& c, args_t a) { bpop_generic(s, c, a, false); }

void cmd_blmove(server& s, client& c, args_t a) {
  bool from_left, to_left;
  if (!parse_where(a[3], from_left) || !parse_where(a[4], to_left)) {
    s.add_error(c, syntax_error);
    return;
  }
  bmove_generic(s, c, a[1], a[2], from_left, to_left, a[5], "blmove");
}

void cmd_brpoplpush(server& s, client& c, args_t a) {
  bmove_generic(s, c, a[1], a[2], false, true, a[3], "brpoplpush");
}

void cmd_lmpop(server& s, client& c, args_t a) {
  std::vector<std::string_view> keys;
  bool left;
  long long count;
  if (!parse_mpop(s, c, a, 1, keys, left, count)) return;
  bool error;
  if (!mpop_serve(s, c, keys, left, count, error) && !error) s.reply(c).null_array();
}

void cmd_blmpop(server& s, client& c, args_t a) {
  // As Redis: the keys, LEFT|RIGHT and COUNT are read first, the timeout after them.
  std::vector<std::string_view> keys;
  bool left;
  long long count;
  if (!parse_mpop(s, c, a, 2, keys, left, count)) return;
  clock::time_point deadline;
  if (!parse_timeout(s, c, a[1], deadline)) return;
  bool error;
  if (mpop_serve(s, c, keys, left, count, error) || error) return;
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::mpop;
  b->pop_left = left;
  b->count = count;
  b->deadline = deadline;
  b->command = "blmpop";
  for (auto k : keys)
    if (std::find(b->keys.begin(), b->keys.end(), k) == b->keys.end()) b->keys.emplace_back(k);
  block_or_timeout(s, c, std::move(b));
}

}  // namespace respq::core
