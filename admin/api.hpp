// api: the JSON API's pure parts, testable without sockets or threads: reading the body
// of POST /api/queues/<queue>/tasks into the elements to push, the documents of
// GET /api/queues and GET /api/tasks/<id>, and the framing of one Server-Sent Event.
//
// Contract: functions of their arguments (the id generator aside, which the caller owns);
// any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "broker/core/task_manager.hpp"
#include "tasks/queue_options.hpp"
#include "tasks/queue_stats.hpp"

namespace respq::admin {

// The elements to push for one POST, in the order given, each with its task id.
struct task_batch {
  std::vector<std::string> payloads;  // compact JSON, exactly what is LPUSHed
  std::vector<std::string> ids;
};
struct api_error {
  std::string message;
};

// Reads a POSTed body: one task object, or an array of them (a bare http(s) URL string
// stands for {"url": ...}). A task without "id" gets one from new_id. Each task is then
// checked with the decoder custody uses for queue elements (tasks::decode_element), so a
// task that would go dead at once as invalid is refused here instead; the first problem
// refuses the whole batch (the message names the task's index). `now`: unix seconds.
std::variant<task_batch, api_error> read_tasks(std::string_view body, double now,
                                               const std::function<std::string()>& new_id,
                                               std::size_t max_tasks = 10000);

// One queue as GET /api/queues shows it.
struct queue_view {
  tasks::queue_stats stats;
  tasks::queue_options options;
};
std::string queues_json(const std::vector<queue_view>& queues);

// A task as GET /api/tasks/<id> shows it: what TASK GET answers (task_manager::find_task),
// with every attempt known ("attempts": [{attempt, started_at, code, error, duration_ms,
// next_run}], code/error/duration_ms null while it runs; times in unix seconds).
std::string task_json(const core::task_manager::task_view& t);

// An SSE event whose data is `json` (one "data:" line per line of it).
std::string sse_event(std::string_view event, std::string_view json);

// 24 hex digits: 16 random, then 8 of a counter (the shape custody's own ids have).
std::string make_task_id(std::uint64_t random, std::uint64_t counter);

}  // namespace respq::admin
