#!/usr/bin/env bash
# Model-level numbers on the GPU machine, side by side with the torch peer in the same call:
# prefill/decode tokens/s (batch 1, 128-token prompt, 256 new, greedy) for the 0.5B and 1.5B presets, and
# LoRA training tokens/s and peak memory for the 0.5B preset (bf16, batch 8 x 1024, r 16, all 7 targets).
# Expects a CUDA build in $BUILD (scripts/gpu-check.sh makes build-gpu). Writes $OUT/model-bench.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
OUTDIR=${OUT:-out/bench-model}
mkdir -p "$OUTDIR"
W="$BUILD/wick"
TMP=$(mktemp -d)
LOG=$OUTDIR/model-bench.txt
: > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-10}

prompt_ids=$(python3 -c "import random; r=random.Random(1); print(','.join(str(r.randrange(151643)) for _ in range(128)))")
for preset in ${PRESETS:-qwen2.5-0.5b qwen2.5-1.5b}; do
  "$W" init-model --preset "$preset" --out "$TMP/$preset" --dtype bf16 2>>"$LOG" || { say "init-model $preset failed"; continue; }
  for run in 1 2; do  # the first run warms the GPU and the page cache
    "$W" generate --model "$TMP/$preset" --prompt-ids "$prompt_ids" --max-new-tokens 256 --temperature 0 \
      --ignore-eos --device "$DEVICE" > /dev/null 2> "$TMP/gen.err"
  done
  say "wick generate $preset ($DEVICE): $(tail -1 "$TMP/gen.err")"
done

# Training: random tokens, 8 x 1024 per step.
python3 - "$TMP/train.jsonl" <<'PY'
import json, random, sys
r = random.Random(2)
with open(sys.argv[1], "w") as f:
    for _ in range(8 * 40):
        f.write(json.dumps({"input_ids": [r.randrange(151643) for _ in range(1024)]}) + "\n")
PY
"$W" train --model "$TMP/qwen2.5-0.5b" --data "$TMP/train.jsonl" --out "$TMP/run" --batch-size 8 --max-steps "$STEPS" \
  --rank 16 --alpha 32 --targets all --lr 1e-4 --scheduler constant --warmup-steps 0 --device "$DEVICE" --dtype bf16 \
  --max-seq-len 1024 > "$TMP/train.out" 2> "$TMP/train.err" || say "wick train failed: $(tail -3 "$TMP/train.err")"
python3 - "$TMP/run/metrics.jsonl" <<'PY' | tee -a "$LOG"
import json, sys, statistics
try:
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    rows = [r for r in rows if "tokens_per_s" in r]
    warm = rows[2:] if len(rows) > 3 else rows
    print("wick train qwen2.5-0.5b bf16 8x1024 r16: median %.0f tok/s over steps %d-%d, peak %.2f GiB" % (
        statistics.median(r["tokens_per_s"] for r in warm), warm[0]["step"], warm[-1]["step"],
        max(r.get("peak_device_gib", 0) for r in rows)))
except Exception as e:
    print("wick train: no metrics (%s)" % e)
PY

if [ "${PEER:-1}" = 1 ]; then
  for preset in 0.5b 1.5b; do
    say "torch decode $preset: $(python3 bench/peer/torch_peer.py decode --preset $preset --prompt 128 --new 256 2>/dev/null | tail -1)"
  done
  say "torch train 0.5b: $(python3 bench/peer/torch_peer.py train --preset 0.5b --batch 8 --seq 1024 --rank 16 2>/dev/null | tail -1)"
fi
rm -rf "$TMP"
