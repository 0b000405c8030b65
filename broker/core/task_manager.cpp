// task_manager: see task_manager.hpp for the lifecycle. What an attempt's answer means
// is decided by tasks::decide (tasks/lifecycle.hpp), the same function shared queues
// use; this file only keeps local queues' state and writes it to the command stream.
//
// Records written to the command stream (so the AOF and the mirror replay them):
//   new task dispatched     MULTI; RPOP Q; HSET Q:inflight <id> <envelope>; EXEC
//   delayed task parked     MULTI; RPOP Q; HSET Q:inflight <id> <envelope>; EXEC
//   retry attempt started   HSET Q:inflight <id> <envelope>   (state in_flight)
//   retry scheduled         HSET Q:inflight <id> <envelope>   (state retrying)
//   delivered               HDEL Q:inflight <id>
//   dead                    MULTI; [RPOP Q;] HDEL Q:inflight <id>; LPUSH Q:dead <record>; EXEC
//   requeued at shutdown    MULTI; HDEL Q:inflight <id>; RPUSH Q <payload>; EXEC
// The envelope is tasks::envelope_json: {"id","queue","state","attempts","max_attempts",
// "next_run","last_code","last_error","payload"}; payload is the producer's bytes
// untouched (a JSON string, or "payload_b64" when they are not valid UTF-8).
// The command stream carries that JSON; the hash keeps the same fields packed
// (tasks::envelope_packed, a retrying task's attempt log with them), and every read of
// the hash (HGET, HGETALL, HSCAN, the AOF rewrite, the mirror's resync) renders the
// JSON again (hash_text, keyspace.hpp): what clients see is the same bytes, a waiting
// task costs its payload and a few dozen bytes.
//
// The in-memory index (records by id, attempts by ticket, due times per queue) is
// rebuilt from the hashes by recover(), so the hash is the truth: deleting a field of
// Q:inflight cancels a task that waits for its retry or its scheduled time. Any client
// can write that hash, so every envelope read back is checked (tasks::read_envelope_json): one
// that is not respq's moves to Q:dead with a reason naming it, and never stops the server.
#include "broker/core/task_manager.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <tuple>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "broker/core/commands.hpp"
#include "broker/core/log.hpp"
#include "broker/core/server.hpp"
#include "tasks/callback_retries.hpp"
#include "tasks/control.hpp"
#include "tasks/host_health.hpp"
#include "tasks/http_request.hpp"
#include "tasks/lifecycle.hpp"
#include "tasks/queue_stats.hpp"
#include "tasks/rate_gate.hpp"
#include "tasks/records.hpp"
#include "tasks/retry_policy.hpp"
#include "tasks/schedule.hpp"
#include "tasks/signing.hpp"
#include "tasks/task.hpp"
#include "tasks/url.hpp"

namespace respq::core {

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

using tasks::custody_state;

// A queue's hosts beyond this many: those with nothing to remember are dropped (cron).
constexpr std::size_t max_remembered_hosts = 256;

// Pending tasks one dispatch turn moves into custody without starting them (into a host's
// line, or scheduled for later): a backlog of many thousands moves over several turns,
// with clients served between them.
constexpr std::size_t max_parked_per_turn = 1024;

}  // namespace

struct task_manager::impl {
  explicit impl(server& srv) : s(srv) {}

  struct queue_state;
  struct host_entry;

  // What an attempt needs besides the envelope: the task's URL (for its outcome) and
  // callback. Kept while the task is in flight, and read again from the payload when the
  // task is next dispatched, so a task waiting for its time carries no copy of them. Both
  // in one block of their exact size: most tasks in flight hold nothing else of their own.
  class attempt_info {
   public:
    void assign(std::string_view url, std::string_view callback) {
      constexpr std::size_t most = std::numeric_limits<std::uint32_t>::max();  // past any bulk string
      url = url.substr(0, most);
      callback = callback.substr(0, most - url.size());
      block_.reset(new char[url.size() + callback.size() + 1]);
      if (!url.empty()) std::memcpy(block_.get(), url.data(), url.size());  // an empty view may be null
      if (!callback.empty()) std::memcpy(block_.get() + url.size(), callback.data(), callback.size());
      url_len_ = static_cast<std::uint32_t>(url.size());
      callback_len_ = static_cast<std::uint32_t>(callback.size());
    }
    std::string_view url() const { return block_ ? std::string_view(block_.get(), url_len_) : std::string_view(); }
    std::string_view callback() const {
      return block_ ? std::string_view(block_.get() + url_len_, callback_len_) : std::string_view();
    }

   private:
    std::unique_ptr<char[]> block_;
    std::uint32_t url_len_ = 0, callback_len_ = 0;
  };

  // A destination host of one queue: its breaker, hold and cap (tasks/host_health.hpp),
  // and the tasks that wait for it, oldest first. A waiting task has no record, as one
  // waiting for its time has none: its envelope in Q:inflight (a new one is written as
  // scheduled) holds it, no attempt is spent, and its line keeps only its id (the aux
  // byte: its state, retrying or scheduled, counted in the queue's figures as such).
  struct host_entry {
    tasks::host_health health;
    std::deque<tasks::short_id> waiting;
  };

  // A task in flight: what deciding its attempt needs without reading its envelope back.
  // Tasks waiting for their time or their host have none: their envelope in Q:inflight
  // holds all of it (read back when they are dispatched), and the queue's schedule (due)
  // their time, or their host's line their place. Its fields are ordered so that a node of `records`
  // (id, record, next and hash) fits a 192-byte block of the allocator.
  struct record {
    queue_state* q = nullptr;  // its queue (a queue outlives its tasks: see reconfigure)
    double next_run = 0;       // unix seconds (retrying / scheduled)
    long last_code = 0;
    int attempts = 0;          // attempts started so far
    int max_attempts = 1;      // 1 + retries
    // Its host's entry (host_ptr below), valid while the queue's host_generation is
    // host_gen (entries are only erased by cron and FLUSHALL, which bump it): saves a
    // lookup per step.
    std::uint32_t host_gen = 0;
    custody_state state = custody_state::in_flight;
    bool cancelled = false;      // cancelled while in flight: its attempt ends unreported
    attempt_info live;           // while in flight (and for an outcome)
    tasks::attempt_log log;      // for TASK GET
    std::string host;            // host:port of its URL (tasks::host_key_of)
    host_entry* host_ptr = nullptr;
    const std::string& last_error() const { return error_ ? *error_ : no_error(); }
    void set_last_error(std::string e) {
      if (e.empty()) error_.reset();
      else if (error_) *error_ = std::move(e);
      else error_ = std::make_unique<std::string>(std::move(e));
    }
    std::string_view url() const { return live.url(); }
    std::string_view callback() const { return live.callback(); }

   private:
    static const std::string& no_error() {
      static const std::string none;
      return none;
    }
    std::unique_ptr<std::string> error_;  // the last attempt's error: none on most tasks
  };

  // A retrying or scheduled task in its queue's schedule (tasks/schedule.hpp).
  using due_entry = tasks::schedule::entry;

  struct queue_state {
    std::string name, inflight_key, dead_key, results_channel;
    queue_options opts;
    std::size_t in_flight = 0, retrying = 0, scheduled = 0;
    std::uint64_t delivered = 0, failed = 0, dead = 0, dispatched = 0, egress_denied = 0;
    tasks::schedule due;  // retrying and scheduled tasks, earliest first
    tasks::rate_gate rate;
    std::deque<std::pair<std::size_t, clock::time_point>> push_times;  // oldest first
    std::size_t push_times_total = 0;
    tasks::latency_histogram latency;  // push to dispatch
    tasks::attempt_figures attempts;   // responses, retries, request durations
    std::uint64_t enqueued = 0;
    bool retired = false;  // removed from the configuration; kept until its tasks finish
    // Control (QUEUE / TASK commands).
    std::string paused_key;
    bool paused = false;  // <name>:paused exists
    bool rate_blocked = false;  // the last dispatch left the rate gate closed (see dispatch)
    bool more_pending = false;  // the last dispatch stopped at max_parked_per_turn
    std::uint64_t cancelled = 0;
    tasks::task_history history;      // recent outcomes, for TASK GET
    std::deque<std::string> replay;   // dead records QUEUE REPLAY selected, oldest first
    tasks::callback_retries callback_retry;  // callbacks that failed and go again
    std::size_t callbacks_in_flight = 0;     // sent, not answered yet
    tasks::token_bucket replay_gate;  // replay-rate
    // Destination hosts, and those with tasks waiting for them.
    std::unordered_map<std::string, host_entry> hosts;
    std::uint32_t host_generation = 1;  // bumped when entries of `hosts` are erased
    std::set<std::string> blocked;
    std::size_t waiting_host = 0;       // in the hosts' lines (also counted as retrying or scheduled)
    std::string last_url, last_host;    // the last URL's host key (tasks mostly share a few)
  };

  // An envelope looked up in Q:inflight.
  enum class lookup { found, absent, malformed };

