#!/usr/bin/env bash
# Installs one pinned npm package into third_party/npm/<folder>/ (git-ignored; never committed), for the tests
# that check wick's output with software nobody here wrote. Idempotent: does nothing when the pinned version is
# present. npm checks each tarball against the registry's integrity hash; no install scripts run.
#   scripts/fetch_npm_package.sh FOLDER PACKAGE VERSION
set -euo pipefail
FOLDER=${1:?usage: fetch_npm_package.sh FOLDER PACKAGE VERSION}
PKG=${2:?usage: fetch_npm_package.sh FOLDER PACKAGE VERSION}
VERSION=${3:?usage: fetch_npm_package.sh FOLDER PACKAGE VERSION}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/third_party/npm/$FOLDER"
PKG_JSON="$DEST/node_modules/$PKG/package.json"
me="fetch $FOLDER"

if [ -f "$PKG_JSON" ] && grep -q "\"version\": \"$VERSION\"" "$PKG_JSON"; then
  echo "$me: $DEST already has $PKG@$VERSION"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "$me: npm not found (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$DEST"
(cd "$DEST" && npm install --silent --ignore-scripts --no-audit --no-fund --prefix "$DEST" "$PKG@$VERSION")
echo "$me: installed $PKG@$VERSION into $DEST"
