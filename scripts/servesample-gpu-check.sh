#!/usr/bin/env bash
# The GPU check of `wick serve`'s device sampling (serve/scheduler.h, ops/sampling_pool.h), on a configured
# CUDA build dir (default build-gpu):
#   scripts/servesample-gpu-check.sh [BUILD_DIR]        (OUT=dir for the results; default out/servesample)
# Builds wick_cuda_tests, wick_bench and wick if needed, then runs
#   - the CUDA tests: the pooled sample_tokens against sample_tokens (V = 1000 and Qwen's 151,936), the
#     scheduler on the tiny random model giving the host path's tokens for random settings, alone (f32, bf16)
#     and mixed / joining / chunked / preempted (f32) (ServeSamplingCuda.*), and the existing ServeCuda.*,
#     SampleTokensCuda.*;
#   - the bench rows serve_step/qwen2.5-0.5b/*/cuda: the forward alone (device and host logits), the old host
#     sampling step, and the whole Scheduler::step() (device sampling + the ids' copy) greedy and with Qwen's
#     default settings at 64 streams;
#   - the loopback load test: 64 streaming clients x 256 tokens, random Qwen2.5-0.5B weights, greedy for 20 s
#     (scripts/serve-load-test.sh with bench/serve_load.py, as docs/benchmarks.md section 9 measured it), then
#     with Qwen2.5-Instruct's default sampling settings for 15 s (--sampling qwen);
# and writes $OUT/servesample-summary.txt (logs beside it). About 3 minutes.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build-gpu}
OUTDIR=${OUT:-$ROOT/out/servesample}
mkdir -p "$OUTDIR"
SUM=$OUTDIR/servesample-summary.txt
LOG=$OUTDIR/servesample-tests.log
: > "$SUM"
: > "$LOG"
say() { echo "$*" | tee -a "$SUM"; }

[ -d "$BUILD" ] || { say "no build dir $BUILD (configure and build with CUDA first, e.g. scripts/gpu-check.sh --no-bench)"; exit 1; }
say "servesample GPU check, $(date -u +%FT%TZ), tree $(git rev-parse --short HEAD 2>/dev/null), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
if ! cmake --build "$BUILD" --target wick_cuda_tests wick_bench wick >> "$LOG" 2>&1; then
  say "BUILD FAILED (see servesample-tests.log)"
  tail -40 "$LOG" >> "$SUM"
  exit 1
fi
TESTS=$(find "$BUILD" -name wick_cuda_tests -type f -perm -u+x | head -1)
BENCH=$(find "$BUILD" -name wick_bench -type f -perm -u+x | head -1)
WICK_BIN=$(find "$BUILD" -maxdepth 1 -name wick -type f -perm -u+x | head -1)

rc=0
FILTER='ServeSamplingCuda.*:ServeCuda.*:SampleTokensCuda.*'
if timeout 300 "$TESTS" --gtest_filter="$FILTER" >> "$LOG" 2>&1; then
  say "tests ($FILTER): no failures"
else
  rc=1
  say "tests ($FILTER): FAIL"
  grep -E "^\[  (FAILED|  OK) \]|Failure|Expected|Which is|request |step " "$LOG" | head -60 >> "$SUM"
fi
grep -E "^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z_]+\.[A-Za-z_0-9]+ \(" "$LOG" | sed 's/^/  /' >> "$SUM"
if grep -qE "^\[ +SKIPPED +\] [A-Za-z_]+\." "$LOG"; then rc=1; say "some tests SKIPPED: no usable GPU? (that is not a pass)"; fi

if [ -n "$BENCH" ]; then
  timeout 300 "$BENCH" --benchmark_filter='^serve_step/qwen2.5-0.5b/.*/cuda(/|$)' \
    --benchmark_format=json --benchmark_out="$OUTDIR/servesample-bench.json" >> "$LOG" 2>&1 || { rc=1; say "bench: FAIL"; }
  python3 - "$OUTDIR/servesample-bench.json" >> "$SUM" 2>&1 <<'PY' || true
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
print("bench (median ms per step; generated tok/s = streams / step time):")
for b in rows:
    print(f"  {b['name']:<58} {b.get('median_us', b['real_time'] * 1e3) / 1e3:8.2f} ms  {b.get('tok_per_s', 0):10.0f} tok/s")
PY
fi

if [ -n "$WICK_BIN" ]; then
  tmp=$(mktemp -d)
  : > "$OUTDIR/servesample-load.jsonl"
  "$WICK_BIN" init-model --preset qwen2.5-0.5b --out "$tmp/q05" --seed 1 >> "$LOG" 2>&1
  for sampling in greedy qwen; do  # greedy: as docs/benchmarks.md section 9 measured; qwen: Qwen2.5's defaults
    secs=20
    [ $sampling = qwen ] && secs=15
    if WICK=$WICK_BIN timeout 200 scripts/serve-load-test.sh --model "$tmp/q05" --device cuda --clients 64 \
        --seconds $secs --max-tokens 256 --client python --sampling $sampling >> "$OUTDIR/servesample-load.jsonl" 2>> "$LOG"; then
      say "load test (64 clients x 256 tokens, $sampling, $secs s, random 0.5B): $(tail -1 "$OUTDIR/servesample-load.jsonl")"
    else
      rc=1
      say "load test ($sampling): FAIL (see servesample-tests.log)"
    fi
  done
  rm -rf "$tmp"
fi
say "exit $rc"
exit $rc