  server& s;
  std::map<std::string, queue_state, std::less<>> queues;
  std::unordered_map<std::string, record> records;         // by task id
  // Attempt in flight -> task id (respq's own ids packed in the entry: no block).
  std::unordered_map<std::uint64_t, tasks::short_id> tickets;
  // A callback on its way -> its queue, and what it is sent again from if it fails.
  std::unordered_map<std::uint64_t, std::pair<std::string, tasks::callback_retries::callback>> callbacks;
  std::vector<tasks::http_request> outgoing;
  std::vector<tasks::http_result> held_results;  // arrived while CLIENT PAUSE was on
  std::uint64_t next_ticket = 1;
  std::uint64_t id_counter = 0;
  std::mt19937_64 rng{std::random_device{}()};
  std::string node;  // names this server in outcomes, as the Redis link does
  bool dirty = true;
  bool stopping = false;

  // --- helpers ------------------------------------------------------------------------
  // 16 random hex digits, then a counter's low 32 bits as 8 more.
  std::string new_id() {
    static constexpr char hex[] = "0123456789abcdef";
    std::string id(24, '0');
    std::uint64_t r = rng();
    for (int i = 15; i >= 0; --i, r >>= 4) id[static_cast<std::size_t>(i)] = hex[r & 15];
    std::uint64_t c = ++id_counter & 0xffffffffull;
    for (int i = 23; i >= 16; --i, c >>= 4) id[static_cast<std::size_t>(i)] = hex[c & 15];
    return id;
  }

  tasks::envelope_fields envelope(const std::string& id, const record& r, std::string_view payload) {
    tasks::envelope_fields f;
    f.id = id;
    f.queue = r.q->name;
    f.state = r.state;
    f.attempts = r.attempts;
    f.max_attempts = r.max_attempts;
    f.next_run = r.next_run;
    f.last_code = r.last_code;
    f.last_error = r.last_error();
    f.payload = payload;
    return f;
  }

  tasks::task_record task_record_of(const std::string& id, const record& r) const {
    tasks::task_record t;
    t.id = id;
    t.queue = r.q->name;
    t.url = r.url();
    t.node = node;
    t.attempts = r.attempts;
    t.max_attempts = r.max_attempts;
    return t;
  }

  // The envelope of a task, read back from the hash: its payload, or why it is unreadable.
  lookup read(const queue_state& q, const std::string& id, std::string& payload, std::string& why) {
    tasks::envelope_record e;
    lookup l = read(q, id, e, why);
    payload = std::move(e.payload);
    return l;
  }
  // The same with every field (a malformed record: its salvaged payload).
  lookup read(const queue_state& q, const std::string& id, tasks::envelope_record& out, std::string& why) {
    value* v = s.db(0).find(q.inflight_key);
    if (!v || v->type() != value_type::hash) return lookup::absent;
    auto it = v->hash().find(id);
    if (it == v->hash().end()) return lookup::absent;
    const auto [field, stored] = *it;
    if (tasks::read_packed_envelope(stored, out)) return lookup::found;  // as respq wrote it
    const hash_text text(field, stored);
    auto env = tasks::read_envelope_json(text);
    if (auto* e = std::get_if<tasks::envelope_record>(&env)) {
      out = std::move(*e);
      return lookup::found;
    }
    why = std::get<std::string>(env);
    out.payload = tasks::salvage_payload(text);
    return lookup::malformed;
  }

  // The record of a waiting task, from its envelope. One that was in flight when the server
  // stopped (recovered, not yet dispatched) gets one more attempt than its last.
  void waiting_record(queue_state& q, tasks::envelope_record& env, record& r) {
    r.q = &q;
    r.attempts = env.attempts;
    r.max_attempts = env.max_attempts.value_or(1 + q.opts.retries);
    if (env.state == custody_state::in_flight && r.attempts >= r.max_attempts) r.max_attempts = r.attempts + 1;
    r.last_code = env.last_code;
    r.set_last_error(std::move(env.last_error));
    r.log = tasks::attempt_log::unpack(env.log, {r.last_error(), r.last_code, env.next_run.value_or(0)});
  }

  // Whether a task with this id is in custody: in flight, or waiting (its envelope in the
  // hash of a queue that has tasks waiting).
  bool in_custody(const std::string& id) {
    if (records.count(id)) return true;
    for (const auto& [name, q] : queues) {
      if (q.due.empty() && q.waiting_host == 0) continue;
      value* v = s.db(0).find(q.inflight_key);
      if (v && v->type() == value_type::hash && v->hash().contains(id)) return true;
    }
    return false;
  }

  void count_waiting(queue_state& q, custody_state st, int delta) {
    std::size_t& n = st == custody_state::retrying ? q.retrying : q.scheduled;
    n = static_cast<std::size_t>(static_cast<long long>(n) + delta);
  }

  // A waiting task in its queue's schedule, found by id (a walk: TASK GET and TASK CANCEL
  // are rare), or nullptr.
  const due_entry* find_due(const queue_state& q, const std::string& id) const { return q.due.find(id); }

  // Writes a task's envelope: its JSON to the command stream, packed into the hash (what
  // the hash shows is the same JSON: see hash_text).
  void hset(const queue_state& q, const std::string& id, const tasks::envelope_fields& f) {
    s.will_write(q.inflight_key);
    value* v = s.db(0).find(q.inflight_key);
    if (v && v->type() != value_type::hash) {
      log_warning("Key '" + q.inflight_key + "' is not a hash: replacing it to track HTTP tasks");
      s.db(0).erase(q.inflight_key);
      s.stream().append({"DEL", q.inflight_key});
      v = nullptr;
    }
    if (!v) v = &s.db(0).create(q.inflight_key, value_type::hash);
    s.stream().append({"HSET", q.inflight_key, id, tasks::envelope_json(f)});
    // Kept for as long as the task is in custody, in the field's own block (exact size).
    v->hash().set(id, tasks::envelope_packed(f));
    s.add_dirty();
  }

  // Pushes one element onto a list respq writes (a queue, its dead letters) in database 0,
  // to the command stream too. A value of another type a client put under that name is
  // logged and replaced (a DEL first in the command stream, so that the AOF replays to the
  // same state): the task is never lost, and the server never stops on it.
  void push_list(const std::string& key, std::string_view elem, bool left) {
    server::db_scope in_db0(s, 0);
    s.will_write(key);
    if (value* v = s.db().find(key); v && v->type() != value_type::list) {
      log_warning("Key '" + key + "' is not a list: replacing it to keep the task pushed there");
      s.db().erase(key);
      s.stream().append({"DEL", key});
    }
    std::array<std::string_view, 1> one{elem};
    list_push(s, key, one, left, nullptr, false);
    s.stream().append({left ? "LPUSH" : "RPUSH", key, elem});
  }

  // Removes a task's envelope from Q:inflight and gives it back ("" when there was none):
  // packed as stored, or the text a client wrote in its place (kind says which, for the
  // task's history).
  std::string hdel(const queue_state& q, const std::string& id, tasks::finished_task::source* kind = nullptr) {
    s.will_write(q.inflight_key);
    value* v = s.db(0).find(q.inflight_key);
    if (!v || v->type() != value_type::hash) return {};
    auto it = v->hash().find(id);
    if (it == v->hash().end()) return {};
    const std::string_view stored = (*it).value;
    const bool packed = tasks::is_packed_envelope(stored);
    if (kind) *kind = packed ? tasks::finished_task::source::envelope : tasks::finished_task::source::text;
    std::string env(hash_text::plain(stored) || packed ? stored : hash_text(id, stored).view());
    v->hash().erase(it);
    s.stream().append({"HDEL", q.inflight_key, id});
    if (v->hash().empty()) s.db(0).erase(q.inflight_key);
    s.add_dirty();
    return env;
  }

  // Keeps a finished task among the queue's recent outcomes (TASK GET).
  void remember(queue_state& q, const std::string& id, const record& r, tasks::finished_state st,
                tasks::finished_task::source kind, std::string rec) {
    remember(q, id, r, st, kind, std::move(rec), r.last_code, r.last_error());
  }
  void remember(queue_state& q, const std::string& id, const record& r, tasks::finished_state st,
                tasks::finished_task::source kind, std::string rec, long last_code, const std::string& last_error) {
    const std::size_t max_len = s.cfg().task_history_max_len;
    if (max_len == 0) return;
    tasks::finished_task t;
    t.id = id;
    t.state = st;
    t.attempts = r.attempts;
    t.max_attempts = r.max_attempts;
    t.last_code = last_code;
    t.last_error = last_error;
    t.finished_at = unix_now();
    t.kind = kind;
    t.record = std::move(rec);
    t.log = r.log;
    q.history.add(std::move(t), max_len);
  }

  void refresh_paused(queue_state& q) {
    const bool was = q.paused;
    q.paused = s.db(0).find(q.paused_key) != nullptr;
    if (was != q.paused) {
      dirty = true;
      log_notice(std::string("Queue '") + q.name + (q.paused ? "' paused" : "' resumed"));
    }
  }

  // The oldest pending task (right end), copied; false when there is none.
  bool peek_pending(queue_state& q, std::string& payload) {
    value* v = s.db(0).find(q.name);
    if (!v || v->type() != value_type::list || v->list().empty()) return false;
    payload.assign(v->list().back());
    return true;
  }

