#!/usr/bin/env bash
# The online move from the legacy store to the new one, under strict simulated users, in one
# run: `notely demo --legacy` seeds ACCOUNTS accounts with NOTES legacy notes each, lets the
# users run for a while, moves every account while they go on, and reports. This script runs
# it RUNS times and prints the figures against the targets (0 consistency misses, 0 verify
# differences, p99 during the move ≤ 1.5× p99 before it, backfill ≥ 20k notes/s).
# The server's move worker is capped at MAX_RATE notes/s (`--move-max-rate`, 0: no cap), the
# knob that trades backfill speed for foreground latency.
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
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$runs"); do
  ./target/release/notely demo --legacy --accounts "$accounts" --legacy-notes "$notes" \
    --duration 6 --json "${cap[@]}" >> "$out"
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | notes moved | backfill notes/s | p99 before | p99 during | ratio | misses | verify differences |")
print("|---|---|---|---|---|---|---|---|")
ok = True
for i, r in enumerate(runs, 1):
    l = r; m = l["moves"][0]
    ratio = l["p99_during_ms"] / l["p99_before_ms"] if l["p99_before_ms"] else float("inf")
    print(f"| {i} | {m['records']:,} | {m['records_per_s']:,.0f} | {l['p99_before_ms']:.1f} ms | "
          f"{l['p99_during_ms']:.1f} ms | {ratio:.2f}× | {r['consistency_misses']} | {l['verify_differences']} |")
    ok &= (r["consistency_misses"] == 0 and l["verify_differences"] == 0 and m["state"] == "done")
rates = [r["moves"][0]["records_per_s"] for r in runs]
ratios = [r["p99_during_ms"] / r["p99_before_ms"] for r in runs]
print()
print(f"- median backfill {statistics.median(rates):,.0f} notes/s "
      f"({'met' if statistics.median(rates) >= 20000 else 'MISSED'}: ≥ 20k/s)")
print(f"- median p99 during/before {statistics.median(ratios):.2f}× "
      f"({'met' if statistics.median(ratios) <= 1.5 else 'MISSED'}: ≤ 1.5×)")
print(f"- consistency misses and verify differences: {'all 0 (met)' if ok else 'NOT 0 (MISSED)'}")
PY
