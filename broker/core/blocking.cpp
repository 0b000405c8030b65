// Blocking operations: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP on lists; BZPOPMIN,
// BZPOPMAX, BZMPOP on sorted sets; XREAD BLOCK and XREADGROUP BLOCK on streams.
//
// How it works (the same design as Redis's blocked.c):
//  - A client that finds every key empty is parked: for each key it waits on, it joins
//    the FIFO waiters_[key]; its deadline, if any, goes into block_deadlines_. Its
//    further pipelined commands stay unparsed in its input buffer.
//  - A push never serves anybody by itself: it only marks the key ready (when someone
//    waits on it). After the pushing command - or the whole EXEC - finishes,
//    serve_blocked_clients() walks the ready keys and serves the waiters of each key in
//    FIFO order, one element each, until the list is empty. "LPUSH k a b" therefore
//    wakes a BLPOP with "b", and "MULTI; LPUSH k a; DEL k; EXEC" wakes nobody.
//  - Serving a BLMOVE pushes onto its destination, which may make that key ready: the
//    loop repeats until no key is ready (BLMOVE chains).
//  - A served client is sent its reply and queued to run the rest of its pipeline at
//    the end of the turn. The effect logged is the non-blocking equivalent (LPOP, RPOP,
//    LMOVE, RPOPLPUSH, "LPOP key count", "ZPOPMIN key [count]"), so a replay reaches the
//    same state.
//  - Waiters, ready keys and serving are per database: a client waits in the database it
//    blocked in (blocked_state::db), and is served there, whatever it selects later.
//  - XREADGROUP waits on a stream and a group: served, as Redis does, when the stream's
//    last id passes the group's last id; answered -NOGROUP when XGROUP DESTROY removed
//    the group, -UNBLOCKED when the key stopped being a stream (the keyspace reports a
//    removed stream through stream_removed(), which marks the key ready).
//  - A client that disconnects while blocked is just removed from the FIFOs: it never
//    took an element, so nothing is lost. Timeouts reply a null array.
//
// Adding a blocking command: fill a blocked_state in the handler and call
// block_client(); teach serve_key() how to serve that kind.
#include <algorithm>

#include "broker/core/commands.hpp"
#include "broker/core/server.hpp"
#include "broker/core/task_manager.hpp"

namespace respq::core {

void server::block_client(client& c, std::unique_ptr<blocked_state> b) {
  b->db = cur_db_;
  auto& waiters = waiters_[static_cast<std::size_t>(cur_db_)];
  for (const auto& k : b->keys) waiters[k].push_back(&c);
  if (b->deadline != clock::time_point::max()) block_deadlines_.emplace(b->deadline, &c);
  if (b->xgroup) ++group_waiters_;
  c.blocked = std::move(b);
  ++blocked_count_;
}

void server::remove_from_waiters(client& c) {
  auto& waiters = waiters_[static_cast<std::size_t>(c.blocked->db)];
  for (const auto& k : c.blocked->keys) {
    auto it = waiters.find(k);
    if (it == waiters.end()) continue;
    it->second.remove(&c);
    if (it->second.empty()) waiters.erase(it);
  }
  if (c.blocked->deadline != clock::time_point::max()) {
    auto [lo, hi] = block_deadlines_.equal_range(c.blocked->deadline);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == &c) {
        block_deadlines_.erase(it);
        break;
      }
    }
  }
  if (c.blocked->xgroup) --group_waiters_;
  if (c.blocked->what == blocked_state::kind::postpone)
    postponed_.erase(std::remove(postponed_.begin(), postponed_.end(), &c), postponed_.end());
  --blocked_count_;
}

void server::drop_waits(client& c) {
  if (!c.blocked) return;
  remove_from_waiters(c);
  c.blocked.reset();
}

void server::kill_client(client& c) {
  drop_waits(c);
  c.close_asap = true;
  queue_write(c);
}

