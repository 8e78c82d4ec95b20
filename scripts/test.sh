#!/usr/bin/env bash
# The test command: install what is missing, build, run every test (CPU tests; CUDA tests run when a GPU is
# present and report SKIPPED with the reason otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${WICK_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" "$@"
