#!/usr/bin/env bash
# A/B of two notely binaries (say, before and after a change), each beside the HTTP ceiling
# (notely/examples/ceiling.rs), alternating ROUNDS times so that the VM's slow and fast spells
# fall on both: per run, req/s and p99 of GET note and PUT note, the share of the ceiling of
# the same minute, and the server's CPU time per request (user + system, from /proc) and
# context switches per request, which move less than throughput between runs.
# Needs wrk. Usage: bench/http/ab.sh BIN_A BIN_B [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [SECONDS] [ROUNDS]" >&2; exit 2; }
a=$(realpath "$1"); b=$(realpath "$2"); secs=${3:-5}; rounds=${4:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet -p notely --example ceiling
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
# name, pid, then wrk arguments: name, req/s, p99, CPU ticks, switches
measure() {
  local name=$1 pid=$2; shift 2
  local t0 s0 out
  t0=$(cpu "$pid"); s0=$(switches "$pid")
  out=$(wrk -t2 -c32 -d"${secs}s" --latency "$@" | python3 bench/http/parse.py "$name")
  printf '%s\t%s\t%s\n' "$out" "$(( $(cpu "$pid") - t0 ))" "$(( $(switches "$pid") - s0 ))"
}
one() { # label, binary
  local data port notely ceiling account note url
  data=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  "$2" --data-dir "$data" --port "$port" --backups 0 > "$data/notely.log" 2>&1 &
  notely=$!
  ./target/release/examples/ceiling $((port + 1)) > /dev/null &
  ceiling=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 \
      && curl -fs "http://127.0.0.1:$((port + 1))/x" >/dev/null 2>&1 && break
    sleep 0.1
  done
  account=$(curl -fs -X POST -H 'content-type: application/json' -d '{"name":"ab"}' \
    "http://127.0.0.1:$port/accounts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  note=$(curl -fs -X POST -H 'content-type: application/json' -d '{"content":"hello"}' \
    "http://127.0.0.1:$port/accounts/$account/notes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  url="http://127.0.0.1:$port/accounts/$account/notes/$note"
  wrk -t2 -c32 -d1s "$url" > /dev/null
  measure "ceiling GET" "$ceiling" "http://127.0.0.1:$((port + 1))/x"
  measure "$1 GET" "$notely" "$url"
  measure "ceiling PUT" "$ceiling" -s bench/http/put.lua "http://127.0.0.1:$((port + 1))/x"
  measure "$1 PUT" "$notely" -s bench/http/put.lua "$url"
  kill -9 "$notely" "$ceiling" 2>/dev/null || true
  wait "$notely" "$ceiling" 2>/dev/null || true
  rm -rf "$data"
}
for _ in $(seq "$rounds"); do
  one A "$a"
  one B "$b"
done | python3 -c '
import sys
ticks = 100  # USER_HZ
secs = float(sys.argv[1])
ceiling = None
print("| run | req/s | p99 | of the ceiling | CPU per request | vs ceiling CPU | switches per request |")
print("|---|---|---|---|---|---|---|")
for line in sys.stdin:
    name, rps, p99, cpu, sw = line.rstrip("\n").split("\t")
    n = float(rps) * secs
    us = int(cpu) / ticks / n * 1e6
    if name.startswith("ceiling"):
        ceiling = (float(rps), us)
        continue
    print(f"| {name} | {float(rps):,.0f} | {float(p99):.2f} ms | {float(rps) / ceiling[0]:.0%} "
          f"| {us:.1f} µs | {us / ceiling[1]:.2f}× | {int(sw) / n:.2f} |")
' "$secs"
