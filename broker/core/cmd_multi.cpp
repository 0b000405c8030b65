// Transactions: MULTI EXEC DISCARD WATCH UNWATCH. Queued commands were checked for
// existence and arity when queued (server::dispatch); a rejected one makes EXEC answer
// EXECABORT. EXEC runs the queue with blocking disabled, its effects wrapped in
// MULTI/EXEC in the command stream, and blocked clients are served only after it ends.
#include <algorithm>

#include "broker/core/commands.hpp"

namespace respq::core {

void unwatch_all(server& s, client& c) {
  for (std::size_t i = 0; i < c.watched.size(); ++i) {
    auto& watchers = s.watchers_[static_cast<std::size_t>(c.watched_db[i])];
    auto it = watchers.find(c.watched[i]);
    if (it == watchers.end()) continue;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), &c), v.end());
    if (v.empty()) watchers.erase(it);
  }
  c.watched.clear();
  c.watched_db.clear();
  c.watched_expired.clear();
  c.watch_dirty = false;
}

void cmd_multi(server& s, client& c, args_t) {
  if (c.in_multi) {
    s.add_error(c, "ERR MULTI calls can not be nested");
    return;
  }
  c.in_multi = true;
  c.multi_dirty = false;
  c.multi_may_replicate = false;
  c.multi_queue.clear();
  s.reply(c).ok();
}

void cmd_discard(server& s, client& c, args_t) {
  if (!c.in_multi) {
    s.add_error(c, "ERR DISCARD without MULTI");
    return;
  }
  c.in_multi = false;
  c.multi_dirty = false;
  c.multi_queue.clear();
  unwatch_all(s, c);
  s.reply(c).ok();
}

void cmd_exec(server& s, client& c, args_t) {
  if (!c.in_multi) {
    s.add_error(c, "ERR EXEC without MULTI");
    return;
  }
  auto queue = std::move(c.multi_queue);
  c.multi_queue.clear();
  c.in_multi = false;
  if (c.multi_dirty) {
    c.multi_dirty = false;
    unwatch_all(s, c);
    s.add_error(c, "EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  // As Redis 7: a watched key that was alive at WATCH and has reached its deadline since
  // counts as changed, even if nobody touched it yet.
  for (std::size_t i = 0; i < c.watched.size() && !c.watch_dirty; ++i) {
    keyspace& d = s.db(c.watched_db[i]);
    if (const value* v = d.peek(c.watched[i]); v && !c.watched_expired[i] && d.is_expired(*v)) c.watch_dirty = true;
  }
  if (c.watch_dirty) {
    unwatch_all(s, c);
    s.reply(c).null_array();
    return;
  }
  unwatch_all(s, c);
  auto w = s.reply(c);
  w.array(queue.size());
  c.in_exec = true;
  s.stream().begin_atomic();
  for (auto& cmdv : queue) {
    std::vector<std::string_view> args(cmdv.begin(), cmdv.end());
    const command_def* def = s.lookup(args[0]);
    const command_def* flags_of = s.lookup_flags_of(args);
    std::string err;
    if (flags_of && (flags_of->flags & flag_write) && !(err = s.write_refusal()).empty()) {
      s.add_error(c, err);
      continue;
    }
    s.call(c, *def, args);
  }
  s.stream().end_atomic();
  c.in_exec = false;
}

void cmd_watch(server& s, client& c, args_t a) {
  if (c.in_multi) {
    s.add_error(c, "ERR WATCH inside MULTI is not allowed");
    return;
  }
  const int db = s.current_db();
  for (std::size_t i = 1; i < a.size(); ++i) {
    std::string key(a[i]);
    bool already = false;
    for (std::size_t j = 0; j < c.watched.size() && !already; ++j) already = c.watched_db[j] == db && c.watched[j] == key;
    if (already) continue;
    s.watchers_[static_cast<std::size_t>(db)][key].push_back(&c);
    const value* v = s.db().peek(key);
    c.watched_expired.push_back(v && s.db().is_expired(*v));
    c.watched_db.push_back(db);
    c.watched.push_back(std::move(key));
  }
  s.reply(c).ok();
}

void cmd_unwatch(server& s, client& c, args_t) {
  unwatch_all(s, c);
  s.reply(c).ok();
}

}  // namespace respq::core