void server::unblock_client(client& c, bool timed_out) {
  if (!c.blocked) return;
  remove_from_waiters(c);
  std::unique_ptr<blocked_state> b = std::move(c.blocked);
  if (timed_out) {
    // WAIT answers how many replicas acknowledged: none (respq has no replicas).
    if (b->what == blocked_state::kind::wait) reply(c).integer(0);
    else reply(c).null_array();
  }
  // The slowlog entry of a command that blocked, now that it is answered (Redis's
  // updateStatsOnUnblock).
  if (!b->slowlog_args.empty())
    slowlog_.push_logged(std::move(b->slowlog_args), b->slowlog_us, c.addr, c.name, cfg_.slowlog_max_len);
  queue_write(c);
  if (!c.unblocked_pending && !c.in.empty()) {
    c.unblocked_pending = true;
    unblocked_.push_back(&c);
  }
}

void server::signal_key_as_ready(std::string_view key) {
  if (cur_db_ == 0) tasks_->on_list_push(key);  // HTTP queues live in database 0
  const auto i = static_cast<std::size_t>(cur_db_);
  if (waiters_[i].empty() || waiters_[i].find(key) == waiters_[i].end()) return;
  if (ready_set_[i].find(key) != ready_set_[i].end()) return;
  ready_set_[i].emplace(key);
  ready_keys_.emplace_back(cur_db_, key);
}

void server::stream_removed(int db_index, const std::string& key) {
  const auto i = static_cast<std::size_t>(db_index);
  if (waiters_[i].find(key) == waiters_[i].end()) return;
  if (ready_set_[i].find(key) != ready_set_[i].end()) return;
  ready_set_[i].emplace(key);
  ready_keys_.emplace_back(db_index, key);
}

void server::serve_blocked_clients() {
  while (!ready_keys_.empty()) {
    std::vector<std::pair<int, std::string>> keys;
    keys.swap(ready_keys_);
    for (const auto& [db_index, k] : keys) ready_set_[static_cast<std::size_t>(db_index)].clear();
    for (const auto& [db_index, k] : keys) {
      db_scope in(*this, db_index);
      serve_key(k);
    }
  }
}

