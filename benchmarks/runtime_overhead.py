"""Wrapper overhead: ``edge-deeplab benchmark`` p50 vs a bare LiteRT ``invoke()`` loop, same model, one run.

    python benchmarks/runtime_overhead.py [MODEL.tflite ...] [--threads 2] [--runs 300] [--rounds 5]

Two views, both in one process (target: within 3%):

* command: the ``benchmark`` command's p50 vs a bare loop's p50, in alternating rounds so machine load
  hits both alike; medians over rounds.
* paired: one bare interpreter and one edge-deeplab ``Runtime`` on the same model, invoked alternately
  (bare, wrapped, bare, ...), so every pair of samples sees the same load: the wrapper's own cost.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import json_option, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_MODELS = [SHARED / "models" / "mediapipe_selfie_segmentation.tflite",
                  SHARED / "weights" / "mobilenet_v2_1.0_224_quant.tflite"]


def bare_interpreter(model: Path, threads: int):
    """The reference: the engine's own Python API, nothing else."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(model), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    if np.dtype(detail["dtype"]).kind == "f":
        data = rng.random(detail["shape"], np.float32).astype(detail["dtype"])
    else:
        data = rng.integers(0, 256, detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], data)
    return interpreter


def bare_p50(model: Path, threads: int, warmup: int, runs: int) -> float:
    interpreter = bare_interpreter(model, threads)
    for _ in range(warmup):
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        interpreter.invoke()
        samples.append(time.perf_counter_ns() - start)
    return float(np.percentile(samples, 50)) / 1e6


def wrapped_p50(model: Path, threads: int, warmup: int, runs: int) -> float:
    """Exactly what a user runs: the ``benchmark`` command, in this process, read back from --json."""
    from edge_deeplab.cli import main

    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "b.json"
        with contextlib.redirect_stdout(io.StringIO()):  # the command's own table: not needed here
            main(["benchmark", str(model), "--threads", str(threads), "--warmup", str(warmup),
                  "--runs", str(runs), "--json", str(report)], standalone_mode=False)
        return json.loads(report.read_text())[0]["latency_ms"]["p50"]


def paired_p50s(model: Path, threads: int, warmup: int, runs: int) -> tuple[float, float]:
    from edge_deeplab.runtimes import load_runtime
    from edge_deeplab.runtimes.profiler import sample_input

    bare = bare_interpreter(model, threads)
    wrapped = load_runtime(model, "litert", threads)
    wrapped.set_input(sample_input(wrapped))
    clock, pairs = time.perf_counter_ns, []
    for i in range(warmup + runs):
        start = clock()
        bare.invoke()
        middle = clock()
        wrapped.invoke()
        end = clock()
        if i >= warmup:
            pairs.append((middle - start, end - middle))
    samples = np.asarray(pairs, np.float64) / 1e6
    return float(np.median(samples[:, 0])), float(np.median(samples[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, default=[m for m in DEFAULT_MODELS if m.is_file()])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    json_option(parser, __file__)
    args = parser.parse_args()

    print(f"threads={args.threads} warmup={args.warmup} runs={args.runs} rounds={args.rounds}\n")
    print("| model | view | bare invoke() p50 ms | edge-deeplab p50 ms | ratio |")
    print("|---|---|---:|---:|---:|")
    rows = []
    for model in args.models:
        b, w = paired_p50s(model, args.threads, args.warmup, args.runs * args.rounds)
        print(f"| {model.name} | paired invokes | {b:.3f} | {w:.3f} | {w / b:.3f} |")
        rows.append({"model": model.name, "view": "paired invokes", "bare_p50_ms": b, "edge_deeplab_p50_ms": w})
        bare, wrapped = [], []
        for round_index in range(args.rounds):
            order = (bare_p50, wrapped_p50) if round_index % 2 == 0 else (wrapped_p50, bare_p50)
            for measure in order:
                value = measure(model, args.threads, args.warmup, args.runs)
                (bare if measure is bare_p50 else wrapped).append(value)
        b, w = statistics.median(bare), statistics.median(wrapped)
        print(f"| {model.name} | `benchmark` command | {b:.3f} | {w:.3f} | {w / b:.3f} |")
        rows.append({"model": model.name, "view": "benchmark command", "bare_p50_ms": b, "edge_deeplab_p50_ms": w})
    write_json(args.json, {"threads": args.threads, "runs": args.runs, "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
