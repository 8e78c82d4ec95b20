#!/usr/bin/env bash
# The test command: install what is missing, build, run every test (CPU tests; CUDA tests run when a GPU is
# present and report SKIPPED with the reason otherwise). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${WICK_BUILD_DIR:-build}"
# Without a GPU every CUDA test skips at its first line, but through ctest each is its own process, and each
# process start costs ~0.45 s of CPU (loading libcublasLt.so): ~700 of them, about 2.5 minutes at -j2 for
# nothing but the skip. So when nvidia-smi shows no GPU, the CUDA test binary runs once, all its tests in one
# process (each still runs and reports SKIPPED with its reason: the log below), and ctest runs the rest.
# With a GPU, or with arguments for ctest, ctest runs every test as before.
gpus=$(nvidia-smi -L 2>/dev/null || true)
if [ $# -eq 0 ] && [ -x tests/wick_cuda_tests ] && [[ "$gpus" != *GPU* ]]; then
  log=$PWD/Testing/cuda_tests.log
  mkdir -p Testing
  cuda_rc=0
  (cd tests && ./wick_cuda_tests) > "$log" 2>&1 || cuda_rc=$?
  if [ "$cuda_rc" -ne 0 ]; then
    cat "$log"
  fi
  echo "wick_cuda_tests, one process (no GPU found by nvidia-smi; full output: $log):"
  grep -E '^\[==========\] .* ran|^\[  (PASSED|SKIPPED|FAILED) +\] [0-9]+ tests?' "$log" | sed 's/^/  /' || true
  grep -ohE 'SKIPPED: [^"]*$' "$log" | sort | uniq -c | sed 's/^ */  /' || true
  ctest_rc=0
  ctest --output-on-failure -j "$(nproc)" -LE cuda || ctest_rc=$?
  if [ "$cuda_rc" -ne 0 ]; then
    echo "test: wick_cuda_tests failed (exit $cuda_rc): its output is above and in $log"
    exit "$cuda_rc"
  fi
  exit "$ctest_rc"
fi
ctest --output-on-failure -j "$(nproc)" "$@"
