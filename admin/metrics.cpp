// metrics: see metrics.hpp.
#include "admin/metrics.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace respq::admin {

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string number(std::uint64_t v) { return std::to_string(v); }

// The bucket bounds in seconds, as `le` label values: written once, shortest form.
const std::vector<std::string>& bucket_labels() {
  static const std::vector<std::string> labels = [] {
    std::vector<std::string> v;
    for (double ms : tasks::latency_histogram::bounds_ms) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", ms / 1000.0);
      v.emplace_back(buf);
    }
    v.emplace_back("+Inf");
    return v;
  }();
  return labels;
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(p - buf));
}

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

// One metric family: HELP and TYPE are written before its first sample, so a family
// without any is left out entirely. Samples are appended straight to the output.
class family {
 public:
  family(std::string& out, const char* name, const char* type, const char* help)
      : out_(out), name_(name), type_(type), help_(help) {}
  family(const family&) = delete;
  family& operator=(const family&) = delete;

  // labels: pairs of name and (unescaped) value.
  void sample(std::string_view suffix, std::initializer_list<std::pair<const char*, std::string_view>> labels,
              const std::string& value) {
    header();
    out_ += name_;
    out_ += suffix;
    if (labels.size()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        append_escaped(out_, v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void sample(std::initializer_list<std::pair<const char*, std::string_view>> labels, const std::string& value) {
    sample("", labels, value);
  }
  // A histogram of one queue from its per-bucket counts (ms), in seconds. The bucket
  // lines share their prefix, written once (a scrape of 100 queues has 5,000 of them).
  void histogram(std::string_view queue, const tasks::latency_histogram& h) {
    header();
    std::string prefix = name_;
    prefix += "_bucket{queue=\"";
    append_escaped(prefix, queue);
    prefix += "\",le=\"";
    const auto& le = bucket_labels();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < tasks::latency_histogram::bucket_count; ++i) {
      cumulative += h.buckets()[i];
      out_ += prefix;
      out_ += le[i];
      out_ += "\"} ";
      append_uint(out_, cumulative);
      out_ += '\n';
    }
    sample("_sum", {{"queue", queue}}, number(h.sum_ms() / 1000.0));
    sample("_count", {{"queue", queue}}, number(h.count()));
  }

 private:
  void header() {
    if (started_) return;
    started_ = true;
    out_ += "# HELP ";
    out_ += name_;
    out_ += ' ';
    out_ += help_;
    out_ += "\n# TYPE ";
    out_ += name_;
    out_ += ' ';
    out_ += type_;
    out_ += '\n';
  }

  std::string& out_;
  const char* name_;
  const char* type_;
  const char* help_;
  bool started_ = false;
};

// A family of one sample without labels (a figure of the whole server).
void single(std::string& out, const char* name, const char* type, const char* help, const std::string& value) {
  family(out, name, type, help).sample({}, value);
}

// The destination hosts: the first host_label_max (the busiest) by name, the rest of
// each queue summed under host="other", so the label's values stay bounded whatever
// URLs tasks carry. (A sum of counters over a changing set of hosts may go down when a
// named host drops into "other" or back; the named hosts' counters do not.)
void render_hosts(std::string& out, const core::server_figures& f) {
  struct row {
    std::string queue;
    std::string_view host;
    std::uint64_t in_flight = 0, waiting = 0, cap = 0, failures = 0, opened = 0, attempts = 0;
    std::uint64_t states[3] = {0, 0, 0};  // closed, open, half_open
  };
  std::vector<row> rows;
  std::vector<std::size_t> other_of_queue;  // index into rows, by first appearance
  std::vector<std::string> other_queues;
  for (std::size_t i = 0; i < f.hosts.size(); ++i) {
    const auto& h = f.hosts[i];
    row* r = nullptr;
    if (i < f.host_label_max) {
      rows.push_back(row{h.queue, h.host});
      r = &rows.back();
    } else {
      std::size_t k = 0;
      while (k < other_queues.size() && other_queues[k] != h.queue) ++k;
      if (k == other_queues.size()) {
        other_queues.push_back(h.queue);
        rows.push_back(row{h.queue, "other"});
        other_of_queue.push_back(rows.size() - 1);
      }
      r = &rows[other_of_queue[k]];
    }
    r->in_flight += h.in_flight;
    r->waiting += h.waiting;
    r->cap += h.cap;
    r->failures += h.failures;
    r->opened += h.opened;
    r->attempts += h.attempts;
    ++r->states[static_cast<int>(h.state)];
  }
  {
    family m(out, "respq_host_in_flight", "gauge", "Attempts in flight to a destination host (host:port) of a queue.");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.in_flight));
  }
  {
    family m(out, "respq_host_waiting", "gauge",
             "Tasks waiting for their host (open circuit, Retry-After hold, or at its cap), no attempt spent.");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.waiting));
  }
  {
    family m(out, "respq_host_concurrency_cap", "gauge",
             "The adaptive cap on attempts in flight to the host (between 1 and the queue's per-host).");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.cap));
  }
  {
    family m(out, "respq_host_circuit", "gauge",
             "Hosts whose circuit is in each state (closed, open, half_open); 1 or 0 for a named host.");
    static const char* const names[] = {"closed", "open", "half_open"};
    for (const auto& r : rows)
      for (int s = 0; s < 3; ++s) m.sample({{"queue", r.queue}, {"host", r.host}, {"state", names[s]}}, number(r.states[s]));
  }
  {
    family m(out, "respq_host_failures_total", "counter",
             "Failed attempts at the host: connection errors, timeouts, 5xx, 408 and 429 (not Retry-After holds).");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.failures));
  }
  {
    family m(out, "respq_host_circuit_opened_total", "counter", "Times the host's circuit opened.");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.opened));
  }
  {
    family m(out, "respq_host_attempts_total", "counter", "Attempts started at the host.");
    for (const auto& r : rows) m.sample({{"queue", r.queue}, {"host", r.host}}, number(r.attempts));
  }
}

}  // namespace

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  append_escaped(out, v);
  return out;
}

