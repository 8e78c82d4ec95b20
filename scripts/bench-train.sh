#!/usr/bin/env bash
# Issue 8's table in one call on the GPU machine: LoRA training tokens/s, peak memory and MFU for wick beside
# the torch peer (bench/peer/torch_peer.py: transformers + PEFT, eager, and torch.compile for the first row),
# same settings: bf16, LoRA r 16 / alpha 32 on all seven projections, AdamW, clip 1.0, random tokens, the
# median of steps 3 and later.
#
#   BUILD=build-gpu scripts/bench-train.sh [ROW ...]      rows: 0.5b 0.5b-gc 0.5b-16k 1.5b 7b 7b-gc seed (default:
#   all) and 0.5b-chat (not in the default: wick alone, --packing over examples of 64-1,024 random tokens whose
#   first 20-90% are a prompt with ignored labels, as chat data is: the counted rows change from step to step)
#   and 0.5b-dropout (wick alone, --dropout 0.05: PEFT recipes' usual LoRA dropout).
#   Each training row is judged against issue 8's goal for it (written for the H200; on another card the verdict
#   says so). `seed` is the seed suite's CUDA rows (wick_bench, needs $BUILD/bench/wick_bench) beside the peer's
#   `micro`, each against its goal (bench/seed_table.py), printed as a second table after the first.
#   PEER=0 skips the peer; COMPILE=0 skips torch.compile; STEPS (default 10). BENCH_TMP=DIR keeps the random
#   models and data there for the next call (an A/B of environment switches makes each model once).
#   Environment switches (docs/guide.md) pass through to wick.
# Expects a CUDA build in $BUILD (scripts/gpu-check.sh makes build-gpu). Writes $OUT/train-bench.md (the
# table) and $OUT/train-bench.log (everything).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
OUTDIR=${OUT:-out/bench-train}
mkdir -p "$OUTDIR"
W="$BUILD/wick"
TMP=${BENCH_TMP:-$(mktemp -d)}
mkdir -p "$TMP"
LOG=$OUTDIR/train-bench.log
TABLE=$OUTDIR/train-bench.md
: > "$LOG"
STEPS=${STEPS:-10}
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(0.5b 0.5b-gc 0.5b-16k 1.5b 7b 7b-gc seed)
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "| work | wick | torch+PEFT eager | torch.compile+PEFT | goal |" > "$TABLE"
echo "|---|---|---|---|---|" >> "$TABLE"

# row -> preset batch seq wick-extra-flags peer-extra-flags (none: no peer row)
row_spec() {
  case "$1" in
    0.5b) echo "qwen2.5-0.5b 0.5b 8 1024 - -" ;;
    0.5b-gc) echo "qwen2.5-0.5b 0.5b 8 1024 --grad-checkpointing --gc" ;;
    0.5b-16k) echo "qwen2.5-0.5b 0.5b 1 16384 - -" ;;
    0.5b-chat) echo "qwen2.5-0.5b 0.5b 8 1024 --packing none" ;;
    0.5b-dropout) echo "qwen2.5-0.5b 0.5b 8 1024 --dropout=0.05 none" ;;
    1.5b) echo "qwen2.5-1.5b 1.5b 8 1024 - -" ;;
    7b) echo "qwen2.5-7b 7b 4 1024 - -" ;;
    7b-gc) echo "qwen2.5-7b 7b 4 1024 --grad-checkpointing --gc" ;;  # issue 8: <= 20 GiB with checkpointing
    *) echo "bench-train: unknown row '$1'" >&2; return 1 ;;
  esac
}

# row -> issue 8's goal: tok/s (or "2xeager": twice the peer's eager row) and peak GiB; none for rows it has none
row_goal() {
  case "$1" in
    0.5b) echo "170000 12" ;;
    0.5b-gc) echo "120000 6" ;;
    0.5b-16k) echo "2xeager 16" ;;
    1.5b) echo "60000 20" ;;
    7b) echo "14000 30" ;;
    7b-gc) echo "14000 20" ;;
    *) echo "none" ;;
  esac
}

verdict() {  # wick eager compiled goal-tok/s goal-GiB (cells) -> "≥ N tok/s, ≤ G GiB: met" or what is missed
  python3 - "$@" "$GPU" <<'PY'
import re, sys
wick, eager, compiled, goal_tps, goal_gib, gpu = sys.argv[1:7]
m = re.match(r"(\d+) tok/s, ([\d.]+) GiB", wick)
if not m:
    print("not measured"); sys.exit()
tps, gib = float(m.group(1)), float(m.group(2))
if goal_tps == "2xeager":
    e = re.match(r"(\d+) tok/s", eager)
    if not e:
        print("≥ 2x the peer's eager, ≤ %s GiB: no peer row to judge by" % goal_gib); sys.exit()
    need, what = 2 * float(e.group(1)), "≥ 2x eager (%d tok/s)" % (2 * float(e.group(1)))
else:
    need, what = float(goal_tps), "≥ %s tok/s" % format(int(goal_tps), ",")
misses = []
if tps < need:
    misses.append("%.2fx the tok/s" % (tps / need))
if gib > float(goal_gib):
    misses.append("%.2f GiB over" % (gib - float(goal_gib)))
v = "%s, ≤ %s GiB: %s" % (what, goal_gib, "met" if not misses else "not met (" + "; ".join(misses) + ")")
c = re.match(r"(\d+) tok/s", compiled)
if c:
    v += "; %.2fx torch.compile" % (tps / float(c.group(1)))
if "H200" not in gpu:
    v += " (the goal is written for the H200)"
print(v)
PY
}

