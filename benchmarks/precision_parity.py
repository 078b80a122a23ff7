"""Pixel agreement of ONNX Runtime and OpenVINO (f32, and the CPU plugin's own default) with TFLite fp32,
on portrait photos, for one source model exported to the three formats in this run.

Each photo is segmented at its own resolution through the same pre/post-processing as ``segment``; a
pixel agrees when its class equals the TFLite fp32 model's. OpenVINO's CPU plugin infers in bf16 where the
CPU has AVX-512 BF16 / AMX, which is why the runtime asks for f32 unless told otherwise. The IR keeps fp32
weights so that only the compute precision differs.

    python benchmarks/precision_parity.py [portrait] [--data ../shared/data/portrait/val] [--images 150]

Writes benchmarks/results/precision_parity.json and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "precision_parity.json"
CANDIDATES = (  # (label, format, runtime, precision)
    ("ONNX Runtime", "onnx", "onnxruntime", None),
    ("OpenVINO f32", "openvino", "openvino", "f32"),
    ("OpenVINO plugin default", "openvino", "openvino", "default"),
)


def export_formats(source: str, out_dir: Path) -> dict[str, Path]:
    """Export ``source`` to tflite, onnx and openvino in ``out_dir``; {format: artifact}."""
    from edge_deeplab.converters.base import ExportOptions
    from edge_deeplab.converters.pipeline import export, make_converters
    from edge_deeplab.sources import resolve_source

    # fp32 weights in the IR: fp16 storage alone moves ~0.3% of the default model's pixels, which would
    # hide what this measures (the engine's compute precision).
    options = ExportOptions(parity_images=4, openvino_weights="fp32")
    converters = make_converters(["tflite", "onnx", "openvino"], options)
    results = export(resolve_source(source), converters, out_dir, None)
    failed = [f"{r.format}: {r.reason}" for r in results if r.path is None]
    if failed:
        raise RuntimeError("export failed: " + "; ".join(failed))
    return {r.format: r.path for r in results}


def agreement(artifacts: dict[str, Path], images: list[np.ndarray]) -> list[dict]:
    """One row per candidate: share of pixels whose class equals TFLite fp32's, over all ``images``."""
    from edge_deeplab.processing import Segmenter
    from edge_deeplab.runtimes import load_runtime

    reference = Segmenter(load_runtime(artifacts["tflite"], "litert"))
    expected = [reference(image).labels for image in images]
    rows = []
    for label, fmt, runtime, precision in CANDIDATES:
        engine = load_runtime(artifacts[fmt], runtime, precision=precision)
        segmenter = Segmenter(engine)
        same = sum(int((segmenter(image).labels == want).sum()) for image, want in zip(images, expected))
        total = sum(want.size for want in expected)
        rows.append({"candidate": label, "runtime": runtime, "precision": engine.precision or "fp32 (model)",
                     "pixel_agreement": round(same / total, 6), "pixels": total, "images": len(images)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| vs TFLite fp32 | ran in | pixel agreement | images |", "|---|---|---:|---:|"]
    lines += [f"| {r['candidate']} | {r['precision']} | {100 * r['pixel_agreement']:.3f}% | {r['images']} |"
              for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="portrait")
    parser.add_argument("--data", default="../shared/data/portrait/val")
    parser.add_argument("--images", type=int, default=150)
    args = parser.parse_args()
    from edge_deeplab.datasets import list_pairs
    from edge_deeplab.errors import EdgeDeeplabError
    from edge_deeplab.imaging import load_image
    try:
        images = [load_image(pair.image) for pair in list_pairs(args.data)[:args.images]]
        with tempfile.TemporaryDirectory() as folder:
            rows = agreement(export_formats(args.source, Path(folder)), images)
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"source": args.source, "data": args.data, "rows": rows}, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