  // Pops the oldest pending task (the one peek_pending() copied) and logs the RPOP.
  void pop_pending(queue_state& q) {
    value* v = s.db(0).find(q.name);
    s.will_write(q.name);
    packed_list& l = v->list();
    l.pop_back();
    s.stream().append({"RPOP", q.name});
    if (l.empty()) s.db(0).erase(q.name);
    s.add_dirty();
    // Dispatch latency: the oldest remembered push is this task's.
    if (!q.push_times.empty()) {
      auto& f = q.push_times.front();
      q.latency.record(std::chrono::duration<double, std::milli>(clock::now() - f.second).count());
      --q.push_times_total;
      if (--f.first == 0) q.push_times.pop_front();
    }
  }

  bool redis_wants_outcome(const queue_state& q, std::string_view callback) const {
    if (!callback.empty() || s.cfg().mirror) return true;
    if (s.channels().count(q.results_channel)) return true;
    return !s.patterns().empty();
  }

  // Publishes an outcome on Q:results (and to the mirror) and posts it to the callback;
  // when none of those wants it, only the admin server's streams may (outcome_watch).
  void publish_outcome(queue_state& q, const tasks::outcome_fields& f, std::string_view callback) {
    if (!redis_wants_outcome(q, callback)) {
      if (s.tasks().outcome_watch) s.tasks().outcome_watch(q.name, f);
      return;
    }
    std::string o = tasks::outcome_json(f);
    s.publish(q.results_channel, o);
    s.stream_publish(q.results_channel, o);
    if (!callback.empty())
      send_callback(q, tasks::callback_retries::callback{std::string(f.id), std::string(callback), std::move(o),
                                                         std::string_view(f.status) != "retrying"});
  }

  // Sends a callback (again); what it needs to go once more stays with its ticket.
  void send_callback(queue_state& q, tasks::callback_retries::callback&& cb) {
    const std::uint64_t ticket = next_ticket++;
    outgoing.push_back(tasks::make_callback_request(cb.url, cb.task_id, cb.body, ticket, q.name, q.opts,
                                                    static_cast<long long>(unix_now())));
    callbacks.emplace(ticket, std::pair(q.name, std::move(cb)));
    ++q.callbacks_in_flight;
  }

  // The end of a callback's send: done, to go again later, or given up (counted; the log
  // says so at most once a minute per queue, and each one at verbose level).
  void callback_ended(tasks::http_result& res, std::string queue, tasks::callback_retries::callback&& cb) {
    auto qit = queues.find(queue);
    if (qit == queues.end()) return;  // the queue is gone
    queue_state& q = qit->second;
    if (q.callbacks_in_flight) --q.callbacks_in_flight;
    if (res.egress_denied) ++q.egress_denied;
    const std::string id = cb.task_id;
    const int sends = cb.attempts;
    const double now = unix_now();
    const auto v = q.callback_retry.ended(std::move(cb), res, now, q.opts.backoff_min, q.opts.backoff_max,
                                          tasks::uniform01(rng));
    if (v == tasks::callback_retries::verdict::delivered) return;
    const std::string why = tasks::failure_text(res);
    if (v == tasks::callback_retries::verdict::retry) {
      log_verbose("Callback for task " + id + " failed: " + why + "; sent again later");
      return;
    }
    log_verbose("Callback for task " + id + " failed: " + why + "; given up after " + std::to_string(sends) +
                (sends == 1 ? " send" : " sends"));
    if (q.callback_retry.notice_due(now))
      log_notice("Queue '" + q.name + "': callbacks given up: " + std::to_string(q.callback_retry.failed()) +
                 " so far (the last for task " + id + ": " + why + ")");
  }

  // Carries out a dead decision: the task leaves Q:inflight for Q:dead with its payload
  // and why, and its outcome is published. Inside the caller's atomic block.
  void to_dead(queue_state& q, const std::string& id, const record& r, std::string_view payload,
               const tasks::decision& d) {
    const tasks::task_record t = task_record_of(id, r);
    std::string dead = tasks::dead_record_json(tasks::dead_letter(t, d, payload, unix_now()));
    hdel(q, id);
    if (s.cfg().task_history_max_len) {
      const std::string& error = !d.dead_error.empty() ? d.dead_error : r.last_error().empty() ? d.reason : r.last_error();
      remember(q, id, r, tasks::finished_state::dead, tasks::finished_task::source::dead_record, dead, d.outcome.code,
               error);
    }
    push_list(q.dead_key, dead, true);
    ++q.dead;
    log_verbose("Task " + id + " of queue '" + q.name + "' is dead: " + d.reason);
    publish_outcome(q, d.outcome, r.callback());
  }

  // A record in Q:inflight that is not respq's envelope: moved to Q:dead with a reason
  // naming it (its payload when one can be read out, else the record itself).
  void malformed_to_dead(queue_state& q, const std::string& id, std::string_view payload, const std::string& why) {
    record r;
    r.q = &q;
    const std::string reason = "unreadable record '" + id + "' in '" + q.inflight_key + "': " + why;
    log_warning("Queue '" + q.name + "': " + reason + "; moved to '" + q.dead_key + "'");
    s.stream().begin_atomic();
    to_dead(q, id, r, payload, tasks::refuse(task_record_of(id, r), reason));
    s.stream().end_atomic();
  }

  // Starts one attempt of a task whose record is ready (the envelope is written here).
  void start_attempt(queue_state& q, const std::string& id, record& r, tasks::task& t,
                     std::string_view payload) {
    r.state = custody_state::in_flight;
    ++r.attempts;
    r.live.assign(t.url, t.callback);
    host_of(q, r).health.started(unix_now());
    r.log.started(r.attempts, unix_now());
    const std::uint64_t ticket = next_ticket++;
    hset(q, id, envelope(id, r, payload));
    tickets.emplace(ticket, tasks::short_id(id));
    ++q.in_flight;
    ++q.dispatched;
    t.id = id;
    auto req = tasks::make_http_request(std::move(t), ticket, q.name, q.opts.timeout);
    tasks::set_attempt_header(req, r.attempts);
    tasks::sign_request(req, id, static_cast<long long>(unix_now()), q.opts.signing_secrets);
    outgoing.push_back(std::move(req));
  }

  const std::string& host_key(queue_state& q, std::string_view url) {
    if (url != q.last_url) {
      q.last_url.assign(url);
      q.last_host = tasks::host_key_of(url);
    }
    return q.last_host;
  }

  host_entry& host_entry_of(queue_state& q, const std::string& key) {
    auto it = q.hosts.find(key);
    if (it == q.hosts.end()) it = q.hosts.emplace(key, host_entry{tasks::host_health(q.opts.per_host, q.opts.host_rate), {}}).first;
    return it->second;
  }

  host_entry& host_of(queue_state& q, record& r) {
    if (r.host_ptr && r.host_gen == q.host_generation) return *r.host_ptr;
    r.host_ptr = &host_entry_of(q, r.host);  // unordered_map nodes stay put on rehash
    r.host_gen = q.host_generation;
    return *r.host_ptr;
  }

  // May an attempt for `host` start now: nobody waits in its line, and its breaker, hold
  // and cap let one through?
  bool host_admits(const queue_state& q, const std::string& host, double now_unix) const {
    auto it = q.hosts.find(host);
    if (it == q.hosts.end()) return true;  // not seen yet: nothing holds it back
    return it->second.waiting.empty() && it->second.health.admit(now_unix).v == tasks::host_health::verdict::go;
  }

  // A task that may not start yet joins its host's line. Its envelope in Q:inflight must
  // say `st` (the caller writes a new task's, as scheduled); it counts as retrying or
  // scheduled, and in waiting_host.
  void join_line(queue_state& q, const std::string& host, const std::string& id, custody_state st) {
    tasks::short_id entry(id);
    entry.set_aux(static_cast<std::uint8_t>(st));
    host_entry_of(q, host).waiting.push_back(std::move(entry));
    q.blocked.insert(host);
    ++q.waiting_host;
    count_waiting(q, st, +1);
  }

  // The entry of `id` in one of q's host lines (a walk: TASK GET and TASK CANCEL are
  // rare), with its host; nullptr when it waits in none.
  const tasks::short_id* find_in_line(const queue_state& q, const std::string& id, std::string* host = nullptr) const {
    for (const std::string& key : q.blocked) {
      auto he = q.hosts.find(key);
      if (he == q.hosts.end()) continue;
      for (const tasks::short_id& e : he->second.waiting) {
        if (!e.is(id)) continue;
        if (host) *host = key;
        return &e;
      }
    }
    return nullptr;
  }

  // Takes the entries `drop` picks out of q's host lines, with their counts.
  template <typename Pred>
  void leave_lines(queue_state& q, Pred drop) {
    for (auto hit = q.blocked.begin(); hit != q.blocked.end();) {
      auto he = q.hosts.find(*hit);
      if (he == q.hosts.end()) {
        hit = q.blocked.erase(hit);
        continue;
      }
      auto& line = he->second.waiting;
      auto kept = std::remove_if(line.begin(), line.end(), [&](const tasks::short_id& e) {
        if (!drop(e)) return false;
        --q.waiting_host;
        count_waiting(q, static_cast<custody_state>(e.aux()), -1);
        return true;
      });
      line.erase(kept, line.end());
      if (line.empty()) hit = q.blocked.erase(hit);
      else ++hit;
    }
  }

