// server: the broker's core. It owns the databases (numbered keyspaces), the clients,
// blocked clients, pub/sub, transactions, the command table, statistics and the HTTP
// task lifecycle (in database 0). It does no
// I/O: the asio layer (broker/) hands it bytes and takes replies, so everything here
// runs, and is tested, without sockets. One thread (the broker thread) calls into it;
// nothing here is locked.
//
// A loop turn, as the I/O layer drives it:
//   1. on_input(c) for each client with new bytes: parse every complete command, execute
//      it, append the reply to c.out. After each command, clients blocked on keys that
//      became ready are served (blocking.cpp), and HTTP queues with new tasks dispatch.
//   2. before_write(): the turn's effects go to the command stream's sinks (AOF with
//      group commit, mirror), then the I/O layer writes every client in pending_writes().
//   3. next_deadline()/on_timer(): blocked-client timeouts, delayed and retried tasks.
//
// Command handlers (cmd_*.cpp) are free functions `void cmd_x(server&, client&, args_t)`.
// Modules outside the core (the AOF, the Redis link, the admin server) plug in as
// server_module objects (module.hpp, modules.cpp): cron, INFO sections, CONFIG SET,
// write refusal, BGREWRITEAOF, PUBLISH, key writes and the shutdown grace period.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/core/client.hpp"
#include "broker/core/command_stream.hpp"
#include "broker/core/config.hpp"
#include "broker/core/cycle_clock.hpp"
#include "broker/core/keyspace.hpp"
#include "broker/core/latency_monitor.hpp"
#include "broker/core/migrate.hpp"
#include "broker/core/module.hpp"
#include "broker/core/slowlog.hpp"
#include "resp/ascii.hpp"
#include "resp/reply_writer.hpp"

namespace respq::core {

class server;
class task_manager;
class script_engine;
using args_t = std::span<const std::string_view>;
using handler_fn = void (*)(server&, client&, args_t);

// Command flags (a subset of Redis's, with the same meaning).
enum command_flag : std::uint32_t {
  flag_write = 1u << 0,
  flag_readonly = 1u << 1,
  flag_admin = 1u << 2,
  flag_pubsub = 1u << 3,
  flag_noscript = 1u << 4,
  flag_blocking = 1u << 5,
  flag_loading = 1u << 6,
  flag_stale = 1u << 7,
  flag_fast = 1u << 8,
  flag_no_auth = 1u << 9,      // allowed before AUTH
  flag_no_multi = 1u << 10,    // executed at once even inside MULTI (EXEC, DISCARD, ...)
  flag_deny_multi = 1u << 16,  // refused inside MULTI ("Command not allowed inside a transaction")
  flag_allow_busy = 1u << 11,
  flag_denyoom = 1u << 12,
  flag_sub_ok = 1u << 13,      // allowed in RESP2 subscribe mode
  flag_movablekeys = 1u << 14,
  flag_skip_monitor = 1u << 15,  // not fed to MONITOR after it ran (EVAL feeds itself first)
  flag_no_keymiss = 1u << 17,    // its lookups are not "keymiss" events (Redis's LOOKUP_NONOTIFY)
  flag_may_replicate = 1u << 18,  // not a write, but propagates (PUBLISH, PFCOUNT): refused in read-only scripts
};

struct command_def {
  std::string_view name;  // lower case
  int arity;              // Redis convention: -N means at least N
  std::uint32_t flags;
  int first_key, last_key, key_step;
  handler_fn fn;
  std::string_view group;
  std::string_view summary;
  std::string_view since;
  std::string_view complexity;
  std::string_view acl_categories;  // space separated, without '@'
  std::vector<command_def> subcommands;
  // INFO commandstats. The table belongs to one server; the figures change as commands
  // run, the definition never does.
  struct call_stats {
    std::uint64_t calls = 0, cycles = 0, rejected = 0, failed = 0;
    latency_histogram histogram;  // LATENCY HISTOGRAM (latency-tracking)
  };
  mutable call_stats stats;
};

struct server_stats {
  std::uint64_t connections_received = 0;
  std::uint64_t commands_processed = 0;
  std::uint64_t rejected_connections = 0;
  std::uint64_t net_input_bytes = 0;
  std::uint64_t net_output_bytes = 0;
  std::uint64_t keyspace_hits = 0;
  std::uint64_t keyspace_misses = 0;
  std::uint64_t pubsub_messages = 0;
  std::uint64_t total_blocking_served = 0;
  std::uint64_t total_errors = 0;
  std::uint64_t expired_keys = 0;
  // Active expiry (the cron's cycle): its time in all, the cycles cut short by their time
  // budget with keys still due, and the share of keys with a deadline left due by the
  // last cycle (INFO's expired_stale_perc).
  std::uint64_t expire_cycle_us = 0;
  std::uint64_t expired_time_cap_reached = 0;
  double expired_stale_perc = 0;
  // Reads and writes made on client sockets (INFO total_reads_processed and
  // total_writes_processed: a read attempt per readiness, a write call per send).
  std::uint64_t reads_processed = 0;
  std::uint64_t writes_processed = 0;
  std::unordered_map<std::string, std::uint64_t> error_replies;  // prefix -> count
};

// A container's subcommand by name, any case (CONFIG's "get"), or nullptr.
const command_def* find_subcommand(const command_def& cmd, std::string_view name);

class server {
 public:
  explicit server(config cfg);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // ---- I/O layer interface -------------------------------------------------------
  // A new connection. Returns nullptr (and sets `refusal` to the bytes to write before
  // closing) when maxclients is reached.
  client* accept_client(std::string addr, std::string laddr, int fd, std::string& refusal);
  // New bytes were appended to c.in: parse and execute every complete command.
  void on_input(client& c);
  // The connection is gone: unblock, unsubscribe and free the client.
  void on_disconnect(client& c);
  // Called once per loop turn before writing replies: flushes the command stream to its
  // sinks (AOF group commit, mirror).
  void before_write();
  // Clients with bytes to write or to close. The I/O layer empties it each turn.
  std::vector<client*>& pending_writes() { return pending_writes_; }
  // Earliest time on_timer() has work (time_point::max() when none).
  clock::time_point next_deadline() const;
  void on_timer();
  // Ten times a second: idle-client timeouts and housekeeping.
  void cron();

