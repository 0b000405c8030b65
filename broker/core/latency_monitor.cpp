// latency_monitor: samples, the doctor's report, the graph and the LATENCY command. See
// latency_monitor.hpp. The texts are Redis 7.0's (latency.c, sparkline.c).
#include "broker/core/latency_monitor.hpp"

#include <algorithm>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <strings.h>
#include <vector>

#include "broker/core/commands.hpp"

namespace respq::core {

namespace {

std::int32_t now_secs() { return static_cast<std::int32_t>(std::time(nullptr)); }

// Redis's analyzeLatencyForEvent.
struct event_stats {
  std::uint32_t all_time_high = 0, avg = 0, min = 0, max = 0, mad = 0;
  int samples = 0;
  long long period = 0;
};

event_stats analyze(const latency_monitor::series& ts) {
  event_stats ls;
  ls.all_time_high = ts.max;
  std::uint64_t sum = 0;
  for (const auto& s : ts.samples) {
    if (s.time == 0) continue;
    ++ls.samples;
    if (ls.samples == 1) {
      ls.min = ls.max = s.latency;
    } else {
      ls.min = std::min(ls.min, s.latency);
      ls.max = std::max(ls.max, s.latency);
    }
    sum += s.latency;
    if (ls.period == 0 || s.time < ls.period) ls.period = s.time;
  }
  if (ls.samples) {
    ls.avg = static_cast<std::uint32_t>(sum / static_cast<std::uint64_t>(ls.samples));
    ls.period = now_secs() - ls.period;
    if (ls.period == 0) ls.period = 1;
  }
  sum = 0;
  for (const auto& s : ts.samples) {
    if (s.time == 0) continue;
    std::int64_t delta = static_cast<std::int64_t>(ls.avg) - s.latency;
    sum += static_cast<std::uint64_t>(delta < 0 ? -delta : delta);
  }
  if (ls.samples) ls.mad = static_cast<std::uint32_t>(sum / static_cast<std::uint64_t>(ls.samples));
  return ls;
}

// Anonymous huge pages in use by this process (Redis's THPGetAnonHugePagesSize).
long long anon_huge_pages() {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("AnonHugePages:", 0) == 0) return std::atoll(line.c_str() + 14);
  return 0;
}

template <typename... Args>
std::string format(const char* fmt, Args... args) {
  char buf[1024];
  const int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

// sparkline.c: a sequence of samples drawn in `rows` rows of "_o#" (SPARKLINE_FILL),
// labels written vertically under each column.
struct spark_sample {
  double value;
  std::string label;
};

std::string render_range(const std::vector<spark_sample>& seq, double min, double max, int rows, std::size_t offset,
                         std::size_t len, bool has_labels) {
  static const char charset_fill[] = "_o#";
  const int charset_len = 3;
  const int label_margin_top = 1;
  double relmax = max - min;
  if (relmax == 0) relmax = 1;
  const int steps = charset_len * rows;
  std::string out;
  int row = 0;
  bool loop = true;
  std::string chars(len, ' ');
  while (loop) {
    loop = false;
    chars.assign(len, ' ');
    for (std::size_t j = 0; j < len; ++j) {
      const spark_sample& s = seq[j + offset];
      const double relval = s.value - min;
      int step = static_cast<int>(relval * steps / relmax);
      if (step < 0) step = 0;
      if (step >= steps) step = steps - 1;
      if (row < rows) {
        const int charidx = step - ((rows - row - 1) * charset_len);
        loop = true;
        if (charidx >= 0 && charidx < charset_len) chars[j] = charset_fill[charidx];
        else if (charidx >= charset_len) chars[j] = '|';
      } else {
        if (has_labels && row - rows < label_margin_top) {
          loop = true;
          break;
        }
        if (!s.label.empty()) {
          const int label_char = row - rows - label_margin_top;
          if (static_cast<int>(s.label.size()) > label_char) {
            loop = true;
            chars[j] = s.label[static_cast<std::size_t>(label_char)];
          }
        }
      }
    }
    if (loop) {
      ++row;
      out += chars;
      out += '\n';
    }
  }
  return out;
}

}  // namespace

void latency_monitor::add(std::string_view event, long long latency_ms) {
  auto it = events_.find(event);
  if (it == events_.end()) it = events_.emplace(std::string(event), series{}).first;
  series& ts = it->second;
  const auto latency = static_cast<std::uint32_t>(std::min<long long>(latency_ms, UINT32_MAX));
  const std::int32_t now = now_secs();
  if (latency > ts.max) ts.max = latency;
  sample& prev = ts.samples[(ts.idx + history_len - 1) % history_len];
  if (prev.time == now) {
    if (latency > prev.latency) prev.latency = latency;
    return;
  }
  ts.samples[ts.idx] = {now, latency};
  ts.idx = (ts.idx + 1) % history_len;
}

int latency_monitor::reset(std::string_view event) {
  int resets = 0;
  for (auto it = events_.begin(); it != events_.end();) {
    if (event.empty() || iequals(it->first, event)) {
      it = events_.erase(it);
      ++resets;
    } else {
      ++it;
    }
  }
  return resets;
}

std::string latency_monitor::doctor(long long threshold_ms, long long slowlog_slower_than, bool fsync_always) const {
  std::string report;
  if (events_.empty() && threshold_ms == 0) {
    return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use "
           "\"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep "
           "space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";
  }
  bool slowlog_enabled = false, slowlog_tuning = false, slowlog_inspect = false, disk_contention = false,
       scheduler = false, data_writeback = false, no_appendfsync = false, local_disk = false, ssd = false,
       write_load_info = false, hz = false, large_objects = false, relax_fsync = false, disable_thp = false;
  int advices = 0, eventnum = 0;
  for (const auto& [event, ts] : events_) {
    ++eventnum;
    if (eventnum == 1)
      report += "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n";
    const event_stats ls = analyze(ts);
    report += format("%d. %s: %d latency spikes (average %lums, mean deviation %lums, period %.2f sec). Worst all time event %lums.",
                     eventnum, event.c_str(), ls.samples, static_cast<unsigned long>(ls.avg),
                     static_cast<unsigned long>(ls.mad), static_cast<double>(ls.period) / ls.samples,
                     static_cast<unsigned long>(ts.max));
    if (event == "command") {
      if (slowlog_slower_than < 0) {
        slowlog_enabled = true;
        ++advices;
      } else if (slowlog_slower_than / 1000 > threshold_ms) {
        slowlog_tuning = true;
        ++advices;
      }
      slowlog_inspect = large_objects = true;
      advices += 2;
    }
    if (event == "fast-command") {
      scheduler = true;
      ++advices;
    }
    if (event == "aof-write-active-child") {
      no_appendfsync = data_writeback = ssd = true;
      advices += 3;
    }
    if (event == "aof-write-alone") {
      local_disk = data_writeback = ssd = true;
      advices += 3;
    }
    if (event == "aof-fsync-always") {
      relax_fsync = true;
      ++advices;
    }
    if (event == "aof-rename") {
      write_load_info = data_writeback = ssd = local_disk = true;
      advices += 4;
    }
    if (event == "expire-cycle") {
      hz = large_objects = true;
      advices += 2;
    }
    report += '\n';
  }
  if (anon_huge_pages() > 0) {
    disable_thp = true;
    ++advices;
  }
  if (eventnum == 0 && advices == 0) {
    report += "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. "
              "I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n";
  } else if (eventnum > 0 && advices == 0) {
    report += "\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis "
              "community to get some help, providing this report in your help request.\n";
  } else {
    const auto suggested = static_cast<unsigned long long>(threshold_ms) * 1000;
    report += "\nI have a few advices for you:\n\n";
    if (slowlog_enabled)
      report += format("- There are latency issues with potentially slow commands you are using. Try to enable the Slow "
                       "Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than %llu'. If the Slow log is "
                       "disabled Redis is not able to log slow commands execution for you.\n",
                       suggested);
    if (slowlog_tuning)
      report += format("- Your current Slow Log configuration only logs events that are slower than your configured "
                       "latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than %llu'.\n",
                       suggested);
    if (slowlog_inspect)
      report += "- Check your Slow Log to understand what are the commands you are running which are too slow to "
                "execute. Please check https://redis.io/commands/slowlog for more information.\n";
    if (scheduler)
      report += "- The system is slow to execute Redis code paths not containing system calls. This usually means the "
                "system does not provide Redis CPU time to run for long periods. You should try to:\n"
                "  1) Lower the system load.\n"
                "  2) Use a computer / VM just for Redis if you are running other software in the same system.\n"
                "  3) Check if you have a \"noisy neighbour\" problem.\n"
                "  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n"
                "  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are "
                "using Jemalloc. However this may create fragmentation problems.\n";
    if (local_disk)
      report += "- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote "
                "disks provided by platform-as-a-service providers are known to be slow.\n";
    if (ssd)
      report += "- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log "
                "rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a good "
                "option. However Redis should perform reasonably with high load using normal disks. Use this advice as "
                "a last resort.\n";
    if (data_writeback)
      report += "- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to "
                "data=ordered, however this mode of operation provides less guarantees, and sometimes it can happen "
                "that after a hard crash the AOF file will have a half-written command at the end and will require to "
                "be repaired before Redis restarts.\n";
    if (disk_contention)
      report += "- Try to lower the disk contention. This is often caused by other disk intensive processes running in "
                "the same computer (including other Redis instances).\n";
    if (no_appendfsync)
      report += "- Assuming from the point of view of data safety this is viable in your environment, you could try to "
                "enable the 'no-appendfsync-on-rewrite' option, so that fsync will not be performed while there is a "
                "child rewriting the AOF file or producing an RDB file (the moment where there is high disk "
                "contention).\n";
    if (relax_fsync && fsync_always)
      report += "- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if "
                "possible try to relax the fsync policy to 'onesec'.\n";
    if (write_load_info)
      report += "- Latency during the AOF atomic rename operation or when the final difference is flushed to the AOF "
                "file at the end of the rewrite, sometimes is caused by very high write load, causing the AOF buffer to "
                "get very large. If possible try to send less commands to accomplish the same work, or use Lua scripts "
                "to group multiple operations into a single EVALSHA call.\n";
    if (hz)  // respq's hz is fixed at 10 (CONFIG GET hz), below Redis's 100
      report += "- In order to make the Redis keys expiring process more incremental, try to set the 'hz' "
                "configuration parameter to 100 using 'CONFIG SET hz 100'.\n";
    if (large_objects)
      report += "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. "
                "If you have very large objects that are often deleted, expired, or evicted, try to fragment those "
                "objects into multiple smaller objects.\n";
    if (disable_thp)
      report += "- I detected a non zero amount of anonymous huge pages used by your process. This creates very "
                "serious latency events in different conditions, especially when Redis is persisting on disk. To "
                "disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make "
                "sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. "
                "Note that even if you have already disabled THP, you still need to restart the Redis process to get "
                "rid of the huge pages already created.\n";
  }
  return report;
}

std::string latency_monitor::graph(const std::string& event, const series& ts) {
  std::vector<spark_sample> seq;
  std::uint32_t min = 0, max = 0;
  double smin = 0, smax = 0;
  bool has_labels = false;
  const std::int32_t now = now_secs();
  for (std::size_t j = 0; j < history_len; ++j) {
    const sample& s = ts.samples[(ts.idx + j) % history_len];
    if (s.time == 0) continue;
    if (seq.empty()) {
      min = max = s.latency;
    } else {
      max = std::max(max, s.latency);
      min = std::min(min, s.latency);
    }
    const int elapsed = now - s.time;
    char buf[64];
    if (elapsed < 60) std::snprintf(buf, sizeof buf, "%ds", elapsed);
    else if (elapsed < 3600) std::snprintf(buf, sizeof buf, "%dm", elapsed / 60);
    else if (elapsed < 3600 * 24) std::snprintf(buf, sizeof buf, "%dh", elapsed / 3600);
    else std::snprintf(buf, sizeof buf, "%dd", elapsed / (3600 * 24));
    const double v = s.latency;
    if (seq.empty()) {
      smin = smax = v;
    } else if (v < smin) {
      smin = v;
    } else if (v > smax) {
      smax = v;
    }
    seq.push_back({v, buf});
    if (buf[0]) has_labels = true;
  }
  std::string out = format("%s - high %lu ms, low %lu ms (all time high %lu ms)\n", event.c_str(),
                           static_cast<unsigned long>(max), static_cast<unsigned long>(min),
                           static_cast<unsigned long>(ts.max));
  out += std::string(80, '-');
  out += '\n';
  const std::size_t columns = 80;
  for (std::size_t j = 0; j < seq.size(); j += columns) {
    const std::size_t sublen = std::min(columns, seq.size() - j);
    if (j != 0) out += '\n';
    out += render_range(seq, smin, smax, 4, j, sublen, has_labels);
  }
  return out;
}

void latency_histogram::record(std::uint64_t ns) {
  ++calls;
  // Smallest k with ns within bucket k's upper bound (1024 << k, widened as HDR's
  // 2-significant-digit buckets are: +1/128).
  if (ns <= 1024) {
    ++counts[0];
    return;
  }
  std::size_t k = static_cast<std::size_t>(64 - __builtin_clzll((ns - 1) >> 10));
  if (k > 0 && ns <= (1024ull << (k - 1)) + (1024ull << (k - 1)) / 128 - 1) --k;
  ++counts[std::min(k, buckets - 1)];
}

long long latency_histogram::bucket_usec(std::size_t k) {
  const unsigned long long v = 1024ull << k;
  return static_cast<long long>((v + v / 128 - 1) / 1000);
}

double latency_histogram::usec_at_percentile(double percentile) const {
  std::uint64_t total = 0;
  for (auto n : counts) total += n;
  if (!total) return 0;
  const double p = std::min(percentile, 100.0);
  const auto wanted = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(p / 100 * static_cast<double>(total) + 0.5));
  const auto highest = [](std::size_t k) { return (1024ull << k) + (1024ull << k) / 128 - 1; };
  std::uint64_t seen = 0;
  for (std::size_t k = 0; k < buckets; ++k) {
    seen += counts[k];
    if (seen < wanted) continue;
    // HDR's lowest equivalent value for percentile 0: durations are at least 1 ns.
    const unsigned long long ns = percentile == 0 ? (k == 0 ? 1 : highest(k - 1) + 1) : highest(k);
    return static_cast<double>(ns) / 1000.0;
  }
  return static_cast<double>(highest(buckets - 1)) / 1000.0;
}

