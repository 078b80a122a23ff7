"""Blur or replace the background of a photo, or of a folder of video frames, with the default model.

    python examples/portrait_blur.py photo.jpg --out blurred/
    python examples/portrait_blur.py frames/ --mode replace --background beach.jpg --out composited/

Runs on LiteRT (no TensorFlow), through the Python API (`edge_deeplab.load`). For a folder of frames the
segmentation is smoothed over time (`seg.stream`), which removes much of the flicker a per-frame model
has; `--smooth 0` treats the inputs as unrelated photos. For video files use `edge-deeplab segment`.
Any portrait model works: pass --model path/to/model.tflite (MediaPipe's selfie segmenter included).
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

import edge_deeplab
from edge_deeplab.effects import check_strength
from edge_deeplab.errors import ConfigError
from edge_deeplab.imaging import iter_image_files, load_image, save_png
from edge_deeplab.temporal import Smoothing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="images, or folders of frames (processed in name order)")
    parser.add_argument("--model", default="default", help="a portrait .tflite, or `default`")
    parser.add_argument("--mode", choices=("blur", "replace"), default="blur")
    parser.add_argument("--background", help="background image for --mode replace")
    parser.add_argument("--strength", type=float, default=0.02, help="blur radius / longer image side")
    parser.add_argument("--smooth", type=float, default=None,
                        help="temporal smoothing across frames: weight of the past, 0 (off) .. <1; "
                             "default: the library's motion-aware setting")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="portrait_out")
    args = parser.parse_args()
    if args.mode == "replace" and not args.background:
        parser.error("--mode replace needs --background IMAGE")
    if args.smooth is not None and not 0 <= args.smooth < 1:
        parser.error("--smooth takes a weight 0 <= w < 1")
    try:
        check_strength(args.strength)
    except ConfigError as exc:
        parser.error(str(exc))

    seg = edge_deeplab.load(args.model, threads=args.threads)
    backdrop = load_image(args.background) if args.background else None
    smooth = True if args.smooth is None else args.smooth > 0 and Smoothing(rate=1 - args.smooth)
    paths = list(iter_image_files(args.inputs))
    out = Path(args.out)
    start = time.perf_counter()
    to_model, to_effect = itertools.tee(load_image(path) for path in paths)  # each image decoded once
    for path, image, result in zip(paths, to_effect, seg.stream(to_model, smooth)):
        if args.mode == "blur":
            picture = result.blur(image, strength=args.strength)
        else:
            picture = result.replace(image, backdrop)
        save_png(out / f"{path.stem}.png", np.asarray(picture))
        elapsed, start = (time.perf_counter() - start) * 1000, time.perf_counter()
        print(f"{path} -> {out / (path.stem + '.png')}  {elapsed:.1f} ms (model {result.model_ms:.1f} ms)")


if __name__ == "__main__":
    try:
        main()
    except edge_deeplab.EdgeDeeplabError as exc:  # a missing image or model: one line, as the CLI says it
        sys.exit(f"error: {exc}")
