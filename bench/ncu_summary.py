#!/usr/bin/env python3
"""GPU time by kernel from an ncu CSV (kernel times by name; nsys is not on the GPU machine).

    ncu --csv --print-units base --metrics gpu__time_duration.sum [--profile-from-start off] CMD > k.csv
    bench/ncu_summary.py k.csv [STEPS] [TITLE]

STEPS divides the totals (e.g. the iterations of a timed loop profiled between cudaProfilerStart/Stop:
bench/bench_util.h's timed_loop does that under WICK_BENCH_PROFILE=1). Prints one line a kernel, largest
first: share, time per step, launches per step, the name cut to 110 characters."""
import csv
import sys
from collections import defaultdict


def main():
    path = sys.argv[1]
    steps = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    title = sys.argv[3] if len(sys.argv) > 3 else path
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]  # ncu's own ==PROF== lines are not CSV
    rows = list(csv.DictReader(lines))
    time = defaultdict(float)
    count = defaultdict(int)
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = r["Kernel Name"]
        time[name] += float(r["Metric Value"].replace(",", ""))
        count[name] += 1
    total = sum(time.values())
    launches = sum(count.values())
    print(f"# {title}")
    print(f"unit ns; {launches} launches, GPU time {total / 1e6:.3f} ms; per step (/{steps:g}) "
          f"{total / steps / 1e3:.1f} us, {launches / steps:.1f} launches")
    for name, t in sorted(time.items(), key=lambda kv: -kv[1]):
        print(f"{100 * t / total:6.2f}% {t / steps / 1e3:10.2f} us/step {count[name] / steps:7.1f}/step  {name[:110]}")


if __name__ == "__main__":
    main()