namespace {

void histogram_reply(resp::reply_writer& w, const latency_histogram& h) {
  w.map(2);
  w.bulk("calls");
  w.integer(static_cast<long long>(h.calls));
  w.bulk("histogram_usec");
  std::size_t n = 0;
  for (auto v : h.counts)
    if (v) ++n;
  w.map(n);
  std::uint64_t cumulative = 0;
  for (std::size_t k = 0; k < latency_histogram::buckets; ++k) {
    if (!h.counts[k]) continue;
    cumulative += h.counts[k];
    w.integer(latency_histogram::bucket_usec(k));
    w.integer(static_cast<long long>(cumulative));
  }
}

}  // namespace

void cmd_latency(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  latency_monitor& lm = s.latency();
  if (sub == "history" && a.size() == 3) {
    auto it = lm.events().find(a[2]);
    auto w = s.reply(c);
    if (it == lm.events().end()) {
      w.array(0);
      return;
    }
    const auto& ts = it->second;
    std::size_t n = 0;
    for (const auto& smp : ts.samples)
      if (smp.time) ++n;
    w.array(n);
    for (std::size_t j = 0; j < latency_monitor::history_len; ++j) {
      const auto& smp = ts.samples[(ts.idx + j) % latency_monitor::history_len];
      if (!smp.time) continue;
      w.array(2);
      w.integer(smp.time);
      w.integer(smp.latency);
    }
  } else if (sub == "graph" && a.size() == 3) {
    auto it = lm.events().find(a[2]);
    if (it == lm.events().end()) {
      s.add_error(c, "ERR No samples available for event '" + std::string(a[2].substr(0, a[2].find('\0'))) + "'");
      return;
    }
    s.reply(c).verbatim(latency_monitor::graph(it->first, it->second));
  } else if (sub == "latest" && a.size() == 2) {
    auto w = s.reply(c);
    w.array(lm.events().size());
    for (const auto& [event, ts] : lm.events()) {
      const auto& last = ts.samples[(ts.idx + latency_monitor::history_len - 1) % latency_monitor::history_len];
      w.array(4);
      w.bulk(event);
      w.integer(last.time);
      w.integer(last.latency);
      w.integer(ts.max);
    }
  } else if (sub == "doctor" && a.size() == 2) {
    s.reply(c).verbatim(lm.doctor(s.cfg().latency_monitor_threshold, s.cfg().slowlog_log_slower_than,
                                  s.cfg().appendfsync == fsync_policy::always));
  } else if (sub == "reset") {
    int resets = 0;
    if (a.size() == 2) {
      resets = lm.reset({});
    } else {
      for (std::size_t j = 2; j < a.size(); ++j)
        if (!a[j].empty()) resets += lm.reset(a[j]);
    }
    s.reply(c).integer(resets);
  } else if (sub == "histogram") {
    // All commands with calls (and their subcommands), or the ones named (unknown names
    // are skipped; a container brings its subcommands).
    std::vector<std::pair<std::string, const latency_histogram*>> out;
    auto add = [&](const command_def& d, const std::string& name) {
      if (d.stats.histogram.calls) out.emplace_back(name, &d.stats.histogram);
    };
    auto add_with_subs = [&](const command_def& d) {
      add(d, std::string(d.name));
      for (const auto& sc : d.subcommands) add(sc, std::string(d.name) + "|" + std::string(sc.name));
    };
    if (a.size() == 2) {
      for (const command_def* d : s.commands()) add_with_subs(*d);
    } else {
      for (std::size_t j = 2; j < a.size(); ++j) {
        const std::string name = to_lower(a[j]);
        const std::size_t bar = name.find('|');
        const command_def* d = s.lookup(name.substr(0, bar));
        if (!d) continue;
        if (bar == std::string::npos) {
          add_with_subs(*d);
          continue;
        }
        for (const auto& sc : d->subcommands)
          if (sc.name == name.substr(bar + 1)) add(sc, name);
      }
    }
    auto w = s.reply(c);
    w.map(out.size());
    for (const auto& [name, h] : out) {
      w.bulk(name);
      histogram_reply(w, *h);
    }
  } else if (sub == "help" && a.size() == 2) {
    static const char* lines[] = {
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  } else {
    subcommand_syntax_error(s, c, a);
  }
}

}  // namespace respq::core
