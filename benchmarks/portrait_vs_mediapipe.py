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
import json
from pathlib import Path

import numpy as np

from edge_deeplab.datasets import list_pairs, load_mask
from edge_deeplab.imaging import load_image
from edge_deeplab.metrics import SegmentationMetrics
from edge_deeplab.processing import Segmenter
from edge_deeplab.runtimes import load_runtime
from edge_deeplab.runtimes.profiler import sample_input, time_invokes


def accuracy(segmenter: Segmenter, pairs) -> dict:
    metrics = SegmentationMetrics(2)
    for pair in pairs:
        image, mask = load_image(pair.image), load_mask(pair.mask)
        metrics.update(segmenter(image).labels, mask)
    summary = metrics.summary()
    return {"person_iou": summary["iou"][1], "miou": summary["miou"],
            "boundary_iou": summary["boundary_iou"], "images": metrics.images}


def latency(runtimes: dict, rounds: int, runs: int, warmup: int) -> dict[str, dict]:
    samples = {name: [] for name in runtimes}
    for runtime in runtimes.values():
        runtime.set_input(sample_input(runtime))
        time_invokes(runtime, warmup, 0)
    for _ in range(rounds):  # interleaved: a load spike hits every model, not one
        for name, runtime in runtimes.items():
            samples[name] += time_invokes(runtime, 2, runs)
    return {name: {"p50": float(np.median(s)), "p90": float(np.percentile(s, 90)), "runs": len(s)}
            for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"],
                        help="our models (.tflite paths or `default`); default: the shipped model")
    parser.add_argument("--data", default="../shared/data/portrait/val")
    parser.add_argument("--mediapipe", default="../shared/models/mediapipe_selfie_segmentation.tflite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    pairs = list_pairs(args.data)
    entries = {("ours: " + m if m != "default" else "ours: default"): m for m in args.models}
    entries["mediapipe selfie"] = args.mediapipe
    runtimes = {name: load_runtime(path, "litert", args.threads) for name, path in entries.items()}
    rows = {name: accuracy(Segmenter(runtime), pairs) for name, runtime in runtimes.items()}
    times = latency(runtimes, args.rounds, args.runs, args.warmup)
    reference = times["mediapipe selfie"]["p50"]
    print(f"{len(pairs)} images from {args.data}; LiteRT, {args.threads} threads, "
          f"{args.rounds * args.runs} timed invokes per model (interleaved)\n")
    print("| model | input | person IoU | mIoU | boundary IoU | p50 ms | p90 ms | p50 / MediaPipe | size MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    report = []
    for name, runtime in runtimes.items():
        row, t = rows[name], times[name]
        info = runtime.inputs[0]
        size = Path(str(runtime.path) if hasattr(runtime, "path") else entries[name])
        size_mb = size.stat().st_size / 1e6 if size.is_file() else float("nan")
        shape = "x".join(str(s) for s in info.shape[1:3]) + f" {np.dtype(info.dtype).name}"
        print(f"| {name} | {shape} | {row['person_iou']:.4f} | {row['miou']:.4f} | "
              f"{row['boundary_iou']:.4f} | {t['p50']:.3f} | {t['p90']:.3f} | "
              f"{t['p50'] / reference:.2f} | {size_mb:.2f} |")
        report.append({"model": name, "path": str(entries[name]), "input": shape, **row, "latency_ms": t,
                       "p50_ratio_to_mediapipe": t["p50"] / reference, "size_mb": size_mb})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
