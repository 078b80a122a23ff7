"""Edge refinement (guided filter) on and off: person IoU, boundary IoU and cost per image, in one run.

Every val photo is segmented once; its alpha is scored as the model gives it (threshold 0.5) and after
``edge_deeplab.refine.refine_alpha``. Cost is CPU time of the refinement per image (process time, so
a busy machine inflates it less than wall time), next to the model's own inference time.

    python benchmarks/refine.py [--model default] [--data ../shared/data/portrait/val] [--json F]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from edge_deeplab.datasets import check_masks, list_pairs, load_mask
from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.imaging import load_image
from edge_deeplab.metrics import SegmentationMetrics
from edge_deeplab.processing import Segmenter
from edge_deeplab.refine import REFINE_EPS, REFINE_RADIUS, REFINE_SIZE, STATS_SIZE, refine_alpha
from edge_deeplab.runtimes import load_runtime
from results_io import json_option, write_json

ROOT = Path(__file__).resolve().parent
# Default on only if refinement gains at least this much boundary IoU and loses no person IoU.
MIN_BOUNDARY_GAIN = 0.01


def measure(model: str, data: str, threads: int | None) -> dict:
    pairs = list_pairs(data)
    check_masks(data, 2, pairs)  # person masks as class indices (0/1, 255 ignored), or a clear error
    segmenter = Segmenter(load_runtime(model, "auto", threads))
    plain, refined = SegmentationMetrics(2), SegmentationMetrics(2)
    model_ms, refine_ms = [], []
    for pair in pairs:
        image, mask = load_image(pair.image), load_mask(pair.mask)
        start = time.process_time()
        alpha = segmenter(image, with_alpha=True).alpha
        model_ms.append((time.process_time() - start) * 1000)
        start = time.process_time()
        better = refine_alpha(image, alpha)
        refine_ms.append((time.process_time() - start) * 1000)
        plain.update((alpha >= 128).view(np.uint8), mask)
        refined.update((better >= 128).view(np.uint8), mask)
    rows = {name: {"person_iou": round(float(m.iou()[1]), 4), "boundary_iou": round(m.boundary_iou(), 4)}
            for name, m in (("off", plain), ("on", refined))}
    rows["off"]["ms_per_image"] = 0.0
    rows["on"]["ms_per_image"] = round(statistics.median(refine_ms), 1)
    gain = rows["on"]["boundary_iou"] - rows["off"]["boundary_iou"]
    default = gain >= MIN_BOUNDARY_GAIN and rows["on"]["person_iou"] >= rows["off"]["person_iou"]
    return {"model": model, "data": data, "images": len(pairs),
            "settings": {"size": REFINE_SIZE, "stats_size": STATS_SIZE, "radius": REFINE_RADIUS, "eps": REFINE_EPS},
            "model_cpu_ms_per_image": round(statistics.median(model_ms), 1),
            "refine": rows, "boundary_iou_gain": round(gain, 4),
            "person_iou_gain": round(rows["on"]["person_iou"] - rows["off"]["person_iou"], 4),
            "default_on": bool(default),
            "rule": f"on by default if boundary IoU gains >= {MIN_BOUNDARY_GAIN} and person IoU does not drop"}


def table(result: dict) -> str:
    lines = [f"Edge refinement, {result['model']} on {result['images']} images of {result['data']} "
             f"(model {result['model_cpu_ms_per_image']} CPU ms per image, incl. decode of its output)", "",
             "| refine | person IoU | boundary IoU | CPU ms per image (median) |", "|---|---|---|---|"]
    for name, row in result["refine"].items():
        lines.append(f"| {name} | {row['person_iou']:.4f} | {row['boundary_iou']:.4f} | {row['ms_per_image']} |")
    verdict = "on" if result["default_on"] else "off"
    lines += ["", f"Boundary IoU {result['boundary_iou_gain']:+.4f}, person IoU {result['person_iou_gain']:+.4f}: "
              f"default {verdict} ({result['rule']})."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="artifact path or `default`")
    parser.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data" / "portrait" / "val"))
    parser.add_argument("--threads", type=int, default=None)
    json_option(parser, __file__)
    args = parser.parse_args()
    try:
        result = measure(args.model, args.data, args.threads)
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")
    write_json(args.json, result)
    print(table(result))


if __name__ == "__main__":
    main()
