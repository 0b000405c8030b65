// config: directive table, file and command-line parsing. See config.hpp.
#include "broker/core/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>

#include "broker/core/encoding_limits.hpp"
#include "broker/core/version.hpp"
#include "resp/ascii.hpp"
#include "tasks/host_health.hpp"

namespace respq::core {

namespace {

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Redis's string2ll, as its integer settings are read: no sign but a leading '-', no
// leading zero, no "-0".
bool parse_ll(std::string_view s, long long& out) {
  return string2ll(s, out);
}

bool parse_double(std::string_view s, double& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

std::string yesno(bool b) { return b ? "yes" : "no"; }

std::string parse_bool(std::string_view v, bool& out) {
  std::string l = lower(std::string(v));
  if (l == "yes") out = true;
  else if (l == "no") out = false;
  else return "argument must be 'yes' or 'no'";
  return {};
}

std::string fmt_double(double d) {
  std::ostringstream o;
  o << d;
  // Six digits, or as few more as read back as the same value (CONFIG REWRITE).
  for (int digits = 7; digits <= 17 && std::strtod(o.str().c_str(), nullptr) != d; ++digits) {
    o.str("");
    o.precision(digits);
    o << d;
  }
  return o.str();
}

template <typename T>
std::string set_uint(T& field, const std::vector<std::string>& a, long long lo, long long hi) {
  long long v;
  if (a.size() != 1) return "wrong number of arguments";
  if (!parse_ll(a[0], v)) return "argument couldn't be parsed into an integer";
  if (v < lo || v > hi) return "argument must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " inclusive";
  field = static_cast<T>(v);
  return {};
}

// A memory value of `lo` to `hi` bytes (Redis's range for most of them: 0 to LLONG_MAX),
// refused outside with Redis's range message.
std::string set_mem(std::uint64_t& field, const std::vector<std::string>& a, std::uint64_t lo = 0,
                    std::uint64_t hi = static_cast<std::uint64_t>(LLONG_MAX)) {
  if (a.size() != 1) return "wrong number of arguments";
  auto v = parse_memory(a[0]);
  if (!v) return "argument must be a memory value";
  if (*v < lo || *v > hi)
    return "argument must be between " + std::to_string(lo) + " and " + std::to_string(hi) + " inclusive";
  field = *v;
  return {};
}

std::string set_str(std::string& field, const std::vector<std::string>& a) {
  if (a.size() != 1) return "wrong number of arguments";
  field = a[0];
  return {};
}

// One or more words.
std::string set_list(std::vector<std::string>& field, const std::vector<std::string>& a) {
  if (a.empty()) return "wrong number of arguments";
  field = a;
  return {};
}

// One non-empty word; `refusal` otherwise.
std::string set_name(std::string& field, const std::vector<std::string>& a, const char* refusal) {
  if (a.size() != 1 || a[0].empty()) return refusal;
  field = a[0];
  return {};
}

std::string set_bool(bool& field, const std::vector<std::string>& a) {
  if (a.size() != 1) return "wrong number of arguments";
  return parse_bool(a[0], field);
}

// A number of `unit` between lo and hi, inclusive ("argument must be a number of seconds
// between 0.5 and 86400" otherwise).
std::string set_double(double& field, const std::vector<std::string>& a, double lo, double hi, const char* unit) {
  double v;
  if (a.size() != 1 || !parse_double(a[0], v) || v < lo || v > hi) {
    auto bound = [](double d) {
      const auto whole = static_cast<long long>(d);
      return d == static_cast<double>(whole) ? std::to_string(whole) : fmt_double(d);
    };
    return std::string("argument must be a number of ") + unit + " between " + bound(lo) + " and " + bound(hi);
  }
  field = v;
  return {};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ' ';
    out += s;
  }
  return out;
}

std::string join_blocks(const std::vector<tasks::cidr_block>& v) {
  std::string out;
  for (const auto& b : v) {
    if (!out.empty()) out += ' ';
    out += b.text();
  }
  return out;
}

// `egress-allow 10.0.0.0/8 fd00::/8 ...` replaces the list; no argument, or one empty
// string (CONFIG SET egress-allow ""), empties it. CONFIG SET passes the list as one
// string: it is split at spaces.
std::string set_blocks(std::vector<tasks::cidr_block>& field, const std::vector<std::string>& a) {
  std::vector<std::string> words;
  for (const auto& arg : a) {
    std::istringstream in(arg);
    for (std::string w; in >> w;) words.push_back(w);
  }
  std::vector<tasks::cidr_block> out;
  for (const auto& w : words) {
    auto b = tasks::parse_cidr(w);
    if (auto* err = std::get_if<std::string>(&b)) return *err;
    out.push_back(std::get<tasks::cidr_block>(b));
  }
  field = std::move(out);
  return {};
}

// The words of a setting that takes several: CONFIG SET passes them as one string, split
// like a config line; a config file's line comes split already. nullopt: unbalanced quotes.
std::optional<std::vector<std::string>> set_words(const std::vector<std::string>& a) {
  if (a.size() != 1) return a;
  return split_args(a[0]);
}

std::vector<config_entry> make_table() {
  std::vector<config_entry> t;
  t.push_back({"port", false, [](const config& c) { return std::to_string(c.port); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.port, a, 0, 65535); }});
  t.push_back({"bind", false, [](const config& c) { return join(c.bind); },
               [](config& c, const std::vector<std::string>& a) { return set_list(c.bind, a); }});
  t.push_back({"requirepass", true, [](const config& c) { return c.requirepass; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.requirepass, a); }});
  t.push_back({"databases", false, [](const config& c) { return std::to_string(c.databases); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.databases, a, 1, 1000000); }});
  t.push_back({"maxclients", true, [](const config& c) { return std::to_string(c.maxclients); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.maxclients, a, 1, 1000000); }});
  t.push_back({"timeout", true, [](const config& c) { return std::to_string(c.timeout); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.timeout, a, 0, 2147483647); }});
  t.push_back({"tcp-keepalive", true, [](const config& c) { return std::to_string(c.tcp_keepalive); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.tcp_keepalive, a, 0, 2147483647); }});
  t.push_back({"busy-poll", true, [](const config& c) { return std::to_string(c.busy_poll); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.busy_poll, a, 0, 10000); }});
  t.push_back({"proto-max-bulk-len", true, [](const config& c) { return std::to_string(c.proto_max_bulk_len); },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 std::uint64_t v = 0;
                 if (auto e = set_mem(v, a, 1024 * 1024); !e.empty()) return e;
                 // List elements are stored with 32-bit lengths.
                 if (v > 4095ull * 1024 * 1024) return "argument must be a memory value of at most 4095mb";
                 c.proto_max_bulk_len = v;
                 return {};
               }});
  t.push_back({"hll-sparse-max-bytes", true, [](const config& c) { return std::to_string(c.hll_sparse_max_bytes); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_mem(c.hll_sparse_max_bytes, a);
               }});
  t.push_back({"client-query-buffer-limit", true,
               [](const config& c) { return std::to_string(c.client_query_buffer_limit); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_mem(c.client_query_buffer_limit, a, 1024 * 1024);
               }});
  t.push_back({"client-output-buffer-limit", true,
               [](const config& c) {
                 auto one = [](const char* cls, const output_limit& l) {
                   return std::string(cls) + " " + std::to_string(l.hard) + " " + std::to_string(l.soft) + " " +
                          std::to_string(l.soft_seconds);
                 };
                 return one("normal", c.obuf_normal) + " " + one("slave", c.obuf_replica) + " " +
                        one("pubsub", c.obuf_pubsub);
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 // CONFIG SET passes one string with one or more classes.
                 auto words = set_words(a);
                 if (!words) return "unbalanced quotes";
                 const std::vector<std::string>& args = *words;
                 if (args.empty() || args.size() % 4 != 0) return "Wrong number of arguments in buffer limit configuration.";
                 config next = c;  // all classes or none
                 for (std::size_t i = 0; i < args.size(); i += 4) {
                   const std::string cls = lower(args[i]);
                   output_limit* l = cls == "normal"                     ? &next.obuf_normal
                                     : cls == "slave" || cls == "replica" ? &next.obuf_replica
                                     : cls == "pubsub"                   ? &next.obuf_pubsub
                                                                         : nullptr;
                   if (!l) return "Invalid client class specified in buffer limit configuration.";
                   auto hard = parse_memory(args[i + 1]), soft = parse_memory(args[i + 2]);
                   // The seconds as Redis reads them: strtoll into an int, the whole word.
                   const char* text = args[i + 3].c_str();
                   char* end = nullptr;
                   const int secs = static_cast<int>(std::strtoll(text, &end, 10));
                   if (!hard || !soft || *end != '\0' || secs < 0)
                     return "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
                   *l = output_limit{*hard, *soft, static_cast<unsigned>(secs)};
                 }
                 c.obuf_normal = next.obuf_normal;
                 c.obuf_replica = next.obuf_replica;
                 c.obuf_pubsub = next.obuf_pubsub;
                 return {};
               }});
  t.push_back({"maxmemory", true, [](const config& c) { return std::to_string(c.maxmemory); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_mem(c.maxmemory, a, 0, std::numeric_limits<std::uint64_t>::max());  // Redis's range
               }});
  t.push_back({"maxmemory-policy", true, [](const config&) { return std::string("noeviction"); },
               [](config&, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 const std::string l = lower(a[0]);
                 if (l == "noeviction") return {};
                 static const char* redis_policies[] = {"volatile-lru", "volatile-lfu", "volatile-random",
                                                        "volatile-ttl", "allkeys-lru", "allkeys-lfu",
                                                        "allkeys-random"};
                 for (const char* p : redis_policies)
                   if (l == p) return "respq supports only maxmemory-policy noeviction: its keys are tasks, never evicted";
                 return "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, "
                        "volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";
               }});
  t.push_back({"json-port", false, [](const config& c) { return std::to_string(c.json_port); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.json_port, a, 0, 65535); }});
  t.push_back({"json-queue", true, [](const config& c) { return c.json_queue; },
               [](config& c, const std::vector<std::string>& a) { return set_name(c.json_queue, a, "json-queue needs a queue name"); }});
  t.push_back({"admin-port", false, [](const config& c) { return std::to_string(c.admin_port); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.admin_port, a, 0, 65535); }});
  t.push_back({"admin-bind", false, [](const config& c) { return join(c.admin_bind); },
               [](config& c, const std::vector<std::string>& a) { return set_list(c.admin_bind, a); }});
  t.push_back({"admin-readonly", true, [](const config& c) { return std::string(c.admin_readonly ? "yes" : "no"); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.admin_readonly, a); }});
  t.push_back({"dir", false, [](const config& c) { return c.dir; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.dir, a); }});
  t.push_back({"logfile", false, [](const config& c) { return c.logfile; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.logfile, a); }});
  t.push_back({"loglevel", true, [](const config& c) { return c.loglevel; },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 std::string l = lower(a[0]);
                 if (l != "debug" && l != "verbose" && l != "notice" && l != "warning" && l != "nothing")
                   return "argument(s) must be one of the following: debug, verbose, notice, warning, nothing";
                 c.loglevel = l;
                 return {};
               }});
  t.push_back({"daemonize", false, [](const config& c) { return yesno(c.daemonize); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.daemonize, a); }});
  t.push_back({"pidfile", false, [](const config& c) { return c.pidfile; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.pidfile, a); }});
  t.push_back({"protected-mode", true, [](const config& c) { return yesno(c.protected_mode); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.protected_mode, a); }});
  t.push_back({"http-queue", true,
               [](const config& c) {
                 std::string out;
                 for (const auto& [name, q] : c.queues) {
                   if (!out.empty()) out += ", ";
                   out += format_queue(name, q);
                 }
                 return out;
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 auto words = set_words(a);
                 if (!words) return "unbalanced quotes";
                 return apply_queue_directive(c, *words);
               }});
  t.push_back({"egress-policy", true, [](const config& c) { return std::string(tasks::egress_level_name(c.egress_policy)); },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 auto l = a.size() == 1 ? tasks::parse_egress_level(a[0]) : std::nullopt;
                 if (!l) return "argument(s) must be one of the following: metadata, public, any";
                 c.egress_policy = *l;
                 return {};
               }});
  t.push_back({"egress-allow", true, [](const config& c) { return join_blocks(c.egress_allow); },
               [](config& c, const std::vector<std::string>& a) { return set_blocks(c.egress_allow, a); }});
  t.push_back({"egress-deny", true, [](const config& c) { return join_blocks(c.egress_deny); },
               [](config& c, const std::vector<std::string>& a) { return set_blocks(c.egress_deny, a); }});
  // Outgoing TLS: checked when set (a file that is not there stops the start, or
  // fails the CONFIG SET); "" clears.
  t.push_back({"tls-ca-cert-file", true, [](const config& c) { return c.tls_ca_cert_file; },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 if (!a[0].empty())
                   if (auto err = tasks::check_ca_file(a[0]); !err.empty()) return err;
                 c.tls_ca_cert_file = a[0];
                 return {};
               }});
  t.push_back({"tls-ca-cert-dir", true, [](const config& c) { return c.tls_ca_cert_dir; },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 if (!a[0].empty())
                   if (auto err = tasks::check_ca_dir(a[0]); !err.empty()) return err;
                 c.tls_ca_cert_dir = a[0];
                 return {};
               }});
  t.push_back({"http2", true, [](const config& c) { return yesno(c.http2); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.http2, a); }});
  t.push_back({"tls-port", false, [](const config& c) { return std::to_string(c.tls_port); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.tls_port, a, 0, 65535); }});
  t.push_back({"tls-cert-file", false, [](const config& c) { return c.tls_cert_file; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.tls_cert_file, a); }});
  t.push_back({"tls-key-file", false, [](const config& c) { return c.tls_key_file; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.tls_key_file, a); }});
  t.push_back({"tls-auth-clients", false, [](const config& c) { return c.tls_auth_clients; },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 const std::string v = a.size() == 1 ? lower(a[0]) : std::string();
                 if (v != "yes" && v != "no" && v != "optional")
                   return "argument(s) must be one of the following: no, yes, optional";
                 c.tls_auth_clients = v;
                 return {};
               }});
  t.push_back({"shutdown-grace", true, [](const config& c) { return fmt_double(c.shutdown_grace); },
               [](config& c, const std::vector<std::string>& a) { return set_double(c.shutdown_grace, a, 0, 3600, "seconds"); }});
  t.push_back({"task-history-max-len", true, [](const config& c) { return std::to_string(c.task_history_max_len); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.task_history_max_len, a, 0, 10000000); }});
  t.push_back({"replay-rate", true, [](const config& c) { return fmt_double(c.replay_rate); },
               [](config& c, const std::vector<std::string>& a) { return set_double(c.replay_rate, a, 1, 1e7, "dead letters per second"); }});
  t.push_back({"host-failures-to-open", true, [](const config& c) { return std::to_string(c.host_limits.failures_to_open); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.host_limits.failures_to_open, a, 0, 1000000);
               }});
  t.push_back({"host-cooldown", true, [](const config& c) { return fmt_double(c.host_limits.cooldown); },
               [](config& c, const std::vector<std::string>& a) { return set_double(c.host_limits.cooldown, a, 0.01, 86400, "seconds"); }});
  t.push_back({"host-info-max", true, [](const config& c) { return std::to_string(c.host_info_max); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.host_info_max, a, 1, 10000); }});
  // busy-reply-threshold, and its old name lua-time-limit.
  for (const char* name : {"busy-reply-threshold", "lua-time-limit"})
    t.push_back({name, true, [](const config& c) { return std::to_string(c.busy_reply_threshold); },
                 [](config& c, const std::vector<std::string>& a) -> std::string {
                   double v;
                   if (a.size() != 1 || !parse_double(a[0], v) || v < 0 || v > 1e9)
                     return "argument must be a number of milliseconds";
                   c.busy_reply_threshold = static_cast<long long>(v);
                   return {};
                 }});
  t.push_back({"slowlog-log-slower-than", true, [](const config& c) { return std::to_string(c.slowlog_log_slower_than); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.slowlog_log_slower_than, a, -1, LLONG_MAX);
               }});
  t.push_back({"slowlog-max-len", true, [](const config& c) { return std::to_string(c.slowlog_max_len); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.slowlog_max_len, a, 0, LLONG_MAX); }});
  t.push_back({"latency-monitor-threshold", true,
               [](const config& c) { return std::to_string(c.latency_monitor_threshold); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.latency_monitor_threshold, a, 0, LLONG_MAX);
               }});
  t.push_back({"stream-node-max-bytes", true, [](const config& c) { return std::to_string(c.stream_node_max_bytes); },
               [](config& c, const std::vector<std::string>& a) { return set_mem(c.stream_node_max_bytes, a); }});
  t.push_back({"stream-node-max-entries", true, [](const config& c) { return std::to_string(c.stream_node_max_entries); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.stream_node_max_entries, a, 0, LLONG_MAX);
               }});
  // Redis's encoding settings, each also under its older -ziplist- name (an alias: CONFIG
  // REWRITE writes the first name).
  for (const auto& [name, alias, field] :
       {std::tuple{"hash-max-listpack-entries", "hash-max-ziplist-entries", &config::hash_max_listpack_entries},
        std::tuple{"set-max-intset-entries", "", &config::set_max_intset_entries},
        std::tuple{"zset-max-listpack-entries", "zset-max-ziplist-entries", &config::zset_max_listpack_entries}}) {
    for (const char* n : {name, alias}) {
      if (!*n) continue;
      t.push_back({n, true, [field](const config& c) { return std::to_string(c.*field); },
                   [field](config& c, const std::vector<std::string>& a) {
                     return set_uint(c.*field, a, 0, LONG_MAX);
                   }});
    }
  }
  for (const auto& [name, alias, field] :
       {std::tuple{"hash-max-listpack-value", "hash-max-ziplist-value", &config::hash_max_listpack_value},
        std::tuple{"zset-max-listpack-value", "zset-max-ziplist-value", &config::zset_max_listpack_value}}) {
    for (const char* n : {name, alias}) {
      t.push_back({n, true, [field](const config& c) { return std::to_string(c.*field); },
                   [field](config& c, const std::vector<std::string>& a) { return set_mem(c.*field, a); }});
    }
  }
  t.push_back({"tracking-table-max-keys", true, [](const config& c) { return std::to_string(c.tracking_table_max_keys); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.tracking_table_max_keys, a, 0, LONG_MAX);
               }});
  t.push_back({"latency-tracking", true, [](const config& c) { return yesno(c.latency_tracking); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.latency_tracking, a); }});
  t.push_back({"latency-tracking-info-percentiles", true,
               [](const config& c) {
                 std::string out;
                 for (double p : c.latency_tracking_info_percentiles) {
                   if (!out.empty()) out += ' ';
                   out += percentile_text(p);
                 }
                 return out;
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 // As Redis: CONFIG SET's one string is split at every single space (two in a
                 // row leave an empty, invalid word) and "" is no percentile at all; a config
                 // file's line comes split already.
                 std::vector<std::string> words;
                 if (a.size() != 1) words = a;
                 else if (!a[0].empty())
                   for (std::size_t from = 0;;) {
                     const std::size_t sp = a[0].find(' ', from);
                     words.push_back(a[0].substr(from, sp == std::string::npos ? std::string::npos : sp - from));
                     if (sp == std::string::npos) break;
                     from = sp + 1;
                   }
                 std::vector<double> out;
                 for (const auto& w : words) {
                   // Redis's string2d: strtod over the whole word (hex and inf read too), not NaN.
                   char* end = nullptr;
                   errno = 0;
                   const double v = std::strtod(w.c_str(), &end);
                   if (w.empty() || std::isspace(static_cast<unsigned char>(w[0])) || end != w.c_str() + w.size() ||
                       errno == ERANGE || std::isnan(v))
                     return "Invalid latency-tracking-info-percentiles parameters";
                   if (v < 0 || v > 100) return "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]";
                   out.push_back(v);
                 }
                 c.latency_tracking_info_percentiles = std::move(out);
                 return {};
               }});
  t.push_back({"notify-keyspace-events", true, [](const config& c) { return notify_classes_text(c.notify_keyspace_events); },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 const auto classes = parse_notify_classes(a[0]);
                 if (!classes) return "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
                 c.notify_keyspace_events = *classes;
                 return {};
               }});
  t.push_back({"appendonly", true, [](const config& c) { return yesno(c.appendonly); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.appendonly, a); }});
  t.push_back({"appendfsync", true,
               [](const config& c) -> std::string {
                 switch (c.appendfsync) {
                   case fsync_policy::always: return "always";
                   case fsync_policy::everysec: return "everysec";
                   case fsync_policy::no: return "no";
                 }
                 return "everysec";
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 std::string l = lower(a[0]);
                 if (l == "always") c.appendfsync = fsync_policy::always;
                 else if (l == "everysec") c.appendfsync = fsync_policy::everysec;
                 else if (l == "no") c.appendfsync = fsync_policy::no;
                 else return "argument(s) must be one of the following: always, everysec, no";
                 return {};
               }});
  t.push_back({"appendfilename", false, [](const config& c) { return c.appendfilename; },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 1) return "wrong number of arguments";
                 if (a[0].empty() || a[0].find('/') != std::string::npos) return "appendfilename can't be a path, just a filename";
                 c.appendfilename = a[0];
                 return {};
               }});
  t.push_back({"auto-aof-rewrite-percentage", true,
               [](const config& c) { return std::to_string(c.auto_aof_rewrite_percentage); },
               [](config& c, const std::vector<std::string>& a) {
                 return set_uint(c.auto_aof_rewrite_percentage, a, 0, 2147483647);
               }});
  t.push_back({"auto-aof-rewrite-min-size", true,
               [](const config& c) { return std::to_string(c.auto_aof_rewrite_min_size); },
               [](config& c, const std::vector<std::string>& a) { return set_mem(c.auto_aof_rewrite_min_size, a); }});
  t.push_back({"aof-load-truncated", true, [](const config& c) { return yesno(c.aof_load_truncated); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.aof_load_truncated, a); }});
  t.push_back({"upstream", false,
               [](const config& c) {
                 return c.upstream_host.empty() ? std::string() : c.upstream_host + " " + std::to_string(c.upstream_port);
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.size() != 2) return "wrong number of arguments (upstream <host> <port>)";
                 long long p;
                 if (!parse_ll(a[1], p) || p < 1 || p > 65535) return "invalid port";
                 c.upstream_host = a[0];
                 c.upstream_port = static_cast<int>(p);
                 return {};
               }});
  t.push_back({"upstream-password", false, [](const config& c) { return c.upstream_password; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.upstream_password, a); }});
  t.push_back({"upstream-db", false, [](const config& c) { return std::to_string(c.upstream_db); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.upstream_db, a, 0, 1000000); }});
  t.push_back({"mirror", false, [](const config& c) { return yesno(c.mirror); },
               [](config& c, const std::vector<std::string>& a) { return set_bool(c.mirror, a); }});
  t.push_back({"mirror-keys", false, [](const config& c) { return join(c.mirror_keys); },
               [](config& c, const std::vector<std::string>& a) { return set_list(c.mirror_keys, a); }});
  t.push_back({"mirror-backlog-size", true, [](const config& c) { return std::to_string(c.mirror_backlog_size); },
               [](config& c, const std::vector<std::string>& a) { return set_mem(c.mirror_backlog_size, a); }});
  t.push_back({"node-id", false, [](const config& c) { return c.node_id; },
               [](config& c, const std::vector<std::string>& a) { return set_str(c.node_id, a); }});
  t.push_back({"node-timeout", true, [](const config& c) { return fmt_double(c.node_timeout); },
               [](config& c, const std::vector<std::string>& a) { return set_double(c.node_timeout, a, 0.5, 86400, "seconds"); }});
  t.push_back({"upstream-sentinel", false,
               [](const config& c) {
                 std::string out;
                 for (const auto& [h, p] : c.upstream_sentinels)
                   out += (out.empty() ? "" : " ") + h + " " + std::to_string(p);
                 return out;
               },
               [](config& c, const std::vector<std::string>& a) -> std::string {
                 if (a.empty() || a.size() % 2 != 0)
                   return "wrong number of arguments (upstream-sentinel <host> <port> [<host> <port> ...])";
                 std::vector<std::pair<std::string, int>> v;
                 for (std::size_t i = 0; i < a.size(); i += 2) {
                   long long p;
                   if (a[i].empty() || !parse_ll(a[i + 1], p) || p < 1 || p > 65535) return "invalid sentinel address";
                   v.emplace_back(a[i], static_cast<int>(p));
                 }
                 c.upstream_sentinels = std::move(v);
                 return {};
               }});
  t.push_back({"upstream-master-name", false, [](const config& c) { return c.upstream_master_name; },
               [](config& c, const std::vector<std::string>& a) { return set_name(c.upstream_master_name, a, "upstream-master-name needs a name"); }});
  t.push_back({"upstream-wait-replicas", true, [](const config& c) { return std::to_string(c.upstream_wait_replicas); },
               [](config& c, const std::vector<std::string>& a) { return set_uint(c.upstream_wait_replicas, a, 0, 1000); }});
  t.push_back({"upstream-wait-timeout", true, [](const config& c) { return fmt_double(c.upstream_wait_timeout); },
               [](config& c, const std::vector<std::string>& a) { return set_double(c.upstream_wait_timeout, a, 0.001, 3600, "seconds"); }});
  // Redis settings with nothing to act on in respq (see inert_settings): any value of their
  // type is kept and shown, so a redis.conf loads and tools read them back.
  for (const inert_setting& r : inert_settings()) {
    const std::string key(config_primary_name(r.name));
    t.push_back({r.name, r.runtime,
                 [key, r](const config& c) {
                   auto it = c.inert.find(key);
                   return it == c.inert.end() ? std::string(r.fallback) : it->second;
                 },
                 [key, r](config& c, const std::vector<std::string>& a) -> std::string {
                   if (a.empty() || (a.size() > 1 && r.kind != 'l')) return "wrong number of arguments";
                   std::string v = a[0];
                   switch (r.kind) {
                     case 'b': {
                       bool b;
                       if (auto e = parse_bool(a[0], b); !e.empty()) return e;
                       v = yesno(b);
                       break;
                     }
                     case 'i': {
                       long long n;
                       if (!parse_ll(a[0], n)) return "argument couldn't be parsed into an integer";
                       if (n < r.lo || n > r.hi)
                         return "argument must be between " + std::to_string(r.lo) + " and " + std::to_string(r.hi) +
                                " inclusive";
                       v = std::to_string(n);
                       break;
                     }
                     case 'e': {
                       const std::string l = lower(a[0]);
                       const std::string_view all(r.choices);
                       bool found = false;
                       for (std::size_t at = 0; at <= all.size() && !found;) {
                         const std::size_t end = std::min(all.find(", ", at), all.size());
                         found = all.substr(at, end - at) == l;
                         at = end + 2;
                       }
                       if (!found) return std::string("argument(s) must be one of the following: ") + r.choices;
                       v = l;
                       break;
                     }
                     case 'm': {
                       auto n = parse_memory(a[0]);
                       if (!n) return "argument must be a memory value";
                       v = std::to_string(*n);
                       break;
                     }
                     case 'l':
                       for (std::size_t i = 1; i < a.size(); ++i) v += " " + a[i];
                       break;
                     default: break;
                   }
                   c.inert[key] = v;
                   if (std::find(c.inert_given.begin(), c.inert_given.end(), key) == c.inert_given.end())
                     c.inert_given.push_back(key);
                   return {};
                 }});
  }
  return t;
}

}  // namespace

