"""What to run on a Coral board (Dev Board / USB Accelerator): an Edge TPU model through the runtime
wrapper, with the CPU int8 model as the fallback where no Edge TPU is present (as on this machine).

On an x86-64 Linux host with edgetpu_compiler, compile the shipped QAT int8 model:
    edge-deeplab export portrait_int8 --format edgetpu --out coral/
which writes coral/portrait_int8.tflite and coral/portrait_int8_edgetpu.tflite (from the float weights
instead, `export portrait --format edgetpu --calibration DIR` writes portrait_tpu_int8_edgetpu.tflite).
Then on the board (Mendel Linux, libedgetpu installed):
    python3 examples/coral_segment.py frames/ --model coral/portrait_int8_edgetpu.tflite

Writes colour overlays and prints per-image latency and which engine ran it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import edge_deeplab
from edge_deeplab.errors import RuntimeUnavailableError
from edge_deeplab.imaging import iter_image_files, load_image, save_png
from edge_deeplab.runtimes import RUNTIMES

# What `edge-deeplab export portrait_int8 --format edgetpu` compiles (tests/test_examples.py checks it).
DEFAULT_MODEL = "portrait_int8_edgetpu.tflite"


def open_segmenter(model: str, fallback: str, threads: int):
    """``model`` on the Edge TPU if this machine has one, else ``fallback`` on LiteRT."""
    reason = RUNTIMES.load("edgetpu").unavailable_reason()
    if reason is None and Path(model).is_file():
        try:
            return edge_deeplab.load(model, "edgetpu", threads), "edgetpu"
        except RuntimeUnavailableError as exc:
            reason = str(exc)
    elif reason is None:
        reason = (f"{model} not found (compile it with `edge-deeplab export portrait_int8 --format edgetpu` "
                  "where edgetpu_compiler runs)")
    print(f"Edge TPU not used: {reason}\n-> running {fallback} on the CPU (LiteRT)")
    return edge_deeplab.load(fallback, "litert", threads), "litert (cpu)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="images or folders")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="an _edgetpu.tflite (default: %(default)s)")
    parser.add_argument("--fallback", default="default_int8",
                        help="CPU model when no Edge TPU is present (default: %(default)s, the int8 files)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="coral_out")
    args = parser.parse_args()

    seg, name = open_segmenter(args.model, args.fallback, args.threads)
    out = Path(args.out)
    for path in iter_image_files(args.inputs):
        image = load_image(path)
        result = seg(image)
        save_png(out / f"{path.stem}.png", np.asarray(result.overlay(image)))
        print(f"{path}: {result.model_ms:.1f} ms on {name}, {100 * (result.labels > 0).mean():.1f}% foreground")


if __name__ == "__main__":
    try:
        main()
    except edge_deeplab.EdgeDeeplabError as exc:  # a missing image or model: one line, as the CLI says it
        sys.exit(f"error: {exc}")
