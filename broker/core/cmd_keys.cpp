// Key space commands: DEL UNLINK EXISTS TYPE KEYS SCAN DBSIZE FLUSHDB FLUSHALL RENAME
// RENAMENX, and expiry: EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME PEXPIRETIME
// PERSIST. respq has one database (db 0).
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>

#include "broker/core/allocator.hpp"
#include "broker/core/commands.hpp"
#include "broker/core/glob.hpp"
#include "broker/core/task_manager.hpp"

namespace respq::core {

namespace {

void del_generic(server& s, client& c, args_t a) {
  long long n = 0;
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (s.db().find(a[i]) && s.db().erase(a[i])) {  // (find: a key past its deadline is expired, not deleted)
      ++n;
      s.key_deleted(a[i]);
      s.notify(notify_generic, "del", a[i]);
    }
  }
  s.add_dirty(static_cast<std::uint64_t>(n));
  s.keys_signalled();  // the deleted keys only (key_deleted), not every key named
  s.reply(c).integer(n);
}

bool flush_args_ok(server& s, client& c, args_t a) {
  if (a.size() == 1) return true;
  if (a.size() == 2) {
    std::string m = to_lower(a[1]);
    if (m == "async" || m == "sync") return true;
  }
  s.add_error(c, syntax_error);
  return false;
}

void rename_generic(server& s, client& c, args_t a, bool nx) {
  value* v = s.db().find(a[1]);
  if (!v) {
    s.add_error(c, "ERR no such key");
    return;
  }
  const bool target_exists = s.db().find(a[2]) != nullptr;  // (expires the target if it is due, as Redis)
  if (nx && target_exists) {
    s.reply(c).integer(0);
    return;
  }
  if (a[1] != a[2]) {
    // Lists and sorted sets can have blocked poppers waiting on the new name.
    const bool is_list = v->type() == value_type::list || v->type() == value_type::zset || v->type() == value_type::stream;
    s.db().rename(a[1], a[2]);
    s.key_deleted(a[1]);
    s.signal_modified_key(a[2]);
    if (is_list) s.signal_key_as_ready(a[2]);
    s.notify(notify_generic, "rename_from", a[1]);
    s.notify(notify_generic, "rename_to", a[2]);
  }
  s.add_dirty();
  if (nx) s.reply(c).integer(1);
  else s.reply(c).ok();
}

}  // namespace

void cmd_del(server& s, client& c, args_t a) { del_generic(s, c, a); }
void cmd_unlink(server& s, client& c, args_t a) { del_generic(s, c, a); }

void cmd_exists(server& s, client& c, args_t a) {
  long long n = 0;
  for (std::size_t i = 1; i < a.size(); ++i)
    if (s.db().find(a[i], false)) ++n;  // as Redis (LOOKUP_NOTOUCH): OBJECT IDLETIME goes on counting
  s.reply(c).integer(n);
}

void cmd_type(server& s, client& c, args_t a) {
  value* v = s.db().find(a[1], false);
  s.reply(c).simple(v ? type_name(v->type()) : "none");
}

// ---- expiry ----------------------------------------------------------------------------

