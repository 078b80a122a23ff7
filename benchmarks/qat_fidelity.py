"""Does the QAT-wrapped model compute what the float model does? Argmax agreement before fine-tuning.

    python benchmarks/qat_fidelity.py --run runs/camvid --data ../shared/data/camvid [--images 16]

A trained run's float weights are wrapped for QAT (``models/quantize.py``), activation ranges are
calibrated as the trainer does before QAT (30 training batches, ``train/qat.py``), and the wrapped
model's per-pixel argmax on ``--images`` val images is compared with the float model's. Rows switch
off our corrections of tensorflow-model-optimization's defaults one at a time: what tfmot alone gives.
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np
from results_io import json_option, write_json


def images(folder: Path, count: int, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    from edge_deeplab.datasets import list_pairs
    height, width = size
    return np.stack([np.asarray(Image.open(p.image).convert("RGB").resize((width, height), Image.BILINEAR),
                                np.float32) / 255 for p in list_pairs(folder)[:count]])


def agreement(model, train: np.ndarray, val: np.ndarray) -> float:
    from edge_deeplab._optional import tensorflow
    from edge_deeplab.models import quantize
    from edge_deeplab.train.qat import calibrate_ranges

    tf = tensorflow()
    qat = quantize.qat_model(model)
    batches = tf.data.Dataset.from_tensor_slices((train, np.zeros(len(train)))).batch(8)
    calibrate_ranges(qat, batches, tf.distribute.get_strategy(), tf)
    float_labels = model.predict(val, batch_size=4, verbose=0).argmax(-1)
    return float((qat.predict(val, batch_size=4, verbose=0).argmax(-1) == float_labels).mean())


@contextlib.contextmanager
def tfmot_concat_order():
    from edge_deeplab.models import quantize
    saved = quantize._inputs_in_call_order, quantize._check_input_order
    quantize._inputs_in_call_order, quantize._check_input_order = contextlib.nullcontext, lambda *_: None
    try:
        yield
    finally:
        quantize._inputs_in_call_order, quantize._check_input_order = saved


@contextlib.contextmanager
def tfmot_shared_depthwise_range():
    from edge_deeplab.models import quantize
    saved = quantize.QuantizeScheme.get_quantize_registry
    quantize.QuantizeScheme.get_quantize_registry = lambda self: quantize._default_8bit.Default8BitQuantizeRegistry()
    try:
        yield
    finally:
        quantize.QuantizeScheme.get_quantize_registry = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training output folder (best.weights.h5 + model.json)")
    parser.add_argument("--data", required=True, help="folder with train/ and val/")
    parser.add_argument("--images", type=int, default=16)
    json_option(parser, __file__)
    args = parser.parse_args()

    from edge_deeplab.sources import resolve_source
    source = resolve_source(str(Path(args.run) / "best.weights.h5"))
    size = tuple(source.model.input_shape[1:3])
    train = images(Path(args.data) / "train", 240, size)  # 30 batches of 8, the trainer's calibration
    val = images(Path(args.data) / "val", args.images, size)
    variants = [("edge-deeplab (both corrections)", contextlib.nullcontext),
                ("tfmot's depthwise range (one for all channels)", tfmot_shared_depthwise_range),
                ("tfmot's concat input order", tfmot_concat_order)]
    print(f"\n{source.config.backbone} {source.config.head}, {len(val)} val images of {Path(args.data).name}\n")
    print("| QAT wrapping | argmax agreement with float |\n|---|---:|")
    rows = []
    for name, variant in variants:
        with variant():
            rows.append({"wrapping": name, "argmax_agreement": float(agreement(source.model, train, val))})
            print(f"| {name} | {100 * rows[-1]['argmax_agreement']:.1f}% |", flush=True)
    write_json(args.json, {"run": args.run, "data": args.data, "images": len(val), "rows": rows})


if __name__ == "__main__":
    main()
