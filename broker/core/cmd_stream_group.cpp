// Consumer groups of streams, Redis 7.0 semantics (t_stream.c): XGROUP (CREATE SETID
// DESTROY CREATECONSUMER DELCONSUMER HELP), the group side of XREADGROUP, XACK, XPENDING,
// XCLAIM, XAUTOCLAIM, XINFO GROUPS / CONSUMERS and the groups of XINFO STREAM FULL.
// Argument checks in Redis's order, its error texts and reply shapes.
//
// Effects, as Redis propagates them: a read that delivers entries into the PEL is logged
// as one `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID last`
// per entry (streamPropagateXCLAIM), which recreates the pending entry, its consumer and
// the group's last id on replay; a NOACK read that moved the last id as `XGROUP SETID
// key group id ENTRIESREAD n`; a consumer created by a NOACK read as `XGROUP
// CREATECONSUMER`. XCLAIM and XAUTOCLAIM log the same XCLAIM form for every entry they
// changed (also for pending entries they dropped because the entry was deleted: the
// replayed XCLAIM drops them too). XGROUP and XACK are logged as they are.
//
// WATCH: as in Redis 7.0, changing a group (reads, acks, claims, XGROUP) does not count as
// modifying the key; only the stream XGROUP CREATE ... MKSTREAM makes does.
#include <algorithm>
#include <climits>

#include "broker/core/stream_commands.hpp"

namespace respq::core {

using namespace streams;

namespace {

std::int64_t now_ms() { return keyspace::now_ms(); }

std::string nogroup_key_error(std::string_view key, std::string_view group) {
  return "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) + "'";
}

std::string nogroup_for_key_error(std::string_view group, std::string_view key) {
  return "NOGROUP No such consumer group '" + std::string(group) + "' for key name '" + std::string(key) + "'";
}

// streamPropagateXCLAIM: an idempotent XCLAIM that recreates the pending entry.
void log_xclaim(server& s, std::string_view key, const stream_group& g, std::string_view group_name,
                std::string_view id, const stream_nack& n) {
  append_effect(s,
                {"XCLAIM", std::string(key), std::string(group_name), n.consumer, "0", std::string(id), "TIME",
                 std::to_string(n.delivery_time), "RETRYCOUNT", std::to_string(n.delivery_count), "FORCE", "JUSTID",
                 "LASTID", g.last_id.str()});
}

// streamPropagateGroupID.
void log_group_id(server& s, std::string_view key, const stream_group& g, std::string_view group_name) {
  append_effect(s,
                {"XGROUP", "SETID", std::string(key), std::string(group_name), g.last_id.str(), "ENTRIESREAD",
                 std::to_string(g.entries_read)},
                {}, 2);
}

bool entry_reply(resp::reply_writer& w, const stream_value& st, stream_id id) {
  bool found = false;
  st.range(id, id, 1, false, [&](const stream_value::entry& e) {
    write_entry(w, e);
    found = true;
    return false;
  });
  return found;
}

stream_group* find_group(stream_value& st, std::string_view name) {
  auto it = st.groups.find(name);
  return it == st.groups.end() ? nullptr : &it->second;
}

// What XCLAIM and XAUTOCLAIM share (both are `X... key group consumer min-idle-time ...`):
// taking over pending entries for a[3], and dropping those whose entry was deleted.
struct claim_target {
  server& s;
  args_t a;
  stream_value& st;
  stream_group& g;
  bool justid;
  resp::reply_writer& body;  // the claimed entries (or ids)
  std::size_t claimed = 0;
  bool have_consumer = false;

  // A pending entry whose stream entry was deleted leaves the PEL, logged as the XCLAIM
  // that does it (Redis propagates it so). id_text: the id as written in the log.
  void drop_deleted(std::map<stream_id, stream_nack>::iterator it, std::string_view id_text) {
    log_xclaim(s, a[1], g, a[2], id_text, it->second);
    s.add_dirty();
    g.drop_nack(it);
  }

