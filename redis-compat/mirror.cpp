// mirror: see mirror.hpp for the protocol with the upstream.
#include "redis-compat/mirror.hpp"

#include <hiredis/hiredis.h>

#include <optional>
#include <unordered_set>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "redis-compat/upstream_connection.hpp"

namespace respq::redis_compat {

namespace {

// Two: one being applied while the next fills; more only adds per-batch overhead.
constexpr std::size_t max_batches_in_flight = 2;
// Pacing: a batch goes out at once after a quiet spell, but under load at most once per
// interval unless this much is waiting. Each batch costs a MULTI/SET/EXEC, a write and a
// read on both sides; a millisecond of mirror latency makes them large.
constexpr auto pace_interval = std::chrono::milliseconds(1);
constexpr std::uint64_t pace_bytes = 64 * 1024;
constexpr std::size_t max_batch_commands = 4096;
constexpr std::size_t max_batch_bytes = 1024 * 1024;
constexpr std::size_t resync_group_commands = 1024;
constexpr std::size_t stale_del_chunk = 256;

constexpr std::string_view multi_cmd = "*1\r\n$5\r\nMULTI\r\n";
constexpr std::string_view exec_cmd = "*1\r\n$4\r\nEXEC\r\n";


// The first error inside an EXEC reply, or empty.
std::string exec_error(const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len);
  if (r->type != REDIS_REPLY_ARRAY) return "EXEC was aborted";
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e && e->type == REDIS_REPLY_ERROR) return std::string(e->str, e->len);
  }
  return {};
}

}  // namespace

struct mirror::impl {
  enum class state { down, handshake, scanning, streaming };

  impl(core::server& srv, upstream_connection& c, asio::io_context& io, std::string node, key_filter f, std::string key)
      : s(srv), conn(c), node_id(std::move(node)), filter(std::move(f)), keys(srv), offset_key(std::move(key)),
        backlog(srv.cfg().mirror_backlog_size), retry_timer(io), pace_timer(io) {}

  core::server& s;
  upstream_connection& conn;
  std::string node_id;
  key_filter filter;
  server_key_source keys;
  std::string offset_key;
  mirror_backlog backlog;
  loop_timer retry_timer;
  loop_timer pace_timer;
  std::chrono::steady_clock::time_point last_send{};

  state st = state::down;
  bool resync_pending = true;  // every start resyncs (see mirror.hpp)
  bool snapshot_due = false;   // the scan is done; the snapshot waits for the turn's flush
  std::uint64_t gen = 0;       // bumped on every loss/resync: stale replies are ignored
  std::size_t in_flight = 0;
  std::uint64_t applied = 0;   // last offset the upstream is known to hold
  std::uint64_t resyncs = 0, overflows = 0, batches = 0, commands_sent = 0, turns_skipped = 0;
  std::uint64_t resync_keys = 0, resync_stale = 0;
  std::uint64_t resume_skipped = 0, resume_resent = 0;
  std::string last_resync_reason;

  // Resync scan, database by database (respq database n is upstream n + db_base()).
  std::size_t scan_pattern = 0;
  int scan_db = 0;
  int upstream_dbs = 0;  // how many of respq's databases the upstream has (found by SELECT)
  std::vector<std::unordered_set<std::string>> scanned;

  int db_base() const { return s.cfg().upstream_db; }
  void scan_db_start();
  void scan_done();

  void request_resync(const std::string& why);
  void start_resync();
  void scan_step(std::string cursor);
  void finish_resync();
  void snapshot();
  void pump();
  void send_batch();
  void fail_and_retry(const std::string& why);
};

void mirror::impl::request_resync(const std::string& why) {
  if (!resync_pending) core::log_notice("Mirror: resync needed (" + why + ")");
  resync_pending = true;
  last_resync_reason = why;
  backlog.reset(backlog.head());
  if (st == state::streaming) start_resync();
}

void mirror::impl::start_resync() {
  ++gen;
  snapshot_due = false;
  in_flight = 0;
  st = state::scanning;
  scanned.assign(static_cast<std::size_t>(s.db_count()), {});
  scan_pattern = 0;
  scan_db = 0;
  upstream_dbs = s.db_count();
  if (filter.patterns().empty()) {
    finish_resync();
    return;
  }
  scan_db_start();
}

