#!/usr/bin/env bash
# What the mirror costs: redis-benchmark LPUSH (50 clients, -P 1 and -P 16) against two
# respq servers started side by side, one with the mirror off and one mirroring to a local
# redis-server, measured alternately (off, on, off, on, ...) so that machine noise hits
# both alike. Prints the median ops/s of each and the cost in percent (target < 15%).
#
# Between runs the list is deleted on both servers and the mirror must have caught up (lag 0), so a
# run never pays for the previous run's backlog. The mirror's resync count is printed: a
# resync during a run means the upstream could not keep up (backlog overflow).
#
# Usage: bench/mirror.sh [rounds]   (RESPQ_SERVER=path picks the binary; default the
# release build, build/broker/respq-server). Benchmarks are not tests: nothing fails on
# a number.
set -euo pipefail
cd "$(dirname "$0")/.."
server=${RESPQ_SERVER:-build/broker/respq-server}
rounds=${1:-${ROUNDS:-5}}
n1=${N1:-200000}    # requests per -P 1 run
n16=${N16:-2000000} # requests per -P 16 run
[[ -x "$server" ]] || { echo "no respq-server at $server (build first, or set RESPQ_SERVER)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }

up=$(free_port); off=$(free_port); on=$(free_port)
redis-server --port "$up" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
up_pid=$!; pids+=("$up_pid")
"$server" --port "$off" --dir "$tmp" --http-queue tasks off --logfile "$tmp/off.log" &
off_pid=$!; pids+=("$off_pid")
"$server" --port "$on" --dir "$tmp" --http-queue tasks off --logfile "$tmp/on.log" \
  --upstream 127.0.0.1 "$up" --mirror yes --node-id bench &
on_pid=$!; pids+=("$on_pid")
wait_port "$up"; wait_port "$off"; wait_port "$on"

mirror_field() { redis-cli -p "$on" info mirror | tr -d '\r' | sed -n "s/^$1://p"; }
caught_up() {
  for _ in $(seq 600); do
    [[ "$(mirror_field lag_commands)" == 0 && "$(mirror_field mirror_state)" == streaming ]] && return 0
    sleep 0.05
  done
  echo "mirror did not catch up: $(redis-cli -p "$on" info mirror | tr -d '\r' | tr '\n' ' ')" >&2
  return 1
}
reset() {  # redis-benchmark's LPUSH writes the key "mylist"
  redis-cli -p "$off" del mylist >/dev/null
  redis-cli -p "$on" del mylist >/dev/null
  caught_up
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, in clock ticks
hz=$(getconf CLK_TCK)
run() {  # port pipeline requests pid -> "ops/s respq-cpu-us/op upstream-cpu-us/op"
  local a b c d ops
  a=$(cpu_ticks "$4"); c=$(cpu_ticks "$up_pid")
  redis-benchmark -p "$1" -t lpush -c 50 -n "$3" -P "$2" --csv 2>/dev/null >"$tmp/out.csv"
  [[ "$1" == "$on" ]] && caught_up  # the upstream's work for this run, to the end
  b=$(cpu_ticks "$4"); d=$(cpu_ticks "$up_pid")
  ops=$(awk -F'"' '$2 == "LPUSH" { print $4 }' "$tmp/out.csv")
  awk -v o="$ops" -v n="$3" -v hz="$hz" -v r=$((b - a)) -v u=$((d - c)) \
    'BEGIN { printf "%s %.3f %.3f\n", o, r / hz * 1e6 / n, u / hz * 1e6 / n }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "mirror cost: LPUSH, 50 clients, $rounds rounds alternating off/on, upstream redis-server on loopback"
echo "  (cpu: microseconds of CPU per LPUSH; respq's own, and the upstream's for the mirror)"
printf '  %-6s %12s %12s %7s %10s %10s %8s %12s  %s\n' pipe "off ops/s" "on ops/s" cost \
  "cpu off" "cpu on" "cpu +%" "upstream" "runs off | on (ops/s)"
for p in 1 16; do
  n=$n1; [[ $p == 16 ]] && n=$n16
  offs=(); ons=(); coff=(); con=(); cup=()
  for _ in $(seq "$rounds"); do
    reset; read -r o r _ <<<"$(run "$off" "$p" "$n" "$off_pid")"; offs+=("$o"); coff+=("$r")
    reset; read -r o r u <<<"$(run "$on" "$p" "$n" "$on_pid")"; ons+=("$o"); con+=("$r"); cup+=("$u")
  done
  mo=$(printf '%s\n' "${offs[@]}" | median); mn=$(printf '%s\n' "${ons[@]}" | median)
  co=$(printf '%s\n' "${coff[@]}" | median); cn=$(printf '%s\n' "${con[@]}" | median)
  cu=$(printf '%s\n' "${cup[@]}" | median)
  cost=$(awk -v a="$mo" -v b="$mn" 'BEGIN { printf "%.1f%%", (a - b) / a * 100 }')
  cpuc=$(awk -v a="$co" -v b="$cn" 'BEGIN { printf "%.1f%%", (a > 0 ? (b - a) / a * 100 : 0) }')
  printf '  -P %-3s %12.0f %12.0f %7s %10.3f %10.3f %8s %12.3f  %s | %s\n' "$p" "$mo" "$mn" "$cost" "$co" "$cn" \
    "$cpuc" "$cu" "${offs[*]%.*}" "${ons[*]%.*}"
done
echo "  mirror: resyncs=$(mirror_field resyncs) (1 = the start) overflows=$(mirror_field backlog_overflows)" \
     "batches=$(mirror_field batches_sent) applied_offset=$(mirror_field applied_offset); target: cost < 15%"