  // Hooks the I/O layer sets.
  std::function<void()> wake;                  // work appeared outside on_input (call before_write/flush soon)
  std::function<void(bool save)> on_shutdown;  // SHUTDOWN: stop the server
  // A json-port client held by CLIENT PAUSE goes on (the I/O layer parses what it read).
  std::function<void(client& c)> resume_json;
  // While a script runs past busy-reply-threshold, the script engine calls this now and
  // then: the I/O layer accepts and reads clients directly (no loop turn, no timers, no
  // other module runs) and hands their input to on_input(), where every command but the
  // few Redis allows while busy (SCRIPT KILL, SHUTDOWN NOSAVE, AUTH, ...) gets -BUSY.
  std::function<void()> serve_while_busy;

  // ---- Execution -------------------------------------------------------------------
  // Looks up and runs one command for a client, applying auth, MULTI and subscribe
  // rules. Replies go to c.out.
  void dispatch(client& c, args_t args);
  // Runs a command with no checks (EXEC's queued commands, AOF loading).
  void call(client& c, const command_def& cmd, args_t args);
  // Sets the client's last command (CLIENT LIST's cmd=, "container|sub" for a
  // subcommand) as it runs or is queued in MULTI; returns the subcommand's entry, or cmd.
  const command_def* note_last_command(client& c, const command_def& cmd, args_t args);
  const command_def* lookup(std::string_view name) const;
  // The command whose flags apply to a command line: a container's subcommand (XGROUP
  // CREATE, CLIENT KILL, ...) when it names one, else the command; nullptr if unknown.
  const command_def* lookup_flags_of(args_t args) const;
  // Parser limits for a client in the given authentication state (proto-max-bulk-len
  // always; Redis's tighter limits before AUTH on top).
  resp::parser_limits parser_limits(bool authenticated) const;
  // The keys a command names (for WATCH, the rewrite's copy-on-write, the task manager).
  std::vector<std::string_view> command_keys(const command_def& cmd, args_t args) const;
  template <typename Fn>
  void for_each_key(const command_def& cmd, args_t args, Fn&& fn) const;
  const std::vector<const command_def*>& commands() const { return command_list_; }
  // A fake client for loading the AOF and internal execution: replies are discarded.
  client& internal_client() { return *internal_; }

  // ---- State for commands ------------------------------------------------------------
  config& cfg() { return cfg_; }
  // The database of the command being executed: the calling client's selected one (set
  // by call(); a served blocked client's is the one it waits in; outside commands, the
  // task manager's and shared queues' work, database 0). Handlers just use db().
  keyspace& db() { return *dbs_[static_cast<std::size_t>(cur_db_)]; }
  keyspace& db(int index) { return *dbs_[static_cast<std::size_t>(index)]; }
  int db_count() const { return static_cast<int>(dbs_.size()); }
  int current_db() const { return cur_db_; }
  // Makes `index` the current database (db(), and the database of the effects logged
  // from now on); returns the previous one.
  int select_db(int index) {
    const int prev = cur_db_;
    cur_db_ = index;
    stream_.set_db(index);
    return prev;
  }
  // Runs a scope in another database, then returns to the one before.
  class db_scope {
   public:
    db_scope(server& s, int index) : s_(s), prev_(s.select_db(index)) {}
    ~db_scope() { s_.select_db(prev_); }
    db_scope(const db_scope&) = delete;
    db_scope& operator=(const db_scope&) = delete;