  // Gives a pending entry to the consumer a[3] (created on the first claim), delivered at
  // `delivery_time`, its delivery count set to `retrycount` (when >= 0) or incremented
  // (unless JUSTID); writes it to the body and logs it. fresh: an entry XCLAIM FORCE
  // just added, with no owner yet.
  void claim(std::map<stream_id, stream_nack>::iterator it, std::int64_t delivery_time, long long retrycount,
             std::string_view id_text, bool fresh = false) {
    if (!have_consumer) {
      touch_consumer(s, a[1], g, a[2], a[3], false);
      have_consumer = true;
    }
    if (fresh) {
      it->second.consumer = std::string(a[3]);
      g.consumers.find(a[3])->second.pel.insert(it->first);
    } else {
      g.set_owner(it, std::string(a[3]));
    }
    it->second.delivery_time = delivery_time;
    if (retrycount >= 0) it->second.delivery_count = static_cast<std::uint64_t>(retrycount);
    else if (!justid) ++it->second.delivery_count;
    if (justid) body.bulk(it->first.str());
    else entry_reply(body, st, it->first);
    ++claimed;
    log_xclaim(s, a[1], g, a[2], id_text, it->second);
    s.add_dirty();
  }
};

}  // namespace

namespace streams {

stream_consumer& touch_consumer(server& s, std::string_view key, stream_group& g, std::string_view group_name,
                                std::string_view name, bool log_creation) {
  auto it = g.consumers.find(name);
  if (it != g.consumers.end()) {
    it->second.seen_time = now_ms();
    return it->second;
  }
  stream_consumer& cons = g.consumers[std::string(name)];
  cons.seen_time = now_ms();
  s.add_dirty();
  s.notify(notify_stream, "xgroup-createconsumer", key);
  if (log_creation)
    append_effect(s, {"XGROUP", "CREATECONSUMER", std::string(key), std::string(group_name), std::string(name)}, {}, 2);
  return cons;
}

std::size_t group_read(server& s, resp::reply_writer& w, std::string_view key, stream_value& st, stream_group& g,
                       std::string_view group_name, std::string_view consumer, stream_id start, std::size_t count,
                       bool noack, bool history) {
  stream_consumer& cons = g.consumers.find(consumer)->second;
  const std::int64_t now = now_ms();
  if (history) {
    // streamReplyWithRangeFromConsumerPEL: the consumer's own pending entries; one whose
    // entry was deleted is answered [id, nil].
    std::vector<stream_id> ids;
    for (auto it = cons.pel.lower_bound(start); it != cons.pel.end() && (!count || ids.size() < count); ++it)
      ids.push_back(*it);
    w.array(ids.size());
    for (const stream_id& id : ids) {
      if (entry_reply(w, st, id)) {
        stream_nack& n = g.pel[id];
        n.delivery_time = now;
        ++n.delivery_count;
      } else {
        w.array(2);
        w.bulk(id.str());
        w.null_array();
      }
    }
    return ids.size();
  }
  std::vector<stream_value::entry> out;
  st.range(start, stream_id{UINT64_MAX, UINT64_MAX}, count, false, [&](const stream_value::entry& e) {
    out.push_back(e);
    return true;
  });
  w.array(out.size());
  bool log_last_id = false;
  const std::string consumer_name(consumer);
  for (const auto& e : out) {
    if (e.id > g.last_id) {
      if (g.entries_read != stream_group::invalid_entries_read && !st.range_has_tombstones(e.id)) ++g.entries_read;
      else if (st.entries_added) g.entries_read = st.estimate_distance(e.id);
      g.last_id = e.id;
      if (noack) log_last_id = true;
    }
    write_entry(w, e);
    if (noack) continue;
    auto [it, inserted] = g.pel.try_emplace(e.id);
    if (inserted) {
      it->second.consumer = consumer_name;
      cons.pel.insert(e.id);
    } else {
      // Already pending (XGROUP SETID moved the last id back): it changes hands.
      g.set_owner(it, consumer_name);
    }
    it->second.delivery_time = now;
    it->second.delivery_count = 1;
    log_xclaim(s, key, g, group_name, e.id.str(), it->second);
  }
  if (log_last_id) log_group_id(s, key, g, group_name);
  return out.size();
}

void write_full_groups(resp::reply_writer& w, const stream_value& st, std::size_t count) {
  w.array(st.groups.size());
  for (const auto& [name, g] : st.groups) {
    w.map(7);
    w.bulk("name");
    w.bulk(name);
    w.bulk("last-delivered-id");
    w.bulk(g.last_id.str());
    w.bulk("entries-read");
    if (g.entries_read != stream_group::invalid_entries_read) w.integer(g.entries_read);
    else w.null();
    w.bulk("lag");
    long long lag;
    if (st.group_lag(g, lag)) w.integer(lag);
    else w.null();
    w.bulk("pel-count");
    w.integer(static_cast<long long>(g.pel.size()));
    w.bulk("pending");
    const std::size_t np = count ? std::min(count, g.pel.size()) : g.pel.size();
    w.array(np);
    std::size_t i = 0;
    for (auto it = g.pel.begin(); i < np; ++it, ++i) {
      w.array(4);
      w.bulk(it->first.str());
      w.bulk(it->second.consumer);
      w.integer(it->second.delivery_time);
      w.integer(static_cast<long long>(it->second.delivery_count));
    }
    w.bulk("consumers");
    w.array(g.consumers.size());
    for (const auto& [cname, cons] : g.consumers) {
      w.map(4);
      w.bulk("name");
      w.bulk(cname);
      w.bulk("seen-time");
      w.integer(cons.seen_time);
      w.bulk("pel-count");
      w.integer(static_cast<long long>(cons.pel.size()));
      w.bulk("pending");
      const std::size_t nc = count ? std::min(count, cons.pel.size()) : cons.pel.size();
      w.array(nc);
      std::size_t j = 0;
      for (auto it = cons.pel.begin(); j < nc; ++it, ++j) {
        const stream_nack& n = g.pel.at(*it);
        w.array(3);
        w.bulk(it->str());
        w.integer(n.delivery_time);
        w.integer(static_cast<long long>(n.delivery_count));
      }
    }
  }
}

void xinfo_groups(server& s, client& c, const stream_value& st) {
  auto w = s.reply(c);
  w.array(st.groups.size());
  for (const auto& [name, g] : st.groups) {
    w.map(6);
    w.bulk("name");
    w.bulk(name);
    w.bulk("consumers");
    w.integer(static_cast<long long>(g.consumers.size()));
    w.bulk("pending");
    w.integer(static_cast<long long>(g.pel.size()));
    w.bulk("last-delivered-id");
    w.bulk(g.last_id.str());
    w.bulk("entries-read");
    if (g.entries_read != stream_group::invalid_entries_read) w.integer(g.entries_read);
    else w.null();
    w.bulk("lag");
    long long lag;
    if (st.group_lag(g, lag)) w.integer(lag);
    else w.null();
  }
}

void xinfo_consumers(server& s, client& c, std::string_view key, const stream_value& st, std::string_view group) {
  auto git = st.groups.find(group);
  if (git == st.groups.end()) {
    s.add_error(c, nogroup_for_key_error(group, key));
    return;
  }
  auto w = s.reply(c);
  const std::int64_t now = now_ms();
  w.array(git->second.consumers.size());
  for (const auto& [name, cons] : git->second.consumers) {
    w.map(3);
    w.bulk("name");
    w.bulk(name);
    w.bulk("pending");
    w.integer(static_cast<long long>(cons.pel.size()));
    w.bulk("idle");
    w.integer(std::max<std::int64_t>(0, now - cons.seen_time));
  }
}

}  // namespace streams

// XGROUP CREATE key group <id|$> [MKSTREAM] [ENTRIESREAD n] | SETID key group <id|$>
// [ENTRIESREAD n] | DESTROY key group | CREATECONSUMER key group consumer |
// DELCONSUMER key group consumer | HELP
void cmd_xgroup(server& s, client& c, args_t a) {
  s.keys_signalled();  // WATCH is not told (see the top of this file)
  const std::string sub = to_lower(a[1]);
  stream_value* st = nullptr;
  stream_group* g = nullptr;
  bool mkstream = false;
  long long entries_read = stream_group::invalid_entries_read;
  if (a.size() >= 4) {
    const bool create = sub == "create", setid = sub == "setid";
    for (std::size_t i = 5; i < a.size();) {
      if (create && iequals(a[i], "mkstream")) {
        mkstream = true;
        ++i;
      } else if ((create || setid) && iequals(a[i], "entriesread") && i + 1 < a.size()) {
        if (!integer_arg(s, c, a[i + 1], entries_read)) return;
        if (entries_read < 0 && entries_read != stream_group::invalid_entries_read) {
          s.add_error(c, "ERR value for ENTRIESREAD must be positive or -1");
          return;
        }
        i += 2;
      } else {
        subcommand_syntax_error(s, c, a);
        return;
      }
    }
    bool wrong;
    st = lookup_stream(s, c, a[2], wrong);
    if (wrong) return;
    if (!mkstream) {
      if (!st) {
        s.add_error(c,
                    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use "
                    "the MKSTREAM option to create an empty stream automatically.");
        return;
      }
      g = find_group(*st, a[3]);
      if (!g && (sub == "setid" || sub == "createconsumer" || sub == "delconsumer")) {
        s.add_error(c, nogroup_for_key_error(a[3], a[2]));
        return;
      }
    }
  }
  const std::uint64_t dirty_before = s.dirty();
  if (a.size() == 2 && sub == "help") {
    static const char* const lines[] = {
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    };
    help_reply(s, c, lines);
    return;
  } else if (sub == "create" && a.size() >= 5 && a.size() <= 8) {
    stream_id id;
    if (a[4] == "$") {
      id = st ? st->last_id : stream_id{};
    } else if (!id_arg(s, c, a[4], id)) {
      return;
    }
    if (!st) {
      st = &s.db().create(a[2], value_type::stream).stream();
      s.signal_modified_key(a[2]);
    }
    auto [it, inserted] = st->groups.try_emplace(std::string(a[3]));
    if (inserted) {
      it->second.last_id = id;
      it->second.entries_read = entries_read;
      s.reply(c).ok();
      s.add_dirty();
      s.notify(notify_stream, "xgroup-create", a[2]);
    } else {
      s.add_error(c, "BUSYGROUP Consumer Group name already exists");
    }
  } else if (sub == "setid" && (a.size() == 5 || a.size() == 7)) {
    stream_id id;
    if (a[4] == "$") {
      id = st->last_id;
    } else if (!id_arg(s, c, a[4], id, false)) {
      return;
    }
    g->last_id = id;
    g->entries_read = entries_read;
    s.reply(c).ok();
    s.add_dirty();
    s.notify(notify_stream, "xgroup-setid", a[2]);
  } else if (sub == "destroy" && a.size() == 4) {
    if (g) {
      st->groups.erase(st->groups.find(a[3]));
      s.reply(c).integer(1);
      s.add_dirty();
      s.notify(notify_stream, "xgroup-destroy", a[2]);
      // Clients blocked in XREADGROUP on this group get -NOGROUP.
      s.signal_key_as_ready(a[2]);
    } else {
      s.reply(c).integer(0);
    }
  } else if (sub == "createconsumer" && a.size() == 5) {
    bool created = false;
    if (g->consumers.find(a[4]) == g->consumers.end()) {
      g->consumers[std::string(a[4])].seen_time = now_ms();
      created = true;
      s.add_dirty();
      s.notify(notify_stream, "xgroup-createconsumer", a[2]);
    }
    s.reply(c).integer(created ? 1 : 0);
  } else if (sub == "delconsumer" && a.size() == 5) {
    long long pending = 0;
    auto cit = g->consumers.find(a[4]);
    if (cit != g->consumers.end()) {
      pending = static_cast<long long>(cit->second.pel.size());
      for (const stream_id& id : cit->second.pel) g->pel.erase(id);
      g->consumers.erase(cit);
      s.add_dirty();
      s.notify(notify_stream, "xgroup-delconsumer", a[2]);
    }
    s.reply(c).integer(pending);
  } else {
    subcommand_syntax_error(s, c, a);
    return;
  }
  // Logged as it is, with the key at index 2 (the mirror's key patterns look there).
  if (s.dirty() != dirty_before) {
    append_effect(s, {}, a, 2);
    s.effects_logged();
  }
}

// XACK key group id [id ...]
void cmd_xack(server& s, client& c, args_t a) {
  s.keys_signalled();  // WATCH is not told (see the top of this file)
  bool wrong;
  stream_value* st;
  {
    server::read_lookups reading(s);  // Redis reads the stream (lookupKeyRead)
    st = lookup_stream(s, c, a[1], wrong);
  }
  if (wrong) return;
  stream_group* g = st ? find_group(*st, a[2]) : nullptr;
  if (!g) {
    s.reply(c).integer(0);
    return;
  }
  std::vector<stream_id> ids(a.size() - 3);
  for (std::size_t j = 3; j < a.size(); ++j)
    if (!id_arg(s, c, a[j], ids[j - 3])) return;
  long long acked = 0;
  for (const stream_id& id : ids) {
    auto it = g->pel.find(id);
    if (it == g->pel.end()) continue;
    g->drop_nack(it);
    ++acked;
    s.add_dirty();
  }
  s.reply(c).integer(acked);
}

// XPENDING key group [[IDLE min-idle] start end count [consumer]]
void cmd_xpending(server& s, client& c, args_t a) {
  const bool summary = a.size() == 3;
  if (!summary && (a.size() < 6 || a.size() > 9)) {
    s.add_error(c, syntax_error);
    return;
  }
  stream_id start, end;
  long long count = 0, min_idle = 0;
  std::string_view consumer;
  bool has_consumer = false;
  if (a.size() >= 6) {
    std::size_t at = 3;
    if (iequals(a[3], "idle")) {
      if (!integer_arg(s, c, a[4], min_idle)) return;
      if (a.size() < 8) {
        s.add_error(c, syntax_error);
        return;
      }
      at += 2;
    }
    if (!integer_arg(s, c, a[at + 2], count)) return;
    if (count < 0) count = 0;
    bool startex, endex;
    if (!interval_id_arg(s, c, a[at], start, startex, 0)) return;
    if (startex && !start.incr()) {
      s.add_error(c, "ERR invalid start ID for the interval");
      return;
    }
    if (!interval_id_arg(s, c, a[at + 1], end, endex, UINT64_MAX)) return;
    if (endex && !end.decr()) {
      s.add_error(c, "ERR invalid end ID for the interval");
      return;
    }
    if (at + 3 < a.size()) {
      consumer = a[at + 3];
      has_consumer = true;
    }
  }
  bool wrong;
  stream_value* st = lookup_stream(s, c, a[1], wrong);
  if (wrong) return;
  stream_group* g = st ? find_group(*st, a[2]) : nullptr;
  if (!g) {
    s.add_error(c, nogroup_key_error(a[1], a[2]));
    return;
  }
  auto w = s.reply(c);
  if (summary) {
    w.array(4);
    w.integer(static_cast<long long>(g->pel.size()));
    if (g->pel.empty()) {
      w.null();
      w.null();
      w.null_array();
      return;
    }
    w.bulk(g->pel.begin()->first.str());
    w.bulk(g->pel.rbegin()->first.str());
    std::size_t n = 0;
    for (const auto& [name, cons] : g->consumers) n += !cons.pel.empty();
    w.array(n);
    for (const auto& [name, cons] : g->consumers) {
      if (cons.pel.empty()) continue;
      w.array(2);
      w.bulk(name);
      w.bulk(std::to_string(cons.pel.size()));
    }
    return;
  }
  std::vector<stream_id> ids;
  if (has_consumer) {
    auto cit = g->consumers.find(consumer);
    if (cit == g->consumers.end()) {
      w.array(0);
      return;
    }
    for (auto it = cit->second.pel.lower_bound(start); it != cit->second.pel.end() && *it <= end; ++it)
      ids.push_back(*it);
  } else {
    for (auto it = g->pel.lower_bound(start); it != g->pel.end() && it->first <= end; ++it) ids.push_back(it->first);
  }
  const std::int64_t now = now_ms();
  std::vector<const std::pair<const stream_id, stream_nack>*> rows;
  for (const stream_id& id : ids) {
    if (static_cast<long long>(rows.size()) >= count) break;
    auto it = g->pel.find(id);
    if (min_idle && now - it->second.delivery_time < min_idle) continue;
    rows.push_back(&*it);
  }
  w.array(rows.size());
  for (const auto* r : rows) {
    w.array(4);
    w.bulk(r->first.str());
    w.bulk(r->second.consumer);
    w.integer(std::max<std::int64_t>(0, now - r->second.delivery_time));
    w.integer(static_cast<long long>(r->second.delivery_count));
  }
}

// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
// [FORCE] [JUSTID] [LASTID id]
void cmd_xclaim(server& s, client& c, args_t a) {
  s.keys_signalled();  // WATCH is not told (see the top of this file)
  bool wrong;
  stream_value* st;
  {
    server::read_lookups reading(s);  // Redis reads the stream (lookupKeyRead)
    st = lookup_stream(s, c, a[1], wrong);
  }
  if (wrong) return;
  stream_group* g = st ? find_group(*st, a[2]) : nullptr;
  if (!g) {
    s.add_error(c, nogroup_key_error(a[1], a[2]));
    return;
  }
  long long min_idle;
  if (!string2ll(a[4], min_idle)) {
    s.add_error(c, "ERR Invalid min-idle-time argument for XCLAIM");
    return;
  }
  if (min_idle < 0) min_idle = 0;
  std::vector<stream_id> ids;
  std::size_t j = 5;
  for (; j < a.size(); ++j) {
    stream_id id;
    if (!parse_id(a[j], id, 0, true, nullptr)) break;
    ids.push_back(id);
  }
  const std::size_t last_id_arg = j;  // ids are a[5 .. last_id_arg)
  const std::int64_t now = now_ms();
  long long retrycount = -1, delivery_time = -1;
  bool force = false, justid = false;
  stream_id last_id;
  for (; j < a.size(); ++j) {
    const std::size_t more = a.size() - 1 - j;
    const std::string_view opt = a[j];
    if (iequals(opt, "force")) {
      force = true;
    } else if (iequals(opt, "justid")) {
      justid = true;
    } else if (iequals(opt, "idle") && more) {
      if (!string2ll(a[++j], delivery_time)) {
        s.add_error(c, "ERR Invalid IDLE option argument for XCLAIM");
        return;
      }
      delivery_time = now - delivery_time;
    } else if (iequals(opt, "time") && more) {
      if (!string2ll(a[++j], delivery_time)) {
        s.add_error(c, "ERR Invalid TIME option argument for XCLAIM");
        return;
      }
    } else if (iequals(opt, "retrycount") && more) {
      if (!string2ll(a[++j], retrycount)) {
        s.add_error(c, "ERR Invalid RETRYCOUNT option argument for XCLAIM");
        return;
      }
    } else if (iequals(opt, "lastid") && more) {
      if (!id_arg(s, c, a[++j], last_id)) return;
    } else {
      s.add_error(c, "ERR Unrecognized XCLAIM option '" + std::string(opt) + "'");
      return;
    }
  }
  s.effects_logged();
  bool log_last_id = false;
  if (last_id > g->last_id) {
    g->last_id = last_id;
    log_last_id = true;
  }
  if (delivery_time == -1 || delivery_time < 0 || delivery_time > now) delivery_time = now;
  std::string body;
  resp::reply_writer bw(body, c.resp);
  claim_target t{s, a, *st, *g, justid, bw};
  for (std::size_t k = 5; k < last_id_arg; ++k) {
    const stream_id id = ids[k - 5];
    auto it = g->pel.find(id);
    if (!st->contains(id)) {
      if (it != g->pel.end()) {
        t.drop_deleted(it, a[k]);
        log_last_id = false;
      }
      continue;
    }
    bool fresh = false;
    if (force && it == g->pel.end()) {
      it = g->pel.try_emplace(id).first;
      it->second.delivery_time = now;
      it->second.delivery_count = 1;
      fresh = true;
    }
    if (it == g->pel.end()) continue;
    if (!fresh && min_idle && now - it->second.delivery_time < min_idle) continue;
    t.claim(it, delivery_time, retrycount, a[k], fresh);
    log_last_id = false;
  }
  if (log_last_id) {
    log_group_id(s, a[1], *g, a[2]);
    s.add_dirty();
  }
  auto w = s.reply(c);
  w.array(t.claimed);
  w.raw(body);
}

// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
void cmd_xautoclaim(server& s, client& c, args_t a) {
  s.keys_signalled();  // WATCH is not told (see the top of this file)
  long long min_idle;
  if (!string2ll(a[4], min_idle)) {
    s.add_error(c, "ERR Invalid min-idle-time argument for XAUTOCLAIM");
    return;
  }
  if (min_idle < 0) min_idle = 0;
  stream_id start;
  bool startex;
  if (!interval_id_arg(s, c, a[5], start, startex, 0)) return;
  if (startex && !start.incr()) {
    s.add_error(c, "ERR invalid start ID for the interval");
    return;
  }
  long long count = 100;
  bool justid = false;
  for (std::size_t j = 6; j < a.size(); ++j) {
    const std::size_t more = a.size() - 1 - j;
    if (iequals(a[j], "count") && more) {
      constexpr long long max_count = LONG_MAX / 16;  // LONG_MAX / max(sizeof(streamID), 10)
      if (!string2ll(a[j + 1], count) || count < 1 || count > max_count) {
        s.add_error(c, "ERR COUNT must be > 0");
        return;
      }
      ++j;
    } else if (iequals(a[j], "justid")) {
      justid = true;
    } else {
      s.add_error(c, syntax_error);
      return;
    }
  }
  bool wrong;
  stream_value* st;
  {
    server::read_lookups reading(s);  // Redis reads the stream (lookupKeyRead)
    st = lookup_stream(s, c, a[1], wrong);
  }
  if (wrong) return;
  stream_group* g = st ? find_group(*st, a[2]) : nullptr;
  if (!g) {
    s.add_error(c, nogroup_key_error(a[1], a[2]));
    return;
  }
  s.effects_logged();
  long long attempts = count * 10;
  const std::int64_t now = now_ms();
  std::string body;
  resp::reply_writer bw(body, c.resp);
  claim_target t{s, a, *st, *g, justid, bw};
  std::vector<stream_id> deleted;
  auto it = g->pel.lower_bound(start);
  while (attempts-- > 0 && count && it != g->pel.end()) {
    const stream_id id = it->first;
    if (!st->contains(id)) {
      t.drop_deleted(it++, id.str());
      deleted.push_back(id);
      --count;
      continue;
    }
    if (min_idle && now - it->second.delivery_time < min_idle) {
      ++it;
      continue;
    }
    t.claim(it++, now, -1, id.str());
    --count;
  }
  const stream_id next = it == g->pel.end() ? stream_id{} : it->first;
  auto w = s.reply(c);
  w.array(3);
  w.bulk(next.str());
  w.array(t.claimed);
  w.raw(body);
  w.array(deleted.size());
  for (const auto& id : deleted) w.bulk(id.str());
}

}  // namespace respq::core
