#!/usr/bin/env bash
# The GPU work left unrun by sessions 22 and 23 (no device was lent after session 22's second call), in ONE call
# on the nvidia-h200 kind. It applies the two pending patches to the device's copy of the tree, builds once, and
# measures each change against its own off switch in the same build:
#   dev/attention/decode_splits.patch  decode attention over a thread block cluster a head (issue 12);
#                                      WICK_DECODE_SPLITS=1 is the landed one-block kernel
#   dev/lora_grads/lora_dy_grads.patch a LoRA linear's dB and du^T from one read of dy (issue 8);
#                                      WICK_LORA_DY_GRADS=0 is the two cuBLASLt GEMMs
# Stages (arguments, in this order by default): build tests harness gemm train decode adapter. Each writes one
# file under $OUT (at most 8 come back): build.log, cuda-tests.log, lora-grads.txt, train-ab.md, decode-ab.txt (the
# adapter stage appends to it), gemm-algos.txt (dev/gemm_algos: cuBLASLt's other algorithms for the training
# step's frozen GEMMs), and summary.txt.
#
# Here, before the call: bash scripts/pack-deps.sh; bash scripts/decode-ab.sh pack (the tokenizer).
# The device tool's command: bash dev/next_device_call.sh        carry: [".carry-ab", ".deps"]
# About 9 minutes in all (build ~1.5, tests ~0.5, harness ~1, train ~2.5, decode ~3, adapter ~0.5); a call is cut
# at 10, so the stages run in the order that matters most, and each stage's file is complete when the next starts.
set -uo pipefail
cd "$(dirname "$0")/.."
O=${OUT:-out/next}
mkdir -p "$O"
S=$O/summary.txt
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(build tests harness gemm train decode adapter)
note() { echo "$(date -u +%T) $*" | tee -a "$S"; }
want() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
P=/opt/wickdeps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$P:$P/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader >> "$S" 2>&1

