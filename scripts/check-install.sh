#!/usr/bin/env bash
# Installs wick into a temporary prefix, builds examples/ against it with find_package(wick) as another
# project would, and runs both examples on a tiny random model (the installed `wick init-model` makes it).
# Uses the build folder of scripts/build.sh ($WICK_BUILD_DIR, default build/), configuring it if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${WICK_BUILD_DIR:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${WICK_CMAKE_ARGS:-}
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" --target wick_lib wick
cmake --install "$BUILD_DIR" --prefix "$tmp/prefix" > "$tmp/install.log"
echo "check-install: installed into $tmp/prefix"

# The examples see only the installed package (no source tree on their include path).
cmake -S examples -B "$tmp/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tmp/prefix"
cmake --build "$tmp/examples" -j "$(nproc)"

# A tiny random model (needs the fetched Qwen tokenizer: scripts/setup.sh or scripts/fetch_tokenizer.sh).
"$tmp/prefix/bin/wick" init-model --preset tiny --out "$tmp/model" --seed 1
# Eight pre-tokenized examples of 12 ids.
for i in $(seq 0 7); do
  ids=$(seq $((100 + i * 13)) $((111 + i * 13)) | paste -sd, -)
  echo "{\"input_ids\": [$ids]}"
done > "$tmp/data.jsonl"

"$tmp/examples/finetune" "$tmp/model" "$tmp/data.jsonl" "$tmp/run" 3
for f in adapter_config.json adapter_model.safetensors metrics.jsonl report.html; do
  [ -s "$tmp/run/$f" ] || { echo "check-install: finetune left no $f" >&2; exit 1; }
done
[ "$(wc -l < "$tmp/run/metrics.jsonl")" -eq 3 ] || { echo "check-install: expected 3 metrics records" >&2; exit 1; }
out=$("$tmp/examples/generate" "$tmp/model" ids:1,2,3 "$tmp/run")
echo "check-install: generated ids $out"
[[ "$out" =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "check-install: generate printed no ids" >&2; exit 1; }
echo "check-install: OK"
