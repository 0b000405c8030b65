// config: respq's settings, read like redis-server reads redis.conf.
//
// Sources, in order: an optional config file (`directive arg arg`, `#` comments, double
// or single quoted arguments with Redis's escapes), then `--directive arg ...` on the
// command line (arguments up to the next `--word`). Errors name the file and line (or
// the command-line directive) and stop the start before anything listens.
// At run time CONFIG GET (globs) and CONFIG SET reach the same table.
//
// Owner: the broker thread after start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tasks/egress.hpp"
#include "tasks/host_health.hpp"
#include "tasks/queue_options.hpp"
#include "tasks/tls_trust.hpp"

namespace respq::core {

// Options of one HTTP queue (`http-queue <name> [option value ...]`): the task model's.
using queue_options = tasks::queue_options;

enum class fsync_policy { always, everysec, no };

// One class of `client-output-buffer-limit <class> <hard> <soft> <soft-seconds>`: a
// client whose unsent replies reach `hard` bytes, or stay at `soft` bytes or more for
// longer than `soft_seconds`, is closed. 0 = no limit.
struct output_limit {
  std::uint64_t hard = 0, soft = 0;
  unsigned soft_seconds = 0;
};

// Keyspace notifications (notify-keyspace-events): Redis's classes of events, by its bits.
enum notify_class : unsigned {
  notify_keyspace = 1u << 0,   // K: __keyspace@<db>__:<key> carries the event
  notify_keyevent = 1u << 1,   // E: __keyevent@<db>__:<event> carries the key
  notify_generic = 1u << 2,    // g: del, expire, rename, ...
  notify_string = 1u << 3,     // $
  notify_list = 1u << 4,       // l
  notify_set = 1u << 5,        // s
  notify_hash = 1u << 6,       // h
  notify_zset = 1u << 7,       // z
  notify_expired = 1u << 8,    // x
  notify_evicted = 1u << 9,    // e (respq evicts nothing: maxmemory-policy is noeviction)
  notify_stream = 1u << 10,    // t
  notify_key_miss = 1u << 11,  // m (not part of A)
  notify_module = 1u << 13,    // d (respq has no modules)
  notify_new = 1u << 14,       // n (not part of A)
  notify_all = notify_generic | notify_string | notify_list | notify_set | notify_hash | notify_zset |
               notify_expired | notify_evicted | notify_stream | notify_module,
};
// notify-keyspace-events' letters as classes, as Redis reads them; nullopt when a letter
// names none.
std::optional<unsigned> parse_notify_classes(std::string_view letters);
// The classes as Redis writes them back (CONFIG GET): "A" for all of A's, then K, E, m.
std::string notify_classes_text(unsigned classes);
// A percentile as Redis writes it (latency-tracking-info-percentiles, INFO latencystats):
// "%f" with its trailing zeros and point dropped ("50", "99.9", "33.333333").
std::string percentile_text(double p);

struct config {
  int port = 6380;
  std::vector<std::string> bind{"127.0.0.1"};
  std::string requirepass;
  unsigned maxclients = 10000;
  int databases = 16;  // numbered databases 0..databases-1 (fixed at start, as in Redis)
  unsigned timeout = 0;                  // idle seconds, 0 = never
  unsigned tcp_keepalive = 300;
  // Microseconds the event loop keeps polling (instead of sleeping) once it runs out of
  // events, while events have been arriving closer together than that. 0 = always sleep.
  unsigned busy_poll = 50;
  std::uint64_t proto_max_bulk_len = 512ull * 1024 * 1024;
  // A HyperLogLog stays in its sparse form up to this many bytes (Redis's default).
  std::uint64_t hll_sparse_max_bytes = 3000;
  std::uint64_t client_query_buffer_limit = 1024ull * 1024 * 1024;
  // Redis's defaults are normal 0 0 0 (unlimited), replica 256mb 64mb 60, pubsub 32mb
  // 8mb 60. respq limits normal clients too: one that pipelines and never reads would
  // otherwise grow the server until the kernel kills it.
  output_limit obuf_normal{256ull * 1024 * 1024, 64ull * 1024 * 1024, 60};
  output_limit obuf_replica{256ull * 1024 * 1024, 64ull * 1024 * 1024, 60};  // accepted, no replicas
  output_limit obuf_pubsub{32ull * 1024 * 1024, 8ull * 1024 * 1024, 60};
  // maxmemory: bytes of data and client buffers past which denyoom commands get -OOM
  // (policy noeviction, the only one). 0 = no limit.
  std::uint64_t maxmemory = 0;
  // The seed's raw JSON client: a TCP port taking JSON tasks back to back (0 = off),
  // and the queue they are pushed onto.
  int json_port = 0;
  std::string json_queue = "tasks";
  // The admin HTTP server (admin/): /metrics and the JSON API. 0 = off. Its own bind
  // addresses (loopback by default, whatever `bind` says); readonly: GET only.
  int admin_port = 0;
  std::vector<std::string> admin_bind{"127.0.0.1"};
  bool admin_readonly = false;
  std::string dir = ".";
  std::string logfile;                   // empty: standard output
  std::string loglevel = "notice";
  bool daemonize = false;
  std::string pidfile;
  bool protected_mode = true;

