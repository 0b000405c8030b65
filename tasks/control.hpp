// control: the pure parts of queue control (the QUEUE and TASK commands): what a dead
// letter says when it is filtered for a replay, the recent outcomes a queue keeps for
// lookup by id, and the pacing of a replay. Custody (broker/core/task_manager) owns the
// state and carries the actions out; this file decides nothing about time or storage.
//
//   read_dead_letter   a record of <queue>:dead -> its id, HTTP code and the host of
//                      its task's URL (for QUEUE REPLAY ... ID/CODE/HOST)
//   dead_filter        which dead letters a replay selects (all conditions must hold)
//   task_history       the last N finished tasks of one queue (delivered, dead,
//                      cancelled), newest kept, found by id in O(1)
//   attempt_log        the attempts of one task this process saw (time, code, error,
//                      duration, next run), the newest max_logged_attempts of them
//   token_bucket       at most `rate` moves per second, with a burst of a tenth of a
//                      second's worth, so a replay of 100k dead letters trickles in
//
// Pure: no clock (callers pass times), no I/O. Any thread; each value has one owner.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace respq::tasks {

// ---- dead letters -------------------------------------------------------------------------

struct dead_letter_info {
  std::string id;
  long code = 0;         // the last HTTP code (0: no HTTP answer)
  std::string host;      // the host of the task's URL, lower case, no port; "" when the payload does not decode
  std::string host_port; // the same with its port, as INFO hosts names it (host_key_of): "host:port"
  int attempts = 0;
  double failed_at = 0;
  std::string reason, error;
  std::string response;  // the failing answer's body, its start (decoded from response_b64 if so)
  std::string payload;   // the producer's bytes (decoded from payload_b64 if so)
};
// The fields of a dead record (tasks::dead_record_json), or nullopt when `record` is not
// one (any client can push onto <queue>:dead).
std::optional<dead_letter_info> read_dead_letter(std::string_view record, bool want_host = true);

// The host of an http(s) URL: lower case, without userinfo, port or brackets. "" when
// there is none.
std::string url_host(std::string_view url);

// The host filter's value for dead letters with no host: no host key is "-".
inline constexpr std::string_view no_host = "-";

struct dead_filter {
  std::string id;     // "" = any
  std::string host;   // "" = any; compared case-insensitively; no_host: letters whose
                      // payload names no host (not a task, or no URL); "host:port" (IPv6
                      // as "[addr]:port") matches that port only, as INFO hosts names it
  long code = -1;     // -1 = any; 0 selects the ones that got no HTTP answer
  bool any() const { return id.empty() && host.empty() && code < 0; }
};
bool matches(const dead_filter& f, const dead_letter_info& d);

// ---- attempts of one task -------------------------------------------------------------------

