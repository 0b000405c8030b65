// shared_queue: see shared_queue.hpp for keys, custody and crash behaviour.
#include "redis-compat/shared_queue.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <type_traits>
#include <unordered_map>

#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "redis-compat/mirror_stream.hpp"
#include "tasks/callback_retries.hpp"
#include "tasks/host_health.hpp"
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

// KEYS: processing, dead, results, park set, reclaimed marker. ARGV: payload, dead record
// ("" = none), outcome ("" = none), first ("1" on the first send), park member ("" =
// none: the envelope of a task waiting for its retry or its time), park score (ms),
// holder ("" = none: for a duplicate, the element of the copy of its task held here).
// A duplicate is dropped only while its holder's element is in the processing list (two
// of them when the two elements are equal): otherwise -2, and nothing is written. The
// holder's element gone means another sidecar reclaimed it (this node's heartbeat had
// lapsed): the copy just taken may be the reclaimed one, now the task's only custody.
// On a resend after a lost reply, the dead letter, the park and the outcome only when
// this call removed the task, so the resend changes nothing if the first one ran. On the
// first send always: a task missing from the processing list (an upstream restarted
// without persistence) still gets its dead letter and outcome; unless another sidecar
// reclaimed this node's list meanwhile (the marker): then -1, and nothing is written (the
// reclaimed copy runs again elsewhere).
constexpr const char* finalize_script =
    "if ARGV[7] ~= '' then\n"
    "  local need = 1\n"
    "  if ARGV[7] == ARGV[1] then need = 2 end\n"
    "  if #redis.call('LPOS', KEYS[1], ARGV[7], 'COUNT', need) < need then return -2 end\n"
    "end\n"
    "local n = redis.call('LREM', KEYS[1], 1, ARGV[1])\n"
    "if n == 0 and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end\n"
    "if n > 0 or ARGV[4] == '1' then\n"
    "  if ARGV[2] ~= '' then redis.call('LPUSH', KEYS[2], ARGV[2]) end\n"
    "  if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5]) end\n"
    "  if ARGV[3] ~= '' then redis.call('PUBLISH', KEYS[3], ARGV[3]) end\n"
    "end\n"
    "return n\n";

// KEYS: processing. ARGV: pairs of a producer's element that names no id and the same as
// an envelope carrying the id generated for it. For each pair, replaces one copy of the
// element in the list (1), or finds none (0: another sidecar reclaimed the list
// meanwhile; it is not this one's). The elements were just moved in at the head, so
// LPOS finds each within the last takes. The answer is one string, a character per pair
// (integers inside an array reach the link as a shared placeholder: it does not read them).
constexpr const char* stamp_script =
    "local out = {}\n"
    "for i = 1, #ARGV, 2 do\n"
    "  local at = redis.call('LPOS', KEYS[1], ARGV[i])\n"
    "  if at then redis.call('LSET', KEYS[1], at, ARGV[i + 1]); out[#out + 1] = '1' else out[#out + 1] = '0' end\n"
    "end\n"
    "return table.concat(out)\n";

// KEYS: this node's heartbeat key, processing, reclaimed marker. ARGV: token, ttl ms.
// Claims the node alive (so no other sidecar reclaims the list from now on) and reads the
// list in one step: what it returns is this node's, and stays so while it beats.
// Returns {"1" when the list was reclaimed by another sidecar recently, elements}.
constexpr const char* recover_script =
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return {tostring(redis.call('EXISTS', KEYS[3])), redis.call('LRANGE', KEYS[2], 0, -1)}\n";

// KEYS: another node's processing list, its heartbeat key, the queue, its reclaimed
// marker. ARGV: the marker's ttl ms. Only when the heartbeat expired: every element back
// to the right end of the queue (the oldest taken first), in one step, so exactly one
// sidecar moves them. -1: the node is alive.
constexpr const char* reclaim_script =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "local n = 0\n"
    "while redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT') do n = n + 1 end\n"
    "if n > 0 then redis.call('SET', KEYS[4], n, 'PX', ARGV[1]) end\n"
    "return n\n";

// KEYS: queue, retry set, scheduled set. ARGV: now ms, limit per set. Every envelope whose
// time came, out of its set and onto the queue (earliest taken first), in one step.
constexpr const char* due_mover_script =
    "local n = 0\n"
    "for i = 2, 3 do\n"
    "  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])\n"
    "  if #due > 0 then\n"
    "    redis.call('ZREM', KEYS[i], unpack(due))\n"
    "    redis.call('LPUSH', KEYS[1], unpack(due))\n"
    "    n = n + #due\n"
    "  end\n"
    "end\n"
    "return n\n";
constexpr const char* due_mover_limit = "256";

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

// A SCAN MATCH pattern matching `s` literally.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

// An element that is an envelope this link wrote (a task that waited for its retry or
// its time on the upstream): its record. A producer's task always has a "url".
std::optional<tasks::envelope_record> shared_envelope(std::string_view element, std::string& id) {
  if (element.empty() || element.front() != '{' || element.find("\"max_attempts\"") == std::string_view::npos)
    return std::nullopt;
  const auto j = nlohmann::json::parse(element, nullptr, false);
  if (!j.is_object() || j.contains("url") || !j.contains("state") || !j.contains("attempts")) return std::nullopt;
  auto r = tasks::read_envelope_json(element);
  auto* e = std::get_if<tasks::envelope_record>(&r);
  if (!e) return std::nullopt;
  if (auto i = j.find("id"); i != j.end() && i->is_string()) id = i->get<std::string>();
  return std::move(*e);
}

