#!/usr/bin/env bash
# Issue 13 (data-parallel training) on the GPU machine, in one device call per kind.
#
#   BUILD=build-gpu scripts/gpu-dist-check.sh [N ...]        N: GPU counts to measure (default: 2 4 8 up to
#                                                            the GPUs visible); STEPS (default 12)
#
# 1. World size 1 over NCCL equals the plain run: the tiny preset on cuda:0 in bf16, `wick train` against
#    `mpirun -np 1 wick train` (every collective runs; the LoRA gradients go through ncclAllReduce): the
#    adapters must be byte-identical. Runs on the single-GPU kind.
# 2. For each N > 1 (a multi-GPU kind): the qwen2.5-0.5b preset (random weights), LoRA r 16 on all
#    projections, per-GPU batch 8 x 1024 tokens as in scripts/bench-train.sh; 1 GPU with grad-accum N
#    against `wick train --gpus N` with grad-accum 1 (the same global batch): the two loss curves, their
#    largest difference, and tokens/s (median of steps 3 and later; all ranks' tokens) with the speedup
#    over one GPU. For N = 2 also the socket transport (NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1: the
#    multi-host case on one host) and its overhead.
# Needs a CUDA build with MPI and NCCL (the configure line says "wick: MPI ON, NCCL ON"; scripts/gpu-check.sh
# builds build-gpu) and Open MPI's mpirun: on PATH, or unpacked from .deps (scripts/pack-deps.sh lists the
# Open MPI packages; OPAL_PREFIX is pointed at the unpacked tree). Writes $OUT/dist-check.log (everything),
# $OUT/dist-summary.md (the table for docs/benchmarks.md) and $OUT/dist-curves.jsonl (per-step losses).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
OUTDIR=${OUT:-out/gpu-dist-check}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/dist-check.log
SUM=$OUTDIR/dist-summary.md
CURVES=$OUTDIR/dist-curves.jsonl
: > "$LOG"
: > "$CURVES"
STEPS=${STEPS:-12}
W=$(pwd)/$BUILD/wick
TMP=$(mktemp -d)
say() { echo "== gpu-dist-check: $*" | tee -a "$LOG"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # containers without ptrace rights
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}

[ -x "$W" ] || { say "no $W: build first (scripts/gpu-check.sh --no-tests --no-bench)"; exit 1; }
P=${WICK_DEPS_PREFIX:-/opt/wickdeps}
# The Open MPI that gpu-check.sh unpacked from .deps (dpkg -x) whenever it is there, even with an mpirun on
# PATH: wick was built against it, and a system Open MPI of another build fails to load its PMIx plugins
# (seen on the H200 machine: "mca_pmix_ext3x.so: undefined symbol: PMIx_Info_create").
if [ -x "$P/usr/bin/orterun" ] || ! command -v mpirun > /dev/null 2>&1; then
  # Relocated, so OPAL_PREFIX says where it is.
  if [ -x "$P/usr/bin/orterun" ]; then
    export OPAL_PREFIX=$P/usr
    export PATH=$TMP/bin:$PATH
    mkdir -p "$TMP/bin" && ln -sf "$P/usr/bin/orterun" "$TMP/bin/mpirun"
    export LD_LIBRARY_PATH=$P/usr/lib/x86_64-linux-gnu:$P/usr/lib/x86_64-linux-gnu/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export PMIX_MCA_mca_base_component_path=$P/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix
    export PMIX_INSTALL_PREFIX=$P/usr/lib/x86_64-linux-gnu/pmix2
    say "Open MPI from $P (OPAL_PREFIX)"
    if ! ldd "$W" | grep -q libmpi; then
      # The build did not find the relocated MPI (no mpicxx on PATH): point FindMPI at its wrapper, rebuild.
      say "reconfiguring $BUILD with -DMPI_CXX_COMPILER=$P/usr/bin/mpicxx.openmpi"
      cmake -S . -B "$BUILD" -DMPI_CXX_COMPILER="$P/usr/bin/mpicxx.openmpi" 2>&1 | grep "wick:" | tee -a "$LOG"
      cmake --build "$BUILD" -j"$(nproc)" --target wick >> "$LOG" 2>&1 || { say "rebuild failed (see $LOG)"; exit 1; }
    fi
  else
    say "no mpirun on PATH and no Open MPI under $P: install openmpi-bin, or carry .deps with it"; exit 1
  fi
fi
mpirun --version 2>&1 | head -1 | tee -a "$LOG"
ldd "$W" | grep -E "libmpi|libnccl" | tee -a "$LOG"
ldd "$W" | grep -q libnccl || { say "$W is not linked with NCCL (configure: wick: MPI ON, NCCL ON)"; exit 1; }
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
say "$NGPU x $GPU"

data() {  # path rows seq: random token rows (the Qwen vocabulary)
  python3 - "$1" "$2" "$3" <<'PY'
import json, random, sys
path, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(2)
with open(path, "w") as f:
    for _ in range(n):
        f.write(json.dumps({"input_ids": [r.randrange(151643) for _ in range(s)]}) + "\n")
PY
}
SUMMARY=()

