#!/usr/bin/env bash
# Issue 12's serving table on a GPU machine: aggregate generated tok/s, p50/p99 latency and time to first
# token of `wick serve` at 1, 8, 32 and 64 concurrent streams, with 1 adapter and with 8, one JSON line each
# (scripts/serve-load-test.sh), then the mixed-adapter invariant on CUDA (wick_cuda_tests ServeCuda.*).
#   scripts/serve-gpu-bench.sh [--wick PATH] [--cuda-tests PATH] [--out DIR] [--device cuda|cpu]
#                            MODEL_DIR [SECONDS=30] [MAX_TOKENS=256]
# MODEL_DIR: e.g. a 0.5B folder, or `build/wick init-model --preset qwen2.5-0.5b --out /tmp/q05` (random weights
# cost the same). The wick binary: --wick or $WICK (default build/wick); the CUDA tests: --cuda-tests or
# $WICK_CUDA_TESTS (default tests/wick_cuda_tests beside the wick binary's build folder, e.g. build-gpu/tests/);
# skipped with a note when absent. --out DIR (default bench/results/serve-gpu-<UTC time>) receives
# serve-gpu-bench.jsonl (the load lines, one per run; a failed run leaves {"clients":..,"adapters":..,"failed":rc}),
# serve-cuda-tests.log, the load test's stderr in serve-load.log, and the adapters (reused by a later run
# with the same --out). --device cpu runs the same table on the CPU (to check the script). The load client
# is node when present, else bench/serve_load.py (python3, standard library only).
# Exit status: 0 when every run and the CUDA tests passed.
set -euo pipefail
cd "$(dirname "$0")/.."
WICK=${WICK:-build/wick}
cuda_tests=${WICK_CUDA_TESTS:-}
out="" device=cuda
while [ $# -gt 0 ]; do
  case "$1" in
    --wick) WICK=$2; shift 2 ;;
    --cuda-tests) cuda_tests=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --*) echo "serve-gpu-bench: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
model=${1:?usage: scripts/serve-gpu-bench.sh [--wick PATH] [--cuda-tests PATH] [--out DIR] MODEL_DIR [SECONDS] [MAX_TOKENS]}
seconds=${2:-30}
max_tokens=${3:-256}
[ -x "$WICK" ] || { echo "serve-gpu-bench: no wick binary at $WICK (set --wick or WICK=)" >&2; exit 2; }
[ -d "$model" ] || { echo "serve-gpu-bench: no model folder $model" >&2; exit 2; }
WICK=$(realpath "$WICK")
model=$(realpath "$model")
[ -n "$cuda_tests" ] || cuda_tests="$(dirname "$WICK")/tests/wick_cuda_tests"
[ -n "$out" ] || out="bench/results/serve-gpu-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
out=$(realpath "$out")
lines="$out/serve-gpu-bench.jsonl"
: > "$lines"
status=0
if [ -x "$cuda_tests" ]; then
  "$cuda_tests" --gtest_filter='ServeCuda.*' > "$out/serve-cuda-tests.log" 2>&1 || status=1
  tail -3 "$out/serve-cuda-tests.log"
else
  echo "serve-gpu-bench: no CUDA test binary at $cuda_tests (set --cuda-tests); ServeCuda.* not run" | tee "$out/serve-cuda-tests.log"
fi
for adapters in 1 8; do
  for clients in 1 8 32 64; do
    rc=0
    WICK="$WICK" scripts/serve-load-test.sh --model "$model" --device "$device" --clients "$clients" --adapters "$adapters" \
      --adapter-dir "$out/adapters" --seconds "$seconds" --max-tokens "$max_tokens" --max-batch 64 \
      > "$out/run.json" 2>> "$out/serve-load.log" || rc=$?
    if [ -s "$out/run.json" ]; then cat "$out/run.json" >> "$lines"; else
      echo "{\"clients\":$clients,\"adapters\":$adapters,\"failed\":$rc}" >> "$lines"; fi
    tail -1 "$lines"
    [ "$rc" -eq 0 ] || status=1
  done
done
rm -f "$out/run.json"
echo "serve-gpu-bench: $(wc -l < "$lines") lines in $lines"
exit $status