   private:
    server& s_;
    int prev_;
  };
  server_stats& stats() { return stats_; }
  // CONFIG RESETSTAT: the INFO stats, error counts and per-command figures.
  void reset_stats();
  double cycles_per_usec() const { return cycle_clock_.per_usec(); }
  // SLOWLOG and LATENCY (slowlog.hpp, latency_monitor.hpp).
  slowlog& slow_log() { return slowlog_; }
  // MIGRATE's connections to its targets: given by the broker (none: MIGRATE cannot connect).
  migrate_connections* migrate_cache() { return migrate_.get(); }
  void set_migrate_connections(std::unique_ptr<migrate_connections> m) { migrate_ = std::move(m); }
  latency_monitor& latency() { return latency_; }
  // Records an event of the latency monitor if latency-monitor-threshold is set and
  // reached (Redis's latencyAddSampleIfNeeded).
  void latency_sample(std::string_view event, long long ms) {
    latency_.add_if_needed(event, ms, cfg_.latency_monitor_threshold);
  }
  // The slowlog and latency thresholds as cycle counts, after CONFIG SET and as the
  // cycle counter's rate is measured more precisely (cron).
  void refresh_timing();
  command_stream& stream() { return stream_; }
  task_manager& tasks() { return *tasks_; }
  // The Lua engine, made on first use (a server that never runs a script has no Lua state).
  script_engine& scripts();
  // A script has run past busy-reply-threshold and is still running: other clients are
  // answered -BUSY, and the client that runs it is not read.
  bool script_busy() const;
  const client* script_caller() const;
  // Whether a client wrote this turn: its effects wait for before_write() to persist them,
  // and no reply of the turn may go out before.
  bool turn_has_writers() const { return !turn_writers_.empty(); }
  const std::unordered_map<std::uint64_t, std::unique_ptr<client>>& clients() const { return clients_; }
  client* find_client(std::uint64_t id);
  std::size_t blocked_clients() const { return blocked_count_; }
  std::size_t timed_blocked_clients() const { return block_deadlines_.size(); }
  std::size_t pubsub_clients() const { return pubsub_clients_; }
  std::chrono::system_clock::time_point start_time() const { return start_time_; }
  const std::string& run_id() const { return run_id_; }
  std::string executable() const { return executable_; }
  void set_executable(std::string path) { executable_ = std::move(path); }
  std::uint64_t ops_per_sec() const { return ops_per_sec_; }
  // Network input and output of the last second, in KB/s (sampled with ops_per_sec).
  double input_kbps() const { return input_kbps_; }
  double output_kbps() const { return output_kbps_; }
  // The highest used_memory seen by a walk (INFO, and the maxmemory checks while a limit is set).
  std::uint64_t used_memory_peak() const { return used_memory_peak_; }
  // The replication ID a replica would follow (INFO replication's master_replid): made at
  // start, as Redis's, though respq takes no replicas.
  const std::string& replid() const { return replid_; }
  std::uint64_t dirty() const { return dirty_; }
  void add_dirty(std::uint64_t n = 1) { dirty_ += n; }
  // Marks that the running command logged its own effects (no automatic propagation).
  void effects_logged() { effects_logged_ = true; }
  // Marks that the running command told WATCH itself which keys it changed (a command
  // that reads some of its keys, such as SINTERSTORE's sources, must not touch those).
  void keys_signalled() { keys_signalled_ = true; }
  // DEBUG SET-ACTIVE-EXPIRE: off, keys past their deadline go only when next looked up.
  void set_active_expire(bool on) { active_expire_ = on; }
  bool loading() const { return loading_; }
  void set_loading(bool v) {
    loading_ = v;
    for (auto& d : dbs_) d->pause_expiry(v);
  }