# ---- 1. world size 1 over NCCL == the plain run (bytes)
"$W" init-model --preset tiny --out "$TMP/tiny" --dtype bf16 >> "$LOG" 2>&1
data "$TMP/tiny.jsonl" 64 96
COMMON=(train --model "$TMP/tiny" --data "$TMP/tiny.jsonl" --device cuda --dtype bf16 --batch-size 4 --grad-accum 2
        --max-steps 6 --lr 1e-3 --dropout 0.1 --packing --max-seq-len 256 --seed 5 --no-report)
"$W" "${COMMON[@]}" --out "$TMP/plain" >> "$LOG" 2>&1
mpirun -np 1 --bind-to none "$W" "${COMMON[@]}" --out "$TMP/nccl1" >> "$LOG" 2>&1
if cmp -s "$TMP/plain/adapter_model.safetensors" "$TMP/nccl1/adapter_model.safetensors"; then
  say "PASS world size 1 over NCCL: the adapter equals the plain run's, byte for byte"
  SUMMARY+=("- world size 1 over NCCL (mpirun -np 1) equals the plain run: byte-identical adapter (PASS)")
else
  say "FAIL world size 1 over NCCL: the adapters differ (or a run failed; see $LOG)"
  SUMMARY+=("- world size 1 over NCCL: FAIL (adapters differ or a run failed)")
fi

# ---- 2. N GPUs: loss curves and tokens/s against one GPU with the same global batch
COUNTS=("$@")
if [ ${#COUNTS[@]} -eq 0 ]; then for n in 2 4 8; do [ "$n" -le "$NGPU" ] && COUNTS+=("$n"); done; fi
if [ ${#COUNTS[@]} -gt 0 ]; then
  "$W" init-model --preset qwen2.5-0.5b --out "$TMP/m05" --dtype bf16 >> "$LOG" 2>&1
  MAXN=$(printf '%s\n' "${COUNTS[@]}" | sort -n | tail -1)
  data "$TMP/d05.jsonl" $((8 * MAXN * (STEPS + 2))) 1024
  BENCH=(train --model "$TMP/m05" --data "$TMP/d05.jsonl" --device cuda --dtype bf16 --batch-size 8 --max-seq-len 1024
         --max-steps "$STEPS" --r 16 --alpha 32 --targets all --lr 1e-4 --scheduler constant --warmup-steps 0
         --seed 3 --no-report --log-every 1)
  stats() {  # metrics.jsonl -> "median_tok_s"
    python3 -c "
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if 'tokens_per_s' in r]
print('%.0f' % statistics.median(r['tokens_per_s'] for r in (rows[2:] if len(rows) > 3 else rows)))" "$1"
  }
  curves() {  # label a b -> max |loss diff|, and both curves into dist-curves.jsonl
    python3 -c "
import json, sys
def losses(p): return [json.loads(l)['loss'] for l in open(p) if l.strip() and '\"loss\"' in l]
a, b = losses(sys.argv[2]), losses(sys.argv[3])
print(json.dumps({'case': sys.argv[1], 'one_gpu': a, 'ranks': b}), file=open(sys.argv[4], 'a'))
print('%.4g' % max(abs(x - y) for x, y in zip(a, b)))" "$1" "$2" "$3" "$CURVES"
  }
  "$W" "${BENCH[@]}" --out "$TMP/g1" >> "$LOG" 2>&1
  ONE=$(stats "$TMP/g1/metrics.jsonl")
  say "1 GPU: $ONE tok/s"
  SUMMARY+=("" "| GPUs ($GPU) | tok/s (all ranks) | x one GPU | max loss diff vs 1 GPU, same global batch |" "|---|---|---|---|"
            "| 1 | $ONE | 1.00 | - |")
  for n in "${COUNTS[@]}"; do
    "$W" "${BENCH[@]}" --grad-accum "$n" --out "$TMP/ref$n" >> "$LOG" 2>&1
    "$W" "${BENCH[@]}" --gpus "$n" --out "$TMP/dp$n" >> "$LOG" 2>&1 || { say "FAIL --gpus $n"; SUMMARY+=("| $n | failed | | |"); continue; }
    TPS=$(stats "$TMP/dp$n/metrics.jsonl")
    DIFF=$(curves "gpus$n" "$TMP/ref$n/metrics.jsonl" "$TMP/dp$n/metrics.jsonl")
    X=$(python3 -c "print('%.2f' % ($TPS / $ONE))")
    say "$n GPUs: $TPS tok/s (x$X), max loss diff vs 1 GPU x grad-accum $n: $DIFF"
    SUMMARY+=("| $n | $TPS | $X | $DIFF |")
    if [ "$n" = 2 ]; then
      NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 "$W" "${BENCH[@]}" --gpus 2 --out "$TMP/sock2" >> "$LOG" 2>&1
      SOCK=$(stats "$TMP/sock2/metrics.jsonl")
      say "2 GPUs over NCCL's socket transport: $SOCK tok/s ($(python3 -c "print('%.1f' % (100 * (1 - $SOCK / $TPS)))")% below P2P)"
      SUMMARY+=("| 2, socket transport (NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1) | $SOCK | $(python3 -c "print('%.2f' % ($SOCK / $ONE))") | - |")
    fi
  done
fi
printf '%s\n' "${SUMMARY[@]}" | tee "$SUM"
rm -rf "$TMP"
