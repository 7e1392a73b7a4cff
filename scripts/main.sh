#!/usr/bin/env bash
# The main job: builds in Release, runs every example, then prints the
# benchmark table against the peers (pass --full for the long run).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---quick}
jobs=${SLUICE_JOBS:-$(nproc)}

cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
echo "=== examples ===" >&2
cmake --build --preset release --target sluice_examples
echo "=== benchmarks ($mode) ===" >&2
bash benchmarks/run.sh "$mode"
