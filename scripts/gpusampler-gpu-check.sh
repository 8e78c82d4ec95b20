#!/usr/bin/env bash
# The GPU check of sample_tokens (ops/sampling.h) and device sampling in DecodeLoop, on a configured and built
# CUDA build dir (default build-gpu; e.g. after scripts/gpu-check.sh --no-bench):
#   scripts/gpusampler-gpu-check.sh [BUILD_DIR]
# Builds wick_cuda_tests and wick_bench if needed, runs
#   - the new CUDA tests: sample_tokens against the CPU twin token for token (SampleTokensCuda.*),
#   - the decode tests (DecodeLoopCuda.*, GreedyTokensCuda.*, KvCacheWriteCuda.*): DecodeLoop now samples
#     every setting on the device inside the replayed graph and must draw the host Sampler's tokens,
#   - the bench rows sample_tokens/*/cuda (V = 151936, rows 1 and 64) and the CPU Sampler rows beside them,
# and writes $OUT/gpusampler-summary.txt (logs: gpusampler-tests.log, gpusampler-bench.json). ~2 minutes.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build-gpu}
OUTDIR=${OUT:-$ROOT/out/gpusampler}
mkdir -p "$OUTDIR"
SUM=$OUTDIR/gpusampler-summary.txt
LOG=$OUTDIR/gpusampler-tests.log
: > "$SUM"
: > "$LOG"
say() { echo "$*" | tee -a "$SUM"; }

[ -d "$BUILD" ] || { say "no build dir $BUILD (configure and build with CUDA first, e.g. scripts/gpu-check.sh --no-bench)"; exit 1; }
say "gpusampler GPU check, $(date -u +%FT%TZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
if ! cmake --build "$BUILD" --target wick_cuda_tests wick_bench >> "$LOG" 2>&1; then
  say "BUILD FAILED (see gpusampler-tests.log)"
  tail -40 "$LOG" >> "$SUM"
  exit 1
fi
TESTS=$(find "$BUILD" -name wick_cuda_tests -type f -perm -u+x | head -1)
BENCH=$(find "$BUILD" -name wick_bench -type f -perm -u+x | head -1)

rc=0
FILTER='SampleTokensCuda.*:DecodeLoopCuda.*:GreedyTokensCuda.*:KvCacheWriteCuda.*'
if timeout 300 "$TESTS" --gtest_filter="$FILTER" >> "$LOG" 2>&1; then
  say "tests ($FILTER): no failures"
else
  rc=1
  say "tests ($FILTER): FAIL"
  grep -E "^\[  (FAILED|  OK) \]|Failure|Expected|Which is|actual|step |row " "$LOG" | head -60 >> "$SUM"
fi
grep -E "^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z_]+\.[A-Za-z_]+ \(" "$LOG" | sed 's/^/  /' >> "$SUM"
if grep -qE "^\[ +SKIPPED +\] [A-Za-z_]+\." "$LOG"; then rc=1; say "some tests SKIPPED: no usable GPU? (that is not a pass)"; fi

if [ -n "$BENCH" ]; then
  timeout 240 "$BENCH" --benchmark_filter='^(sample_tokens/|sampler/)' --benchmark_min_time=0.2 \
    --benchmark_format=json --benchmark_out="$OUTDIR/gpusampler-bench.json" >> "$LOG" 2>&1 || { rc=1; say "bench: FAIL"; }
  python3 - "$OUTDIR/gpusampler-bench.json" >> "$SUM" 2>&1 <<'PY' || true
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
print("bench (median us per call):")
for b in rows:
    print(f"  {b['name']:<58} {b.get('median_us', b['real_time']):10.1f}")
PY
fi
say "exit $rc"
exit $rc
