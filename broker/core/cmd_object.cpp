// Commands about whole keys whatever their type: OBJECT (ENCODING REFCOUNT IDLETIME FREQ
// HELP), COPY, TOUCH and RANDOMKEY.
//
// OBJECT ENCODING answers the name Redis 7.0 would give the same content (see
// encoding_name in keyspace.hpp). REFCOUNT answers as Redis does without a maxmemory
// policy: strings holding an integer below 10000 are Redis's shared integer objects
// (INT_MAX), every other value 1. IDLETIME is the seconds since the key was last looked
// up, from the stamp keyspace::find leaves on it, read on the same cron-advanced clock. FREQ needs an LFU policy, which respq
// does not have: it answers Redis's error for that case.
#include "broker/core/commands.hpp"
#include "broker/core/task_manager.hpp"

namespace respq::core {

namespace {

// The lookup OBJECT does: the key without touching its access stamp; nil when missing.
value* object_lookup(server& s, client& c, std::string_view key) {
  value* v = s.db().find(key, false);  // expires it, as Redis's lookup does; counted as a read
  if (!v) s.reply(c).null();
  return v;
}

}  // namespace

void cmd_object(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "help") {
    static const char* lines[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
    return;
  }
  value* v = object_lookup(s, c, a[2]);
  if (!v) return;
  if (sub == "encoding") {
    s.reply(c).bulk(encoding_name(*v));
  } else if (sub == "refcount") {
    long long n = 0;
    const bool shared = v->type() == value_type::string && v->str().size() <= 20 && string2ll(v->str(), n) &&
                        n >= 0 && n < 10000;
    s.reply(c).integer(shared ? 2147483647 : 1);
  } else if (sub == "idletime") {
    // The same cached clock the stamp came from (as Redis's LRU_CLOCK), in whole seconds;
    // modulo 2^32, as a stamp RESTORE IDLETIME set may lie below the clock's start.
    const std::uint32_t idle = keyspace::lru_clock() - v->lru;
    s.reply(c).integer(static_cast<long long>(idle / keyspace::lru_ticks_per_second));
  } else {  // freq
    s.add_error(c,
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when "
                "switching between policies at runtime LRU and LFU data will take some time to adjust.");
  }
}

// COPY source destination [DB destination-db] [REPLACE]. The copy keeps the deadline
// and is propagated as the command itself (Redis's AOF and the mirror's upstream run it).
void cmd_copy(server& s, client& c, args_t a) {
  int dst_db = s.current_db();
  bool replace = false;
  for (std::size_t i = 3; i < a.size(); ++i) {
    const std::string opt = to_lower(a[i]);
    if (opt == "replace") {
      replace = true;
    } else if (opt == "db" && i + 1 < a.size()) {
      if (!db_index_arg(s, c, a[++i], dst_db)) return;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  const int here = s.current_db();
  if (dst_db == here && a[1] == a[2]) {
    s.add_error(c, "ERR source and destination objects are the same");
    return;
  }
  value* src;
  {
    server::read_lookups reading(s);
    src = s.db().find(a[1]);
  }
  if (!src) {
    s.reply(c).integer(0);
    return;
  }
  keyspace& to = s.db(dst_db);
  to.update_clock();
  const bool replacing = to.find(a[2]) != nullptr;  // (an expired destination is deleted first, as Redis's lookupKeyWrite)
  if (replacing && !replace) {
    s.reply(c).integer(0);
    return;
  }
  // call() announced both keys in the current database; a destination elsewhere is
  // announced here, for the AOF rewrite's copy-on-write.
  if (dst_db != here) s.before_key_write(dst_db, a[2]);
  auto data = copy_data(*src);
  const std::int64_t deadline = src->expire_at;
  const value_type t = src->type();
  const string_encoding enc = src->str_enc;
  value& dst = to.create(a[2], t);  // (replaces the destination, deadline included)
  if (replacing) s.notify(notify_new, "new", a[2], dst_db);  // Redis deletes it and adds the copy
  dst.data = std::move(data);
  dst.str_enc = enc;
  if (deadline) to.set_expire(a[2], deadline);
  {
    server::db_scope in(s, dst_db);
    s.signal_modified_key(a[2]);  // the copy, not the source (keys_signalled below)
    if (t == value_type::list || t == value_type::zset || t == value_type::stream) s.signal_key_as_ready(a[2]);
    if (dst_db == 0 && dst_db != here) s.tasks().on_key_written(a[2]);
  }
  s.add_dirty();
  s.keys_signalled();
  s.notify(notify_generic, "copy_to", a[2], dst_db);
  s.reply(c).integer(1);
}

void cmd_touch(server& s, client& c, args_t a) {
  long long n = 0;
  for (std::size_t i = 1; i < a.size(); ++i)
    if (s.db().find(a[i])) ++n;
  s.reply(c).integer(n);
}

void cmd_randomkey(server& s, client& c, args_t) {
  const std::string* k = s.db().random_key();
  if (k) s.reply(c).bulk(*k);
  else s.reply(c).null();
}

}  // namespace respq::core
