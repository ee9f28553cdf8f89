#!/usr/bin/env python3
"""Reads wrk --latency output on stdin; prints `name<TAB>requests per second<TAB>p99 ms`."""
import re
import sys

text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit(f"{sys.argv[1]}: {errors.group(1)} error responses\n{text}")
print(f"{sys.argv[1]}\t{rps}\t{float(m.group(1)) * scale}")
