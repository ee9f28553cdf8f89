#!/usr/bin/env bash
# Side-by-side benchmark: Strata, refinery and sqlx applying the same generated migrations to
# SQLite files, in one run on one machine. Sets (see gen_migrations.py): n10, n100, n1000 (one
# table, then a row per migration) and t1000 (a table per migration). Modes:
#   cold   — a fresh database file, apply all N (open + check + apply)
#   steady — all N applied, none pending: the startup check (open + check)
# Every tool uses a rollback journal with synchronous=FULL (SQLite's defaults).
# Prints medians and ratios as a Markdown table (also saved to bench/results/).
set -euo pipefail
cd "$(dirname "$0")"
python3 gen_migrations.py
for tool in strata refinery sqlx; do
  (cd "$tool-bench" && cargo build --release --quiet)
done
mkdir -p results
raw=results/raw.jsonl
: > "$raw"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for set in n10 n100 n1000 t1000; do
  case $set in n10) cold=30 ;; n100) cold=10 ;; *) cold=5 ;; esac
  for tool in strata refinery sqlx; do
    d=$(mktemp -d -p "$work")
    "./$tool-bench/target/release/$tool-bench" cold "$set" "$cold" "$d" >> "$raw"
    rm -rf "$d"
    d=$(mktemp -d -p "$work")
    "./$tool-bench/target/release/$tool-bench" steady "$set" 50 "$d" >> "$raw"
    rm -rf "$d"
  done
done
python3 report.py "$raw" | tee results/table.md
