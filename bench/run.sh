#!/usr/bin/env bash
# Side-by-side benchmark: Strata, refinery and sqlx applying the same generated migrations to
# SQLite files, in one run on one machine, beside the floor: plain rusqlite doing only what a
# safe runner must (floor-bench: per migration BEGIN IMMEDIATE, its statements, one history
# insert, COMMIT; at startup, reading the history's versions and checksums). Sets (see
# gen_migrations.py): n10, n100, n1000 (one table, then a row per migration) and t1000 (a table
# per migration). Modes:
#   cold   — a fresh database file, apply all N (open + check + apply)
#   steady — all N applied, none pending: the startup check (open + check)
# Cold applies also run two variants: Strata with a transaction per migration (`strata-single`,
# no group commit: the floor's own discipline) and refinery's opt-in grouping
# (`refinery-grouped`, every migration in one transaction).
# Every tool uses a rollback journal with synchronous=FULL (SQLite's defaults).
# Prints medians and ratios as a Markdown table (also saved to bench/results/).
set -euo pipefail
cd "$(dirname "$0")"
python3 gen_migrations.py
tools="strata floor refinery sqlx"
for tool in $tools; do
  (cd "$tool-bench" && cargo build --release --quiet)
done
mkdir -p results
raw=results/raw.jsonl
: > "$raw"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Rounds, each tool in turn within a round (which tool goes first rotating from round to round),
# so that whatever else the machine does at one moment weighs on every tool alike; report.py
# takes the median of all of a tool's samples.
sets="n10 n100 n1000 t1000"
# A tool or variant: its binary, with BENCH_VARIANT set for the variants.
bench() {
  local tool=$1
  shift
  case $tool in
    strata-single) BENCH_VARIANT=single "./strata-bench/target/release/strata-bench" "$@" ;;
    refinery-grouped) BENCH_VARIANT=grouped "./refinery-bench/target/release/refinery-bench" "$@" ;;
    *) "./$tool-bench/target/release/$tool-bench" "$@" ;;
  esac
}
rotate() {
  local shift=$1
  shift
  for _ in $(seq $((shift % $#))); do set -- "${@:2}" "$1"; done
  echo "$@"
}
for round in 1 2 3 4 5; do
  for set in $sets; do
    case $set in n10) cold=6 ;; n100) cold=2 ;; *) cold=1 ;; esac
    for tool in $(rotate "$round" $tools strata-single refinery-grouped); do
      d=$(mktemp -d -p "$work")
      bench "$tool" cold "$set" "$cold" "$d" >> "$raw"
      rm -rf "$d"
    done
  done
done
# Steady: each tool's database migrated once (its writes synced), then sixty rounds of 20
# startup checks; a call's own setup finds nothing to do.
for set in $sets; do
  for tool in $tools; do
    mkdir -p "$work/$tool-$set"
    bench "$tool" steady "$set" 1 "$work/$tool-$set" > /dev/null
  done
done
sync
for round in $(seq 60); do
  for set in $sets; do
    for tool in $(rotate "$round" $tools); do
      bench "$tool" steady "$set" 20 "$work/$tool-$set" >> "$raw"
    done
  done
done
python3 report.py "$raw" | tee results/table.md
