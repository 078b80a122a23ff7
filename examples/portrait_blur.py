"""Blur or replace the background of a photo, or of a folder of video frames, with the default model.

    python examples/portrait_blur.py photo.jpg --out blurred/
    python examples/portrait_blur.py frames/ --mode replace --background beach.jpg --out composited/

Runs on LiteRT (no TensorFlow). For a folder of frames the person mask is smoothed over time (an
exponential moving average of the soft mask), which removes most of the flicker a per-frame model has.
Any portrait model works: pass --model path/to/model.tflite (MediaPipe's selfie segmenter included).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edge_deeplab import effects
from edge_deeplab.imaging import iter_image_files, load_image, save_png
from edge_deeplab.processing import Segmenter
from edge_deeplab.runtimes import load_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="images, or folders of frames (processed in name order)")
    parser.add_argument("--model", default="default", help="a portrait .tflite, or `default`")
    parser.add_argument("--mode", choices=("blur", "replace"), default="blur")
    parser.add_argument("--background", help="background image for --mode replace")
    parser.add_argument("--strength", type=float, default=0.02, help="blur radius / longer image side")
    parser.add_argument("--smooth", type=float, default=0.5,
                        help="temporal smoothing for frame folders: weight of the previous mask, 0..1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="portrait_out")
    args = parser.parse_args()
    if args.mode == "replace" and not args.background:
        parser.error("--mode replace needs --background IMAGE")

    segmenter = Segmenter(load_runtime(args.model, "auto", args.threads))
    backdrop = load_image(args.background) if args.background else None
    out = Path(args.out)
    previous = None  # smoothed alpha of the previous frame
    for path in iter_image_files(args.inputs):
        image = load_image(path)
        start = time.perf_counter()
        alpha = segmenter(image, with_alpha=True).alpha
        if previous is not None and previous.shape == alpha.shape and args.smooth > 0:
            alpha = (args.smooth * previous + (1 - args.smooth) * alpha).astype(np.uint8)
        previous = alpha
        if args.mode == "blur":
            result = effects.blur_background(image, alpha, args.strength)
        else:
            result = effects.replace_background(image, alpha, backdrop)
        elapsed = (time.perf_counter() - start) * 1000
        save_png(out / f"{path.stem}.png", result)
        print(f"{path} -> {out / (path.stem + '.png')}  {elapsed:.1f} ms")


if __name__ == "__main__":
    main()