  // Starts the tasks waiting for hosts that admit attempts again, oldest first per host.
  // Nothing of q.blocked or q.hosts is held across resume_waiting: reading an envelope
  // may expire <queue>:inflight, and on_key_written then empties the lines.
  void drain_hosts(queue_state& q, double now_unix, clock::time_point now) {
    const std::vector<std::string> keys(q.blocked.begin(), q.blocked.end());
    for (const std::string& key : keys) {
      for (;;) {
        auto eit = q.hosts.find(key);
        if (eit == q.hosts.end() || eit->second.waiting.empty()) {
          q.blocked.erase(key);
          break;
        }
        host_entry& h = eit->second;
        if (q.in_flight >= q.opts.concurrency || !q.rate.allows(now, q.opts.rate) ||
            h.health.admit(now_unix).v != tasks::host_health::verdict::go)
          break;
        const auto was = static_cast<custody_state>(h.waiting.front().aux());
        const std::string id = h.waiting.front().str();
        h.waiting.pop_front();
        --q.waiting_host;
        count_waiting(q, was, -1);
        resume_waiting(q, id, was, now_unix, now, &key);
      }
    }
  }

  // A waiting task whose turn has come (its time, or its host's line): its envelope read
  // back into a record, and its attempt started; one whose host does not admit it now
  // joins the host's line instead (no record). `line_host`: the host whose line it left,
  // which admitted it (a client may have rewritten its URL since: then its host is asked).
  void resume_waiting(queue_state& q, const std::string& id, custody_state was, double now_unix,
                      clock::time_point now, const std::string* line_host) {
    tasks::envelope_record env;
    std::string why;
    switch (read(q, id, env, why)) {
      case lookup::absent:  // cancelled: somebody deleted its envelope
        return;
      case lookup::malformed:  // somebody replaced it with something else
        malformed_to_dead(q, id, env.payload, why);
        return;
      case lookup::found:
        break;
    }
    auto [it, added] = records.try_emplace(id);
    if (!added) return;  // already in flight (a client rewrote its envelope): not twice
    record& r = it->second;
    waiting_record(q, env, r);
    const std::string payload = std::move(env.payload);
    auto e = tasks::decode_element(payload, now_unix);
    if (auto* err = std::get_if<tasks::decode_error>(&e.result)) {
      s.stream().begin_atomic();
      r.live.assign(tasks::payload_url(e.payload(payload)), {});
      to_dead(q, id, r, e.payload(payload), tasks::refuse(task_record_of(id, r), err->reason));
      s.stream().end_atomic();
      records.erase(id);
      return;
    }
    auto& task = std::get<tasks::task>(e.result);
    const std::string& key = host_key(q, task.url);
    if (!(line_host && *line_host == key) && !host_admits(q, key, now_unix)) {
      records.erase(it);
      join_line(q, key, id, was);
      return;
    }
    r.host = key;
    q.rate.consume(now, q.opts.rate);
    start_attempt(q, id, r, task, e.payload(payload));
  }

  // The envelope of a task that has a record, into `payload`. When it is gone (a client
  // deleted it: cancelled) or malformed (moved to dead), the record is dropped: false.
  bool read_or_drop(queue_state& q, const std::string& id, std::unordered_map<std::string, record>::iterator it,
                    std::string& payload) {
    std::string why;
    switch (read(q, id, payload, why)) {
      case lookup::absent:
        records.erase(it);
        return false;
      case lookup::malformed:
        records.erase(it);
        malformed_to_dead(q, id, payload, why);
        return false;
      case lookup::found:
        break;
    }
    return true;
  }

  // Whether any task's record points at q (in flight).
  bool holds_records(const queue_state& q) const {
    for (const auto& [id, r] : records)
      if (r.q == &q) return true;
    return false;
  }

  // Dispatches as much of one queue as its caps allow.
  void dispatch(queue_state& q) {
    if (stopping || q.retired || q.paused) return;
    const double now_unix = unix_now();
    auto now = clock::now();
    if (!q.blocked.empty()) drain_hosts(q, now_unix, now);
    std::size_t parked = 0;
    q.more_pending = false;
    while (q.in_flight < q.opts.concurrency && q.rate.allows(now, q.opts.rate)) {
      if (parked >= max_parked_per_turn) {  // the rest on the next turn (next_deadline: now)
        q.more_pending = true;
        break;
      }
      // Due retries and scheduled tasks first: they have waited longest.
      if (!q.due.empty() && q.due.front().next_run <= now_unix) {
        const due_entry next = q.due.pop();
        count_waiting(q, next.state(), -1);
        const std::size_t started = q.in_flight;
        resume_waiting(q, next.id.str(), next.state(), now_unix, now, nullptr);
        if (q.in_flight == started) ++parked;  // into its host's line (or gone): no slot taken
        continue;
      }
      std::string element;
      if (!peek_pending(q, element)) break;
      auto e = tasks::decode_element(element, now_unix);
      s.stream().begin_atomic();
      pop_pending(q);
      const std::string_view payload = e.payload(element);
      std::string id = std::move(e.id);
      if (id.empty()) id = new_id();
      if (auto* err = std::get_if<tasks::decode_error>(&e.result)) {
        record r;
        r.q = &q;
        r.live.assign(tasks::payload_url(payload), {});
        to_dead(q, id, r, payload, tasks::refuse(task_record_of(id, r), err->reason));
        s.stream().end_atomic();
        continue;
      }
      auto& t = std::get<tasks::task>(e.result);
      if (in_custody(id)) {
        // The same idempotency key is already in custody: deliver it once.
        record dup;
        dup.q = &q;
        dup.live.assign(t.url, {});
        s.stream().end_atomic();
        log_verbose("Task " + id + " of queue '" + q.name + "' is a duplicate of one in flight: skipped");
        publish_outcome(q, tasks::duplicate_outcome(task_record_of(id, dup)), {});
        continue;
      }
      if (t.run_at && *t.run_at > now_unix + 0.001) {
        record r;
        r.q = &q;
        r.max_attempts = tasks::max_attempts_of(t, q.opts);
        r.state = custody_state::scheduled;
        r.next_run = *t.run_at;
        hset(q, id, envelope(id, r, payload));
        q.due.insert(r.next_run, id, custody_state::scheduled);
        ++q.scheduled;
        s.stream().end_atomic();
        ++parked;
        continue;
      }
      const std::string& key = host_key(q, t.url);
      if (!host_admits(q, key, now_unix)) {
        // Custody holds it from now on, as scheduled, in its host's line: the tasks
        // behind it, for other hosts, go on.
        record w;
        w.q = &q;
        w.max_attempts = tasks::max_attempts_of(t, q.opts);
        w.state = custody_state::scheduled;
        w.next_run = now_unix;
        hset(q, id, envelope(id, w, payload));
        join_line(q, key, id, custody_state::scheduled);
        s.stream().end_atomic();
        ++parked;
        continue;
      }
      record& r = records[id];
      r.q = &q;
      r.max_attempts = tasks::max_attempts_of(t, q.opts);
      r.host = key;
      q.rate.consume(now, q.opts.rate);
      start_attempt(q, id, r, t, payload);
      s.stream().end_atomic();
    }
    // Stopped by the rate gate (or it closed with the last start): next_deadline wakes the
    // queue when it opens, however late it is computed.
    q.rate_blocked = q.in_flight < q.opts.concurrency && !q.rate.allows(now, q.opts.rate);
  }

  void dispatch_all() {
    // CLIENT PAUSE: no attempt starts and no dead letter is replayed until it ends
    // (clients_unpaused dispatches then).
    if (s.pause_on()) return;
    server::db_scope in_db0(s, 0);  // the queues and their records live in database 0
    dirty = false;
    const double now_unix = unix_now();
    for (auto& [name, q] : queues) {
      if (!q.replay.empty()) replay_step(q);
      for (auto& cb : q.callback_retry.due(now_unix)) send_callback(q, std::move(cb));
      dispatch(q);
    }
  }

  // Moves the dead letters a replay selected back into the queue, as many as replay-rate
  // allows now: MULTI; LREM Q:dead -1 <record>; LPUSH Q <record>; EXEC (the form LMOVE
  // would leave: the dispatcher unwraps the record to the producer's payload and id). One
  // that left Q:dead meanwhile (deleted, moved by a client) is skipped.
  void replay_step(queue_state& q) {
    const std::size_t allowed = q.replay_gate.take(clock::now(), s.cfg().replay_rate, q.replay.size());
    std::size_t moved = 0;
    while (moved < allowed && !q.replay.empty()) {
      std::string rec = std::move(q.replay.front());
      q.replay.pop_front();
      value* d = s.db(0).find(q.dead_key);
      if (!d || d->type() != value_type::list) continue;
      s.stream().begin_atomic();
      s.will_write(q.dead_key);
      if (d->list().remove(rec, -1) == 0) {
        s.stream().end_atomic();
        continue;
      }
      s.stream().append({"LREM", q.dead_key, "-1", rec});
      if (d->list().empty()) s.db(0).erase(q.dead_key);
      s.add_dirty();
      push_list(q.name, rec, true);
      s.stream().end_atomic();
      ++moved;
    }
  }

