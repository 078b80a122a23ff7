"""Which input shape suits which photo shape: person IoU of square and 16:9 models on the val photos
centre-cropped to several aspect ratios (the mask cropped alike), through ``edge_deeplab.load`` as an
app calls it (the photo stretched to each model's input). This decides ``default``'s rule
(``edge_deeplab.api.AspectMatchedSegmenter``): each photo on the variant whose input aspect is nearest
its own, ties (4:3, 3:4) to the wider one. Prints a markdown table, writes benchmarks/results/aspect.json.

    python benchmarks/aspect.py [MODEL ...]     # default: our three shapes, `default`, MediaPipe's two
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.imaging import centre_window
from people import add_model_options, load_models, val_name
from results_io import json_option, write_json

ASPECTS = {"16:9": 16 / 9, "4:3": 4 / 3, "1:1": 1.0, "3:4": 3 / 4, "9:16": 9 / 16}


def cropped_person_iou(segmenter, pairs: list[tuple[np.ndarray, np.ndarray]], aspect: float) -> float:
    from edge_deeplab.metrics import SegmentationMetrics
    metrics = SegmentationMetrics(2)
    for image, mask in pairs:
        rows, cols = centre_window(*image.shape[:2], aspect)
        labels = segmenter(np.ascontiguousarray(image[rows, cols]), refine=False).labels
        metrics.update((labels != 0).astype(np.uint8), mask[rows, cols])
    return float(metrics.summary()["iou"][1])


def run() -> None:
    from edge_deeplab.datasets import check_masks, list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser, ["portrait", "portrait_landscape", "portrait_tall", "default", "default_int8"])
    json_option(parser, __file__)
    args = parser.parse_args()

    entries, segmenters = load_models(args)
    for folder in args.sets:
        check_masks(folder, 2)  # person masks as class indices (0/1, 255 ignored), or a clear error
    data = {val_name(folder): [(load_image(p.image), load_mask(p.mask)) for p in list_pairs(folder)]
            for folder in args.sets}
    rows = []
    print("| set | crop | " + " | ".join(entries) + " |\n|---|---|" + "---:|" * len(entries))
    for set_name, pairs in data.items():
        for crop, aspect in ASPECTS.items():
            scores = {name: cropped_person_iou(seg, pairs, aspect) for name, seg in segmenters.items()}
            rows.append({"set": set_name, "crop": crop, "person_iou": scores})
            print(f"| {set_name} | {crop} | " + " | ".join(f"{s:.4f}" for s in scores.values()) + " |", flush=True)
    write_json(args.json, {"models": {name: str(path) for name, path in entries.items()}, "rows": rows})


def main() -> None:
    try:
        run()
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
