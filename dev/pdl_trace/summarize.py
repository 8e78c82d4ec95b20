#!/usr/bin/env python3
"""Summarise dev/pdl_trace's records (pdl_trace.patch): per replayed decode step, each launch's block (0,0,0)
wrote the global timer when it called pdl::enter() and when the wait returned, with its grid and block size.
A launch's cost in the chain is the time from its own wait returning to the next launch's (the kernel before a
launch has finished when its wait returns). Prints, per launch signature (grid x block), the count a step and
the mean cost in us, the step's total, and the sequence of the step's first launches.
usage: summarize.py TRACE_FILE [FIRST_N]"""
import collections
import sys

steps, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith('#'):
        cur = []
        steps.append(cur)
        continue
    t0, t1, grid, block = map(int, line.split())
    cur.append((t1, t0, grid, block))
first_n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
for si, recs in enumerate(steps):
    recs.sort()
    if len(recs) < 2:
        continue
    cost = collections.defaultdict(list)
    for (t1, t0, g, b), nxt in zip(recs, recs[1:]):
        cost[(g, b)].append((nxt[0] - t1) / 1000.0)
    total = (recs[-1][0] - recs[0][0]) / 1000.0
    print(f"step {si}: {len(recs)} launches, first wait-return to last {total:.1f} us")
    for (g, b), v in sorted(cost.items(), key=lambda kv: -sum(kv[1])):
        print(f"  grid {g:6d} x {b:4d} threads: {len(v):4d} a step, {sum(v)/len(v):7.2f} us each, {sum(v):8.1f} us in all")
    print("  sequence (grid x block: cost us, waited in enter us):")
    for (t1, t0, g, b), nxt in list(zip(recs, recs[1:]))[:first_n]:
        print(f"    {g:6d} x {b:4d}: {(nxt[0] - t1) / 1000.0:6.2f}  (waited {(t1 - t0) / 1000.0:6.2f})")