  // What the end of an attempt tells of its host: the breaker, hold and cap move.
  void host_ended(queue_state& q, record& r, const tasks::http_result& res, double now_unix) {
    host_entry& h = host_of(q, r);
    double hold_until = 0;
    const tasks::host_signal sig = tasks::host_signal_of(res, now_unix, hold_until);
    std::string error;
    if (sig != tasks::host_signal::clean && sig != tasks::host_signal::neutral)
      error = tasks::failure_text(res);
    const auto t = h.health.ended(sig, now_unix, s.cfg().host_limits, hold_until, error);
    if (t.opened)
      log_notice("Queue '" + q.name + "': circuit of host " + r.host + " open for " +
                 std::to_string(s.cfg().host_limits.cooldown) + " s (" + error + ")");
    else if (t.closed)
      log_notice("Queue '" + q.name + "': circuit of host " + r.host + " closed");
    if (!h.waiting.empty()) q.blocked.insert(r.host);
  }

  void on_result(tasks::http_result& res) {
    if (auto cb = callbacks.find(res.ticket); cb != callbacks.end()) {
      auto [queue, c] = std::move(cb->second);
      callbacks.erase(cb);
      callback_ended(res, std::move(queue), std::move(c));
      return;
    }
    auto tk = tickets.find(res.ticket);
    if (tk == tickets.end()) return;  // abandoned at shutdown or forgotten by FLUSHALL
    std::string id = tk->second.str();
    tickets.erase(tk);
    auto it = records.find(id);
    if (it == records.end()) return;
    record& r = it->second;
    queue_state& q = *r.q;
    --q.in_flight;
    dirty = true;
    const double now_unix = unix_now();
    host_ended(q, r, res, now_unix);
    if (r.cancelled) {  // its outcome, "cancelled", was published when it was cancelled
      // The attempt it was cancelled in has ended: its entry among the recent outcomes
      // (TASK GET) shows how, instead of running for ever.
      if (tasks::finished_task* f = q.history.find(id); f && f->state == tasks::finished_state::cancelled)
        f->log.finished(res.code, tasks::redact_urls_in(res.error), res.duration_ms, 0);
      records.erase(it);
      return;
    }
    r.last_code = res.code;
    r.set_last_error(res.error);
    if (res.egress_denied) ++q.egress_denied;
    tasks::task_record tr = task_record_of(id, r);
    // Holds are counted in the log, which keeps its newest entries: once it is full the
    // count could fall as old ones go, so no more are free.
    tr.holds = r.log.entries().size() >= tasks::attempt_log::max_logged_attempts ? tasks::max_free_holds : r.log.holds();
    const tasks::decision d = tasks::decide(tr, res, q.opts, now_unix, rng);
    if (d.attempt_refunded) --r.attempts;  // the endpoint asked to wait: not an attempt spent
    if (d.attempt_failed) ++q.failed;
    q.attempts.record(res, d.state == tasks::next_state::retrying);
    r.log.finished(res.code, tasks::redact_urls_in(res.error), res.duration_ms,
                   d.state == tasks::next_state::retrying ? d.next_run : 0);
    if (d.state == tasks::next_state::delivered) {
      ++q.delivered;
      tasks::finished_task::source kind{};
      std::string env = hdel(q, id, &kind);
      if (!env.empty()) remember(q, id, r, tasks::finished_state::delivered, kind, std::move(env));
      publish_outcome(q, d.outcome, r.callback());
      records.erase(it);
      return;
    }
    std::string payload;
    if (!read_or_drop(q, id, it, payload)) return;  // cancelled meanwhile, or replaced by a client
    if (d.state == tasks::next_state::retrying) {
      r.state = custody_state::retrying;
      r.next_run = d.next_run;
      // The attempts made here (TASK GET lists them) wait in its packed envelope too.
      // An error its last_error repeats is kept once; the envelope gives last_error back as
      // shown (waiting_record), which is the same text when it is UTF-8 with no credentials.
      const bool shown_as_is = tasks::valid_utf8(r.last_error()) && r.last_error().find('@') == std::string::npos;
      const std::string log =
          r.log.pack({shown_as_is ? std::string_view(r.last_error()) : std::string_view(), r.last_code, r.next_run});
      tasks::envelope_fields f = envelope(id, r, payload);
      f.log = log;
      hset(q, id, f);
      q.due.insert(r.next_run, id, custody_state::retrying);
      ++q.retrying;
      publish_outcome(q, d.outcome, r.callback());
      records.erase(it);  // its envelope holds the rest until the next attempt
      return;
    }
    s.stream().begin_atomic();
    to_dead(q, id, r, payload, d);
    s.stream().end_atomic();
    records.erase(id);
  }
};

task_manager::task_manager(server& s) : impl_(std::make_unique<impl>(s)), s_(s) {
  static_assert(sizeof(std::pair<const std::string, impl::record>) <= 176,
                "a task's record outgrows its 192-byte block (with its node's next and hash)");
  impl_->node = node_name(s.cfg());
  reconfigure();
}
task_manager::~task_manager() = default;

void task_manager::reconfigure() {
  auto& qs = impl_->queues;
  for (auto it = qs.begin(); it != qs.end();) {
    auto cfg = s_.cfg().queues.find(it->first);
    bool gone = cfg == s_.cfg().queues.end() || cfg->second.shared;
    it->second.retired = gone;
    // Kept while tasks wait in it (their records point at it) or its callbacks are on
    // their way or wait to go again; forgotten when they are gone.
    const auto& q = it->second;
    if (gone && q.in_flight == 0 && q.due.empty() && q.waiting_host == 0 && q.callbacks_in_flight == 0 &&
        q.callback_retry.waiting() == 0 && !impl_->holds_records(q))
      it = qs.erase(it);
    else ++it;
  }
  for (const auto& [name, opts] : s_.cfg().queues) {
    if (opts.shared) continue;  // shared queues live on the upstream Redis (redis-compat)
    auto& q = qs[name];
    q.retired = false;
    q.name = name;
    q.inflight_key = name + ":inflight";
    q.dead_key = name + ":dead";
    q.results_channel = name + ":results";
    q.paused_key = name + ":paused";
    q.opts = opts;
    for (auto& [host, h] : q.hosts) {
      h.health.set_max_cap(opts.per_host);
      h.health.set_rate(opts.host_rate);
    }
    // (At construction the databases do not exist yet: recover() reads the pause then.)
    if (s_.db_count() > 0) q.paused = s_.db(0).find(q.paused_key) != nullptr;
    q.history.trim(s_.cfg().task_history_max_len);
  }
  impl_->dirty = true;
}

std::vector<std::pair<std::string, unsigned>> task_manager::pools() const {
  std::vector<std::pair<std::string, unsigned>> out;
  for (const auto& [name, q] : impl_->queues) out.emplace_back(name, q.opts.per_host);
  return out;
}

void task_manager::on_list_push(std::string_view key) {
  if (impl_->queues.empty()) return;
  auto it = impl_->queues.find(key);
  if (it == impl_->queues.end()) return;
  value* v = s_.db(0).find(key);
  // Only a list is a queue: a sorted set under a queue's name (ZADD wakes BZPOPMIN
  // waiters through the same signal) is not work for the dispatcher.
  if (v && v->type() != value_type::list) return;
  impl_->dirty = true;
  if (!v) return;
  // Remember when these tasks arrived, for the dispatch latency figures: the list grew
  // by the tasks of this push since we last looked.
  auto& q = it->second;
  std::size_t len = v->list().size();
  if (len > q.push_times_total) {
    q.enqueued += len - q.push_times_total;
    q.push_times.emplace_back(len - q.push_times_total, clock::now());
    q.push_times_total = len;
  } else if (len < q.push_times_total) {
    // The list shrank behind our back (LREM, LTRIM, a BRPOP consumer): forget the oldest.
    std::size_t extra = q.push_times_total - len;
    while (extra && !q.push_times.empty()) {
      auto& f = q.push_times.front();
      std::size_t take = std::min(extra, f.first);
      f.first -= take;
      extra -= take;
      q.push_times_total -= take;
      if (f.first == 0) q.push_times.pop_front();
    }
  }
}

const std::string* task_manager::inflight_owner(std::string_view key) const {
  static constexpr std::string_view suffix = ":inflight";
  if (key.size() <= suffix.size() || key.substr(key.size() - suffix.size()) != suffix) return nullptr;
  for (const auto& [name, q] : impl_->queues)
    if (key == q.inflight_key) return &name;
  return nullptr;
}

void task_manager::on_key_written(std::string_view key) {
  static constexpr std::string_view paused_suffix = ":paused";
  if (key.size() > paused_suffix.size() && key.substr(key.size() - paused_suffix.size()) == paused_suffix) {
    if (auto it = impl_->queues.find(key.substr(0, key.size() - paused_suffix.size())); it != impl_->queues.end())
      impl_->refresh_paused(it->second);
    return;
  }
  const std::string* name = inflight_owner(key);
  if (!name) return;
  // A client changed <queue>:inflight (HDEL to cancel a waiting task, DEL, ...): drop the
  // waiting tasks whose envelope is gone, so INFO and the schedule agree with the hash.
  auto& q = impl_->queues.find(*name)->second;
  value* v = s_.db(0).find(key);
  const hash_value* h = v && v->type() == value_type::hash ? &v->hash() : nullptr;
  q.due.erase_if([&](const impl::due_entry& e) {
    tasks::short_id::buffer buf;
    if (h && h->contains(e.id.view(buf))) return false;
    impl_->count_waiting(q, e.state(), -1);
    return true;
  });
  // The same for tasks waiting in a host's line.
  impl_->leave_lines(q, [&](const tasks::short_id& e) {
    tasks::short_id::buffer buf;
    return !h || !h->contains(e.view(buf));
  });
}

