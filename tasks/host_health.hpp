// host_health: what respq knows of one destination host (host:port) of one queue, and what
// it decides from that: a circuit breaker, a hold (Retry-After), and an adaptive cap on the
// attempts in flight there (AIMD). Local queues (broker/core/task_manager) and shared ones
// (redis-compat/shared_queue) keep one host_health per host and ask it the same questions,
// as they share tasks::decide() for the task itself.
//
//   circuit   closed --failures-to-open consecutive failures--> open
//             open --cool-down passed, one probe admitted--> half_open
//             half_open --the probe answers cleanly--> closed
//             half_open --the probe fails--> open (a new cool-down)
//   hold      a 429 or 503 carrying a Retry-After in the future holds the host until
//             then: nothing is sent there before, and the answer costs no attempt
//             (tasks::decide refunds it). A hold is not counted as a failure: the endpoint
//             said when to come back.
//   cap       starts at the queue's per-host; halves (at most once per aimd_decrease_gap_s)
//             on an overload sign (429, 503, a timeout); grows by 1/cap per clean answer
//             (one per cap answers); always between 1 and per-host.
//   rate      the queue's host-rate (attempts per second to each host; 0: none): at most
//             n = max(1, floor(rate)) attempts start within any n / rate seconds (25: 25
//             in any second; 0.5: one in any 2 s), a sliding window of their start times,
//             so no burst goes past it. Tasks over it wait for their turn, as for a slot.
//
// What an ended attempt signals (host_signal_of):
//   clean     an HTTP answer that is no sign of trouble: 1xx-4xx but 408 and 429
//   failure   a connection error, a 5xx other than 503: counts towards opening
//   overload  a timeout, 408, 429, 503 without a usable Retry-After: counts towards opening,
//             and shrinks the cap
//   hold      429 or 503 with a Retry-After in the future: holds the host, shrinks the cap
//   neutral   nothing about the host (the egress policy refused it, a redirect to a refused
//             scheme): changes nothing
//
// Tasks that may not start wait (their custody keeps them) without an attempt spent.
// Pure: no clock (every call takes `now`, unix seconds), no I/O; owned by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace respq::tasks {

struct http_result;

// The thresholds (directives host-failures-to-open, host-cooldown).
struct host_limits {
  unsigned failures_to_open = 5;  // consecutive failures that open the circuit; 0: it never opens
  double cooldown = 10;           // seconds the circuit stays open before a probe
};

inline constexpr double aimd_decrease_gap_s = 0.25;
// The host-rate's bounds: one start in 1,000 s at the least; at the most, a second's
// starts remembered (80 KB for a host that has had that many).
inline constexpr double min_host_rate = 0.001, max_host_rate = 10000;

enum class circuit_state { closed, open, half_open };
const char* circuit_name(circuit_state s);

enum class host_signal { clean, failure, overload, hold, neutral };
const char* host_signal_name(host_signal s);

// What `r` says about its host; for a hold, `hold_until` gets the Retry-After's time.
host_signal host_signal_of(const http_result& r, double now, double& hold_until);

// "host:port" of an http(s) URL (the port spelled out: 80 or 443 when absent; the host
// lower-cased, IPv6 in brackets, userinfo dropped), or "" when it has no host.
std::string host_key_of(std::string_view url);

// The figures of one host, for INFO hosts, /metrics and /api/hosts. A plain value.
struct host_figures {
  std::string host;   // host:port
  std::string queue;  // the queue whose attempts these are
  std::uint64_t in_flight = 0, waiting = 0;
  unsigned cap = 0, max_cap = 0;
  circuit_state state = circuit_state::closed;
  std::uint64_t failures = 0;     // failures and overload signs since start
  unsigned consecutive = 0;       // consecutive failures now
  std::uint64_t opened = 0;       // times the circuit opened
  std::uint64_t held = 0;         // holds (Retry-After) since start
  std::uint64_t attempts = 0;     // attempts started
  double open_until = 0;          // open: unix seconds when a probe may go (0 otherwise)
  double held_until = 0;          // unix seconds, 0 when not held
  std::string last_error;         // the last failure's text ("" when none)
  double last_error_at = 0;       // unix seconds
};