std::string score_ms(double unix_s) { return std::to_string(static_cast<long long>(unix_s * 1000)); }

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
    tasks::attempt_log log;  // for TASK GET
    // Set when it started leaving custody (finalizing): what it became (delivered, dead,
    // cancelled, retrying, scheduled, duplicate).
    const char* final_state = "";
    std::string dead_error;     // dead: its last error as TASK GET gives it (as a local queue's)
    std::string host;           // host:port of its URL (tasks::host_key_of)
    bool from_envelope = false;  // it waited upstream already (its time, if any, came)
    bool in_host_line = false;  // waiting for a slot at its host (not in `due`)
    bool waits_host = false;    // waiting for its host (a slot, a cool-down, a hold)
    bool rate_line = false;     // in_host_line for the host-rate (counted in rate_lines, not in_lines)
  };

  // A destination host (tasks/host_health.hpp, as for local queues), and the tasks held
  // here that wait for a slot there, oldest first.
  struct host_entry {
    tasks::host_health health;
    std::deque<std::uint64_t> waiting;
  };

  // What the finalize script does for a task leaving this sidecar's custody: removes it
  // from the processing list and then pushes its dead letter, or parks its envelope in the
  // retry or scheduled set, and publishes its outcome.
  struct final_op {
    std::string dead_record;
    std::string outcome;
    const std::string* park_key = nullptr;  // retry_key or scheduled_key; null: none
    std::string park_member, park_score;
    std::string holder;  // a duplicate: the element of the copy held here (finalize_script)
    bool sent = false;
    bool resend = false;  // a send's reply was lost: it may have run
  };

  impl(shared_context& c, std::string n, core::queue_options o)
      : ctx(c), name(std::move(n)), opts(o), processing(name + ":processing:" + c.node_id), dead_key(name + ":dead"),
        results(name + ":results"), marker_key("respq:spool:" + c.node_id + ":" + name), retry_key(name + ":retry"),
        scheduled_key(name + ":scheduled"), node_key(node_key_of(c.node_id)),
        reclaimed_key(reclaimed_key_of(c.node_id, name)), processing_prefix(name + ":processing:"),
        paused_key(name + ":paused"), due_timer(c.io), take_timer(c.io), retry_timer(c.io) {}

  static std::string node_key_of(const std::string& node) { return "respq:node:" + node; }
  static std::string reclaimed_key_of(const std::string& node, const std::string& queue) {
    return "respq:reclaimed:" + node + ":" + queue;
  }

  shared_context& ctx;
  shared_queue* self = nullptr;
  std::string name;
  core::queue_options opts;
  std::string processing, dead_key, results, marker_key, retry_key, scheduled_key, node_key, reclaimed_key,
      processing_prefix;
  std::string paused_key;  // local, database 0
  std::unique_ptr<upstream_connection> taker;
  loop_timer due_timer, take_timer, retry_timer;

  std::map<std::uint64_t, held_task> custody;  // by local sequence number
  std::uint64_t next_seq = 0;
  std::unordered_map<std::string, int> payload_count;
  std::unordered_map<std::string, int> released_during_recovery;
  std::unordered_map<std::string, std::uint64_t> by_id;
  std::unordered_map<std::uint64_t, std::uint64_t> by_ticket;  // attempt ticket -> seq
  // A callback on its way -> what it is sent again from if it fails.
  std::unordered_map<std::uint64_t, tasks::callback_retries::callback> callbacks_out;
  tasks::callback_retries callback_retry;  // callbacks that failed and go again
  std::set<std::pair<double, std::uint64_t>> due;  // (unix time, seq) of waiting tasks
  std::map<std::uint64_t, final_op> finals;        // removals not yet acknowledged, by seq
  std::vector<tasks::http_request> outgoing;
  bool submit_posted = false;

  bool taking = false, recovering = false, stopping = false, started = false;
  static constexpr std::size_t burst_max = 64;
  bool queue_had_work = false, burst_empty = false;
  std::size_t burst_left = 0;  // LMOVE replies awaited
  bool draining = false;  // shutdown's grace period: finish what is in flight, start nothing
  std::size_t in_flight = 0, waiting = 0;
  tasks::rate_gate rate;
  std::unordered_map<std::string, host_entry> hosts;
  std::size_t in_lines = 0;  // tasks in hosts' lines (counted against concurrency when taking)
  // Tasks in hosts' lines over the host-rate: not counted against concurrency (another
  // host's tasks still go), but at most max_rate_lines() of them before taking stops.
  std::size_t rate_lines = 0;
  std::size_t max_rate_lines() const { return std::max<std::size_t>(1024, 4 * std::size_t{opts.concurrency}); }
  // A task leaves its host's line (its id stays there, skipped when reached).
  void left_line(held_task& t) {
    t.in_host_line = false;
    std::size_t& n = t.rate_line ? rate_lines : in_lines;
    if (n) --n;
    t.rate_line = false;
  }
  static constexpr double probe_recheck_s = 0.25;

  bool forwarding = false, forward_posted = false;
  // CLIENT PAUSE: a forwarded batch still to leave the spool, and results still to apply
  // (both change respq's dataset or publish); the cron finishes them once it ends.
  bool forwarded_pending = false;
  std::vector<tasks::http_result> held_results;
  std::vector<std::string> fwd_batch;  // oldest first; kept until acknowledged
  std::string fwd_id;
  std::uint64_t fwd_counter = 0;

  tasks::attempt_figures attempts;  // responses, retries, request durations
  std::uint64_t forwarded = 0, taken = 0, recovered = 0, delivered = 0, failed = 0, dead = 0, duplicates = 0,
                dispatched = 0, egress_denied = 0;
  std::uint64_t forward_resends = 0, forward_deduped = 0, final_resends = 0, wait_short = 0;
  // The upstream's lengths of <name>, <name>:dead, <name>:retry and <name>:scheduled for
  // INFO tasks, read about once a second.
  std::uint64_t upstream_pending = 0, upstream_dead = 0, upstream_retrying = 0, upstream_scheduled = 0;

  // Reclaim: tasks this sidecar moved back from dead nodes' processing lists, and tasks
  // of its own that another sidecar reclaimed while this one's heartbeat had lapsed.
  std::uint64_t reclaimed = 0, lost_to_reclaim = 0;
  std::uint64_t cancelled = 0;
  tasks::task_history history;  // recent outcomes of the tasks this sidecar finished, for TASK GET
  bool scanning = false;
  std::string scan_cursor = "0";
  clock::time_point scan_pass_started{};
  // Attempts whose results are ignored (their task was reclaimed elsewhere, or cancelled),
  // with their host's key: the host still learns that the attempt ended.
  std::unordered_map<std::uint64_t, std::string> orphan_tickets;
  bool recover_wanted = false;             // re-read the processing list before taking more
  std::size_t stamping = 0;                // taken, their id being written (stamp)
  std::vector<std::pair<std::string, std::string>> stamp_batch;  // (element, stamped) to send

  // Due mover: retry and scheduled sets to the queue.
  bool moving = false;
  clock::time_point last_move{};
  std::uint64_t moved_due = 0;
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

  // `final`: the task's last outcome (not parked for a retry or its time).
  void post_callback(const held_task& t, const std::string& o, bool final) {
    if (t.task.callback.empty()) return;
    send_callback(tasks::callback_retries::callback{t.id, t.task.callback, o, final});
    flush_outgoing();
  }

  // Sends a callback (again); what it needs to go once more stays with its ticket.
  void send_callback(tasks::callback_retries::callback&& cb) {
    const std::uint64_t ticket = ctx.new_ticket(self);
    outgoing.push_back(tasks::make_callback_request(cb.url, cb.task_id, cb.body, ticket, name, opts,
                                                    static_cast<long long>(unix_now())));
    callbacks_out.emplace(ticket, std::move(cb));
  }

  // The callbacks whose next send is due (the cron, ten times a second; not while CLIENT
  // PAUSE holds the server, as for a local queue).
  void resend_callbacks() {
    if (ctx.s.pause_on()) return;
    auto due_now = callback_retry.due(unix_now());
    if (due_now.empty()) return;
    for (auto& cb : due_now) send_callback(std::move(cb));
    flush_outgoing();
  }

  // The end of a callback's send: done, to go again later, or given up (counted; the log
  // says so at most once a minute, and each one at verbose level), as a local queue's.
  void callback_ended(const tasks::http_result& res, tasks::callback_retries::callback&& cb) {
    if (res.egress_denied) ++egress_denied;
    const std::string id = cb.task_id;
    const int sends = cb.attempts;
    const double now = unix_now();
    const auto v =
        callback_retry.ended(std::move(cb), res, now, opts.backoff_min, opts.backoff_max, tasks::uniform01(rng));
    if (v == tasks::callback_retries::verdict::delivered) return;
    const std::string why = tasks::failure_text(res);
    if (v == tasks::callback_retries::verdict::retry) {
      core::log_verbose("Callback for task " + id + " of shared queue '" + name + "' failed: " + why +
                        "; sent again later");
      return;
    }
    core::log_verbose("Callback for task " + id + " of shared queue '" + name + "' failed: " + why +
                      "; given up after " + std::to_string(sends) + (sends == 1 ? " send" : " sends"));
    if (callback_retry.notice_due(now))
      core::log_notice("Shared queue '" + name + "': callbacks given up: " + std::to_string(callback_retry.failed()) +
                       " so far (the last for task " + id + ": " + why + ")");
  }

  // --- custody ------------------------------------------------------------------------
  void adopt(std::string element) {
    const double now = unix_now();
    const std::uint64_t seq = ++next_seq;
    held_task& t = custody[seq];
    t.payload = std::move(element);
    ++payload_count[t.payload];
    // An envelope (the task waited for its retry or its time on the upstream): the
    // producer's payload inside, and the attempts so far.
    std::string env_id;
    std::optional<tasks::envelope_record> env = shared_envelope(t.payload, env_id);
    if (env) {
      t.unwrapped = std::move(env->payload);
      t.attempts = env->attempts;
    }
    auto e = tasks::decode_element(env ? std::string_view(t.unwrapped) : std::string_view(t.payload), now);
    if (e.was_dead_letter) t.unwrapped = std::move(e.unwrapped);
    if (!env_id.empty()) e.id = std::move(env_id);  // the id it had (generated ones too)
    t.id = e.id.empty() ? new_id() : std::move(e.id);
    if (auto* err = std::get_if<tasks::decode_error>(&e.result)) {
      ++dead;
      const tasks::decision d = tasks::refuse(task_record_of(t), err->reason);
      t.dead_error = d.reason;
      finalize(seq, dead_json(t, d), tasks::outcome_json(d.outcome));
      return;
    }
    t.task = std::move(std::get<tasks::task>(e.result));
    t.task.id = t.id;
    t.max_attempts = env && env->max_attempts ? *env->max_attempts : tasks::max_attempts_of(t.task, opts);
    t.from_envelope = env.has_value();
    if (auto bi = by_id.find(t.id); bi != by_id.end()) {
      if (auto h = custody.find(bi->second); h != custody.end()) {
        // The same idempotency key is already in this sidecar's custody: deliver it once,
        // unless the copy held here was reclaimed meanwhile (finalize_script's holder
        // check; then this one runs, see on_final_reply).
        t.final_state = "duplicate";
        final_op op;
        op.holder = h->second.payload;
        // Its outcome goes to subscribers only, not to the callback (as for local queues).
        finalize(seq, {}, tasks::outcome_json(tasks::duplicate_outcome(task_record_of(t))), false, std::move(op));
        return;
      }
    }
    by_id[t.id] = seq;
    dispatch(seq, t, now);
  }

  // A task taken into custody (not a duplicate): parked upstream until its time, or
  // started, or waiting here for a slot or its host.
  void dispatch(std::uint64_t seq, held_task& t, double now) {
    // Its time ("delay", "at") is to come: it waits in the scheduled set, where any
    // sidecar's due mover finds it. An envelope's time came already ("delay" is not
    // counted again from now).
    if (!t.from_envelope && t.task.run_at && *t.task.run_at > now + 0.001) {
      park_upstream(seq, t, tasks::custody_state::scheduled, *t.task.run_at, {});
      return;
    }
    t.host = tasks::host_key_of(t.task.url);
    // (A take already waiting when CLIENT PAUSE came brings it: it waits for the end.)
    if (!draining && may_start() && !ctx.s.pause_on() && in_flight < opts.concurrency) start_if_host_admits(seq, t, now);
    else park(seq, t, now);
  }

  host_entry& host_of(const held_task& t) {
    auto it = hosts.find(t.host);
    if (it == hosts.end()) it = hosts.emplace(t.host, host_entry{tasks::host_health(opts.per_host, opts.host_rate), {}}).first;
    return it->second;
  }

  // Starts the attempt when its host admits one; else the task waits here without an
  // attempt spent: until a known time (open circuit, hold) in `due`, or for a slot in its
  // host's line.
  void start_if_host_admits(std::uint64_t seq, held_task& t, double now) {
    host_entry& h = host_of(t);
    const auto a = h.health.admit(now);
    if (a.v == tasks::host_health::verdict::go && h.waiting.empty()) {
      start_attempt(seq, t);
    } else if ((a.v == tasks::host_health::verdict::wait_until && a.rate) ||
               (a.v == tasks::host_health::verdict::go && h.health.rate_step() > 0)) {
      // Over the host-rate (or behind those who are): its host's line, in order, drained
      // as the rate's window opens (drain_hosts: the cron and each result). Counted apart
      // from the line of a host at its cap, so another host's tasks are still taken.
      t.waits_host = true;
      t.st = task_state::waiting;
      t.in_host_line = true;
      t.rate_line = true;
      h.waiting.push_back(seq);
      ++waiting;
      ++rate_lines;
    } else if (a.v == tasks::host_health::verdict::wait_until) {
      t.waits_host = true;
      park(seq, t, a.until);
    } else if (h.health.state() != tasks::circuit_state::closed) {
      // A probe is out: looked at again shortly (not in a line, which would count
      // against taking other hosts' tasks for as long as the probe runs).
      t.waits_host = true;
      park(seq, t, now + probe_recheck_s);
    } else {
      t.waits_host = true;
      t.st = task_state::waiting;
      t.in_host_line = true;
      h.waiting.push_back(seq);
      ++waiting;
      ++in_lines;
    }
  }

  // The tasks in a host's line, while it and the queue admit attempts.
  void drain_host(host_entry& h) {
    const double now = unix_now();
    const auto tnow = clock::now();
    while (!stopping && !draining && may_start() && !h.waiting.empty() && in_flight < opts.concurrency && rate_allows(tnow) &&
           h.health.admit(now).v == tasks::host_health::verdict::go && !paused()) {
      const std::uint64_t seq = h.waiting.front();
      h.waiting.pop_front();
      auto it = custody.find(seq);
      if (it == custody.end() || it->second.st != task_state::waiting || !it->second.in_host_line) continue;
      left_line(it->second);
      if (waiting) --waiting;
      start_attempt(seq, it->second);
    }
  }

  // Whether a task held here may start an attempt: not while this node's heartbeat key may
  // have expired (the beats failed for node-timeout, or the process was stopped) or after
  // a lapse until the processing list is read again: another sidecar may have reclaimed
  // the tasks meanwhile and run them. The cron tries again.
  bool may_start() const {
    return !recover_wanted && !recovering && clock::now() < ctx.custody_sure_until;
  }

  void drain_hosts() {
    for (auto& [key, h] : hosts)
      if (!h.waiting.empty()) drain_host(h);
  }

  // Hosts with nothing to remember are forgotten once the queue has many (cron).
  void forget_idle_hosts() {
    if (hosts.size() <= 256) return;
    const double now = unix_now();
    for (auto it = hosts.begin(); it != hosts.end();) {
      if (it->second.waiting.empty() && it->second.health.idle(now)) it = hosts.erase(it);
      else ++it;
    }
  }

  void park(std::uint64_t seq, held_task& t, double at) {
    t.st = task_state::waiting;
    t.next_run = at;
    due.emplace(at, seq);
    ++waiting;
    arm_due();
  }

  // Every attempt that starts spends one of the queue's `rate` tokens (here only: a task
  // taken that waits for its host spends none until it goes).
  void start_attempt(std::uint64_t seq, held_task& t) {
    rate_consume(clock::now());
    host_of(t).health.started(unix_now());
    t.waits_host = false;
    t.st = task_state::in_flight;
    ++t.attempts;
    t.log.started(t.attempts, unix_now());
    t.ticket = ctx.new_ticket(self);
    by_ticket.emplace(t.ticket, seq);
    ++in_flight;
    ++dispatched;
    auto req = tasks::make_http_request(t.task, t.ticket, name, opts.timeout);
    tasks::set_attempt_header(req, t.attempts);
    tasks::sign_request(req, t.id, static_cast<long long>(unix_now()), opts.signing_secrets);
    outgoing.push_back(std::move(req));
    flush_outgoing();
  }

  void finalize(std::uint64_t seq, std::string dead_record, const std::string& outcome, bool callback = true) {
    finalize(seq, std::move(dead_record), outcome, callback, final_op());
  }

  void finalize(std::uint64_t seq, std::string dead_record, const std::string& outcome, bool callback, final_op op) {
    auto it = custody.find(seq);
    if (it == custody.end()) return;
    held_task& t = it->second;
    t.st = task_state::finalizing;
    if (!*t.final_state)
      t.final_state = op.park_key ? (op.park_key == &retry_key ? "retrying" : "scheduled")
                                  : (!dead_record.empty() ? "dead" : "delivered");
    if (!outcome.empty() && op.holder.empty()) {  // a duplicate's: once it is dropped
      publish_local(outcome);
      if (callback) post_callback(t, outcome, op.park_key == nullptr);
    }
    op.dead_record = std::move(dead_record);
    op.outcome = outcome;
    finals[seq] = std::move(op);
    flush_finals();
  }

  // The task waits upstream, in the retry or the scheduled set, as an envelope carrying
  // its attempts; it leaves this sidecar's custody once the upstream has it.
  void park_upstream(std::uint64_t seq, held_task& t, tasks::custody_state st, double at, const std::string& outcome,
                     const std::string& last_error = {}) {
    tasks::envelope_fields f;
    f.id = t.id;
    f.queue = name;
    f.state = st;
    f.attempts = t.attempts;
    f.max_attempts = t.max_attempts;
    f.next_run = at;
    f.last_code = t.last_code;
    f.last_error = last_error;
    f.payload = task_payload(t);
    final_op op;
    op.park_key = st == tasks::custody_state::retrying ? &retry_key : &scheduled_key;
    op.park_member = tasks::envelope_json(f);
    op.park_score = score_ms(at);
    finalize(seq, {}, outcome, true, std::move(op));
  }

  // One copy of `element` fewer held here (payload_count).
  void unhold_payload(const std::string& element) {
    if (auto pc = payload_count.find(element); pc != payload_count.end() && --pc->second <= 0) payload_count.erase(pc);
  }

  void release(std::uint64_t seq) {
    auto it = custody.find(seq);
    if (it == custody.end()) return;
    held_task& t = it->second;
    unhold_payload(t.payload);
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
      bool sent = ctx.main.command({"EVAL", finalize_script, "5", processing, dead_key, results,
                                    op.park_key ? *op.park_key : retry_key, reclaimed_key, it->second.payload,
                                    op.dead_record, op.outcome, op.resend ? "0" : "1", op.park_member,
                                    op.park_score, op.holder},
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
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -2) {
      // A duplicate whose holder's element had left the processing list: the holder was
      // reclaimed by another sidecar (it is given up, or its outcome refused), and this
      // copy may be the reclaimed one. It runs as the task's custody here.
      finals.erase(f);
      auto it = custody.find(seq);
      if (it == custody.end()) return;
      held_task& t = it->second;
      t.final_state = "";
      by_id[t.id] = seq;
      core::log_verbose("Task " + t.id + " of shared queue '" + name +
                        "' taken again while the copy held here had left the processing list: it runs");
      dispatch(seq, t, unix_now());
      return;
    }
    if (!f->second.holder.empty() && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
      ++duplicates;
      publish_local(f->second.outcome);
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
      ++lost_to_reclaim;
      core::log_notice("Shared queue '" + name + "': a task of this node was reclaimed by another sidecar while " +
                       "its heartbeat had lapsed; its outcome here is dropped (it runs again there)");
    }
    if (!(r->type == REDIS_REPLY_INTEGER && r->integer < 0)) remember(seq, f->second);
    finals.erase(f);
    release(seq);
  }

  // A task that left custody for good (delivered, dead, cancelled) joins the recent
  // outcomes, as a local queue's does.
  void remember(std::uint64_t seq, const final_op& op) {
    auto it = custody.find(seq);
    const std::size_t max_len = ctx.s.cfg().task_history_max_len;
    if (it == custody.end() || max_len == 0) return;
    const held_task& t = it->second;
    const std::string_view st = t.final_state;
    tasks::finished_task f;
    if (st == "delivered") f.state = tasks::finished_state::delivered;
    else if (st == "dead") f.state = tasks::finished_state::dead;
    else if (st == "cancelled") f.state = tasks::finished_state::cancelled;
    else return;  // waiting upstream, or a duplicate of one held
    f.id = t.id;
    f.attempts = t.attempts;
    f.max_attempts = t.max_attempts;
    f.last_code = t.last_code;
    if (!t.log.empty()) f.last_error = t.log.entries().back().error;
    if (f.state == tasks::finished_state::dead && !t.dead_error.empty()) f.last_error = t.dead_error;
    f.finished_at = unix_now();
    if (f.state == tasks::finished_state::dead) {
      f.kind = tasks::finished_task::source::dead_record;
      f.record = op.dead_record;
    } else {
      f.kind = tasks::finished_task::source::element;
      f.record = task_payload(t);
    }
    f.log = t.log;
    history.add(std::move(f), max_len);
  }

  // --- results ------------------------------------------------------------------------
  void apply_held_results() {
    std::vector<tasks::http_result> held;
    held.swap(held_results);
    for (auto& r : held) on_result(r);
  }

  void on_result(tasks::http_result& res) {
    if (auto cb = callbacks_out.find(res.ticket); cb != callbacks_out.end()) {
      auto c = std::move(cb->second);
      callbacks_out.erase(cb);
      callback_ended(res, std::move(c));
      return;
    }
    if (auto o = orphan_tickets.find(res.ticket); o != orphan_tickets.end()) {
      // Its task was reclaimed by another sidecar while this one ran it, or cancelled.
      if (auto h = hosts.find(o->second); h != hosts.end()) h->second.health.forget(unix_now());
      orphan_tickets.erase(o);
      if (in_flight) --in_flight;
      drain_hosts();
      run_due();
      take();
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
    const double now = unix_now();
    host_entry& h = host_of(t);
    {
      double hold_until = 0;
      const tasks::host_signal sig = tasks::host_signal_of(res, now, hold_until);
      std::string error;
      if (sig != tasks::host_signal::clean && sig != tasks::host_signal::neutral)
        error = tasks::failure_text(res);
      const auto tr = h.health.ended(sig, now, ctx.s.cfg().host_limits, hold_until, error);
      if (tr.opened)
        core::log_notice("Shared queue '" + name + "': circuit of host " + t.host + " open for " +
                         std::to_string(ctx.s.cfg().host_limits.cooldown) + " s (" + error + ")");
      else if (tr.closed)
        core::log_notice("Shared queue '" + name + "': circuit of host " + t.host + " closed");
    }
    tasks::task_record tr = task_record_of(t);
    // A shared task's log starts afresh each time a sidecar takes it from the upstream,
    // so its holds can't be counted: on a shared queue a hold is an attempt spent.
    tr.holds = tasks::max_free_holds;
    const tasks::decision d = tasks::decide(tr, res, opts, now, rng);
    if (d.attempt_refunded) --t.attempts;  // the endpoint asked to wait: not an attempt spent
    if (d.attempt_failed) ++failed;
    attempts.record(res, d.state == tasks::next_state::retrying);
    t.log.finished(res.code, tasks::redact_urls_in(res.error), res.duration_ms,
                   d.state == tasks::next_state::retrying ? d.next_run : 0);
    switch (d.state) {
      case tasks::next_state::delivered:
        ++delivered;
        finalize(seq, {}, tasks::outcome_json(d.outcome));
        break;
      case tasks::next_state::retrying:
        // Waits in <name>:retry with its attempts, for any sidecar.
        park_upstream(seq, t, tasks::custody_state::retrying, d.next_run, tasks::outcome_json(d.outcome),
                      res.error);
        break;
      case tasks::next_state::dead:
        ++dead;
        core::log_verbose("Task " + t.id + " of shared queue '" + name + "' is dead: " + d.reason);
        // The transport error, else the attempt's, else why the answer was final.
        t.dead_error = !d.dead_error.empty()                                   ? d.dead_error
                       : !t.log.empty() && !t.log.entries().back().error.empty() ? t.log.entries().back().error
                                                                                 : d.reason;
        finalize(seq, dead_json(t, d), tasks::outcome_json(d.outcome));
        break;
    }
    drain_hosts();
    run_due();
    take();
  }

  // --- waiting tasks ------------------------------------------------------------------
  bool rate_allows(clock::time_point now) const { return rate.allows(now, opts.rate); }
  void rate_consume(clock::time_point now) { rate.consume(now, opts.rate); }

  // QUEUE PAUSE: the key <name>:paused exists in respq's database 0 (the same key as for
  // local queues; see task_manager.hpp), or CLIENT PAUSE is on. Checked whenever work
  // would start; the cron looks ten times a second, so a resume takes effect within 100 ms.
  bool paused() { return ctx.s.pause_on() || queue_paused(); }
  bool queue_paused() {
    core::keyspace& db = ctx.s.db(0);
    core::value* v = db.peek(paused_key);
    return v && !db.is_expired(*v);
  }

  void run_due() {
    if (paused()) {
      due_timer.cancel();  // the cron runs it again
      return;
    }
    const double now = unix_now();
    const auto tnow = clock::now();
    while (!stopping && !draining && may_start() && !due.empty() && due.begin()->first <= now &&
           in_flight < opts.concurrency && rate_allows(tnow)) {
      std::uint64_t seq = due.begin()->second;
      due.erase(due.begin());
      if (waiting) --waiting;
      auto it = custody.find(seq);
      if (it == custody.end() || it->second.st != task_state::waiting || it->second.in_host_line) continue;
      host_entry& h = host_of(it->second);
      if (h.health.admit(now).v != tasks::host_health::verdict::go || !h.waiting.empty()) {
        start_if_host_admits(seq, it->second, now);  // waits again, without an attempt
        continue;
      }
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
    // Due already, and not waiting for the rate: what holds it is not time (the slots,
    // the heartbeat's gate, a drain), and a timer at once would spin. An attempt's end
    // (on_result) and the cron, ten times a second, run it again.
    if (wait <= 0) {
      due_timer.cancel();
      return;
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
    if (stopping || !taker || !taker->ready() || taking || recovering) return;
    if (recover_wanted) {
      recover();
      return;
    }
    if (draining) return;
    if (paused()) return;  // a take already waiting may still bring one task
    if (in_flight + in_lines + stamping >= opts.concurrency || rate_lines >= max_rate_lines() || due_ready()) return;
    auto now = clock::now();
    // Under the queue's rate, tasks waiting in a host's line have the next token before
    // a new task is taken (else taking would spend every token while they wait).
    if (opts.rate > 0 && rate_lines && rate_allows(now)) drain_hosts();
    if (!rate_allows(now)) {
      if (!take_timer.armed()) take_timer.at(rate.next_allowed(), [this] { take(); });
      return;
    }
    // While the queue has work (the last take found some) and no rate applies, up to
    // burst_max non-blocking LMOVEs go out pipelined, one per free slot: one round trip
    // takes many tasks. An empty answer goes back to one BLMOVE, which waits.
    const std::size_t free = opts.concurrency - in_flight - in_lines - stamping;
    if (queue_had_work && opts.rate <= 0 && free > 1) {
      const std::size_t n = std::min<std::size_t>(free, burst_max);
      taking = true;
      burst_left = 0;
      burst_empty = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (!taker->command({"LMOVE", name, processing, "RIGHT", "LEFT"}, [this](const redisReply* r) {
              on_taken(r, "LMOVE");
              if (--burst_left > 0) return;
              taking = false;
              if (burst_empty) queue_had_work = false;
              flush_stamps();
              if (r) take();  // lost: recovery adopts whatever moved
            }))
          break;
        ++burst_left;
      }
      if (burst_left == 0) taking = false;
      return;
    }
    taking = true;
    bool sent = taker->command({"BLMOVE", name, processing, "RIGHT", "LEFT", take_timeout}, [this](const redisReply* r) {
      taking = false;
      const bool go_on = on_taken(r, "BLMOVE");
      flush_stamps();
      if (go_on) take();
    });
    if (!sent) taking = false;
  }

  // One element moved into the processing list (or none). False when taking must pause
  // (the connection was lost: recovery adopts whatever moved; or an error: again in 1 s).
  bool on_taken(const redisReply* r, const char* what) {
    if (!r) return false;
    if (r->type == REDIS_REPLY_STRING) {
      ++taken;
      queue_had_work = true;
      std::string element(r->str, r->len);
      if (std::string stamped = stamp_of(element); !stamped.empty()) stamp(std::move(element), std::move(stamped));
      else adopt(std::move(element));
    } else if (r->type == REDIS_REPLY_ERROR) {
      warn(std::string(what) + ": " + reply_text(r));
      if (!take_timer.armed()) take_timer.after(1.0, [this] { take(); });
      queue_had_work = false;
      burst_empty = true;
      return false;
    } else {
      burst_empty = true;
    }
    return true;
  }

  // A producer's task that names no id gets one here; for every sidecar that takes it
  // later (reclaimed, recovered, handed back) to send the same X-Task-Id, the id is
  // written into its element first: an envelope with no attempt, the producer's bytes
  // inside. "" when the element needs none (it has an id, is an envelope, is refused, or
  // waits upstream for its time, as an envelope that carries the id).
  std::string stamp_of(const std::string& element) {
    std::string env_id;
    if (shared_envelope(element, env_id)) return {};
    const double now = unix_now();
    auto e = tasks::decode_element(element, now);
    auto* t = std::get_if<tasks::task>(&e.result);
    if (!t || e.was_dead_letter || !e.id.empty() || (t->run_at && *t->run_at > now + 0.001)) return {};
    const std::string id = new_id();
    tasks::envelope_fields f;
    f.id = id;
    f.queue = name;
    f.state = tasks::custody_state::in_flight;
    f.attempts = 0;
    f.max_attempts = tasks::max_attempts_of(*t, opts);
    f.payload = element;
    return tasks::envelope_json(f);
  }

  // Replaces the element in the processing list with its stamped form (stamp_script, on
  // the taking connection, so after the move), then takes the stamped one into custody.
  // The elements of a turn's takes go in one script (flush_stamps). Meanwhile each counts
  // as held (a recovery's read skips it) and against the slots.
  void stamp(std::string element, std::string stamped) {
    ++stamping;
    ++payload_count[stamped];
    stamp_batch.emplace_back(std::move(element), std::move(stamped));
  }

  void unhold_stamped(const std::string& stamped) {
    if (stamping) --stamping;
    unhold_payload(stamped);
  }

  void flush_stamps() {
    if (stamp_batch.empty()) return;
    auto held = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    held->swap(stamp_batch);
    std::vector<std::string_view> argv{"EVAL", stamp_script, "1", processing};
    argv.reserve(4 + 2 * held->size());
    for (const auto& [element, stamped] : *held) {
      argv.push_back(element);
      argv.push_back(stamped);
    }
    const bool sent = taker && taker->command(argv, [this, held](const redisReply* r) {
      for (const auto& [element, stamped] : *held) unhold_stamped(stamped);
      if (r && r->type == REDIS_REPLY_STRING && r->len == held->size()) {
        for (std::size_t i = 0; i < held->size(); ++i)
          if (r->str[i] == '1') adopt((*held)[i].second);
      } else if (r) {
        warn("stamping tasks' ids: " + reply_text(r));
      }
      // Not sent or lost: the next recovery adopts what the list holds; 0: reclaimed.
      take();
    });
    if (!sent)
      for (const auto& [element, stamped] : *held) unhold_stamped(stamped);
  }

  // Claims this node alive and reads its processing list in one step (recover_script),
  // then: after another sidecar reclaimed the list (this node's heartbeat had lapsed), the
  // tasks held here that are no longer in it are given up (they run again elsewhere; an
  // attempt in flight finishes, its result ignored); and every element this sidecar does
  // not hold is adopted.
  void recover() {
    if (!taker || !taker->ready()) return;
    recover_wanted = false;
    recovering = true;
    released_during_recovery.clear();
    const std::string ttl = std::to_string(node_ttl_ms());
    const auto sent_at = clock::now();
    bool sent = taker->command({"EVAL", recover_script, "3", node_key, processing, reclaimed_key, ctx.node_token, ttl},
                               [this, sent_at](const redisReply* r) {
      recovering = false;
      if (!r) return;
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
        warn("reading " + processing + ": " + reply_text(r));
        take_timer.after(1.0, [this] { recover(); });
        return;
      }
      // The script set this node's heartbeat key: surely there until node-timeout after.
      ctx.custody_sure_until = std::max(ctx.custody_sure_until, sent_at + node_ttl());
      const bool was_reclaimed = r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len == 1 &&
                                 r->element[0]->str[0] == '1';
      const redisReply* list = r->element[1];
      if (was_reclaimed) give_up_reclaimed(list);
      // Oldest first (BLMOVE pushed to the left); skip as many copies of a payload as this
      // sidecar already holds.
      std::unordered_map<std::string, int> skip = payload_count;
      for (const auto& [p, n] : released_during_recovery) skip[p] += n;
      released_during_recovery.clear();
      std::size_t adopted = 0;
      for (std::size_t i = list->elements; i-- > 0;) {
        const redisReply* e = list->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        std::string p(e->str, e->len);
        if (auto sk = skip.find(p); sk != skip.end() && sk->second > 0) {
          --sk->second;
          continue;
        }
        ++recovered;
        ++adopted;
        // An element whose stamp did not land (the connection was lost first) is
        // stamped now, so its id holds from here on as well.
        if (std::string stamped = stamp_of(p); !stamped.empty()) stamp(std::move(p), std::move(stamped));
        else adopt(std::move(p));
      }
      if (adopted)
        core::log_notice("Shared queue '" + name + "': recovered " + std::to_string(adopted) + " tasks from " +
                         processing);
      flush_stamps();
      take();
    });
    if (!sent) recovering = false;
  }

  // The tasks held here (not finishing) that the processing list no longer has: another
  // sidecar moved them back to the queue.
  void give_up_reclaimed(const redisReply* list) {
    std::unordered_map<std::string, int> in_list;
    for (std::size_t i = 0; i < list->elements; ++i)
      if (list->element[i]->type == REDIS_REPLY_STRING)
        ++in_list[std::string(list->element[i]->str, list->element[i]->len)];
    std::vector<std::uint64_t> gone;
    for (auto& [seq, t] : custody) {
      if (t.st == task_state::finalizing) continue;
      if (auto it = in_list.find(t.payload); it != in_list.end() && it->second > 0) {
        --it->second;
        continue;
      }
      gone.push_back(seq);
    }
    for (std::uint64_t seq : gone) {
      held_task& t = custody[seq];
      if (t.st == task_state::in_flight) {
        by_ticket.erase(t.ticket);
        orphan_tickets.emplace(t.ticket, t.host);
      } else if (t.st == task_state::waiting) {
        if (!t.in_host_line) due.erase(std::make_pair(t.next_run, seq));  // else skipped when its line reaches it
        else left_line(t);
        if (waiting) --waiting;
      }
      ++lost_to_reclaim;
      release(seq);
    }
    if (!gone.empty())
      core::log_warning("Shared queue '" + name + "': " + std::to_string(gone.size()) +
                        " tasks held here were reclaimed by another sidecar while this node's heartbeat had " +
                        "lapsed; they run there, not here");
  }

  long long node_ttl_ms() const { return static_cast<long long>(ctx.s.cfg().node_timeout * 1000); }
  clock::duration node_ttl() const { return std::chrono::milliseconds(node_ttl_ms()); }

  // --- reclaim: the processing lists of dead nodes ---------------------------------------
  // One SCAN page per cron tick over <name>:processing:*; a pass starts again at most
  // every node-timeout / 5 (within 0.1 .. 2 s). Each list of another node is handed to
  // reclaim_script, which moves it only if that node's heartbeat key expired.
  void scan_step() {
    if (scanning || stopping || !ctx.main.ready()) return;
    const auto now = clock::now();
    if (scan_cursor == "0") {
      const double every = std::clamp(ctx.s.cfg().node_timeout / 5, 0.1, 2.0);
      if (now - scan_pass_started < std::chrono::duration<double>(every)) return;
      scan_pass_started = now;
    }
    scanning = true;
    const std::string match = glob_escape(processing_prefix) + "*";
    bool sent = ctx.main.command({"SCAN", scan_cursor, "MATCH", match, "COUNT", "1000"}, [this](const redisReply* r) {
      scanning = false;
      if (!r) return;
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
          r->element[1]->type != REDIS_REPLY_ARRAY) {
        warn("SCAN for processing lists: " + reply_text(r));
        scan_cursor = "0";
        return;
      }
      scan_cursor.assign(r->element[0]->str, r->element[0]->len);
      const redisReply* keys = r->element[1];
      for (std::size_t i = 0; i < keys->elements; ++i) {
        const redisReply* k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING) continue;
        std::string key(k->str, k->len);
        if (key.size() <= processing_prefix.size() || key.compare(0, processing_prefix.size(), processing_prefix) != 0)
          continue;
        std::string node = key.substr(processing_prefix.size());
        if (node == ctx.node_id) continue;
        reclaim(std::move(key), std::move(node));
      }
    });
    if (!sent) scanning = false;
  }

  void reclaim(std::string key, std::string node) {
    const long long marker_ttl = std::max<long long>(300'000, 20 * node_ttl_ms());
    ctx.main.command({"EVAL", reclaim_script, "4", key, node_key_of(node), name, reclaimed_key_of(node, name),
                      std::to_string(marker_ttl)},
                     [this, key, node](const redisReply* r) {
                       if (!r) return;
                       if (r->type == REDIS_REPLY_ERROR) {
                         warn("reclaiming " + key + ": " + reply_text(r));
                         return;
                       }
                       if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0) return;
                       reclaimed += static_cast<std::uint64_t>(r->integer);
                       core::log_warning("Shared queue '" + name + "': node '" + node +
                                         "' stopped its heartbeat; moved its " + std::to_string(r->integer) +
                                         " tasks from " + key + " back to the queue");
                       take();
                     });
  }

  // --- due mover: the retry and scheduled sets --------------------------------------
  void move_due() {
    if (moving || stopping || !ctx.main.ready()) return;
    const auto now = clock::now();
    if (now - last_move < std::chrono::milliseconds(200)) return;
    last_move = now;
    moving = true;
    bool sent = ctx.main.command({"EVAL", due_mover_script, "3", name, retry_key, scheduled_key,
                                  score_ms(unix_now()), due_mover_limit},
                                 [this](const redisReply* r) {
                                   moving = false;
                                   if (!r) return;
                                   if (r->type == REDIS_REPLY_ERROR) {
                                     warn("moving due tasks: " + reply_text(r));
                                     return;
                                   }
                                   if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
                                     moved_due += static_cast<std::uint64_t>(r->integer);
                                     last_move = clock::time_point{};  // more may be due: again next tick
                                   }
                                 });
    if (!sent) moving = false;
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
      if (r && r->type == REDIS_REPLY_INTEGER) upstream_dead = static_cast<std::uint64_t>(r->integer);
    });
    sent = sent && ctx.main.command({"ZCARD", retry_key}, [this](const redisReply* r) {
      if (r && r->type == REDIS_REPLY_INTEGER) upstream_retrying = static_cast<std::uint64_t>(r->integer);
    });
    sent = sent && ctx.main.command({"ZCARD", scheduled_key}, [this](const redisReply* r) {
      polling = false;
      if (r && r->type == REDIS_REPLY_INTEGER) upstream_scheduled = static_cast<std::uint64_t>(r->integer);
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
    // CLIENT PAUSE: the spool is not taken from (a write) until it ends; the cron goes on then.
    if (forwarding || ctx.s.pause_on()) return;
    if (forwarded_pending) {
      forwarded_ok();
      return;
    }
    if (!ctx.main.ready()) return;
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
      const int replicas = ctx.s.cfg().upstream_wait_replicas;
      if (replicas <= 0) {
        forwarded_ok();
        return;
      }
      wait_replicas(replicas);
    });
  }

  // upstream-wait-replicas: the batch counts as forwarded once that many replicas have it
  // (WAIT), so a failover to one of them cannot lose it. Fewer in time: sent again (the
  // marker skips it if applied) and waited for again.
  void wait_replicas(int replicas) {
    const double timeout = ctx.s.cfg().upstream_wait_timeout;
    forwarding = ctx.main.command(
        {"WAIT", std::to_string(replicas), std::to_string(static_cast<long long>(timeout * 1000))},
        [this, replicas](const redisReply* r) {
          forwarding = false;
          if (!r) {
            ++forward_resends;
            return;
          }
          if (r->type == REDIS_REPLY_INTEGER && r->integer >= replicas) {
            forwarded_ok();
            return;
          }
          ++wait_short;
          warn("forwarding the spool: WAIT " + std::to_string(replicas) + " answered " +
               (r->type == REDIS_REPLY_INTEGER ? std::to_string(r->integer) : reply_text(r)) +
               "; the batch stays in the spool");
          retry_timer.after(0.1, [this] { forward(); });
        });
    if (!forwarding) ++forward_resends;
  }

  void forwarded_ok() {
    if (ctx.s.pause_on() && !stopping && !draining) {
      forwarded_pending = true;
      return;
    }
    forwarded_pending = false;
    remove_from_spool();
    forwarded += fwd_batch.size();
    fwd_batch.clear();
    forward();
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
  // Its callbacks waiting to go again go no more (nothing sends for a stopped queue).
  if (!d.stopping && d.callback_retry.waiting())
    core::log_notice("Shared queue '" + d.name + "': " + std::to_string(d.callback_retry.waiting()) +
                     " callbacks waiting to be sent again are dropped");
  d.callback_retry.clear();
  d.stopping = true;
  d.due_timer.cancel();
  d.take_timer.cancel();
  d.retry_timer.cancel();
  if (d.taker) d.taker->stop();
}