std::optional<std::uint64_t> parse_memory(std::string_view s) {
  // Redis's memtoull: the leading digits (none reads as 0), then a unit or nothing; at
  // most 127 digits; a number past 2^64 - 1 saturates and the product wraps, as there.
  std::size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  const std::string unit = lower(std::string(s.substr(digits)));
  std::uint64_t mul;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k") mul = 1000;
  else if (unit == "kb") mul = 1024;
  else if (unit == "m") mul = 1000ull * 1000;
  else if (unit == "mb") mul = 1024ull * 1024;
  else if (unit == "g") mul = 1000ull * 1000 * 1000;
  else if (unit == "gb") mul = 1024ull * 1024 * 1024;
  else return std::nullopt;
  if (digits >= 128) return std::nullopt;
  std::uint64_t v = 0;
  if (digits > 0) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + digits, v);
    if (ec == std::errc::result_out_of_range) v = std::numeric_limits<std::uint64_t>::max();
  }
  return v * mul;
}

std::optional<std::vector<std::string>> split_args(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0, n = line.size();
  constexpr auto hexval = hex_digit;
  while (true) {
    while (i < n && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= n) return out;
    std::string cur;
    bool inq = false, insq = false, done = false;
    while (!done) {
      if (inq) {
        if (i >= n) return std::nullopt;
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && hexval(line[i + 2]) >= 0 && hexval(line[i + 3]) >= 0) {
          cur += static_cast<char>(hexval(line[i + 2]) * 16 + hexval(line[i + 3]));
          i += 3;
        } else if (line[i] == '\\' && i + 1 < n) {
          ++i;
          char ch = line[i];
          switch (ch) {
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'b': ch = '\b'; break;
            case 'a': ch = '\a'; break;
            default: break;
          }
          cur += ch;
        } else if (line[i] == '"') {
          if (i + 1 < n && !std::isspace(static_cast<unsigned char>(line[i + 1]))) return std::nullopt;
          done = true;
        } else {
          cur += line[i];
        }
      } else if (insq) {
        if (i >= n) return std::nullopt;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          ++i;
          cur += '\'';
        } else if (line[i] == '\'') {
          if (i + 1 < n && !std::isspace(static_cast<unsigned char>(line[i + 1]))) return std::nullopt;
          done = true;
        } else {
          cur += line[i];
        }
      } else {
        if (i >= n) {
          done = true;
          break;
        }
        char ch = line[i];
        if (std::isspace(static_cast<unsigned char>(ch))) done = true;
        else if (ch == '"') inq = true;
        else if (ch == '\'') insq = true;
        else cur += ch;
      }
      if (i < n) ++i;
    }
    out.push_back(std::move(cur));
  }
}

