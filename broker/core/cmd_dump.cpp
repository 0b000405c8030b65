// DUMP and RESTORE: a key's value as Redis 7.0's serialized payload and back
// (rdb_codec.hpp does the bytes), so keys move between redis-server and respq: DUMP on
// one, RESTORE on the other, or MIGRATE run on a redis-server with respq as the target.
//
// RESTORE follows Redis's restoreCommand: options, then BUSYKEY, then the TTL, then the
// payload's footer and body, each with Redis's error text; a payload that does not decode
// leaves the keyspace untouched. Its effect is logged as the command itself, a relative
// TTL made absolute (ABSTTL), as Redis propagates it: the AOF and the mirrored upstream
// rebuild the same value from the same bytes. FREQ is accepted and ignored, as Redis
// ignores it without an LFU maxmemory policy (respq has none).
#include <algorithm>
#include <limits>

#include "broker/core/commands.hpp"
#include "broker/core/rdb_codec.hpp"
#include "broker/core/task_manager.hpp"

#include <vector>

namespace respq::core {

namespace {

// How a stream's entries are cut into blocks: the server's settings, as XADD uses them.
stream_node_limits node_limits(server& s) {
  return {s.cfg().stream_node_max_bytes, static_cast<std::uint64_t>(s.cfg().stream_node_max_entries)};
}

}  // namespace

void cmd_dump(server& s, client& c, args_t a) {
  value* v = s.db().find(a[1]);
  if (!v) {
    s.reply(c).null();
    return;
  }
  std::string payload;
  rdb::dump_value(*v, payload, node_limits(s));
  s.reply(c).bulk(payload);
}

void cmd_restore(server& s, client& c, args_t a) {
  bool replace = false, absttl = false;
  long long idle = -1, freq = -1;
  for (std::size_t j = 4; j < a.size(); ++j) {
    const std::size_t additional = a.size() - j - 1;
    if (iequals(a[j], "replace")) {
      replace = true;
    } else if (iequals(a[j], "absttl")) {
      absttl = true;
    } else if (iequals(a[j], "idletime") && additional >= 1 && freq == -1) {
      if (!integer_arg(s, c, a[j + 1], idle)) return;
      if (idle < 0) {
        s.add_error(c, "ERR Invalid IDLETIME value, must be >= 0");
        return;
      }
      ++j;
    } else if (iequals(a[j], "freq") && additional >= 1 && idle == -1) {
      if (!integer_arg(s, c, a[j + 1], freq)) return;
      if (freq < 0 || freq > 255) {
        s.add_error(c, "ERR Invalid FREQ value, must be >= 0 and <= 255");
        return;
      }
      ++j;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  const std::string_view key = a[1];
  keyspace& db = s.db();
  const bool exists = db.find(key) != nullptr;  // (expires it first, as lookupKeyWrite)
  if (exists && !replace) {
    s.add_error(c, "BUSYKEY Target key name already exists.");
    return;
  }
  long long ttl;
  if (!integer_arg(s, c, a[2], ttl)) return;
  if (ttl < 0) {
    s.add_error(c, "ERR Invalid TTL value, must be >= 0");
    return;
  }
  value restored;
  switch (rdb::restore_value(a[3], restored, node_limits(s))) {
    case rdb::restore_status::ok: break;
    case rdb::restore_status::bad_footer:
      s.add_error(c, "ERR DUMP payload version or checksum are wrong");
      return;
    case rdb::restore_status::bad_format:
    case rdb::restore_status::module_type:  // (Redis's text for a module it does not have)
      s.add_error(c, "ERR Bad data format");
      return;
  }
  // The record of an HTTP queue's tasks in flight is what a restart recovers them from:
  // it is replaced only by what its own commands write.
  if (exists && s.current_db() == 0) {
    if (const std::string* q = s.tasks().inflight_owner(key)) {
      s.add_error(c, "ERR '" + std::string(key) + "' records the tasks in flight of HTTP queue '" + *q +
                         "' and cannot be replaced");
      return;
    }
  }
  // A relative TTL past the clock's range wraps, as Redis's does (and then reads as
  // already expired), without the overflow being undefined here.
  if (ttl && !absttl) ttl = static_cast<long long>(static_cast<unsigned long long>(ttl) + keyspace::now_ms());
  if (ttl && ttl <= keyspace::now_ms() && !s.loading()) {
    // Already expired: nothing is created; a replaced key is deleted (logged as DEL).
    if (exists) {
      db.erase(key);
      s.key_deleted(key);
      s.stream().append({"DEL", key});
      s.effects_logged();
      s.notify(notify_generic, "del", key);
      s.add_dirty();
    }
    s.reply(c).simple("OK");
    return;
  }
  const value_type t = restored.type();
  value& dst = db.create(key, t);  // (replaces an existing key, deadline included)
  if (exists) s.notify(notify_new, "new", key);  // Redis deletes it and adds the new one
  dst.data = std::move(restored.data);
  dst.str_enc = restored.str_enc;
  if (ttl) db.set_expire(key, ttl);
  if (idle >= 0) {
    // The access stamp as if the key had been looked up `idle` seconds ago (OBJECT
    // IDLETIME reads it): the clock counts from boot, so the stamp may wrap around below
    // it; OBJECT IDLETIME subtracts modulo 2^32 (up to 13 years back).
    const std::uint64_t back = std::min<std::uint64_t>(static_cast<std::uint64_t>(idle) * keyspace::lru_ticks_per_second,
                                                       std::numeric_limits<std::uint32_t>::max());
    dst.lru = keyspace::lru_clock() - static_cast<std::uint32_t>(back);
  }
  if (ttl && !absttl) {
    // Logged with the absolute deadline, as Redis propagates it: the command as given,
    // the TTL replaced, ABSTTL added.
    const std::string when = std::to_string(ttl);
    std::vector<std::string_view> argv(a.begin(), a.end());
    argv[2] = when;
    argv.push_back("ABSTTL");
    s.stream().append(argv);
    s.effects_logged();
  }
  if (t == value_type::list || t == value_type::zset || t == value_type::stream) s.signal_key_as_ready(key);
  s.notify(notify_generic, "restore", key);
  s.add_dirty();
  s.reply(c).simple("OK");
}

}  // namespace respq::core