  // Replies.
  // The reply to the command a client is running; dropped under CLIENT REPLY OFF/SKIP.
  resp::reply_writer reply(client& c) {
    if (c.reply_off || c.reply_skip) [[unlikely]] {
      if (discarded_.capacity() > 1024 * 1024) std::string().swap(discarded_);
      discarded_.clear();
      return resp::reply_writer(discarded_, c.resp);
    }
    return resp::reply_writer(c.out, c.resp);
  }
  // Pub/sub messages and subscription notices: sent whatever CLIENT REPLY says, as in Redis.
  resp::reply_writer push(client& c) { return resp::reply_writer(c.out, c.resp); }
  // Replies an error and counts it (INFO errorstats, total_error_replies, the command's
  // failed_calls). counted = false: an error a script returns that was counted already,
  // when its command failed or was refused inside the script (Redis 7.0's
  // ERR_REPLY_FLAG_NO_STATS_UPDATE): only the command (EVAL) counts as failed.
  void add_error(client& c, std::string_view msg, bool counted = true);
  // A command a script called was refused before it ran (unknown, arity, not allowed in a
  // script or a read-only one, maxmemory, a failing AOF): the error is counted now, and
  // cmd's rejected_calls (cmd null: unknown), as Redis's scriptCall does. It does not
  // make the script's own command fail: a script may go on after redis.pcall.
  void count_script_rejection(const command_def* cmd, std::string_view msg);
  void queue_write(client& c);

  // Keys, in the current database.
  void signal_modified_key(std::string_view key);   // WATCH
  void signal_key_as_ready(std::string_view key);   // a list got elements
  // A stream at `key` of database `db` was removed or replaced: clients blocked in
  // XREADGROUP on it are answered once the command ends (from the keyspace).
  void stream_removed(int db, const std::string& key);
  void key_deleted(std::string_view key);           // a key vanished (DEL, pop to empty, ...)
  // A key's deadline passed (found on access or by the cron): DEL to the command stream,
  // WATCH and the task queues told, then removed.
  void expire_key(const std::string& key);
  // Sets a key's deadline; one in the past (outside AOF loading) deletes the key instead,
  // as Redis does. Logs the effect (PEXPIREAT, or DEL) itself. Returns false if deleted.
  bool set_key_deadline(std::string_view key, std::int64_t at_ms);
  void flush_all();
  // FLUSHDB: empties one database.
  void flush_db(int index);
  // SWAPDB: exchanges the contents of two databases. Clients keep their selected number;
  // WATCHers of keys that change are told and clients blocked on keys the swapped-in
  // contents have are served (Redis 7.0's dbSwapDatabases).
  void swap_db(int a, int b);
  // Clients blocked in database `index` on keys it holds get served (after SWAPDB, MOVE).
  void scan_ready_keys(int index);

  // Client-side caching (CLIENT TRACKING; tracking.cpp explains the whole of it).
  void tracking_on(client& c, std::uint64_t redirect, bool bcast, bool optin, bool optout, bool noloop,
                   const std::vector<std::string_view>& prefixes);
  void tracking_off(client& c);
  std::size_t tracking_clients() const { return tracking_clients_; }
  std::size_t tracking_keys() const { return tracking_table_.size(); }
  std::uint64_t tracking_items() const { return tracking_items_; }
  std::size_t tracking_prefix_count() const { return tracking_prefixes_.size(); }

  // CLIENT PAUSE (Redis 7.0's pauseClients), until `end`: commands from clients that write
  // or may replicate (every command with `all`) wait, in the order they came, and run from
  // the start once the pause ends; keys past their deadline read as gone but stay, and
  // the HTTP queues start no attempt and apply no outcome, so the dataset does not
  // change. A pause already on keeps the stricter kind and the later end.
  void pause_clients(bool all, clock::time_point end);
  // CLIENT UNPAUSE, or the pause's end: what waited goes on.
  void unpause_clients();
  // Whether clients are paused now (a pause whose end has come is ended first).
  bool clients_paused();
  // Whether a pause is on, as last ended (see clients_paused).
  bool pause_on() const { return pause_ != pause_kind::off; }
  // A json-port client stopped at a value while paused: it waits among the held clients
  // (in arrival order), and is not closed as idle meanwhile.
  void hold_json(client& c);

  // Blocking (blocking.cpp).
  void block_client(client& c, std::unique_ptr<blocked_state> b);
  void unblock_client(client& c, bool timed_out);
  // Forgets what a client waits for, without a reply (it is being closed).
  void drop_waits(client& c);
  // CLIENT KILL: the client stops waiting on keys at once (like Redis's immediate free,
  // so a push later in the turn can't hand it an element it will never receive) and its
  // connection is closed without writing more.
  void kill_client(client& c);
  void serve_blocked_clients();

