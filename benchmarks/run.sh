#!/usr/bin/env bash
# Builds every peer in Release, runs the benchmark matrix, prints the table.
#   bash benchmarks/run.sh [--quick|--full|--smoke]
# Output in build/bench/: raw.csv (every run), results.json (runs, medians,
# ratios, machine, compilers, commit), results.md (the table, also printed on
# stdout), chart.png. Progress goes to stderr. Exits non-zero if a program
# failed or timed out (its cells then read "n/a", with the reason).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:---quick}
case "$mode" in
  --quick) flag="" limit=600 runs=5 ;;
  --full) flag="--full" limit=3600 runs=7 ;;
  --smoke) flag="--smoke" limit=300 runs=1 ;;
  *) echo "usage: $0 [--quick|--full|--smoke]" >&2; exit 2 ;;
esac
out=build/bench
mkdir -p "$out"
# Few targets; more jobs only slow down whatever else the machine runs.
jobs=${SLUICE_JOBS:-2}
if [ -x "$HOME/.cargo/bin/rustc" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
start=$SECONDS

echo "== building (Release)" >&2
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" --target sluice_benchmarks >&2
bin=build/release/benchmarks
cpp_peers=()
for p in sluice mutex moodycamel asio; do
  if [ -x "$bin/bench_$p" ]; then cpp_peers+=("$p"); else echo "no $p benchmark (library missing)" >&2; fi
done
have_rust=0; have_go=0
if command -v rustc >/dev/null; then
  echo "== rustc -O benchmarks/rust/bench.rs" >&2
  rustc -O --edition 2021 benchmarks/rust/bench.rs -o "$out/bench_rust" && have_rust=1
else
  echo "rustc not found: the Rust peer is skipped" >&2
fi
if command -v go >/dev/null; then
  echo "== go build benchmarks/go/bench.go" >&2
  # A single file with the standard library only: no module, nothing to download.
  GOCACHE="$PWD/$out/gocache" GOPATH="$PWD/$out/gopath" GO111MODULE=off GOFLAGS= \
    go build -o "$out/bench_go" benchmarks/go/bench.go && have_go=1
else
  echo "go not found: the Go peer is skipped" >&2
fi

raw="$out/raw.csv"
failed="$out/failed.txt"
echo "row,flavor,peer,run,value,unit" > "$raw"
: > "$failed"
run() {  # run <label> <command...>: appends its CSV lines to raw.csv
  local label=$1; shift
  echo "== $label" >&2
  local rc=0
  timeout --signal=KILL "$limit" "$@" >> "$raw" || rc=$?
  if [ $rc -ne 0 ]; then
    if [ $rc -eq 137 ]; then why="timed out after ${limit}s"; else why="exited with status $rc"; fi
    echo "!! $label $why" >&2
    echo "$label: $why" >> "$failed"
  fi
}
# Every program that runs OS threads or coroutines on its own pool (not the
# pinned runs): label, then command. sluice's coroutine forms (peers
# sluice-coro and sluice-coro-core, one program) exist only when Asio is
# installed.
programs=()
for p in "${cpp_peers[@]}"; do programs+=("$p" "$bin/bench_$p"); done
have_coro=0
if [ -x "$bin/bench_sluice_async" ]; then
  have_coro=1
  programs+=(sluice-coro "$bin/bench_sluice_async")
else
  echo "no sluice-coro benchmark (Asio missing)" >&2
fi
if [ $have_rust = 1 ]; then programs+=(rust-std "$out/bench_rust"); fi
if [ $have_go = 1 ]; then programs+=(go "$out/bench_go"); fi
# Interleaved: one group of rows at a time, every program in turn, so that
# all peers of a row run within seconds of each other. The host's speed
# drifts over minutes (a whole program once ran its seq rows 1.5x slower
# than the table before, the code unchanged): run program by program, a
# slow phase fell on one peer's rows and not on its rival's. A group is a
# prefix of row names (--only): a row starting with none of these is not
# run (add its prefix here).
row_groups=(seq spsc mpsc select pingpong drain payload mixed lifecycle)
# The single-threaded rows (seq, lifecycle) of the OS-thread peers run on one
# processor, the same for every peer: on a virtual machine one processor may
# run the same loop much slower than the other (1.4-1.5x measured here),
# and an unpinned process runs wherever the scheduler puts it. The
# coroutine peers keep their 2-thread schedulers.
single_threaded() {  # single_threaded <group> <label>
  case "$1" in seq | lifecycle) ;; *) return 1 ;; esac
  case "$2" in sluice | mutex | moodycamel | rust-std) return 0 ;; *) return 1 ;; esac
}
for g in "${row_groups[@]}"; do
  for ((i = 0; i < ${#programs[@]}; i += 2)); do
    if single_threaded "$g" "${programs[i]}"; then
      run "${programs[i]} ($g rows, pinned to CPU 0)" taskset -c 0 "${programs[i + 1]}" $flag --only "$g"
    else
      run "${programs[i]} ($g rows)" "${programs[i + 1]}" $flag --only "$g"
    fi
  done
done
# The 100k pass: seq, spsc and mpsc again at 100,000 messages (5,000 for
# bounded0/bounded1; --smoke: 2,000), renamed seq_100k, spsc_100k,
# mpsc_100k, so short-lived channels (creation and thread start weigh more)
# are seen in every run; interleaved the same way. --rows takes exact row
# names (--only would also run mpsc_x*, spsc_recv_many, ...).
if [ "$mode" = --smoke ]; then short_messages=2000; else short_messages=100000; fi
short() {  # short <label> <command...>: appends the renamed rows to raw.csv
  local label=$1; shift
  run "$label" bash -c '"$@" | awk -F, "BEGIN{OFS=\",\"} \$1==\"seq\"||\$1==\"spsc\"||\$1==\"mpsc\" {\$1=\$1\"_100k\"} {print}"; exit ${PIPESTATUS[0]}' \
    short "$@" $flag --messages "$short_messages"
}
for r in seq spsc mpsc; do
  for ((i = 0; i < ${#programs[@]}; i += 2)); do
    if single_threaded "$r" "${programs[i]}"; then
      short "${programs[i]} ($r rows, 100k, pinned to CPU 0)" taskset -c 0 "${programs[i + 1]}" --rows "$r"
    else
      short "${programs[i]} ($r rows, 100k)" "${programs[i + 1]}" --rows "$r"
    fi
  done
done
# Asio, sluice's coroutines and Go schedule coroutines/goroutines on their own
# thread pools: their pinned ping-pong rows run the whole process on CPU 0.
if [ -x "$bin/bench_asio" ]; then run "asio (pinned to CPU 0)" taskset -c 0 "$bin/bench_asio" $flag --pinned; fi
if [ $have_coro = 1 ]; then
  run "sluice-coro (pinned to CPU 0)" taskset -c 0 "$bin/bench_sluice_async" $flag --pinned
fi
if [ $have_go = 1 ]; then run "go (pinned to CPU 0)" taskset -c 0 "$out/bench_go" $flag --pinned; fi
# Heap bytes come from the counting-allocator builds; resident memory from the
# plain ones, so the counter's block headers do not inflate RSS. A memory
# program measures once per process (a fresh heap each time), so it runs
# $runs times and the run column is filled in here.
mem() {  # mem <label> <run> <command...>
  local label=$1 r=$2; shift 2
  run "$label (run $r)" bash -c '"$@" | awk -F, -v r='"$r"' "BEGIN{OFS=\",\"} {\$4=r; print}"; exit ${PIPESTATUS[0]}' mem "$@"
}
for m in empty idle burst; do
  for ((r = 0; r < runs; r++)); do
    for p in "${cpp_peers[@]}"; do
      if [ $m = empty ]; then prog="$bin/bench_${p}_mem"; else prog="$bin/bench_$p"; fi
      mem "$p memory $m" $r "$prog" $flag --memory $m
    done
    if [ $have_rust = 1 ]; then mem "rust-std memory $m" $r "$out/bench_rust" $flag --memory $m; fi
    if [ $have_go = 1 ]; then mem "go memory $m" $r "$out/bench_go" $flag --memory $m; fi
  done
done

cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/release/CMakeCache.txt)
BENCH_CXX="${cxx:-c++}" python3 benchmarks/report.py "$raw" "$out" "$mode" "$failed"
if command -v gnuplot >/dev/null; then
  gnuplot "$out/chart.gp" && echo "chart: $out/chart.png" >&2
else
  echo "gnuplot not found: no chart" >&2
fi
echo "== done in $((SECONDS - start)) s; raw runs in $raw, $out/results.json" >&2
cat "$out/results.md"
[ ! -s "$failed" ]