namespace {

enum expire_flag { expire_nx = 1, expire_xx = 2, expire_gt = 4, expire_lt = 8 };

// EXPIRE and friends, as Redis 7's expireGenericCommand: options first, then the time
// (with Redis's overflow checks), then the key. A deadline already past deletes the key
// (propagated as DEL); otherwise the effect is PEXPIREAT with the absolute time.
void expire_generic(server& s, client& c, args_t a, std::int64_t base, bool seconds, std::string_view name) {
  int flags = 0;
  for (std::size_t i = 3; i < a.size(); ++i) {
    const std::string opt = to_lower(a[i]);
    if (opt == "nx") flags |= expire_nx;
    else if (opt == "xx") flags |= expire_xx;
    else if (opt == "gt") flags |= expire_gt;
    else if (opt == "lt") flags |= expire_lt;
    else {
      s.add_error(c, "ERR Unsupported option " + std::string(a[i]));
      return;
    }
  }
  if ((flags & expire_nx) && (flags & (expire_xx | expire_gt | expire_lt))) {
    s.add_error(c, "ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if ((flags & expire_gt) && (flags & expire_lt)) {
    s.add_error(c, "ERR GT and LT options at the same time are not compatible");
    return;
  }
  long long when;
  if (!integer_arg(s, c, a[2], when)) return;
  if (seconds) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
      expire_time_error(s, c, name);
      return;
    }
    when *= 1000;
  }
  if (when > LLONG_MAX - base) {
    expire_time_error(s, c, name);
    return;
  }
  when += base;
  value* v = s.db().find(a[1]);
  if (!v) {
    s.reply(c).integer(0);
    return;
  }
  // The record of an HTTP queue's tasks in flight is what a restart recovers them from:
  // it must not vanish while tasks are added to it.
  if (const std::string* q = s.current_db() == 0 ? s.tasks().inflight_owner(a[1]) : nullptr) {
    s.add_error(c, "ERR '" + std::string(a[1]) + "' records the tasks in flight of HTTP queue '" + *q +
                       "' and cannot expire");
    return;
  }
  const long long current = v->expire_at ? v->expire_at : -1;
  if (((flags & expire_nx) && current != -1) || ((flags & expire_xx) && current == -1) ||
      ((flags & expire_gt) && (current == -1 || when <= current)) ||
      ((flags & expire_lt) && current != -1 && when >= current)) {
    s.reply(c).integer(0);
    return;
  }
  s.set_key_deadline(a[1], when);
  s.add_dirty();
  s.reply(c).integer(1);
}

// TTL PTTL EXPIRETIME PEXPIRETIME: -2 no key, -1 no deadline.
void ttl_generic(server& s, client& c, args_t a, bool ms, bool absolute) {
  value* v = s.db().find(a[1], false);  // EXISTS, TYPE and TTL leave the access stamp (LOOKUP_NOTOUCH)
  if (!v) {
    s.reply(c).integer(-2);
    return;
  }
  if (!v->expire_at) {
    s.reply(c).integer(-1);
    return;
  }
  long long ttl = absolute ? v->expire_at : v->expire_at - keyspace::now_ms();
  if (ttl < 0) ttl = 0;
  s.reply(c).integer(ms ? ttl : ttl / 1000 + (ttl % 1000 >= 500));  // rounded, without overflow
}

}  // namespace

void expire_time_error(server& s, client& c, std::string_view command) {
  s.add_error(c, "ERR invalid expire time in '" + std::string(command) + "' command");
}

void cmd_expire(server& s, client& c, args_t a) { expire_generic(s, c, a, keyspace::now_ms(), true, "expire"); }
void cmd_pexpire(server& s, client& c, args_t a) { expire_generic(s, c, a, keyspace::now_ms(), false, "pexpire"); }
void cmd_expireat(server& s, client& c, args_t a) { expire_generic(s, c, a, 0, true, "expireat"); }
void cmd_pexpireat(server& s, client& c, args_t a) { expire_generic(s, c, a, 0, false, "pexpireat"); }
void cmd_ttl(server& s, client& c, args_t a) { ttl_generic(s, c, a, false, false); }
void cmd_pttl(server& s, client& c, args_t a) { ttl_generic(s, c, a, true, false); }
void cmd_expiretime(server& s, client& c, args_t a) { ttl_generic(s, c, a, false, true); }
void cmd_pexpiretime(server& s, client& c, args_t a) { ttl_generic(s, c, a, true, true); }

void cmd_persist(server& s, client& c, args_t a) {
  value* v = s.db().find(a[1]);
  if (!v || !v->expire_at) {
    s.reply(c).integer(0);
    return;
  }
  s.db().set_expire(a[1], 0);
  s.add_dirty();
  s.notify(notify_generic, "persist", a[1]);
  s.reply(c).integer(1);
}

void cmd_keys(server& s, client& c, args_t a) {
  std::vector<const std::string*> out;
  const bool all = a[1] == "*";
  for (const auto& [k, v] : s.db().all())
    if ((all || glob_match(a[1], k)) && !s.db().is_expired(v)) out.push_back(&k);
  auto w = s.reply(c);
  w.array(out.size());
  for (const auto* k : out) w.bulk(*k);
}

bool parse_scan_cursor(server& s, client& c, std::string_view arg_view, unsigned long long& out) {
  // Redis reads the cursor with strtoul: "-1" is the largest cursor, "" is 0, a leading
  // blank or trailing junk is an error (the argument ends at a NUL byte, as C sees it).
  const std::string arg(arg_view);
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(arg.c_str(), &end, 10);
  if ((!arg.empty() && std::isspace(static_cast<unsigned char>(arg[0]))) || *end != '\0' || errno == ERANGE) {
    s.add_error(c, "ERR invalid cursor");
    return false;
  }
  return true;
}

