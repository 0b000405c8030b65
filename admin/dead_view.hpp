// dead_view: the dead letters of one queue as the dashboard shows them: grouped by the
// host of the task's URL and the last HTTP code (0: no HTTP answer), each group with its
// count and its reasons counted, and one page of the letters that match a filter,
// newest first, each read into its fields (tasks::read_dead_letter).
//
// The groups' keys are QUEUE REPLAY's filters (HOST, CODE), so "Replay this group" is
// one replay and selects exactly the letters counted here.
//
// Pure: a function of the records (copied off the broker thread by the caller) and the
// query; any thread.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tasks/control.hpp"

namespace respq::admin {

struct dead_query {
  std::string host;       // "" = any (case-insensitive)
  long code = -1;         // -1 = any
  std::string reason;     // "" = any; exact
  std::size_t offset = 0;
  std::size_t limit = 50;  // at most max_limit
  static constexpr std::size_t max_limit = 500;
  // Bytes of each letter's payload a page carries (payload_truncated beyond: 500 letters
  // of 1 MB made a 500 MB answer and a page that could not render it).
  static constexpr std::size_t max_listed_payload = 16 * 1024;
};

// records: the list <queue>:dead from its head (the newest first). Records that are not
// dead letters (anything a client pushed) are grouped under host "", code 0 and reason
// "not a dead-letter record", and listed with their raw text as the payload.
// {"queue","total","groups":[{"host","code","count","reasons":[{"reason","count"}]}],
//  "matched","offset","limit","items":[{"id","host","code","attempts","failed_at",
//  "reason","error","payload","payload_bytes","payload_truncated"}]}
std::string dead_letters_json(const std::string& queue, const std::vector<std::string>& records, const dead_query& q);

// The same, reading each record once across requests: a letter read for an earlier page
// is taken from the cache (keyed by the record's bytes, so a changed list can't be
// misread), and the cache then holds exactly this list's records. Paging, filtering and
// the reload after a replay or delete cost a hash lookup per letter instead of two JSON
// parses. Thread-safe; one per queue.
class dead_letter_cache {
 public:
  std::string json(const std::string& queue, const std::vector<std::string>& records, const dead_query& q);

 private:
  std::mutex m_;
  std::unordered_map<std::string, tasks::dead_letter_info> read_;
};

}  // namespace respq::admin
