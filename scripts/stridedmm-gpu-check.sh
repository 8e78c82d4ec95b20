#!/usr/bin/env bash
# The GPU check of the matrix-view matmul (ops/matmul.h MatrixView: GEMM operands with a row stride), on a
# configured and built CUDA build dir (default build-gpu; e.g. after scripts/gpu-check.sh --no-bench):
#   scripts/stridedmm-gpu-check.sh [BUILD_DIR]
# Builds wick_cuda_tests and wick_bench if needed, runs
#   - the new CUDA tests: the view matmul on CUDA (cuBLASLt with leading dimensions) against the CPU view
#     matmul over hand-written and random cases, guard elements of c's buffer untouched (MatmulViewsCuda.*),
#     and the tensor matmul's cases (OpCudaF32/OpCudaBf16 *matmul*: GemmArgs and the plan key changed),
#   - the bench rows gemm_strided/*/cuda (0.5B shapes, 8192 rows, bf16: x|u K-concatenation vs the base
#     GEMM, q|k|v as three view GEMMs into one output vs one whole GEMM vs three tensors),
# and writes $OUT/stridedmm-summary.txt (logs: stridedmm-tests.log, stridedmm-bench.json). ~1-2 minutes.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build-gpu}
OUTDIR=${OUT:-$ROOT/out/stridedmm}
mkdir -p "$OUTDIR"
SUM=$OUTDIR/stridedmm-summary.txt
LOG=$OUTDIR/stridedmm-tests.log
: > "$SUM"
: > "$LOG"
say() { echo "$*" | tee -a "$SUM"; }

[ -d "$BUILD" ] || { say "no build dir $BUILD (configure and build with CUDA first, e.g. scripts/gpu-check.sh --no-bench)"; exit 1; }
say "stridedmm GPU check, $(date -u +%FT%TZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
if ! cmake --build "$BUILD" --target wick_cuda_tests wick_bench >> "$LOG" 2>&1; then
  say "BUILD FAILED (see stridedmm-tests.log)"
  tail -40 "$LOG" >> "$SUM"
  exit 1
fi
TESTS=$(find "$BUILD" -name wick_cuda_tests -type f -perm -u+x | head -1)
BENCH=$(find "$BUILD" -name wick_bench -type f -perm -u+x | head -1)

rc=0
FILTER='*MatmulViewsCuda*:*OpCudaF32*matmul*:*OpCudaBf16*matmul*:*OpCudaF32*linear*:*OpCudaBf16*linear*'
if timeout 300 "$TESTS" --gtest_filter="$FILTER" >> "$LOG" 2>&1; then
  say "tests ($FILTER): no failures"
else
  rc=1
  say "tests ($FILTER): FAIL"
  grep -E "^\[  FAILED  \]|Failure|Expected|Which is|actual|rel_err" "$LOG" | head -60 >> "$SUM"
fi
say "  $(grep -cE '^\[ +OK +\]' "$LOG") passed, $(grep -cE '^\[ +FAILED +\] [A-Za-z_/]+\.' "$LOG") failed, $(grep -cE '^\[ +SKIPPED +\]' "$LOG") skipped"
if grep -qE "^\[ +SKIPPED +\] " "$LOG"; then rc=1; say "some tests SKIPPED: no usable GPU? (that is not a pass)"; fi

if [ -n "$BENCH" ]; then
  timeout 240 "$BENCH" --benchmark_filter='^gemm_strided/' --benchmark_min_time=0.3 \
    --benchmark_format=json --benchmark_out="$OUTDIR/stridedmm-bench.json" >> "$LOG" 2>&1 || { rc=1; say "bench: FAIL"; }
  python3 - "$OUTDIR/stridedmm-bench.json" >> "$SUM" 2>&1 <<'PY' || true
import json, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
print("bench (median us per call):")
for b in rows:
    print(f"  {b['name']:<40} {b.get('median_us', b['real_time']):10.1f}")
PY
fi
say "exit $rc"
exit $rc