void empty_scan_reply(server& s, client& c) {
  auto w = s.reply(c);
  w.array(2);
  w.bulk("0");
  w.array(0);
}

bool parse_scan_args(server& s, client& c, args_t a, std::size_t cursor_index, bool allow_type, scan_args& out) {
  if (!parse_scan_cursor(s, c, a[cursor_index], out.cursor)) return false;
  for (std::size_t i = cursor_index + 1; i < a.size(); i += 2) {
    std::string opt = to_lower(a[i]);
    if (i + 1 >= a.size()) {
      s.add_error(c, syntax_error);
      return false;
    }
    if (opt == "count") {
      if (!string2ll(a[i + 1], out.count)) {
        s.add_error(c, not_integer_error);
        return false;
      }
      if (out.count < 1) {
        s.add_error(c, syntax_error);
        return false;
      }
    } else if (opt == "match") {
      out.pattern = a[i + 1];
      out.has_pattern = !(out.pattern.size() == 1 && out.pattern[0] == '*');
    } else if (opt == "type" && allow_type) {
      out.type = to_lower(a[i + 1]);
    } else {
      s.add_error(c, syntax_error);
      return false;
    }
  }
  return true;
}

void cmd_scan(server& s, client& c, args_t a) {
  scan_args sa;
  if (!parse_scan_args(s, c, a, 1, true, sa)) return;
  const unsigned long long cursor = sa.cursor;
  const long long count = sa.count;
  const std::string_view pattern = sa.pattern;
  const bool has_pattern = sa.has_pattern;
  const std::string& type = sa.type;
  std::vector<std::string> keys, expired;
  std::uint64_t next = s.db().scan(cursor, static_cast<std::size_t>(count), [&](const std::string& k, value& v) {
    if (has_pattern && !glob_match(pattern, k)) return;
    if (s.db().is_expired(v)) {  // as Redis: one that passed MATCH is skipped, and expired once the step is done
      expired.push_back(k);
      return;
    }
    if (!type.empty() && type != type_name(v.type())) return;
    keys.push_back(k);
  });
  for (const auto& k : expired) {
    // Expired quietly, as Redis does, except that with TYPE Redis looks the key up for
    // reading first: a "keymiss" event then.
    server::read_lookups reading(s, !type.empty());
    s.db().find(k);
  }
  auto w = s.reply(c);
  w.array(2);
  w.bulk(std::to_string(next));
  w.array(keys.size());
  for (const auto& k : keys) w.bulk(k);
}

namespace {

std::size_t heap_bytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

// What a key and its value hold in memory: the hash table node, the key's and the value's
// heap blocks (list chunks as counted for INFO memory, the hash's, set's and sorted set's
// tables and blocks as they count them).
std::size_t memory_usage(const std::string& key, const value& v) {
  using node = std::pair<const std::string, value>;
  std::size_t n = sizeof(node) + 2 * sizeof(void*) + heap_bytes(key);  // node, next pointer, cached hash
  switch (v.type()) {
    case value_type::string: n += heap_bytes(std::get<std::string>(v.data)); break;
    case value_type::list: n += std::get<packed_list>(v.data).allocated_bytes(); break;
    case value_type::hash: n += std::get<hash_value>(v.data).memory_usage(); break;
    case value_type::set: n += std::get<set_value>(v.data).memory_usage(); break;
    case value_type::zset: n += std::get<zset_value>(v.data).memory_usage(); break;
    case value_type::stream: n += std::get<stream_value>(v.data).memory_usage(); break;
  }
  return n;
}

}  // namespace

