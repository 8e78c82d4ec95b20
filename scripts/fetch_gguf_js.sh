#!/usr/bin/env bash
# Installs @huggingface/gguf (Hugging Face's GGUF parser for JavaScript) into third_party/npm/gguf-js/
# (git-ignored; never committed). The GGUF export test reads wick's files with it: a reader nobody here
# wrote. Idempotent: does nothing when the pinned version is present.
set -euo pipefail

PKG="@huggingface/gguf"
VERSION="0.4.6"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/npm/gguf-js"
PKG_JSON="$DEST/node_modules/$PKG/package.json"

if [ -f "$PKG_JSON" ] && grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
  echo "fetch_gguf_js: $DEST already has $PKG@$VERSION"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "fetch_gguf_js: npm not found (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$DEST"
# npm checks each tarball against the registry's integrity hash; no install scripts run.
(cd "$DEST" && npm install --silent --ignore-scripts --no-audit --no-fund --prefix "$DEST" "$PKG@$VERSION")
echo "fetch_gguf_js: installed $PKG@$VERSION into $DEST"
