#!/usr/bin/env bash
# Builds every peer in Release, runs the benchmark matrix, prints the table.
#   bash benchmarks/run.sh [--quick|--full|--smoke]
# Output in build/bench/: raw.csv (every run), results.json (medians, machine,
# compilers, commit), results.md (the table, also printed), chart.png.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---quick}
case "$mode" in
  --quick) flag="" ;;
  --full) flag="--full" ;;
  --smoke) flag="--smoke" ;;
  *) echo "usage: $0 [--quick|--full|--smoke]" >&2; exit 2 ;;
esac
out=build/bench
mkdir -p "$out"
jobs=${SLUICE_JOBS:-$(nproc)}
if [ -x "$HOME/.cargo/bin/rustc" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi

echo "== building (Release)" >&2
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" >&2
bin=build/release/benchmarks
cpp_peers=()
for p in sluice mutex moodycamel asio; do
  if [ -x "$bin/bench_$p" ]; then cpp_peers+=("$p"); else echo "no $p benchmark (library missing)" >&2; fi
done
have_rust=0; have_go=0
if command -v rustc >/dev/null; then
  rustc -O --edition 2021 benchmarks/rust/bench.rs -o "$out/bench_rust" && have_rust=1
else
  echo "rustc not found: the Rust peer is skipped" >&2
fi
if command -v go >/dev/null; then
  GOCACHE="$PWD/$out/gocache" GOPATH="$PWD/$out/gopath" GO111MODULE=off \
    go build -o "$out/bench_go" benchmarks/go/bench.go && have_go=1
else
  echo "go not found: the Go peer is skipped" >&2
fi

raw="$out/raw.csv"
echo "row,flavor,peer,run,value,unit" > "$raw"
run() {  # run <label> <command...>: appends its CSV lines to raw.csv
  local label=$1; shift
  echo "== $label" >&2
  "$@" >> "$raw"
}
for p in "${cpp_peers[@]}"; do run "$p" "$bin/bench_$p" $flag; done
# Asio runs coroutines on a 2-thread pool; its pinned rows need the whole
# process on one CPU, like Go's.
if [ -x "$bin/bench_asio" ]; then run "asio (pinned to CPU 0)" taskset -c 0 "$bin/bench_asio" $flag --pinned; fi
[ $have_rust = 1 ] && run rust-std "$out/bench_rust" $flag
[ $have_go = 1 ] && run go "$out/bench_go" $flag
[ $have_go = 1 ] && run "go (pinned to CPU 0)" taskset -c 0 "$out/bench_go" $flag --pinned
for m in empty idle burst; do
  for p in "${cpp_peers[@]}"; do run "$p memory $m" "$bin/bench_${p}_mem" $flag --memory $m; done
  [ $have_rust = 1 ] && run "rust-std memory $m" "$out/bench_rust" $flag --memory $m
  [ $have_go = 1 ] && run "go memory $m" "$out/bench_go" $flag --memory $m
done

python3 benchmarks/report.py "$raw" "$out" "$mode"
if command -v gnuplot >/dev/null; then
  gnuplot "$out/chart.gp" 2>/dev/null && echo "chart: $out/chart.png" >&2
else
  echo "gnuplot not found: no chart" >&2
fi
cat "$out/results.md"
