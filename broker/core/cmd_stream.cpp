// Stream commands, Redis 7.0 semantics (t_stream.c): XADD XLEN XRANGE XREVRANGE XDEL
// XTRIM XREAD XSETID XINFO. Argument checks in Redis's order, its error texts, its reply
// shapes (an entry is [id, [field, value, ...]] in both protocols; XREAD answers an
// array of [key, entries] pairs in RESP2 and a map key -> entries in RESP3).
//
// Effects: XADD is logged with the id it generated (never `*` or `ms-*`), and an
// approximate or limited trim as the exact trim it amounted to (MAXLEN = <length after>,
// MINID = <first id after>), so a replay, which trims exactly, reaches the same stream;
// XTRIM the same way. A blocked XREAD is served after the writing command (blocking.cpp).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "broker/core/stream_commands.hpp"

namespace respq::core {

namespace streams {

// Redis's string2ull: a strict integer, else strtoull (which takes blanks and a sign).
bool parse_ull(const char* s, unsigned long long& out) {
  long long ll;
  if (string2ll(s, ll)) {
    if (ll < 0) return false;
    out = static_cast<unsigned long long>(ll);
    return true;
  }
  errno = 0;
  char* end = nullptr;
  out = std::strtoull(s, &end, 10);
  if (errno == EINVAL || errno == ERANGE || !(*s != '\0' && *end == '\0')) return false;
  return true;
}

// streamGenericParseIDOrReply. seq_given non-null allows "<ms>-*".
bool parse_id(std::string_view arg, stream_id& id, std::uint64_t missing_seq, bool strict, bool* seq_given) {
  if (arg.size() > 127) return false;
  std::string buf(arg);
  buf = std::string(buf.c_str());  // as C strings: an embedded NUL ends the argument
  if (strict && buf.size() == 1 && (buf[0] == '-' || buf[0] == '+')) return false;
  if (seq_given) *seq_given = true;
  if (buf == "-") {
    id = {0, 0};
    return true;
  }
  if (buf == "+") {
    id = {UINT64_MAX, UINT64_MAX};
    return true;
  }
  unsigned long long ms, seq;
  const std::size_t dash = buf.find('-');
  std::string head = dash == std::string::npos ? buf : buf.substr(0, dash);
  if (!parse_ull(head.c_str(), ms)) return false;
  if (dash != std::string::npos) {
    std::string tail = buf.substr(dash + 1);
    if (seq_given && tail == "*") {
      seq = 0;
      *seq_given = false;
    } else if (!parse_ull(tail.c_str(), seq)) {
      return false;
    }
  } else {
    seq = missing_seq;
  }
  id = {ms, seq};
  return true;
}

bool id_arg(server& s, client& c, std::string_view arg, stream_id& id, bool strict, std::uint64_t missing_seq) {
  if (parse_id(arg, id, missing_seq, strict, nullptr)) return true;
  s.add_error(c, invalid_id_error);
  return false;
}

// streamParseIntervalIDOrReply: "(id" is exclusive (and then strict).
bool interval_id_arg(server& s, client& c, std::string_view arg, stream_id& id, bool& exclusive,
                     std::uint64_t missing_seq) {
  exclusive = arg.size() > 1 && arg[0] == '(';
  if (exclusive) return id_arg(s, c, arg.substr(1), id, true, missing_seq);
  return id_arg(s, c, arg, id, false, missing_seq);
}

// The stream at key, or nullptr; WRONGTYPE replied (and `wrong` set) for another type.
stream_value* lookup_stream(server& s, client& c, std::string_view key, bool& wrong) {
  wrong = false;
  value* v = s.db().find(key);
  if (!v) return nullptr;
  if (v->type() != value_type::stream) {
    s.add_error(c, wrongtype_error);
    wrong = true;
    return nullptr;
  }
  return &v->stream();
}

void write_entry(resp::reply_writer& w, const stream_value::entry& e) {
  w.array(2);
  w.bulk(e.id.str());
  w.array(e.fields.size() * 2);
  for (const auto& [f, v] : e.fields) {
    w.bulk(f);
    w.bulk(v);
  }
}

// The entries of a range as an array.
void write_range(resp::reply_writer& w, const stream_value& st, stream_id start, stream_id end, std::size_t count,
                 bool rev) {
  std::vector<stream_value::entry> out;
  st.range(start, end, count, rev, [&](const stream_value::entry& e) {
    out.push_back(e);
    return true;
  });
  w.array(out.size());
  for (const auto& e : out) write_entry(w, e);
}

// ---- XADD / XTRIM arguments (streamParseAddOrTrimArgsOrReply) ----
enum class trim_kind { none, maxlen, minid };
struct trim_args {
  trim_kind kind = trim_kind::none;
  bool approx = false;
  long long maxlen = 0;
  stream_id minid;
  long long limit = 0;
  bool nomkstream = false;
  bool id_given = false, seq_given = true;
  stream_id id;
};

// Returns the index of the id (XADD) or past the options (XTRIM); -1 after an error.
long long parse_add_trim(server& s, client& c, args_t a, bool xadd, trim_args& t) {
  std::size_t i = 2;
  bool limit_given = false;
  const std::size_t argc = a.size();
  for (; i < argc; ++i) {
    const std::size_t more = argc - 1 - i;
    const std::string_view opt = a[i];
    if (xadd && opt == "*") break;
    const bool is_maxlen = iequals(opt, "maxlen");
    if ((is_maxlen || iequals(opt, "minid")) && more) {
      if (t.kind != trim_kind::none) {
        s.add_error(c, "ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
        return -1;
      }
      t.approx = false;
      const std::string_view next = a[i + 1];
      if (more >= 2 && next == "~") {
        t.approx = true;
        ++i;
      } else if (more >= 2 && next == "=") {
        ++i;
      }
      if (is_maxlen) {
        if (!integer_arg(s, c, a[i + 1], t.maxlen)) return -1;
        if (t.maxlen < 0) {
          s.add_error(c, "ERR The MAXLEN argument must be >= 0.");
          return -1;
        }
      } else if (!id_arg(s, c, a[i + 1], t.minid)) {
        return -1;
      }
      ++i;
      t.kind = is_maxlen ? trim_kind::maxlen : trim_kind::minid;
    } else if (iequals(opt, "limit") && more) {
      if (!integer_arg(s, c, a[i + 1], t.limit)) return -1;
      if (t.limit < 0) {
        s.add_error(c, "ERR The LIMIT argument must be >= 0.");
        return -1;
      }
      limit_given = true;
      ++i;
    } else if (xadd && iequals(opt, "nomkstream")) {
      t.nomkstream = true;
    } else if (xadd) {
      if (!parse_id(opt, t.id, 0, true, &t.seq_given)) {
        s.add_error(c, invalid_id_error);
        return -1;
      }
      t.id_given = true;
      break;
    } else {
      s.add_error(c, syntax_error);
      return -1;
    }
  }
  if (s.loading()) {
    t.limit = 0;  // the log holds exact trims
  } else if (limit_given) {
    if (t.kind == trim_kind::none) {
      s.add_error(c, "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
      return -1;
    }
    if (!t.approx) {
      s.add_error(c, "ERR syntax error, LIMIT cannot be used without the special ~ option");
      return -1;
    }
  } else if (t.approx) {
    // At most 100 whole nodes; 10,000 entries when the setting is 0, 1,000,000 at most.
    const long long per_node = s.cfg().stream_node_max_entries;
    t.limit = per_node > 0 && per_node <= 10000 ? 100 * per_node : per_node > 0 ? 1000000 : 10000;
  } else {
    t.limit = 0;
  }
  return static_cast<long long>(i);
}

std::uint64_t apply_trim(stream_value& st, const trim_args& t) {
  const auto limit = static_cast<std::uint64_t>(t.limit);
  if (t.kind == trim_kind::maxlen) return st.trim_maxlen(static_cast<std::uint64_t>(t.maxlen), t.approx, limit);
  if (t.kind == trim_kind::minid) return st.trim_minid(t.minid, t.approx, limit);
  return 0;
}

// The trim as a replay must do it: exact, with the resulting length / first id when it
// was approximate, as Redis's streamRewriteTrimArgument.
void trim_effect_args(const stream_value& st, const trim_args& t, std::vector<std::string>& out) {
  if (t.kind == trim_kind::none) return;
  out.emplace_back(t.kind == trim_kind::maxlen ? "MAXLEN" : "MINID");
  out.emplace_back("=");
  if (t.kind == trim_kind::maxlen) {
    out.push_back(std::to_string(t.approx ? st.size() : static_cast<std::uint64_t>(t.maxlen)));
  } else {
    stream_id first;
    if (!t.approx) first = t.minid;
    else if (!st.first_entry_id(first)) first = {0, 0};
    out.push_back(first.str());
  }
}

void append_effect(server& s, const std::vector<std::string>& head, args_t rest, std::size_t key_index) {
  std::vector<std::string_view> argv;
  argv.reserve(head.size() + rest.size());
  for (const auto& h : head) argv.emplace_back(h);
  for (auto r : rest) argv.push_back(r);
  s.stream().append(std::span<const std::string_view>(argv.data(), argv.size()), key_index);
}

void log_effect(server& s, const std::vector<std::string>& head, args_t rest) {
  append_effect(s, head, rest);
  s.effects_logged();
}

}  // namespace streams

using namespace streams;

void cmd_xadd(server& s, client& c, args_t a) {
  trim_args t;
  const long long idpos = parse_add_trim(s, c, a, true, t);
  if (idpos < 0) return;
  const auto field_pos = static_cast<std::size_t>(idpos) + 1;
  if (a.size() < field_pos + 2 || (a.size() - field_pos) % 2 == 1) {
    s.add_error(c, "ERR wrong number of arguments for 'xadd' command");
    return;
  }
  if (t.id_given && t.seq_given && t.id.is_zero()) {
    s.add_error(c, "ERR The ID specified in XADD must be greater than 0-0");
    return;
  }
  value* v = s.db().find(a[1]);
  if (v && v->type() != value_type::stream) {
    s.add_error(c, wrongtype_error);
    return;
  }
  if (!v && t.nomkstream) {
    s.reply(c).null();
    return;
  }
  stream_value* st = v ? &v->stream() : nullptr;
  const stream_id last = st ? st->last_id : stream_id{};
  if (last.is_max()) {
    s.add_error(c, "ERR The stream has exhausted the last possible ID, unable to add more items");
    return;
  }
  // streamAppendItem's id choice.
  stream_id id;
  if (t.id_given) {
    if (t.seq_given) {
      id = t.id;
    } else if (last.ms == t.id.ms) {
      if (last.seq == UINT64_MAX) {
        s.add_error(c, "ERR Elements are too large to be stored");
        return;
      }
      id = {last.ms, last.seq + 1};
    } else {
      id = t.id;
    }
  } else {
    const auto now = static_cast<std::uint64_t>(keyspace::now_ms());
    if (now > last.ms) id = {now, 0};
    else {
      id = last;
      id.incr();
    }
  }
  if (id <= last) {
    s.add_error(c, "ERR The ID specified in XADD is equal or smaller than the target stream top item");
    return;
  }
  if (!st) st = &s.db().create(a[1], value_type::stream).stream();
  std::vector<std::string_view> fields(a.begin() + static_cast<std::ptrdiff_t>(field_pos), a.end());
  st->append(id, fields, {s.cfg().stream_node_max_bytes, static_cast<std::uint64_t>(s.cfg().stream_node_max_entries)});
  const std::string ids = id.str();
  s.reply(c).bulk(ids);
  s.add_dirty();
  s.notify(notify_stream, "xadd", a[1]);
  if (apply_trim(*st, t)) s.notify(notify_stream, "xtrim", a[1]);
  std::vector<std::string> head{"XADD", std::string(a[1])};
  if (t.nomkstream) head.emplace_back("NOMKSTREAM");
  trim_effect_args(*st, t, head);
  head.push_back(ids);
  log_effect(s, head, a.subspan(field_pos));
  s.signal_key_as_ready(a[1]);
}

void cmd_xtrim(server& s, client& c, args_t a) {
  trim_args t;
  if (parse_add_trim(s, c, a, false, t) < 0) return;
  bool wrong;
  stream_value* st = lookup_stream(s, c, a[1], wrong);
  if (wrong) return;
  if (!st) {
    s.reply(c).integer(0);
    return;
  }
  const std::uint64_t removed = apply_trim(*st, t);
  s.reply(c).integer(static_cast<long long>(removed));
  if (!removed) return;
  s.add_dirty(removed);
  s.notify(notify_stream, "xtrim", a[1]);
  std::vector<std::string> head{"XTRIM", std::string(a[1])};
  trim_effect_args(*st, t, head);
  log_effect(s, head, {});
}

void cmd_xlen(server& s, client& c, args_t a) {
  bool wrong;
  stream_value* st = lookup_stream(s, c, a[1], wrong);
  if (wrong) return;
  s.reply(c).integer(st ? static_cast<long long>(st->size()) : 0);
}

namespace {
void xrange_generic(server& s, client& c, args_t a, bool rev) {
  const std::string_view start_arg = rev ? a[3] : a[2];
  const std::string_view end_arg = rev ? a[2] : a[3];
  stream_id start, end;
  bool startex, endex;
  if (!interval_id_arg(s, c, start_arg, start, startex, 0)) return;
  if (startex && !start.incr()) {
    s.add_error(c, "ERR invalid start ID for the interval");
    return;
  }
  if (!interval_id_arg(s, c, end_arg, end, endex, UINT64_MAX)) return;
  if (endex && !end.decr()) {
    s.add_error(c, "ERR invalid end ID for the interval");
    return;
  }
  long long count = -1;
  for (std::size_t j = 4; j < a.size(); ++j) {
    const std::size_t additional = a.size() - j - 1;
    if (iequals(a[j], "count") && additional >= 1) {
      if (!integer_arg(s, c, a[j + 1], count)) return;
      if (count < 0) count = 0;
      ++j;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  // As Redis: the key is looked up (an empty array when missing, WRONGTYPE) before COUNT 0
  // answers a null array.
  bool wrong;
  stream_value* st = lookup_stream(s, c, a[1], wrong);
  if (wrong) return;
  auto w = s.reply(c);
  if (!st) {
    w.array(0);
    return;
  }
  if (count == 0) {
    w.null_array();
    return;
  }
  write_range(w, *st, start, end, count < 0 ? 0 : static_cast<std::size_t>(count), rev);
}
}  // namespace

void cmd_xrange(server& s, client& c, args_t a) { xrange_generic(s, c, a, false); }
void cmd_xrevrange(server& s, client& c, args_t a) { xrange_generic(s, c, a, true); }

void cmd_xdel(server& s, client& c, args_t a) {
  bool wrong;
  stream_value* st = lookup_stream(s, c, a[1], wrong);
  if (wrong) return;
  if (!st) {
    s.reply(c).integer(0);
    return;
  }
  std::vector<stream_id> ids(a.size() - 2);
  for (std::size_t j = 2; j < a.size(); ++j)
    if (!id_arg(s, c, a[j], ids[j - 2])) return;
  long long deleted = 0;
  for (const auto& id : ids) {
    if (st->erase(id)) {
      if (id > st->max_deleted_id) st->max_deleted_id = id;
      ++deleted;
    }
  }
  s.add_dirty(static_cast<std::uint64_t>(deleted));
  if (deleted) s.notify(notify_stream, "xdel", a[1]);
  s.reply(c).integer(deleted);
}

void cmd_xsetid(server& s, client& c, args_t a) {
  stream_id id, max_xdel;
  long long entries_added = -1;
  if (!id_arg(s, c, a[2], id)) return;
  for (std::size_t i = 3; i < a.size();) {
    const std::size_t more = a.size() - 1 - i;
    if (iequals(a[i], "entriesadded") && more) {
      if (!integer_arg(s, c, a[i + 1], entries_added)) return;
      if (entries_added < 0) {
        s.add_error(c, "ERR entries_added must be positive");
        return;
      }
      i += 2;
    } else if (iequals(a[i], "maxdeletedid") && more) {
      if (!id_arg(s, c, a[i + 1], max_xdel)) return;
      if (id < max_xdel) {
        s.add_error(c, "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
        return;
      }
      i += 2;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  value* v = s.db().find(a[1]);
  if (!v) {
    s.add_error(c, "ERR no such key");
    return;
  }
  if (v->type() != value_type::stream) {
    s.add_error(c, wrongtype_error);
    return;
  }
  stream_value& st = v->stream();
  if (st.size() > 0) {
    stream_id top;
    st.last_entry_id(top);
    if (id < top) {
      s.add_error(c, "ERR The ID specified in XSETID is smaller than the target stream top item");
      return;
    }
    if (entries_added != -1 && st.size() > static_cast<std::uint64_t>(entries_added)) {
      s.add_error(c, "ERR The entries_added specified in XSETID is smaller than the target stream length");
      return;
    }
  }
  if (id < st.max_deleted_id) {
    s.add_error(c, "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    return;
  }
  st.last_id = id;
  if (entries_added != -1) st.entries_added = static_cast<std::uint64_t>(entries_added);
  if (!max_xdel.is_zero()) st.max_deleted_id = max_xdel;
  s.add_dirty();
  s.notify(notify_stream, "xsetid", a[1]);
  s.reply(c).ok();
}

// ---- XREAD / XREADGROUP (xreadCommand) ----

namespace {

// Entries a blocked XREAD / XREADGROUP gets at most when it gave no COUNT, as Redis's
// XREAD_BLOCKED_DEFAULT_COUNT.
constexpr long long blocked_default_count = 1000;

void xread_generic(server& s, client& c, args_t a, bool xreadgroup) {
  long long timeout = -1, count = 0;
  std::size_t streams_arg = 0, streams_count = 0;
  bool noack = false, has_group = false;
  std::string_view group_name, consumer_name;
  for (std::size_t i = 1; i < a.size(); ++i) {
    const std::size_t more = a.size() - i - 1;
    const std::string_view o = a[i];
    if (iequals(o, "block") && more) {
      if (c.is_fake && &c != &s.internal_client()) {  // a script (Redis keeps this error for Lua)
        s.add_error(c, "ERR " + std::string(a[0]) + " command is not allowed with BLOCK option from scripts");
        return;
      }
      ++i;
      long long ms;
      if (!parse_timeout_ms(s, c, a[i], ms)) return;
      if (ms > 0 && ms > LLONG_MAX - keyspace::now_ms()) {
        s.add_error(c, "ERR timeout is out of range");
        return;
      }
      timeout = ms;
    } else if (iequals(o, "count") && more) {
      ++i;
      if (!integer_arg(s, c, a[i], count)) return;
      if (count < 0) count = 0;
    } else if (iequals(o, "streams") && more) {
      streams_arg = i + 1;
      streams_count = a.size() - streams_arg;
      if (streams_count % 2 != 0) {
        s.add_error(c, "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
        return;
      }
      streams_count /= 2;
      break;
    } else if (iequals(o, "group") && more >= 2) {
      if (!xreadgroup) {
        s.add_error(c, "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
        return;
      }
      has_group = true;
      group_name = a[i + 1];
      consumer_name = a[i + 2];
      i += 2;
    } else if (iequals(o, "noack")) {
      if (!xreadgroup) {
        s.add_error(c, "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
        return;
      }
      noack = true;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  if (streams_arg == 0) {
    s.add_error(c, syntax_error);
    return;
  }
  if (xreadgroup && !has_group) {
    s.add_error(c, "ERR Missing GROUP option for XREADGROUP");
    return;
  }
  // Effects are logged by the group reads themselves (XCLAIM, XGROUP SETID), never as
  // the command.
  if (xreadgroup) {
    s.effects_logged();
    s.keys_signalled();  // a group read does not touch WATCH, as in Redis
  }
  const auto key_at = [&](std::size_t i) { return a[streams_arg + i]; };
  // ids[i]: read entries after it; for ">" the maximum id, resolved to the group's last
  // id when served (as Redis does).
  std::vector<stream_id> ids(streams_count);
  // Redis reads the streams (lookupKeyRead) here and again when serving, XREADGROUP too.
  server::read_lookups reading(s);
  for (std::size_t i = 0; i < streams_count; ++i) {
    bool wrong;
    stream_value* st = lookup_stream(s, c, key_at(i), wrong);
    if (wrong) return;
    if (has_group && (!st || st->groups.find(group_name) == st->groups.end())) {
      s.add_error(c, "NOGROUP No such key '" + std::string(key_at(i)) + "' or consumer group '" +
                         std::string(group_name) + "' in XREADGROUP with GROUP option");
      return;
    }
    const std::string_view arg = a[streams_arg + streams_count + i];
    if (arg == "$") {
      if (xreadgroup) {
        s.add_error(c,
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
                    "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
                    "return an empty result set.");
        return;
      }
      ids[i] = st ? st->last_id : stream_id{};
      continue;
    }
    if (arg == ">") {
      if (!xreadgroup) {
        s.add_error(c, "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
        return;
      }
      ids[i] = stream_id{UINT64_MAX, UINT64_MAX};
      continue;
    }
    if (!id_arg(s, c, arg, ids[i])) return;
  }
  // Serve what can be served now: XREAD the streams with an entry past the id;
  // XREADGROUP every history read, and ">" where the stream has an entry past the
  // group's last id. Key by key, as Redis does: a stream named twice with ">" is served
  // once, its group advanced by the first (so the reply's length is known at the end).
  std::string served_body;
  resp::reply_writer body(served_body, c.resp);
  std::size_t served = 0;
  for (std::size_t i = 0; i < streams_count; ++i) {
    value* v = s.db().find(key_at(i));
    if (!v) continue;
    stream_value& st = v->stream();
    stream_id start = ids[i];
    bool history = false;
    stream_group* g = nullptr;
    if (has_group) {
      g = &st.groups.find(group_name)->second;
      if (!ids[i].is_max()) {
        history = true;
      } else {
        stream_id top;
        if (!st.size() || !st.last_entry_id(top) || !(top > g->last_id)) continue;
        start = g->last_id;
      }
    } else {
      stream_id top;
      if (!st.size() || !st.last_entry_id(top) || !(top > ids[i])) continue;
    }
    ++served;
    start.incr();
    if (c.resp == 2) body.array(2);
    body.bulk(key_at(i));
    if (!has_group) {
      write_range(body, st, start, stream_id{UINT64_MAX, UINT64_MAX}, static_cast<std::size_t>(count), false);
      continue;
    }
    touch_consumer(s, key_at(i), *g, group_name, consumer_name, noack);
    group_read(s, body, key_at(i), st, *g, group_name, consumer_name, start, static_cast<std::size_t>(count), noack,
               history);
    s.add_dirty();
  }
  if (served) {
    auto w = s.reply(c);
    if (c.resp == 2) w.array(served);
    else w.map(served);
    w.raw(served_body);
    return;
  }
  if (timeout == -1 || c.in_exec || c.is_fake) {
    s.reply(c).null_array();
    return;
  }
  auto b = std::make_unique<blocked_state>();
  b->what = blocked_state::kind::xread;
  b->count = count ? count : blocked_default_count;
  b->command = xreadgroup ? "xreadgroup" : "xread";
  if (has_group) {
    b->xgroup = true;
    b->group = group_name;
    b->consumer = consumer_name;
    b->noack = noack;
  }
  b->deadline = timeout == 0 ? clock::time_point::max() : clock::now() + std::chrono::milliseconds(timeout);
  for (std::size_t i = 0; i < streams_count; ++i) {
    if (std::find(b->keys.begin(), b->keys.end(), key_at(i)) != b->keys.end()) continue;
    b->keys.emplace_back(key_at(i));
    b->stream_ids.push_back(ids[i]);
  }
  s.block_client(c, std::move(b));
}

}  // namespace

void cmd_xread(server& s, client& c, args_t a) { xread_generic(s, c, a, false); }
void cmd_xreadgroup(server& s, client& c, args_t a) { xread_generic(s, c, a, true); }

bool serve_xread_waiter(server& s, client& c, std::string_view key) {
  blocked_state& b = *c.blocked;
  std::size_t i = 0;
  while (i < b.keys.size() && b.keys[i] != key) ++i;
  if (i == b.keys.size()) return false;
  value* v = s.db().find(key);
  if (!v || v->type() != value_type::stream) return false;
  stream_value& st = v->stream();
  stream_group* g = nullptr;
  if (b.xgroup) {
    auto git = st.groups.find(b.group);
    if (git == st.groups.end()) {
      s.add_error(c, "NOGROUP the consumer group this client was blocked on no longer exists");
      return true;
    }
    g = &git->second;
    b.stream_ids[i] = g->last_id;
  }
  if (!(st.last_id > b.stream_ids[i])) return false;
  stream_id start = b.stream_ids[i];
  start.incr();
  if (g) touch_consumer(s, key, *g, b.group, b.consumer, b.noack);
  auto w = s.reply(c);
  if (c.resp == 2) {
    w.array(1);
    w.array(2);
  } else {
    w.map(1);
  }
  w.bulk(key);
  if (g) {
    group_read(s, w, key, st, *g, b.group, b.consumer, start, static_cast<std::size_t>(b.count), b.noack, false);
  } else {
    write_range(w, st, start, stream_id{UINT64_MAX, UINT64_MAX}, static_cast<std::size_t>(b.count), false);
  }
  return true;
}

// ---- XINFO ----
void cmd_xinfo(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "help") {
    static const char* const lines[] = {
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    };
    help_reply(s, c, lines);
    return;
  }
  value* v = s.db().find(a[2]);
  if (!v) {
    s.add_error(c, "ERR no such key");
    return;
  }
  if (v->type() != value_type::stream) {
    s.add_error(c, wrongtype_error);
    return;
  }
  stream_value& st = v->stream();
  if (sub == "consumers" && a.size() == 4) {
    xinfo_consumers(s, c, a[2], st, a[3]);
    return;
  }
  if (sub == "groups" && a.size() == 3) {
    xinfo_groups(s, c, st);
    return;
  }
  if (sub != "stream") {
    subcommand_syntax_error(s, c, a);
    return;
  }
  // [FULL [COUNT n]] (count 0: every entry; negative: the default 10).
  const std::size_t optc = a.size() - 3;
  long long full_count = 10;
  if (optc != 0) {
    if ((optc != 1 && optc != 3) || !iequals(a[3], "full") || (optc == 3 && !iequals(a[4], "count"))) {
      subcommand_syntax_error(s, c, a);
      return;
    }
    if (optc == 3) {
      if (!integer_arg(s, c, a[5], full_count)) return;
      if (full_count < 0) full_count = 10;
    }
  }
  auto w = s.reply(c);
  stream_id first;
  if (!st.first_entry_id(first)) first = {0, 0};
  w.map(optc ? 9 : 10);
  w.bulk("length");
  w.integer(static_cast<long long>(st.size()));
  w.bulk("radix-tree-keys");
  w.integer(static_cast<long long>(st.block_count()));
  w.bulk("radix-tree-nodes");
  w.integer(static_cast<long long>(st.radix_nodes()));
  w.bulk("last-generated-id");
  w.bulk(st.last_id.str());
  w.bulk("max-deleted-entry-id");
  w.bulk(st.max_deleted_id.str());
  w.bulk("entries-added");
  w.integer(static_cast<long long>(st.entries_added));
  w.bulk("recorded-first-entry-id");
  w.bulk(first.str());
  if (optc) {
    w.bulk("entries");
    write_range(w, st, stream_id{0, 0}, stream_id{UINT64_MAX, UINT64_MAX}, static_cast<std::size_t>(full_count), false);
    w.bulk("groups");
    write_full_groups(w, st, static_cast<std::size_t>(full_count));
    return;
  }
  w.bulk("groups");
  w.integer(static_cast<long long>(st.groups.size()));
  for (bool rev : {false, true}) {
    w.bulk(rev ? "last-entry" : "first-entry");
    bool any = false;
    st.range(stream_id{0, 0}, stream_id{UINT64_MAX, UINT64_MAX}, 1, rev, [&](const stream_value::entry& e) {
      write_entry(w, e);
      any = true;
      return false;
    });
    if (!any) w.null();
  }
}

}  // namespace respq::core
