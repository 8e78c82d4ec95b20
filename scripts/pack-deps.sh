#!/usr/bin/env bash
# Collects, as Debian .deb files, the libraries wick builds against, into .deps/debs/ (git-ignored through
# .deps/.gitignore), for a machine that has a compiler, CMake, ninja and CUDA but none of these libraries
# and no network or apt (the GPU machine). scripts/gpu-check.sh unpacks them there with `dpkg -x` into a
# private prefix; nothing is installed into /.
#
# Run on the Debian 12 development machine (needs apt-get and the network), then carry `.deps`.
# The list is what the build actually uses (checked with dpkg -L and ldd):
#   OpenBLAS (pthread flavour): headers, CMake config and libopenblas.so.0, which needs libgfortran5 and
#     libquadmath0 at run time; libopenblas-dev / libopenblas0 are empty metapackages, not needed.
#   nlohmann-json, CLI11: headers + CMake configs; toml++: headers (used header-only).
#   PCRE2: libpcre2-dev (headers, .pc) + libpcre2-8-0 (wick uses the 8-bit library only).
#   utf8proc: libutf8proc-dev + libutf8proc2.
#   GoogleTest: libgtest-dev ships prebuilt static libgtest.a / libgtest_main.a and GTestConfig.cmake
#     (gmock and the googletest source package are not used).
#   Google Benchmark: libbenchmark-dev + libbenchmark1debian (libbenchmark.so.1).
#   pkgconf-bin + libpkgconf3: CMake's FindPkgConfig needs a pkg-config program.
#   Open MPI (data-parallel training, src/dist/): mpirun (orterun), the wrappers, mpi.h, libmpi and what
#     they load (PMIx, hwloc, libevent, munge); relocated with OPAL_PREFIX (scripts/gpu-dist-check.sh).
#   cpp-httplib (wick serve): httplib.h, its .pc and libcpp-httplib.so; the .pc requires openssl, zlib and
#     brotli, so their -dev packages come too (the runtime libraries are on any Debian-like machine).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0
      nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
      libpcre2-dev libpcre2-8-0
      libutf8proc-dev libutf8proc2
      libgtest-dev
      libbenchmark-dev libbenchmark1debian
      pkgconf-bin libpkgconf3
      openmpi-bin openmpi-common libopenmpi-dev libopenmpi3 libpmix2 libhwloc15
      libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2
      libcpp-httplib-dev libcpp-httplib0.11 libssl-dev zlib1g-dev libbrotli-dev libbrotli1)

out=.deps/debs
rm -rf "$out"
mkdir -p "$out"
printf '*\n' > .deps/.gitignore
# apt's _apt user cannot write into most folders: download in a temp dir it can reach, then move
dl=$(mktemp -d)
chmod 755 "$dl"
(cd "$dl" && apt-get download "${PKGS[@]}")
mv "$dl"/*.deb "$out"/
rmdir "$dl"

# The newest glibc / libstdc++ symbol versions the carried programs and libraries need, for gpu-check.sh
# to compare with the host before trying them.
tmp=$(mktemp -d)
for f in "$out"/*.deb; do dpkg-deb -x "$f" "$tmp"; done
syms=$(find "$tmp" -type f \( -name '*.so*' -o -path '*/bin/*' \) -exec objdump -T {} \; 2>/dev/null || true)
glibc=$(grep -o 'GLIBC_[0-9][0-9.]*' <<<"$syms" | sed 's/GLIBC_//' | sort -uV | tail -1 || true)
glibcxx=$(grep -o 'GLIBCXX_[0-9][0-9.]*' <<<"$syms" | sed 's/GLIBCXX_//' | sort -uV | tail -1 || true)
rm -rf "$tmp"
{
  echo "# written by scripts/pack-deps.sh on $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u +%F)"
  echo "glibc_min=$glibc"
  echo "glibcxx_min=$glibcxx"
} > "$out/REQUIRES"
(cd "$out" && sha256sum ./*.deb > SHA256SUMS)

echo "pack-deps: $(ls "$out"/*.deb | wc -l) packages, $(du -sh "$out" | cut -f1) in $out"
echo "pack-deps: they need glibc >= $glibc and libstdc++ with GLIBCXX_$glibcxx"
echo "pack-deps: carry '.deps' to the GPU machine and run scripts/gpu-check.sh there"
