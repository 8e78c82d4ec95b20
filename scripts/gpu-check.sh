#!/usr/bin/env bash
# One call on the GPU machine: build wick with CUDA for sm_90 (Release), run the CPU and CUDA tests, time
# the seed micro-benchmarks (wick_bench CUDA rows) and the torch peer on the same card, print a table.
#
#   scripts/gpu-check.sh [--gen-fixtures] [--no-tests] [--no-bench] [--cpu-bench] [--configure-only]
#                        [--no-cuda] [--force-deps] [--deps-prefix DIR] [--build-dir DIR] [--jobs N]
#                        [-- extra cmake configure arguments]
#
# The GPU machine has CUDA 13, CMake, ninja and python3 with torch/transformers/peft, but may lack the
# Debian -dev packages wick needs, and it has no network or apt. The first step checks what is missing;
# if anything is, it unpacks the .deb files that scripts/pack-deps.sh collected into .deps/debs/ (carry
# `.deps`) with `dpkg -x` into a private prefix (default /opt/wickdeps; never /) and points CMake,
# pkg-config and the loader at it.
#
# Logs and results go to $OUT (the device tool's folder) or ./out/gpu-check; few files, since the tool
# returns at most 8: gpu-check.log (everything), test-cpu.log, test-cuda.log, wick-bench-cuda.json,
# torch-micro.jsonl, summary.txt, and fixtures.tar.gz with --gen-fixtures.
#   --gen-fixtures   also run scripts/gen_adamw_reference.py (if present; needs torch) and pack its output
#   --cpu-bench      also run wick_bench's CPU rows (JSON in wick-bench-cpu.json)
#   --force-deps     use the private prefix even when the system has everything (to test that path)
#   --no-cuda        configure without CUDA (to test this script on a machine without a GPU)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUTDIR=${OUT:-$ROOT/out/gpu-check}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/gpu-check.log
: > "$LOG"

GEN_FIXTURES=0 RUN_TESTS=1 RUN_BENCH=1 CPU_BENCH=0 CONFIGURE_ONLY=0 CUDA=ON FORCE_DEPS=0
PREFIX=/opt/wickdeps
BUILD=build-gpu
JOBS=$(nproc 2>/dev/null || echo 8)
EXTRA_CMAKE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --gen-fixtures) GEN_FIXTURES=1 ;;
    --no-tests) RUN_TESTS=0 ;;
    --no-bench) RUN_BENCH=0 ;;
    --cpu-bench) CPU_BENCH=1 ;;
    --configure-only) CONFIGURE_ONLY=1 ;;
    --no-cuda) CUDA=OFF ;;
    --force-deps) FORCE_DEPS=1 ;;
    --deps-prefix) PREFIX=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --) shift; EXTRA_CMAKE=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "== gpu-check: $*" | tee -a "$LOG"; }
die() { echo "!! gpu-check: $*" | tee -a "$LOG" >&2; exit 1; }
run_logged() { "$@" >> "$LOG" 2>&1; }
STATUS=()  # "step: result" lines for the summary
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}  # python3/torch run with the machine's own, not the prefix's
CXX_BIN=${CXX:-c++}

# ---------------------------------------------------------------- 0. the machine
say "machine"
{
  echo "date: $(date -u +%FT%TZ)"
  (. /etc/os-release 2>/dev/null && echo "os: $PRETTY_NAME")
  echo "glibc: $(ldd --version 2>/dev/null | head -1)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  command -v nvcc >/dev/null && nvcc --version | tail -2 | head -1
  echo "cmake: $(cmake --version | head -1)"
  echo "ninja: $(ninja --version 2>/dev/null || echo absent)"
  echo "c++: $(${CXX:-c++} --version 2>/dev/null | head -1)"
  echo "python3: $(python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)' 2>/dev/null || echo 'no torch')"
} 2>&1 | tee -a "$LOG"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
GPU_NAME=${GPU_NAME:-no GPU}

