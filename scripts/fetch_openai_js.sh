#!/usr/bin/env bash
# Installs the official OpenAI Node SDK (npm package `openai`) into third_party/npm/openai-js/ (git-ignored;
# never committed). The `wick serve` test (tests/serve/openai_client.cjs) talks to the server with it: a
# client nobody here wrote. Idempotent: does nothing when the pinned version is present.
set -euo pipefail

PKG="openai"
VERSION="4.104.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/npm/openai-js"
PKG_JSON="$DEST/node_modules/$PKG/package.json"

if [ -f "$PKG_JSON" ] && grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
  echo "fetch_openai_js: $DEST already has $PKG@$VERSION"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "fetch_openai_js: npm not found (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$DEST"
# npm checks each tarball against the registry's integrity hash; no install scripts run.
(cd "$DEST" && npm install --silent --ignore-scripts --no-audit --no-fund --prefix "$DEST" "$PKG@$VERSION")
echo "fetch_openai_js: installed $PKG@$VERSION into $DEST"
