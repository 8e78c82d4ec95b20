#!/usr/bin/env bash
# Decode speed of the working tree beside another commit, side by side in ONE call on the GPU machine: both
# trees built there, each preset's random model made once, `wick generate` (batch 1, 128-token random prompt,
# 256 new tokens, greedy, --ignore-eos) run alternating between the two builds for a few rounds, and the tokens
# the two generate compared every round (a change meant to keep the bits must give the same tokens).
# docs/benchmarks.md section 10 took its numbers this way from session 19 on.
#
# Here (the development machine, with git):
#   scripts/decode-ab.sh pack [REV]        REV's tracked files (no test fixtures) -> .carry-ab/base.tgz, the
#                                          default tokenizer -> .carry-ab/tok.tgz (default REV: HEAD)
#   then carry [".carry-ab", ".deps"] (scripts/pack-deps.sh makes .deps).
# There (the device tool's command):
#   scripts/decode-ab.sh run [PRESETS] [ROUNDS]
#       PRESETS: init-model presets, default "qwen2.5-0.5b qwen2.5-1.5b"; ROUNDS: default 3.
#   DECODE_AB_ARGS: more arguments for every `wick generate` (words; e.g. "--adapter DIR"); PROMPT_LEN: the
#   prompt's tokens (default 128); NEW_TOKENS: the tokens generated (default 256).
#   Lines go to $OUT/decode-ab.txt (or out/decode-ab/). WICK_NEW / WICK_BASE name prebuilt binaries to skip a
#   build (e.g. a smoke test on the CPU with DEVICE=cpu PRESETS=tiny); DEVICE defaults to cuda.
#   scripts/decode-ab.sh variants [PRESETS] [ROUNDS] "NAME=ENV ..." "NAME=ENV ..." ...
#       No base tree: the working tree alone (built unless WICK_NEW names a binary), run once per variant in
#       turn with that variant's environment (e.g. "off=WICK_FOLD_NORM=0 WICK_PDL=0" "on="), the tokens of every
#       variant compared with the first's. For switches that keep the bits.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CARRY=.carry-ab

# gpu-check.sh unpacked the libraries (if the machine lacked them) into its private prefix: the binaries need
# them at run time too.
use_deps() {
  local p
  for p in /opt/wickdeps "${TMPDIR:-/tmp}/wickdeps"; do  # gpu-check.sh's prefix, or its fallback
    p=$p/usr/lib/x86_64-linux-gnu
    if [ -d "$p" ]; then export LD_LIBRARY_PATH=$p:$p/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; break; fi
  done
}

pack() {
  local rev=${1:-HEAD}
  mkdir -p "$CARRY"
  git archive "$rev" -- . ':!tests/fixtures' ':!examples/data' ':!bench/results' | gzip > "$CARRY/base.tgz" ||
    { echo "decode-ab: git archive $rev failed" >&2; exit 1; }
  git rev-parse "$rev" > "$CARRY/base.rev"
  tar czf "$CARRY/tok.tgz" -C third_party/npm qwen3-tokenizer ||
    { echo "decode-ab: third_party/npm/qwen3-tokenizer missing (scripts/setup.sh fetches it)" >&2; exit 1; }
  echo "decode-ab: base $(cat "$CARRY/base.rev") packed ($(du -sh "$CARRY" | cut -f1)); carry [\"$CARRY\", \".deps\"]"
}

# One decode run of binary $1 on model $2 with env assignments $3 (words); the tokens to $4, the log line returned.
generate_once() {
  local w=$1 model=$2 envs=$3 tokens=$4
  env $envs "$w" generate --model "$model" --prompt-ids "$PROMPT_IDS" --max-new-tokens "${NEW_TOKENS:-256}" --temperature 0 \
    --ignore-eos --device "${DEVICE:-cuda}" ${DECODE_AB_ARGS:-} > "$tokens" 2> /tmp/decode-ab.err
  tail -1 /tmp/decode-ab.err | grep -o 'decode [0-9.]* tok/s' || tail -1 /tmp/decode-ab.err
}

MODELS=/tmp/decode-ab-models
# The same random prompt ids every call: PROMPT_LEN of them (default 128).
PROMPT_IDS=$(python3 -c "import random; r=random.Random(1); print(','.join(str(r.randrange(151643)) for _ in range(${PROMPT_LEN:-128})))")

# The random bf16 model of preset $2 under $MODELS, made by binary $1 unless there (non-zero: it could not be made).
ensure_model() {
  mkdir -p "$MODELS"
  [ -f "$MODELS/$2/config.json" ] || "$1" init-model --preset "$2" --out "$MODELS/$2" --dtype bf16 > /dev/null
}