struct attempt_info {
  int number = 0;           // 1 for the first attempt
  double started_at = 0;    // unix seconds
  bool finished = false;    // false while it runs (code, error, duration unknown)
  long code = 0;            // HTTP status (0: no HTTP answer)
  std::string error;        // why the transfer failed ("" on an HTTP answer); URLs redacted
  double duration_ms = 0;
  double next_run = 0;      // unix seconds of the retry it led to (0: none)
};
// The attempts of one task that this process saw, oldest first: the newest
// max_logged_attempts are kept (the count of all is the task's attempts). Attempts made
// before a restart or by another sidecar are not in it.
// What a packed envelope beside its attempt log already says, most often of the newest
// attempt: an entry that has the same is not stored twice (unpack() is given it back).
struct log_known {
  std::string_view error;  // the last error as the envelope shows it
  long code = 0;           // the last code
  double next_run = 0;     // the envelope's next_run
};
class attempt_log {
 public:
  static constexpr std::size_t max_logged_attempts = 16;
  attempt_log() = default;
  attempt_log(const attempt_log&) = default;
  attempt_log& operator=(const attempt_log&) = default;
  // A moved-from log is empty, its running attempt too.
  attempt_log(attempt_log&& o) noexcept
      : entries_(std::move(o.entries_)), running_(o.running_), running_number_(o.running_number_),
        running_at_(o.running_at_) {
    o.entries_.clear();
    o.running_ = false;
  }
  attempt_log& operator=(attempt_log&& o) noexcept {
    if (this == &o) return *this;
    entries_ = std::move(o.entries_);
    running_ = o.running_;
    running_number_ = o.running_number_;
    running_at_ = o.running_at_;
    o.entries_.clear();
    o.running_ = false;
    return *this;
  }
  void started(int number, double at);
  // The running attempt (the newest) ended.
  void finished(long code, std::string error, double duration_ms, double next_run);
  // Oldest first, the running attempt last. It writes (the running attempt goes into the
  // vector): like every other member, for the log's one owner thread only.
  const std::vector<attempt_info>& entries() const;
  // Attempts that were taken back (an endpoint's Retry-After hold, see tasks::decide):
  // each is followed by one with the same number. Counted among the kept entries.
  int holds() const;
  bool empty() const { return entries_.empty() && !running_; }
  // The entries in a few bytes each, for a task that waits with its log in its packed
  // envelope (tasks::envelope_packed); unpack() restores them, times to the thousandth
  // (as TASK GET shows them). An unpackable text gives an empty log.
  std::string pack(const log_known& known = {}) const;
  static attempt_log unpack(std::string_view packed, const log_known& known = {});

 private:
  // Adds an entry, the oldest dropped beyond max_logged_attempts; one block, no spare
  // room: a task has few attempts.
  void push(attempt_info&& a) const;
  // The attempts, except a running one that started here: that one is only its number
  // and start (running_*) until it ends or entries() is read, so that a task
  // on its first attempt (most tasks in flight) has no block for its log.
  mutable std::vector<attempt_info> entries_;
  mutable bool running_ = false;
  int running_number_ = 0;
  double running_at_ = 0;
};

// ---- recent outcomes ------------------------------------------------------------------------

enum class finished_state { delivered, dead, cancelled };
const char* finished_name(finished_state s);

struct finished_task {
  std::string id;
  finished_state state = finished_state::delivered;
  int attempts = 0, max_attempts = 0;
  long last_code = 0;
  std::string last_error;
  double finished_at = 0;  // unix seconds
  // Where the payload is, unparsed until someone asks: the in-flight envelope the task
  // had (a delivered or cancelled task: packed as respq keeps it, or `text`, what a
  // client wrote in its place, read as JSON only), or the element itself (a pending task
  // cancelled, a dead record).
  enum class source { envelope, text, element, dead_record } kind = source::envelope;
  std::string record;
  attempt_log log;
};
// The producer's payload out of a finished task's record.
std::string finished_payload(const finished_task& t);

class task_history {
 public:
  // Keeps the newest `max_len` (0: keeps nothing). A task finished again (same id)
  // replaces its older entry.
  void add(finished_task t, std::size_t max_len);
  // Drops the oldest entries beyond max_len.
  void trim(std::size_t max_len);
  const finished_task* find(std::string_view id) const;
  // The same, to complete an entry (a cancelled task's attempt that ends afterwards).
  finished_task* find(std::string_view id);
  std::size_t size() const { return index_.size(); }

 private:
  struct slot {
    std::uint64_t seq;
    finished_task task;
  };
  std::deque<slot> entries_;  // oldest first; an entry replaced by a newer one stays as a hole until it ages out
  std::unordered_map<std::string, std::uint64_t> index_;  // id -> seq of its newest entry
  std::uint64_t next_seq_ = 0;
};

// ---- pacing ---------------------------------------------------------------------------------

class token_bucket {
 public:
  using clock = std::chrono::steady_clock;
  // How many moves may happen now (and takes them), at most `want`.
  std::size_t take(clock::time_point now, double rate, std::size_t want);
  // When the next move may happen (now or later).
  clock::time_point next(clock::time_point now, double rate);

 private:
  double tokens_ = 1;
  clock::time_point last_{};
  bool started_ = false;
  void refill(clock::time_point now, double rate);
};

}  // namespace respq::tasks
