#!/usr/bin/env bash
# wick's main job on an embedded default, from a fresh clone:
#   1. install what is missing and build (first run only: a few minutes; later runs skip it),
#   2. check every op on every device present against the CPU reference,
#   3. make a small model with the Qwen2 architecture and the real Qwen tokenizer - RANDOM weights, so it
#      knows no language and no skill: what it can do below is all learned here,
#   4. measure it on 40 held-out prompts ("Sort the digits 961324" -> "123469"), then fine-tune a LoRA
#      adapter on 3000 other such chats (examples/data/make_sort_digits.py), showing the loss falling
#      (2.5 passes: with fewer, some seeds stall near loss 0.3 and 60-80% held out; attention-only
#      adapters do not learn it at all - the MLPs are needed),
#   5. measure the same held-out prompts with the adapter. Their digit sets never occur in training, so
#      each right answer is one the model never saw: it learned to sort, it did not memorise.
# Exact match, greedy decoding, Qwen2.5's chat template. Uses the GPU when there is one (in f32 on every
# device: the precision its settings were tuned in). Everything it writes goes to .cache/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
W=./build/wick
D=.cache/demo
TRAIN=examples/data/sort_digits_train.jsonl
HELDOUT=examples/data/sort_digits_heldout.jsonl
# Idle OpenMP threads sleep instead of spinning: on a busy or small machine spinning threads take the
# cores from the ones doing the work (measured: training 3x slower on 2 shared cores).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$D"
start=$(date +%s)

echo; echo "== 1/5 the machine"
$W info
echo; echo "== 2/5 every op on every device against the CPU reference"
$W selfcheck

echo; echo "== 3/5 a tiny Qwen2-architecture model with random weights and the real Qwen tokenizer"
# Qwen2.5's tokenizer files (fetched by scripts/setup.sh): the chat template of a Qwen2 model, no <think> block.
M=$D/tiny-qwen2
if [ ! -f "$M/model.safetensors" ]; then
  $W init-model --preset tiny --out "$M" --seed 1 --dtype f32 --tokenizer-dir third_party/npm/qwen2_5-tokenizer
else
  echo "(already made: $M)"
fi

# The held-out prompts and their answers, one a line (the files are examples/data's fixed JSONL shape).
sed -n 's/.*"content": "\(Sort the digits [0-9]*\)".*/\1/p' "$HELDOUT" > "$D/prompts.txt"
sed -n 's/.*"assistant", "content": "\([0-9]*\)".*/\1/p' "$HELDOUT" > "$D/expected.txt"
sed -n 's/.*"assistant", "content": "\([0-9]*\)".*/\1/p' "$TRAIN" | sort -u > "$D/train_answers.txt"
n=$(wc -l < "$D/prompts.txt")
[ "$n" -gt 0 ] && [ "$n" -eq "$(wc -l < "$D/expected.txt")" ] || { echo "demo: cannot read $HELDOUT" >&2; exit 1; }
# The answer is the sorted digit set: no held-out answer among the training answers = no held-out set trained.
if sort -u "$D/expected.txt" | comm -12 - "$D/train_answers.txt" | grep -q .; then
  echo "demo: a held-out digit set occurs in $TRAIN" >&2; exit 1
fi

# answers NAME [--adapter DIR]: greedy answers to every held-out prompt (one wick chat session, /reset between
# prompts), one a line in $D/NAME.txt with newlines shown as \n; prints how many equal the expected answer.
answers() {
  local name=$1; shift
  sed 's|$|\n/reset|' "$D/prompts.txt" |
    $W chat --model "$M" "$@" --dtype f32 --temperature 0 --max-new-tokens 12 2>/dev/null |
    awk 'BEGIN { RS = "[(]conversation reset[)]\n" }
         { sub(/\n$/, ""); gsub(/\n/, "\\n"); print }' > "$D/$name.txt"
  paste -d'\t' "$D/expected.txt" "$D/$name.txt" |
    awk -F'\t' '{ a = $2; gsub(/^(\\n|[ \t])+|(\\n|[ \t])+$/, "", a); ok += (a == $1) } END { printf "%d/%d", ok, NR }'
}

echo; echo "== 4/5 the skill: sort the digits of a number ($n held-out prompts, none of their digit sets in training)"
head -3 "$HELDOUT"
before=$(answers before)
echo "held-out exact match WITHOUT the adapter: $before"
echo "fine-tuning a LoRA adapter on $TRAIN ($(wc -l < "$TRAIN") chats):"
$W train --model "$M" --data "$TRAIN" --out "$D/sort-adapter" --overwrite --dtype f32 \
  --rank 32 --alpha 64 --lr 2e-3 --epochs 2.5 --batch-size 16 --max-seq-len 96 --seed 1

echo; echo "== 5/5 the same held-out prompts with the adapter"
after=$(answers after --adapter "$D/sort-adapter")
echo "held-out exact match: without the adapter $before, with it $after"
paste -d'\t' "$D/prompts.txt" "$D/expected.txt" "$D/before.txt" "$D/after.txt" | head -3 |
  while IFS=$'\t' read -r p e b a; do
    echo
    echo "user: $p   (expected: $e)"
    echo "  without adapter: ${b:0:60}"
    echo "  with adapter:    ${a:0:60}"
  done
echo
echo "demo: done in $(( $(date +%s) - start )) s after the build. The adapter is in $D/sort-adapter (a PEFT folder);"
echo "try your own digits: $W generate --model $M --adapter $D/sort-adapter --chat --prompt 'Sort the digits 5902'"