  // Pub/sub (pubsub.cpp).
  std::size_t publish(std::string_view channel, std::string_view message);
  // Keyspace notifications (notify-keyspace-events), as Redis's notifyKeyspaceEvent: when
  // the class `cls` (config.hpp's notify_class) is on, `event` is published on
  // __keyspace@<db>__:<key> (class K) and `key` on __keyevent@<db>__:<event> (class E).
  // The database is the current one unless given.
  void notify(unsigned cls, std::string_view event, std::string_view key) { notify(cls, event, key, cur_db_); }
  void notify(unsigned cls, std::string_view event, std::string_view key, int db) {
    if (cfg_.notify_keyspace_events & cls) [[unlikely]] publish_key_event(event, key, db);
  }
  void publish_key_event(std::string_view event, std::string_view key, int db);
  // Lookups Redis makes for reading (lookupKeyRead) where call() does not report misses:
  // in write commands (SET's GET, GETDEL, GETEX, GETSET, the sources of the *STORE
  // commands and of COPY, the streams of XREADGROUP, XACK, XCLAIM, XAUTOCLAIM) and SCAN's
  // TYPE filter. While one lives, a missing key is a "keymiss" event.
  class read_lookups {
   public:
    explicit read_lookups(server& s, bool on = true)
        : s_(s), before_(s.report_misses_), counting_before_(s.count_reads_) {
      if (on && (s.cfg_.notify_keyspace_events & notify_key_miss)) s.report_misses_ = true;
      if (on) s.count_reads_ = true;
    }
    ~read_lookups() {
      s_.report_misses_ = before_;
      s_.count_reads_ = counting_before_;
    }
    read_lookups(const read_lookups&) = delete;
    read_lookups& operator=(const read_lookups&) = delete;

   private:
    server& s_;
    bool before_;
    bool counting_before_;
  };
  void subscribe(client& c, std::string_view channel);
  void unsubscribe(client& c, std::string_view channel, bool notify);
  void psubscribe(client& c, std::string_view pattern);
  void punsubscribe(client& c, std::string_view pattern, bool notify);
  void unsubscribe_all(client& c, bool notify);
  void punsubscribe_all(client& c, bool notify);
  // Shard channels (SSUBSCRIBE, SPUBLISH): a namespace of their own, without patterns, as
  // Redis 7.0 keeps them outside cluster mode.
  void ssubscribe(client& c, std::string_view channel);
  void sunsubscribe(client& c, std::string_view channel, bool notify);
  void sunsubscribe_all(client& c, bool notify);
  std::size_t spublish(std::string_view channel, std::string_view message);
  const std::unordered_map<std::string, std::list<client*>>& channels() const { return channels_; }
  const std::unordered_map<std::string, std::list<client*>>& shard_channels() const { return shard_channels_; }
  const std::list<std::pair<std::string, client*>>& patterns() const { return patterns_; }
  // Distinct patterns subscribed to (PUBSUB NUMPAT, INFO pubsub_patterns).
  std::size_t pattern_count() const;

  // Memory (maxmemory.cpp). used_memory() is INFO's used_memory: keys, values and client
  // buffers, counted by walking them. over_maxmemory() says whether maxmemory is set and
  // passed; it keeps an estimate between walks (see maxmemory.cpp) so the check per
  // command costs nothing while well under the limit.
  std::uint64_t used_memory();
  // used_memory in its two parts: keys and values, and client buffers (INFO's
  // used_memory_dataset and mem_clients_normal).
  struct memory_parts {
    std::uint64_t dataset = 0, clients = 0;
  };
  memory_parts used_memory_parts();
  bool over_maxmemory();
  // Whether cmd with args is EVAL/EVALSHA of a script refused over maxmemory (shebang
  // without allow-oom or no-writes): a denyoom command then.
  bool script_denies_oom(const command_def& cmd, args_t args);
  // A command that may grow memory was admitted: add its size to the estimate.
  void account_write(args_t args);
  // Ten times a second (cron), and after CONFIG SET maxmemory.
  void refresh_memory_estimate(bool force);

  // Closes a pub/sub client whose unsent output passed the limit.
  void check_output_limit(client& c);

  // MONITOR.
  void add_monitor(client& c);
  void remove_monitor(client& c);
  void feed_monitors(const client& c, args_t args);
  std::size_t monitors() const { return monitors_.size(); }

  // Shutdown was requested by a command (SHUTDOWN).
  void request_shutdown(bool save);

  // PUBLISH for the stream: reaches the mirror, not the AOF.
  void stream_publish(std::string_view channel, std::string_view message, bool sharded = false);

