#!/usr/bin/env bash
# Builds and runs every test: g++ and clang release builds (the g++ one also
# runs each test program whole), then the whole suite again under
# ThreadSanitizer and under AddressSanitizer+UBSan.
#   bash scripts/test.sh                 all four configurations
#   bash scripts/test.sh tsan asan-ubsan only those presets
# First installs what is missing (see scripts/setup.sh; SLUICE_NO_INSTALL=1
# turns that off). Without cmake, ninja, g++ or GoogleTest it stops; without
# clang 19 it skips the clang-release configuration unless that was asked for.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

presets=("$@")
if [ ${#presets[@]} -eq 0 ]; then
  presets=(release clang-release tsan asan-ubsan)
  clang_asked=0
else
  clang_asked=1
fi
jobs=${SLUICE_JOBS:-$(nproc)}

ensure_packages essential cmake ninja-build g++ libgtest-dev

# clang 19 uses the newest GCC's libstdc++, which must have <expected> (12 does).
clang_cxx23() {
  printf '#include <expected>\nint main() { return std::expected<int, int>(0).value(); }\n' |
    clang++-19 -std=c++23 -x c++ -fsyntax-only - 2>/dev/null
}
skipped=""
if [[ " ${presets[*]} " == *" clang-release "* ]]; then
  kind=optional
  if [ $clang_asked = 1 ]; then kind=essential; fi
  if ! ensure_packages $kind clang-19; then
    skipped="clang-release (clang++-19 not found)"
  elif ! clang_cxx23; then
    echo "test.sh: clang++-19 cannot compile <expected> with -std=c++23: its C++ standard library is too old (needs libstdc++ 12 or later)" >&2
    skipped="clang-release (clang++-19 lacks a C++23 standard library)"
  fi
  if [ -n "$skipped" ]; then
    if [ $clang_asked = 1 ]; then echo "test.sh: error: cannot run $skipped" >&2; exit 1; fi
    echo "test.sh: skipping $skipped" >&2
    kept=()
    for preset in "${presets[@]}"; do
      if [ "$preset" != clang-release ]; then kept+=("$preset"); fi
    done
    presets=("${kept[@]}")
  fi
fi

for preset in "${presets[@]}"; do
  echo "=== $preset: configure and build ===" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: test ===" >&2
  ctest --preset "$preset" -j "$jobs"
  if [ "$preset" = release ]; then
    # ctest runs each test in a process of its own; run every test program
    # whole as well, so that state a test leaves for the next in the same
    # process (the chunk cache of freed channel memory) cannot hide a failure.
    echo "=== release: each test program whole ===" >&2
    for t in build/release/tests/*_test build/release/tests/*/*_test; do
      [ -x "$t" ] || continue
      if ! timeout 900 "$t" --gtest_brief=1 >/dev/null; then
        echo "test.sh: $t failed when run whole (rerun it to see which test)" >&2
        exit 1
      fi
    done
  fi
done
if [ -n "$skipped" ]; then echo "=== passed, but skipped: $skipped ===" >&2; fi
