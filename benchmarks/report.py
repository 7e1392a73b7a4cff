#!/usr/bin/env python3
"""Aggregates raw benchmark runs into the results table, JSON and chart script.

usage: report.py RAW_CSV OUT_DIR MODE
Medians over runs per (row, flavor, peer). Each peer's ratio is to its own
kind of sluice: OS-thread peers / sluice, coroutine peers (sluice-coro-core,
go, asio) / sluice-coro on time rows; memory rows and the one-thread rows
(select_arms, lifecycle) / sluice (the coroutine peers of sluice use the
same channels). > 1 means sluice is faster or
smaller. Standard library only.
"""
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone

PEERS = ["sluice", "sluice-coro", "sluice-coro-core", "go", "asio", "rust-std", "moodycamel",
         "mutex+cv"]
# Coroutine peers: their time rows are compared with sluice-coro (sluice
# awaited from coroutines on the same kind of scheduler), not with sluice's
# OS threads.
CORO_BASE = "sluice-coro"
CORO_PEERS = {"sluice-coro-core", "go", "asio"}
# The program whose failure empties a peer's cells (run.sh's labels).
PROGRAM = {"mutex+cv": "mutex", "sluice-coro-core": "sluice-coro"}
FLAVORS = ["unbounded", "bounded0", "bounded1", "boundedN", "bounded1024"]
ROWS = (["seq", "seq_100k", "spsc", "spsc_100k", "mpsc", "mpsc_100k", "select_rx", "select_both",
         "select_arms_2", "select_arms_8", "select_arms_64", "select_arms_1024",
         "pingpong_p50", "pingpong_p99", "pingpong_pinned_p50", "pingpong_pinned_p99",
         "drain", "drain_recv_many", "spsc_recv_many", "mpsc_recv_many",
         "mpsc_x1", "mpsc_x4", "mpsc_x16", "mpsc_x64",
         "payload_8B", "payload_64B", "payload_1KiB", "mixed_spsc", "mixed_mpsc", "lifecycle",
         "mem_empty", "mem_idle_x100k", "mem_burst_peak", "mem_burst_after_drain"])

# Why a peer has no number in a row it cannot express.
WHY = {
    "recv-many": "sluice's batch receive (recv_many, up to 64 at a time): drain: a filled channel received one recv() at a time, only the receiving timed; drain_recv_many the same in batches of up to 64; spsc_recv_many and mpsc_recv_many compare with the spsc and mpsc rows, the same workloads received one recv() at a time",
    "moodycamel-bounded": "moodycamel::BlockingConcurrentQueue has no bound and no rendezvous: only its unbounded rows exist",
    "go-unbounded": "Go has no unbounded channel (a buffer as large as the message count would be a bounded(N) row)",
    "asio-unbounded": "Asio's concurrent_channel has no unbounded mode (its capacity is fixed at construction)",
    "rust-select": "std::sync::mpsc has no select (its unstable Select was removed from std)",
    "moodycamel-select": "moodycamel's queue has no select",
    "mutex-select": "the mutex+cv baseline has no select",
    "asio-select": "Asio channels have no select: racing receives in a parallel_group cancels the losers, which is not a select and is not measured",
    "coro-arms": "the select_arms rows are one thread selecting over N channels: the selector's own cost, measured in the sluice column (a coroutine runs the same code)",
    "coro-lifecycle": "the lifecycle row is one thread making, using and dropping a channel: the channel's own cost, measured in the sluice column (the coroutine forms use the same channels)",
    "coro-memory": "memory is a property of the channel: the coroutine forms use the sluice column's channels, so the sluice numbers apply",
    "mixed-sluice": "the mixed rows (OS-thread producers, coroutine consumer) are sluice's coroutine forms: see sluice-coro and sluice-coro-core",
    "mixed-threads": "no asynchronous receive: a coroutine consumer cannot wait on it (the mixed rows need one)",
    "mixed-go": "a goroutine is Go's only kind of producer: there are no OS-thread producers to mix",
    "mixed-asio": "concurrent_channel has no blocking send: a thread can wait for async_send only through asio::use_future, whose completion runs on Asio's system thread pool and sets a std::future per message (40-80 µs per message in a 2-core trial): not measured",
}
SELECT_ARMS = ["select_arms_2", "select_arms_8", "select_arms_64", "select_arms_1024"]
SELECT = {"select_rx", "select_both"} | set(SELECT_ARMS)
# One-thread rows: every peer's ratio is to sluice (no coroutine scheduler
# is involved, and sluice-coro has no number there).
ONE_THREAD = set(SELECT_ARMS) | {"lifecycle"}
# One color per peer in every chart panel.
COLORS = {"sluice": "#7b2fbf", "sluice-coro": "#b36ae2", "sluice-coro-core": "#dcb6f2",
          "rust-std": "#e07b00", "go": "#29a8d9", "moodycamel": "#7f7f7f", "asio": "#d4b400",
          "mutex+cv": "#2b6f2b"}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": platform.platform(),
        "cxx": sh(f"{os.environ.get('BENCH_CXX', 'c++')} --version | head -1"),
        "rustc": sh("rustc --version"),
        "go": sh("go version"),
        "asio": sh("dpkg-query -W -f='${Version}' libasio-dev 2>/dev/null"),
        "concurrentqueue": sh("dpkg-query -W -f='${Version}' libconcurrentqueue-dev 2>/dev/null"),
        "commit": sh("git describe --always --dirty --abbrev=7"),  # -dirty: uncommitted changes were measured
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(v, unit):
    if unit.startswith("bytes"):
        per = "/chan" if unit.endswith("/chan") else ""
        if abs(v) >= 1 << 20:
            return f"{v / (1 << 20):.1f} MiB{per}"
        if abs(v) >= 1 << 10:
            return f"{v / (1 << 10):.1f} KiB{per}"
        return f"{v:.0f} B{per}"
    if v >= 10_000:
        return f"{v / 1000:.1f} µs"
    return f"{v:.1f} ns" if v < 100 else f"{v:.0f} ns"


