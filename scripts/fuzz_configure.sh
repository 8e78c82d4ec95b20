#!/usr/bin/env bash
# Configures build-fuzz/: clang with WICK_FUZZ (everything instrumented with AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer's coverage; -O1 and line tables). One build serves two uses:
# scripts/fuzz.sh builds and runs the libFuzzer targets in it, scripts/sanitize.sh the CPU tests under the
# sanitizers - so CI compiles the library once for both. Re-running only re-checks the configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS="-O1" \
  -DWICK_CUDA=OFF -DWICK_FUZZ=ON -DWICK_BUILD_TESTS=ON -DWICK_BUILD_BENCH=OFF ${WICK_CMAKE_ARGS:-} > /dev/null