const std::vector<inert_setting>& inert_settings() {
  // name, Redis 7.0's default, kind (b yes/no, i integer, m memory, s text, l words), and
  // whether CONFIG SET may change it (Redis's IMMUTABLE_CONFIG otherwise).
  static const std::vector<inert_setting> list{
      // Start-up, logging and the process.
      {"always-show-logo", "no", 'b', false}, {"set-proc-title", "yes", 'b', false},
      {"proc-title-template", "{title} {listen-addr} {server-mode}", 's', true},
      {"tcp-backlog", "511", 'i', false, 0, INT_MAX}, {"syslog-ident", "redis", 's', false},
      {"syslog-facility", "local0", 's', false}, {"unixsocketperm", "0", 'i', false, 0, 0777},
      {"oom-score-adj", "no", 'e', true, 0, 0, "no, yes, relative, absolute"}, {"oom-score-adj-values", "0 200 800", 'l', true},
      {"disable-thp", "yes", 'b', false}, {"crash-log-enabled", "yes", 'b', true},
      {"crash-memcheck-enabled", "yes", 'b', true}, {"ignore-warnings", "", 's', true},
      {"server_cpulist", "", 's', false}, {"bio_cpulist", "", 's', false},
      {"aof_rewrite_cpulist", "", 's', false}, {"bgsave_cpulist", "", 's', false},
      {"io-threads-do-reads", "no", 'b', false}, {"shutdown-timeout", "10", 'i', true, 0, INT_MAX},
      // Snapshots (respq persists with the AOF alone).
      {"dbfilename", "dump.rdb", 's', false}, {"rdbcompression", "yes", 'b', true},
      {"rdbchecksum", "yes", 'b', false}, {"stop-writes-on-bgsave-error", "yes", 'b', true},
      {"rdb-del-sync-files", "no", 'b', true}, {"rdb-save-incremental-fsync", "yes", 'b', true},
      {"sanitize-dump-payload", "no", 'e', true, 0, 0, "no, yes, clients"},
      // The AOF's Redis-specific forms (respq's AOF is one file of commands).
      {"appenddirname", "appendonlydir", 's', false}, {"no-appendfsync-on-rewrite", "no", 'b', true},
      {"aof-use-rdb-preamble", "yes", 'b', true}, {"aof-timestamp-enabled", "no", 'b', true},
      {"aof-rewrite-incremental-fsync", "yes", 'b', true}, {"aof-disable-auto-gc", "no", 'b', true},
      // A replica's settings (respq is never a replica).
      {"replica-serve-stale-data", "yes", 'b', true}, {"slave-serve-stale-data", "yes", 'b', true},
      {"replica-read-only", "yes", 'b', true}, {"slave-read-only", "yes", 'b', true},
      {"replica-priority", "100", 'i', true, 0, INT_MAX}, {"slave-priority", "100", 'i', true, 0, INT_MAX},
      {"replica-lazy-flush", "no", 'b', true}, {"slave-lazy-flush", "no", 'b', true},
      {"replica-announce-ip", "", 's', true}, {"slave-announce-ip", "", 's', true},
      {"replica-announce-port", "0", 'i', true, 0, 65535}, {"slave-announce-port", "0", 'i', true, 0, 65535},
      {"replica-announced", "yes", 'b', true}, {"replica-ignore-maxmemory", "yes", 'b', true},
      {"slave-ignore-maxmemory", "yes", 'b', true}, {"replica-ignore-disk-write-errors", "no", 'b', true},
      {"repl-diskless-sync", "yes", 'b', true}, {"repl-diskless-sync-delay", "5", 'i', true, 0, INT_MAX},
      {"repl-diskless-sync-max-replicas", "0", 'i', true, 0, INT_MAX}, {"repl-diskless-load", "disabled", 'e', true, 0, 0, "disabled, on-empty-db, swapdb"},
      {"repl-disable-tcp-nodelay", "no", 'b', true}, {"repl-backlog-size", "1048576", 'm', true},
      {"repl-backlog-ttl", "3600", 'i', true, 0, LONG_MAX}, {"repl-ping-replica-period", "10", 'i', true, 1, INT_MAX},
      {"repl-ping-slave-period", "10", 'i', true, 1, INT_MAX}, {"repl-timeout", "60", 'i', true, 1, INT_MAX},
      {"masterauth", "", 's', true}, {"masteruser", "", 's', true},
      {"min-replicas-max-lag", "10", 'i', true, 0, INT_MAX}, {"min-slaves-max-lag", "10", 'i', true, 0, INT_MAX},
      {"propagation-error-behavior", "ignore", 'e', true, 0, 0, "ignore, panic, panic-on-replicas"}, {"bind-source-addr", "", 's', true},
      // Cluster mode (off: cluster-enabled is always no).
      {"cluster-config-file", "nodes.conf", 's', false}, {"cluster-port", "0", 'i', false, 0, 65535},
      {"cluster-node-timeout", "15000", 'i', true, 0, LLONG_MAX}, {"cluster-announce-ip", "", 's', true},
      {"cluster-announce-port", "0", 'i', true, 0, 65535}, {"cluster-announce-tls-port", "0", 'i', true, 0, 65535},
      {"cluster-announce-bus-port", "0", 'i', true, 0, 65535}, {"cluster-announce-hostname", "", 's', true},
      {"cluster-preferred-endpoint-type", "ip", 'e', true, 0, 0, "ip, hostname, unknown-endpoint"}, {"cluster-require-full-coverage", "yes", 'b', true},
      {"cluster-allow-reads-when-down", "no", 'b', true}, {"cluster-allow-pubsubshard-when-down", "yes", 'b', true},
      {"cluster-allow-replica-migration", "yes", 'b', true}, {"cluster-migration-barrier", "1", 'i', true, 0, INT_MAX},
      {"cluster-replica-no-failover", "no", 'b', true}, {"cluster-slave-no-failover", "no", 'b', true},
      {"cluster-replica-validity-factor", "10", 'i', true, 0, INT_MAX}, {"cluster-slave-validity-factor", "10", 'i', true, 0, INT_MAX},
      {"cluster-link-sendbuf-limit", "0", 'm', true},
      // Memory management of Redis's own structures and allocator, and eviction
      // (maxmemory-policy is always noeviction).
      {"lazyfree-lazy-eviction", "no", 'b', true}, {"lazyfree-lazy-expire", "no", 'b', true},
      {"lazyfree-lazy-server-del", "no", 'b', true}, {"lazyfree-lazy-user-del", "no", 'b', true},
      {"lazyfree-lazy-user-flush", "no", 'b', true}, {"list-max-listpack-size", "-2", 'i', true, INT_MIN, INT_MAX},
      {"list-max-ziplist-size", "-2", 'i', true, INT_MIN, INT_MAX}, {"list-compress-depth", "0", 'i', true, 0, INT_MAX},
      {"activerehashing", "yes", 'b', true}, {"dynamic-hz", "yes", 'b', true},
      {"jemalloc-bg-thread", "yes", 'b', true}, {"active-expire-effort", "1", 'i', true, 1, 10},
      {"activedefrag", "no", 'b', true}, {"active-defrag-cycle-min", "1", 'i', true, 1, 99},
      {"active-defrag-cycle-max", "25", 'i', true, 1, 99}, {"active-defrag-ignore-bytes", "104857600", 'm', true},
      {"active-defrag-max-scan-fields", "1000", 'i', true, 1, LONG_MAX}, {"active-defrag-threshold-lower", "10", 'i', true, 0, 1000},
      {"active-defrag-threshold-upper", "100", 'i', true, 0, 1000}, {"maxmemory-samples", "5", 'i', true, 1, 64},
      {"maxmemory-eviction-tenacity", "10", 'i', true, 0, 100}, {"lfu-log-factor", "10", 'i', true, 0, INT_MAX},
      {"lfu-decay-time", "1", 'i', true, 0, INT_MAX},
      // ACL users (respq has the default user and requirepass alone).
      {"acllog-max-len", "128", 'i', true, 0, LONG_MAX}, {"acl-pubsub-default", "resetchannels", 'e', true, 0, 0, "allchannels, resetchannels"},
      // TLS session caching of the TLS port.
      {"tls-session-caching", "yes", 'b', true}, {"tls-session-cache-size", "20480", 'i', true, 0, INT_MAX},
      {"tls-session-cache-timeout", "300", 'i', true, 0, INT_MAX}, {"tls-prefer-server-ciphers", "no", 'b', true}};
  return list;
}