std::string render_metrics(const core::server_figures& f) {
  std::string out;
  render_metrics(f, out);
  return out;
}

void render_metrics(const core::server_figures& f, std::string& out) {
  out.reserve(out.size() + 4096 + f.queues.size() * 6000);
  {
    family m(out, "respq_build_info", "gauge", "respq's version; the value is always 1.");
    m.sample({{"version", f.version}}, "1");
  }
  {
    family m(out, "respq_queue_tasks", "gauge",
             "Tasks of an HTTP queue by state: pending (waiting in the queue), in_flight, retrying, scheduled "
             "(waiting for their time), dead (in the dead-letter list).");
    for (const auto& q : f.queues) {
      m.sample({{"queue", q.name}, {"state", "pending"}}, number(q.pending));
      m.sample({{"queue", q.name}, {"state", "in_flight"}}, number(q.in_flight));
      m.sample({{"queue", q.name}, {"state", "retrying"}}, number(q.retrying));
      m.sample({{"queue", q.name}, {"state", "scheduled"}}, number(q.scheduled));
      m.sample({{"queue", q.name}, {"state", "dead"}}, number(q.dead_list));
    }
  }
  {
    family m(out, "respq_queue_paused", "gauge", "1 while dispatching from the queue is paused.");
    for (const auto& q : f.queues) m.sample({{"queue", q.name}}, q.paused ? "1" : "0");
  }
  {
    family m(out, "respq_queue_shared", "gauge", "1 for a queue shared through the upstream Redis.");
    for (const auto& q : f.queues) m.sample({{"queue", q.name}}, q.shared ? "1" : "0");
  }
  // A family with one sample per queue, read from one field of its figures.
  auto per_queue = [&](const char* name, const char* type, const char* help, std::uint64_t tasks::queue_stats::*field) {
    family m(out, name, type, help);
    for (const auto& q : f.queues) m.sample({{"queue", q.name}}, number(q.*field));
  };
  per_queue("respq_tasks_enqueued_total", "counter",
            "Tasks pushed onto the queue (a shared queue: those this node forwarded to the upstream).",
            &tasks::queue_stats::enqueued);
  per_queue("respq_tasks_dispatched_total", "counter", "Attempts started.", &tasks::queue_stats::dispatched);
  {
    family m(out, "respq_task_outcomes_total", "counter",
             "Outcomes of attempts: delivered, retried (another attempt scheduled), dead (dead-lettered).");
    for (const auto& q : f.queues) {
      m.sample({{"queue", q.name}, {"outcome", "delivered"}}, number(q.delivered));
      m.sample({{"queue", q.name}, {"outcome", "retried"}}, number(q.attempts.retried));
      m.sample({{"queue", q.name}, {"outcome", "dead"}}, number(q.dead));
    }
  }
  per_queue("respq_tasks_cancelled_total", "counter", "Tasks cancelled by TASK CANCEL.", &tasks::queue_stats::cancelled);
  per_queue("respq_egress_denied_total", "counter", "Attempts and callbacks the egress policy refused to connect.",
            &tasks::queue_stats::egress_denied);
  per_queue("respq_callbacks_retrying", "gauge", "Callbacks whose POST failed, waiting to be sent again.",
            &tasks::queue_stats::callbacks_retrying);
  per_queue("respq_callbacks_failed_total", "counter",
            "Callbacks given up: a final answer, the egress policy, or their last send failed.",
            &tasks::queue_stats::callbacks_failed);
  {
    family m(out, "respq_tasks_reclaimed_total", "counter",
             "Tasks this node moved back to a shared queue from the processing list of a sidecar whose "
             "heartbeat expired (shared queues only).");
    for (const auto& q : f.queues)
      if (q.shared) m.sample({{"queue", q.name}}, number(q.reclaimed));
  }
  {
    family m(out, "respq_http_responses_total", "counter",
             "Answers to attempts by status class; error: no HTTP answer (network error, timeout).");
    for (const auto& q : f.queues)
      for (std::size_t i = 0; i < tasks::attempt_figures::class_count; ++i)
        m.sample({{"queue", q.name}, {"code_class", tasks::attempt_figures::class_names[i]}},
                 number(q.attempts.responses[i]));
  }
  {
    family m(out, "respq_dispatch_delay_seconds", "histogram",
             "Time from a task's push to its dispatch (local queues; a shared queue's push happens upstream).");
    for (const auto& q : f.queues) m.histogram(q.name, q.latency);
  }
  {
    family m(out, "respq_http_request_duration_seconds", "histogram", "Duration of the HTTP request of an attempt.");
    for (const auto& q : f.queues) m.histogram(q.name, q.attempts.duration);
  }
  render_hosts(out, f);
  single(out, "respq_connected_clients", "gauge", "Client connections (INFO connected_clients).",
         number(f.clients.connected));
  single(out, "respq_blocked_clients", "gauge", "Clients waiting in a blocking command.",
         number(f.clients.blocked));
  single(out, "respq_pubsub_clients", "gauge", "Clients subscribed to a channel or pattern.",
         number(f.clients.pubsub));
  single(out, "respq_used_memory_bytes", "gauge", "Memory of keys, values and client buffers (INFO used_memory).",
         number(f.used_memory));
  {
    family m(out, "respq_commands_total", "counter", "Commands executed, by command (INFO commandstats calls).");
    for (const auto& c : f.commands) m.sample({{"command", c.name}}, number(c.calls));
  }
  {
    family m(out, "respq_commands_failed_total", "counter",
             "Commands refused before running or answered with an error (INFO commandstats).");
    for (const auto& c : f.commands)
      if (c.rejected || c.failed) m.sample({{"command", c.name}}, number(c.rejected + c.failed));
  }
  single(out, "respq_aof_enabled", "gauge", "1 while the append-only file is on.",
         f.aof.enabled ? "1" : "0");
  single(out, "respq_aof_last_write_ok", "gauge", "0 while writing the append-only file fails (writes refused).",
         f.aof.last_write_ok ? "1" : "0");
  single(out, "respq_aof_size_bytes", "gauge", "Size of the append-only file.",
         number(f.aof.current_size));
  single(out, "respq_aof_buffer_bytes", "gauge", "Bytes accepted but not yet written to the append-only file.",
         number(f.aof.buffer_length));
  single(out, "respq_aof_rewrite_in_progress", "gauge", "1 while the append-only file is being rewritten.",
         f.aof.rewrite_in_progress ? "1" : "0");
  single(out, "respq_aof_rewrites_total", "counter", "Rewrites of the append-only file completed.",
         number(f.aof.rewrites));
  single(out, "respq_aof_delayed_fsync_total", "counter",
         "Writes done while the previous fsync was still running (appendfsync everysec).",
         number(f.aof.delayed_fsync));
  single(out, "respq_link_configured", "gauge", "1 when an upstream Redis is configured.",
         f.link.configured ? "1" : "0");
  single(out, "respq_link_up", "gauge", "1 while the main connection to the upstream Redis is up.",
         f.link.connected ? "1" : "0");
  single(out, "respq_link_reconnects_total", "counter", "Reconnections of the link to the upstream Redis.",
         number(f.link.reconnects));
  single(out, "respq_link_pending_replies", "gauge", "Commands sent upstream awaiting their reply.",
         number(f.link.pending_replies));
  single(out, "respq_mirror_enabled", "gauge", "1 when writes are mirrored to the upstream Redis.",
         f.link.mirror_enabled ? "1" : "0");
  single(out, "respq_mirror_streaming", "gauge", "1 while the mirror streams writes (not down or resyncing).",
         f.link.mirror_state == "streaming" ? "1" : "0");
  single(out, "respq_mirror_lag_commands", "gauge", "Mirrored commands the upstream has not applied yet.",
         number(f.link.lag_commands));
  single(out, "respq_mirror_backlog_bytes", "gauge", "Bytes held in the mirror's backlog.",
         number(f.link.backlog_bytes));
  single(out, "respq_mirror_backlog_limit_bytes", "gauge", "The mirror backlog's limit (mirror-backlog-size).",
         number(f.link.backlog_limit));
  single(out, "respq_mirror_backlog_overflows_total", "counter", "Times the mirror's backlog overflowed.",
         number(f.link.backlog_overflows));
  single(out, "respq_mirror_resyncs_total", "counter", "Resynchronisations of the mirrored keys.",
         number(f.link.resyncs));
  single(out, "respq_mirror_commands_applied_total", "counter", "Mirrored commands the upstream applied.",
         number(f.link.commands_applied));
}

}  // namespace respq::admin
