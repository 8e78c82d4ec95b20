#!/usr/bin/env bash
# The paged KV cache of `wick serve` on a GPU machine (about 3 minutes): the CUDA tests of the paged ops and of the
# serve scheduler over them (the mixed-batch invariant, preemption), the existing attention/KV-write op tests,
# the batched serve step benchmark at 1, 16 and 64 sequences (0.5B shape, random weights), and a 20 s load test
# of `wick serve` with 64 streaming clients on a random 0.5B model. Writes $OUT/pagedkv-summary.txt (and the
# logs beside it).
#   OUT=/some/dir scripts/pagedkv-gpu-check.sh [BUILD_DIR=build-gpu]
# BUILD_DIR: a configured CUDA build; the script builds wick, wick_cuda_tests and wick_bench in it first
# (nothing to do when they are current). Exit status 0 when every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-gpu}
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
sum="$OUT/pagedkv-summary.txt"
: > "$sum"
say() { echo "$*" | tee -a "$sum"; }
status=0
say "pagedkv GPU check, $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null), build $B"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /' | tee -a "$sum"
if ! cmake --build "$B" -j"$(nproc)" --target wick wick_cuda_tests wick_bench > "$OUT/pagedkv-build.log" 2>&1; then
  say "BUILD FAILED (tail of $OUT/pagedkv-build.log):"; tail -20 "$OUT/pagedkv-build.log" | tee -a "$sum"; exit 1
fi

# 1. Tests: the paged ops against the CPU twin; serve's invariant over the paged cache (with preemption); the
# contiguous attention and KV write they sit beside.
filter='PagedAttentionCuda.*:PagedKvWriteCuda.*:ServeCuda.*:KvCacheWriteCuda.*:DecodeLoopCuda.*:*attention*'
"$B/tests/wick_cuda_tests" --gtest_filter="$filter" > "$OUT/pagedkv-cuda-tests.log" 2>&1 || status=1
say "cuda tests ($filter): $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/pagedkv-cuda-tests.log" | tr '\n' ' ')"
grep -E '^\[  FAILED  \]|SKIPPED' "$OUT/pagedkv-cuda-tests.log" | sort -u | head -20 | tee -a "$sum"

# 2. One batched serve step (BatchForward over the paged cache), 0.5B bf16, 512 tokens a sequence.
"$B/bench/wick_bench" --benchmark_filter='serve_step/.*/cuda' --benchmark_format=json \
  --benchmark_out="$OUT/pagedkv-bench.json" > "$OUT/pagedkv-bench.log" 2>&1 || status=1
python3 - "$OUT/pagedkv-bench.json" <<'PY' | tee -a "$sum"
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["benchmarks"]
except Exception as e:
    print("bench: no results (%s)" % e); sys.exit(0)
for r in rows:
    print("%-48s median %8.3f ms  steps/s %8.1f  tok/s %9.0f" % (r["name"], r["median_us"] / 1000, r.get("steps_per_s", 0), r.get("tok_per_s", 0)))
PY

# 3. `wick serve` under load: 64 streaming clients, 256 new tokens each, random 0.5B (costs what a real one does).
model="$OUT/q05-random"
if [ ! -f "$model/config.json" ]; then
  "$B/wick" init-model --preset qwen2.5-0.5b --out "$model" > "$OUT/pagedkv-init-model.log" 2>&1 || status=1
fi
if WICK="$B/wick" scripts/serve-load-test.sh --model "$model" --device cuda --clients 64 --seconds 20 --max-tokens 256 \
     --max-batch 64 > "$OUT/pagedkv-load.json" 2> "$OUT/pagedkv-load.log"; then
  say "serve load (64 clients, 256 tokens, 20 s): $(cat "$OUT/pagedkv-load.json")"
else
  status=1; say "serve load FAILED (tail of $OUT/pagedkv-load.log):"; tail -5 "$OUT/pagedkv-load.log" | tee -a "$sum"
fi
grep -h "KV cache" "$OUT/pagedkv-load.log" | head -1 | tee -a "$sum"
say "status: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
