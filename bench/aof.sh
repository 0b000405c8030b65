#!/usr/bin/env bash
# AOF write throughput: LPUSH with appendfsync always and everysec, respq against
# redis-server configured the same way (--appendonly yes, no RDB), in the same run.
# redis-benchmark, 50 clients, pipelines of 1 and 16; the servers take turns, several
# rounds, and the median of each is reported with the respq/redis ratio.
#
#   bench/aof.sh                     # uses build/broker/respq-server
#   RESPQ_SERVER=path ROUNDS=5 bench/aof.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER=${RESPQ_SERVER:-build/broker/respq-server}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
N_P1=${N_P1:-100000}
N_P16=${N_P16:-400000}
[[ -x $SERVER ]] || { echo "no respq-server at $SERVER (build it first)" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d /tmp/respq-aof-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "server on port $1 did not start" >&2; exit 1
}
# ops/s of one redis-benchmark LPUSH run
bench() {  # port pipeline requests
  redis-benchmark -p "$1" -c "$CLIENTS" -n "$3" -P "$2" -t lpush -q 2>/dev/null |
    tr '\r' '\n' | awk '/^LPUSH:/ { print $2 }' | tail -1
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

printf '%-9s %-3s %14s %14s %7s\n' appendfsync -P respq_ops/s redis_ops/s ratio
for policy in always everysec; do
  mkdir -p "$work/respq-$policy" "$work/redis-$policy"
  rport=$(free_port)
  "$SERVER" --port "$rport" --dir "$work/respq-$policy" --appendonly yes --appendfsync "$policy" \
    --logfile "$work/respq-$policy.log" &
  pids+=($!)
  dport=$(free_port)
  redis-server --port "$dport" --bind 127.0.0.1 --dir "$work/redis-$policy" --save '' --appendonly yes \
    --appendfsync "$policy" --logfile "$work/redis-$policy.log" &
  pids+=($!)
  wait_port "$rport"
  wait_port "$dport"
  for pipeline in 1 16; do
    n=$N_P1
    [[ $pipeline == 1 ]] || n=$N_P16
    r_runs=() d_runs=()
    for round in $(seq "$ROUNDS"); do
      # Alternate which server goes first, so neither always gets the warmer machine.
      if (( round % 2 )); then
        r_runs+=("$(bench "$rport" "$pipeline" "$n")")
        d_runs+=("$(bench "$dport" "$pipeline" "$n")")
      else
        d_runs+=("$(bench "$dport" "$pipeline" "$n")")
        r_runs+=("$(bench "$rport" "$pipeline" "$n")")
      fi
    done
    r=$(printf '%s\n' "${r_runs[@]}" | median)
    d=$(printf '%s\n' "${d_runs[@]}" | median)
    ratio=$(awk -v a="$r" -v b="$d" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
    printf '%-9s %-3s %14.0f %14.0f %7s   (runs: respq %s | redis %s)\n' "$policy" "$pipeline" "$r" "$d" "$ratio" \
      "${r_runs[*]}" "${d_runs[*]}"
  done
  redis-cli -p "$rport" shutdown >/dev/null 2>&1 || true
  redis-cli -p "$dport" shutdown nosave >/dev/null 2>&1 || true
done
