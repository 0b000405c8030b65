// shared_queue: see shared_queue.hpp for keys, custody and crash behaviour.
#include "redis-compat/shared_queue.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "redis-compat/mirror_stream.hpp"
#include "tasks/http_request.hpp"
#include "tasks/lifecycle.hpp"
#include "tasks/queue_stats.hpp"
#include "tasks/signing.hpp"
#include "tasks/rate_gate.hpp"
#include "tasks/records.hpp"
#include "tasks/task.hpp"
#include "tasks/url.hpp"

namespace respq::redis_compat {

namespace {

using clock = std::chrono::steady_clock;

constexpr const char* take_timeout = "2";  // BLMOVE seconds: bounds how stale a stopped loop gets
constexpr double take_timeout_s = 2;
constexpr std::size_t forward_max_elements = 512;
constexpr std::size_t forward_max_bytes = 1024 * 1024;

// KEYS: processing, dead, results. ARGV: payload, dead record ("" = none), outcome ("" =
// none), first ("1" on the first send). On a resend after a lost reply, the dead letter
// and the outcome only when this call removed the task, so the resend changes nothing if
// the first one ran. On the first send always: a task missing from the processing list
// (an upstream restarted without persistence) still gets its dead letter and outcome.
constexpr const char* finalize_script =
    "local n = redis.call('LREM', KEYS[1], 1, ARGV[1])\n"
    "if n > 0 or ARGV[4] == '1' then\n"
    "  if ARGV[2] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[2]) end\n"
    "  if ARGV[3] ~= '' then redis.call('PUBLISH', KEYS[3], ARGV[3]) end\n"
    "end\n"
    "return n\n";

// KEYS: queue, marker. ARGV: batch id, elements oldest first. Skips a batch already applied.
constexpr const char* forward_script =
    "if redis.call('GET', KEYS[2]) == ARGV[1] then return 0 end\n"
    "redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))\n"
    "redis.call('SET', KEYS[2], ARGV[1])\n"
    "return #ARGV - 1\n";

// KEYS: processing, queue. ARGV: payload. Back to the right end: taken next.
constexpr const char* hand_back_script =
    "if redis.call('LREM', KEYS[1], 1, ARGV[1]) > 0 then redis.call('RPUSH', KEYS[2], ARGV[1]) return 1 end\n"
    "return 0\n";

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string reply_text(const redisReply* r) {
  if (!r) return "connection lost";
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
    return std::string(r->str, r->len);
  return "unexpected reply";
}

}  // namespace

struct shared_queue::impl {
  enum class task_state { in_flight, waiting, finalizing };

  struct held_task {
    std::string payload;  // the element as it sits in the processing list
    std::string unwrapped;  // the task's own payload when the element is a dead letter moved back
    std::string id;
    tasks::task task;
    int attempts = 0;
    int max_attempts = 1;
    task_state st = task_state::in_flight;
    double next_run = 0;
    std::uint64_t ticket = 0;
    long last_code = 0;
  };

  struct final_op {
    std::string dead_record;
    std::string outcome;
    bool sent = false;
    bool resend = false;  // a send's reply was lost: it may have run
  };

  impl(shared_context& c, std::string n, core::queue_options o)
      : ctx(c), name(std::move(n)), opts(o), processing(name + ":processing:" + c.node_id), dead_key(name + ":dead"),
        results(name + ":results"), marker_key("respq:spool:" + c.node_id + ":" + name), due_timer(c.io),
        take_timer(c.io), retry_timer(c.io) {}

  shared_context& ctx;
  shared_queue* self = nullptr;
  std::string name;
  core::queue_options opts;
  std::string processing, dead_key, results, marker_key;
  std::unique_ptr<upstream_connection> taker;
  loop_timer due_timer, take_timer, retry_timer;

