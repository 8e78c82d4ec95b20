#!/usr/bin/env bash
# The CPU tests under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, in the clang build
# of scripts/fuzz_configure.sh (build-fuzz/, shared with the fuzz targets). Extra arguments go to ctest,
# e.g. scripts/sanitize.sh -R Tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fuzz_configure.sh
cmake --build build-fuzz -j "$(nproc)" --target wick_tests wick
cd build-fuzz
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../scripts/lsan-suppressions.txt:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -L cpu -j "$(nproc)" "$@"
