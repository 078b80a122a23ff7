"""Person IoU when people are framed smaller than in the training portraits, in one run.

Each val photo and its mask are shrunk by --scale and placed bottom-centre on a grey canvas of the
original size (people further from the camera, more background), then every model is scored through
the ``evaluate`` pipeline, next to its score on the unchanged photos. A proxy for photos framed unlike
the training set: synthetic, so it ranks models, it does not predict their IoU on real full-body shots.

    python benchmarks/framing_shift.py default runs/x.tflite ... [--data ../shared/data/portrait/val]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

from edge_deeplab.evaluation import evaluate
from edge_deeplab.datasets import list_pairs
from edge_deeplab.errors import BadModelError, EdgeDeeplabError
from edge_deeplab.runtimes import resolve_model
from results_io import json_option, write_json

CANVAS_GREY = (128, 128, 128)


def shrink_onto_canvas(image: Image.Image, mask: Image.Image, scale: float) -> tuple[Image.Image, Image.Image]:
    width, height = image.size
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    corner = ((width - small[0]) // 2, height - small[1])
    canvas = Image.new("RGB", (width, height), CANVAS_GREY)
    canvas.paste(image.resize(small, Image.BILINEAR), corner)
    mask_canvas = Image.new(mask.mode, (width, height), 0)  # 0 = background
    mask_canvas.paste(mask.resize(small, Image.NEAREST), corner)
    return canvas, mask_canvas


def person_iou(model: str, folder: str | Path) -> float:
    return evaluate(model, str(folder), "litert", 2, show_progress=False, refine=False)["iou"][1]


def main() -> None:
    try:
        run()
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["default"])
    parser.add_argument("--data", default="../shared/data/portrait/val")
    parser.add_argument("--mediapipe", default="../shared/models/mediapipe_selfie_segmentation.tflite")
    parser.add_argument("--scale", type=float, default=0.5)
    json_option(parser, __file__)
    args = parser.parse_args()
    if not 0.1 <= args.scale <= 1.0:
        parser.error("--scale must be in [0.1, 1]")

    pairs = list_pairs(args.data)
    models = [*args.models, args.mediapipe]
    for model in models:  # every model before any output: no half-printed table
        if not resolve_model(model).is_file():
            raise BadModelError(f"model file not found: {model}")
    with tempfile.TemporaryDirectory() as tmp:
        shifted = Path(tmp)
        (shifted / "images").mkdir()
        (shifted / "masks").mkdir()
        for pair in pairs:
            image, mask = shrink_onto_canvas(Image.open(pair.image).convert("RGB"), Image.open(pair.mask),
                                             args.scale)
            image.save(shifted / "images" / f"{Path(pair.image).stem}.png")
            mask.save(shifted / "masks" / f"{Path(pair.mask).stem}.png")
        print(f"{len(pairs)} images from {args.data}; shifted: shrunk to {args.scale:g} of each side, "
              f"bottom-centre on grey\n")
        print("| model | person IoU, as is | person IoU, shifted framing | change (pts) |")
        print("|---|---:|---:|---:|")
        rows = []
        for model in models:
            plain, moved = person_iou(model, args.data), person_iou(model, shifted)
            print(f"| {model} | {plain:.4f} | {moved:.4f} | {100 * (moved - plain):+.2f} |")
            rows.append({"model": model, "person_iou": plain, "person_iou_shifted": moved})
    write_json(args.json, {"data": args.data, "scale": args.scale, "images": len(pairs), "rows": rows})


if __name__ == "__main__":
    main()