  std::map<std::uint64_t, held_task> custody;  // by local sequence number
  std::uint64_t next_seq = 0;
  std::unordered_map<std::string, int> payload_count;
  std::unordered_map<std::string, int> released_during_recovery;
  std::unordered_map<std::string, std::uint64_t> by_id;
  std::unordered_map<std::uint64_t, std::uint64_t> by_ticket;  // attempt ticket -> seq
  std::set<std::uint64_t> callback_tickets;
  std::set<std::pair<double, std::uint64_t>> due;  // (unix time, seq) of waiting tasks
  std::map<std::uint64_t, final_op> finals;        // removals not yet acknowledged, by seq
  std::vector<tasks::http_request> outgoing;
  bool submit_posted = false;

  bool taking = false, recovering = false, stopping = false, started = false;
  bool draining = false;  // shutdown's grace period: finish what is in flight, start nothing
  std::size_t in_flight = 0, waiting = 0;
  tasks::rate_gate rate;

  bool forwarding = false, forward_posted = false;
  std::vector<std::string> fwd_batch;  // oldest first; kept until acknowledged
  std::string fwd_id;
  std::uint64_t fwd_counter = 0;

  std::uint64_t forwarded = 0, taken = 0, recovered = 0, delivered = 0, failed = 0, dead = 0, duplicates = 0,
                dispatched = 0, egress_denied = 0;
  std::uint64_t forward_resends = 0, forward_deduped = 0, final_resends = 0;
  // The upstream's lengths of <name> and <name>:dead for INFO tasks, read about once a second.
  std::uint64_t upstream_pending = 0, upstream_dead = 0;
  clock::time_point last_poll{};
  bool polling = false;
  std::string last_error;
  clock::time_point last_error_log{};
  std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t id_counter = 0;

  // --- helpers ------------------------------------------------------------------------
  void warn(const std::string& what) {
    last_error = what;
    auto now = clock::now();
    if (now - last_error_log > std::chrono::seconds(10)) {
      last_error_log = now;
      core::log_warning("Shared queue '" + name + "': " + what);
    }
  }

