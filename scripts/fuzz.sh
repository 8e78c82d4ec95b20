#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan, in build-fuzz/: scripts/fuzz_configure.sh),
# seeds their corpora from the fixtures (scripts/fuzz_seeds.py) and runs each for SECONDS (default 20); a
# crash stops the script (non-zero, once the targets running beside it end) with its input saved under
# build-fuzz/crashes/<target>/. Prints the executions each target made.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# WICK_FUZZ_JOBS=N runs N workers per target (default 1); the corpus lives in build-fuzz/corpus/<target>.
# WICK_FUZZ_PARALLEL=N runs N targets at once (default: the cores divided by WICK_FUZZ_JOBS), each for SECONDS
# on a core of its own: 8 targets x 20 s take 80 s on 2 cores instead of 160, with the same time per target.
# WICK_FUZZ_RUNS=N stops a target after N executions (or SECONDS, whichever comes first): the long runs of
# docs/reliability.md are `WICK_FUZZ_RUNS=10000000 scripts/fuzz.sh 7200 TARGET`.
# Each target's -max_len is its inputs' useful size (a tokenizer.json of a few hundred tokens, a config,
# a request body): larger inputs only make each execution slower.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors config adapter_config tokenizer_json encode_decode jsonl chat_template openai_request)
B=build-fuzz
bash scripts/fuzz_configure.sh  # the clang ASan + UBSan + libFuzzer build, shared with scripts/sanitize.sh
cmake --build "$B" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")
# Seeds are remade when scripts/fuzz_seeds.py changed since they were made.
if [ ! -d "$B/seeds" ] || [ scripts/fuzz_seeds.py -nt "$B/seeds" ]; then
  rm -rf "$B/seeds"
  python3 scripts/fuzz_seeds.py "$B/seeds"
fi
max_len() {
  case "$1" in
    safetensors | tokenizer_json) echo 16384 ;;
    chat_template) echo 8192 ;;
    *) echo 4096 ;;
  esac
}
# ASan's quarantine at 32 MB (default 256 MB): a use-after-free inside one input's work is still caught (an
# input allocates far less), and cycling 256 MB of freed memory through fresh pages cost 25-60% of the time.
# No allocation stack kept per malloc (malloc_context_size=0; the chat-template renderer allocates at every
# step): a finding is caught and its input saved as before, only its report lacks the allocation and free
# stacks; rerun the saved input alone under ASAN_OPTIONS=malloc_context_size=30 for them. One pass of the
# chat-template target over the same 10,539 inputs took 17.6 s of CPU with it, 21.1 without (session 25).
# Executions of a finished or interrupted run, summed over its jobs.
executions() { grep -h "stat::number_of_executed_units" "$1" | awk '{s += $2} END {print s + 0}'; }
run_target() {
  local t=$1 log="$B/fuzz_$1.log" start
  start=$(date +%s)
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:quarantine_size_mb=32:malloc_context_size=0 \
    UBSAN_OPTIONS=print_stacktrace=1 \
    "$B/fuzz/fuzz_$t" "$B/corpus/$t" "$B/seeds/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$(max_len "$t")" -artifact_prefix="$B/crashes/$t/" -print_final_stats=1 \
    ${WICK_FUZZ_RUNS:+-runs=$WICK_FUZZ_RUNS} ${WICK_FUZZ_JOBS:+-jobs=$WICK_FUZZ_JOBS -workers=$WICK_FUZZ_JOBS} \
    > "$log" 2>&1 || {
      tail -40 "$log"
      # libFuzzer exits non-zero when interrupted too (SIGINT/SIGTERM: "run interrupted"); only a saved input is a finding
      if grep -q "run interrupted" "$log" && [ -z "$(ls -A "$B/crashes/$t")" ]; then
        echo "fuzz: $t interrupted after $(executions "$log") executions; no crash"
        return 130
      fi
      echo "fuzz: $t found a crash (input in $B/crashes/$t/)"
      return 1
    }
  echo "fuzz: $t: $(executions "$log") executions in $(( $(date +%s) - start )) s, corpus $(ls "$B/corpus/$t" | wc -l) files, no crash"
}
par=${WICK_FUZZ_PARALLEL:-$(( $(nproc) / ${WICK_FUZZ_JOBS:-1} ))}
[ "$par" -ge 1 ] || par=1
for t in "${targets[@]}"; do
  mkdir -p "$B/corpus/$t" "$B/crashes/$t"
done
# Up to $par targets at a time; a crash (or an interrupt) stops the script once the running ones end.
rc=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$par" ]; then
    wait -n || rc=$?
    running=$((running - 1))
    [ "$rc" -eq 0 ] || break
  fi
  run_target "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || { r=$?; [ "$rc" -ne 0 ] || rc=$r; }
  running=$((running - 1))
done
exit "$rc"