char inert_kind(std::string_view name) {
  for (const auto& r : inert_settings())
    if (name == r.name) return r.kind;
  return 0;
}

const std::vector<config_entry>& config_table() {
  static const std::vector<config_entry> table = make_table();
  return table;
}

std::string_view config_primary_name(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> aliases[] = {
      {"lua-time-limit", "busy-reply-threshold"},
      {"hash-max-ziplist-entries", "hash-max-listpack-entries"},
      {"hash-max-ziplist-value", "hash-max-listpack-value"},
      {"zset-max-ziplist-entries", "zset-max-listpack-entries"},
      {"zset-max-ziplist-value", "zset-max-listpack-value"},
      {"slave-serve-stale-data", "replica-serve-stale-data"},
      {"slave-read-only", "replica-read-only"},
      {"slave-priority", "replica-priority"},
      {"slave-lazy-flush", "replica-lazy-flush"},
      {"slave-announce-ip", "replica-announce-ip"},
      {"slave-announce-port", "replica-announce-port"},
      {"slave-ignore-maxmemory", "replica-ignore-maxmemory"},
      {"repl-ping-slave-period", "repl-ping-replica-period"},
      {"min-slaves-max-lag", "min-replicas-max-lag"},
      {"min-slaves-to-write", "min-replicas-to-write"},
      {"slaveof", "replicaof"},
      {"cluster-slave-no-failover", "cluster-replica-no-failover"},
      {"cluster-slave-validity-factor", "cluster-replica-validity-factor"},
      {"list-max-ziplist-size", "list-max-listpack-size"}};
  for (const auto& [alias, primary] : aliases)
    if (name == alias) return primary;
  return name;
}

