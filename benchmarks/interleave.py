"""Does ``benchmark --interleave`` keep a comparison fair on a busy machine?

Runs ``edge-deeplab benchmark A B`` repeatedly, one after another (each row in its own process, timed in
turn) and with ``--interleave`` (the rows' latency timed together in alternating bursts), alternating the
two, while background processes load every core for half of each ``--load-period`` (on, then off): the
load a shared machine puts on a run, made regular. Reports B's p50 over A's for each run: median, min,
max and spread (max / min). Prints a markdown table and writes benchmarks/results/interleave.json.

    python benchmarks/interleave.py [A B] [--repeats 8] [--runs 100] [--threads 2] [--load-period 1.0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from results_io import json_option, machine, write_json

CLI = [sys.executable, "-c", "from edge_deeplab.cli import main; main()"]
# A core busy for the first half of every period, idle for the second.
LOAD = ("import sys, time\nperiod = float(sys.argv[1])\nwhile True:\n"
        "    if time.time() % period < period / 2:\n        pass\n"
        "    else:\n        time.sleep(period - time.time() % period)\n")


def p50_ratio(models: list[str], threads: int, runs: int, interleave: bool) -> float:
    """B's p50 over A's, from one ``benchmark`` run."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "b.json"
        command = [*CLI, "benchmark", *models, "--threads", str(threads), "--runs", str(runs),
                   "--json", str(report)] + (["--interleave"] if interleave else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"error: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        rows = json.loads(report.read_text())
    return rows[1]["latency_ms"]["p50"] / rows[0]["latency_ms"]["p50"]


def summary(ratios: list[float]) -> dict:
    return {"ratios": [round(r, 4) for r in ratios], "median": round(float(np.median(ratios)), 4),
            "min": round(min(ratios), 4), "max": round(max(ratios), 4),
            "spread": round(max(ratios) / min(ratios), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default", "default_int8"])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--load-period", type=float, default=1.0, help="seconds; 0: no background load")
    json_option(parser, __file__)
    args = parser.parse_args()
    if len(args.models) != 2:
        sys.exit("error: give two models, A and B (the ratio is B's p50 over A's)")
    load = [subprocess.Popen([sys.executable, "-c", LOAD, str(args.load_period)])
            for _ in range(os.cpu_count() or 1)] if args.load_period > 0 else []
    try:
        ratios: dict[str, list[float]] = {"one after another": [], "--interleave": []}
        for _ in range(args.repeats):
            for mode in ratios:
                ratios[mode].append(p50_ratio(args.models, args.threads, args.runs, mode == "--interleave"))
    finally:
        for process in load:
            process.kill()
    data = {"models": args.models, "threads": args.threads, "runs": args.runs, "repeats": args.repeats,
            "load_period_s": args.load_period, "machine": machine(), "modes": {mode: summary(r) for mode, r in ratios.items()}}
    from render import interleave  # the table the documents show, from the same data
    print(interleave(data))
    write_json(args.json, data)


if __name__ == "__main__":
    main()
