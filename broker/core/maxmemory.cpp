// Memory limits: maxmemory, and client-output-buffer-limit.
//
// maxmemory with the noeviction policy, as in Redis: when used memory is over the limit,
// commands flagged denyoom (and, inside MULTI, every command but EXEC DISCARD QUIT
// RESET) are refused with -OOM; reads, deletes and pops run. respq never evicts: its
// keys are tasks. Scripts follow Redis 7.0 (script.c): EVAL of a "#!lua" script that
// declares neither allow-oom nor no-writes is denyoom (server::script_denies_oom); a
// script without a shebang runs, and the engine refuses its first denyoom command if the
// server was over the limit when the script started and the script has not written yet.
//
// What counts: INFO's used_memory (keys, values and client buffers), which respq gets
// by walking the keyspace, not from the allocator (mimalloc reports memory in 32 MB
// segments and keeps them after a free, so a DEL would not show). A walk per command
// would be O(keys), so the check uses an estimate: the last walk's figure plus the
// argument bytes of every denyoom command admitted since (over-counting, as a push that
// replaces or a failed SET adds nothing). A new walk is made ten times a second by the
// cron, and whenever the estimate says "over": so a refusal is always decided on a
// fresh figure when anything changed since (a DEL is seen at once), while a flood of
// refused writes with nothing changing costs one walk per 10 ms at most. Walks are
// spaced at least five times their own duration apart, so with millions of keys
// the walks take at most a fifth of the time.
//
// The task lifecycle writes to the keyspace directly (task_manager.cpp: to dead, back to
// the queue, into the in-flight hash), not through dispatch(), so these moves are never
// refused: a task in respq's custody is never lost to maxmemory.
//
// client-output-buffer-limit, as in Redis: a client's unsent replies are checked each
// time replies are added (after each command it runs, each message published to it,
// each MONITOR line); past the hard limit, or past the soft limit for longer than its
// seconds, it is closed without writing more, with Redis's log line. Subscribers use the
// pubsub class, everyone else (MONITOR too) the normal class. The figure is what the
// core holds unsent; the I/O layer may hold one more write's worth (the reply batch it
// is writing when the socket stopped taking bytes), so a client is cut within one
// batch of its limit.
//
// Owner: the broker thread.
#include <algorithm>

#include "broker/core/keyspace.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"

namespace respq::core {

server::memory_parts server::used_memory_parts() {
  memory_parts m;
  for (int i = 0; i < db_count(); ++i)
    for (const auto& [k, v] : db(i).all()) {
      m.dataset += k.size() + sizeof(value) + 48;
      switch (v.type()) {
        case value_type::list: m.dataset += const_cast<value&>(v).list().allocated_bytes(); break;
        case value_type::string: m.dataset += const_cast<value&>(v).str().capacity(); break;
        case value_type::hash: m.dataset += std::get<hash_value>(v.data).memory_usage(); break;
        case value_type::set: m.dataset += std::get<set_value>(v.data).memory_usage(); break;
        case value_type::zset: m.dataset += std::get<zset_value>(v.data).memory_usage(); break;
        case value_type::stream: m.dataset += std::get<stream_value>(v.data).memory_usage(); break;
      }
    }
  for (const auto& [id, c] : clients_) m.clients += c->in.capacity() + c->out.capacity() + sizeof(client);
  used_memory_peak_ = std::max(used_memory_peak_, m.dataset + m.clients);
  return m;
}

std::uint64_t server::used_memory() {
  const memory_parts m = used_memory_parts();
  return m.dataset + m.clients;
}

void server::refresh_memory_estimate(bool force) {
  if (cfg_.maxmemory == 0) return;
  const auto now = clock::now();
  if (!force) {
    const bool changed = dirty_ != mem_dirty_mark_;
    const auto gap = std::max<clock::duration>(5 * mem_walk_cost_, changed ? clock::duration::zero()
                                                                           : std::chrono::milliseconds(10));
    if (now - mem_walked_at_ < gap) return;
  }
  mem_estimate_ = used_memory();
  mem_limit_walked_ = cfg_.maxmemory;
  mem_dirty_mark_ = dirty_;
  mem_walked_at_ = clock::now();
  mem_walk_cost_ = mem_walked_at_ - now;
}

bool server::over_maxmemory() {
  if (cfg_.maxmemory == 0) return false;
  // A limit just set (CONFIG SET) is checked against a fresh figure, not one from before.
  if (cfg_.maxmemory != mem_limit_walked_) refresh_memory_estimate(true);
  if (mem_estimate_ <= cfg_.maxmemory) return false;
  refresh_memory_estimate(false);
  return mem_estimate_ > cfg_.maxmemory;
}

void server::check_output_limit(client& c) {
  if (c.close_asap || c.is_fake) return;
  const output_limit& l = c.in_pubsub() ? cfg_.obuf_pubsub : cfg_.obuf_normal;
  const std::uint64_t used = c.reply_list_bytes();  // as Redis: its reply list, past the fixed 16 KB
  bool cut = l.hard && used >= l.hard;
  if (!cut && l.soft && used >= l.soft) {
    const auto now = clock::now();
    if (c.obuf_soft_since == clock::time_point{}) c.obuf_soft_since = now;
    else cut = now - c.obuf_soft_since > std::chrono::seconds(l.soft_seconds);
  } else if (!cut) {
    c.obuf_soft_since = clock::time_point{};
  }
  if (!cut) return;
  log_warning("Client id=" + std::to_string(c.id) + " addr=" + c.addr + " laddr=" + c.laddr + " name=" + c.name +
              " omem=" + std::to_string(used) + " cmd=" + c.last_command +
              " scheduled to be closed ASAP for overcoming of output buffer limits.");
  kill_client(c);
}

void server::account_write(args_t args) {
  if (cfg_.maxmemory == 0) return;
  for (auto a : args) mem_estimate_ += a.size() + 16;
}

}  // namespace respq::core
