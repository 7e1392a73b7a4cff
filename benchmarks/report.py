#!/usr/bin/env python3
"""Aggregates raw benchmark runs into the results table, JSON and chart script.

usage: report.py RAW_CSV OUT_DIR MODE
Medians over runs per (row, flavor, peer); each peer's ratio is peer / sluice
(> 1 means sluice is faster or smaller). Standard library only.
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

PEERS = ["sluice", "rust-std", "go", "moodycamel", "asio", "mutex+cv"]
FLAVORS = ["unbounded", "bounded0", "bounded1", "boundedN", "bounded1024"]
ROWS = (["seq", "spsc", "mpsc", "select_rx", "select_both",
         "pingpong_p50", "pingpong_p99", "pingpong_pinned_p50", "pingpong_pinned_p99",
         "mpsc_x1", "mpsc_x4", "mpsc_x16", "mpsc_x64",
         "payload_8B", "payload_64B", "payload_1KiB",
         "mem_empty", "mem_idle_x100k", "mem_burst_peak", "mem_burst_after_drain"])
PENDING = {"select_rx", "select_both"}

# Why a peer has no number in a row it cannot express.
NA = {
    ("moodycamel", "bounded"): "moodycamel's queue has no bound and no rendezvous",
    ("go", "unbounded"): "Go has no unbounded channel; its 'unbounded' rows use a buffer as large as the message count, and no burst row",
    ("go", "pinned"): "",
    ("asio", "unbounded"): "Asio's channel has no unbounded mode",
}


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
        "cxx": sh("c++ --version | head -1"),
        "rustc": sh("rustc --version"),
        "go": sh("go version"),
        "commit": sh("git rev-parse --short HEAD"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(v, unit):
    if unit.startswith("bytes"):
        if v >= 1 << 20:
            return f"{v / (1 << 20):.1f} MiB"
        if v >= 1 << 10:
            return f"{v / (1 << 10):.1f} KiB"
        return f"{v:.0f} B"
    if v >= 10_000:
        return f"{v / 1000:.1f} µs"
    return f"{v:.1f} ns" if v < 100 else f"{v:.0f} ns"


def na_reason(peer, row, flavor):
    if peer == "moodycamel" and flavor != "unbounded":
        return NA[("moodycamel", "bounded")]
    if peer == "asio" and (flavor == "unbounded" or row.startswith("mem_burst")):
        return NA[("asio", "unbounded")]
    if peer == "go" and row.startswith("mem_burst"):
        return NA[("go", "unbounded")]
    if peer == "go" and row == "mem_empty" and flavor == "unbounded":
        return NA[("go", "unbounded")]
    return "not measured in this run (peer missing or failed)"


def main():
    raw, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = defaultdict(list)
    units = {}
    with open(raw) as f:
        for r in csv.DictReader(f):
            key = (r["row"], r["flavor"], r["peer"])
            runs[key].append(float(r["value"]))
            units[(r["row"], r["flavor"])] = r["unit"]
    med = {k: statistics.median(v) for k, v in runs.items()}
    peers = [p for p in PEERS if any(k[2] == p for k in med)] or ["sluice"]
    if "asio" not in peers:
        peers.append("asio")

    notes = {}
    lines = []
    header = "| row | flavor | " + " | ".join(peers) + " |"
    lines.append(header)
    lines.append("|" + "---|" * (len(peers) + 2))
    table = []
    for row in ROWS:
        for fl in FLAVORS:
            if row in PENDING:
                if fl in ("unbounded", "bounded0", "bounded1", "boundedN"):
                    lines.append(f"| {row} | {fl} | " + " | ".join("pending" for _ in peers) + " |")
                continue
            if (row, fl) not in units:
                continue
            unit = units[(row, fl)]
            base = med.get((row, fl, "sluice"))
            cells = []
            entry = {"row": row, "flavor": fl, "unit": unit, "median": {}, "ratio_to_sluice": {}}
            for p in peers:
                v = med.get((row, fl, p))
                if v is None:
                    reason = na_reason(p, row, fl)
                    n = notes.setdefault(reason, len(notes) + 1)
                    cells.append(f"n/a [{n}]")
                    continue
                entry["median"][p] = v
                if p == "sluice" or base is None or base == 0:
                    cells.append(fmt(v, unit))
                else:
                    ratio = v / base
                    entry["ratio_to_sluice"][p] = ratio
                    cells.append(f"{fmt(v, unit)} ({ratio:.2f}x)")
            table.append(entry)
            lines.append(f"| {row} | {fl} | " + " | ".join(cells) + " |")

    m = machine()
    counts = {"--quick": "200,000 messages per row (10,000 for bounded0/bounded1), 5 runs",
              "--full": "1,000,000 messages per row (50,000 for bounded0/bounded1), 7 runs",
              "--smoke": "2,000 messages per row (200 for bounded0/bounded1), 1 run: proves the programs work, not a measurement"}[mode]
    md = [f"Benchmark ({mode.lstrip('-')}): {counts}. Median of the runs; time per message "
          "(ping-pong: per round trip; memory rows: bytes). In parentheses: peer / sluice, "
          "> 1 means sluice is faster (or smaller).",
          f"Machine: {m['cores']} cores, {m['cpu']}; {m['cxx']}; {m['rustc']}; {m['go']}; "
          f"commit {m['commit']}; {m['date']}.", ""]
    md += lines
    md.append("")
    md.append("bounded0 = rendezvous, bounded1 = capacity 1, boundedN = capacity equal to the "
              "message count (crossbeam's suite), bounded1024 = capacity 1024. Go runs goroutines and Asio "
              "runs C++20 coroutines on a 2-thread io_context (their natural use; both are "
              "asynchronous runtimes); sluice, Rust std, moodycamel and the mutex baseline run OS "
              "threads. Ping-pong p50/p99: round-trip percentiles within a run, median over runs. "
              "select rows wait for sluice's select.")
    for reason, n in sorted(notes.items(), key=lambda kv: kv[1]):
        md.append(f"[{n}] {reason}")
    md_text = "\n".join(md) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md_text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"mode": mode, "machine": m, "rows": table,
                   "runs": [{"row": k[0], "flavor": k[1], "peer": k[2], "values": v}
                            for k, v in sorted(runs.items())]}, f, indent=1)

    # Chart: ns/message of the throughput rows, one cluster per row, log scale.
    data = os.path.join(out, "chart.dat")
    chart_rows = [e for e in table if e["unit"] == "ns/msg"]
    with open(data, "w") as f:
        f.write("label " + " ".join(f'"{p}"' for p in peers) + "\n")
        for e in chart_rows:
            vals = [str(e["median"].get(p, "NaN")) for p in peers]
            f.write(f'"{e["row"]}/{e["flavor"]}" ' + " ".join(vals) + "\n")
    with open(os.path.join(out, "chart.gp"), "w") as f:
        f.write(f"""set terminal pngcairo size 1800,700 noenhanced
set output '{os.path.join(out, "chart.png")}'
set title 'sluice and peers: ns per message, median ({mode.lstrip('-')}, {m['cores']} cores, commit {m['commit']})'
set style data histogram
set style histogram cluster gap 1
set style fill solid border -1
set logscale y
set ylabel 'ns per message (log)'
set xtics rotate by -45 font ',8'
set key top left
plot '{data}' using 2:xtic(1) title columnheader(2)""")
        for i in range(3, len(peers) + 2):
            f.write(f", '' using {i} title columnheader({i})")
        f.write("\n")


if __name__ == "__main__":
    main()