def na_reason(peer, row, flavor, failures):
    if row.endswith("_recv_many") or row == "drain":
        return WHY["recv-many"]
    if row in SELECT:
        key = {"rust-std": "rust-select", "moodycamel": "moodycamel-select",
               "mutex+cv": "mutex-select", "asio": "asio-select"}.get(peer)
        if key:
            return WHY[key]
        if row in SELECT_ARMS and peer in ("sluice-coro", "sluice-coro-core"):
            return WHY["coro-arms"]
    if peer in ("sluice-coro", "sluice-coro-core") and row.startswith("mem_"):
        return WHY["coro-memory"]
    if peer in ("sluice-coro", "sluice-coro-core") and row == "lifecycle":
        return WHY["coro-lifecycle"]
    if row.startswith("mixed_"):
        key = {"sluice": "mixed-sluice", "rust-std": "mixed-threads", "mutex+cv": "mixed-threads",
               "go": "mixed-go"}.get(peer)
        if peer == "moodycamel" and flavor == "unbounded":
            key = "mixed-threads"
        if peer == "asio" and flavor != "unbounded":
            key = "mixed-asio"
        if key:
            return WHY[key]
    if peer == "moodycamel" and flavor != "unbounded":
        return WHY["moodycamel-bounded"]
    if peer == "asio" and (flavor == "unbounded" or row.startswith("mem_burst")):
        return WHY["asio-unbounded"]
    if peer == "go" and (flavor == "unbounded" or row.startswith("mem_burst")):
        return WHY["go-unbounded"]
    failed = [f for f in failures if f.split(" ", 1)[0].rstrip(":") == PROGRAM.get(peer, peer)]
    if failed:
        return "failed in this run: " + "; ".join(failed)
    return "not measured in this run (peer missing)"


COUNTS = {
    "--quick": "500,000 messages per row (10,000 for bounded0/bounded1), 5 runs, 5,000 round trips; "
               "_100k rows 100,000 messages (5,000 for bounded0/bounded1); lifecycle 50,000 channels",
    "--full": "1,000,000 messages per row (50,000 for bounded0/bounded1), 7 runs, 20,000 round trips; "
              "_100k rows 100,000 messages (5,000 for bounded0/bounded1); lifecycle 100,000 channels",
    "--smoke": "2,000 messages per row (200 for bounded0/bounded1), 1 run, 200 round trips; "
               "_100k rows 2,000 messages (100 for bounded0/bounded1); lifecycle 200 channels: "
               "proves the programs work, not a measurement",
}
BASE_FLAVORS = ("unbounded", "bounded0", "bounded1", "boundedN")