  // ---- Modules (module.hpp): the AOF, the Redis link, the admin server ----------------
  // Registers m (not yet registered); the server calls it, after the modules registered
  // before it, until unregister_module. `extras`: server_module::extra flags for the
  // calls made per command (only one module may rewrite the AOF).
  void register_module(server_module& m, unsigned extras = 0);
  // Forgets m; no call reaches it afterwards. Does nothing when m is not registered.
  void unregister_module(server_module& m);
  // Whether m (registered) gets before_key_write/before_swapdb calls: the AOF rewrite,
  // while it runs, copies a key's value on its first write (copy-on-write without fork).
  void want_key_writes(server_module& m, bool on);
  bool key_writes_wanted() const { return key_writers_ != 0; }
  // Before a key of database db is modified (flush: FLUSHDB, or FLUSHALL with db == -1):
  // tells the modules that want key writes.
  void before_key_write(int db, std::string_view key, bool flush = false) {
    if (key_writers_) modules_before_key_write(db, key, flush);
  }
  // Writers other than client commands (the task dispatcher, shared queues) announce each
  // key here before changing it: for the AOF rewrite, and for clients that WATCH it.
  void will_write(std::string_view key) {
    before_key_write(cur_db_, key);
    if (key_signals_wanted()) signal_modified_key(key);
  }
  // Whether a change of a key must be signalled: a client WATCHes keys of the current
  // database, or the tracking tables may name it.
  bool key_signals_wanted() const {
    return !watchers_[static_cast<std::size_t>(cur_db_)].empty() || tracking_wanted();
  }
  // The tracking tables may name a key that changes (tracking_invalidate has work).
  bool tracking_wanted() const { return !tracking_table_.empty() || !tracking_prefixes_.empty(); }
  // Non-empty: the text write commands are refused with (MISCONF while the AOF can't be
  // written). The first refusing module's text.
  std::string write_refusal() { return write_refusers_ ? modules_write_refusal() : std::string(); }
  // INFO section `name` as the modules provide it: false (body untouched) when none does.
  bool module_info(std::string_view name, std::string& body);
  // After CONFIG SET changed a setting (name in lower case): every module's on_config.
  void config_changed(const std::string& name);
  // BGREWRITEAOF: the status reply text, or an error starting with "ERR" (also when no
  // module rewrites the AOF: persistence is not available).
  std::string bgrewriteaof();
  // Shutdown's grace period: the modules stop starting requests, and how many they still
  // have in flight.
  void drain_modules();
  std::size_t modules_in_flight();

 private:
  void process_input(client& c);
  void end_request(client& c);
  void free_client(client& c);
  void after_command();
  void process_unblocked();
  bool serve_key(const std::string& key);
  void remove_from_waiters(client& c);
  // A key gone because of its deadline: removed, DEL logged, WATCH and the task queues told.
  void delete_by_deadline(std::string_view key);
  // Redis's touchAllWatchedKeysInDb: WATCHers of keys of `emptied` that exist there, or
  // in `replaced_with` (SWAPDB; -1 for a flush), see a change.
  void touch_watched_in_db(int emptied, int replaced_with);
  void build_command_table();
  // A command ran for `took` cycles, at least the smallest of the slowlog and latency
  // thresholds: the latency event, and the slowlog entry (or, for a command that
  // blocked, what it will be once the client is answered).
  void note_slow_command(client& c, const command_def& cmd, args_t args, std::uint64_t took);

  // Modules, in registration order. One unregistered while the modules are being walked
  // leaves a hole (m == nullptr), removed when the outermost walk ends.
  struct module_slot {
    server_module* m;
    unsigned extras;
    bool key_writes;
  };
  // Calls f(slot) for each registered module, in order, until f returns true. Modules
  // registered during the walk are not visited.
  template <class F>
  void walk_modules(F&& f);
  void modules_before_key_write(int db, std::string_view key, bool flush);
  std::string modules_write_refusal();
  void modules_publish(std::string_view channel, std::string_view message);
  void modules_cron();
  void modules_before_swapdb(int a, int b);
  std::vector<module_slot> modules_;
  unsigned module_walks_ = 0;
  bool module_holes_ = false;
  std::size_t key_writers_ = 0, write_refusers_ = 0, publish_observers_ = 0;

  config cfg_;
  std::vector<std::unique_ptr<keyspace>> dbs_;
  int cur_db_ = 0;
  server_stats stats_;
  command_stream stream_;
  std::unique_ptr<task_manager> tasks_;
  std::unique_ptr<script_engine> scripts_;

  static constexpr std::size_t lookup_max_len = 24;  // longer than any command name
  std::vector<const command_def*> lookup_buckets_[lookup_max_len][128];
  std::vector<const command_def*> command_list_;
  std::vector<command_def> command_storage_;
  cycle_clock cycle_clock_;
  slowlog slowlog_;
  std::unique_ptr<migrate_connections> migrate_;
  latency_monitor latency_;
  std::chrono::steady_clock::time_point cycle_clock_started_ = std::chrono::steady_clock::now();
  double usec_per_cycle_ = 0;
  // Commands that run at least this many cycles go to note_slow_command (max: neither
  // the slowlog nor the latency monitor wants any).
  std::uint64_t slow_cycles_ = ~0ull;
  std::uint64_t errors_mark_ = 0;  // total_errors when the last command started or ended
  bool uncounted_failure_ = false;  // the running command replied an error counted before