void mirror::impl::scan_db_start() {
  const std::string n = std::to_string(scan_db + db_base());
  bool sent = conn.command({"SELECT", n}, [this, g = gen](const redisReply* r) {
    if (!r || g != gen || st != state::scanning) return;
    if (r->type == REDIS_REPLY_ERROR) {
      // The upstream has fewer databases: there is nothing to find in the others.
      upstream_dbs = scan_db;
      scan_done();
      return;
    }
    scan_pattern = 0;
    scan_step("0");
  });
  if (!sent) st = state::down;
}

void mirror::impl::scan_done() {
  // Back to the connection's own database before anything else is sent.
  const std::string n = std::to_string(db_base());
  bool sent = conn.command({"SELECT", n}, [this, g = gen](const redisReply* r) {
    if (!r || g != gen || st != state::scanning) return;
    if (r->type == REDIS_REPLY_ERROR) {
      fail_and_retry("SELECT: " + std::string(r->str, r->len));
      return;
    }
    finish_resync();
  });
  if (!sent) st = state::down;
}

void mirror::impl::scan_step(std::string cursor) {
  const std::string& pattern = filter.patterns()[scan_pattern];
  bool sent = conn.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, [this, g = gen](const redisReply* r) {
    if (!r || g != gen || st != state::scanning) return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
      fail_and_retry(r->type == REDIS_REPLY_ERROR ? "SCAN: " + std::string(r->str, r->len)
                                                  : std::string("SCAN: unexpected reply"));
      return;
    }
    const redisReply* list = r->element[1];
    for (std::size_t i = 0; i < list->elements; ++i) {
      const redisReply* k = list->element[i];
      if (k->type != REDIS_REPLY_STRING) continue;
      std::string key(k->str, k->len);
      if (filter.matches(key)) scanned[static_cast<std::size_t>(scan_db)].insert(std::move(key));
    }
    std::string next(r->element[0]->str, r->element[0]->len);
    if (next != "0") {
      scan_step(std::move(next));
      return;
    }
    if (++scan_pattern < filter.patterns().size()) {
      scan_step("0");
      return;
    }
    if (++scan_db < s.db_count()) {
      scan_db_start();
      return;
    }
    scan_done();
  });
  if (!sent) st = state::down;
}

void mirror::impl::fail_and_retry(const std::string& why) {
  core::log_warning("Mirror: resync failed (" + why + "); retrying in 1s");
  ++gen;
  st = state::down;
  retry_timer.after(1.0, [this] {
    if (conn.ready() && st == state::down) start_resync();
  });
}

void mirror::impl::finish_resync() {
  // Commands executed in this loop turn are in the keyspace, but their effects reach the
  // sinks only when the turn is flushed: a snapshot now would include them and then see
  // them again. Inside on_effects() the keyspace is exactly the state after the batch at
  // hand, so the snapshot waits for the flush when one is due.
  if (!s.stream().empty()) {
    snapshot_due = true;
    return;
  }
  snapshot();
}

