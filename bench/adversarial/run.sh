#!/usr/bin/env bash
# The adversarial suite, long: what `cargo test` runs in seconds, here for minutes.
#   - request fuzzing of every route (FUZZ_CASES random requests: methods, paths, encodings,
#     bodies, headers; never a 5xx or a panic, every error JSON),
#   - kill -9 of a real server at KILLS random points under 4 concurrent writers, against a
#     ledger of every acknowledged write (0 lost, 0 resurrected),
#   - two servers on one data directory writing the same notes,
#   - the online engine's random interleavings (ids that collide across owners included) with
#     PROPTEST_CASES cases, and moves, shards and reshards with colliding client-chosen ids,
#   - idle and slow connections under a low open-file limit, damaged pages, restore round trips.
# Release build. Exits non-zero if any part fails. Usage:
#   bench/adversarial/run.sh [KILLS] [FUZZ_CASES] [PROPTEST_CASES]
set -euo pipefail
cd "$(dirname "$0")/../.."
kills=${1:-60}
fuzz=${2:-20000}
cases=${3:-1000}
started=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
part() {
  local name=$1
  shift
  local t0
  t0=$(date +%s)
  if "$@" >"$log" 2>&1; then
    echo "ok    $name ($(($(date +%s) - t0)) s)"
    grep -E "^[0-9]+ kills|^seed" "$log" | sed 's/^/      /' || true
  else
    echo "FAIL  $name"
    grep -E "panicked|FAILED|assert" -A4 "$log" | head -40
    exit 1
  fi
}
cargo build --release -q -p notely --tests
part "notely: $fuzz fuzzed requests, $kills kill -9s under writers, two servers" \
  env NOTELY_KILLS="$kills" NOTELY_FUZZ_CASES="$fuzz" \
  cargo test --release -q -p notely --test notely adversarial:: -- --nocapture --test-threads 1
part "online engine: $cases random interleavings" \
  env PROPTEST_CASES="$cases" cargo test --release -q -p strata-tests --test integration online
part "notely: colliding ids through moves, idle/slow connections, damage, restore" \
  cargo test --release -q -p notely --test notely -- online:: exposure:: operations::
echo "done in $(($(date +%s) - started)) s"