if want build; then
  mkdir -p third_party/npm && tar xzf .carry-ab/tok.tgz -C third_party/npm
  for p in dev/attention/decode_splits.patch dev/lora_grads/lora_dy_grads.patch; do
    if command -v git > /dev/null; then git apply "$p"; else patch -p1 < "$p"; fi && note "applied $p" ||
      { note "FAILED to apply $p"; exit 1; }
  done
  bash scripts/gpu-check.sh --configure-only > "$O/build.log" 2>&1
  if cmake --build build-gpu -j16 --target wick wick_cuda_tests wick_bench >> "$O/build.log" 2>&1; then
    note "built wick, wick_cuda_tests, wick_bench"
  else
    note "BUILD FAILED (build.log)"; tail -40 "$O/build.log"; exit 1
  fi
  NVCC=nvcc; [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc  # what CMakeLists.txt takes
  "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I src -o build-gpu/lora_grads_bench.bin \
    dev/lora_grads/lora_grads_bench.cu -lcublas >> "$O/build.log" 2>&1 && note "built the lora_grads harness" ||
    note "the lora_grads harness did not build (build.log)"
  "$NVCC" -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -o build-gpu/gemm_algos_bench.bin \
    dev/gemm_algos/gemm_algos_bench.cu -lcublasLt >> "$O/build.log" 2>&1 && note "built the gemm_algos harness" ||
    note "the gemm_algos harness did not build (build.log)"
fi

if want tests; then
  T=$O/cuda-tests.log
  timeout 120 build-gpu/tests/wick_cuda_tests > "$T" 2>&1
  note "CUDA suite: $(grep -E '^\[  (PASSED|FAILED)  \]' "$T" | tr '\n' ' ')"
  echo "== the same with the new paths off" >> "$T"
  WICK_LORA_DY_GRADS=0 WICK_DECODE_SPLITS=1 timeout 60 build-gpu/tests/wick_cuda_tests \
    --gtest_filter='*ora*:*inear*:*rain*:*ecode*:*ope*:*ttention*' >> "$T" 2>&1
  note "switches off: $(grep -E '^\[  (PASSED|FAILED)  \]' "$T" | tail -n +2 | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$T" | head -20 >> "$S"
fi

if want harness; then
  timeout 150 build-gpu/lora_grads_bench.bin > "$O/lora-grads.txt" 2>&1
  note "lora_grads harness: $(tail -1 "$O/lora-grads.txt")"
fi

if want gemm; then
  timeout 60 build-gpu/gemm_algos_bench.bin > "$O/gemm-algos.txt" 2>&1
  note "gemm_algos: $(tail -1 "$O/gemm-algos.txt")"
fi

if want train; then
  # 0.5B 8 x 1024 (issue 8's first row), the two-GEMM path and the one-read kernel alternating, two rounds, one
  # set of random models and data (BENCH_TMP).
  A=$O/train-ab.md
  : > "$A"
  for round in 1 2; do
    for v in gemms one_read; do
      sw=1; [ $v = gemms ] && sw=0
      WICK_LORA_DY_GRADS=$sw OUT=/tmp/bt-out BENCH_TMP=/tmp/bt PEER=0 STEPS=12 BUILD=build-gpu \
        timeout 150 bash scripts/bench-train.sh 0.5b > /dev/null 2>&1
      echo "round $round, $v (WICK_LORA_DY_GRADS=$sw): $(grep '^| train' /tmp/bt-out/train-bench.md)" >> "$A"
    done
  done
  tail -1 /tmp/bt-out/train-bench.md >> "$A"
  note "train A/B: $(tr '\n' ' ' < "$A")"
fi

if want decode; then
  OUT=/tmp/dab WICK_NEW=build-gpu/wick timeout 240 bash scripts/decode-ab.sh variants \
    "qwen2.5-0.5b qwen2.5-1.5b qwen2.5-7b" 2 "one=WICK_DECODE_SPLITS=1" "split=" > /dev/null 2>&1
  cp /tmp/dab/decode-ab.txt "$O/decode-ab.txt" 2>/dev/null
  note "decode A/B: $(grep -c . "$O/decode-ab.txt" 2>/dev/null) lines (decode-ab.txt)"
fi

if want adapter; then
  # Decode with a LoRA adapter attached (r 16 on all seven projections, one training step from random tokens):
  # what a user gets from `wick generate --adapter` after `wick train`. Never measured before; each adapted
  # projection then leaves the small-row kernels for cuBLASLt plus a fused low-rank launch, and the adapters'
  # bf16 copies are cast at every token.
  M=/tmp/decode-ab-models/qwen2.5-0.5b AD=/tmp/ad05
  python3 -c "import json, random
r = random.Random(3)
for _ in range(4): print(json.dumps({'input_ids': [r.randrange(151643) for _ in range(64)]}))" > /tmp/ad05.jsonl
  [ -f $M/config.json ] || build-gpu/wick init-model --preset qwen2.5-0.5b --out $M --dtype bf16 > /dev/null 2>&1
  rm -rf $AD
  build-gpu/wick train --model $M --data /tmp/ad05.jsonl --out $AD --batch-size 1 --max-steps 1 --rank 16 --alpha 32 \
    --targets all --device cuda --dtype bf16 --max-seq-len 64 > /tmp/ad05.log 2>&1 || note "adapter training failed"
  OUT=/tmp/dab-ad DECODE_AB_ARGS="--adapter $AD" WICK_NEW=build-gpu/wick timeout 120 bash scripts/decode-ab.sh \
    variants "qwen2.5-0.5b" 2 "adapter=" > /dev/null 2>&1
  cat /tmp/dab-ad/decode-ab.txt >> "$O/decode-ab.txt" 2>/dev/null
  note "decode with an adapter: $(grep -o 'decode [0-9.]* tok/s' /tmp/dab-ad/decode-ab.txt 2>/dev/null | tr '\n' ' ')"
fi
note "done"