void mirror::impl::snapshot() {
  snapshot_due = false;
  // The snapshot point: everything respq holds now. Later turns follow it in the pipeline.
  const std::uint64_t point = backlog.head() + 1;
  backlog.reset(point);
  resync_pending = false;
  ++resyncs;
  st = state::streaming;
  const std::uint64_t g = gen;

  // Every mirrored key, several keys per MULTI so that each key changes atomically.
  auto exec_check = [this, g](const redisReply* r) {
    if (!r || g != gen) return;
    if (std::string err = exec_error(r); !err.empty()) request_resync("upstream refused a resync write: " + err);
  };
  bool ok = true;
  command_batch out;
  auto send_group = [&] {
    if (out.empty()) return;
    ok = ok && conn.formatted_noreply(multi_cmd);
    out.for_each([&](std::string_view c) { ok = ok && conn.formatted_noreply(c); });
    ok = ok && conn.formatted(exec_cmd, exec_check);
    out.clear();
  };
  std::size_t stale = 0, total_local = 0;
  for (int d = 0; d < s.db_count(); ++d) {
    std::vector<std::string> local;
    for (const auto& [k, v] : s.db(d).all())
      if (filter.matches(k)) local.push_back(k);
    static const std::unordered_set<std::string> none;
    const auto& upstream_keys = static_cast<std::size_t>(d) < scanned.size() ? scanned[static_cast<std::size_t>(d)] : none;
    if (local.empty() && upstream_keys.empty()) continue;
    if (d >= upstream_dbs) {
      core::log_warning("Mirror: the upstream has no database " + std::to_string(d + db_base()) + " for the " +
                        std::to_string(local.size()) + " mirrored keys of database " + std::to_string(d));
      continue;
    }
    total_local += local.size();
    {
      command_batch sel;
      const std::string n = std::to_string(d + db_base());
      sel.add({"SELECT", n});
      sel.for_each([&](std::string_view c) { ok = ok && conn.formatted_noreply(c); });
    }
    std::unordered_set<std::string_view> local_set(local.begin(), local.end());

    // Upstream keys respq doesn't hold.
    std::vector<std::string_view> del{"DEL"};
    auto flush_del = [&] {
      if (del.size() > 1) out.add(del);
      del.resize(1);
    };
    for (const auto& k : upstream_keys) {
      if (local_set.count(k)) continue;
      del.push_back(k);
      ++stale;
      if (del.size() > stale_del_chunk) flush_del();
    }
    flush_del();
    out.for_each([&](std::string_view c) { ok = ok && conn.formatted_noreply(c); });
    out.clear();

    for (const auto& k : local) {
      append_snapshot(out, k, s.db(d).peek(k));
      if (out.size() >= resync_group_commands || out.bytes.size() >= max_batch_bytes) send_group();
    }
    send_group();
  }
  {
    command_batch sel;
    const std::string n = std::to_string(db_base());
    sel.add({"SELECT", n});
    sel.for_each([&](std::string_view c) { ok = ok && conn.formatted_noreply(c); });
  }
  scanned.clear();
  const std::string value = offset_value(s.run_id(), point);
  ok = ok && conn.command({"SET", offset_key, value}, [this, g, point](const redisReply* r) {
    if (!r || g != gen) return;
    if (r->type == REDIS_REPLY_ERROR) {
      request_resync("SET offset: " + std::string(r->str, r->len));
      return;
    }
    applied = std::max(applied, point);
  });
  resync_keys = total_local;
  resync_stale = stale;
  core::log_notice("Mirror: resynchronised " + std::to_string(total_local) + " keys (" + std::to_string(stale) +
                   " stale upstream keys deleted) at offset " + std::to_string(point));
  if (!ok) {
    // The link went down while we queued: the offset read back after the reconnect
    // decides (it won't be `point` unless everything arrived).
    st = state::down;
    return;
  }
  pump();
}

void mirror::impl::pump() {
  if (st != state::streaming || !conn.ready()) return;
  while (in_flight < max_batches_in_flight && backlog.has_unsent()) {
    const auto now = std::chrono::steady_clock::now();
    if (backlog.unsent_bytes() < pace_bytes && now < last_send + pace_interval) {
      if (!pace_timer.armed()) pace_timer.at(last_send + pace_interval, [this] { pump(); });
      return;
    }
    last_send = now;
    send_batch();
  }
}

void mirror::impl::send_batch() {
  const std::size_t first = backlog.unsent_index();
  const std::size_t n = backlog.next_send_count(max_batch_commands, max_batch_bytes);
  const std::uint64_t end = backlog.at(first + n - 1).end;
  bool ok = conn.formatted_noreply(multi_cmd);
  std::size_t count = 0;
  for (std::size_t i = first; ok && i < first + n; ++i) {
    backlog.at(i).commands.for_each([&](std::string_view c) { ok = ok && conn.formatted_noreply(c); });
    count += backlog.at(i).commands.size();
  }
  const std::string value = offset_value(s.run_id(), end);
  std::string set;
  {
    command_batch b;
    b.add({"SET", offset_key, value});
    set = std::move(b.bytes);
  }
  ok = ok && conn.formatted_noreply(set);
  ok = ok && conn.formatted(exec_cmd, [this, g = gen, end, count](const redisReply* r) {
    if (!r || g != gen) return;
    if (in_flight) --in_flight;
    if (std::string err = exec_error(r); !err.empty()) {
      request_resync("upstream refused a mirrored write: " + err);
      return;
    }
    applied = std::max(applied, end);
    commands_sent += count;
    backlog.acked(end);
    pump();
  });
  backlog.mark_sent(first + n);
  ++in_flight;
  ++batches;
  if (!ok) {
    // Lost while queueing: on_link_lost/on_link_ready sort it out from the offset.
    st = state::down;
  }
}

// ---- mirror ----------------------------------------------------------------------------