void task_manager::after_command() {
  if (impl_->dirty) impl_->dispatch_all();
}

void task_manager::before_write() {
  if (impl_->dirty) impl_->dispatch_all();
  if (!impl_->outgoing.empty() && submit) {
    std::vector<tasks::http_request> batch;
    batch.swap(impl_->outgoing);
    submit(std::move(batch));
  }
}

void task_manager::on_timer() { impl_->dispatch_all(); }

clock::time_point task_manager::next_deadline() const {
  clock::time_point t = clock::time_point::max();
  if (impl_->stopping || s_.pause_on()) return t;
  const double now_unix = unix_now();
  const auto now = clock::now();
  auto at_unix = [&](double when) {
    return now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(std::max(0.0, when - now_unix)));
  };
  for (auto& [name, q] : impl_->queues) {
    if (!q.replay.empty()) t = std::min(t, q.replay_gate.next(now, s_.cfg().replay_rate));
    if (auto c = q.callback_retry.next_due()) t = std::min(t, at_unix(*c));
    if (q.paused || q.retired) continue;  // (a retired queue dispatches nothing)
    if (q.more_pending) t = std::min(t, now);
    // Hosts whose waiting tasks may go at a known time (a cool-down's end, a hold's end);
    // those waiting for a slot are woken by the results.
    for (const auto& key : q.blocked) {
      auto h = q.hosts.find(key);
      if (h == q.hosts.end() || q.in_flight >= q.opts.concurrency) continue;
      const auto a = h->second.health.admit(now_unix);
      if (a.v == tasks::host_health::verdict::go) t = std::min(t, std::max(now, q.rate.next_allowed()));
      else if (a.v == tasks::host_health::verdict::wait_until)
        t = std::min(t, now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                                   std::max(0.0, a.until - now_unix) + 0.001)));
    }
    if (!q.due.empty() && q.in_flight < q.opts.concurrency) {
      double wait = std::max(0.0, q.due.front().next_run - now_unix);
      t = std::min(t, now + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(wait)));
    }
    // The gate's opening is a deadline as long as the last dispatch left it closed, even
    // when that time has passed by now (a slow turn between the dispatch and this): else
    // a queue with nothing in flight would wait for its next push.
    if (q.opts.rate > 0 && q.rate_blocked && q.in_flight < q.opts.concurrency) {
      value* v = s_.db(0).find(name);
      bool pending = v && v->type() == value_type::list && !v->list().empty();
      if (pending || (!q.due.empty() && q.due.front().next_run <= now_unix)) t = std::min(t, q.rate.next_allowed());
    }
  }
  return t;
}

void task_manager::cron() {
  // CONFIG SET task-history-max-len to a smaller value: the recent outcomes follow.
  const std::size_t max_len = s_.cfg().task_history_max_len;
  for (auto& [name, q] : impl_->queues)
    if (q.history.size() > max_len) q.history.trim(max_len);
  // Hosts with nothing to remember are forgotten once a queue has many.
  const double now = unix_now();
  for (auto& [name, q] : impl_->queues) {
    if (q.hosts.size() <= max_remembered_hosts) continue;
    ++q.host_generation;
    for (auto it = q.hosts.begin(); it != q.hosts.end();) {
      if (it->second.waiting.empty() && it->second.health.idle(now)) it = q.hosts.erase(it);
      else ++it;
    }
  }
}

