#!/usr/bin/env bash
# Builds and runs every test: g++ and clang release builds, then the whole
# suite again under ThreadSanitizer and under AddressSanitizer+UBSan.
#   bash scripts/test.sh                 all four configurations
#   bash scripts/test.sh tsan asan-ubsan only those presets
set -euo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
if [ ${#presets[@]} -eq 0 ]; then
  presets=(release clang-release tsan asan-ubsan)
fi
jobs=${SLUICE_JOBS:-$(nproc)}

for preset in "${presets[@]}"; do
  if [ "$preset" = clang-release ] && ! command -v clang++-19 >/dev/null; then
    echo "error: clang++-19 not found (apt-get install clang-19)" >&2
    exit 1
  fi
  echo "=== $preset: configure and build ===" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test ===" >&2
  ctest --preset "$preset" -j "$jobs"
done
