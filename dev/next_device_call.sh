#!/usr/bin/env bash
# The GPU work pending for the nvidia-h200 kind. It applies the patches named in $PATCHES (none by default; e.g.
# dev/l2_prefetch/l2_prefetch.patch, measured slower in session 27) to the device's copy of the tree
# (idempotently: a second call on the same warm machine keeps them and the build), builds once, runs the whole
# CUDA suite, and measures:
#   adapter: 0.5B decode with a 1-step r 16 adapter on all seven projections beside the same model without it
#   glu: gate/up + GLU at two warps a row (the default from 4,096 rows) against one (WICK_GLU_K2=0), 1.5B, 0.5B
#   l2: the L2 prefetch's variants (with PATCHES naming l2_prefetch.patch)
#   early: decode attention's early cache loads (the default) against WICK_DECODE_EARLY_LOADS=0, 1.5B and 0.5B
# and issue 8's training table with the peer (train: main's defaults, the GEMM tuning and the adapter fold, with
# the fold's A/B), an ncu profile of 0.5B training steps (ncu), and three harnesses: dev/small_m/small_m_bench.cu
# l2 (each decode projection from HBM and from L2), dev/low_rank/low_rank_bench.cu split (v1 beside v3 / v4 on
# the seed suite's lora rows: issue 8's <= 10-12 us goal) and dev/gemm_algos on the 1.5B and 7B shapes (gemm).
# Stages: build tests train ncu (the default), trainab (the training rows of the tree against the base packed in
# .carry-ab), wgrad (dev/weight_grads' harness: v1, v2, probes; then training with WICK_WEIGHT_GRADS=1, 2 and
# WICK_WEIGHT_GRADS=0), lorarows (the seed suite's lora rows: low_rank_product's rule against v1), adapter glu l2
# early epilogue ahead attnproj attnncu trigger staged lowrank l2bench gemm megakernel ce cencu normfuse inplace xahead pdltrace tunesweep detab coresident splits
# bulkgemv graphs losschunk onelaunch warmup fusedmlp fusedab. Each writes under $OUT:
# build.log, cuda-tests.log, megakernel.txt, train-ce-ab.md, ncu-ce.txt, norm-fusion-ab.txt, weight-grads.txt, train-wgrad-ab.md, lora-rows.txt, decode-ab.txt, glu-ab.txt, l2-ab.txt, early-ab.txt, epilogue-ab.txt, ahead-ab.txt and ahead-tests.log, attnproj-ab.txt, ncu-attnproj-0.txt and -1.txt, trigger-ab.txt, staged-ab.txt, low-rank.txt, small-m-l2.txt, train-table.md
# (+ bench/), train-ab.md, ncu-train.txt, gemm-algos.txt, inplace-tests.log, train-inplace-ab.md, xahead-ab.txt,
# xahead-tests.log (the decode A/B stages keep their log under $O/NAME/ too), one-launch.txt, one-launch-tests.log, pdl-trace-<preset>.txt and -summary.txt, tune-sweep.txt, train-det-ab.md, co/decode-ab.txt, splits/p<prompt>/decode-ab.txt and splits/kernel.txt, small-m-bulk.txt, warmup/n<n>-ab.txt, fused-mlp.txt, fused-ab.txt, and summary.txt. The patch stages (inplace, xahead,
# pdltrace) apply their patch to the device's copy of the tree; xahead compares against .carry-ab/base.tgz, so pack
# main without the patch first (bash scripts/decode-ab.sh pack).
#
# Pending (sessions 37-46; FIRST on an H200, session 45's question (docs/benchmarks.md section 10, session 45): do
# the small-row kernels' x reads through L2 limit 1.5B there? With it, session 41's early trigger (rebased in
# session 46), in one call that does nothing on an H100 (~7 min on an H200 with the machine's start):
#   G=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo "$G" | grep -q H200 || exit 0
#   export PATCHES="dev/small_m/tune_env.patch dev/small_m/early_trigger.patch"
#   WICK_EARLY_TRIGGER=0 TUNE_SWEEP="1536x8960=2:8 1536x8960=4:8 8960x1536=4:4 8960x1536=1:8" timeout 400 \
#     bash dev/next_device_call.sh build tunesweep
#   [ $SECONDS -lt 380 ] && TRIGGER_PRESETS="qwen2.5-1.5b qwen2.5-0.5b" TRIGGER_ROUNDS=2 timeout 170 \
#     bash dev/next_device_call.sh trigger
# (the sweep's `base` lines are issue 12's 1.5B row with everything landed; the early trigger is on by default
# once its patch is built in, hence WICK_EARLY_TRIGGER=0 for the sweep); session 45's `warmup` (H100): decode
# pays 1.8-4.6 ms once, ~1% of a 1.5B row, no H200 rerun needed;
# session 44's one-launch MLP, dev/fused_mlp, lost 16-20% on an H100 and needs no H200 rerun; session 43's decode
# steps queued ahead, on by default, measured on an H100 only: 1.5B +1.0%, 0.5B +1.9%; on an H200 `build ahead`
# gives its A/B and, as its "on" lines, issue 12's decode rows with
# it; session 41's two decode experiments, dev/small_m/staged.patch and early_trigger.patch (both rebased onto
# main in session 46; they touch the same lines of env.h, so one at a time), were measured on H100s only: on an
# H200 their A/B is `PATCHES=... build staged` / `build trigger`; session 42's
# o_proj inside attention, dev/attention/attn_proj*.patch, lost 9-15% on an H100 in both forms and needs no H200
# rerun): on an H200, issue 8's table of the newest tree (`PEER=1 TRAIN_AB=0 ... build train`;
# docs/benchmarks.md 8r has each goal's verdict from 8m's H200 and 8p's H100 tables). It needs ~430 s of device
# time plus the machine's start (~300 s in session 40): run it FIRST in a session. Then issue 12's decode rows with
# 3 rounds (`epilogue` gives them as its "on" lines; session 39, one round on the H200: 1,632 / 807 / 252 tok/s;
# session 40's early epilogue: H100 0.5B +2.5%, 1.5B +0.9%, not yet on an H200), `pdltrace` (the decode chain on
# an H200 for the first time: where 1.5B's last ~10% to issue 12's goal goes) and `splits` (H100s only so far).
# The whole CUDA suite passed on an H100 in session 44 (994 tests: main d2fd499 with the one-launch MLP patch).
# Here, before the call: bash scripts/pack-deps.sh; bash scripts/decode-ab.sh pack (the tokenizer).
# The device tool's command: bash dev/next_device_call.sh [STAGE ...]     carry: [".carry-ab", ".deps"]
# About: build ~1.5 min, tests ~0.5, adapter ~0.5, glu ~1, l2 ~1.5, lowrank ~0.5, l2bench ~1, train ~5,
# ncu ~1, gemm ~0.5; calls of more than 10 minutes split in two on the same warm machine (the second finds the
# patches applied and the build current).
set -uo pipefail
cd "$(dirname "$0")/.."
O=${OUT:-out/next}
mkdir -p "$O"
S=$O/summary.txt
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(build tests train ncu)
note() { echo "$(date -u +%T) $*" | tee -a "$S"; }
want() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
# Training rows at each value of an environment switch, one build, alternating, wick alone (12 steps):
# train_ab FILE VAR "VALUES" "MODEL:ROUND ..." appends one line a run to FILE.
train_ab() {
  local file=$1 var=$2 values=$3 specs=$4 spec v
  : > "$file"
  for spec in $specs; do
    set -- ${spec/:/ }
    for v in $values; do
      env "$var=$v" OUT=/tmp/bt-out BENCH_TMP=/tmp/bt PEER=0 STEPS=12 BUILD=build-gpu timeout 100 \
        bash scripts/bench-train.sh "$1" > /dev/null 2>&1
      echo "$1 round $2, $var=$v: $(grep '^| train' /tmp/bt-out/train-bench.md)" >> "$file"
    done
  done
}
# Decode rows of one build under each variant, alternating (scripts/decode-ab.sh variants, wick alone):
# decode_ab NAME LABEL SECONDS "PRESETS" ROUNDS "VARIANT=ENV" ... writes $O/NAME/decode-ab.txt as it goes, copies it
# to $O/NAME-ab.txt and notes each line's tok/s (and any "tokens differ") after LABEL.
decode_ab() {
  local name=$1 label=$2 seconds=$3 presets=$4 rounds=$5
  shift 5
  OUT="$O/$name" WICK_NEW=build-gpu/wick timeout "$seconds" bash scripts/decode-ab.sh variants "$presets" "$rounds" "$@" \
    > /dev/null 2>&1
  cp "$O/$name/decode-ab.txt" "$O/$name-ab.txt" 2>/dev/null
  note "$label: $(grep -o 'qwen[a-z0-9.-]* [a-z0-9]* round [0-9]: decode [0-9.]* tok/s\|tokens differ' "$O/$name-ab.txt" 2>/dev/null | tr '\n' ' ')"
}
P=/opt/wickdeps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$P:$P/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >> "$S" 2>&1