  // HTTP queues, by name. "tasks" exists unless removed with `http-queue tasks off`.
  std::map<std::string, queue_options, std::less<>> queues{{"tasks", queue_options{}}};
  // Egress policy (tasks/egress.hpp): the level queues use unless they set their own
  // (`http-queue <q> egress ...`), and the allow and deny lists every queue shares.
  tasks::egress_level egress_policy = tasks::egress_level::metadata;
  std::vector<tasks::cidr_block> egress_allow, egress_deny;
  // Outgoing TLS trust (tasks/tls_trust.hpp): CAs every https attempt trusts unless its
  // queue names its own ca-file; both empty: the system store.
  std::string tls_ca_cert_file, tls_ca_cert_dir;
  // Outgoing https offers HTTP/2 (ALPN h2, then http/1.1); no: HTTP/1.1 only.
  bool http2 = true;
  // The RESP port over TLS, as Redis 6+ (0 = off; then port 0 means TLS only). The
  // certificate and key serve the admin port's https too. tls-auth-clients: yes (a client
  // certificate signed by tls-ca-cert-file/dir is required), optional (verified when
  // given), no. Fixed at start.
  int tls_port = 0;
  std::string tls_cert_file, tls_key_file;
  std::string tls_auth_clients = "yes";
  double shutdown_grace = 5;             // seconds in-flight requests get on shutdown
  unsigned task_history_max_len = 1000;  // finished tasks kept per queue for TASK GET
  double replay_rate = 100;              // dead letters QUEUE REPLAY moves back per second
  // Destination hosts (tasks/host_health.hpp): host-failures-to-open, host-cooldown; and
  // how many hosts INFO hosts and /metrics name (host-info-max; the rest are "other").
  tasks::host_limits host_limits;
  unsigned host_info_max = 20;
  long long busy_reply_threshold = 5000;  // ms a script may run before it is stopped (if it wrote nothing)
  // SLOWLOG: commands taking at least this many microseconds are logged (-1: none, 0:
  // every one), the newest slowlog_max_len kept.
  long long slowlog_log_slower_than = 10000;
  std::uint64_t slowlog_max_len = 128;
  // LATENCY: events of at least this many milliseconds are recorded (0: off).
  long long latency_monitor_threshold = 0;
  // LATENCY HISTOGRAM: per-command duration histograms.
  bool latency_tracking = true;
  // INFO latencystats: the percentiles shown for each command, in order.
  std::vector<double> latency_tracking_info_percentiles{50, 99, 99.9};
  // CLIENT TRACKING: the most keys the tracking table remembers (0: no limit); past it,
  // keys chosen at random are invalidated as if they had changed (Redis's setting).
  std::uint64_t tracking_table_max_keys = 1000000;
  // Keyspace notifications: the classes on (notify_class bits; 0: none, as Redis).
  unsigned notify_keyspace_events = 0;
  // Streams: a node (block of entries) takes new entries until it holds this many bytes
  // or this many entries, deleted ones included (0: no limit), as Redis's settings of the
  // same names. Approximate trimming drops whole nodes.
  std::uint64_t stream_node_max_bytes = 4096;
  long long stream_node_max_entries = 100;
  // Hashes, sets and sorted sets: how large one may grow in its small form (Redis's
  // listpack and intset; OBJECT ENCODING, DUMP and the order of a small hash follow it),
  // as Redis's settings of the same names (encoding_limits.hpp).
  long long hash_max_listpack_entries = 512;
  std::uint64_t hash_max_listpack_value = 64;
  long long set_max_intset_entries = 512;
  long long zset_max_listpack_entries = 128;
  std::uint64_t zset_max_listpack_value = 64;

  // Persistence.
  bool appendonly = false;
  fsync_policy appendfsync = fsync_policy::everysec;
  std::string appendfilename = "appendonly.aof";
  unsigned auto_aof_rewrite_percentage = 100;
  std::uint64_t auto_aof_rewrite_min_size = 64ull * 1024 * 1024;
  bool aof_load_truncated = true;

  // Redis link.
  std::string upstream_host;
  int upstream_port = 0;
  std::string upstream_password;
  int upstream_db = 0;
  bool mirror = false;
  std::vector<std::string> mirror_keys{"*"};
  std::uint64_t mirror_backlog_size = 64ull * 1024 * 1024;
  std::string node_id;                   // shared queues: this sidecar's name
  // Shared queues: a sidecar whose heartbeat (respq:node:<node-id>) is older than this
  // many seconds is dead, and the others move its processing lists back to the queue.
  double node_timeout = 15;
  // Sentinel: where to ask for the upstream master (host, port pairs) and its name there.
  std::vector<std::pair<std::string, int>> upstream_sentinels;
  std::string upstream_master_name = "mymaster";
  // Spool forwarding waits for this many replicas (WAIT) before dropping a batch locally.
  int upstream_wait_replicas = 0;
  double upstream_wait_timeout = 1;  // seconds WAIT may take; fewer replicas: resent later

