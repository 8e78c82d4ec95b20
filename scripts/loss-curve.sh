#!/usr/bin/env bash
# Issue 8's loss-curve check in one call on the GPU machine: `wick train` beside PyTorch + transformers + PEFT
# (bench/peer/loss_curve.py), the same run on both sides, and a table of the two loss curves.
#
#   BUILD=build-gpu scripts/loss-curve.sh
#
# env: BUILD (a build with `wick`; default build-gpu), STEPS (300), PRESET (0.5b; tiny, 1.5b, or any
# `wick init-model` preset name), BATCH (8), SEQ (1024), LR (2e-4), SCHED (cosine), WARMUP (10),
# DEVICE (cuda; cpu for a smoke test), PEER (1; 0 runs wick alone, from a fresh adapter, no table),
# REF (1: also run the peer without autocast, the bf16 yardstick column; 0 skips it), OUT (out/loss-curve).
#
# What is the same on both sides, and how:
# - Model: one `wick init-model` folder (random weights, bf16), which transformers loads as it is.
# - Adapter: PEFT builds its own fresh LoRA (r 16, alpha 32, dropout 0, all seven projections; A
#   Kaiming-uniform, B zero, f32) and saves it; wick starts from that folder (--adapter-init), the peer
#   loads it trainable (PeftModel.from_pretrained).
# - Data: one JSONL of BATCH x STEPS pre-tokenized rows of SEQ ids (a seeded random Markov chain over 64
#   token ids: learnable), no padding, the loss on every token (format tokens: labels = input_ids, no eos).
#   Order: wick runs with --no-shuffle, so step k reads lines [k*BATCH, (k+1)*BATCH) of the file; the peer
#   reads the same lines for step k (loss_curve.py train). Exactly one epoch.
# - Optimizer: AdamW lr LR, betas 0.9/0.999, eps 1e-8, weight decay 0.01 (wick's defaults, passed
#   explicitly; torch's AdamW, fused), global grad-norm clip 1.0, schedule SCHED with WARMUP linear warmup
#   steps (wick --scheduler/--warmup-steps; the peer transformers.get_scheduler with the same name and
#   numbers). The table checks the lr of every step on both sides.
# - Precision: wick bf16 (frozen weights and activations bf16, LoRA weights and AdamW state f32, adapter
#   GEMMs on bf16 inputs with f32 accumulation, loss on bf16 logits read in f32). The peer: the model in
#   bf16, LoRA weights f32, the forward under torch.autocast(bf16) (what the Trainer does with bf16=True:
#   the LoRA matmuls run in bf16 too). With REF=1 the peer runs a second time without autocast (PEFT then
#   computes the LoRA path in f32 on the bf16 activations, as bench/peer/torch_peer.py train does): the
#   difference between the two peer runs is the size of an honest bf16 choice, the yardstick for wick's.
#
# Writes $OUT/loss-curve.md (the table and summary, also printed), $OUT/summary.json, the per-step losses
# ($OUT/wick-metrics.jsonl, $OUT/peer.jsonl, $OUT/peer-f32lora.jsonl) and $OUT/loss-curve.log.
# Needs python3 with torch, transformers and peft (no network), and for Qwen presets the tokenizer
# `wick init-model` copies (third_party/npm/qwen3-tokenizer, or WICK_TOKENIZER_DIR).
set -uo pipefail
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # the peer reads local folders only
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
W="$BUILD/wick"
STEPS=${STEPS:-300}
PRESET=${PRESET:-0.5b}
BATCH=${BATCH:-8}
SEQ=${SEQ:-1024}
LR=${LR:-2e-4}
SCHED=${SCHED:-cosine}
WARMUP=${WARMUP:-10}
DEVICE=${DEVICE:-cuda}
PEER=${PEER:-1}
REF=${REF:-1}
OUTDIR=${OUT:-out/loss-curve}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/loss-curve.log
TABLE=$OUTDIR/loss-curve.md
: > "$LOG"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PY=bench/peer/loss_curve.py
T0=$SECONDS
say() { echo "[loss-curve $((SECONDS - T0))s] $*" | tee -a "$LOG" >&2; }
die() { tail -20 "$LOG" >&2; say "FAILED: $*"; exit 1; }

case "$PRESET" in
  0.5b | 1.5b | 3b | 7b) WPRESET=qwen2.5-$PRESET ;;
  *) WPRESET=$PRESET ;;