  std::unordered_map<std::uint64_t, std::unique_ptr<client>> clients_;
  std::unique_ptr<client> internal_;
  std::uint64_t next_client_id_ = 1;
  std::vector<client*> pending_writes_;
  std::vector<std::uint64_t> turn_writers_;  // clients whose writes this turn await the sinks

  // Blocking, per database: key -> FIFO of waiters; ready keys (database, key) served
  // after each command.
  std::vector<std::unordered_map<std::string, std::list<client*>, string_hash, std::equal_to<>>> waiters_;
  std::vector<std::pair<int, std::string>> ready_keys_;
  std::size_t group_waiters_ = 0;  // clients blocked in XREADGROUP (the keyspaces read it)
  std::vector<std::unordered_set<std::string, string_hash, std::equal_to<>>> ready_set_;
  std::multimap<clock::time_point, client*> block_deadlines_;
  std::vector<client*> unblocked_;
  std::size_t blocked_count_ = 0;

  // Client-side caching (tracking.cpp). The table: key -> ids of the clients that read it
  // (sorted). BCAST: prefix -> its clients, and the keys under it changed this turn, each
  // with the id of the client that changed it last (0: none, an expiry).
  struct bcast_state {
    std::set<client*> clients;
    std::map<std::string, std::uint64_t, std::less<>> keys;
  };
  std::unordered_map<std::string, std::vector<std::uint64_t>, string_hash, std::equal_to<>> tracking_table_;
  std::uint64_t tracking_items_ = 0;
  std::map<std::string, bcast_state, std::less<>> tracking_prefixes_;
  std::size_t tracking_clients_ = 0;
  // Invalidations for the client whose command runs, sent once it has replied (a null:
  // everything, after a flush): its id, and the key.
  std::vector<std::pair<std::uint64_t, std::optional<std::string>>> tracking_pending_;
  unsigned tracking_limit_rounds_ = 0;
  std::minstd_rand tracking_rng_{std::random_device{}()};
  // The client whose command runs (nested calls: scripts, EXEC, keep it), and how deep.
  client* current_client_ = nullptr;
  int call_depth_ = 0;
  // The running command of a client of its own (not a script's): a script's reads remember
  // the keys that command (EVAL, FCALL) declares, for its client.
  const command_def* caller_cmd_ = nullptr;
  args_t caller_args_{};
  // The client whose command runs at the innermost level (a script's own client inside a
  // script): the writer a BCAST NOLOOP client is compared with, as Redis's.
  client* executing_client_ = nullptr;
  // While it lives, `c` is the client whose command runs (a command, or a blocked
  // client being served); its invalidations go out when the outermost one ends.
  class acting_for {
   public:
    acting_for(server& s, client& c)
        : s_(s),
          outer_(s.current_client_),
          outer_executing_(s.executing_client_),
          outer_cmd_(s.caller_cmd_),
          outer_args_(s.caller_args_) {
      if (s_.call_depth_++ == 0) s_.current_client_ = &c;
      s_.executing_client_ = &c;
    }
    ~acting_for() {
      if (--s_.call_depth_ == 0 && !s_.tracking_pending_.empty()) s_.tracking_send_pending();
      s_.current_client_ = outer_;
      s_.executing_client_ = outer_executing_;
      s_.caller_cmd_ = outer_cmd_;
      s_.caller_args_ = outer_args_;
    }
    acting_for(const acting_for&) = delete;
    acting_for& operator=(const acting_for&) = delete;

   private:
    server& s_;
    client* outer_;
    client* outer_executing_;
    const command_def* outer_cmd_;
    args_t outer_args_;
  };
  void tracking_remember(client& caller, const command_def& cmd, args_t args);
  // Redis's trackingInvalidateKey: bcast false when the key did not change (the table's
  // limit): only the clients that read it are told.
  void tracking_invalidate(std::string_view key, bool bcast);
  void tracking_invalidate_all();  // a flush
  // Redis's sendTrackingMessage: `payload` a key, or (encoded) RESP already.
  void tracking_send(client& c, std::string_view payload, bool encoded);
  void tracking_send_pending();
  void tracking_broadcast();  // the BCAST lists of the turn (before_write)
  void tracking_limit();      // tracking-table-max-keys
  static bool is_script_command(const command_def& d);  // EVAL, EVALSHA, FCALL and their _RO forms
  bool client_subcommand(std::string_view name) const;  // CLIENT has it

