#!/usr/bin/env python3
"""Medians (of every sample of a tool, mode and set, over all rounds) and ratios from the
benchmark's JSON lines; checks the targets.

`floor` is plain rusqlite doing only what a safe runner must (bench/floor-bench): the cost of
SQLite itself, which no runner can go below.
"""
import json
import statistics
import sys

SETS = ["n10", "n100", "n1000", "t1000"]
PEERS = ["refinery", "sqlx"]


def fmt(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def main(path):
    samples = {}
    for line in open(path):
        r = json.loads(line)
        samples.setdefault((r["mode"], r["set"], r["tool"]), []).extend(r["samples_us"])
    med = {key: statistics.median(s) for key, s in samples.items()}
    print("| mode | set | Strata | floor | refinery | sqlx | Strata / floor | refinery / Strata | sqlx / Strata |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode in ["steady", "cold"]:
        for n in SETS:
            s, f, r, q = (med[(mode, n, t)] for t in ["strata", "floor", "refinery", "sqlx"])
            print(f"| {mode} | {n} | {fmt(s)} | {fmt(f)} | {fmt(r)} | {fmt(q)} | {s / f:.2f}× | {r / s:.2f}× | {q / s:.2f}× |")

    print()
    print("Cold apply, Strata's group commit against a transaction per migration, and refinery's")
    print("opt-in grouping (every migration in one transaction):")
    print()
    print("| set | Strata (group commit) | Strata (a transaction each) | floor | refinery grouped | single / floor | refinery grouped / Strata |")
    print("|---|---|---|---|---|---|---|")
    for n in SETS:
        s, one, f, g = (med[("cold", n, t)] for t in ["strata", "strata-single", "floor", "refinery-grouped"])
        print(f"| {n} | {fmt(s)} | {fmt(one)} | {fmt(f)} | {fmt(g)} | {one / f:.2f}× | {g / s:.2f}× |")

    def strata(mode, n):
        return med[(mode, n, "strata")]

    def faster_peer(mode, n):
        return min(med[(mode, n, p)] for p in PEERS)

    checks = [
        ("steady-state check of 1000 ≤ 1 ms", strata("steady", "n1000") <= 1000),
        ("steady-state check faster than every peer at every set size",
         all(strata("steady", n) < faster_peer("steady", n) for n in SETS)),
        ("cold apply of 1000 ≤ 1.2× the floor",
         strata("cold", "n1000") <= 1.2 * med[("cold", "n1000", "floor")]),
        ("cold apply of 1000 with a transaction per migration ≤ 1.2× the floor",
         med[("cold", "n1000", "strata-single")] <= 1.2 * med[("cold", "n1000", "floor")]),
        ("cold apply of 1000 ≥ 2× faster than the faster peer",
         2 * strata("cold", "n1000") <= faster_peer("cold", "n1000")),
    ]
    print()
    for name, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {name}")


if __name__ == "__main__":
    main(sys.argv[1])