NVCC=nvcc; [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
# dev/low_rank/low_rank_bench.cu built from the kernels of the tree as it is, then run in mode $1 for at most $3
# seconds, all its output in $2: low_rank_harness MODE FILE SECONDS (fails when it does not build).
low_rank_harness() {
  mkdir -p build-gpu
  "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -I src \
    -o build-gpu/low_rank_bench.bin dev/low_rank/low_rank_bench.cu > "$2" 2>&1 || return 1
  timeout "$3" build-gpu/low_rank_bench.bin "$1" >> "$2" 2>&1
  return 0
}
if want lowrank; then
  # Before the patches: the harness builds the kernels of the tree as it is (v1 from src/ops/cuda/low_rank.cuh).
  if low_rank_harness split "$O/low-rank.txt" 120; then
    note "low-rank harness: $(tail -1 "$O/low-rank.txt"); $(grep -c FAIL "$O/low-rank.txt") FAIL lines"
  else
    note "low-rank harness did not build (low-rank.txt)"
  fi
fi

if want build; then
  mkdir -p third_party/npm && tar xzf .carry-ab/tok.tgz -C third_party/npm
  for p in ${PATCHES:-}; do  # e.g. PATCHES=dev/l2_prefetch/l2_prefetch.patch
    if git apply --reverse --check "$p" 2> /dev/null; then note "already applied $p"; continue; fi
    git apply "$p" && note "applied $p" || { note "FAILED to apply $p"; exit 1; }
  done
  bash scripts/gpu-check.sh --configure-only > "$O/build.log" 2>&1
  if cmake --build build-gpu -j16 --target wick wick_cuda_tests wick_bench >> "$O/build.log" 2>&1; then
    note "built wick, wick_cuda_tests, wick_bench"
  else
    note "BUILD FAILED (build.log)"; tail -40 "$O/build.log"; exit 1
  fi
fi

if want tests; then
  T=$O/cuda-tests.log
  timeout 120 build-gpu/tests/wick_cuda_tests > "$T" 2>&1
  note "CUDA suite: $(grep -E '^\[  (PASSED|FAILED)  \]' "$T" | tr '\n' ' ')"
  echo "== the same with the GEMM tuning off" >> "$T"
  WICK_GEMM_TUNE=0 timeout 60 build-gpu/tests/wick_cuda_tests \
    --gtest_filter='*GemmTune*:*inear*:*ora*:*mallM*:*ecode*:*rain*' >> "$T" 2>&1
  echo "== decode with the L2 prefetch off" >> "$T"
  WICK_L2_PREFETCH=0 timeout 60 build-gpu/tests/wick_cuda_tests --gtest_filter='*ecode*:*L2Prefetch*' >> "$T" 2>&1
  echo "== the small-row kernels' epilogue read after the wait" >> "$T"
  WICK_EARLY_EPILOGUE=0 timeout 60 build-gpu/tests/wick_cuda_tests --gtest_filter='*mallM*:*ecode*' >> "$T" 2>&1
  note "tuning off: $(grep -E '^\[  (PASSED|FAILED)  \]' "$T" | tail -n +2 | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$T" | head -20 >> "$S"
fi

if want megakernel; then
  mkdir -p build-gpu
  # dev/megakernel: a chain of PDL launches (a CUDA graph, today's decode projections) against one persistent kernel
  # with grid barriers, for 28 layers of Qwen2.5-1.5B's four projection phases; the same block code, the same bits.
  # Since session 33 also the flagged forms (in-grid counters instead of kernel boundaries).
  if "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/layer_chain_bench.bin \
      dev/megakernel/layer_chain_bench.cu >> "$O/build.log" 2>&1; then
    timeout 120 build-gpu/layer_chain_bench.bin 28 > "$O/megakernel.txt" 2>&1
    note "megakernel: $(grep -E 'us a layer|FAIL|done' "$O/megakernel.txt" | tr '\n' ' ')"
  else
    note "megakernel harness did not build (build.log)"
  fi
fi
if want l2; then
  # The L2 prefetch during decode attention (l2_prefetch.patch), 0.5B and 1.5B, two rounds: off, bulk (the
  # default, 32 MB a layer, before the attention), per-line, 48 MB, and before q|k|v (32 and 48 MB). The tokens
  # must be the same in every variant.
  decode_ab l2 "l2" 240 "qwen2.5-0.5b qwen2.5-1.5b" 2 "off=WICK_L2_PREFETCH=0" "bulk=" "lines=WICK_L2_PREFETCH=2" \
    "mb48=WICK_L2_PREFETCH_MB=48" "qkv=WICK_L2_PREFETCH_AT=qkv" "qkv48=WICK_L2_PREFETCH_AT=qkv WICK_L2_PREFETCH_MB=48"
fi

if want gemm; then
  # dev/gemm_algos on the 1.5B and 7B training shapes (0.5B's were measured in session 24's first call).
  "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -o build-gpu/gemm_algos_bench.bin \
    dev/gemm_algos/gemm_algos_bench.cu -lcublasLt >> "$O/build.log" 2>&1
  for m in 1.5b 7b; do timeout 60 build-gpu/gemm_algos_bench.bin $m >> "$O/gemm-algos.txt" 2>&1; done
  note "gemm_algos: $(grep '^per ' "$O/gemm-algos.txt" | tr '\n' ' ')"
fi

if want train; then
  # Issue 8's table with the peer beside wick (its defaults: the GEMM tuning on, the fold for hidden <= 1,024),
  # then the fold's A/B on the rows it decides: 0.5B with it off (WICK_ADAPTER_FOLD=0), 1.5B forced on.
  # TRAIN_ROWS (default all six and the seed suite's rows, each with its goal's verdict) and PEER (default 1)
  # narrow it; TRAIN_AB=0 skips the A/B.
  OUT=$O/bench BENCH_TMP=/tmp/bt PEER=${PEER:-1} STEPS=12 BUILD=build-gpu timeout 540 bash scripts/bench-train.sh \
    ${TRAIN_ROWS:-0.5b 0.5b-gc 0.5b-16k 1.5b 7b 7b-gc seed} > /dev/null 2>&1
  cp "$O/bench/train-bench.md" "$O/train-table.md" 2>/dev/null
  note "train table: $(tr '\n' ' ' < "$O/train-table.md")"
  A=$O/train-ab.md
  : > "$A"
  AB=("0.5b default" "0.5b 0" "1.5b default" "1.5b 1")
  [ "${TRAIN_AB:-1}" = 0 ] && AB=()
  for spec in "${AB[@]}"; do
    set -- $spec
    if [ "$2" = default ]; then unset WICK_ADAPTER_FOLD; else export WICK_ADAPTER_FOLD=$2; fi
    OUT=/tmp/bt-out BENCH_TMP=/tmp/bt PEER=0 STEPS=12 BUILD=build-gpu timeout 100 bash scripts/bench-train.sh "$1" \
      > /dev/null 2>&1
    echo "$1 WICK_ADAPTER_FOLD=$2: $(grep '^| train' /tmp/bt-out/train-bench.md)" >> "$A"
  done
  unset WICK_ADAPTER_FOLD
  note "train A/B: $(tr '\n' ' ' < "$A")"
fi

if want trainab; then
  # The working tree against the base packed in .carry-ab (scripts/decode-ab.sh pack REV), both built here: the
  # 0.5B row alternating base / tree for two rounds, then 1.5B once each (wick alone; one set of random models).
  B=/tmp/train-ab-base
  rm -rf "$B" && mkdir -p "$B/third_party/npm"
  tar xzf .carry-ab/base.tgz -C "$B" && tar xzf .carry-ab/tok.tgz -C "$B/third_party/npm" && ln -s "$PWD/.deps" "$B/.deps"
  if (cd "$B" && OUT=/tmp/train-ab-base-out bash scripts/gpu-check.sh --configure-only --deps-prefix /tmp/train-ab-deps \
        && cmake --build build-gpu -j16 --target wick) > "$O/trainab-build.log" 2>&1; then
    A=$O/train-base-ab.md
    echo "base $(cat .carry-ab/base.rev) against the working tree" > "$A"
    for spec in "0.5b 1" "0.5b 2" "1.5b 1"; do
      set -- $spec
      for tree in base tree; do
        BLD=build-gpu; [ "$tree" = base ] && BLD=$B/build-gpu
        OUT=/tmp/bt-out BENCH_TMP=/tmp/bt PEER=0 STEPS=12 BUILD=$BLD timeout 100 bash scripts/bench-train.sh "$1" \
          > /dev/null 2>&1
        echo "$1 round $2, $tree: $(grep '^| train' /tmp/bt-out/train-bench.md)" >> "$A"
      done
    done
    note "train base/tree: $(tr '\n' ' ' < "$A")"
  else
    note "the base did not build (trainab-build.log)"
  fi
fi

if want onelaunch; then
  # Session 38's one-launch split-K (v5, dev/low_rank/low_rank_one_launch.cuh; measured slower than v4, not in
  # wick): the harness's `one` mode (v5 against the f64 reference and v4's bits on every shape; the seed rows and
  # decode shapes timed, v1 v3 v4 v5, two rounds), then the low-rank CUDA tests.
  if low_rank_harness one "$O/one-launch.txt" 150; then
    note "one-launch harness: $(tail -1 "$O/one-launch.txt"); $(grep -c 'FAIL\|differs' "$O/one-launch.txt") bad lines"
  else
    note "one-launch harness did not build (one-launch.txt)"
  fi
  timeout 120 build-gpu/tests/wick_cuda_tests --gtest_filter='*LowRank*:*ow_rank*' > "$O/one-launch-tests.log" 2>&1
  note "low-rank CUDA tests: $(grep -E '^\[  (PASSED|FAILED)  \]' "$O/one-launch-tests.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$O/one-launch-tests.log" | head -10 >> "$S"
fi
if want lorarows; then
  # The seed suite's lora rows (issue 8's <= 10-12 us goal) with low_rank_product's kernel rule against the kernels
  # LORA_KERNELS names (WICK_LOW_RANK_KERNEL values; default 1, the only kernel before the rule), same build,
  # alternating, two rounds.
  cmake --build build-gpu -j16 --target wick_bench >> "$O/build.log" 2>&1 || note "wick_bench did not build"
  L=$O/lora-rows.txt
  : > "$L"
  for round in 1 2; do
    for k in rule ${LORA_KERNELS:-1}; do
      J=/tmp/lora-rows-$k.json
      if [ "$k" = rule ]; then unset WICK_LOW_RANK_KERNEL; else export WICK_LOW_RANK_KERNEL=$k; fi
      timeout 120 build-gpu/bench/wick_bench --benchmark_filter='^(lora_forward|lora_rank_scaling)/.*/cuda' \
        --benchmark_format=json --benchmark_out="$J" > /dev/null 2>&1
      python3 -c "import json,sys
for b in json.load(open(sys.argv[1]))['benchmarks']: print('round $round kernel $k', b['name'], '%.2f us' % b.get('median_us', b['real_time']))" "$J" >> "$L" 2>&1
    done
  done
  unset WICK_LOW_RANK_KERNEL
  note "lora rows: $(wc -l < "$L") lines (lora-rows.txt)"
fi

if want wgrad; then
  # dev/weight_grads: the weight-gradient kernel's checks and timings (0.5B / 1.5B sets, grid sizes) for v1
  # (kLastBlock, WICK_WEIGHT_GRADS=1) and v2 (kWave, =2: one wave, up to 32 splits, the tile's sum shared), and the
  # load-only probe (the same cp.async ring, no MMA, at 4 and 8 stages); then the training rows with
  # WICK_WEIGHT_GRADS=0 (cuBLASLt's split-k GEMMs and reduces), 1 and 2, one build, alternating: 0.5B two rounds,
  # 1.5B one (WGRAD_AB="model:round ..." narrows it; WGRAD_HARNESS=0 skips the harness, for a second call).
  if [ "${WGRAD_HARNESS:-1}" = 0 ]; then
    note "weight_grads harness skipped (WGRAD_HARNESS=0)"
  elif "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/weight_grads_bench.bin \
      dev/weight_grads/weight_grads_bench.cu >> "$O/build.log" 2>&1; then
    timeout 240 build-gpu/weight_grads_bench.bin > "$O/weight-grads.txt" 2>&1
    note "weight_grads harness: $(tail -1 "$O/weight-grads.txt"); $(grep -c FAIL "$O/weight-grads.txt") FAIL lines; $(grep '^per 0.5B' "$O/weight-grads.txt" | tr '\n' ' ')"
  else
    note "weight_grads harness did not build (build.log)"
  fi
  A=$O/train-wgrad-ab.md
  train_ab "$A" WICK_WEIGHT_GRADS "0 1 2" "${WGRAD_AB:-0.5b:1 0.5b:2 1.5b:1}"
  note "train weight_grads A/B: $(tr '\n' ' ' < "$A")"
fi

if want ncu; then
  # GPU time by kernel over ~three 0.5B training steps (8 x 1024), real clocks: ~steps 5-7 of 8 (the first four,
  # with the GEMM tuning, are skipped by launch count; NCU_SKIP / NCU_COUNT set the launches when a change moves
  # the count a step: 1,850 at session 27's end, ~1,640 since the refresh is one op (NCU_SKIP=6560 NCU_COUNT=4920),
  # ~1,230 with WICK_WEIGHT_GRADS=1).
  D=/tmp/bt/data-8x1024.jsonl
  if command -v ncu > /dev/null && [ -f "$D" ]; then
    rm -rf /tmp/ncu-run
    timeout 300 ncu --csv --print-units base --metrics gpu__time_duration.sum --clock-control none \
      --launch-skip ${NCU_SKIP:-7400} --launch-count ${NCU_COUNT:-5550} build-gpu/wick train --model /tmp/bt/qwen2.5-0.5b --data "$D" \
      --out /tmp/ncu-run --batch-size 8 --max-steps 8 --rank 16 --alpha 32 --targets all --lr 1e-4 \
      --scheduler constant --warmup-steps 0 --device cuda --dtype bf16 --max-seq-len 1024 > /tmp/ncu.csv 2> "$O/ncu.err"
    python3 bench/ncu_summary.py /tmp/ncu.csv 1 "0.5B training, ${NCU_COUNT:-5550} launches (~3 steps) after the first ${NCU_SKIP:-7400} (~4 steps)" > "$O/ncu-train.txt"
    note "ncu: $(head -2 "$O/ncu-train.txt" | tr '\n' ' ')"
  else
    note "ncu skipped (no ncu or no data from the train stage)"
  fi
fi

if want adapter; then
  # 0.5B decode with and without a LoRA adapter (r 16 on all seven projections, one training step from random
  # tokens), two rounds each.
  M=/tmp/decode-ab-models/qwen2.5-0.5b AD=/tmp/ad05
  python3 -c "import json, random
r = random.Random(3)
for _ in range(4): print(json.dumps({'input_ids': [r.randrange(151643) for _ in range(64)]}))" > /tmp/ad05.jsonl
  mkdir -p /tmp/decode-ab-models
  [ -f $M/config.json ] || build-gpu/wick init-model --preset qwen2.5-0.5b --out $M --dtype bf16 > /dev/null 2>&1
  rm -rf $AD
  build-gpu/wick train --model $M --data /tmp/ad05.jsonl --out $AD --batch-size 1 --max-steps 1 --rank 16 --alpha 32 \
    --targets all --device cuda --dtype bf16 --max-seq-len 64 > /tmp/ad05.log 2>&1 || note "adapter training failed"
  OUT=/tmp/dab WICK_NEW=build-gpu/wick timeout 120 bash scripts/decode-ab.sh variants "qwen2.5-0.5b" 2 "base=" \
    > /dev/null 2>&1
  cp /tmp/dab/decode-ab.txt "$O/decode-ab.txt" 2>/dev/null
  OUT=/tmp/dab-ad DECODE_AB_ARGS="--adapter $AD" WICK_NEW=build-gpu/wick timeout 120 bash scripts/decode-ab.sh \
    variants "qwen2.5-0.5b" 2 "adapter=" > /dev/null 2>&1
  cat /tmp/dab-ad/decode-ab.txt >> "$O/decode-ab.txt" 2>/dev/null
  note "decode 0.5B: $(grep -o '[a-z]* round [0-9]: decode [0-9.]* tok/s' "$O/decode-ab.txt" 2>/dev/null | tr '\n' ' ')"
fi
if want glu; then
  # gate/up + GLU at two warps a row (the default) against one (WICK_GLU_K2=0), 1.5B then 0.5B, two rounds;
  # the summation order differs, so random-weight models may give other tokens.
  decode_ab glu "glu k1/k2" 150 "qwen2.5-1.5b qwen2.5-0.5b" 2 "k1=WICK_GLU_K2=0" "k2="
fi
if want early; then
  # Decode attention's early cache loads (the default since session 31: the position and the first keys and values
  # read before griddepcontrol.wait, overlapping the q|k|v projection's tail) against WICK_DECODE_EARLY_LOADS=0,
  # 1.5B (issue 12's unmet goal: 900 tok/s) and 0.5B, two rounds. The same arithmetic: the tokens must be identical.
  decode_ab early "early loads off/on" 150 "qwen2.5-1.5b qwen2.5-0.5b" 2 "off=WICK_DECODE_EARLY_LOADS=0" "early="
fi
if want epilogue; then
  # The small-row kernels' bias and residual read before griddepcontrol.wait (the default since session 40,
  # SmallMOptions::residual_settled) against WICK_EARLY_EPILOGUE=0, 1.5B, 0.5B and 7B, three rounds: issue 12's
  # decode rows too (the "on" lines). The same values: the tokens must be identical.
  decode_ab epilogue "early epilogue off/on" 420 "qwen2.5-1.5b qwen2.5-0.5b qwen2.5-7b" 3 "off=WICK_EARLY_EPILOGUE=0" "on="
fi
if want ahead; then
  # Decode steps queued ahead of the host's read of their token (the default; infer/decode_loop.h) against
  # WICK_DECODE_AHEAD=0 (one step, then the host waits for its token), 1.5B, 0.5B and 7B, AHEAD_ROUNDS rounds (3): the
  # "on" lines are issue 12's decode rows. The same kernels: the tokens must be identical.
  decode_ab ahead "decode ahead off/on" 420 "${AHEAD_PRESETS:-qwen2.5-1.5b qwen2.5-0.5b qwen2.5-7b}" "${AHEAD_ROUNDS:-3}" \
    "off=WICK_DECODE_AHEAD=0" "on="
  T=$O/ahead-tests.log
  WICK_DECODE_AHEAD=0 timeout 90 build-gpu/tests/wick_cuda_tests --gtest_filter='*ecode*:*enerat*:*ampl*' > "$T" 2>&1
  note "CUDA decode tests with WICK_DECODE_AHEAD=0: $(grep -E '^\[  (PASSED|FAILED)  \]' "$T" | tr '\n' ' ')"
fi
if want attnproj; then
  # o_proj and the residual add inside decode attention's launch (session 42, dev/attention/attn_proj.patch:
  # rope_cache_attention_proj; H100: 1.5B -14.5%, 0.5B -10.5%, not landed) against the separate o_proj launch
  # (WICK_ATTENTION_PROJ=0), and 6 blocks a head instead of the rule's (1.5B 11, 0.5B 9), 1.5B then 0.5B,
  # ATTNPROJ_ROUNDS rounds (3). Needs the patch built in: PATCHES=dev/attention/attn_proj.patch bash
  # dev/next_device_call.sh build attnproj; or attn_proj_cluster.patch (a head's blocks a cluster of 8, no repeated
  # attention: "on" is 8 blocks a head, s6 six). Another order of o_proj's sums: the tokens of the random-weight models
  # may differ. 7B keeps the separate launch (a slice of its o_proj does not fit).
  decode_ab attnproj "attention projection off/on/s6" 420 "qwen2.5-1.5b qwen2.5-0.5b" "${ATTNPROJ_ROUNDS:-3}" \
    "off=WICK_ATTENTION_PROJ=0" "on=" "s6=WICK_ATTENTION_PROJ_SLICES=6"
fi
if want attnncu; then
  # ncu: GPU time by kernel over 2-3 1.5B decode steps (kernel by kernel: WICK_CUDA_GRAPHS=0; 300 launches after the
  # first 1,000 of a 128-token prompt + 16 new tokens), with o_proj inside attention's launch and without (needs
  # attn_proj.patch built in): is the one-launch kernel itself slow, or the chain around it?
  M=/tmp/decode-ab-models/qwen2.5-1.5b
  [ -f "$M/config.json" ] || build-gpu/wick init-model --preset qwen2.5-1.5b --out "$M" --dtype bf16 > /dev/null
  IDS=$(python3 -c "import random; r=random.Random(1); print(','.join(str(r.randrange(151643)) for _ in range(128)))")
  for v in 0 1; do
    WICK_ATTENTION_PROJ=$v WICK_CUDA_GRAPHS=0 timeout 150 ncu --csv --print-units base --metrics gpu__time_duration.sum \
      --clock-control none --launch-skip 1000 --launch-count 300 build-gpu/wick generate --model "$M" --prompt-ids "$IDS" \
      --max-new-tokens 16 --temperature 0 --ignore-eos --device cuda > /tmp/ncu-ap$v.csv 2> "$O/ncu-ap$v.err"
    # Steps: the greedy choice's first launch runs once a step (the one-launch form has 28 launches a step fewer).
    steps=$(grep -c greedy_split_kernel /tmp/ncu-ap$v.csv)
    [ "${steps:-0}" -gt 0 ] || steps=1
    python3 bench/ncu_summary.py /tmp/ncu-ap$v.csv "$steps" "1.5B decode, WICK_ATTENTION_PROJ=$v, 300 launches ($steps steps)" \
      > "$O/ncu-attnproj-$v.txt"
    note "ncu attnproj=$v: $(head -6 "$O/ncu-attnproj-$v.txt" | tr '\n' ' ')"
  done
fi
if want trigger; then
  # o_proj's early trigger (session 41, dev/small_m/early_trigger.patch: gate/up + GLU's blocks start and load their
  # first weights while attention runs; H100: 1.5B -1.2%, 0.5B +1.9%, not landed) against WICK_EARLY_TRIGGER=0,
  # TRIGGER_PRESETS (1.5B, 0.5B, 7B), TRIGGER_ROUNDS rounds (3). Needs the patch built in:
  # PATCHES=dev/small_m/early_trigger.patch bash dev/next_device_call.sh build trigger. The tokens must be identical.
  decode_ab trigger "early trigger off/on" 420 "${TRIGGER_PRESETS:-qwen2.5-1.5b qwen2.5-0.5b qwen2.5-7b}" \
    "${TRIGGER_ROUNDS:-3}" "off=WICK_EARLY_TRIGGER=0" "on="
fi
if want staged; then
  # The staged kernel for the down projections (session 41, dev/small_m/staged.patch: rows through shared memory by
  # cp.async; measured slower in the chain at 1.5B and 0.5B, not landed) against the register kernel
  # (WICK_SMALL_M_STAGED=0), 1.5B, 0.5B and 7B, STAGED_ROUNDS rounds (3). Needs the patch built in:
  # PATCHES=dev/small_m/staged.patch bash dev/next_device_call.sh build staged. 1.5B and 7B (8 warps a row) give
  # the same bits: identical tokens.
  decode_ab staged "staged off/on" 480 "qwen2.5-1.5b qwen2.5-0.5b qwen2.5-7b" "${STAGED_ROUNDS:-3}" \
    "off=WICK_SMALL_M_STAGED=0" "on="
fi
if want ce; then
  # The loss's one-read-a-row kernel (WICK_CE_SINGLE_READ=1, ops/cross_entropy.h) against the default fused kernel:
  # 0.5B training rows, one build, alternating, two rounds (CE_AB="0.5b:1 ..." to change).
  A=$O/train-ce-ab.md
  train_ab "$A" WICK_CE_SINGLE_READ "0 1" "${CE_AB:-0.5b:1 0.5b:2}"
  note "train ce single-read A/B: $(tr '\n' ' ' < "$A")"
fi
if want cencu; then
  # The loss kernels alone under ncu, the default fused kernel against WICK_CE_SINGLE_READ=1: 16 launches (two 0.5B
  # steps of 8 chunks of [1,024 x 151,936]) after the first 32. Needs the ce or train stage's model and data.
  D=/tmp/bt/data-8x1024.jsonl
  if command -v ncu > /dev/null && [ -f "$D" ]; then
    for v in 0 1; do
      rm -rf /tmp/ncu-ce-run
      WICK_CE_SINGLE_READ=$v timeout 200 ncu --csv --print-units base --metrics gpu__time_duration.sum --clock-control none \
        --kernel-name regex:ce_ --launch-skip 32 --launch-count 16 build-gpu/wick train --model /tmp/bt/qwen2.5-0.5b \
        --data "$D" --out /tmp/ncu-ce-run --batch-size 8 --max-steps 6 --rank 16 --alpha 32 --targets all --lr 1e-4 \
        --scheduler constant --warmup-steps 0 --device cuda --dtype bf16 --max-seq-len 1024 > /tmp/ncu-ce.csv 2>> "$O/ncu.err"
      python3 bench/ncu_summary.py /tmp/ncu-ce.csv 2 "loss kernels, WICK_CE_SINGLE_READ=$v, per 0.5B step" >> "$O/ncu-ce.txt"
    done
    note "ncu loss kernels: $(grep -E 'WICK_CE|us/step' "$O/ncu-ce.txt" | tr '\n' ' ')"
  else
    note "cencu skipped (no ncu or no data from the ce / train stage)"
  fi
fi
if want normfuse; then
  # Decode with the layers' RMSNorms inside the projection launches after them and the attention residual inside
  # o_proj's (WICK_DECODE_NORM_FUSION, the default) against the separate launches (=0), 1.5B and 0.5B, three rounds.
  # Not the same bits (the separate norm rounds its output): the tokens may differ.
  decode_ab norm-fusion "norm fusion separate/fused" 240 "qwen2.5-1.5b qwen2.5-0.5b" 3 \
    "separate=WICK_DECODE_NORM_FUSION=0" "fused=WICK_DECODE_NORM_FUSION=1"
fi
if want l2bench; then
  # What a projection gains from L2 (dev/small_m/small_m_bench.cu l2): each decode shape from HBM and from L2.
  if "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -I src \
      -o build-gpu/small_m_bench.bin dev/small_m/small_m_bench.cu >> "$O/build.log" 2>&1; then
    timeout 120 build-gpu/small_m_bench.bin 1 l2 > "$O/small-m-l2.txt" 2>&1
    note "small_m l2: $(tail -1 "$O/small-m-l2.txt")"
  fi
fi
if want graphs; then
  # Training steps as CUDA graphs (session 35, LossAndGrads::set_step_graphs): the graph tests, then the training
  # rows with WICK_TRAIN_GRAPHS=0 and =1, one build, alternating (GRAPHS_AB="model:round ..."), and one profiled run
  # of each (WICK_STEP_PROFILE: device time against wall time a step).
  build-gpu/tests/wick_cuda_tests --gtest_filter='CudaTrainGraphs*' > "$O/graphs-tests.log" 2>&1
  note "train graphs, tests: $(grep -E '^\[  (PASSED|FAILED)  \]' "$O/graphs-tests.log" | tr '\n' ' ')"
  train_ab "$O/train-graphs-ab.md" WICK_TRAIN_GRAPHS "0 1" "${GRAPHS_AB:-0.5b:1 0.5b-chat:1 0.5b:2 0.5b-chat:2}"
  note "train graphs 0/1: $(tr '\n' ' ' < "$O/train-graphs-ab.md")"
  for v in $([ "${GRAPHS_PROFILE:-1}" = 1 ] && echo 0 1); do  # GRAPHS_PROFILE=0 skips the profiled runs
    WICK_STEP_PROFILE=1 WICK_TRAIN_GRAPHS=$v OUT=/tmp/bt-out BENCH_TMP=/tmp/bt PEER=0 STEPS=8 BUILD=build-gpu timeout 100 \
      bash scripts/bench-train.sh 0.5b > /dev/null 2>&1
    grep -E 'profile|graph|warn' /tmp/bt-out/train-bench.log > "$O/graphs-profile-$v.txt"
    note "profile WICK_TRAIN_GRAPHS=$v: $(grep 'step 8 profile' "$O/graphs-profile-$v.txt" | head -1)"
  done
fi
if want losschunk; then
  # The loss's row chunk (WICK_LOSS_CHUNK, session 36): 1,024 (the default) against chunks whose [rows, 151,936] bf16
  # logits fit in L2 (128: 39 MB) and larger ones; 0.5B with random tokens and packed chat-like rows, one build,
  # alternating (LOSS_CHUNKS, LOSS_CHUNK_ROWS narrow it).
  train_ab "$O/loss-chunk-ab.md" WICK_LOSS_CHUNK "${LOSS_CHUNKS:-1024 128 256 512 2048}" "${LOSS_CHUNK_ROWS:-0.5b:1 0.5b-chat:1 0.5b:2}"
  note "loss chunk: $(tr '\n' ' ' < "$O/loss-chunk-ab.md")"
fi
if want bulkgemv; then
  # dev/small_m/bulk_gemv.cuh (session 34, never run): one-row projections streamed through shared-memory rings by
  # bulk asynchronous copies, beside small_m's rule on the o and down shapes (dev/small_m/small_m_bench.cu, M 1:
  # the "bulk NWxS" rows; every shape checked against the f64 reference first). Pays if down's row beats "def pre".
  mkdir -p build-gpu
  if "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -cudart static -I src \
      -o build-gpu/small_m_bench.bin dev/small_m/small_m_bench.cu >> "$O/build.log" 2>&1; then
    timeout 240 build-gpu/small_m_bench.bin 1 > "$O/small-m-bulk.txt" 2>&1
    note "small_m bulk: $(tail -1 "$O/small-m-bulk.txt"); $(grep -c 'bulk' "$O/small-m-bulk.txt") bulk rows"
  fi
fi
if want inplace; then
  # dev/gemm_algos/splitk_inplace.patch: the adapters' weight-gradient GEMMs split k with the reduction in the output
  # (no splitKreduce launches). Applied, built, the training and LoRA CUDA tests with it on, then 0.5B training rows
  # with WICK_GEMM_SPLITK_INPLACE=0 and =1, one build, alternating (INPLACE_AB="0.5b:1 0.5b:2" by default).
  P=dev/gemm_algos/splitk_inplace.patch
  git apply --reverse --check "$P" 2> /dev/null || git apply "$P"
  if cmake --build build-gpu -j16 --target wick wick_cuda_tests >> "$O/build.log" 2>&1; then
    WICK_GEMM_SPLITK_INPLACE=1 timeout 200 build-gpu/tests/wick_cuda_tests --gtest_filter='*rain*:*ora*:*esume*:*ixture*' \
      > "$O/inplace-tests.log" 2>&1
    note "split-k in place, tests: $(grep -E '^\[  (PASSED|FAILED)  \]' "$O/inplace-tests.log" | tr '\n' ' ')"
    train_ab "$O/train-inplace-ab.md" WICK_GEMM_SPLITK_INPLACE "0 1" "${INPLACE_AB:-0.5b:1 0.5b:2}"
    note "split-k in place 0/1: $(tr '\n' ' ' < "$O/train-inplace-ab.md")"
  else
    note "inplace: BUILD FAILED (build.log)"
  fi
fi
if want xahead; then
  # dev/small_m/x_ahead.patch (the small-row kernels' x loads of a round in flight together; the same bits) against
  # the tree without it: .carry-ab/base.tgz must be main without the patch (`bash scripts/decode-ab.sh pack` there).
  # Decode 1.5B and 0.5B, three rounds alternating, the tokens must be the same; then the small_m and decode CUDA
  # tests on the patched build, and the decode-step trace of the patched tree (with pdltrace after it).
  P=dev/small_m/x_ahead.patch
  git apply --reverse --check "$P" 2> /dev/null || git apply "$P"
  OUT=/tmp/dab-xa timeout 420 bash scripts/decode-ab.sh run "qwen2.5-1.5b qwen2.5-0.5b" 3 > /dev/null 2>&1
  cp /tmp/dab-xa/decode-ab.txt "$O/xahead-ab.txt" 2> /dev/null
  note "x ahead base/new: $(grep -o 'qwen[a-z0-9.-]* [a-z]* round [0-9]: decode [0-9.]* tok/s\|the tokens differ' "$O/xahead-ab.txt" 2>/dev/null | tr '\n' ' ')"
  cmake --build build-gpu -j16 --target wick_cuda_tests >> "$O/build.log" 2>&1
  timeout 120 build-gpu/tests/wick_cuda_tests --gtest_filter='*mallM*:*ecode*:*ixture*' > "$O/xahead-tests.log" 2>&1
  note "x ahead tests: $(grep -E '^\[  (PASSED|FAILED)  \]' "$O/xahead-tests.log" | tr '\n' ' ')"
fi
if want pdltrace; then
  # dev/pdl_trace: the decode step's launches in the chain as they run (global-timer records at pdl::enter), 1.5B
  # and 0.5B at the 100th replayed step, three steps each; a build of its own (build-trace), the patch reverted after;
  # WICK_DECODE_AHEAD=0, since the trace waits around the one replay it records.
  P=dev/pdl_trace/pdl_trace.patch
  git apply --reverse --check "$P" 2> /dev/null || git apply "$P"
  bash scripts/gpu-check.sh --configure-only --build-dir build-trace -- -DCMAKE_CUDA_FLAGS=-DWICK_PDL_TRACE \
    -DCMAKE_CXX_FLAGS=-DWICK_PDL_TRACE > "$O/trace-build.log" 2>&1
  cmake --build build-trace -j16 --target wick >> "$O/trace-build.log" 2>&1 || note "trace build FAILED (trace-build.log)"
  git apply --reverse "$P"
  mkdir -p third_party/npm && tar xzf .carry-ab/tok.tgz -C third_party/npm
  for preset in qwen2.5-1.5b qwen2.5-0.5b; do
    rm -f "/tmp/pdl-trace-$preset.txt"
    OUT=/tmp/dab-trace WICK_NEW=build-trace/wick timeout 120 bash scripts/decode-ab.sh variants "$preset" 1 \
      "trace=WICK_DECODE_AHEAD=0 WICK_PDL_TRACE_AT=100 WICK_PDL_TRACE_OUT=/tmp/pdl-trace-$preset.txt" > /dev/null 2>&1
    cp "/tmp/pdl-trace-$preset.txt" "$O/" 2> /dev/null
    python3 dev/pdl_trace/summarize.py "/tmp/pdl-trace-$preset.txt" 24 > "$O/pdl-trace-$preset-summary.txt" 2>&1
    note "trace $preset: $(grep -m1 '^step' "$O/pdl-trace-$preset-summary.txt")"
  done
fi
if want tunesweep; then
  # dev/small_m/tune_env.patch: the small-row kernels' K and U for each of 1.5B's decode launches, swept inside the
  # decode chain (scripts/decode-ab.sh variants, one build, TUNE_ROUNDS rounds; other K give other summation orders,
  # so the tokens may differ). ROWSxIN: q|k|v 2048x1536, o 1536x1536, gate/up 8960x1536, down 1536x8960, lm_head
  # 151936x1536; the defaults are 2:4, 1:8, 2:4, 8:8, 1:4.
  P=dev/small_m/tune_env.patch
  git apply --reverse --check "$P" 2> /dev/null || git apply "$P"
  V=(base=)
  for t in ${TUNE_SWEEP:-1536x1536=2:8 1536x1536=4:4 1536x1536=2:4 2048x1536=1:8 2048x1536=4:4 2048x1536=2:8 \
      1536x8960=4:8 1536x8960=2:8 1536x8960=8:4 8960x1536=1:8 8960x1536=4:4 8960x1536=2:8 151936x1536=2:4 \
      151936x1536=1:8}; do
    V+=("${t//[=:]/_}=WICK_SMALL_M_TUNE=$t")  # the name before the first =
  done
  OUT=/tmp/dab-tune timeout 540 bash scripts/decode-ab.sh variants "${TUNE_PRESETS:-qwen2.5-1.5b}" "${TUNE_ROUNDS:-2}" \
    "${V[@]}" > /dev/null 2>&1
  cp /tmp/dab-tune/decode-ab.txt "$O/tune-sweep.txt" 2> /dev/null
  note "tune sweep: $(grep -c 'round' "$O/tune-sweep.txt" 2> /dev/null) lines (tune-sweep.txt)"
fi
if want detab; then
  # 0.5B training with cuDNN's attention backward in its deterministic form (dQ through a dP workspace, the default
  # at 8 x 1024) against its non-deterministic one (dQ accumulated atomically: WICK_ATTENTION_DETERMINISTIC_MAX_MB=0),
  # alternating, one build.
  train_ab "$O/train-det-ab.md" WICK_ATTENTION_DETERMINISTIC_MAX_MB "-1 0" "${DET_AB:-0.5b:1 0.5b:2}"
  note "attention backward deterministic -1 / 0: $(tr '\n' ' ' < "$O/train-det-ab.md")"
fi
if want coresident; then
  # dev/attention/coresident.patch (+ dev/small_m/tune_env.patch): decode attention at 8 warps, the small-row
  # kernels' shared-memory carveout and q|k|v at two blocks an SM, so that attention's blocks can start beside
  # q|k|v's (the patch says why), against the default; 1.5B and 0.5B, one build, CO_ROUNDS rounds. The lines go
  # straight under $OUT/co (a call cut short keeps what ran).
  for P in dev/small_m/tune_env.patch dev/attention/coresident.patch; do
    git apply --reverse --check "$P" 2> /dev/null || git apply "$P"
  done
  Q="WICK_SMALL_M_TUNE=2048x1536=1:8,1152x896=2:4"
  OUT="$O/co" timeout "${CO_TIMEOUT:-420}" bash scripts/decode-ab.sh variants "qwen2.5-1.5b qwen2.5-0.5b" "${CO_ROUNDS:-3}" \
    "base=" "w8=WICK_DECODE_WARPS=8" "q=$Q" "w8q=WICK_DECODE_WARPS=8 $Q" \
    "w8qc=WICK_DECODE_WARPS=8 WICK_SMALL_M_CARVEOUT=50 $Q" "w8c=WICK_DECODE_WARPS=8 WICK_SMALL_M_CARVEOUT=50" \
    > /dev/null 2>&1
  note "coresident: $(grep -c 'round' "$O/co/decode-ab.txt" 2> /dev/null) lines (co/decode-ab.txt)"
fi
if want splits; then
  # Decode attention's key split (ops/attention.h decode_splits_forced): wick's rule (one block a head up to 512
  # keys, then a head's keys over up to 8 blocks) against one block a head at every length (WICK_DECODE_SPLITS=1)
  # and 8 parts at every length, at SPLIT_PROMPTS prompt lengths (+ 256 new tokens), one build, SPLIT_ROUNDS
  # rounds; then the kernel alone (wick_bench's decode_attention rows) at 1 part and by the rule.
  for L in ${SPLIT_PROMPTS:-128 500 760}; do
    PROMPT_LEN=$L OUT="$O/splits/p$L" timeout "${SPLIT_TIMEOUT:-240}" bash scripts/decode-ab.sh variants \
      "${SPLIT_PRESETS:-qwen2.5-1.5b qwen2.5-0.5b}" "${SPLIT_ROUNDS:-2}" \
      "one=WICK_DECODE_SPLITS=1" "rule=" "p8=WICK_DECODE_SPLITS=8" > /dev/null 2>&1
  done
  note "splits: $(cat "$O"/splits/p*/decode-ab.txt 2> /dev/null | grep -c 'round') lines (splits/p*/decode-ab.txt)"
  cmake --build build-gpu -j16 --target wick_bench >> "$O/build.log" 2>&1 || note "wick_bench did not build"
  if [ -x build-gpu/bench/wick_bench ]; then
    for v in 1 0; do
      echo "== WICK_DECODE_SPLITS=$v (0: the rule)" >> "$O/splits/kernel.txt"
      env $( [ $v = 1 ] && echo WICK_DECODE_SPLITS=1 ) timeout 120 build-gpu/bench/wick_bench \
        --benchmark_filter='decode_attention/.*/cuda' --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true >> "$O/splits/kernel.txt" 2>&1
    done
  fi
fi
if want warmup; then
  # What decode tok/s ((n - 1) tokens over decode_s) pays once: the loop's set-up, its first step kernel by kernel
  # (with the lazy loading of every decode kernel) and the graph's capture. scripts/decode-ab.sh at NEW_TOKENS = n
  # for each n of WARMUP_NEW, 1.5B and 0.5B, two rounds, the default lazy loading beside CUDA_MODULE_LOADING=EAGER
  # (every kernel loaded when the context starts); decode_s = (n - 1) / tok/s. Lines: warmup/n<n>-ab.txt.
  for n in ${WARMUP_NEW:-2 3 4 8 32 256}; do
    export NEW_TOKENS=$n
    decode_ab "warmup/n$n" "warmup, $n new tokens, lazy/eager" 240 "qwen2.5-1.5b qwen2.5-0.5b" 2 \
      "lazy=" "eager=CUDA_MODULE_LOADING=EAGER"
  done
  unset NEW_TOKENS
fi
if want fusedmlp; then
  # dev/fused_mlp/fused_mlp_bench.cu: 28 layers of 1.5B's projections, today's chain beside gate/up + GLU + down in
  # one launch (the down projection's partial sums added in the output: f32, f32x4 and int64 atomics; F features a
  # block), each a CUDA graph of PDL launches.
  $NVCC -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/fused_mlp_bench.bin \
    dev/fused_mlp/fused_mlp_bench.cu > "$O/fused-mlp.txt" 2>&1 || note "fused_mlp_bench did not build"
  timeout 120 build-gpu/fused_mlp_bench.bin >> "$O/fused-mlp.txt" 2>&1
  note "fused MLP: $(grep -E '^(chain|fused|FAIL|done)' "$O/fused-mlp.txt" | tr '\n' ' ')"
fi
if want fusedab; then
  # Decode's MLP in one launch (dev/fused_mlp/small_m_mlp.patch: small_m_mlp, on by default with the patch) against
  # gate/up + GLU and down as two launches (WICK_DECODE_FUSED_MLP=0), 1.5B, 0.5B and 7B, FUSED_ROUNDS rounds (2):
  # PATCHES=dev/fused_mlp/small_m_mlp.patch bash dev/next_device_call.sh build fusedab. Another summation order: the
  # tokens of the random-weight models may differ. Session 44 (H100): 1.5B -18%, 0.5B -20%, 7B -16%; not landed.
  decode_ab fused "fused MLP off/on" 360 "${FUSED_PRESETS:-qwen2.5-1.5b qwen2.5-0.5b qwen2.5-7b}" "${FUSED_ROUNDS:-2}" \
    "off=WICK_DECODE_FUSED_MLP=0" "on="
fi
note "done"