std::vector<tasks::host_figures> task_manager::host_stats() const {
  std::vector<tasks::host_figures> out;
  for (const auto& [name, q] : impl_->queues) {
    for (const auto& [host, h] : q.hosts) {
      tasks::host_figures f = h.health.figures();
      f.host = host;
      f.queue = name;
      f.waiting = h.waiting.size();
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::vector<tasks::host_figures> task_manager::all_host_stats() const {
  std::vector<tasks::host_figures> all = host_stats();
  if (shared_host_stats) shared_host_stats(all);
  tasks::sort_busiest_first(all);
  return all;
}

std::string task_manager::hosts_info() const {
  return tasks::hosts_info(all_host_stats(), s_.cfg().host_info_max, unix_now());
}

void task_manager::on_flush() {
  // FLUSHALL removed every list and hash: forget the bookkeeping. Requests in flight
  // finish, and their results are ignored.
  impl_->records.clear();
  impl_->tickets.clear();
  for (auto& [name, q] : impl_->queues) {
    q.in_flight = q.retrying = q.scheduled = 0;
    q.due.clear();
    q.hosts.clear();  // the attempts in flight there are forgotten too
    ++q.host_generation;
    q.blocked.clear();
    q.waiting_host = 0;
    q.push_times.clear();
    q.push_times_total = 0;
    impl_->refresh_paused(q);  // SWAPDB may bring a <queue>:paused key in
    q.replay.clear();
  }
}

std::vector<tasks::queue_stats> task_manager::stats() {
  std::vector<tasks::queue_stats> out;
  out.reserve(impl_->queues.size());
  for (auto& [name, q] : impl_->queues) {
    tasks::queue_stats st;
    st.name = name;
    value* v = s_.db(0).find(name);
    st.pending = v && v->type() == value_type::list ? v->list().size() : 0;
    value* d = s_.db(0).find(q.dead_key);
    st.dead_list = d && d->type() == value_type::list ? d->list().size() : 0;
    st.in_flight = q.in_flight;
    st.retrying = q.retrying;
    st.scheduled = q.scheduled;
    st.delivered = q.delivered;
    st.failed = q.failed;
    st.dead = q.dead;
    st.dispatched = q.dispatched;
    st.egress_denied = q.egress_denied;
    st.latency = q.latency;
    st.attempts = q.attempts;
    st.enqueued = q.enqueued;
    st.concurrency = q.opts.concurrency;
    st.rate = q.opts.rate;
    st.paused = q.paused;
    st.cancelled = q.cancelled;
    st.replaying = q.replay.size();
    st.callbacks_retrying = q.callback_retry.waiting();
    st.callbacks_failed = q.callback_retry.failed();
    st.extra.emplace_back("waiting_host", std::to_string(q.waiting_host));
    out.push_back(std::move(st));
  }
  return out;
}

std::string task_manager::info() {
  std::vector<tasks::queue_stats> all = stats();
  if (shared_stats) {
    shared_stats(all);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  }
  std::string out;
  for (const auto& st : all) out += tasks::info_line(st);
  return out;
}

void task_manager::on_results(std::vector<tasks::http_result>&& results) {
  if (s_.pause_on() && !impl_->stopping) {
    for (auto& r : results) impl_->held_results.push_back(std::move(r));
    return;
  }
  server::db_scope in_db0(s_, 0);
  for (auto& r : results) impl_->on_result(r);
  impl_->dispatch_all();
}

void task_manager::recover() {
  server::db_scope in_db0(s_, 0);
  std::size_t restored = 0;
  const double now = unix_now();
  for (auto& [name, q] : impl_->queues) {
    impl_->refresh_paused(q);  // the pause, as the AOF left it
    value* v = s_.db(0).find(q.inflight_key);
    if (!v) continue;
    if (v->type() != value_type::hash) {
      log_warning("Key '" + q.inflight_key + "' is not a hash: HTTP tasks of queue '" + name + "' can't be recovered");
      continue;
    }
    // Records that are not respq's envelopes (any client can write the hash): moved to
    // Q:dead once the walk is over, since that changes the hash.
    std::vector<std::tuple<std::string, std::string, std::string>> unreadable;  // id, payload, why
    hash_value& h = v->hash();
    for (auto it = h.begin(); it != h.end(); ++it) {
      std::string_view id = (*it).field;
      const std::string_view env = (*it).value;
      const hash_text text(id, env);
      auto envelope = tasks::read_envelope_json(text);
      if (auto* why = std::get_if<std::string>(&envelope)) {
        unreadable.emplace_back(id, tasks::salvage_payload(text), *why);
        continue;
      }
      const auto& e = std::get<tasks::envelope_record>(envelope);
      // The AOF holds the JSON: kept packed from here on when that renders the very same
      // text (it does for every envelope respq wrote), so what clients see is unchanged.
      if (!tasks::is_packed_envelope(env)) {
        tasks::envelope_fields f;
        f.id = id;
        f.queue = q.name;
        f.state = e.state;
        f.attempts = e.attempts;
        f.max_attempts = e.max_attempts.value_or(1 + q.opts.retries);
        f.next_run = e.next_run.value_or(0);
        f.last_code = e.last_code;
        f.last_error = e.last_error;
        f.payload = e.payload;
        if (e.max_attempts && e.next_run && tasks::envelope_json(f) == text.view()) {
          h.assign(it, tasks::envelope_packed(f));
          id = (*it).field;  // the entry's block may have moved (env and text with it)
        }
      }
      // A task in flight when the server stopped may or may not have reached its endpoint:
      // it runs again now (at least once; X-Task-Id lets the endpoint deduplicate). Its
      // interrupted attempt counts.
      const custody_state st = e.state == custody_state::scheduled ? custody_state::scheduled : custody_state::retrying;
      const double next_run = e.state == custody_state::in_flight ? now : e.next_run.value_or(now);
      // (Its envelope keeps saying in_flight until it is dispatched: see waiting_record.)
      impl_->count_waiting(q, st, +1);
      q.due.insert(next_run, id, st);
      ++restored;
    }
    for (const auto& [id, payload, why] : unreadable) impl_->malformed_to_dead(q, id, payload, why);
  }
  if (restored) log_notice("Recovered " + std::to_string(restored) + " HTTP tasks that were in flight or waiting to retry");
  impl_->dirty = true;
}

std::size_t task_manager::in_flight() const {
  std::size_t n = 0;
  for (const auto& [name, q] : impl_->queues) n += q.in_flight;
  return n;
}

void task_manager::stop_dispatching() {
  stopping_ = true;
  impl_->stopping = true;
  // Shutdown: results a CLIENT PAUSE kept are applied now (those tasks are done, not in
  // flight: the grace period does not wait for them), and later ones are not kept.
  clients_unpaused();
}

void task_manager::clients_unpaused() {
  std::vector<tasks::http_result> held;
  held.swap(impl_->held_results);
  on_results(std::move(held));
}

void task_manager::abandon_in_flight() {
  server::db_scope in_db0(s_, 0);
  // Put every unfinished attempt back at the head of its queue (the right end, taken
  // next), in the order the attempts started.
  std::vector<std::pair<std::uint64_t, std::string>> order;
  order.reserve(impl_->tickets.size());
  for (const auto& [ticket, id] : impl_->tickets) order.emplace_back(ticket, id.str());
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [ticket, id] : order) {
    auto it = impl_->records.find(id);
    if (it == impl_->records.end()) continue;
    auto& q = *it->second.q;
    std::string payload, why;
    if (impl_->read(q, id, payload, why) != impl::lookup::found) continue;
    // A task whose id respq generated goes back as a record carrying that id (the form the
    // dispatcher unwraps, as for a replayed dead letter), so the endpoint sees the same
    // X-Task-Id when it runs again; a producer's own id travels in its payload.
    if (tasks::decode_element(payload, unix_now()).id != id) {
      tasks::dead_fields f;
      f.id = id;
      f.queue = q.name;
      f.reason = "requeued at shutdown";
      f.payload = payload;
      f.attempts = it->second.attempts;
      f.failed_at = unix_now();
      payload = tasks::dead_record_json(f);
    }
    s_.stream().begin_atomic();
    impl_->hdel(q, id);
    impl_->push_list(q.name, payload, false);
    s_.stream().end_atomic();
    --q.in_flight;
    impl_->records.erase(it);
  }
  impl_->tickets.clear();
}


// ---- Control ---------------------------------------------------------------------------

std::string task_manager::set_paused(std::string_view queue, bool paused) {
  if (s_.cfg().queues.find(queue) == s_.cfg().queues.end())
    return "ERR no such HTTP queue '" + std::string(queue) + "'";
  server::db_scope in_db0(s_, 0);
  const std::string key = std::string(queue) + ":paused";
  value* v = s_.db(0).find(key);
  if (paused && !v) {
    char when[32];
    std::snprintf(when, sizeof when, "%.3f", unix_now());
    s_.will_write(key);
    s_.db(0).create(key, value_type::string).str() = when;
    s_.stream().append({"SET", key, when});
    s_.add_dirty();
    s_.notify(notify_string, "set", key);  // the keyspace events of the SET and DEL it is
  } else if (!paused && v) {
    s_.will_write(key);
    s_.db(0).erase(key);
    s_.stream().append({"DEL", key});
    s_.add_dirty();
    s_.notify(notify_generic, "del", key);
  }
  on_key_written(key);
  return {};
}

std::optional<task_manager::task_view> task_manager::find_task(std::string_view id_view) {
  server::db_scope in_db0(s_, 0);
  auto& d = *impl_;
  const std::string id(id_view);
  // In custody: in flight, retrying, scheduled.
  if (auto it = d.records.find(id); it != d.records.end() && !it->second.cancelled) {
    const auto& r = it->second;
    {
      task_view v;
      v.id = id;
      v.queue = r.q->name;
      v.state = tasks::state_name(r.state);
      v.attempts = r.attempts;
      v.max_attempts = r.max_attempts;
      v.next_run = r.state == custody_state::in_flight ? 0 : r.next_run;
      v.last_code = r.last_code;
      v.last_error = tasks::redact_urls_in(r.last_error());
      v.log = r.log;
      std::string why;
      d.read(*r.q, id, v.payload, why);
      return v;
    }
  }
  for (auto& [name, q] : d.queues) {
    // Waiting for its time, or in its host's line.
    custody_state state{};
    double next_run = 0;
    if (const impl::due_entry* w = d.find_due(q, id)) {
      state = w->state();
      next_run = w->next_run;
    } else {
      std::string host;
      const tasks::short_id* e = d.find_in_line(q, id, &host);
      if (!e) continue;
      state = static_cast<custody_state>(e->aux());
      // Behind an open circuit or a hold, its next try is when the host admits one (as a
      // shared queue's task says); under the host-rate, that plus a rate step for each
      // task ahead of it in the line; waiting for a slot, when it joined the line.
      const impl::host_entry& he = q.hosts.at(host);
      std::size_t ahead = 0;
      while (ahead < he.waiting.size() && &he.waiting[ahead] != e) ++ahead;
      if (const auto at = he.health.turn_at(unix_now(), ahead)) next_run = *at;
    }
    tasks::envelope_record env;
    std::string why;
    d.read(q, id, env, why);
    if (next_run == 0) next_run = env.next_run.value_or(0);
    impl::record r;
    d.waiting_record(q, env, r);
    task_view v;
    v.id = id;
    v.queue = name;
    v.state = tasks::state_name(state);
    v.attempts = r.attempts;
    v.max_attempts = r.max_attempts;
    v.next_run = next_run;
    v.last_code = r.last_code;
    v.last_error = tasks::redact_urls_in(r.last_error());
    v.log = std::move(r.log);
    v.payload = std::move(env.payload);
    return v;
  }
  const double now = unix_now();
  // Pending: an element of the list whose payload carries the id.
  for (auto& [name, q] : d.queues) {
    value* l = s_.db(0).find(name);
    if (!l || l->type() != value_type::list) continue;
    for (auto c = l->list().seek(0); c.valid(); c.next()) {
      const std::string_view element = c.value();
      if (element.find(id) == std::string_view::npos) continue;
      auto e = tasks::decode_element(element, now);
      if (e.id != id) continue;
      task_view v;
      v.id = id;
      v.queue = name;
      v.state = "pending";
      if (auto* t = std::get_if<tasks::task>(&e.result)) {
        v.max_attempts = tasks::max_attempts_of(*t, q.opts);
        if (t->run_at) v.next_run = *t->run_at;
      }
      v.payload = std::string(e.payload(element));
      return v;
    }
  }
  // Dead letters.
  for (auto& [name, q] : d.queues) {
    value* l = s_.db(0).find(q.dead_key);
    if (!l || l->type() != value_type::list) continue;
    for (auto c = l->list().seek(0); c.valid(); c.next()) {
      const std::string_view rec = c.value();
      if (rec.find(id) == std::string_view::npos) continue;
      auto dl = tasks::read_dead_letter(rec, false);
      if (!dl || dl->id != id) continue;
      task_view v;
      v.id = id;
      v.queue = name;
      v.state = "dead";
      v.attempts = dl->attempts;
      v.last_code = dl->code;
      v.last_error = dl->error.empty() ? dl->reason : dl->error;
      v.finished_at = dl->failed_at;
      v.payload = std::move(dl->payload);
      // What it was allowed: as its outcome was remembered, else as its payload asks (a
      // payload that is no task had none); never fewer than the attempts it made.
      const tasks::finished_task* f = q.history.find(id);
      if (f && f->state == tasks::finished_state::dead) {
        v.log = f->log;
        v.max_attempts = f->max_attempts;
      } else {
        const auto e = tasks::decode_element(v.payload, now);
        if (const auto* t = std::get_if<tasks::task>(&e.result)) v.max_attempts = tasks::max_attempts_of(*t, q.opts);
      }
      v.max_attempts = std::max(v.max_attempts, v.attempts);
      return v;
    }
  }
  // Recent outcomes.
  for (auto& [name, q] : d.queues) {
    const tasks::finished_task* f = q.history.find(id);
    if (!f) continue;
    task_view v;
    v.id = id;
    v.queue = name;
    v.state = tasks::finished_name(f->state);
    v.attempts = f->attempts;
    v.max_attempts = f->max_attempts;
    v.last_code = f->last_code;
    v.last_error = tasks::redact_urls_in(f->last_error);
    v.finished_at = f->finished_at;
    v.payload = tasks::finished_payload(*f);
    v.log = f->log;
    return v;
  }
  if (shared_find) return shared_find(id);
  return std::nullopt;
}

bool task_manager::has_shared_queues() const {
  for (const auto& [name, opts] : s_.cfg().queues)
    if (opts.shared) return true;
  return false;
}

bool task_manager::cancel_task(std::string_view id_view) {
  server::db_scope in_db0(s_, 0);
  auto& d = *impl_;
  const std::string id(id_view);
  if (auto it = d.records.find(id); it != d.records.end()) {
    auto& r = it->second;
    if (r.cancelled) return false;
    auto& q = *r.q;
    tasks::finished_task::source kind{};
    std::string env = d.hdel(q, id, &kind);
    ++q.cancelled;
    log_verbose("Task " + id + " of queue '" + q.name + "' cancelled (" + tasks::state_name(r.state) + ")");
    d.publish_outcome(q, tasks::cancelled_outcome(d.task_record_of(id, r)), r.callback());
    if (!env.empty())
      d.remember(q, id, r, tasks::finished_state::cancelled, kind, std::move(env));
    r.cancelled = true;  // forgotten when its attempt ends
    d.dirty = true;
    return true;
  }
  for (auto& [name, q] : d.queues) {
    // Waiting for its time, or in its host's line.
    custody_state state{};
    if (const impl::due_entry* w = d.find_due(q, id)) {
      state = w->state();
      d.count_waiting(q, state, -1);
      q.due.erase(w);
    } else if (const tasks::short_id* e = d.find_in_line(q, id)) {
      state = static_cast<custody_state>(e->aux());
      d.leave_lines(q, [&](const tasks::short_id& x) { return x.is(id); });
    } else {
      continue;
    }
    // A waiting task keeps no record: its envelope has the figures, its payload the URL
    // and callback its outcome names.
    tasks::envelope_record e;
    std::string why;
    d.read(q, id, e, why);
    impl::record r;
    d.waiting_record(q, e, r);
    const auto decoded = tasks::decode_element(e.payload, unix_now());
    if (auto* t = std::get_if<tasks::task>(&decoded.result)) {
      r.live.assign(t->url, t->callback);
    }
    tasks::finished_task::source kind{};
    std::string env = d.hdel(q, id, &kind);
    ++q.cancelled;
    log_verbose("Task " + id + " of queue '" + q.name + "' cancelled (" + tasks::state_name(state) + ")");
    d.publish_outcome(q, tasks::cancelled_outcome(d.task_record_of(id, r)), r.callback());
    if (!env.empty())
      d.remember(q, id, r, tasks::finished_state::cancelled, kind, std::move(env));
    d.dirty = true;
    return true;
  }
  const double now = unix_now();
  for (auto& [name, q] : d.queues) {
    value* l = s_.db(0).find(name);
    if (!l || l->type() != value_type::list) continue;
    std::string element;
    std::string url;
    int max_attempts = 1 + q.opts.retries;
    for (auto c = l->list().seek(0); c.valid(); c.next()) {
      const std::string_view el = c.value();
      if (el.find(id) == std::string_view::npos) continue;
      auto e = tasks::decode_element(el, now);
      if (e.id != id) continue;
      if (auto* t = std::get_if<tasks::task>(&e.result)) {
        url = t->url;
        max_attempts = tasks::max_attempts_of(*t, q.opts);
      }
      element.assign(el);
      break;
    }
    if (element.empty()) continue;
    s_.will_write(name);
    l->list().remove(element, 1);
    s_.stream().append({"LREM", name, "1", element});
    if (l->list().empty()) s_.db(0).erase(name);
    s_.add_dirty();
    ++q.cancelled;
    impl::record r;
    r.q = &q;
    r.live.assign(url, {});
    r.max_attempts = max_attempts;
    log_verbose("Task " + id + " of queue '" + name + "' cancelled (pending)");
    d.publish_outcome(q, tasks::cancelled_outcome(d.task_record_of(id, r)), {});
    d.remember(q, id, r, tasks::finished_state::cancelled, tasks::finished_task::source::element, std::move(element));
    return true;
  }
  return shared_cancel && shared_cancel(id);
}

std::variant<std::size_t, std::string> task_manager::replay_dead(std::string_view queue, const tasks::dead_filter& f) {
  if (auto c = s_.cfg().queues.find(queue); c != s_.cfg().queues.end() && c->second.shared)
    return "ERR the dead letters of shared queue '" + std::string(queue) +
           "' are on the upstream Redis (LMOVE them there)";
  auto qit = impl_->queues.find(queue);
  if (qit == impl_->queues.end() || qit->second.retired) return "ERR no such HTTP queue '" + std::string(queue) + "'";
  server::db_scope in_db0(s_, 0);
  auto& q = qit->second;
  value* l = s_.db(0).find(q.dead_key);
  if (!l) return std::size_t{0};
  if (l->type() != value_type::list) return std::string(wrongtype_error);
  std::size_t selected = 0;
  const packed_list& list = l->list();
  // Letters an earlier QUEUE REPLAY selected and that wait to move back are not selected
  // twice (by their bytes: a list may hold the same record more than once).
  std::unordered_map<std::string_view, std::size_t> waiting;
  for (const std::string& rec : q.replay) ++waiting[rec];
  // Oldest first: the right end.
  for (auto c = list.seek(list.size() - 1); c.valid(); c.prev()) {
    const std::string_view rec = c.value();
    if (!f.any()) {
      if (!f.id.empty() && rec.find(f.id) == std::string_view::npos) continue;
      auto dl = tasks::read_dead_letter(rec, !f.host.empty());
      if (!dl || !tasks::matches(f, *dl)) continue;
    }
    if (auto w = waiting.find(rec); w != waiting.end() && w->second > 0) {
      --w->second;
      continue;
    }
    q.replay.emplace_back(rec);
    ++selected;
  }
  if (selected) {
    log_notice("Queue '" + q.name + "': replaying " + std::to_string(selected) + " dead letters");
    impl_->dirty = true;
  }
  return selected;
}

std::variant<std::size_t, std::string> task_manager::reset_host(std::string_view queue, std::string_view host) {
  const std::string key = to_lower(host);
  if (auto c = s_.cfg().queues.find(queue); c != s_.cfg().queues.end() && c->second.shared) {
    if (shared_reset_host)
      if (auto n = shared_reset_host(queue, key)) return *n;
    return std::size_t{0};
  }
  auto qit = impl_->queues.find(queue);
  if (qit == impl_->queues.end() || qit->second.retired) return "ERR no such HTTP queue '" + std::string(queue) + "'";
  auto& q = qit->second;
  auto h = q.hosts.find(key);
  if (h == q.hosts.end()) return std::size_t{0};
  h->second.health.reset();
  // Its tasks waiting for a retry go now too: their time came from this host's answers (a
  // Retry-After, a backoff). Found by reading their envelopes: a rare command.
  std::vector<std::string> retrying;
  q.due.for_each([&](const impl::due_entry& e) {
    if (e.state() == custody_state::retrying) retrying.push_back(e.id.str());
  });
  std::unordered_set<std::string> ids;
  for (std::string& id : retrying) {
    std::string payload, why;
    if (impl_->read(q, id, payload, why) == impl::lookup::found && tasks::host_key_of(tasks::payload_url(payload)) == key)
      ids.insert(std::move(id));
  }
  // One pass over the schedule (not a walk per task), then each one back in at now.
  std::vector<std::string> moving;
  q.due.erase_if([&](const impl::due_entry& e) {
    if (e.state() != custody_state::retrying || ids.empty()) return false;
    std::string id = e.id.str();
    if (!ids.count(id)) return false;
    moving.push_back(std::move(id));
    return true;
  });
  const double now = unix_now();
  for (const std::string& id : moving) q.due.insert(now, id, custody_state::retrying);
  const std::size_t moved = moving.size();
  log_notice("Queue '" + q.name + "': host " + key + " reset (QUEUE HOSTRESET); " + std::to_string(moved) +
             " retrying tasks go now");
  impl_->dirty = true;  // its line goes now
  return std::size_t{1};
}

std::variant<std::size_t, std::string> task_manager::delete_dead(std::string_view queue, std::string_view id) {
  if (auto c = s_.cfg().queues.find(queue); c != s_.cfg().queues.end() && c->second.shared)
    return "ERR the dead letters of shared queue '" + std::string(queue) + "' are on the upstream Redis";
  auto qit = impl_->queues.find(queue);
  if (qit == impl_->queues.end() || qit->second.retired) return "ERR no such HTTP queue '" + std::string(queue) + "'";
  server::db_scope in_db0(s_, 0);
  auto& q = qit->second;
  value* l = s_.db(0).find(q.dead_key);
  if (!l) return std::size_t{0};
  if (l->type() != value_type::list) return std::string(wrongtype_error);
  std::string found;
  for (auto c = l->list().seek(0); c.valid(); c.next()) {
    const std::string_view rec = c.value();
    if (rec.find(id) == std::string_view::npos) continue;
    auto dl = tasks::read_dead_letter(rec, false);
    if (!dl || dl->id != id) continue;
    found.assign(rec);
    break;
  }
  if (found.empty()) return std::size_t{0};
  s_.will_write(q.dead_key);
  l->list().remove(found, 1);
  s_.stream().append({"LREM", q.dead_key, "1", found});
  if (l->list().empty()) s_.db(0).erase(q.dead_key);
  s_.add_dirty();
  return std::size_t{1};
}

}  // namespace respq::core