  std::string new_id() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%08llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(++id_counter & 0xffffffffull));
    return buf;
  }

  void flush_outgoing() {
    if (submit_posted || outgoing.empty()) return;
    submit_posted = true;
    // One hand-over per loop turn, however many attempts started in it.
    loop_post(ctx.io, [this] {
      submit_posted = false;
      if (outgoing.empty()) return;
      std::vector<tasks::http_request> batch;
      batch.swap(outgoing);
      ctx.submit(std::move(batch));
    });
  }

  tasks::task_record task_record_of(const held_task& t) const {
    tasks::task_record r;
    r.id = t.id;
    r.queue = name;
    r.url = t.task.url;
    r.node = ctx.node_id;
    r.attempts = t.attempts;
    r.max_attempts = t.max_attempts;
    return r;
  }

  // The dead-letter record, in the same format as the local queues'.
  std::string dead_json(const held_task& t, const tasks::decision& d) const {
    return tasks::dead_record_json(tasks::dead_letter(task_record_of(t), d, task_payload(t), unix_now()));
  }

  static const std::string& task_payload(const held_task& t) { return t.unwrapped.empty() ? t.payload : t.unwrapped; }

  void publish_local(const std::string& o) {
    ctx.s.publish(results, o);
    ctx.s.wake();
  }

  void post_callback(const held_task& t, const std::string& o) {
    if (t.task.callback.empty()) return;
    const std::uint64_t ticket = ctx.new_ticket(self);
    callback_tickets.insert(ticket);
    outgoing.push_back(tasks::make_callback_request(t.task.callback, t.id, o, ticket, name, opts.timeout));
    flush_outgoing();
  }

  // --- custody ------------------------------------------------------------------------
  void adopt(std::string element) {
    const double now = unix_now();
    const std::uint64_t seq = ++next_seq;
    held_task& t = custody[seq];
    t.payload = std::move(element);
    ++payload_count[t.payload];
    auto e = tasks::decode_element(t.payload, now);
    if (e.was_dead_letter) t.unwrapped = std::move(e.unwrapped);
    t.id = e.id.empty() ? new_id() : std::move(e.id);
    if (auto* err = std::get_if<tasks::decode_error>(&e.result)) {
      ++dead;
      const tasks::decision d = tasks::refuse(task_record_of(t), err->reason);
      finalize(seq, dead_json(t, d), tasks::outcome_json(d.outcome));
      return;
    }
    t.task = std::move(std::get<tasks::task>(e.result));
    t.task.id = t.id;
    if (by_id.count(t.id)) {
      // The same idempotency key is already in this sidecar's custody: deliver it once.
      ++duplicates;
      // Its outcome goes to subscribers only, not to the callback (as for local queues).
      finalize(seq, {}, tasks::outcome_json(tasks::duplicate_outcome(task_record_of(t))), false);
      return;
    }
    by_id.emplace(t.id, seq);
    t.max_attempts = tasks::max_attempts_of(t.task, opts);
    if (t.task.run_at && *t.task.run_at > now + 0.001) {
      park(seq, t, *t.task.run_at);
      return;
    }
    if (!draining && in_flight < opts.concurrency) start_attempt(seq, t);
    else park(seq, t, now);
  }

  void park(std::uint64_t seq, held_task& t, double at) {
    t.st = task_state::waiting;
    t.next_run = at;
    due.emplace(at, seq);
    ++waiting;
    arm_due();
  }

  void start_attempt(std::uint64_t seq, held_task& t) {
    t.st = task_state::in_flight;
    ++t.attempts;
    t.ticket = ctx.new_ticket(self);
    by_ticket.emplace(t.ticket, seq);
    ++in_flight;
    ++dispatched;
    auto req = tasks::make_http_request(t.task, t.ticket, name, opts.timeout);
    req.headers.emplace_back("X-Task-Attempt", std::to_string(t.attempts));
    tasks::sign_request(req, t.id, static_cast<long long>(unix_now()), opts.signing_secrets);
    outgoing.push_back(std::move(req));
    flush_outgoing();
  }

  void finalize(std::uint64_t seq, std::string dead_record, const std::string& outcome, bool callback = true) {
    auto it = custody.find(seq);
    if (it == custody.end()) return;
    held_task& t = it->second;
    t.st = task_state::finalizing;
    publish_local(outcome);
    if (callback) post_callback(t, outcome);
    finals[seq] = final_op{std::move(dead_record), outcome, false};
    flush_finals();
  }

  void release(std::uint64_t seq) {
    auto it = custody.find(seq);
    if (it == custody.end()) return;
    held_task& t = it->second;
    if (auto pc = payload_count.find(t.payload); pc != payload_count.end() && --pc->second <= 0) payload_count.erase(pc);
    // A recovery's LRANGE may have run on the upstream before this removal did (the two
    // travel on different connections): it must not adopt this task again.
    if (recovering) ++released_during_recovery[t.payload];
    if (auto bi = by_id.find(t.id); bi != by_id.end() && bi->second == seq) by_id.erase(bi);
    custody.erase(it);
  }

  void flush_finals() {
    for (auto& [seq, op] : finals) {
      if (op.sent) continue;
      auto it = custody.find(seq);
      if (it == custody.end()) continue;
      if (!ctx.main.ready()) return;
      bool sent = ctx.main.command({"EVAL", finalize_script, "3", processing, dead_key, results, it->second.payload,
                                    op.dead_record, op.outcome, op.resend ? "0" : "1"},
                                   [this, seq = seq](const redisReply* r) { on_final_reply(seq, r); });
      if (!sent) return;
      op.sent = true;
    }
  }

  void on_final_reply(std::uint64_t seq, const redisReply* r) {
    auto f = finals.find(seq);
    if (f == finals.end()) return;
    if (!r) {
      f->second.sent = false;  // resent when the link is back, as a resend
      f->second.resend = true;
      ++final_resends;
      return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      warn("removing a finished task: " + reply_text(r));
      f->second.sent = false;  // cron retries
      return;
    }
    finals.erase(f);
    release(seq);
  }

  // --- results ------------------------------------------------------------------------
  void on_result(tasks::http_result& res) {
    if (callback_tickets.erase(res.ticket)) {
      if (res.egress_denied) ++egress_denied;
      if (!res.error.empty() || res.code < 200 || res.code >= 300)
        core::log_verbose("Callback of a task of shared queue '" + name + "' failed: " +
                          (res.error.empty() ? "HTTP " + std::to_string(res.code) : tasks::redact_urls_in(res.error)));
      return;
    }
    auto tk = by_ticket.find(res.ticket);
    if (tk == by_ticket.end()) return;
    const std::uint64_t seq = tk->second;
    by_ticket.erase(tk);
    auto it = custody.find(seq);
    if (it == custody.end()) return;
    held_task& t = it->second;
    if (in_flight) --in_flight;
    t.last_code = res.code;
    if (res.egress_denied) ++egress_denied;
    const tasks::decision d = tasks::decide(task_record_of(t), res, opts, unix_now(), rng);
    if (d.attempt_failed) ++failed;
    switch (d.state) {
      case tasks::next_state::delivered:
        ++delivered;
        finalize(seq, {}, tasks::outcome_json(d.outcome));
        break;
      case tasks::next_state::retrying: {
        std::string o = tasks::outcome_json(d.outcome);
        park(seq, t, d.next_run);
        publish_local(o);
        post_callback(t, o);
        if (ctx.main.ready()) ctx.main.command({"PUBLISH", results, o}, [](const redisReply*) {});
        break;
      }
      case tasks::next_state::dead:
        ++dead;
        core::log_verbose("Task " + t.id + " of shared queue '" + name + "' is dead: " + d.reason);
        finalize(seq, dead_json(t, d), tasks::outcome_json(d.outcome));
        break;
    }
    run_due();
    take();
  }

  // --- waiting tasks ------------------------------------------------------------------
  bool rate_allows(clock::time_point now) const { return rate.allows(now, opts.rate); }
  void rate_consume(clock::time_point now) { rate.consume(now, opts.rate); }

  void run_due() {
    const double now = unix_now();
    const auto tnow = clock::now();
    while (!stopping && !draining && !due.empty() && due.begin()->first <= now && in_flight < opts.concurrency &&
           rate_allows(tnow)) {
      std::uint64_t seq = due.begin()->second;
      due.erase(due.begin());
      if (waiting) --waiting;
      auto it = custody.find(seq);
      if (it == custody.end() || it->second.st != task_state::waiting) continue;
      rate_consume(tnow);
      start_attempt(seq, it->second);
    }
    arm_due();
  }

  void arm_due() {
    if (due.empty()) {
      due_timer.cancel();
      return;
    }
    double wait = std::max(0.0, due.begin()->first - unix_now());
    if (opts.rate > 0) {
      double r = std::chrono::duration<double>(rate.next_allowed() - clock::now()).count();
      wait = std::max(wait, r);
    }
    auto at = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(wait));
    if (due_timer.armed() && due_timer.when() <= at) return;
    due_timer.at(at, [this] {
      run_due();
      take();
    });
  }

  bool due_ready() const { return !due.empty() && due.begin()->first <= unix_now(); }

  // --- taking -------------------------------------------------------------------------
  void take() {
    if (stopping || draining || !taker || !taker->ready() || taking || recovering) return;
    if (in_flight >= opts.concurrency || due_ready()) return;
    auto now = clock::now();
    if (!rate_allows(now)) {
      if (!take_timer.armed()) take_timer.at(rate.next_allowed(), [this] { take(); });
      return;
    }
    taking = true;
    bool sent = taker->command({"BLMOVE", name, processing, "RIGHT", "LEFT", take_timeout}, [this](const redisReply* r) {
      taking = false;
      if (!r) return;  // lost: recovery adopts whatever it moved
      if (r->type == REDIS_REPLY_STRING) {
        ++taken;
        rate_consume(clock::now());
        adopt(std::string(r->str, r->len));
      } else if (r->type == REDIS_REPLY_ERROR) {
        warn("BLMOVE: " + reply_text(r));
        take_timer.after(1.0, [this] { take(); });
        return;
      }
      take();
    });
    if (!sent) taking = false;
  }

  void recover() {
    if (!taker || !taker->ready()) return;
    recovering = true;
    released_during_recovery.clear();
    bool sent = taker->command({"LRANGE", processing, "0", "-1"}, [this](const redisReply* r) {
      recovering = false;
      if (!r) return;
      if (r->type != REDIS_REPLY_ARRAY) {
        warn("LRANGE " + processing + ": " + reply_text(r));
        take_timer.after(1.0, [this] { recover(); });
        return;
      }
      // Oldest first (BLMOVE pushed to the left); skip as many copies of a payload as this
      // sidecar already holds.
      std::unordered_map<std::string, int> skip = payload_count;
      for (const auto& [p, n] : released_during_recovery) skip[p] += n;
      released_during_recovery.clear();
      std::size_t adopted = 0;
      for (std::size_t i = r->elements; i-- > 0;) {
        const redisReply* e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        std::string p(e->str, e->len);
        if (auto sk = skip.find(p); sk != skip.end() && sk->second > 0) {
          --sk->second;
          continue;
        }
        ++recovered;
        ++adopted;
        adopt(std::move(p));
      }
      if (adopted)
        core::log_notice("Shared queue '" + name + "': recovered " + std::to_string(adopted) + " tasks from " +
                         processing);
      take();
    });
    if (!sent) recovering = false;
  }

  // --- figures ----------------------------------------------------------------------
  void poll_upstream() {
    if (polling || !ctx.main.ready()) return;
    const auto now = clock::now();
    if (now - last_poll < std::chrono::seconds(1)) return;
    last_poll = now;
    polling = true;
    bool sent = ctx.main.command({"LLEN", name}, [this](const redisReply* r) {
      if (r && r->type == REDIS_REPLY_INTEGER) upstream_pending = static_cast<std::uint64_t>(r->integer);
    });
    sent = sent && ctx.main.command({"LLEN", dead_key}, [this](const redisReply* r) {
      polling = false;
      if (r && r->type == REDIS_REPLY_INTEGER) upstream_dead = static_cast<std::uint64_t>(r->integer);
    });
    if (!sent) polling = false;
  }

  // --- spool --------------------------------------------------------------------------
  void schedule_forward() {
    if (forward_posted) return;
    forward_posted = true;
    loop_post(ctx.io, [this] {
      forward_posted = false;
      forward();
    });
  }

  void forward() {
    if (forwarding || !ctx.main.ready()) return;
    if (fwd_batch.empty()) {
      core::value* v = ctx.s.db(0).find(name);
      if (!v || v->type() != core::value_type::list || v->list().empty()) return;
      auto& l = v->list();
      std::size_t bytes = 0;
      auto cur = l.seek(l.size() - 1);
      for (std::size_t n = 0; n < forward_max_elements && cur.valid() && (n == 0 || bytes < forward_max_bytes); ++n) {
        fwd_batch.emplace_back(cur.value());
        bytes += fwd_batch.back().size();
        cur.prev();
      }
      fwd_id = offset_value(ctx.s.run_id(), ++fwd_counter);
    }
    std::vector<std::string_view> argv{"EVAL", forward_script, "2", name, marker_key, fwd_id};
    for (const auto& e : fwd_batch) argv.push_back(e);
    forwarding = ctx.main.command(argv, [this](const redisReply* r) {
      forwarding = false;
      if (!r) {
        ++forward_resends;  // resent, same id, when the link is back
        return;
      }
      if (r->type != REDIS_REPLY_INTEGER) {
        warn("forwarding the spool: " + reply_text(r));
        retry_timer.after(1.0, [this] { forward(); });
        return;
      }
      if (r->integer == 0) ++forward_deduped;
      remove_from_spool();
      forwarded += fwd_batch.size();
      fwd_batch.clear();
      forward();
    });
  }

  // The upstream holds the batch: remove it from the local list, through the command
  // stream so that the AOF agrees.
  void remove_from_spool() {
    core::server& s = ctx.s;
    core::client& c = s.internal_client();
    core::value* v = s.db(0).find(name);
    if (!v || v->type() != core::value_type::list) return;
    auto& l = v->list();
    bool tail_matches = l.size() >= fwd_batch.size();
    if (tail_matches) {
      auto cur = l.seek(l.size() - 1);
      for (const auto& e : fwd_batch) {
        if (!cur.valid() || cur.value() != e) {
          tail_matches = false;
          break;
        }
        cur.prev();
      }
    }
    if (tail_matches) {
      const std::string count = std::to_string(fwd_batch.size());
      std::array<std::string_view, 3> argv{"RPOP", name, count};
      s.call(c, *s.lookup("rpop"), argv);
    } else {
      // Someone changed the list's tail meanwhile: remove the forwarded elements by value.
      const core::command_def& lrem = *s.lookup("lrem");
      for (const auto& e : fwd_batch) {
        std::array<std::string_view, 4> argv{"LREM", name, "-1", e};
        s.call(c, lrem, argv);
      }
    }
    c.out.clear();
    s.wake();
  }
};

