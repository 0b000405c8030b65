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

}  // namespace

void cmd_queue(server& s, client& c, args_t a) {
  const std::string sub = to_lower(a[1]);
  if (sub == "pause" || sub == "resume") {
    s.effects_logged();
    if (auto err = s.tasks().set_paused(a[2], sub == "pause"); !err.empty()) s.add_error(c, err);
    else s.reply(c).simple("OK");
  } else if (sub == "replay") {
    tasks::dead_filter f;
    bool seen_id = false, seen_code = false, seen_host = false;
    for (std::size_t i = 3; i < a.size(); i += 2) {
      const std::string opt = to_lower(a[i]);
      if (i + 1 >= a.size()) {
        s.add_error(c, syntax_error);
        return;
      }
      if (opt == "id" && !seen_id) {
        seen_id = true;
        f.id = std::string(a[i + 1]);
        if (f.id.empty()) {
          s.add_error(c, "ERR ID can't be empty");
          return;
        }
      } else if (opt == "code" && !seen_code) {
        seen_code = true;
        long long code;
        if (!parse_integer(a[i + 1], code) || code < 0 || code > 999) {
          s.add_error(c, "ERR CODE must be an HTTP status code, or 0 for tasks that got no HTTP answer");
          return;
        }
        f.code = static_cast<long>(code);
      } else if (opt == "host" && !seen_host) {
        seen_host = true;
        f.host = std::string(a[i + 1]);
        if (f.host.empty()) {
          s.add_error(c, "ERR HOST can't be empty");
          return;
        }
      } else {
        s.add_error(c, syntax_error);
        return;
      }
    }
    s.effects_logged();
    error_or_integer(s, c, s.tasks().replay_dead(a[2], f));
  } else if (sub == "deldead") {
    s.effects_logged();
    error_or_integer(s, c, s.tasks().delete_dead(a[2], a[3]));
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
