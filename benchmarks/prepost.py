"""Pre- + post-processing cost of a 600x800 photo for a 256x256 model (target < 3 ms), per output kind.

    python benchmarks/prepost.py [--image IMG] [--repeats 300]

Pre = decoded RGB array -> model input tensor (resize, normalize/quantize, layout). Post = model output ->
class-index mask at the photo's 600x800 (upsample, threshold/argmax). JPEG decoding is shown apart: it
is file I/O, the same for every pipeline. Medians of per-call timings, all in one process.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from edge_deeplab.imaging import load_image
from edge_deeplab.processing import InputSpec, OutputSpec
from edge_deeplab.runtimes.base import TensorInfo
from results_io import json_option, write_json

IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "portrait" / "val" / "images" / "00020.jpg"
F32, U8, I8, I32 = (np.dtype(t) for t in (np.float32, np.uint8, np.int8, np.int32))

INPUTS = {
    "float32 [0,1] (MediaPipe-style)": TensorInfo("x", (1, 256, 256, 3), F32),
    "int8 (our full-int export)": TensorInfo("x", (1, 256, 256, 3), I8, 1 / 255, -128),
    "uint8 NCHW": TensorInfo("x", (1, 3, 256, 256), U8, 1 / 255, 0),
}
OUTPUTS = {
    "1-channel probability": TensorInfo("y", (1, 256, 256, 1), F32),
    "2-class float logits": TensorInfo("y", (1, 256, 256, 2), F32),
    "2-class int8 logits": TensorInfo("y", (1, 256, 256, 2), I8, 0.1, 0),
    "fused ArgMax label map": TensorInfo("y", (1, 256, 256), I32),
}


def median_ms(function, repeats: int) -> float:
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        function()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def fake_output(info: TensorInfo) -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.standard_normal((1, 16, 16, 1)), np.ones((1, 16, 16, 1)))  # blobs, like a real mask
    if info.dtype == I32:
        return (smooth[..., 0] > 0).astype(np.int32)
    if info.shape[-1] == 1:
        return (1 / (1 + np.exp(-4 * smooth))).astype(np.float32)
    logits = np.concatenate([-smooth, smooth], axis=-1) * 3
    return logits.astype(np.float32) if info.dtype == F32 else np.clip(logits / 0.1, -128, 127).astype(np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--repeats", type=int, default=300)
    json_option(parser, __file__)
    args = parser.parse_args()

    image = load_image(args.image)
    height, width = image.shape[:2]
    decode = median_ms(lambda: load_image(args.image), max(20, args.repeats // 10))
    print(f"photo {args.image.name}: {width}x{height}; model input 256x256; medians of {args.repeats} calls")
    print(f"(JPEG decode + EXIF + RGB, not counted: {decode:.2f} ms)\n")

    print("| stage | case | ms |")
    print("|---|---|---:|")
    pre = {}
    for name, info in INPUTS.items():
        spec = InputSpec.from_tensor(info)
        pre[name] = median_ms(lambda: spec.prepare(image), args.repeats)
        print(f"| pre | {name} | {pre[name]:.3f} |")
    post = {}
    for name, info in OUTPUTS.items():
        spec, raw = OutputSpec.from_tensor(info), fake_output(info)
        post[name] = median_ms(lambda: spec.decode(raw, width, height), args.repeats)
        alpha = median_ms(lambda: spec.decode(raw, width, height, with_alpha=True), args.repeats)
        print(f"| post | {name} (mask; with soft alpha) | {post[name]:.3f} ({alpha:.3f}) |")

    print("\n| pipeline | pre + post ms | target < 3 ms |")
    print("|---|---:|---|")
    pipelines = []
    for pre_name, post_name in (("float32 [0,1] (MediaPipe-style)", "1-channel probability"),
                                ("int8 (our full-int export)", "2-class int8 logits"),
                                ("int8 (our full-int export)", "2-class float logits"),
                                ("uint8 NCHW", "fused ArgMax label map")):
        total = pre[pre_name] + post[post_name]
        print(f"| {pre_name} -> {post_name} | {total:.3f} | {'met' if total < 3 else 'MISSED'} |")
        pipelines.append({"pre": pre_name, "post": post_name, "ms": total})
    write_json(args.json, {"image": args.image.name, "size": [width, height], "decode_ms": decode,
                           "pre_ms": pre, "post_ms": post, "pipelines": pipelines})


if __name__ == "__main__":
    main()
