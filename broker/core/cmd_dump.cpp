// DUMP and RESTORE: a key's value as Redis 7.0's serialized payload and back
// (rdb_codec.hpp does the bytes), so keys move between redis-server and respq: DUMP on
// one, RESTORE on the other, or MIGRATE run on a redis-server with respq as the target.
//
// MIGRATE follows Redis's migrateCommand: the keys' payloads go to the target as RESTOREs
// (after AUTH and SELECT when needed) on a cached connection (migrate.hpp), one retry on
// a fresh connection when a cached one turns out closed; the keys the target accepted are
// deleted here unless COPY, logged as one DEL.
//
// RESTORE follows Redis's restoreCommand: options, then BUSYKEY, then the TTL, then the
// payload's footer and body, each with Redis's error text; a payload that does not decode
// leaves the keyspace untouched. Its effect is logged as the command itself, a relative
// TTL made absolute (ABSTTL), as Redis propagates it: the AOF and the mirrored upstream
// rebuild the same value from the same bytes. FREQ is accepted and ignored, as Redis
// ignores it without an LFU maxmemory policy (respq has none).
#include <algorithm>
#include <cerrno>
#include <limits>

#include "broker/core/commands.hpp"
#include "broker/core/migrate.hpp"
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

void cmd_migrate(server& s, client& c, args_t a) {
  bool copy = false, replace = false;
  std::string_view username, password;
  bool auth = false;
  std::size_t first_key = 3, num_keys = 1;
  for (std::size_t j = 6; j < a.size(); ++j) {
    const std::size_t more = a.size() - 1 - j;
    if (iequals(a[j], "copy")) {
      copy = true;
    } else if (iequals(a[j], "replace")) {
      replace = true;
    } else if (iequals(a[j], "auth")) {
      if (!more) {
        s.add_error(c, syntax_error);
        return;
      }
      auth = true;
      password = a[++j];
    } else if (iequals(a[j], "auth2")) {
      if (more < 2) {
        s.add_error(c, syntax_error);
        return;
      }
      auth = true;
      username = a[++j];
      password = a[++j];
    } else if (iequals(a[j], "keys")) {
      if (!a[3].empty()) {
        s.add_error(c, "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
        return;
      }
      first_key = j + 1;
      num_keys = a.size() - j - 1;
      break;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  long long timeout, dbid;
  if (!integer_arg(s, c, a[5], timeout) || !integer_arg(s, c, a[4], dbid)) return;
  if (timeout <= 0) timeout = 1000;

  std::vector<std::string_view> keys;
  {
    server::read_lookups reads(s);  // as Redis's lookupKeyRead: hits, misses, "keymiss"
    for (std::size_t j = first_key; j < first_key + num_keys; ++j)
      if (s.db().find(a[j])) keys.push_back(a[j]);
  }
  if (keys.empty()) {
    s.reply(c).simple("NOKEY");
    return;
  }
  // Nothing here is logged as MIGRATE: what it deletes is logged as DEL below.
  s.effects_logged();
  s.keys_signalled();
  migrate_connections* cache = s.migrate_cache();
  const std::string_view host = a[1], port = a[2];
  auto reply_io_error = [&](bool writing) {
    s.add_error(c, std::string("IOERR error or timeout ") + (writing ? "writing" : "reading") + " to target instance");
  };
  for (bool may_retry = true;;) {
    migrate_target* t = cache ? cache->get(host, port, timeout, keyspace::now_ms() / 1000) : nullptr;
    if (!t) {
      s.add_error(c, "IOERR error or timeout connecting to the client");
      return;
    }
    std::string out;
    auto bulk = [&out](std::string_view v) {
      out += '$';
      out += std::to_string(v.size());
      out += "\r\n";
      out += v;
      out += "\r\n";
    };
    if (auth) {
      out += username.empty() ? "*2\r\n" : "*3\r\n";
      bulk("AUTH");
      if (!username.empty()) bulk(username);
      bulk(password);
    }
    const bool select = t->last_dbid != dbid;
    if (select) {
      out += "*2\r\n";
      bulk("SELECT");
      bulk(std::to_string(dbid));
    }
    // The keys still there, each with what is left of its time to live (a key whose
    // deadline passed meanwhile is left out, as Redis's second look does).
    std::vector<std::string_view> sent;
    std::string payload;
    for (std::string_view k : keys) {
      value* v = s.db().find(k, false);
      if (!v) continue;
      long long ttl = 0;
      if (v->expire_at) {
        ttl = v->expire_at - keyspace::now_ms();
        if (ttl < 0) continue;
        if (ttl < 1) ttl = 1;
      }
      sent.push_back(k);
      out += replace ? "*5\r\n" : "*4\r\n";
      bulk("RESTORE");
      bulk(k);
      bulk(std::to_string(ttl));
      payload.clear();
      rdb::dump_value(*v, payload, node_limits(s));
      bulk(payload);
      if (replace) bulk("REPLACE");
    }
    bool retry_now = false, write_error = false;
    int io_errno = 0;  // why the last write or read failed (ETIMEDOUT: no retry)
    std::string auth_line, select_line, line;
    if (!t->write_all(out, timeout)) {
      io_errno = errno;
      write_error = true;
      retry_now = true;
    } else if ((auth && t->read_line(auth_line, timeout) <= 0) || (select && t->read_line(select_line, timeout) <= 0)) {
      io_errno = errno;
      retry_now = true;
    }
    if (!retry_now) {
      bool error_from_target = false, socket_error = false;
      std::vector<std::string_view> deleted{"DEL"};
      std::size_t j = 0;
      for (; j < sent.size(); ++j) {
        if (t->read_line(line, timeout) <= 0) {  // (an empty line too, as Redis)
          io_errno = errno;
          socket_error = true;
          break;
        }
        const bool refused = (auth && auth_line.starts_with('-')) || (select && select_line.starts_with('-')) ||
                             line.starts_with('-');
        if (refused) {
          if (!error_from_target) {
            // On an error the database the target has selected is no longer known.
            t->last_dbid = -1;
            const std::string& err = auth && auth_line.starts_with('-')       ? auth_line
                                     : select && select_line.starts_with('-') ? select_line
                                                                              : line;
            error_from_target = true;
            // (The text up to a NUL byte, as Redis formats it with %s.)
            s.add_error(c, "ERR Target instance replied with error: " + err.substr(1, err.find('\0', 1) - 1));
          }
        } else if (!copy) {
          // No COPY: the key moved, it goes here.
          s.db().erase(sent[j]);
          s.key_deleted(sent[j]);
          s.notify(notify_generic, "del", sent[j]);
          s.add_dirty();
          deleted.push_back(sent[j]);
        }
      }
      if (deleted.size() > 1) s.stream().append(deleted);
      // A cached connection found closed before any reply: once more on a new one.
      if (!error_from_target && socket_error && j == 0 && may_retry && io_errno != ETIMEDOUT) {
        cache->close(host, port);
        may_retry = false;
        continue;
      }
      if (socket_error) cache->close(host, port);
      if (!error_from_target && socket_error) {
        reply_io_error(false);
        return;
      }
      if (!error_from_target) {
        t->last_dbid = dbid;
        s.reply(c).ok();
      }
      return;
    }
    cache->close(host, port);
    if (io_errno != ETIMEDOUT && may_retry) {
      may_retry = false;
      continue;
    }
    reply_io_error(write_error);
    return;
  }
}

}  // namespace respq::core