esac
if [ "$DEVICE" = cpu ]; then DTYPE=f32; else DTYPE=bf16; fi
[ -x "$W" ] || die "no wick at $W (set BUILD)"
if [ "$PEER" = 1 ]; then
  python3 -c 'import torch, transformers, peft' 2>> "$LOG" || die "the peer needs python3 with torch, transformers and peft (PEER=0 runs wick alone)"
fi
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

MODEL=$TMP/model
DATA=$TMP/data.jsonl
ADAPTER=$TMP/adapter-init
RUN=$TMP/wick-run
say "model: wick init-model --preset $WPRESET"
"$W" init-model --preset "$WPRESET" --out "$MODEL" --dtype bf16 >> "$LOG" 2>&1 || die "init-model"
say "data: $((BATCH * STEPS)) rows x $SEQ ids"
python3 "$PY" data --model "$MODEL" --out "$DATA" --rows $((BATCH * STEPS)) --seq "$SEQ" >> "$LOG" 2>&1 || die "data"

init=()
if [ "$PEER" = 1 ]; then
  say "adapter: PEFT's fresh LoRA, saved"
  python3 "$PY" init-adapter --model "$MODEL" --out "$ADAPTER" --rank 16 >> "$LOG" 2>&1 || die "init-adapter"
  init=(--adapter-init "$ADAPTER")
else
  init=(--rank 16 --alpha 32 --targets all --dropout 0)
fi

say "wick train: $STEPS steps of $BATCH x $SEQ, $DEVICE $DTYPE"
"$W" train --model "$MODEL" --data "$DATA" --format tokens --out "$RUN" "${init[@]}" --no-shuffle \
  --batch-size "$BATCH" --max-steps "$STEPS" --max-seq-len "$SEQ" \
  --lr "$LR" --scheduler "$SCHED" --warmup-steps "$WARMUP" --betas 0.9,0.999 --eps 1e-8 --weight-decay 0.01 \
  --max-grad-norm 1 --device "$DEVICE" --dtype "$DTYPE" --log-every 25 --no-report >> "$LOG" 2>&1 || die "wick train"
cp "$RUN/metrics.jsonl" "$OUTDIR/wick-metrics.jsonl"
if [ "$PEER" != 1 ]; then
  python3 - "$OUTDIR/wick-metrics.jsonl" <<'PY' | tee "$TABLE"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "loss" in r and "eval_loss" not in r]
print("| step | lr | wick loss |\n|---|---|---|")
for r in rows:
    if r["step"] == 1 or r["step"] % 25 == 0 or r is rows[-1]:
        print("| %d | %.3g | %.4f |" % (r["step"], r["lr"], r["loss"]))
PY
  say "done (wick alone)"
  exit 0
fi

peer_train() {  # out-file extra-flags...
  local out=$1
  shift
  python3 "$PY" train --model "$MODEL" --adapter "$ADAPTER" --data "$DATA" --out "$out" --batch "$BATCH" \
    --steps "$STEPS" --lr "$LR" --scheduler "$SCHED" --warmup-steps "$WARMUP" --betas 0.9,0.999 --eps 1e-8 \
    --weight-decay 0.01 --max-grad-norm 1 "$@" >> "$LOG" 2>&1
}
NOTE="Qwen2.5-$PRESET-shaped random model ($WPRESET), $BATCH x $SEQ tokens a step, LoRA r 16 / alpha 32 on all seven projections from PEFT's init, AdamW lr $LR, $SCHED with $WARMUP warmup steps, clip 1.0, data: a random Markov chain (entropy ~0.91 nats) in file order. wick: $DEVICE $DTYPE; peer: bf16 model + f32 LoRA under torch.autocast(bf16). card: ${GPU:-none}; $(date -u +%F); wick $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
table() {
  python3 "$PY" table --wick "$OUTDIR/wick-metrics.jsonl" --peer "$OUTDIR/peer.jsonl" --ref "$OUTDIR/peer-f32lora.jsonl" \
    --out "$TABLE" --json "$OUTDIR/summary.json" --title "Loss curve: wick train beside torch + PEFT" --note "$NOTE"
}

say "peer train: torch + PEFT, autocast bf16"
peer_train "$OUTDIR/peer.jsonl" || die "peer train"
if [ "$REF" = 1 ]; then
  table > /dev/null  # the table without the yardstick, in case the call ends during the next run
  say "peer train again, no autocast (LoRA math in f32): the bf16 yardstick"
  peer_train "$OUTDIR/peer-f32lora.jsonl" --no-autocast || say "the yardstick run failed (the table has no such column)"
fi
say "table"
table || die "table"
say "done"