shared_queue::shared_queue(shared_context& ctx, std::string name, core::queue_options opts)
    : impl_(std::make_unique<impl>(ctx, std::move(name), opts)) {
  impl_->self = this;
}

shared_queue::~shared_queue() { stop(); }

void shared_queue::start() {
  auto& d = *impl_;
  if (d.started) return;
  d.started = true;
  d.taker = std::make_unique<upstream_connection>(d.ctx.io, d.ctx.endpoint, "respq-take:" + d.ctx.node_id + ":" + d.name);
  d.taker->set_blocking_allowance(take_timeout_s);
  d.taker->on_ready = [&d] { d.recover(); };
  d.taker->on_lost = [&d](const std::string&) {
    d.taking = false;
    d.recovering = false;
  };
  d.taker->start();
  d.schedule_forward();
}

void shared_queue::stop() {
  auto& d = *impl_;
  d.stopping = true;
  d.due_timer.cancel();
  d.take_timer.cancel();
  d.retry_timer.cancel();
  if (d.taker) d.taker->stop();
}

void shared_queue::drain() { impl_->draining = true; }
std::size_t shared_queue::requests_in_flight() const { return impl_->in_flight; }

void shared_queue::reconfigure(const core::queue_options& opts) {
  impl_->opts = opts;
  impl_->run_due();
  impl_->take();
}

