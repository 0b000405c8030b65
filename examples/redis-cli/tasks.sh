#!/usr/bin/env bash
# respq from the shell: every operation is a redis-cli one-liner.
#
#   ./tasks.sh push [TO] [SUBJECT]  enqueue one mail task (LPUSH)
#   ./tasks.sh watch                print outcomes as they happen (SUBSCRIBE tasks:results)
#   ./tasks.sh stats                pending, in flight, dead, and INFO tasks
#   ./tasks.sh inflight             tasks being delivered or waiting to retry (HGETALL)
#   ./tasks.sh dead [N]             the N newest dead tasks (LRANGE, default 10)
#   ./tasks.sh replay               move every dead task back into the queue (LMOVE)
#
# Environment: RESPQ_HOST (127.0.0.1), RESPQ_PORT (6380), QUEUE (tasks),
#              MAIL_ENDPOINT (http://127.0.0.1:8080/send_mail).
set -euo pipefail

host=${RESPQ_HOST:-127.0.0.1}
port=${RESPQ_PORT:-6380}
queue=${QUEUE:-tasks}
endpoint=${MAIL_ENDPOINT:-http://127.0.0.1:8080/send_mail}

cli() { redis-cli -h "$host" -p "$port" "$@"; }

# A shell string as a JSON string (quotes and backslashes escaped).
json_str() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

case "${1:-}" in
  push)
    to=${2:-someone@example.com}
    subject=${3:-Hello from redis-cli}
    cli LPUSH "$queue" "{\"url\":$(json_str "$endpoint"),\"param\":{\"to\":$(json_str "$to"),\"subject\":$(json_str "$subject")}}"
    ;;
  watch)
    # One outcome per task: {"id","queue","url","status","code","attempts","duration_ms","error","node"}
    exec redis-cli -h "$host" -p "$port" SUBSCRIBE "$queue:results"
    ;;
  stats)
    echo "pending:   $(cli LLEN "$queue")"
    echo "in flight: $(cli HLEN "$queue:inflight")"
    echo "dead:      $(cli LLEN "$queue:dead")"
    cli INFO tasks
    ;;
  inflight)
    # field: task id; value: {"id","queue","state","attempts","next_run","last_code","last_error","payload"}
    cli HGETALL "$queue:inflight"
    ;;
  dead)
    # Newest first: {"id","queue","reason","attempts","code","error","failed_at","payload"}
    cli LRANGE "$queue:dead" 0 $(( ${2:-10} - 1 ))
    ;;
  replay)
    # Oldest first. respq recognises a dead record and delivers its original payload again,
    # under the same task id. Only the tasks dead right now are moved (-r: repeat N times);
    # one that dies again goes back to the dead list and waits for the next replay.
    n=$(cli LLEN "$queue:dead")
    cli -r "$n" LMOVE "$queue:dead" "$queue" RIGHT LEFT >/dev/null
    echo "replayed $n tasks"
    ;;
  *)
    sed -n '2,12s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
