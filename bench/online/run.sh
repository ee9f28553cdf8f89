#!/usr/bin/env bash
# The online move from the legacy store to the new one, under strict simulated users, in one
# run: `notely demo --legacy` seeds ACCOUNTS accounts with NOTES legacy notes each, lets the
# users run for a while, moves every account while they go on, and reports. This script runs
# it RUNS times on a quiet machine, then RUNS times with a CPU hog (a busy loop on one core,
# bounded in time) beside Notely, and prints the figures against the targets: in every run,
# 0 consistency misses, 0 verify differences, p99 during the move ≤ 1.5× p99 before it; and the
# backfill rate achieved, its median on the quiet machine against 20k notes/s. The server's move worker paces itself by the foreground's latency
# (`--move-latency-budget`, default 1.5×) under a cap of MAX_RATE notes/s (`--move-max-rate`,
# 0: no cap).
# Usage: bench/online/run.sh [ACCOUNTS] [NOTES] [RUNS] [MAX_RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."
accounts=${1:-50}
notes=${2:-2000}
runs=${3:-3}
max_rate=${4:-25000}
cap=()
[ "$max_rate" != 0 ] && cap=(--move-max-rate "$max_rate")
cargo build --release --quiet -p notely
quiet=$(mktemp)
hogged=$(mktemp)
trap 'rm -f "$quiet" "$hogged"' EXIT
for _ in $(seq "$runs"); do
  ./target/release/notely demo --legacy --accounts "$accounts" --legacy-notes "$notes" \
    --duration 6 --json "${cap[@]}" >> "$quiet"
done
for _ in $(seq "$runs"); do
  # One core kept busy for the length of a run (and never longer than two minutes).
  timeout 120 sh -c 'while :; do :; done' &
  hog=$!
  ./target/release/notely demo --legacy --accounts "$accounts" --legacy-notes "$notes" \
    --duration 6 --json "${cap[@]}" >> "$hogged"
  kill "$hog" 2>/dev/null || true
  wait "$hog" 2>/dev/null || true
done
python3 - "$quiet" "$hogged" <<'PY'
import json, statistics, sys
ok = True
medians = []
for title, path in (("quiet machine", sys.argv[1]), ("a CPU hog on one core beside Notely", sys.argv[2])):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    print(f"\n{title}:\n")
    print("| run | notes moved | backfill notes/s | p99 before | p99 during | ratio | misses | verify differences |")
    print("|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        m = r["moves"][0]
        ratio = r["p99_during_ms"] / r["p99_before_ms"] if r["p99_before_ms"] else float("inf")
        print(f"| {i} | {m['records']:,} | {m['records_per_s']:,.0f} | {r['p99_before_ms']:.1f} ms | "
              f"{r['p99_during_ms']:.1f} ms | {ratio:.2f}× | {r['consistency_misses']} | {r['verify_differences']} |")
        ok &= (r["consistency_misses"] == 0 and r["verify_differences"] == 0
               and m["state"] == "done" and ratio <= 1.5)
    rates = [r["moves"][0]["records_per_s"] for r in runs]
    medians.append(statistics.median(rates))
    print(f"\n- median backfill {medians[-1]:,.0f} notes/s")
print()
print(f"- every run: p99 during ≤ 1.5× before, 0 misses, 0 differences: {'met' if ok else 'MISSED'}")
print(f"- median backfill on the quiet machine ≥ 20k notes/s: "
      f"{'met' if medians[0] >= 20000 else 'MISSED'} ({medians[0]:,.0f}; with the hog {medians[1]:,.0f})")
PY
