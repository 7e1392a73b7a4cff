#!/usr/bin/env bash
# The coroutine rows, interleaved: Go's goroutines, Asio's concurrent_channel,
# sluice's token forms (sluice-coro) and its core awaitables under each
# resumption policy (sluice-coro-core --resume defer|post|inline), one after
# the other in every round, so a slow spell of the machine hits them all.
#   bash benchmarks/compare_coroutines.sh [ROUNDS] [ROW ...]
# ROUNDS defaults to 7; ROWs (prefixes, as --only) default to spsc mpsc
# pingpong seq. Each program runs in its --quick mode (5 runs per row).
# Prints each cell's median over every run of every round, with the ratios
# go/x and asio/x (> 1: x is faster). Needs Asio and Go; builds like run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
[[ $rounds =~ ^[0-9]+$ ]] || { echo "usage: $0 [ROUNDS] [ROW ...]" >&2; exit 2; }
shift || true
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(spsc mpsc pingpong seq)
out=build/bench
mkdir -p "$out"
cmake --preset release >/dev/null
cmake --build --preset release -j "${SLUICE_JOBS:-2}" --target bench_asio bench_sluice_async >&2
bin=build/release/benchmarks
GOCACHE="$PWD/$out/gocache" GOPATH="$PWD/$out/gopath" GO111MODULE=off GOFLAGS= \
  go build -o "$out/bench_go" benchmarks/go/bench.go
csv="$out/coroutines.csv"
log="$out/coroutines.log"  # the programs' progress and any CHECK FAILED
: > "$csv"
: > "$log"
run() {  # run LABEL COMMAND...: appends COMMAND's CSV lines, labelled, to $csv
  local label=$1
  shift
  if ! timeout --signal=KILL 600 "$@" 2>>"$log" | sed "s/^/$label,/" >> "$csv"; then
    echo "!! $label failed or timed out (see $log)" >&2
    exit 1
  fi
}
for ((i = 0; i < rounds; i++)); do
  echo "== round $((i + 1)) of $rounds" >&2
  for row in "${rows[@]}"; do
    run go "$out/bench_go" --only "$row"
    run asio "$bin/bench_asio" --only "$row"
    run sluice-coro "$bin/bench_sluice_async" --peer sluice-coro --only "$row"
    for policy in defer post inline; do
      run "core-$policy" "$bin/bench_sluice_async" --peer sluice-coro-core --resume "$policy" \
        --only "$row"
    done
  done
done
python3 - "$csv" <<'PY'
import collections, csv, statistics, sys
cells = collections.defaultdict(list)
for r in csv.reader(open(sys.argv[1])):
    if len(r) >= 7:
        cells[(r[1], r[2], r[0])].append(float(r[5]))
cols = ["go", "asio", "sluice-coro", "core-defer", "core-post", "core-inline"]
print("| row | flavor | " + " | ".join(cols) + " | go/core-defer | asio/core-defer |")
print("|---" * (len(cols) + 4) + "|")
for row, fl in sorted({(k[0], k[1]) for k in cells}):
    med = {c: statistics.median(cells[(row, fl, c)]) for c in cols if cells.get((row, fl, c))}
    def ratio(peer):
        return f"{med[peer] / med['core-defer']:.2f}" if peer in med and "core-defer" in med else "n/a"
    print(f"| {row} | {fl} | " + " | ".join(f"{med[c]:.1f}" if c in med else "n/a" for c in cols)
          + f" | {ratio('go')} | {ratio('asio')} |")
PY