void shared_queue::on_main_ready() {
  impl_->flush_finals();
  impl_->forward();
}

void shared_queue::on_main_lost() {
  auto& d = *impl_;
  d.forwarding = false;
  for (auto& [seq, op] : d.finals) op.sent = false;
}

void shared_queue::spool_changed() { impl_->schedule_forward(); }

void shared_queue::on_result(tasks::http_result& r) { impl_->on_result(r); }

void shared_queue::cron() {
  auto& d = *impl_;
  if (d.stopping) return;
  d.poll_upstream();
  d.flush_finals();
  d.forward();
  d.run_due();
  d.take();
}

void shared_queue::hand_back(redisContext* c) {
  auto& d = *impl_;
  std::size_t back = 0, finished = 0;
  for (auto& [seq, t] : d.custody) {
    redisReply* r = nullptr;
    if (t.st == impl::task_state::finalizing) {
      auto f = d.finals.find(seq);
      if (f == d.finals.end()) continue;
      // Its asynchronous send may have run: only what that one did not do.
      const char* argv[] = {"EVAL", finalize_script, "3", d.processing.c_str(), d.dead_key.c_str(), d.results.c_str(),
                            t.payload.data(), f->second.dead_record.data(), f->second.outcome.data(),
                            f->second.sent || f->second.resend ? "0" : "1"};
      const std::size_t len[] = {4, std::strlen(finalize_script), 1, d.processing.size(), d.dead_key.size(),
                                 d.results.size(), t.payload.size(), f->second.dead_record.size(),
                                 f->second.outcome.size(), 1};
      r = static_cast<redisReply*>(redisCommandArgv(c, 10, argv, len));
      if (r && r->type != REDIS_REPLY_ERROR) ++finished;
    } else {
      const char* argv[] = {"EVAL", hand_back_script, "2", d.processing.c_str(), d.name.c_str(), t.payload.data()};
      const std::size_t len[] = {4, std::strlen(hand_back_script), 1, d.processing.size(), d.name.size(),
                                 t.payload.size()};
      r = static_cast<redisReply*>(redisCommandArgv(c, 6, argv, len));
      if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) ++back;
    }
    if (!r) break;  // the connection failed: the rest stays in the processing list
    freeReplyObject(r);
  }
  if (back)
    core::log_notice("Shared queue '" + d.name + "': handed " + std::to_string(back) +
                     " unfinished tasks back to the queue at shutdown");
  if (finished)
    core::log_notice("Shared queue '" + d.name + "': recorded the outcome of " + std::to_string(finished) +
                     " finished tasks at shutdown");
  d.custody.clear();
  d.finals.clear();
}