# ---------------------------------------------------------------- 1. dependencies
say "dependencies"
INC=/usr/include
LIBA=/usr/lib/x86_64-linux-gnu
missing=()
[ -f $INC/nlohmann/json.hpp ] || missing+=(nlohmann-json)
[ -f $INC/CLI/CLI.hpp ] || missing+=(CLI11)
[ -f $INC/toml++/toml.h ] || missing+=(toml++)
[ -f $INC/gtest/gtest.h ] && [ -d $LIBA/cmake/GTest ] || missing+=(GoogleTest)
[ -f $INC/benchmark/benchmark.h ] || missing+=(benchmark)
[ -f $LIBA/cmake/openblas/OpenBLASConfig.cmake ] || missing+=(OpenBLAS)
PKGCONF=$(command -v pkg-config || command -v pkgconf || true)
if [ -z "$PKGCONF" ]; then
  missing+=(pkg-config)
else
  $PKGCONF --exists libpcre2-8 || missing+=(PCRE2)
  $PKGCONF --exists libutf8proc || missing+=(utf8proc)
fi
CMAKE_ARGS=()
if [ ${#missing[@]} -eq 0 ] && [ $FORCE_DEPS -eq 0 ]; then
  say "system has every library"
else
  [ ${#missing[@]} -gt 0 ] && say "missing: ${missing[*]}"
  DEBS=$ROOT/.deps/debs
  ls "$DEBS"/*.deb >/dev/null 2>&1 ||
    die "no .deb files in .deps/debs: run scripts/pack-deps.sh on the development machine and carry '.deps'"
  # glibc: Debian 12's libraries need the version pack-deps.sh recorded
  need=$(sed -n 's/^glibc_min=//p' "$DEBS/REQUIRES" 2>/dev/null)
  have=$(ldd --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+$')
  if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    die "this machine's glibc is $have, but the carried Debian 12 libraries need glibc >= $need; build the libraries for this OS instead (or use its packages)"
  fi
  if ! mkdir -p "$PREFIX" 2>/dev/null || [ ! -w "$PREFIX" ]; then PREFIX=${TMPDIR:-/tmp}/wickdeps; fi
  case "$PREFIX" in /|/usr|/usr/*) die "refusing to unpack into $PREFIX: use a private prefix" ;; esac
  rm -rf "$PREFIX" && mkdir -p "$PREFIX"
  say "unpacking $(ls "$DEBS"/*.deb | wc -l) packages into $PREFIX"
  for f in "$DEBS"/*.deb; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$PREFIX" || die "dpkg-deb -x failed on $f"
    else  # no dpkg: a .deb is an ar archive holding data.tar.*
      python3 - "$f" "$PREFIX" <<'PY' || die "could not unpack $f"
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not a .deb"
pos = 8
while pos < len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    pos += 60 + size + (size & 1)
PY
    fi
  done
  P=$PREFIX/usr
  # Debian's .pc files and OpenBLASConfig.cmake name /usr absolutely: point them into the prefix
  find "$P" -name '*.pc' -exec sed -i "s#^prefix=/usr\$#prefix=$P#" {} +
  OB_DIR=$P/lib/x86_64-linux-gnu/openblas-pthread/cmake/openblas
  sed -i "s#/usr/#$P/#g" "$OB_DIR/OpenBLASConfig.cmake"
  export PKG_CONFIG_PATH=$P/lib/x86_64-linux-gnu/pkgconfig:$P/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$P/lib/x86_64-linux-gnu:$P/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$P" -DOpenBLAS_DIR="$OB_DIR")
  if [ -z "$PKGCONF" ] || [ $FORCE_DEPS -eq 1 ]; then
    PKGCONF=$P/bin/pkgconf
    CMAKE_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$PKGCONF")
  fi
  # can the carried libraries load here? (glibc / libstdc++ versions, missing runtime deps)
  command -v ldd >/dev/null || die "ldd is missing: cannot check that the carried libraries load"
  bad=$(for so in $(find "$P/lib" -type f -name '*.so*') "$P"/bin/pkgconf; do
          ldd "$so" 2>&1 | grep -E 'not found|No such file' | sed "s#^#$(basename "$so"): #"
        done)
  [ -z "$bad" ] || die "the carried Debian 12 libraries cannot load on this machine:
$bad
(libstdc++ must provide GLIBCXX_$(sed -n 's/^glibcxx_min=//p' "$DEBS/REQUIRES"), glibc >= $need)"
  $PKGCONF --exists libpcre2-8 libutf8proc || die "pkg-config ($PKGCONF) cannot see libpcre2-8 / libutf8proc in $P"
  say "private prefix ready: $P"
fi
# OpenMP comes with the compiler (libgomp), never from .deps
printf '#include <omp.h>\nint main(){return omp_get_max_threads()>0?0:1;}\n' > /tmp/wick_omp_check.cpp
$CXX_BIN -fopenmp /tmp/wick_omp_check.cpp -o /tmp/wick_omp_check >> "$LOG" 2>&1 ||
  die "the C++ compiler cannot build an OpenMP program (omp.h / libgomp missing); install the compiler's OpenMP support"

# ---------------------------------------------------------------- 2. configure + build
GEN=Ninja; command -v ninja >/dev/null || GEN="Unix Makefiles"
if [ "$CUDA" = ON ]; then
  NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  CMAKE_ARGS+=(-DWICK_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES=90)
else
  CMAKE_ARGS+=(-DWICK_CUDA=OFF)
fi
say "configure ($GEN, Release, CUDA $CUDA) -> $BUILD"
run_logged cmake -S . -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release "${CMAKE_ARGS[@]}" \
  ${EXTRA_CMAKE[@]+"${EXTRA_CMAKE[@]}"} ||
  { tail -30 "$LOG"; die "configure failed (full log: $LOG)"; }
grep -E '^(OpenBLAS_DIR|nlohmann_json_DIR|CLI11_DIR|GTest_DIR|benchmark_DIR|PKG_CONFIG_EXECUTABLE|PCRE2_INCLUDEDIR|UTF8PROC_INCLUDEDIR)[:=]' \
  "$BUILD/CMakeCache.txt" | tee -a "$LOG"
[ $CONFIGURE_ONLY -eq 1 ] && { say "configured (--configure-only)"; exit 0; }

say "build (-j$JOBS)"
if ! run_logged cmake --build "$BUILD" -j "$JOBS"; then
  grep -E 'error|Error' "$LOG" | head -40
  die "build failed (full log: $LOG)"
fi
STATUS+=("build: ok")

# ---------------------------------------------------------------- 3. tests
ctest_summary() {  # log -> "N passed, N failed, N skipped"
  local log=$1
  local total passed failed skipped
  total=$(grep -oE 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  failed=$(grep -oE '[0-9]+ tests failed out of' "$log" | grep -oE '^[0-9]+' | tail -1)
  skipped=$(grep -c -- '\*\*\*Skipped' "$log" || true)
  passed=$(( ${total:-0} - ${failed:-0} - ${skipped:-0} ))
  echo "${passed} passed, ${failed:-?} failed, ${skipped} skipped (of ${total:-?})"
}
if [ $RUN_TESTS -eq 1 ]; then
  say "tests: CPU (ctest -LE cuda)"
  ctest --test-dir "$BUILD" -LE cuda --output-on-failure -j "$JOBS" > "$OUTDIR/test-cpu.log" 2>&1
  STATUS+=("tests cpu: $(ctest_summary "$OUTDIR/test-cpu.log")")
  say "tests: CUDA (ctest -L cuda)"
  ctest --test-dir "$BUILD" -L cuda --output-on-failure > "$OUTDIR/test-cuda.log" 2>&1
  STATUS+=("tests cuda: $(ctest_summary "$OUTDIR/test-cuda.log")")
  grep -h -E '\(Failed\)|\*\*\*Failed|Skipped' "$OUTDIR/test-cpu.log" "$OUTDIR/test-cuda.log" | head -30 | tee -a "$LOG"
  # a skipped CUDA test on the GPU machine means the GPU was not usable: say why (ctest hides it)
  if grep -q -- '\*\*\*Skipped' "$OUTDIR/test-cuda.log" && [ -x "$BUILD/tests/wick_cuda_tests" ]; then
    { echo "--- why CUDA tests skipped:"; "$BUILD/tests/wick_cuda_tests" 2>&1 | grep -A1 -m3 'Skipped$'; } |
      tee -a "$OUTDIR/test-cuda.log" | tee -a "$LOG"
  fi
fi

# ---------------------------------------------------------------- 4. benchmarks, wick then torch, same card
BENCH=$BUILD/bench/wick_bench
if [ $RUN_BENCH -eq 1 ]; then
  if [ ! -x "$BENCH" ]; then
    STATUS+=("bench: wick_bench not built (Google Benchmark missing?)")
  else
    if [ "$CUDA" = ON ]; then
      say "wick_bench CUDA rows"
      "$BENCH" --benchmark_filter='/cuda(/|$)' --benchmark_out="$OUTDIR/wick-bench-cuda.json" \
        --benchmark_out_format=json 2>&1 | tee -a "$LOG"
      STATUS+=("bench wick cuda: exit ${PIPESTATUS[0]}")
    fi
    if [ $CPU_BENCH -eq 1 ]; then
      say "wick_bench CPU rows"
      "$BENCH" --benchmark_filter='/cpu(/|$)' --benchmark_out="$OUTDIR/wick-bench-cpu.json" \
        --benchmark_out_format=json 2>&1 | tee -a "$LOG"
    fi
  fi
  say "torch peer: python3 bench/peer/torch_peer.py micro"
  LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 bench/peer/torch_peer.py micro > "$OUTDIR/torch-micro.jsonl" 2>> "$LOG"
  STATUS+=("bench torch peer: exit $?")
fi

# ---------------------------------------------------------------- 5. fixtures (optional)
if [ $GEN_FIXTURES -eq 1 ]; then
  GEN_SCRIPT=scripts/gen_adamw_reference.py
  if [ -f "$GEN_SCRIPT" ]; then
    say "fixtures: $GEN_SCRIPT"
    FIXDIR=$(mktemp -d)
    # give it an output folder when it takes one; otherwise it writes into tests/fixtures itself
    if python3 "$GEN_SCRIPT" --help 2>/dev/null | grep -q -- '--out'; then
      LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 "$GEN_SCRIPT" --out "$FIXDIR/adamw" >> "$LOG" 2>&1
    else
      LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 python3 "$GEN_SCRIPT" >> "$LOG" 2>&1 && cp -r tests/fixtures/adamw "$FIXDIR/adamw"
    fi
    rc=$?
    [ -d "$FIXDIR/adamw" ] && tar -czf "$OUTDIR/fixtures.tar.gz" -C "$FIXDIR" adamw
    STATUS+=("fixtures: exit $rc$([ -f "$OUTDIR/fixtures.tar.gz" ] && echo ', fixtures.tar.gz written')")
  else
    STATUS+=("fixtures: $GEN_SCRIPT not present, skipped")
  fi
fi

# ---------------------------------------------------------------- 6. summary table (last)
{
  echo
  echo "== gpu-check summary ($GPU_NAME)"
  printf '%s\n' "${STATUS[@]}"
  echo
  if [ "$CUDA" = ON ]; then WJSON=$OUTDIR/wick-bench-cuda.json CPUFLAG=
  else WJSON=$OUTDIR/wick-bench-cpu.json CPUFLAG=--cpu; fi
  python3 bench/seed_table.py "$WJSON" "$OUTDIR/torch-micro.jsonl" "$GPU_NAME" $CPUFLAG
} 2>&1 | tee "$OUTDIR/summary.txt" | tee -a "$LOG"
