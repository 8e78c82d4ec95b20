#!/usr/bin/env bash
# Issue 12's serving table on a GPU machine: aggregate generated tok/s, p50/p99 latency and time to first
# token of `wick serve` at 1, 8, 32 and 64 concurrent streams, with 1 adapter and with 8, one JSON line each
# (scripts/serve-load-test.sh), then the mixed-adapter invariant on CUDA (wick_cuda_tests ServeCuda.*).
#   scripts/serve-gpu-bench.sh MODEL_DIR [SECONDS=30] [MAX_TOKENS=256]
# MODEL_DIR: e.g. a 0.5B folder, or `build/wick init-model --preset qwen2.5-0.5b --out /tmp/q05` (random weights
# cost the same). Uses $WICK (default build/wick) and build/tests/wick_cuda_tests.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/serve-gpu-bench.sh MODEL_DIR [SECONDS] [MAX_TOKENS]}
seconds=${2:-30}
max_tokens=${3:-256}
if [ -x build/tests/wick_cuda_tests ]; then
  build/tests/wick_cuda_tests --gtest_filter='ServeCuda.*'
fi
for adapters in 1 8; do
  for clients in 1 8 32 64; do
    scripts/serve-load-test.sh --model "$model" --device cuda --clients "$clients" --adapters "$adapters" \
      --seconds "$seconds" --max-tokens "$max_tokens" --max-batch 64
  done
done