const std::string& shared_queue::name() const { return impl_->name; }
std::size_t shared_queue::held() const { return impl_->custody.size(); }

tasks::queue_stats shared_queue::stats() const {
  const auto& d = *impl_;
  tasks::queue_stats st;
  st.name = d.name;
  st.shared = true;
  std::size_t spool = 0;
  if (core::value* v = d.ctx.s.db(0).find(d.name); v && v->type() == core::value_type::list) spool = v->list().size();
  st.pending = d.upstream_pending + spool;
  st.in_flight = d.in_flight;
  for (const auto& [seq, t] : d.custody) {
    if (t.st != impl::task_state::waiting) continue;
    if (t.attempts > 0) ++st.retrying;
    else ++st.scheduled;
  }
  st.delivered = d.delivered;
  st.failed = d.failed;
  st.dead = d.dead;
  st.dead_list = d.upstream_dead;
  st.dispatched = d.dispatched;
  st.egress_denied = d.egress_denied;
  st.concurrency = d.opts.concurrency;
  st.rate = d.opts.rate;
  auto extra = [&st](const char* k, auto v) {
    if constexpr (std::is_convertible_v<decltype(v), std::string>) st.extra.emplace_back(k, std::string(v));
    else st.extra.emplace_back(k, std::to_string(v));
  };
  extra("node", d.ctx.node_id);
  extra("taker", d.taker ? d.taker->status() : std::string("idle"));
  extra("spool", spool);
  extra("forwarding", d.fwd_batch.size());
  extra("forwarded", d.forwarded);
  extra("taken", d.taken);
  extra("recovered", d.recovered);
  extra("waiting", d.waiting);
  extra("finishing", d.finals.size());
  extra("duplicates", d.duplicates);
  extra("forward_resends", d.forward_resends);
  extra("forward_deduped", d.forward_deduped);
  extra("finish_resends", d.final_resends);
  return st;
}

}  // namespace respq::redis_compat