void apply_encoding_limits(const config& c) {
  namespace el = encoding_limits;
  el::hash_entries.store(static_cast<std::size_t>(c.hash_max_listpack_entries), std::memory_order_relaxed);
  el::hash_value.store(static_cast<std::size_t>(c.hash_max_listpack_value), std::memory_order_relaxed);
  el::set_intset_entries.store(static_cast<std::size_t>(c.set_max_intset_entries), std::memory_order_relaxed);
  el::zset_entries.store(static_cast<std::size_t>(c.zset_max_listpack_entries), std::memory_order_relaxed);
  el::zset_value.store(static_cast<std::size_t>(c.zset_max_listpack_value), std::memory_order_relaxed);
}

const std::vector<std::pair<std::string, std::string>>& compat_config_values() {
  static const std::vector<std::pair<std::string, std::string>> values{
      {"save", ""},
      {"hz", "10"}, {"io-threads", "1"}, {"cluster-enabled", "no"},
      // Settings whose other values promise what respq does not do (replication, a unix
      // socket, ACL files, syslog, systemd notification, TLS restrictions, client
      // eviction, refusing writes without replicas, socket marks).
      {"replicaof", ""}, {"slaveof", ""}, {"unixsocket", ""}, {"aclfile", ""}, {"syslog-enabled", "no"},
      {"supervised", "no"}, {"maxmemory-clients", "0"}, {"min-replicas-to-write", "0"},
      {"min-slaves-to-write", "0"}, {"socket-mark-id", "0"}, {"shutdown-on-sigint", "default"},
      {"shutdown-on-sigterm", "default"}, {"tls-cluster", "no"}, {"tls-replication", "no"},
      {"tls-protocols", ""}, {"tls-ciphers", ""}, {"tls-ciphersuites", ""}, {"tls-client-cert-file", ""},
      {"tls-client-key-file", ""}, {"tls-client-key-file-pass", ""}, {"tls-key-file-pass", ""},
      {"tls-dh-params-file", ""}};
  return values;
}

