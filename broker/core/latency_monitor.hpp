// latency_monitor: Redis's latency monitor (LATENCY LATEST | HISTORY | RESET | DOCTOR |
// GRAPH | HISTOGRAM | HELP). Owner: the broker thread.
//
// Events are named moments that took at least latency-monitor-threshold milliseconds
// (0, the default, turns the monitor off). Per event the last 160 samples are kept, one
// per second at most (a second sample in the same second keeps the larger value), and the
// all-time maximum, as in Redis 7.0's latency.c. The events respq records, with Redis's
// names:
//   command, fast-command      every command, by its fast flag (server::call)
//   expire-cycle               the cron's active expiry of keys past their deadline
//   aof-write                  the write() of a batch of the append-only file, also
//                              recorded as aof-write-pending-fsync (the background fsync
//                              was still running: a write postponed past its 2 s),
//                              aof-write-active-child (a rewrite runs: respq's is not a
//                              child process, but it is the same contention) or
//                              aof-write-alone
//   aof-fsync-always           the fdatasync of a batch under appendfsync always
//   aof-rename                 the rename that puts a rewritten AOF in place
// Redis events respq has no equivalent of, so never records: fork, rdb-*, eviction-*
// (maxmemory-policy is noeviction), module-*, while-blocked-cron.
//
// LATENCY HISTOGRAM (latency-tracking yes): per command, a count of calls by duration in
// power-of-two buckets, reported as Redis reports its HDR histogram (the bucket's upper
// bound in microseconds and the cumulative count). Reset by CONFIG RESETSTAT.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace respq::core {

class latency_monitor {
 public:
  static constexpr std::size_t history_len = 160;
  struct sample {
    std::int32_t time = 0;     // unix seconds, 0 = unused
    std::uint32_t latency = 0; // milliseconds
  };
  struct series {
    std::array<sample, history_len> samples{};
    std::size_t idx = 0;       // the next slot to write
    std::uint32_t max = 0;
  };

  // Redis's latencyAddSampleIfNeeded: records when threshold_ms is set and reached.
  void add_if_needed(std::string_view event, long long latency_ms, long long threshold_ms) {
    if (threshold_ms > 0 && latency_ms >= threshold_ms) [[unlikely]]
      add(event, latency_ms);
  }
  void add(std::string_view event, long long latency_ms);
  // Forgets one event (case-insensitive, as Redis) or all (empty); returns how many.
  int reset(std::string_view event);
  const std::map<std::string, series, std::less<>>& events() const { return events_; }

  // LATENCY DOCTOR's report and LATENCY GRAPH's drawing, Redis's texts.
  std::string doctor(long long threshold_ms, long long slowlog_slower_than, bool fsync_always) const;
  static std::string graph(const std::string& event, const series& ts);

 private:
  std::map<std::string, series, std::less<>> events_;
};

// Per-command duration histogram (LATENCY HISTOGRAM): bucket k counts durations up to
// 1024 * 2^k ns (HDR's highest equivalent value of it, as Redis's iteration reports).
struct latency_histogram {
  static constexpr std::size_t buckets = 21;  // up to ~1.07 s; longer ones land in the last
  std::uint64_t calls = 0;
  std::array<std::uint64_t, buckets> counts{};
  void record(std::uint64_t ns);
  // The upper bound of bucket k in microseconds, as Redis prints it.
  static long long bucket_usec(std::size_t k);
  // INFO latencystats: the duration at `percentile` (0 to 100) in microseconds, as HDR's
  // hdr_value_at_percentile answers it for these buckets: the highest duration of the
  // bucket that holds it (the lowest for percentile 0). 0 with no calls.
  double usec_at_percentile(double percentile) const;
};

}  // namespace respq::core
