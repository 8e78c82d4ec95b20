#!/usr/bin/env bash
# A focused check of one area on the GPU machine, in one device call: builds wick, wick_cuda_tests and
# wick_bench in BUILD_DIR (configured with CUDA, e.g. by `scripts/gpu-check.sh --configure-only`), runs the
# area's CUDA tests (a SKIPPED test fails the check: it means no usable GPU), then its benchmark rows, and for
# the serving areas the 64-client load test. Writes $OUT/focus-AREA-summary.txt (also printed), -tests.log,
# -bench.json and, for serving, -load.jsonl.
#   OUT=DIR scripts/gpu-focus-check.sh AREA [BUILD_DIR=build-gpu]
# AREA (what the tests and rows cover):
#   paged     the paged KV cache and serve's batch step: paged attention and K/V writes, mixed-adapter serving,
#             decode graphs, attention op cases; serve_step/* rows; load test greedy
#   serve     serve's sampling on the device and its adapters: pooled sampling, mixed and preempted batches,
#             segmented_lora_add; serve_step/qwen2.5-0.5b rows; load tests greedy and with Qwen's sampling
#   sampling  GPU sampling of generate: sample_tokens, greedy, decode graphs; sample_tokens/ and sampler/ rows
#   views     the MatrixView matmul (strided GEMM operands): view tests, matmul and linear op cases; gemm_strided/
#   lora      the low-rank ops: low_rank and segmented_lora op cases, LoRA linears; lora rows of the seed suite
# Exit status 0 when everything ran and passed.
set -uo pipefail
cd "$(dirname "$0")/.."
AREA=${1:?usage: OUT=DIR scripts/gpu-focus-check.sh paged|serve|sampling|views|lora [BUILD_DIR]}
B=${2:-build-gpu}
OUTDIR=${OUT:-out/gpu-focus}
case "$AREA" in
  paged) tests='PagedAttentionCuda.*:PagedKvWriteCuda.*:ServeCuda.*:KvCacheWriteCuda.*:DecodeLoopCuda.*:*attention*'
         rows='^serve_step/.*/cuda'; load=greedy ;;
  serve) tests='ServeSamplingCuda.*:ServeCuda.*:SampleTokensCuda.*:SegmentedLoraCuda.*:*segmented_lora*'
         rows='^serve_step/qwen2.5-0.5b/.*/cuda(/|$)'; load='greedy qwen' ;;
  sampling) tests='SampleTokensCuda.*:DecodeLoopCuda.*:GreedyTokensCuda.*:KvCacheWriteCuda.*'
            rows='^(sample_tokens/|sampler/)'; load='' ;;
  views) tests='*MatmulViewsCuda*:*OpCudaF32*matmul*:*OpCudaBf16*matmul*:*OpCudaF32*linear*:*OpCudaBf16*linear*'
         rows='^gemm_strided/'; load='' ;;
  lora) tests='*low_rank*:*segmented_lora*:SegmentedLoraCuda.*:*LinearLora*'
        rows='^(lora_forward|lora_rank_scaling)/.*/cuda'; load='' ;;
  *) echo "gpu-focus-check: unknown area '$AREA' (paged, serve, sampling, views, lora)" >&2; exit 2 ;;
esac
mkdir -p "$OUTDIR"
sum="$OUTDIR/focus-$AREA-summary.txt" log="$OUTDIR/focus-$AREA-tests.log"
: > "$sum"
: > "$log"
say() { echo "$*" | tee -a "$sum"; }
status=0

[ -d "$B" ] || { say "no build dir $B (configure with CUDA first: scripts/gpu-check.sh --configure-only)"; exit 1; }
say "gpu-focus-check $AREA, $(date -u +%FT%TZ), tree $(git rev-parse --short HEAD 2>/dev/null), build $B, $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
if ! cmake --build "$B" -j"$(nproc)" --target wick wick_cuda_tests wick_bench >> "$log" 2>&1; then
  say "BUILD FAILED (tail of $log):"; tail -30 "$log" | tee -a "$sum"; exit 1
fi

# 1. The area's CUDA tests.
timeout 400 "$B/tests/wick_cuda_tests" --gtest_filter="$tests" >> "$log" 2>&1 || status=1
say "tests ($tests): $(grep -cE '^\[ +OK +\]' "$log") passed, $(grep -cE '^\[ +FAILED +\] [A-Za-z_/]+\.' "$log") failed, $(grep -cE '^\[ +SKIPPED +\] ' "$log") skipped"
grep -E "^\[ +FAILED +\] [A-Za-z_/]+\.|Failure|Expected|Which is" "$log" | head -40 | tee -a "$sum"
if grep -qE "^\[ +SKIPPED +\] " "$log"; then status=1; say "some tests SKIPPED: no usable GPU? (that is not a pass)"; fi

# 2. Its benchmark rows (median of the timed iterations).
timeout 300 "$B/bench/wick_bench" --benchmark_filter="$rows" --benchmark_format=json \
  --benchmark_out="$OUTDIR/focus-$AREA-bench.json" >> "$log" 2>&1 || { status=1; say "bench: FAIL"; }
python3 - "$OUTDIR/focus-$AREA-bench.json" <<'PY' | tee -a "$sum"
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["benchmarks"]
except Exception as e:
    print("bench: no results (%s)" % e); sys.exit(0)
print("bench (median per call; tok/s where the row counts tokens):")
for b in rows:
    us = b.get("median_us", b["real_time"])
    extra = "  %10.0f tok/s" % b["tok_per_s"] if "tok_per_s" in b else ""
    print("  %-64s %12.1f us%s" % (b["name"], us, extra))
PY

# 3. Serving areas: `wick serve` under load, 64 streaming clients x 256 new tokens, random 0.5B weights.
if [ -n "$load" ]; then
  model="$OUTDIR/q05-random"
  [ -f "$model/config.json" ] || "$B/wick" init-model --preset qwen2.5-0.5b --out "$model" --seed 1 >> "$log" 2>&1 || status=1
  : > "$OUTDIR/focus-$AREA-load.jsonl"
  for sampling in $load; do
    if WICK="$B/wick" timeout 200 scripts/serve-load-test.sh --model "$model" --device cuda --clients 64 --seconds 15 \
         --max-tokens 256 --max-batch 64 --sampling "$sampling" >> "$OUTDIR/focus-$AREA-load.jsonl" 2>> "$log"; then
      say "load ($sampling, 64 clients x 256 tokens, 15 s): $(tail -1 "$OUTDIR/focus-$AREA-load.jsonl")"
    else
      status=1; say "load ($sampling): FAIL (see $log)"
    fi
  done
fi
say "status: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