std::string format_queue(const std::string& name, const queue_options& q, bool secrets_in_full) {
  return name + " concurrency " + std::to_string(q.concurrency) + " rate " + fmt_double(q.rate) + " per-host " +
         std::to_string(q.per_host) + (q.host_rate > 0 ? " host-rate " + fmt_double(q.host_rate) : "") +
         " timeout " + fmt_double(q.timeout) + " retries " + std::to_string(q.retries) +
         " backoff-min " + fmt_double(q.backoff_min) + " backoff-max " + fmt_double(q.backoff_max) + " shared " +
         yesno(q.shared) + (q.egress ? " egress " + std::string(tasks::egress_level_name(*q.egress)) : "") +
         [&q, secrets_in_full] {
           std::string out;
           for (const auto& k : q.signing_secrets) out += " signing-secret " + (secrets_in_full ? k.text : k.redacted());
           // Paths may hold spaces: quoted then, so the text reads back as a directive.
           const auto path = [](const std::string& p) {
             return p.find_first_of(" \t\"'") == std::string::npos ? p : "\"" + p + "\"";
           };
           if (!q.ca_file.empty()) out += " ca-file " + path(q.ca_file);
           if (!q.client_cert.empty()) out += " client-cert " + path(q.client_cert) + " client-key " + path(q.client_key);
           return out;
         }();
}

