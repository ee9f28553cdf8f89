#!/usr/bin/env bash
# Notely's API under wrk, side by side with the HTTP ceiling of this machine (a minimal axum
# server answering a constant), in one run: GET note and PUT note, req/s and p99; then the same
# with the account's notes in one of 4 shards (`notely move start --shards 4`), and with a move
# in progress (a legacy account's note while `notely move start --to notes --all` backfills
# MOVE_NOTES legacy notes, the server's worker paced as in production).
# GET note and PUT note are measured in ROUNDS slices of SECONDS alternating with the ceiling's
# (ceiling, Notely, ceiling, Notely, ...), so that the VM's slow and fast spells fall on both:
# req/s is the mean of the slices, p99 the worst slice's. The other rows run once, SECONDS long.
# Needs wrk (Debian package `wrk`). Usage: bench/http/run.sh [SECONDS] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
rounds=${3:-3}
# Ports of our own choosing, away from a Notely running on this machine (8080 or any other).
port=$((20000 + RANDOM % 20000))
cport=$((port + 1))
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet -p notely --bins --examples
data=$(mktemp -d)
trap 'kill $notely_pid $ceiling_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT
./target/release/notely --data-dir "$data" --port "$port" --backups 0 > "$data/notely.log" &
notely_pid=$!
./target/release/examples/ceiling "$cport" > "$data/ceiling.log" &
ceiling_pid=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:$port/healthz >/dev/null 2>&1 && curl -fs http://127.0.0.1:$cport/x >/dev/null 2>&1 && break
  sleep 0.1
done
account=$(curl -fs -X POST -H 'content-type: application/json' -d '{"name":"bench"}' http://127.0.0.1:$port/accounts | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
note=$(curl -fs -X POST -H 'content-type: application/json' -d '{"content":"hello"}' "http://127.0.0.1:$port/accounts/$account/notes" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
url="http://127.0.0.1:$port/accounts/$account/notes/$note"
run() { # name, then wrk arguments
  local name=$1; shift
  wrk -t2 -c"$conns" -d"${secs}s" --latency "$@" | python3 bench/http/parse.py "$name"
}
# Warm-up (not measured): both servers' first seconds under load (caches, lazily prepared
# statements, the CPU's clock) count in neither's figures.
for target in http://127.0.0.1:$cport/x "$url"; do
  wrk -t2 -c"$conns" -d2s "$target" > /dev/null
  wrk -t2 -c"$conns" -d2s -s bench/http/put.lua "$target" > /dev/null
done
{
  for _ in $(seq "$rounds"); do
    run "ceiling GET" http://127.0.0.1:$cport/x
    run "notely GET note" "$url"
  done
  for _ in $(seq "$rounds"); do
    run "ceiling PUT" -s bench/http/put.lua http://127.0.0.1:$cport/x
    run "notely PUT note" -s bench/http/put.lua "$url"
  done
  # 4 shards: the account moves into its shard first.
  ./target/release/notely --data-dir "$data" move start --shards 4 --wait > /dev/null 2>&1
  run "notely GET note, 4 shards" "$url"
  run "notely PUT note, 4 shards" -s bench/http/put.lua "$url"
  # A move in progress: legacy accounts moving to the notes store while wrk reads and writes
  # a note of one of them.
  ./target/release/notely --data-dir "$data" move seed-legacy --accounts 50 \
    --notes $((${MOVE_NOTES:-200000} / 50)) > /dev/null
  legacy=$(curl -fs http://127.0.0.1:$port/accounts | python3 -c 'import json,sys; print(next(a["id"] for a in json.load(sys.stdin) if a.get("shard") == "legacy"))')
  lnote=$(curl -fs "http://127.0.0.1:$port/accounts/$legacy/notes" | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1])')
  lurl="http://127.0.0.1:$port/accounts/$legacy/notes/$lnote"
  ./target/release/notely --data-dir "$data" move start --to notes --all > /dev/null
  run "notely GET note, move in progress" "$lurl"
  run "notely PUT note, move in progress" -s bench/http/put.lua "$lurl"
} > "$data/results.tsv"
moving=$(./target/release/notely --data-dir "$data" move status 2>&1 | head -1 || true)
python3 - "$data/results.tsv" "$moving" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
slices = {}
for name, rps, p99 in rows:
    slices.setdefault(name, []).append((float(rps), float(p99)))
# Per row: the mean req/s of its slices, the worst slice's p99.
r = {name: (sum(s[0] for s in ss) / len(ss), max(s[1] for s in ss)) for name, ss in slices.items()}
print("| request | req/s | p99 | vs ceiling |")
print("|---|---|---|---|")
for name, ceil in [("notely GET note", "ceiling GET"), ("notely PUT note", "ceiling PUT")]:
    for n in (ceil, name):
        rps, p99 = r[n]
        ratio = f"{rps / r[ceil][0] * 100:.0f}%" if n == name else "100%"
        print(f"| {n} | {rps:,.0f} | {p99:.2f} ms | {ratio} |")
for n, ceil in [(f"notely {m} note, {what}", f"ceiling {m}") for what in ("4 shards", "move in progress") for m in ("GET", "PUT")]:
    if n in r:
        rps, p99 = r[n]
        print(f"| {n} | {rps:,.0f} | {p99:.2f} ms | {rps / r[ceil][0] * 100:.0f}% |")
print()
ok = lambda b: "met" if b else "MISSED"
for m, floor in (("GET", 0.6), ("PUT", 0.4)):
    n, c = r[f"notely {m} note"], r[f"ceiling {m}"]
    print(f"- {ok(n[0] / c[0] >= floor)}: {m} note ≥ {floor:.0%} of the ceiling ({n[0] / c[0] * 100:.0f}%), "
          f"p99 ≤ 2× the ceiling's ({n[1] / c[1]:.2f}×: {ok(n[1] <= 2 * c[1])})")
print(f"- the move, when the runs ended: {sys.argv[2]}")
PY
