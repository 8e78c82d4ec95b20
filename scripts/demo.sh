#!/usr/bin/env bash
# wick's main job on an embedded default, from a fresh clone:
#   1. install what is missing and build (first run only: a few minutes; later runs skip it),
#   2. check every op on every device present against the CPU reference,
#   3. make a small model with the Qwen2 architecture and the real Qwen tokenizer - RANDOM weights, so it
#      knows no language: what it learns below is all it knows,
#   4. fine-tune a LoRA adapter on examples/data/pirate.jsonl (300 chats whose assistant always answers
#      like a pirate), showing the progress and the loss falling,
#   5. generate for the same prompts without and with the adapter, so the learned behaviour is visible.
# Uses the GPU when there is one. Everything it writes goes to .cache/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
W=./build/wick
D=.cache/demo
mkdir -p "$D"

echo; echo "== 1/4 the machine"
$W info
echo; echo "== 2/4 every op on every device against the CPU reference"
$W selfcheck

echo; echo "== 3/4 a tiny Qwen2-architecture model with random weights and the real Qwen tokenizer"
if [ ! -f "$D/tiny/model.safetensors" ]; then
  $W init-model --preset tiny --out "$D/tiny" --seed 1 --dtype f32
else
  echo "(already made: $D/tiny)"
fi

echo; echo "== 4/4 fine-tune a LoRA adapter on examples/data/pirate.jsonl, then compare"
rm -rf "$D/pirate-adapter"
$W train --model "$D/tiny" --data examples/data/pirate.jsonl --out "$D/pirate-adapter" \
  --epochs 2 --batch-size 8 --lr 3e-3 --max-seq-len 128 --seed 1

# Generated text on one line, newlines shown as \n (a random model likes to emit whitespace).
show() { sed ':a;N;$!ba;s/\n/\\n/g'; }
for prompt in "Tell me about the harbour." "What is the best way to cook rice?" "Explain gravity to me."; do
  echo
  echo "user: $prompt"
  printf "  without adapter: "
  $W generate --model "$D/tiny" --chat --prompt "$prompt" --max-new-tokens 24 --temperature 0.7 --seed 3 2>/dev/null | head -c 300 | show
  echo
  printf "  with adapter:    "
  $W generate --model "$D/tiny" --adapter "$D/pirate-adapter" --chat --prompt "$prompt" --max-new-tokens 24 \
    --temperature 0.7 --seed 3 2>/dev/null | head -c 300 | show
  echo
done
echo
echo "demo: the adapter is in $D/pirate-adapter (a PEFT folder: adapter_config.json + adapter_model.safetensors)"