def main():
    raw, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    failures = []
    if len(sys.argv) > 4 and os.path.exists(sys.argv[4]):
        with open(sys.argv[4]) as f:
            failures = [line.strip() for line in f if line.strip()]
    runs = defaultdict(list)
    units = {}
    with open(raw) as f:
        for r in csv.DictReader(line for line in f if not line.startswith("#")):
            key = (r["row"], r["flavor"], r["peer"])
            runs[key].append(float(r["value"]))
            units[(r["row"], r["flavor"])] = r["unit"]
    med = {k: statistics.median(v) for k, v in runs.items()}
    peers = PEERS  # every peer gets a column: a missing one reads n/a, with the reason

    notes = {}
    lines = ["| row | flavor | " + " | ".join(peers) + " |", "|" + "---|" * (len(peers) + 2)]
    table = []
    for row in ROWS:
        for fl in FLAVORS:
            expected = fl == "bounded1" if row in SELECT_ARMS else fl in BASE_FLAVORS
            if (row, fl) not in units and not (row in SELECT and expected):
                continue
            unit = units.get((row, fl), "ns/select" if row in SELECT_ARMS else "ns/msg")
            base = med.get((row, fl, "sluice"))
            coro_base = med.get((row, fl, CORO_BASE))
            memory = unit.startswith("bytes")
            cells = []
            entry = {"row": row, "flavor": fl, "unit": unit, "median": {}, "ratio_to_sluice": {},
                     "ratio_to_sluice_coro": {}, "n/a": {}}
            for p in peers:
                v = med.get((row, fl, p))
                if v is None:
                    reason = na_reason(p, row, fl, failures)
                    n = notes.setdefault(reason, len(notes) + 1)
                    cells.append(f"n/a [{n}]")
                    entry["n/a"][p] = reason
                    continue
                entry["median"][p] = v
                if p != "sluice" and base:
                    entry["ratio_to_sluice"][p] = v / base
                if p in CORO_PEERS and coro_base:
                    entry["ratio_to_sluice_coro"][p] = v / coro_base
                # The cell's ratio: coroutine peers to sluice-coro on time
                # rows (none if it has no number there), everyone else, and
                # every memory row and the one-thread rows (select_arms,
                # lifecycle), to sluice.
                if p in CORO_PEERS and not memory and row not in ONE_THREAD:
                    ratio = entry["ratio_to_sluice_coro"].get(p)
                elif p == CORO_BASE:
                    ratio = None
                else:
                    ratio = entry["ratio_to_sluice"].get(p)
                cells.append(fmt(v, unit) if ratio is None else f"{fmt(v, unit)} ({ratio:.2f}x)")
            table.append(entry)
            lines.append(f"| {row} | {fl} | " + " | ".join(cells) + " |")

    m = machine()
    md = [f"Benchmark ({mode.lstrip('-')}): {COUNTS[mode]}. Median of the runs; time per message "
          "(ping-pong: per round trip; select_arms: per select; lifecycle: per channel; memory rows: bytes). "
          "In parentheses: OS-thread peers "
          "(rust-std, moodycamel, mutex+cv) / sluice; coroutine peers (sluice-coro-core, go, asio) "
          "/ sluice-coro; memory, select_arms and lifecycle rows / sluice. > 1 means sluice (or sluice-coro) is faster "
          "(or smaller).",
          f"Machine: {m['cores']} cores, {m['cpu']}; {m['cxx']}; {m['rustc']}; {m['go']}; "
          f"Asio {m['asio'] or '?'}; concurrentqueue {m['concurrentqueue'] or '?'}; "
          f"commit {m['commit']}; {m['date']}.", ""]
    md += lines
    md.append("")
    md.append("bounded0 = rendezvous, bounded1 = capacity 1, boundedN = capacity equal to the "
              "message count (crossbeam's suite), bounded1024 = capacity 1024. Go runs goroutines "
              "and Asio runs C++20 coroutines on a 2-thread io_context (their natural use; both are "
              "user-space schedulers, so their hand-offs avoid the kernel), as do sluice-coro "
              "(asio::awaitable, use_awaitable tokens) and sluice-coro-core (the core awaitables, "
              "resume_on with asio::defer to the io_context: a woken coroutine runs next on the "
              "thread that woke it, as Go's runnext); sluice, Rust std, moodycamel and the mutex "
              "baseline run OS threads. mixed rows: OS-thread producers (blocking send), one "
              "coroutine consumer on the io_context. Ping-pong p50/p99: round-trip percentiles "
              "within a run, median over runs. select rows: sluice's select_both has one "
              "selecting consumer (a sluice channel has one receiver), Go's four; select_arms_N: "
              "one thread, N channels of capacity 1, one message sent then one select over all N "
              "(sluice's selector, Go's reflect.Select), ns per select, compared with sluice. "
              "seq_100k, spsc_100k, mpsc_100k: the seq, spsc and mpsc rows again at 100,000 messages "
              "(5,000 on bounded0/bounded1; boundedN = capacity 100,000), where channel creation and "
              "thread start weigh more. lifecycle: one thread makes a channel, sends one message, "
              "receives it and drops both ends, messages/10 times; ns per channel (Asio: try_send and "
              "try_receive, no io_context round trip; Go: make(chan int, N), reclaimed by its garbage "
              "collector), compared with sluice. The seq, seq_100k and lifecycle rows of sluice, Rust "
              "std, moodycamel and the mutex baseline (one thread each) run pinned to CPU 0, all on "
              "the same processor.")
    growth = []
    for p in peers:
        lo, hi = med.get((SELECT_ARMS[0], "bounded1", p)), med.get((SELECT_ARMS[-1], "bounded1", p))
        if lo and hi:
            growth.append(f"{p} {fmt(lo, 'ns')} -> {fmt(hi, 'ns')} ({hi / lo:.0f}x for 512x the arms, "
                          f"{(hi - lo) / 1022:.1f} ns per added arm)")
    if growth:
        md.append("Select cost from 2 to 1,024 arms: " + "; ".join(growth) + ".")
    for reason, n in sorted(notes.items(), key=lambda kv: kv[1]):
        md.append(f"[{n}] {reason}")
    md_text = "\n".join(md) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md_text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"mode": mode, "machine": m, "failures": failures, "rows": table,
                   "runs": [{"row": k[0], "flavor": k[1], "peer": k[2], "values": v}
                            for k, v in sorted(runs.items())]}, f, indent=1)
    # The raw CSV carries the machine too, as comment lines the reader skips.
    with open(raw) as f:
        body = [line for line in f if not line.startswith("#")]
    with open(raw, "w") as f:
        for k, v in m.items():
            f.write(f"# {k}: {v}\n")
        f.write(f"# mode: {mode}\n")
        f.writelines(body)

    # Chart: one log-scale panel per unit (throughput, round trip, select,
    # channel lifecycle, memory),
    # one cluster of bars per row; missing and non-positive values are gaps.
    panels = [("ns/msg", "ns per message"), ("ns/rtt", "ns per round trip"),
              ("ns/select", "ns per select"), ("ns/chan", "ns per channel (lifecycle)"),
              ("bytes", "bytes")]
    plots = []
    for i, (unit, label) in enumerate(panels):
        rows = [e for e in table if e["unit"].startswith(unit)
                and any(isinstance(v, float) for v in e["median"].values())]
        if not rows:
            continue
        data = os.path.join(out, f"chart{i}.dat")
        cols = [p for p in peers if any(isinstance(e["median"].get(p), float) for e in rows)]
        with open(data, "w") as f:
            f.write("label " + " ".join(f'"{p}"' for p in cols) + "\n")
            for e in rows:
                vals = []
                for p in cols:
                    v = e["median"].get(p)
                    vals.append(str(v) if isinstance(v, float) and v > 0 else "NaN")
                f.write(f'"{e["row"]}/{e["flavor"]}" ' + " ".join(vals) + "\n")
        series = [f"'{data}' using {c + 2}{':xtic(1)' if c == 0 else ''} title columnheader({c + 2})"
                  f" lc rgb '{COLORS[p]}'" for c, p in enumerate(cols)]
        cmd = f"set ylabel '{label} (log)'\nplot " + ", ".join(series)
        plots.append(cmd)
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(f"""set terminal pngcairo size 1800,{600 * max(1, len(plots))} noenhanced
set output '{os.path.join(out, "chart.png")}'
set multiplot layout {max(1, len(plots))},1 title 'sluice and peers, medians ({mode.lstrip('-')}, {m['cores']} cores, commit {m['commit']}); lower is better'
set style data histogram
set style histogram cluster gap 1
set style fill solid border -1
set logscale y
set xtics rotate by -30 font ',8'
set key top left
set datafile missing 'NaN'
""")
        f.write("\n".join(plots) + "\nunset multiplot\n")


if __name__ == "__main__":
    main()
