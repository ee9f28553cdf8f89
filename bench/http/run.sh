#!/usr/bin/env bash
# Notely's API under wrk, side by side with the HTTP ceiling of this machine (a minimal axum
# server answering a constant), in one run: GET note and PUT note, req/s and p99.
# Needs wrk (Debian package `wrk`). Usage: bench/http/run.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet -p notely --bins --examples
data=$(mktemp -d)
trap 'kill $notely_pid $ceiling_pid 2>/dev/null || true; rm -rf "$data"' EXIT
./target/release/notely --data-dir "$data" --port 18080 --backups 0 > "$data/notely.log" &
notely_pid=$!
./target/release/examples/ceiling 18090 > "$data/ceiling.log" &
ceiling_pid=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:18080/healthz >/dev/null 2>&1 && curl -fs http://127.0.0.1:18090/x >/dev/null 2>&1 && break
  sleep 0.1
done
account=$(curl -fs -X POST -H 'content-type: application/json' -d '{"name":"bench"}' http://127.0.0.1:18080/accounts | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
note=$(curl -fs -X POST -H 'content-type: application/json' -d '{"content":"hello"}' "http://127.0.0.1:18080/accounts/$account/notes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
url="http://127.0.0.1:18080/accounts/$account/notes/$note"
run() { # name, then wrk arguments
  local name=$1; shift
  wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" | python3 bench/http/parse.py "$name"
}
{
  run "ceiling GET" http://127.0.0.1:18090/x
  run "notely GET note" "$url"
  run "ceiling PUT" -s bench/http/put.lua http://127.0.0.1:18090/x
  run "notely PUT note" -s bench/http/put.lua "$url"
} > "$data/results.tsv"
python3 - "$data/results.tsv" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
r = {name: (float(rps), float(p99)) for name, rps, p99 in rows}
print("| request | req/s | p99 | vs ceiling |")
print("|---|---|---|---|")
for name, ceil in [("notely GET note", "ceiling GET"), ("notely PUT note", "ceiling PUT")]:
    for n in (ceil, name):
        rps, p99 = r[n]
        ratio = f"{rps / r[ceil][0] * 100:.0f}%" if n == name else "100%"
        print(f"| {n} | {rps:,.0f} | {p99:.2f} ms | {ratio} |")
get = r["notely GET note"][0] / r["ceiling GET"][0]
print()
print(f"- {'met' if get >= 0.5 else 'MISSED'}: GET note ≥ 50% of the ceiling ({get * 100:.0f}%)")
PY