  // Pub/sub.
  std::unordered_map<std::string, std::list<client*>> channels_;
  std::unordered_map<std::string, std::list<client*>> shard_channels_;
  // The subscribers of one channel get `kind` (message, smessage); returns how many.
  std::size_t deliver(const std::list<client*>& subscribers, std::string_view kind, std::string_view channel,
                      std::string_view message);
  // SUBSCRIBE/SSUBSCRIBE and UNSUBSCRIBE/SUNSUBSCRIBE of one channel, by namespace.
  void channel_subscribe(client& c, std::string_view channel, bool shard);
  void channel_unsubscribe(client& c, std::string_view channel, bool notify, bool shard);
  void channel_unsubscribe_all(client& c, bool notify, bool shard);
  std::list<std::pair<std::string, client*>> patterns_;
  std::size_t pubsub_clients_ = 0;

  // WATCH, per database: key -> clients watching it.
  std::vector<std::unordered_map<std::string, std::vector<client*>, string_hash, std::equal_to<>>> watchers_;

  std::vector<client*> monitors_;
  std::string discarded_;  // where silenced replies go

  std::chrono::system_clock::time_point start_time_ = std::chrono::system_clock::now();
  std::string run_id_;
  std::string executable_;
  std::uint64_t ops_per_sec_ = 0;
  std::uint64_t ops_sample_commands_ = 0;
  std::uint64_t net_sample_input_ = 0, net_sample_output_ = 0;
  double input_kbps_ = 0, output_kbps_ = 0;
  std::uint64_t used_memory_peak_ = 0;
  std::string replid_;
  clock::time_point ops_sample_time_ = clock::now();
  std::uint64_t dirty_ = 0;
  std::uint64_t applied_bulk_len_ = 512ull * 1024 * 1024;
  bool effects_logged_ = false;
  bool keys_signalled_ = false;
  bool loading_ = false;
  bool active_expire_ = true;
  // While a read command runs with the "m" class on: the keyspace reports lookups that
  // find nothing ("keymiss" events; see call()).
  bool report_misses_ = false;
  // While a read command runs (and in read_lookups): lookups count as keyspace hits/misses.
  bool count_reads_ = false;
  bool in_input_ = false;  // re-entrancy guard for process_unblocked()

  // CLIENT PAUSE: its kind and end, and the clients whose command waits, in arrival order.
  enum class pause_kind : std::uint8_t { off, write, all };
  pause_kind pause_ = pause_kind::off;
  clock::time_point pause_end_{};
  std::vector<client*> postponed_;
  // Whether the pause on holds this command (dispatch), and whether a command may write.
  bool held_by_pause(const client& c, const command_def& cmd, const command_def& effective, args_t args);
  bool may_replicate(const command_def& d, args_t args);
  // Runs a command the pause held, now released (process_unblocked).
  void run_released(client& c);

  // maxmemory: the last walked figure plus what admitted writes added since.
  std::uint64_t mem_estimate_ = 0;
  std::uint64_t mem_dirty_mark_ = ~0ull;     // dirty_ at the last walk
  std::uint64_t mem_limit_walked_ = 0;       // maxmemory at the last walk
  clock::time_point mem_walked_at_{};
  clock::duration mem_walk_cost_{};         // how long the last walk took

  friend void cmd_watch(server&, client&, args_t);
  friend void cmd_unwatch(server&, client&, args_t);
  friend void cmd_exec(server&, client&, args_t);
  friend void unwatch_all(server&, client&);
};

template <typename Fn>
void server::for_each_key(const command_def& cmd, args_t args, Fn&& fn) const {
  if (cmd.flags & flag_movablekeys) {
    for (auto k : command_keys(cmd, args)) fn(k);
    return;
  }
  if (cmd.first_key <= 0) return;
  const int n = static_cast<int>(args.size());
  const int last = cmd.last_key < 0 ? n + cmd.last_key : cmd.last_key;
  const int step = cmd.key_step > 0 ? cmd.key_step : 1;
  for (int i = cmd.first_key; i <= last && i < n; i += step) fn(args[static_cast<std::size_t>(i)]);
}

// Shared implementations used by several handlers and the task manager.
void unwatch_all(server& s, client& c);
// Parses a Redis timeout argument (seconds as double). Writes the error to c and
// returns false on failure. deadline is set to time_point::max() for 0.
bool parse_timeout(server& s, client& c, std::string_view arg, clock::time_point& deadline);
// A timeout in milliseconds (WAIT, CLIENT PAUSE), as Redis 7.0's getTimeoutFromObjectOrReply
// reads one: an integer, not negative; otherwise the error is replied and false returned.
bool parse_timeout_ms(server& s, client& c, std::string_view arg, long long& ms);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

}  // namespace respq::core