std::shared_ptr<const tasks::egress_rules> egress_rules_for(const config& c, const queue_options& q) {
  auto r = std::make_shared<tasks::egress_rules>();
  r->level = q.egress.value_or(c.egress_policy);
  r->allow = c.egress_allow;
  r->deny = c.egress_deny;
  return r;
}

std::shared_ptr<const tasks::tls_trust> tls_trust_for(const config& c, const queue_options& q) {
  auto t = std::make_shared<tasks::tls_trust>();
  if (!q.ca_file.empty()) {
    t->ca_file = q.ca_file;
  } else {
    t->ca_file = c.tls_ca_cert_file;
    t->ca_dir = c.tls_ca_cert_dir;
  }
  t->client_cert = q.client_cert;
  t->client_key = q.client_key;
  return t;
}

std::string percentile_text(double p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%f", p);
  std::string out(buf);
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out;
}

std::optional<unsigned> parse_notify_classes(std::string_view letters) {
  unsigned classes = 0;
  for (const char ch : letters) {
    switch (ch) {
      case 'A': classes |= notify_all; break;
      case 'g': classes |= notify_generic; break;
      case '$': classes |= notify_string; break;
      case 'l': classes |= notify_list; break;
      case 's': classes |= notify_set; break;
      case 'h': classes |= notify_hash; break;
      case 'z': classes |= notify_zset; break;
      case 'x': classes |= notify_expired; break;
      case 'e': classes |= notify_evicted; break;
      case 'K': classes |= notify_keyspace; break;
      case 'E': classes |= notify_keyevent; break;
      case 't': classes |= notify_stream; break;
      case 'm': classes |= notify_key_miss; break;
      case 'd': classes |= notify_module; break;
      case 'n': classes |= notify_new; break;
      default: return std::nullopt;
    }
  }
  return classes;
}

std::string notify_classes_text(unsigned classes) {
  std::string out;
  if ((classes & notify_all) == notify_all) {
    out += 'A';
  } else {
    static constexpr std::pair<unsigned, char> letters[] = {
        {notify_generic, 'g'}, {notify_string, '$'}, {notify_list, 'l'},    {notify_set, 's'},
        {notify_hash, 'h'},    {notify_zset, 'z'},   {notify_expired, 'x'}, {notify_evicted, 'e'},
        {notify_stream, 't'},  {notify_module, 'd'}, {notify_new, 'n'}};
    for (const auto& [bit, letter] : letters)
      if (classes & bit) out += letter;
  }
  if (classes & notify_keyspace) out += 'K';
  if (classes & notify_keyevent) out += 'E';
  if (classes & notify_key_miss) out += 'm';
  return out;
}

std::string node_name(const config& c) {
  if (!c.node_id.empty()) return c.node_id;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !*host) std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + ":" + std::to_string(c.port);
}

