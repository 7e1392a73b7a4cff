#!/usr/bin/env bash
# The main job: builds in Release, runs every example, then prints the
# benchmark table against the peers.
#   bash scripts/main.sh [--quick|--full|--smoke]   --full: the long run
# First installs what is missing (see scripts/setup.sh; SLUICE_NO_INSTALL=1
# turns that off). Without cmake, ninja, g++, GoogleTest (the Release build
# has the tests) or python3 (the table) it stops; a peer it cannot install
# (Go, Asio, moodycamel) leaves its column n/a, no gnuplot leaves no chart.
# Rust is used from rustup's ~/.cargo/bin when there.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---quick}
case "$mode" in
  --quick|--full|--smoke) ;;
  *) echo "usage: $0 [--quick|--full|--smoke]" >&2; exit 2 ;;
esac
jobs=${SLUICE_JOBS:-$(nproc)}
source scripts/setup.sh

ensure_packages essential cmake ninja-build g++ libgtest-dev python3
ensure_packages optional golang-go libasio-dev libconcurrentqueue-dev gnuplot-nox || true
if ! command -v rustc >/dev/null && [ ! -x "$HOME/.cargo/bin/rustc" ]; then
  echo "main.sh: rustc not found (rustup installs it in ~/.cargo/bin): the Rust peer is skipped" >&2
fi

cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
echo "=== examples ===" >&2
cmake --build --preset release --target sluice_examples
echo "=== benchmarks ($mode) ===" >&2
bash benchmarks/run.sh "$mode"
