#!/usr/bin/env bash
# wick's main job on an embedded default: install, build, then show the machine and check every op on
# every device present against the CPU reference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/wick info
./build/wick selfcheck