// Serves the waiters of one key, oldest first, while the value has elements. A waiter
// for the other type (BLPOP on a key that is now a sorted set, BZPOPMIN on a list) is
// passed over and keeps waiting, as in Redis.
bool server::serve_key(const std::string& key) {
  bool served_any = false;
  auto& waiters = waiters_[static_cast<std::size_t>(cur_db_)];
  auto wit0 = waiters.find(key);
  if (wit0 == waiters.end()) return false;
  // Served clients leave the FIFO as we go: walk a copy, in order.
  const std::vector<client*> order(wit0->second.begin(), wit0->second.end());
  for (client* cp : order) {
    value* v = db().find(key);
    client& c = *cp;
    if (!c.blocked) continue;
    // As the client's own command would: its invalidations (the BLMOVE target it read)
    // follow its reply.
    const acting_for acting(*this, c);
    if (c.blocked->what == blocked_state::kind::xread && c.blocked->xgroup &&
        (!v || v->type() != value_type::stream)) {
      // XREADGROUP depends on the key and its group: once the stream is gone (DEL,
      // overwritten, flushed) nothing can serve it, so it is answered now, as in Redis.
      if (c.close_asap) {
        drop_waits(c);
        continue;
      }
      add_error(c, "UNBLOCKED the stream key no longer exists");
      if (const command_def* d = lookup(c.blocked->command)) ++d->stats.failed;  // INFO commandstats, as Redis
      unblock_client(c, false);
      continue;
    }
    if (!v) break;
    if (c.blocked->what == blocked_state::kind::xread) {
      // Every XREAD waiter whose id is behind the stream's last id is served, not one per
      // entry: reading takes nothing away.
      if (c.close_asap) {
        drop_waits(c);
        continue;
      }
      if (c.blocked->xgroup) {
        // A group read changes the group (PEL, last id): its effects are logged, and its
        // reply waits for them like a write's.
        before_key_write(cur_db_, key);  // not WATCH: Redis leaves it alone
        turn_writers_.push_back(c.id);
      }
      const std::uint64_t errors_before = stats_.total_errors;
      if (!serve_xread_waiter(*this, c, key)) continue;
      if (c.blocked->xgroup) ++dirty_;
      if (stats_.total_errors != errors_before)  // -NOGROUP: the group was destroyed
        if (const command_def* d = lookup(c.blocked->command)) ++d->stats.failed;
      ++stats_.total_blocking_served;
      served_any = true;
      unblock_client(c, false);
      continue;
    }
    const bool wants_zset =
        c.blocked->what == blocked_state::kind::zpop || c.blocked->what == blocked_state::kind::zmpop;
    if (wants_zset ? v->type() != value_type::zset : v->type() != value_type::list) continue;
    if (c.close_asap) {
      drop_waits(c);  // closing: must not take an element it would never receive
      continue;
    }
    blocked_state& b = *c.blocked;
    will_write(key);
    if (wants_zset) {
      turn_writers_.push_back(c.id);
      zset_value& z = v->zset();
      const bool min = b.pop_left;
      auto w = reply(c);
      if (b.what == blocked_state::kind::zpop) {
        zset_pop_reply(w, z, key, min, 1, 'k');
        stream_.append({min ? "ZPOPMIN" : "ZPOPMAX", key});
      } else {
        // Served BZMPOP is logged with the number popped (an immediate one with the
        // number asked), as Redis 7.0 does.
        std::size_t n = zset_pop_reply(w, z, key, min, static_cast<std::size_t>(b.count), 'n');
        std::string count = std::to_string(n);
        stream_.append({min ? "ZPOPMIN" : "ZPOPMAX", key, count});
      }
      zset_popped(*this, key, z, min, 1);
      signal_modified_key(key);
      ++dirty_;
      ++stats_.total_blocking_served;
      served_any = true;
      unblock_client(c, false);
      continue;
    }
    if (b.what == blocked_state::kind::move) will_write(b.target);
    turn_writers_.push_back(c.id);
    packed_list& list = v->list();
    auto w = reply(c);
    const bool left = b.pop_left;
    const std::string_view where = left ? "LEFT" : "RIGHT";

    if (b.what == blocked_state::kind::move) {
      // The destination must be a list (or absent) before anything moves.
      value* dst = db().find(b.target);
      if (dst && dst->type() != value_type::list) {
        add_error(c, "WRONGTYPE Operation against a key holding the wrong kind of value");
        if (const command_def* d = lookup(b.command)) ++d->stats.failed;  // INFO commandstats, as Redis
        unblock_client(c, false);
        continue;
      }
      const std::string elem = list_move(*this, key, list, b.target, left, b.push_left);
      v = nullptr;
      w.bulk(elem);
      if (b.command == "brpoplpush") {
        stream_.append({"RPOPLPUSH", key, b.target});
      } else {
        stream_.append({"LMOVE", key, b.target, where, b.push_left ? "LEFT" : "RIGHT"});
      }
      signal_modified_key(key);
      signal_modified_key(b.target);  // (list_move woke the target's waiters)
    } else if (b.what == blocked_state::kind::mpop) {
      std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(b.count), list.size());
      w.array(2);
      w.bulk(key);
      w.array(n);
      for (std::size_t i = 0; i < n; ++i) {
        if (left) {
          w.bulk(list.front());
          list.pop_front();
        } else {
          w.bulk(list.back());
          list.pop_back();
        }
      }
      std::string count = std::to_string(n);
      stream_.append({left ? "LPOP" : "RPOP", key, count});
      list_popped(*this, key, list, left);
      signal_modified_key(key);
    } else {
      w.array(2);
      w.bulk(key);
      if (left) {
        w.bulk(list.front());
        list.pop_front();
      } else {
        w.bulk(list.back());
        list.pop_back();
      }
      stream_.append({left ? "LPOP" : "RPOP", key});
      list_popped(*this, key, list, left);
      signal_modified_key(key);
    }
    ++dirty_;
    ++stats_.total_blocking_served;
    served_any = true;
    unblock_client(c, false);
  }
  return served_any;
}

}  // namespace respq::core
