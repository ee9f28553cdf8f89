#!/usr/bin/env bash
# The bulk split, side by side in one run: `strata split` of the 2M-row, 7-column `clients`
# table into 10 shards + the reserved one, against the single-copy floor (the sqlite3 shell
# copying the table once into one database) and a straightforward Python split. Wall time and
# peak memory (max RSS), median of RUNS runs each.
# Needs the sqlite3 shell and GNU time (Debian: apt-get install -y sqlite3 time).
# Usage: bench/split/run.sh [ROWS=2000000] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-2000000}
runs=${2:-3}
shared=../shared/bench
for tool in sqlite3 /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y sqlite3 time python3" >&2; exit 1; }
done
cargo build --release --quiet -p strata-cli --bin strata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash "$shared/make-clients.sh" "$work/clients.db" "$rows"
measure() { # name, command...: appends "name seconds kib" to results
  local name=$1; shift
  /usr/bin/time -f "$name %e %M" -a -o "$work/results" "$@" >/dev/null 2>&1
}
for _ in $(seq "$runs"); do
  measure floor bash "$shared/copy_floor.sh" "$work/clients.db" "$work/floor.db"
  rm -rf "$work/strata"
  measure strata ./target/release/strata split --source "$work/clients.db" --table clients \
    --key MOBILE_NUMBER --shards 10 --out "$work/strata"
  rm -rf "$work/python"
  measure python python3 "$shared/split_baseline.py" "$work/clients.db" "$work/python" 10
done
./target/release/strata split verify --source "$work/clients.db" --table clients \
  --key MOBILE_NUMBER --shards 10 --out "$work/strata" | tail -1
python3 - "$work/results" "$rows" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, secs, kib = line.split()
    runs.setdefault(name, []).append((float(secs), int(kib)))
rows = int(sys.argv[2])
med = {n: (statistics.median(s for s, _ in v), max(k for _, k in v)) for n, v in runs.items()}
floor = med["floor"][0]
print(f"| {rows:,} rows | wall (median) | vs floor | rows/s | peak memory |")
print("|---|---|---|---|---|")
for name, label in [("floor", "sqlite3 copy, one file (floor)"), ("strata", "strata split, 10 + 1 shards"), ("python", "Python split (baseline)")]:
    secs, kib = med[name]
    print(f"| {label} | {secs:.2f} s | {secs / floor:.2f}× | {rows / secs:,.0f} | {kib / 1024:.0f} MiB |")
s_secs, s_kib = med["strata"]
print()
print(f"- {'met' if s_secs <= floor else 'MISSED'}: strata ≤ 1.0× the floor ({s_secs / floor:.2f}×)")
print(f"- {'met' if s_kib <= 256 * 1024 else 'MISSED'}: peak memory ≤ 256 MiB ({s_kib / 1024:.0f} MiB)")
PY