mirror::mirror(core::server& s, upstream_connection& conn, asio::io_context& io_context, std::string node_id, key_filter filter)
    : offset_key_("respq:mirror:" + node_id + ":offset") {
  impl_ = std::make_unique<impl>(s, conn, io_context, std::move(node_id), std::move(filter), offset_key_);
}

mirror::~mirror() = default;

void mirror::on_effects(std::string_view bytes, std::span<const core::effect_meta> effects) {
  auto& d = *impl_;
  if (d.snapshot_due) {
    // The keyspace holds exactly this batch's results: the snapshot includes it.
    d.snapshot();
    return;
  }
  if (d.resync_pending) {
    // The resync's snapshot, taken later, includes this turn.
    ++d.turns_skipped;
    return;
  }
  command_batch b;
  if (translate_effects(bytes, effects, d.filter, d.keys, b, d.db_base()) == translate_status::resync) {
    d.request_resync("FLUSHALL, FLUSHDB, MOVE or SWAPDB");
    return;
  }
  if (b.empty()) return;
  if (!d.backlog.append(std::move(b))) {
    ++d.overflows;
    d.request_resync("backlog overflow: more than " + std::to_string(d.backlog.limit()) + " bytes waiting");
    return;
  }
  d.pump();
}

void mirror::on_link_ready() {
  auto& d = *impl_;
  ++d.gen;
  d.in_flight = 0;
  d.retry_timer.cancel();
  if (d.resync_pending) {
    d.start_resync();
    return;
  }
  d.st = impl::state::handshake;
  bool sent = d.conn.command({"GET", offset_key_}, [&d, g = d.gen](const redisReply* r) {
    if (!r || g != d.gen) return;
    if (r->type == REDIS_REPLY_STRING) {
      auto off = parse_offset_value(std::string_view(r->str, r->len), d.s.run_id());
      // What the offset decides, for INFO: commands sent whose EXEC ran but whose reply
      // was lost (not sent again) and commands sent that never ran (sent again).
      std::uint64_t skipped = 0, resent = 0;
      if (off) {
        for (std::size_t i = 0; i < d.backlog.unsent_index() && i < d.backlog.size(); ++i) {
          const auto& e = d.backlog.at(i);
          (e.end <= *off ? skipped : resent) += e.commands.size();
        }
      }
      if (off && d.backlog.resume_from(*off)) {
        d.resume_skipped += skipped;
        d.resume_resent += resent;
        d.applied = *off;
        d.st = impl::state::streaming;
        d.pump();
        return;
      }
      d.st = impl::state::streaming;
      d.request_resync("upstream offset " + std::string(r->str, r->len) + " can't be continued from the backlog");
      return;
    }
    d.st = impl::state::streaming;
    d.request_resync(r->type == REDIS_REPLY_NIL ? std::string("no offset on the upstream")
                                                : "reading the offset: unexpected reply");
  });
  if (!sent) d.st = impl::state::down;
}

void mirror::on_link_lost() {
  auto& d = *impl_;
  ++d.gen;
  d.snapshot_due = false;
  d.in_flight = 0;
  d.st = impl::state::down;
}

void mirror::cron() {
  auto& d = *impl_;
  // mirror-backlog-size can change at run time (CONFIG SET).
  if (d.s.cfg().mirror_backlog_size != d.backlog.limit()) d.backlog.set_limit(d.s.cfg().mirror_backlog_size);
}

void mirror::set_filter(key_filter filter) {
  impl_->filter = std::move(filter);
  impl_->request_resync("the mirrored keys changed");
}

bool mirror::has_unapplied() const { return !impl_->resync_pending && impl_->backlog.size() > 0; }

