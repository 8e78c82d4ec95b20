#!/usr/bin/env bash
# The seed micro rows on the CPU, wick against PyTorch eager, side by side on this machine: wick_bench's
# /cpu seed rows and `bench/peer/torch_peer.py micro` (it runs on the CPU when torch sees no GPU), both
# with the same thread count, run ROUNDS times interleaved (wick, torch, wick, torch, ...), then a table
# of medians and the ratio torch / wick per round (> 1: wick is faster).
#
#   bench/cpu-vs-torch.sh [--install] [--threads N] [--rounds N] [--wick BIN] [--baseline BIN] [--out DIR]
#
#   --install      apt-get install python3-torch first (Debian's PyTorch; never done unasked)
#   --threads N    OpenMP / OpenBLAS / torch threads for both sides (default 2)
#   --rounds N     interleaved rounds (default 2)
#   --wick BIN     the wick_bench to time (default build/bench/wick_bench; build it with
#                  `cmake --build build --target wick_bench`)
#   --baseline BIN a second wick_bench (e.g. an older build) timed in the same rounds, shown as its own
#                  columns: a before/after comparison on the same machine state
#   --out DIR      where the JSON results and table.txt go (default out/cpu-vs-torch)
#
# The python that runs the peer: $PYTHON, else the first of python3, /usr/bin/python3 that imports torch.
# Timings on a shared machine are noisy: the load average before and after is printed with the table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
INSTALL=0 THREADS=2 ROUNDS=2 WICK=$ROOT/build/bench/wick_bench BASELINE="" OUTDIR=$ROOT/out/cpu-vs-torch
die() { echo "cpu-vs-torch: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --install) INSTALL=1 ;;
    --threads) THREADS=${2:?--threads needs a number}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --wick) WICK=${2:?--wick needs a path}; shift ;;
    --baseline) BASELINE=${2:?--baseline needs a path}; shift ;;
    --out) OUTDIR=${2:?--out needs a directory}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

if [ "$INSTALL" = 1 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch
fi

PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import torch' >/dev/null 2>&1; then PY=$p; break; fi
done
[ -n "$PY" ] || die "no python3 with torch found (set PYTHON, or pass --install for Debian's python3-torch)"
[ -x "$WICK" ] || die "$WICK is missing: cmake --build build --target wick_bench"
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || die "baseline $BASELINE is not an executable"
mkdir -p "$OUTDIR"

# Same threads for both sides; torch's get_num_threads follows OMP_NUM_THREADS. No GPU for the peer.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS CUDA_VISIBLE_DEVICES=""
FILTER=$(python3 "$ROOT/bench/seed_table.py" --filter cpu)
load() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_BEFORE=$(load)
echo "cpu-vs-torch: $ROUNDS rounds, $THREADS threads, load average before: $LOAD_BEFORE" >&2
for r in $(seq 1 "$ROUNDS"); do
  echo "  round $r: wick" >&2
  "$WICK" --benchmark_filter="$FILTER" --benchmark_format=json >"$OUTDIR/wick-$r.json" 2>/dev/null
  echo "  round $r: torch ($PY)" >&2
  (cd "$ROOT" && "$PY" bench/peer/torch_peer.py micro) >"$OUTDIR/torch-$r.jsonl"
  if [ -n "$BASELINE" ]; then
    echo "  round $r: baseline wick" >&2
    "$BASELINE" --benchmark_filter="$FILTER" --benchmark_format=json >"$OUTDIR/baseline-$r.json" 2>/dev/null
  fi
done
LOAD_AFTER=$(load)

"$PY" - "$OUTDIR" "$ROUNDS" "$THREADS" "$LOAD_BEFORE" "$LOAD_AFTER" "$( [ -n "$BASELINE" ] && echo 1 || echo 0)" "$ROOT/bench" <<'PY' | tee "$OUTDIR/table.txt"
import os, platform, sys
out, rounds, threads, load0, load1, has_base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] == "1"
sys.path.insert(0, sys.argv[7])
from seed_table import torch_micro_lines, wick_rows

def wick_medians(path):
    return wick_rows(path, "/cpu")

def torch_medians(path):
    lines = torch_micro_lines(path)
    return {o["name"]: o["median_us"] for o in lines}, (lines[0].get("device", "") if lines else "")

W = [wick_medians(os.path.join(out, f"wick-{r}.json")) for r in range(1, rounds + 1)]
T, devs = zip(*[torch_medians(os.path.join(out, f"torch-{r}.jsonl")) for r in range(1, rounds + 1)])
B = [wick_medians(os.path.join(out, f"baseline-{r}.json")) for r in range(1, rounds + 1)] if has_base else []

def us(vals):
    return " / ".join("-" if v is None else f"{v:.1f}" for v in vals)

def ratios(ts, ws):
    rs = [t / w for t, w in zip(ts, ws) if t is not None and w]
    if not rs:
        return "-"
    lo, hi = min(rs), max(rs)
    return f"{lo:.2f}x" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}x"

head = ["benchmark", "torch µs", "wick µs", "torch / wick"]
if has_base:
    head += ["baseline wick µs", "torch / baseline"]
rows = [head]
for name in W[0]:
    ts = [t.get(name) for t in T]
    ws = [w.get(name) for w in W]
    row = [name, us(ts), us(ws), ratios(ts, ws)]
    if has_base:
        bs = [b.get(name) for b in B]
        row += [us(bs), ratios(ts, bs)]
    rows.append(row)
width = [max(len(r[i]) for r in rows) for i in range(len(head))]
for i, r in enumerate(rows):
    print("| " + " | ".join(c.ljust(width[j]) for j, c in enumerate(r)) + " |")
    if i == 0:
        print("|" + "|".join("-" * (w + 2) for w in width) + "|")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"\n{rounds} rounds interleaved (values per round, ' / '); medians of per-call wall-clock times: wick_bench's "
      f"median_us counter, torch_peer.py micro's median of 200 calls. {threads} threads each side. "
      f"Machine: {cpu}, {os.cpu_count()} CPUs; torch: {devs[0]}. Load average before: {load0}, after: {load1}.")
PY