// One host's state machine.
class host_health {
 public:
  enum class verdict {
    go,             // an attempt may start now (call started())
    wait_until,     // nothing before `until` (open circuit, hold)
    wait_for_slot,  // at the cap, or a probe is out: an attempt in flight must end first
  };
  struct admission {
    verdict v = verdict::go;
    double until = 0;    // wait_until: unix seconds
    bool rate = false;   // wait_until because of the host-rate (not a circuit or a hold)
  };
  // What an ended attempt changed.
  struct transition {
    bool opened = false, closed = false, half_opened = false, held = false, cap_changed = false;
  };

  explicit host_health(unsigned max_cap = 32, double rate = 0) : cap_(max_cap ? max_cap : 1), max_cap_(max_cap ? max_cap : 1) {
    set_rate(rate);
  }

  // May an attempt start at `now`?
  admission admit(double now) const;
  // An admitted attempt starts (an open circuit past its cool-down half-opens: this is the probe).
  transition started(double now);
  // An attempt ended with `s` (`hold_until` for a hold; `error` for a failure's text).
  transition ended(host_signal s, double now, const host_limits& lim, double hold_until = 0, std::string_view error = {});
  // An attempt ended without a verdict (forgotten by FLUSHALL, its queue reconfigured): a
  // probe that was out lets the next admit() send another.
  void forget(double now);
  // The queue's per-host changed: the cap stays within it.
  void set_max_cap(unsigned max_cap);
  // The queue's host-rate changed (0: none); the starts already made count towards it.
  void set_rate(double rate);
  // The host-rate's spacing, 1 / rate seconds (0: no rate): how far apart the tasks
  // waiting for it are expected to start.
  double rate_step() const { return rate_count_ ? rate_window_ / rate_count_ : 0; }
  // When a task waiting for this host, with `ahead` tasks before it in the host's line,
  // is expected to start (TASK GET's next_run): the time admit() gives for a wait (an
  // open circuit, a hold, the host-rate), under the host-rate a rate step more for each
  // task ahead; none when it waits for a slot or may go now.
  std::optional<double> turn_at(double now, std::size_t ahead) const;
  // An operator's reset (QUEUE HOSTRESET): the circuit closes, a hold ends, the failure
  // streak and the cap start afresh; the attempts in flight, the totals and the
  // host-rate's window stay (the rate is the endpoint's limit, not a sign of trouble).
  void reset();

  circuit_state state() const { return state_; }
  unsigned cap() const { return static_cast<unsigned>(cap_); }
  std::uint64_t in_flight() const { return in_flight_; }
  // Nothing to remember: closed, no failure streak, nothing in flight, full cap, no hold,
  // no start inside the host-rate's window.
  bool idle(double now) const;
  // The figures (host, queue and waiting are the caller's).
  host_figures figures() const;

 private:
  circuit_state state_ = circuit_state::closed;
  double cap_;
  unsigned max_cap_;
  std::uint64_t in_flight_ = 0;
  bool probe_out_ = false;
  unsigned consecutive_ = 0;
  double open_until_ = 0, held_until_ = 0, last_decrease_ = -1e300;
  std::uint64_t failures_ = 0, opened_ = 0, held_ = 0, attempts_ = 0;
  std::string last_error_;
  double last_error_at_ = 0;
  // host-rate: at most rate_count_ starts within rate_window_ seconds (0: no limit). The
  // newest starts, at most rate_count_ of them: in order while fewer (starts_head_ 0),
  // then a ring, starts_head_ its oldest. Memory grows with the starts a host has had.
  std::uint32_t rate_count_ = 0, starts_head_ = 0, starts_size_ = 0;
  double rate_window_ = 0;
  std::vector<double> starts_;
  double oldest_start() const { return starts_[starts_head_]; }
  double newest_start() const { return starts_[(starts_head_ + starts_size_ - 1) % rate_count_]; }
};

// Lines of INFO hosts: a summary, then at most `max_lines` hosts, the busiest first
// (in flight + waiting, then not closed, then failures):
//   hosts:count=3,open=1,half_open=0,held=0,shown=3
//   host_0:addr=127.0.0.1:8080,queue=hooks,in_flight=4,waiting=0,cap=8,max_cap=32,state=closed,
//          failures=0,consecutive=0,opened=0,held_until=0,last_error=
// last_error has its commas, '=' and line breaks replaced so a line parses as INFO.
std::string hosts_info(std::vector<host_figures> hosts, std::size_t max_lines, double now);
// Sorts `hosts` busiest first (the order INFO hosts and /metrics show).
void sort_busiest_first(std::vector<host_figures>& hosts);

}  // namespace respq::tasks