seed_rows() {  # the seed suite's CUDA rows beside the peer's micro, as a second table (bench/seed_table.py)
  local bench=$BUILD/bench/wick_bench
  echo "== seed" >> "$LOG"
  if [ ! -x "$bench" ]; then echo "seed rows: $bench is not built (cmake --build $BUILD --target wick_bench)" | tee -a "$TABLE"; return; fi
  "$bench" --benchmark_filter="$(python3 bench/seed_table.py --filter cuda)" --benchmark_format=json \
    --benchmark_out="$TMP/seed-wick.json" >> "$LOG" 2>&1
  : > "$TMP/seed-torch.jsonl"
  [ "${PEER:-1}" = 1 ] && python3 bench/peer/torch_peer.py micro > "$TMP/seed-torch.jsonl" 2>> "$LOG"
  { echo; python3 bench/seed_table.py "$TMP/seed-wick.json" "$TMP/seed-torch.jsonl" "$GPU" --markdown; } | tee -a "$TABLE"
}

wick_row() {  # preset batch seq flag -> "N tok/s, G GiB, MFU m%" or a failure note
  local preset=$1 batch=$2 seq=$3 flag=$4 model=$TMP/$1 data=$TMP/data-$2x$3$4.jsonl extra=()
  [ "$flag" != - ] && extra=("$flag")
  # (the help read whole first: grep -q would stop reading early, and under pipefail wick's SIGPIPE fails the test)
  if [ "$flag" != - ] && ! grep -q -- "${flag%%=*}" <<< "$("$W" train --help 2>/dev/null)"; then echo "– (no $flag yet)"; return; fi
  [ -d "$model" ] || "$W" init-model --preset "$preset" --out "$model" --dtype bf16 >> "$LOG" 2>&1 || { echo "init-model failed"; return; }
  [ -f "$data" ] || python3 - "$data" "$batch" "$seq" "$STEPS" "$flag" <<'PY'
import json, random, sys
path, b, s, steps, flag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = random.Random(2)
with open(path, "w") as f:
    if flag == "--packing":  # chat-like: enough examples of 64..s tokens for the steps, the prompt's labels ignored
        for _ in range(b * (steps + 2) * 3):
            ids = [r.randrange(151643) for _ in range(r.randint(64, s))]
            prompt = int(len(ids) * r.uniform(0.2, 0.9))
            f.write(json.dumps({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]}) + "\n")
    else:
        for _ in range(b * (steps + 2)):
            f.write(json.dumps({"input_ids": [r.randrange(151643) for _ in range(s)]}) + "\n")
PY
  rm -rf "$TMP/run"
  "$W" train --model "$model" --data "$data" --out "$TMP/run" --batch-size "$batch" --max-steps "$STEPS" \
    --rank 16 --alpha 32 --targets all --lr 1e-4 --scheduler constant --warmup-steps 0 --device cuda --dtype bf16 \
    --max-seq-len "$seq" "${extra[@]}" >> "$LOG" 2>&1 || { echo "wick train failed: $(tail -1 "$LOG")"; return; }
  python3 - "$TMP/run/metrics.jsonl" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "tokens_per_s" in r]
warm = rows[2:] if len(rows) > 3 else rows
tps = statistics.median(r["tokens_per_s"] for r in warm)
mfu = [r["mfu"] for r in warm if "mfu" in r]
s = "%.0f tok/s, %.2f GiB" % (tps, max(r.get("peak_device_gib", 0) for r in rows))
if mfu:
    s += ", MFU %.0f%%" % (100 * statistics.median(mfu))
print(s)
PY
}

peer_row() {  # preset batch seq flag compile -> "N tok/s, G GiB"
  local extra=()
  [ "$4" != - ] && extra=("$4")
  [ "$5" = 1 ] && extra+=(--compile)
  python3 bench/peer/torch_peer.py train --preset "$1" --batch "$2" --seq "$3" --rank 16 --steps "$STEPS" "${extra[@]}" \
    2>> "$LOG" | tee -a "$LOG" | python3 -c "
import json, sys
for l in sys.stdin:
    if l.startswith('{'):
        d = json.loads(l); print('%d tok/s, %.1f GiB' % (d['tokens_per_s'], d['peak_gib'])); break
else:
    print('failed')"
}

SEED=0
for row in "${ROWS[@]}"; do
  [ "$row" = seed ] && { SEED=1; continue; }
  spec=$(row_spec "$row") || continue
  read -r preset ppreset batch seq wflag pflag <<< "$spec"
  echo "== $row" >> "$LOG"
  w=$(wick_row "$preset" "$batch" "$seq" "$wflag")
  pe="–"; pc="–"
  if [ "${PEER:-1}" = 1 ] && [ "$pflag" != none ]; then
    pe=$(peer_row "$ppreset" "$batch" "$seq" "$pflag" 0)
    [ "$row" = 0.5b ] && [ "${COMPILE:-1}" = 1 ] && pc=$(peer_row "$ppreset" "$batch" "$seq" "$pflag" 1)
  fi
  label="train $ppreset, $batch × $seq"
  case "$wflag" in
    --grad-checkpointing) label="$label, activation checkpointing" ;;
    --packing) label="$label, packed chat-like rows (20-90% prompt)" ;;
    --dropout=*) label="$label, LoRA dropout ${wflag#--dropout=}" ;;
  esac
  goal=$(row_goal "$row")
  g="–"
  [ "$goal" != none ] && g=$(verdict "$w" "$pe" "$pc" $goal)
  echo "| $label | $w | $pe | $pc | $g |" | tee -a "$TABLE"
done
[ $SEED = 1 ] && seed_rows
echo "card: $GPU; $(date -u +%F); wick $(git rev-parse --short HEAD 2>/dev/null || echo '?')" | tee -a "$TABLE"
[ -n "${BENCH_TMP:-}" ] || rm -rf "$TMP"
