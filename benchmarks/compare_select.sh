#!/usr/bin/env bash
# The select rows, interleaved: Go's select (goroutines), sluice's select on
# OS threads, its Asio token form (sluice-coro) and its core awaitables
# (sluice-coro-core, --resume defer and inline), one after the other in every
# round, so a slow spell of the machine hits them all.
#   bash benchmarks/compare_select.sh [ROUNDS]
# ROUNDS defaults to 5. Each program runs its select rows (select_rx,
# select_both, select_arms_N) in its --quick mode (5 runs per row). Prints
# each cell's median over every run of every round, with the ratio go/x for
# every sluice column (> 1: x is faster). Needs Asio and Go; builds like
# run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[[ $rounds =~ ^[0-9]+$ ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
out=build/bench
mkdir -p "$out"
cmake --preset release >/dev/null
cmake --build --preset release -j "${SLUICE_JOBS:-2}" --target bench_sluice bench_sluice_async >&2
bin=build/release/benchmarks
GOCACHE="$PWD/$out/gocache" GOPATH="$PWD/$out/gopath" GO111MODULE=off GOFLAGS= \
  go build -o "$out/bench_go" benchmarks/go/bench.go
csv="$out/select.csv"
log="$out/select.log"  # the programs' progress and any CHECK FAILED
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
  run go "$out/bench_go" --only select
  run sluice "$bin/bench_sluice" --only select
  run sluice-coro "$bin/bench_sluice_async" --peer sluice-coro --only select
  for policy in defer inline; do
    run "core-$policy" "$bin/bench_sluice_async" --peer sluice-coro-core --resume "$policy" \
      --only select
  done
done
python3 - "$csv" <<'PY'
import collections, csv, statistics, sys
cells = collections.defaultdict(list)
for r in csv.reader(open(sys.argv[1])):
    if len(r) >= 7:
        cells[(r[1], r[2], r[0])].append(float(r[5]))
cols = ["go", "sluice", "sluice-coro", "core-defer", "core-inline"]
ours = cols[1:]
print("| row | flavor | " + " | ".join(cols) + " | " + " | ".join(f"go/{c}" for c in ours) + " |")
print("|---" * (len(cols) + len(ours) + 2) + "|")
order = {"select_rx": 0, "select_both": 1}
def key(rf):
    row, fl = rf
    arms = int(row.rsplit("_", 1)[1]) if row.startswith("select_arms_") else 0
    return (order.get(row, 2), arms, ["unbounded", "bounded0", "bounded1", "boundedN"].index(fl))
for row, fl in sorted({(k[0], k[1]) for k in cells}, key=key):
    med = {c: statistics.median(cells[(row, fl, c)]) for c in cols if cells.get((row, fl, c))}
    def ratio(peer):
        return f"{med['go'] / med[peer]:.2f}" if peer in med and "go" in med else "n/a"
    print(f"| {row} | {fl} | " + " | ".join(f"{med[c]:.1f}" if c in med else "n/a" for c in cols)
          + " | " + " | ".join(ratio(c) for c in ours) + " |")
PY