# outdir and log (both modes' lines go to $OUT/decode-ab.txt), and say: a line there and on stdout, with the
# seconds since open_log.
open_log() {
  outdir=${OUT:-$ROOT/out/decode-ab}
  mkdir -p "$outdir"
  log=$outdir/decode-ab.txt
  t0=$(date +%s)
}
say() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$log"; }

run() {
  local presets=${1:-qwen2.5-0.5b qwen2.5-1.5b} rounds=${2:-3}
  open_log
  local new=${WICK_NEW:-} base=${WICK_BASE:-}
  if [ -z "$new" ] || [ -z "$base" ]; then
    [ -f "$CARRY/base.tgz" ] && [ -f "$CARRY/tok.tgz" ] || { say "no $CARRY/base.tgz: run 'scripts/decode-ab.sh pack' here first"; exit 1; }
    mkdir -p third_party/npm && tar xzf "$CARRY/tok.tgz" -C third_party/npm
    bash scripts/gpu-check.sh --configure-only > "$outdir/decode-ab-build.log" 2>&1 || { say "configure failed"; exit 1; }
    use_deps
    local bdir=/tmp/decode-ab-base
    rm -rf "$bdir" && mkdir -p "$bdir/third_party/npm"
    tar xzf "$CARRY/base.tgz" -C "$bdir" && tar xzf "$CARRY/tok.tgz" -C "$bdir/third_party/npm" && ln -s "$ROOT/.deps" "$bdir/.deps"
    # Its own library prefix: gpu-check.sh empties the prefix it unpacks into, which the other build is using.
    (cd "$bdir" && OUT=/tmp/decode-ab-base-out bash scripts/gpu-check.sh --configure-only --deps-prefix /tmp/decode-ab-deps \
       > /tmp/decode-ab-base.log 2>&1) || { say "configure of the base failed"; tail -20 /tmp/decode-ab-base.log >> "$log"; exit 1; }
    (cd "$bdir" && cmake --build build-gpu -j "$(( $(nproc) / 3 + 1 ))" --target wick >> /tmp/decode-ab-base.log 2>&1) &
    local base_pid=$!
    cmake --build build-gpu -j "$(nproc)" --target wick >> "$outdir/decode-ab-build.log" 2>&1 ||
      { say "build of the working tree failed (decode-ab-build.log)"; exit 1; }
    wait "$base_pid" || { say "build of the base failed"; tail -20 /tmp/decode-ab-base.log >> "$log"; exit 1; }
    new=build-gpu/wick
    base=$bdir/build-gpu/wick
    say "built: working tree and base $(cat "$CARRY/base.rev" 2>/dev/null)"
  fi
  for preset in $presets; do
    ensure_model "$new" "$preset" 2>> "$log" || { say "init-model $preset failed"; continue; }
    for round in $(seq 1 "$rounds"); do
      for tree in base new; do
        local w=$new
        [ "$tree" = base ] && w=$base
        say "$preset $tree round $round: $(generate_once "$w" "$MODELS/$preset" "" "/tmp/decode-ab-$tree.txt")"
      done
      if cmp -s /tmp/decode-ab-base.txt /tmp/decode-ab-new.txt; then say "$preset round $round: same tokens"
      else say "$preset round $round: the tokens differ"; fi
    done
  done
  say "done"
}

variants() {
  local presets=${1:-qwen2.5-0.5b qwen2.5-1.5b} rounds=${2:-3}
  shift 2 || shift $#
  [ $# -ge 1 ] || { echo "decode-ab: variants needs at least one NAME=ENV" >&2; exit 2; }
  local new=${WICK_NEW:-}
  open_log
  if [ -z "$new" ]; then
    [ -f "$CARRY/tok.tgz" ] && mkdir -p third_party/npm && tar xzf "$CARRY/tok.tgz" -C third_party/npm
    bash scripts/gpu-check.sh --configure-only > "$outdir/decode-ab-build.log" 2>&1 || { say "configure failed"; exit 1; }
    use_deps
    cmake --build build-gpu -j "$(nproc)" --target wick >> "$outdir/decode-ab-build.log" 2>&1 ||
      { say "build of the working tree failed (decode-ab-build.log)"; exit 1; }
    new=build-gpu/wick
  fi
  local spec name envs first
  for preset in $presets; do
    ensure_model "$new" "$preset" 2>> "$log" || { say "init-model $preset failed"; continue; }
    for round in $(seq 1 "$rounds"); do
      first=
      for spec in "$@"; do
        name=${spec%%=*} envs=${spec#*=}
        say "$preset $name round $round: $(generate_once "$new" "$MODELS/$preset" "$envs" "/tmp/decode-ab-$name.txt")"
        if [ -z "$first" ]; then first=$name
        elif ! cmp -s "/tmp/decode-ab-$first.txt" "/tmp/decode-ab-$name.txt"; then say "$preset round $round: $name's tokens differ from $first's"; fi
      done
    done
  done
  say "done"
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  variants) shift; variants "$@" ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