std::string apply_queue_directive(config& c, const std::vector<std::string>& args) {
  if (args.empty()) return "http-queue needs a queue name";
  const std::string& name = args[0];
  if (name.empty()) return "http-queue name can't be empty";
  // A control character (a newline above all) would start a line of its own in INFO tasks.
  for (const char ch : name)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return "http-queue name can't hold control characters";
  if (args.size() == 2 && lower(args[1]) == "off") {
    c.queues.erase(name);
    return {};
  }
  if (args.size() % 2 != 1) return "http-queue options come in pairs: <option> <value>";
  queue_options q;
  if (auto it = c.queues.find(name); it != c.queues.end()) q = it->second;
  bool secrets_given = false;
  for (std::size_t i = 1; i + 1 < args.size(); i += 2) {
    std::string opt = lower(args[i]);
    const std::string& v = args[i + 1];
    double d;
    long long n;
    if (opt == "concurrency") {
      if (!parse_ll(v, n) || n < 1 || n > 100000) return "concurrency must be an integer between 1 and 100000";
      q.concurrency = static_cast<unsigned>(n);
    } else if (opt == "rate") {
      if (!parse_double(v, d) || d < 0) return "rate must be a number of dispatches per second >= 0 (0 = unlimited)";
      q.rate = d;
    } else if (opt == "host-rate") {
      if (!parse_double(v, d) || (d != 0 && (d < tasks::min_host_rate || d > tasks::max_host_rate)))
        return "host-rate must be a number of attempts per second to each host, 0.001 to 10000 (0 = unlimited)";
      q.host_rate = d;
    } else if (opt == "per-host") {
      if (!parse_ll(v, n) || n < 1 || n > 100000) return "per-host must be an integer between 1 and 100000";
      q.per_host = static_cast<unsigned>(n);
    } else if (opt == "timeout") {
      if (!parse_double(v, d) || d <= 0 || d > 86400) return "timeout must be a number of seconds > 0";
      q.timeout = d;
    } else if (opt == "retries") {
      if (!parse_ll(v, n) || n < 0 || n > 1000000) return "retries must be an integer >= 0";
      q.retries = static_cast<int>(n);
    } else if (opt == "backoff-min") {
      if (!parse_double(v, d) || d < 0) return "backoff-min must be a number of seconds >= 0";
      q.backoff_min = d;
    } else if (opt == "backoff-max") {
      if (!parse_double(v, d) || d < 0) return "backoff-max must be a number of seconds >= 0";
      q.backoff_max = d;
    } else if (opt == "shared") {
      if (auto e = parse_bool(v, q.shared); !e.empty()) return "shared: " + e;
    } else if (opt == "egress") {
      if (lower(v) == "default") {
        q.egress.reset();  // back to the global egress-policy
      } else if (auto l = tasks::parse_egress_level(v)) {
        q.egress = *l;
      } else {
        return "egress must be metadata, public, any or default";
      }
    } else if (opt == "signing-secret") {
      // The secrets named in one directive replace the queue's: give two during a rotation
      // (the new one and the old one), "none" to stop signing.
      if (!secrets_given) q.signing_secrets.clear();
      secrets_given = true;
      if (lower(v) == "none") continue;
      auto k = tasks::parse_signing_secret(v);
      if (auto* err = std::get_if<std::string>(&k)) return "signing-secret: " + *err;
      if (q.signing_secrets.size() >= 4) return "signing-secret: at most 4 secrets per queue";
      q.signing_secrets.push_back(std::get<tasks::signing_secret>(std::move(k)));
    } else if (opt == "ca-file") {
      // "none" (or "") goes back to the global tls-ca-cert-file/dir.
      if (v.empty() || lower(v) == "none") {
        q.ca_file.clear();
      } else {
        if (auto err = tasks::check_ca_file(v); !err.empty()) return "ca-file: " + err;
        q.ca_file = v;
      }
    } else if (opt == "client-cert" || opt == "client-key") {
      std::string& field = opt == "client-cert" ? q.client_cert : q.client_key;
      field = v.empty() || lower(v) == "none" ? std::string() : v;
    } else {
      return "unknown http-queue option '" + args[i] +
             "' (known: concurrency, rate, per-host, host-rate, timeout, retries, backoff-min, backoff-max, shared, egress, "
             "signing-secret, ca-file, client-cert, client-key)";
    }
  }
  if (q.backoff_max < q.backoff_min) return "backoff-max must not be below backoff-min";
  // A client certificate goes with its key: checked together, once both are known.
  if (q.client_cert.empty() != q.client_key.empty())
    return q.client_cert.empty() ? "client-key needs a client-cert" : "client-cert needs a client-key";
  if (!q.client_cert.empty()) {
    const auto old = c.queues.find(name);
    const bool changed = old == c.queues.end() || old->second.client_cert != q.client_cert ||
                         old->second.client_key != q.client_key;
    if (changed)
      if (auto err = tasks::check_client_pair(q.client_cert, q.client_key); !err.empty()) return "client-cert: " + err;
  }
  c.queues[name] = q;
  return {};
}

std::string apply_directive(config& c, const std::string& raw_name, const std::vector<std::string>& args) {
  std::string name = lower(raw_name);
  for (const auto& e : config_table()) {
    if (name == e.name) {
      if (name == "http-queue") return apply_queue_directive(c, args);
      return e.set(c, args);
    }
  }
  // A Redis setting respq only answers CONFIG GET for: its own value is accepted and
  // changes nothing (`--save ""`, as test harnesses and containers start Redis), as CONFIG
  // SET does; another value would promise what respq does not do.
  for (const auto& [cname, cval] : compat_config_values()) {
    if (name != cname) continue;
    if (args.size() == 1 && lower(args[0]) == cval) return {};
    if (args.empty() && name == "save") return {};  // `--save` alone is `save ""`, as redis-server reads it
    return "respq has no such setting; it is always '" + cval + "'" +
           (name == "save" ? " (respq persists with the AOF: appendonly yes)" : "");
  }
  return "Bad directive or wrong number of arguments";
}

std::string load_config_text(config& c, std::string_view text) {
  int lineno = 0;
  while (!text.empty()) {
    // Lines as std::getline gives them: up to each '\n', the last one without it.
    const std::size_t nl = text.find('\n');
    std::string line(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    auto parts = split_args(line);
    if (!parts) {
      return "*** FATAL CONFIG FILE ERROR (respq " RESPQ_VERSION ") ***\nReading the configuration file, at line " +
             std::to_string(lineno) + "\n>>> '" + line + "'\nUnbalanced quotes in configuration line";
    }
    if (parts->empty()) continue;
    std::string name = (*parts)[0];
    parts->erase(parts->begin());
    if (auto err = apply_directive(c, name, *parts); !err.empty()) {
      return "*** FATAL CONFIG FILE ERROR (respq " RESPQ_VERSION ") ***\nReading the configuration file, at line " +
             std::to_string(lineno) + "\n>>> '" + line + "'\n" + err;
    }
  }
  return {};
}

std::string load_config(config& c, int argc, char** argv) {
  int i = 1;
  if (i < argc && std::string_view(argv[i]).substr(0, 2) != "--") {
    std::string path = argv[i++];
    std::ifstream f(path, std::ios::binary);
    if (!f) return "Fatal error, can't open config file '" + path + "'";
    // Absolute, as Redis keeps it: the server changes to `dir` before CONFIG REWRITE
    // writes the file back.
    c.config_file = path;
    if (!path.empty() && path[0] != '/') {
      char cwd[PATH_MAX];
      if (::getcwd(cwd, sizeof cwd)) c.config_file = std::string(cwd) + "/" + path;
    }
    std::ostringstream text;
    text << f.rdbuf();
    if (auto err = load_config_text(c, text.str()); !err.empty()) return err;
  }
  while (i < argc) {
    std::string_view a = argv[i];
    if (a.substr(0, 2) != "--" || a.size() == 2) {
      return "*** FATAL CONFIG ERROR (respq " RESPQ_VERSION ") ***\nUnexpected command-line argument '" +
             std::string(a) + "' (directives are written --name value ...)";
    }
    std::string name(a.substr(2));
    std::vector<std::string> args;
    ++i;
    while (i < argc && !(std::string_view(argv[i]).substr(0, 2) == "--" && std::string_view(argv[i]).size() > 2 &&
                         !std::isdigit(static_cast<unsigned char>(argv[i][2])))) {
      args.emplace_back(argv[i++]);
    }
    if (auto err = apply_directive(c, name, args); !err.empty()) {
      std::string line = "--" + name;
      for (const auto& x : args) line += " " + x;
      return "*** FATAL CONFIG ERROR (respq " RESPQ_VERSION ") ***\nIn the command-line directive\n>>> '" + line +
             "'\n" + err;
    }
  }
  return {};
}

}  // namespace respq::core