void shared_queue::drain() {
  impl_->draining = true;
  impl_->apply_held_results();
}
std::size_t shared_queue::requests_in_flight() const { return impl_->in_flight; }

void shared_queue::reconfigure(const core::queue_options& opts) {
  auto& d = *impl_;
  d.opts = opts;
  for (auto& [key, h] : d.hosts) {
    h.health.set_max_cap(opts.per_host);
    h.health.set_rate(opts.host_rate);
  }
  impl_->drain_hosts();
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

std::size_t shared_queue::spooled() const {
  core::value* v = impl_->ctx.s.db(0).peek(impl_->name);
  return v && v->type() == core::value_type::list ? v->list().size() : 0;
}

void shared_queue::on_result(tasks::http_result& r) {
  // CLIENT PAUSE: kept until it ends (the cron applies them), unless shutting down.
  if (impl_->ctx.s.pause_on() && !impl_->stopping && !impl_->draining) impl_->held_results.push_back(std::move(r));
  else impl_->on_result(r);
}

void shared_queue::cron() {
  auto& d = *impl_;
  if (d.stopping) return;
  if (!d.ctx.s.pause_on()) d.apply_held_results();
  d.poll_upstream();
  d.flush_finals();
  d.forward();
  d.move_due();
  d.scan_step();
  d.forget_idle_hosts();
  d.resend_callbacks();
  d.drain_hosts();
  d.run_due();
  d.take();
}

void shared_queue::on_heartbeat_lapsed() {
  auto& d = *impl_;
  d.recover_wanted = true;
  d.take();
}

void shared_queue::set_endpoint(const upstream_endpoint& ep) {
  if (impl_->taker) impl_->taker->set_endpoint(ep);
}

void shared_queue::hand_back(redisContext* c) {
  auto& d = *impl_;
  std::size_t back = 0, finished = 0;
  // Newest first: each goes back to the end the queue is taken from (RPUSH), so the
  // oldest ends there and is taken first again, in the order they came.
  for (auto it = d.custody.rbegin(); it != d.custody.rend(); ++it) {
    const std::uint64_t seq = it->first;
    impl::held_task& t = it->second;
    redisReply* r = nullptr;
    if (t.st == impl::task_state::finalizing) {
      auto f = d.finals.find(seq);
      if (f == d.finals.end()) continue;
      // Its asynchronous send may have run: only what that one did not do.
      const impl::final_op& op = f->second;
      const std::string& park_key = op.park_key ? *op.park_key : d.retry_key;
      const char* argv[] = {"EVAL", finalize_script, "5", d.processing.c_str(), d.dead_key.c_str(), d.results.c_str(),
                            park_key.c_str(), d.reclaimed_key.c_str(), t.payload.data(), op.dead_record.data(),
                            op.outcome.data(), op.sent || op.resend ? "0" : "1", op.park_member.data(),
                            op.park_score.data(), op.holder.data()};
      const std::size_t len[] = {4, std::strlen(finalize_script), 1, d.processing.size(), d.dead_key.size(),
                                 d.results.size(), park_key.size(), d.reclaimed_key.size(), t.payload.size(),
                                 op.dead_record.size(), op.outcome.size(), 1, op.park_member.size(),
                                 op.park_score.size(), op.holder.size()};
      r = static_cast<redisReply*>(redisCommandArgv(c, 15, argv, len));
      const bool kept = r && r->type == REDIS_REPLY_INTEGER && r->integer == -2;
      if (r && r->type != REDIS_REPLY_ERROR && !kept) ++finished;
      if (!kept) {
        if (!r) break;  // the connection failed: the rest stays in the processing list
        freeReplyObject(r);
        continue;
      }
      // A duplicate whose holder left the processing list (handed back just now, or
      // reclaimed): it goes back to the queue too.
      freeReplyObject(r);
      r = nullptr;
    }
    {
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

std::optional<core::task_manager::task_view> shared_queue::find_task(std::string_view id) const {
  const auto& d = *impl_;
  core::task_manager::task_view v;
  if (auto bi = d.by_id.find(std::string(id)); bi != d.by_id.end()) {
    auto it = d.custody.find(bi->second);
    if (it == d.custody.end()) return std::nullopt;
    const auto& t = it->second;
    v.id = t.id;
    v.queue = d.name;
    switch (t.st) {
      case impl::task_state::in_flight: v.state = "in_flight"; break;
      // Waiting here (its time, a host): retrying or scheduled, as INFO counts it and as
      // a local queue's TASK GET says.
      case impl::task_state::waiting: v.state = t.attempts > 0 ? "retrying" : "scheduled"; break;
      case impl::task_state::finalizing: v.state = t.final_state; break;
    }
    v.attempts = t.attempts;
    v.max_attempts = t.max_attempts;
    if (t.st == impl::task_state::waiting) v.next_run = t.next_run;
    if (t.st == impl::task_state::waiting && t.in_host_line) {
      // In its host's line: behind an open circuit, a hold or the host-rate, when the host
      // admits the next one (under the rate, a step more for each task ahead of it);
      // waiting for a slot, now (it goes when one frees).
      v.next_run = unix_now();
      if (auto h = d.hosts.find(t.host); h != d.hosts.end()) {
        std::size_t ahead = 0;  // still in the line (a cancelled task's id stays there)
        for (std::uint64_t s : h->second.waiting) {
          if (s == bi->second) break;
          auto o = d.custody.find(s);
          ahead += o != d.custody.end() && o->second.st == impl::task_state::waiting && o->second.in_host_line;
        }
        if (const auto at = h->second.health.turn_at(v.next_run, ahead)) v.next_run = *at;
      }
    }
    v.last_code = t.last_code;
    if (!t.log.empty()) v.last_error = t.log.entries().back().error;
    if (!t.dead_error.empty()) v.last_error = t.dead_error;
    v.payload = impl::task_payload(t);
    v.log = t.log;
    return v;
  }
  const tasks::finished_task* f = d.history.find(id);
  if (!f) return std::nullopt;
  v.id = f->id;
  v.queue = d.name;
  v.state = tasks::finished_name(f->state);
  v.attempts = f->attempts;
  v.max_attempts = f->max_attempts;
  v.last_code = f->last_code;
  v.last_error = f->last_error;
  v.finished_at = f->finished_at;
  v.payload = tasks::finished_payload(*f);
  v.log = f->log;
  return v;
}

bool shared_queue::reset_host(std::string_view host) {
  auto& d = *impl_;
  auto h = d.hosts.find(std::string(host));
  if (h == d.hosts.end()) return false;
  h->second.health.reset();
  core::log_notice("Shared queue '" + d.name + "': host " + std::string(host) + " reset (QUEUE HOSTRESET)");
  // Those parked until the circuit's or the hold's end are due now.
  const double now = unix_now();
  std::vector<std::pair<double, std::uint64_t>> moved;
  for (const auto& e : d.due)
    if (auto it = d.custody.find(e.second); it != d.custody.end() && it->second.waits_host && it->second.host == host)
      moved.push_back(e);
  for (const auto& e : moved) {
    d.due.erase(e);
    d.due.emplace(now, e.second);
    d.custody.find(e.second)->second.next_run = now;
  }
  d.drain_hosts();
  d.run_due();
  return true;
}

bool shared_queue::cancel_task(std::string_view id) {
  auto& d = *impl_;
  auto bi = d.by_id.find(std::string(id));
  if (bi == d.by_id.end()) return false;
  const std::uint64_t seq = bi->second;
  auto it = d.custody.find(seq);
  if (it == d.custody.end()) return false;
  auto& t = it->second;
  switch (t.st) {
    case impl::task_state::finalizing:
      return false;  // it is leaving already
    case impl::task_state::in_flight:
      // Its attempt runs to its end, unreported (as for a task reclaimed elsewhere).
      d.by_ticket.erase(t.ticket);
      d.orphan_tickets.emplace(t.ticket, t.host);
      break;
    case impl::task_state::waiting:
      if (!t.in_host_line) {
        d.due.erase({t.next_run, seq});
      } else {  // its id stays in the host's line, skipped when reached
        d.left_line(t);
      }
      if (d.waiting) --d.waiting;
      break;
  }
  t.waits_host = false;
  ++d.cancelled;
  core::log_verbose("Task " + t.id + " of shared queue '" + d.name + "' cancelled");
  t.final_state = "cancelled";
  // Out of the processing list, and its outcome published, in one script.
  d.finalize(seq, {}, tasks::outcome_json(tasks::cancelled_outcome(d.task_record_of(t))));
  return true;
}

const std::string& shared_queue::name() const { return impl_->name; }

void shared_queue::host_stats(std::vector<tasks::host_figures>& out) const {
  const auto& d = *impl_;
  for (const auto& [key, h] : d.hosts) {
    tasks::host_figures f = h.health.figures();
    f.host = key;
    f.queue = d.name;
    for (std::uint64_t seq : h.waiting)
      if (auto it = d.custody.find(seq); it != d.custody.end() && it->second.in_host_line) ++f.waiting;
    out.push_back(std::move(f));
  }
}
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
  // Waiting upstream (the whole queue's, as of the last reading), plus those held here
  // for a free slot.
  st.retrying = d.upstream_retrying;
  st.scheduled = d.upstream_scheduled;
  std::size_t waiting_host = 0;
  for (const auto& [seq, t] : d.custody) {
    if (t.st != impl::task_state::waiting) continue;
    if (t.attempts > 0) ++st.retrying;
    else ++st.scheduled;
    if (t.waits_host) ++waiting_host;
  }
  st.reclaimed = d.reclaimed;
  st.cancelled = d.cancelled;
  st.callbacks_retrying = d.callback_retry.waiting();
  st.callbacks_failed = d.callback_retry.failed();
  st.delivered = d.delivered;
  st.failed = d.failed;
  st.dead = d.dead;
  st.dead_list = d.upstream_dead;
  st.dispatched = d.dispatched;
  st.egress_denied = d.egress_denied;
  st.enqueued = d.forwarded;
  st.attempts = d.attempts;
  st.concurrency = d.opts.concurrency;
  st.rate = d.opts.rate;
  st.paused = const_cast<impl&>(d).queue_paused();
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
  extra("waiting_host", waiting_host);
  extra("finishing", d.finals.size());
  extra("duplicates", d.duplicates);
  extra("forward_resends", d.forward_resends);
  extra("forward_deduped", d.forward_deduped);
  extra("finish_resends", d.final_resends);
  extra("moved_due", d.moved_due);
  extra("wait_short", d.wait_short);
  extra("lost_to_reclaim", d.lost_to_reclaim);
  return st;
}

}  // namespace respq::redis_compat
