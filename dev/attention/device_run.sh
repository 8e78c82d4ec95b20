#!/usr/bin/env bash
# One device call (run from the carried copy of the tree): harness checks + timings, the PyTorch SDPA peer,
# then (unless --no-wick) wick's CUDA test binary built for sm_90 and its attention + model tests in bf16/f32.
#   bash dev/attention/device_run.sh [--no-wick] [--no-bench] [--no-sdpa] [harness variants...]
# The harness binary is built on the development machine (nvcc, static cudart) and carried as
# dev/attention/attention_bench.bin; it is rebuilt here if it is missing or does not start.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-out/attn}
mkdir -p "$OUTDIR"
WICK=1 BENCH=1 SDPA=1 ARGS=()
for a in "$@"; do
  case "$a" in --no-wick) WICK=0 ;; --no-bench) BENCH=0 ;; --no-sdpa) SDPA=0 ;; *) ARGS+=("$a") ;; esac
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv | tee "$OUTDIR/gpu.txt"
BIN=dev/attention/attention_bench.bin
if [ $BENCH -eq 1 ]; then
  if ! [ -x $BIN ] || ! $BIN --no-check --no-time >/dev/null 2>&1; then
    echo "== building the harness here"
    nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -Xcompiler -pthread -I src \
      -o /tmp/attention_bench dev/attention/attention_bench.cu && BIN=/tmp/attention_bench
  fi
  echo "== harness"
  $BIN ${ARGS[@]+"${ARGS[@]}"} 2>&1 | tee "$OUTDIR/bench.txt"
  if [ $SDPA -eq 1 ]; then
    echo "== sdpa peer"
    PYTHONUNBUFFERED=1 python3 dev/attention/sdpa_peer.py 2>&1 | tee "$OUTDIR/sdpa.txt"
  fi
fi
if [ $WICK -eq 1 ]; then
  echo "== wick build (wick_cuda_tests, sm_90)"
  start=$(date +%s)
  bash scripts/gpu-check.sh --configure-only --build-dir build-attn > "$OUTDIR/wick-build.log" 2>&1 || { tail -30 "$OUTDIR/wick-build.log"; exit 1; }
  for d in /opt/wickdeps/usr/lib/x86_64-linux-gnu ${TMPDIR:-/tmp}/wickdeps/usr/lib/x86_64-linux-gnu; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d:$d/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  done
  cmake --build build-attn --target wick_cuda_tests -j 16 >> "$OUTDIR/wick-build.log" 2>&1 || { grep -E 'error' "$OUTDIR/wick-build.log" | head -30; exit 1; }
  echo "built in $(( $(date +%s) - start )) s"
  build-attn/tests/wick_cuda_tests --gtest_filter='*attention*:*CudaQwen2*' > "$OUTDIR/wick-tests.log" 2>&1
  echo "wick_cuda_tests exit $?"
  grep -E '^\[  (FAILED|PASSED) |tests ran' "$OUTDIR/wick-tests.log" | head -40
  grep -c '^\[       OK \].*fa2bf16' "$OUTDIR/wick-tests.log" | sed 's/^/fa2bf16 cases ok: /'
fi
