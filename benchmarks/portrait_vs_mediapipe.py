"""The default portrait model against MediaPipe's selfie segmenter, in one run.

Person IoU, mIoU and boundary IoU on a portrait val folder (at each mask's resolution, through the same
pre/post-processing as ``edge-deeplab evaluate``), and LiteRT latency at N threads. Latency rounds
alternate between the models, so load from other processes hits them alike; the table reports
medians and the ratio to MediaPipe. Prints a markdown table (and writes --json).

    python benchmarks/portrait_vs_mediapipe.py --data ../shared/data/portrait/val \
        --mediapipe ../shared/models/mediapipe_selfie_segmentation.tflite [MORE_MODELS.tflite ...]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from edge_deeplab.evaluation import evaluate
from edge_deeplab.datasets import list_pairs
from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.runtimes import load_runtime, resolve_model
from edge_deeplab.runtimes.profiler import interleaved_latency
from results_io import json_option, write_json


def accuracy(model: str, data: str, threads: int) -> dict:
    """Person IoU, mIoU and boundary IoU as ``edge-deeplab evaluate`` computes them."""
    result = evaluate(model, data, "litert", threads, show_progress=False, refine=False)  # the model's own masks
    return {"person_iou": result["iou"][1], "miou": result["miou"], "boundary_iou": result["boundary_iou"],
            "images": result["images"]}


def main() -> None:
    try:
        run()
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"],
                        help="our models (.tflite paths or `default`); default: the shipped model")
    parser.add_argument("--data", default="../shared/data/portrait/val")
    parser.add_argument("--mediapipe", default="../shared/models/mediapipe_selfie_segmentation.tflite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=20)
    json_option(parser, __file__)
    args = parser.parse_args()

    pairs = list_pairs(args.data)
    entries = {"ours: " + m: m for m in args.models}
    entries["mediapipe selfie"] = args.mediapipe
    # every model loads before any output: a bad one is one error line, not a half-printed table
    runtimes = {name: load_runtime(path, "litert", args.threads) for name, path in entries.items()}
    rows = {name: accuracy(path, args.data, args.threads) for name, path in entries.items()}
    times = interleaved_latency(runtimes, args.rounds, args.runs, args.warmup)
    reference = times["mediapipe selfie"]["p50"]
    print(f"{len(pairs)} images from {args.data}; LiteRT, {args.threads} threads, "
          f"{args.rounds * args.runs} timed invokes per model (interleaved)\n")
    print("| model | input | person IoU | mIoU | boundary IoU | p50 ms | p90 ms | p50 / MediaPipe | size MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    report = []
    for name, runtime in runtimes.items():
        row, t = rows[name], times[name]
        info = runtime.inputs[0]
        size_mb = resolve_model(entries[name]).stat().st_size / 1e6
        shape = "x".join(str(s) for s in info.shape[1:3]) + f" {np.dtype(info.dtype).name}"
        print(f"| {name} | {shape} | {row['person_iou']:.4f} | {row['miou']:.4f} | "
              f"{row['boundary_iou']:.4f} | {t['p50']:.3f} | {t['p90']:.3f} | "
              f"{t['p50'] / reference:.2f} | {size_mb:.2f} |")
        report.append({"model": name, "path": str(entries[name]), "input": shape, **row, "latency_ms": t,
                       "p50_ratio_to_mediapipe": t["p50"] / reference, "size_mb": size_mb})
    write_json(args.json, report)


if __name__ == "__main__":
    main()
