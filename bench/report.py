#!/usr/bin/env python3
"""Medians and ratios from the benchmark's JSON lines; checks the targets."""
import json
import statistics
import sys


def fmt(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def main(path):
    med = {}
    for line in open(path):
        r = json.loads(line)
        med[(r["mode"], r["set"], r["tool"])] = statistics.median(r["samples_us"])
    print("| mode | set | Strata | refinery | sqlx | refinery / Strata | sqlx / Strata |")
    print("|---|---|---|---|---|---|---|")
    for mode in ["steady", "cold"]:
        for n in ["n10", "n100", "n1000", "t1000"]:
            s, r, q = (med[(mode, n, t)] for t in ["strata", "refinery", "sqlx"])
            print(f"| {mode} | {n} | {fmt(s)} | {fmt(r)} | {fmt(q)} | {r / s:.2f}× | {q / s:.2f}× |")
    steady = med[("steady", "n1000", "strata")]
    cold = med[("cold", "n1000", "strata")]
    faster_peer = min(med[("cold", "n1000", "refinery")], med[("cold", "n1000", "sqlx")])
    checks = [
        ("steady-state check of 1000 ≤ 1 ms", steady <= 1000),
        ("steady-state check of 1000 faster than both peers",
         steady < med[("steady", "n1000", "refinery")] and steady < med[("steady", "n1000", "sqlx")]),
        ("cold apply of 1000 no slower than the faster peer", cold <= faster_peer),
    ]
    print()
    for name, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {name}")


if __name__ == "__main__":
    main(sys.argv[1])