std::size_t mirror::drain(redisContext* c) {
  auto& d = *impl_;
  if (!has_unapplied()) return 0;
  auto* r = static_cast<redisReply*>(redisCommand(c, "GET %b", offset_key_.data(), offset_key_.size()));
  if (!r) return 0;
  std::optional<std::uint64_t> off;
  if (r->type == REDIS_REPLY_STRING) off = parse_offset_value(std::string_view(r->str, r->len), d.s.run_id());
  freeReplyObject(r);
  if (!off || !d.backlog.resume_from(*off)) return 0;
  d.applied = std::max(d.applied, *off);
  std::size_t sent = 0;
  while (d.backlog.has_unsent()) {
    const std::size_t first = d.backlog.unsent_index();
    const std::size_t n = d.backlog.next_send_count(max_batch_commands, max_batch_bytes);
    const std::uint64_t end = d.backlog.at(first + n - 1).end;
    std::size_t replies = 3, count = 0;  // MULTI, SET, EXEC
    redisAppendFormattedCommand(c, multi_cmd.data(), multi_cmd.size());
    for (std::size_t i = first; i < first + n; ++i) {
      d.backlog.at(i).commands.for_each([&](std::string_view x) { redisAppendFormattedCommand(c, x.data(), x.size()); });
      count += d.backlog.at(i).commands.size();
    }
    replies += count;
    command_batch set;
    set.add({"SET", offset_key_, offset_value(d.s.run_id(), end)});
    redisAppendFormattedCommand(c, set.bytes.data(), set.bytes.size());
    redisAppendFormattedCommand(c, exec_cmd.data(), exec_cmd.size());
    std::string err;
    for (std::size_t i = 0; i < replies; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK || !reply) return sent;
      if (i + 1 == replies) err = exec_error(static_cast<redisReply*>(reply));
      freeReplyObject(reply);
    }
    if (!err.empty()) {
      core::log_warning("Mirror: the upstream refused a write while draining at shutdown: " + err);
      return sent;
    }
    d.backlog.mark_sent(first + n);
    d.backlog.acked(end);
    d.applied = end;
    sent += count;
  }
  return sent;
}

void mirror::figures(core::link_figures& f) const {
  const auto& d = *impl_;
  f.mirror_enabled = true;
  switch (d.st) {
    case impl::state::down: f.mirror_state = "down"; break;
    case impl::state::handshake: f.mirror_state = "handshake"; break;
    case impl::state::scanning: f.mirror_state = "resync"; break;
    case impl::state::streaming: f.mirror_state = d.resync_pending ? "resync" : "streaming"; break;
  }
  f.lag_commands = d.backlog.head() > d.applied ? d.backlog.head() - d.applied : 0;
  f.backlog_bytes = d.backlog.bytes();
  f.backlog_limit = d.backlog.limit();
  f.backlog_overflows = d.overflows;
  f.resyncs = d.resyncs;
  f.commands_applied = d.commands_sent;
}

std::string mirror::info() const {
  const auto& d = *impl_;
  auto line = [](std::string& o, const char* k, const std::string& v) {
    o += k;
    o += ':';
    o += v;
    o += "\r\n";
  };
  const char* st = "down";
  switch (d.st) {
    case impl::state::down: st = "down"; break;
    case impl::state::handshake: st = "handshake"; break;
    case impl::state::scanning: st = "resync"; break;
    case impl::state::streaming: st = d.resync_pending ? "resync" : "streaming"; break;
  }
  std::string o;
  line(o, "mirror_state", st);
  line(o, "mirror_keys", [&] {
    std::string p;
    for (const auto& x : d.filter.patterns()) p += (p.empty() ? "" : " ") + x;
    return p;
  }());
  line(o, "mirror_offset_key", d.offset_key);
  line(o, "stream_offset", std::to_string(d.backlog.head()));
  line(o, "applied_offset", std::to_string(d.applied));
  line(o, "lag_commands", std::to_string(d.backlog.head() > d.applied ? d.backlog.head() - d.applied : 0));
  line(o, "lag_bytes", std::to_string(d.backlog.bytes()));
  line(o, "backlog_bytes", std::to_string(d.backlog.bytes()));
  line(o, "backlog_limit", std::to_string(d.backlog.limit()));
  line(o, "backlog_entries", std::to_string(d.backlog.size()));
  line(o, "backlog_overflows", std::to_string(d.overflows));
  line(o, "resync_pending", d.resync_pending ? "1" : "0");
  line(o, "resyncs", std::to_string(d.resyncs));
  line(o, "last_resync_reason", d.last_resync_reason);
  line(o, "last_resync_keys", std::to_string(d.resync_keys));
  line(o, "last_resync_stale_deleted", std::to_string(d.resync_stale));
  line(o, "resume_skipped_commands", std::to_string(d.resume_skipped));
  line(o, "resume_resent_commands", std::to_string(d.resume_resent));
  line(o, "batches_in_flight", std::to_string(d.in_flight));
  line(o, "batches_sent", std::to_string(d.batches));
  line(o, "commands_applied", std::to_string(d.commands_sent));
  return o;
}

}  // namespace respq::redis_compat