void cmd_memory(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "usage") {
    // MEMORY USAGE key [SAMPLES count]: respq counts every element; SAMPLES is accepted.
    for (std::size_t i = 3; i < a.size(); i += 2) {
      long long count;
      if (to_lower(a[i]) != "samples" || i + 1 >= a.size()) {
        s.add_error(c, syntax_error);
        return;
      }
      if (!integer_arg(s, c, a[i + 1], count)) return;
      if (count < 0) {
        s.add_error(c, syntax_error);
        return;
      }
    }
    auto it = s.db().all().find(a[2]);
    if (it == s.db().all().end()) s.reply(c).null();
    else s.reply(c).integer(static_cast<long long>(memory_usage(it->first, it->second)));
  } else if (sub == "purge") {
    release_free_memory(true);
    s.reply(c).ok();
  } else if (sub == "help") {
    static const char* lines[] = {
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value (respq counts every element).",
        "HELP", "    Prints this help."};
    help_reply(s, c, lines);
  }
}

void cmd_dbsize(server& s, client& c, args_t) { s.reply(c).integer(static_cast<long long>(s.db().size())); }

void cmd_flushdb(server& s, client& c, args_t a) {
  if (!flush_args_ok(s, c, a)) return;
  s.flush_db(s.current_db());
  s.add_dirty();
  s.reply(c).ok();
}

void cmd_flushall(server& s, client& c, args_t a) {
  if (!flush_args_ok(s, c, a)) return;
  s.flush_all();
  s.add_dirty();
  s.reply(c).ok();
}

namespace {

// Redis's getIntFromObjectOrReply: a 32-bit integer, else `msg` (or Redis's own errors).
bool int_arg(server& s, client& c, std::string_view arg, int& out, const char* msg) {
  long long v;
  if (!string2ll(arg, v)) {
    s.add_error(c, msg ? std::string_view(msg) : not_integer_error);
    return false;
  }
  if (v < INT_MIN || v > INT_MAX) {
    s.add_error(c, msg ? std::string_view(msg)
                       : std::string_view("ERR value is out of range, value must between -2147483648 and 2147483647"));
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

}  // namespace

bool db_index_arg(server& s, client& c, std::string_view arg, int& out) {
  if (!int_arg(s, c, arg, out, nullptr)) return false;
  if (out < 0 || out >= s.db_count()) {
    s.add_error(c, "ERR DB index is out of range");
    return false;
  }
  return true;
}

void cmd_move(server& s, client& c, args_t a) {
  int dst;
  if (!db_index_arg(s, c, a[2], dst)) return;
  const int src = s.current_db();
  if (src == dst) {
    s.add_error(c, "ERR source and destination objects are the same");
    return;
  }
  value* v = s.db().find(a[1]);
  if (!v) {
    s.reply(c).integer(0);
    return;
  }
  keyspace& to = s.db(dst);
  to.update_clock();
  if (to.find(a[1])) {  // (an expired one is deleted there first, as Redis's lookupKeyWrite)
    s.reply(c).integer(0);
    return;
  }
  s.before_key_write(dst, a[1]);
  const std::int64_t deadline = v->expire_at;
  value& moved = to.create(a[1], v->type());
  moved.data = std::move(v->data);
  moved.str_enc = v->str_enc;  // the same object, as Redis moves it: its encoding stays
  moved.lru = v->lru;
  s.db().erase(a[1]);
  if (deadline) to.set_expire(a[1], deadline);
  // The source key's WATCHers are told by call(); the destination's here, and clients
  // blocked on it there are served.
  {
    server::db_scope in(s, dst);
    s.signal_modified_key(a[1]);
    if (moved.type() == value_type::list || moved.type() == value_type::zset || moved.type() == value_type::stream)
      s.signal_key_as_ready(a[1]);
    if (dst == 0) s.tasks().on_key_written(a[1]);
  }
  s.add_dirty();
  s.notify(notify_generic, "move_from", a[1], src);
  s.notify(notify_generic, "move_to", a[1], dst);
  s.reply(c).integer(1);
}

void cmd_swapdb(server& s, client& c, args_t a) {
  int x, y;
  if (!int_arg(s, c, a[1], x, "ERR invalid first DB index")) return;
  if (!int_arg(s, c, a[2], y, "ERR invalid second DB index")) return;
  if (x < 0 || x >= s.db_count() || y < 0 || y >= s.db_count()) {
    s.add_error(c, "ERR DB index is out of range");
    return;
  }
  s.swap_db(x, y);
  s.add_dirty();
  s.reply(c).ok();
}

void cmd_rename(server& s, client& c, args_t a) { rename_generic(s, c, a, false); }
void cmd_renamenx(server& s, client& c, args_t a) { rename_generic(s, c, a, true); }

}  // namespace respq::core