  std::string config_file;               // absolute path of the file read, if any

  // Redis settings respq accepts and shows but does not act on (inert_settings), by
  // primary name: those given a value, and the names given, in order (logged at start).
  std::map<std::string, std::string, std::less<>> inert;
  std::vector<std::string> inert_given;
};

// Parses "512mb", "1gb", "100" the way Redis does (k=1000, kb=1024, ...).
std::optional<std::uint64_t> parse_memory(std::string_view s);
// Splits a config line into arguments like Redis's sdssplitargs; nullopt on unbalanced quotes.
std::optional<std::vector<std::string>> split_args(std::string_view line);

// A setting CONFIG GET/SET and the start-up parser know.
struct config_entry {
  const char* name;
  bool runtime;  // CONFIG SET allowed
  std::function<std::string(const config&)> get;
  // Returns an error text, or empty on success.
  std::function<std::string(config&, const std::vector<std::string>&)> set;
};

const std::vector<config_entry>& config_table();
// Redis settings with nothing to act on in respq (snapshots, a replica's settings, cluster
// mode, allocator and eviction tuning, process cosmetics): a redis.conf that sets them
// loads, CONFIG GET shows them (Redis 7.0's default until set), CONFIG SET and REWRITE
// keep them, and the server logs at start which ones it was given.
struct inert_setting {
  const char* name;
  const char* fallback;  // Redis 7.0's default
  char kind;             // b yes/no, i integer, m memory, s text, l words, e one of `choices`
  bool runtime;          // CONFIG SET allowed
  long long lo = 0, hi = LLONG_MAX;  // i: Redis's range
  const char* choices = nullptr;     // e: the values Redis takes, separated by ", "
};
const std::vector<inert_setting>& inert_settings();
// Its kind, or 0 when `name` is not one of them.
char inert_kind(std::string_view name);
// Read-only values CONFIG GET answers for Redis settings respq does not have, so tools
// that ask (redis-benchmark asks for "save" and "appendonly") get Redis's answers.
const std::vector<std::pair<std::string, std::string>>& compat_config_values();
// The setting an alias names (lua-time-limit: busy-reply-threshold; the -ziplist- names of
// the encoding settings: their -listpack- ones), or the name itself.
std::string_view config_primary_name(std::string_view name);

// Applies one directive (name + args). Returns an error text or empty.
std::string apply_directive(config& c, const std::string& name, const std::vector<std::string>& args);

// Applies the text of a config file, line by line (`directive arg ...`, blank lines and
// `#` comments skipped). Returns an error message naming the line, or empty; directives
// before the bad line stay applied.
std::string load_config_text(config& c, std::string_view text);
// Loads the command line (argv[1..]): optional config file first, then --directives.
// Returns an error message (with file:line or the directive) or empty.
std::string load_config(config& c, int argc, char** argv);

// Applies `http-queue <name> [option value ...]` (also used by CONFIG SET).
std::string apply_queue_directive(config& c, const std::vector<std::string>& args);
// "name concurrency 64 ... shared no [egress public] [signing-secret whsec_abcd...]": the
// signing secrets redacted (signing_secret::redacted), so it is safe for CONFIG GET and logs.
// CONFIG REWRITE alone writes them whole (`secrets_in_full`), as Redis writes requirepass:
// the file must read back into the same queue.
std::string format_queue(const std::string& name, const queue_options& q, bool secrets_in_full = false);

// The egress rules a queue's attempts and callbacks obey: its own level or egress-policy,
// with the global allow and deny lists. A fresh immutable value for the delivery engine.
std::shared_ptr<const tasks::egress_rules> egress_rules_for(const config& c, const queue_options& q);
// What a queue's https attempts and callbacks trust and present: its ca-file or the global
// tls-ca-cert-file/dir, and its client certificate. A fresh immutable value.
std::shared_ptr<const tasks::tls_trust> tls_trust_for(const config& c, const queue_options& q);
// CONFIG REWRITE (config_rewrite.cpp): `old_text` (the config file as it is) rewritten
// with the running configuration, by Redis's rules: comments and unknown lines kept in
// place, known directives updated where they stand, new ones appended after a
// "# Generated by CONFIG REWRITE" line, defaults not written unless already there.
std::string rewrite_config_text(const config& running, std::string_view old_text);
// Rewrites the file at `path` atomically (temporary file, fsync, rename, directory
// fsync). Returns 0 or an errno value.
int rewrite_config_file(const config& running, const std::string& path);

// The name this server gives itself in outcomes and to the upstream Redis: node-id, or
// <hostname>:<port> when none is set.
std::string node_name(const config& c);

}  // namespace respq::core
