// String and hash commands: the basic ones operators and apps expect next to lists.
// Keys never expire in respq, so SET's expiry options are refused with a clear error.
#include <climits>

#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

std::string* lookup_string(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::string) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->str();
}

hash_value* lookup_hash(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::hash) {
    wrong = true;
    s.add_error(c, wrongtype_error);
    return nullptr;
  }
  return &v->hash();
}

void store_string(server& s, std::string_view key, std::string_view val) {
  value* v = s.db().find(key);
  if (!v || v->type() != value_type::string) v = &s.db().create(key, value_type::string);
  v->str().assign(val);
  s.add_dirty();
}

void incr_generic(server& s, client& c, std::string_view key, long long by) {
  bool wrong;
  std::string* cur = lookup_string(s, c, key, wrong);
  if (wrong) return;
  long long v = 0;
  if (cur && !parse_integer(*cur, v)) {
    s.add_error(c, not_integer_error);
    return;
  }
  if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
    s.add_error(c, "ERR increment or decrement would overflow");
    return;
  }
  v += by;
  store_string(s, key, std::to_string(v));
  s.reply(c).integer(v);
}

}  // namespace

void cmd_get(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (v) {
    ++s.stats().keyspace_hits;
    s.reply(c).bulk(*v);
  } else {
    ++s.stats().keyspace_misses;
    s.reply(c).null();
  }
}

void cmd_set(server& s, client& c, args_t a) {
  bool nx = false, xx = false, get = false;
  for (std::size_t i = 3; i < a.size(); ++i) {
    std::string opt = to_lower(a[i]);
    if (opt == "nx" && !xx) nx = true;
    else if (opt == "xx" && !nx) xx = true;
    else if (opt == "get") get = true;
    else if (opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat" || opt == "keepttl") {
      s.add_error(c, "ERR keys do not expire in respq: SET " + to_upper(a[i]) + " is not supported");
      return;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  value* v = s.db().find(a[1]);
  if (get && v && v->type() != value_type::string) {
    s.add_error(c, wrongtype_error);
    return;
  }
  std::string old;
  bool had_old = v && v->type() == value_type::string;
  if (had_old && get) old = v->str();
  if ((nx && v) || (xx && !v)) {
    if (get) {
      if (had_old) s.reply(c).bulk(old);
      else s.reply(c).null();
    } else {
      s.reply(c).null();
    }
    return;
  }
  store_string(s, a[1], a[2]);
  s.signal_modified_key(a[1]);
  if (get) {
    if (had_old) s.reply(c).bulk(old);
    else s.reply(c).null();
  } else {
    s.reply(c).ok();
  }
}

void cmd_setnx(server& s, client& c, args_t a) {
  if (s.db().find(a[1])) {
    s.reply(c).integer(0);
    return;
  }
  store_string(s, a[1], a[2]);
  s.reply(c).integer(1);
}

void cmd_mget(server& s, client& c, args_t a) {
  auto w = s.reply(c);
  w.array(a.size() - 1);
  for (std::size_t i = 1; i < a.size(); ++i) {
    value* v = s.db().find(a[i]);
    if (v && v->type() == value_type::string) w.bulk(v->str());
    else w.null();
  }
}

void cmd_mset(server& s, client& c, args_t a) {
  if (a.size() % 2 != 1) {
    s.add_error(c, "ERR wrong number of arguments for 'mset' command");
    return;
  }
  for (std::size_t i = 1; i + 1 < a.size(); i += 2) store_string(s, a[i], a[i + 1]);
  s.reply(c).ok();
}

void cmd_incr(server& s, client& c, args_t a) { incr_generic(s, c, a[1], 1); }
void cmd_decr(server& s, client& c, args_t a) { incr_generic(s, c, a[1], -1); }

void cmd_incrby(server& s, client& c, args_t a) {
  long long by;
  if (!integer_arg(s, c, a[2], by)) return;
  incr_generic(s, c, a[1], by);
}

void cmd_decrby(server& s, client& c, args_t a) {
  long long by;
  if (!integer_arg(s, c, a[2], by)) return;
  if (by == LLONG_MIN) {
    s.add_error(c, "ERR decrement would overflow");
    return;
  }
  incr_generic(s, c, a[1], -by);
}

void cmd_append(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  if (!v) v = &s.db().create(a[1], value_type::string).str();
  v->append(a[2]);
  s.add_dirty();
  s.reply(c).integer(static_cast<long long>(v->size()));
}

void cmd_strlen(server& s, client& c, args_t a) {
  bool wrong;
  std::string* v = lookup_string(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(v ? static_cast<long long>(v->size()) : 0);
}

void cmd_hset(server& s, client& c, args_t a) {
  if (a.size() % 2 != 0) {
    s.add_error(c, "ERR wrong number of arguments for 'hset' command");
    return;
  }
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  if (!h) h = &s.db().create(a[1], value_type::hash).hash();
  long long added = 0;
  for (std::size_t i = 2; i + 1 < a.size(); i += 2) {
    auto it = h->find(a[i]);
    if (it == h->end()) {
      h->emplace(std::string(a[i]), std::string(a[i + 1]));
      ++added;
    } else {
      it->second.assign(a[i + 1]);
    }
  }
  s.add_dirty();
  s.reply(c).integer(added);
}

void cmd_hget(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  if (h) {
    auto it = h->find(a[2]);
    if (it != h->end()) {
      s.reply(c).bulk(it->second);
      return;
    }
  }
  s.reply(c).null();
}

void cmd_hdel(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  long long n = 0;
  if (h) {
    for (std::size_t i = 2; i < a.size(); ++i) {
      auto it = h->find(a[i]);
      if (it != h->end()) {
        h->erase(it);
        ++n;
      }
    }
    if (h->empty()) s.db().erase(a[1]);
    if (n) s.add_dirty(static_cast<std::uint64_t>(n));
  }
  s.reply(c).integer(n);
}

void cmd_hlen(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(h ? static_cast<long long>(h->size()) : 0);
}

void cmd_hgetall(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.map(h ? h->size() : 0);
  if (h)
    for (const auto& [f, v] : *h) {
      w.bulk(f);
      w.bulk(v);
    }
}

namespace {

// HKEYS / HVALS: one side of every field-value pair.
void hash_side_generic(server& s, client& c, args_t a, bool keys) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(h ? h->size() : 0);
  if (h)
    for (const auto& [field, val] : *h) w.bulk(keys ? field : val);
}

}  // namespace

void cmd_hkeys(server& s, client& c, args_t a) { hash_side_generic(s, c, a, true); }
void cmd_hvals(server& s, client& c, args_t a) { hash_side_generic(s, c, a, false); }

void cmd_hexists(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(h && h->count(a[2]) ? 1 : 0);
}

void cmd_hmget(server& s, client& c, args_t a) {
  bool wrong;
  hash_value* h = lookup_hash(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  w.array(a.size() - 2);
  for (std::size_t i = 2; i < a.size(); ++i) {
    auto it = h ? h->find(a[i]) : hash_value::iterator{};
    if (h && it != h->end()) w.bulk(it->second);
    else w.null();
  }
}

}  // namespace respq::core
