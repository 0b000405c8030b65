// The QUEUE and TASK commands: control of HTTP queues from redis-cli (and from the admin
// HTTP API, which maps each endpoint onto one of them). The handlers parse and reply;
// custody (task_manager) carries the action out, and the pure parts (dead-letter
// filters, recent outcomes, replay pacing) are tasks/control.
//
//   QUEUE PAUSE <queue>                                  +OK
//   QUEUE RESUME <queue>                                 +OK
//   QUEUE REPLAY <queue> [ID <id>] [CODE <code>] [HOST <host>]
//                                                        :<dead letters selected>
//   QUEUE DELDEAD <queue> <id>                           :1 | :0
//   TASK GET <id>                                        map | nil
//   TASK CANCEL <id>                                     :1 | :0
//
// Every change is written to the command stream as the plain commands it amounts to
// (SET/DEL <queue>:paused, LREM, LPUSH, HDEL), so the AOF, its rewrite and the mirror
// replay them without knowing these commands.
#include "broker/core/commands.hpp"
#include "broker/core/task_manager.hpp"
#include "tasks/control.hpp"
#include "tasks/records.hpp"

namespace respq::core {

namespace {

void error_or_integer(server& s, client& c, const std::variant<std::size_t, std::string>& r) {
  if (auto* e = std::get_if<std::string>(&r)) s.add_error(c, *e);
  else s.reply(c).integer(static_cast<long long>(std::get<std::size_t>(r)));
}

// QUEUE REPLAY's options after the queue name: ID, CODE and HOST, each at most once, in
// any order. One loop, one row per option: how its value is read and what a bad one says.
bool read_replay_filter(args_t a, tasks::dead_filter& f, std::string& error) {
  struct option {
    const char* name;
    bool seen = false;
    bool (*read)(std::string_view value, tasks::dead_filter& f);
    const char* bad;
  };
  option options[] = {
      {"id", false, [](std::string_view v, tasks::dead_filter& d) { return !(d.id = v).empty(); }, "ERR ID can't be empty"},
      {"code", false,
       [](std::string_view v, tasks::dead_filter& d) {
         long long code;
         if (!string2ll(v, code) || code < 0 || code > 999) return false;
         d.code = static_cast<long>(code);
         return true;
       },
       "ERR CODE must be an HTTP status code, or 0 for tasks that got no HTTP answer"},
      {"host", false, [](std::string_view v, tasks::dead_filter& d) { return !(d.host = v).empty(); },
       "ERR HOST can't be empty"},
  };
  for (std::size_t i = 3; i < a.size(); i += 2) {
    const std::string name = to_lower(a[i]);
    option* o = nullptr;
    for (auto& candidate : options)
      if (name == candidate.name && !candidate.seen) o = &candidate;
    if (!o || i + 1 >= a.size()) {
      error = syntax_error;
      return false;
    }
    o->seen = true;
    if (!o->read(a[i + 1], f)) {
      error = o->bad;
      return false;
    }
  }
  return true;
}

}  // namespace

void cmd_queue(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "pause" || sub == "resume") {
    s.effects_logged();
    if (auto err = s.tasks().set_paused(a[2], sub == "pause"); !err.empty()) s.add_error(c, err);
    else s.reply(c).simple("OK");
  } else if (sub == "replay") {
    tasks::dead_filter f;
    std::string error;
    if (!read_replay_filter(a, f, error)) {
      s.add_error(c, error);
      return;
    }
    s.effects_logged();
    error_or_integer(s, c, s.tasks().replay_dead(a[2], f));
  } else if (sub == "deldead") {
    s.effects_logged();
    error_or_integer(s, c, s.tasks().delete_dead(a[2], a[3]));
  } else if (sub == "hostreset") {
    error_or_integer(s, c, s.tasks().reset_host(a[2], a[3]));
  } else if (sub == "help") {
    static const char* lines[] = {
        "QUEUE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "PAUSE <queue>",
        "    Stop dispatching new attempts of an HTTP queue (in-flight attempts finish, retries wait).",
        "    Persisted as the key <queue>:paused.",
        "RESUME <queue>",
        "    Dispatch again.",
        "REPLAY <queue> [ID <id>] [CODE <code>] [HOST <host>]",
        "    Move the matching dead letters (all when no filter; CODE 0: no HTTP answer) back into",
        "    the queue, oldest first, at replay-rate per second. Returns how many were selected.",
        "DELDEAD <queue> <id>",
        "    Delete the dead letter with this task id. Returns 1, or 0 when there is none.",
        "HOSTRESET <queue> <host:port>",
        "    Trust a destination host afresh: its circuit closes, a Retry-After hold ends, its",
        "    concurrency cap starts again at per-host, and the tasks waiting for it go.",
        "    Returns 1, or 0 when the queue knows no such host.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  }
}

void cmd_task(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "get") {
    auto v = s.tasks().find_task(a[2]);
    auto w = s.reply(c);
    if (!v) {
      w.null();
      return;
    }
    w.map(11);
    w.bulk("id");
    w.bulk(v->id);
    w.bulk("queue");
    w.bulk(v->queue);
    w.bulk("state");
    w.bulk(v->state);
    w.bulk("attempts");
    w.integer(v->attempts);
    w.bulk("max_attempts");
    w.integer(v->max_attempts);
    w.bulk("next_run");
    w.bulk(tasks::json_number(v->next_run));
    w.bulk("last_code");
    w.integer(v->last_code);
    w.bulk("last_error");
    w.bulk(v->last_error);
    w.bulk("finished_at");
    w.bulk(tasks::json_number(v->finished_at));
    w.bulk("payload");
    w.bulk(v->payload);
    w.bulk("history");
    w.array(v->log.entries().size());
    for (const tasks::attempt_info& at : v->log.entries()) {
      w.map(6);
      w.bulk("attempt");
      w.integer(at.number);
      w.bulk("started_at");
      w.bulk(tasks::json_number(at.started_at));
      w.bulk("code");
      if (at.finished) w.integer(at.code);
      else w.null();
      w.bulk("error");
      if (at.finished) w.bulk(at.error);
      else w.null();
      w.bulk("duration_ms");
      if (at.finished) w.bulk(tasks::json_number(at.duration_ms));
      else w.null();
      w.bulk("next_run");
      w.bulk(tasks::json_number(at.next_run));
    }
  } else if (sub == "cancel") {
    s.effects_logged();
    s.reply(c).integer(s.tasks().cancel_task(a[2]) ? 1 : 0);
  } else if (sub == "help") {
    static const char* lines[] = {
        "TASK <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <id>",
        "    The task with this id: id, queue, state (pending, in_flight, retrying, scheduled, dead,",
        "    or delivered/dead/cancelled while among the queue's recent outcomes), attempts,",
        "    max_attempts, next_run, last_code, last_error, finished_at, payload, and history: the",
        "    attempts this server saw (attempt, started_at, code, error, duration_ms, next_run; code,",
        "    error and duration nil while it runs), the newest 16. Nil when unknown. Shared queues:",
        "    only the tasks this sidecar holds and its recent outcomes (not the upstream's keys).",
        "CANCEL <id>",
        "    Cancel a task in custody (pending, in flight, retrying, scheduled): it is not attempted",
        "    again and its outcome 'cancelled' is published. Returns 1, or 0 when there is none.",
        "    Shared queues: only a task this sidecar holds.",
        "HELP",
        "    Prints this help."};
    help_reply(s, c, lines);
  }
}

}  // namespace respq::core
