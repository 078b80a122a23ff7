"""Every export format of one zoo model: file size, p50/p90 latency on this CPU, and mIoU on a dataset.

    python benchmarks/export_formats.py [--source portrait] [--threads 2] [--runs 60] [--rounds 5]

One run: export every format (calibrated on the train split), load every artifact that can run here,
then time them in alternating rounds (each round times every model in turn, so machine load hits all
alike; p50/p90 over all rounds' samples), then evaluate each on the val split with the ``evaluate``
pipeline. The Keras source model is evaluated the same way (same pre/post-processing) for reference.
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from results_io import json_option, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = SHARED / "data" / "portrait"


def export_all(source_name: str, formats: list[str], calibration_dir: Path, out: Path, max_miou_drop: float):
    from edge_deeplab.calibration import load_calibration
    from edge_deeplab.converters.base import ExportOptions
    from edge_deeplab.converters.pipeline import export, make_converters
    from edge_deeplab.sources import resolve_source

    source = resolve_source(source_name)
    calibration = load_calibration(calibration_dir, source.config.input_size, size=100, seed=0,
                                   num_classes=source.config.num_classes)
    converters = make_converters(formats, ExportOptions(max_miou_drop=max_miou_drop))
    # A zoo entry without trained weights is measured for latency (the table says "random init").
    return source, export(source, converters, out, calibration, log=lambda line: print(line, file=sys.stderr),
                          allow_random_weights=True)


def runnable(result) -> str | None:
    """Why the artifact cannot be timed here, or None."""
    from edge_deeplab.runtimes import RUNTIMES, runtime_for

    if result.status == "failed" or result.path is None:
        return "export failed"
    if result.format == "edgetpu" and not result.path.name.endswith("_edgetpu.tflite"):
        return "not compiled (no edgetpu_compiler here); its CPU int8 twin is the tflite-int8 row"
    return RUNTIMES.load(runtime_for(result.path).name).unavailable_reason()


def time_in_rounds(paths: list[Path], threads: int, runs: int, rounds: int) -> dict[Path, np.ndarray]:
    from edge_deeplab.runtimes import load_runtime
    from edge_deeplab.runtimes.profiler import sample_input, time_invokes

    engines = {}
    for path in paths:
        engine = load_runtime(path, "auto", threads)
        engine.set_input(sample_input(engine))
        time_invokes(engine, 10, 0)  # warm-up
        engines[path] = engine
    samples: dict[Path, list[float]] = {path: [] for path in paths}
    for _ in range(rounds):
        for path, engine in engines.items():
            samples[path] += time_invokes(engine, 2, runs // rounds)
    return {path: np.asarray(values) for path, values in samples.items()}


def keras_miou(source, data_dir: Path) -> tuple[float, float]:
    """The source model through the same pre/post-processing as ``evaluate`` (float input, logits out)."""
    from edge_deeplab.datasets import check_masks, list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.metrics import SegmentationMetrics
    from edge_deeplab.processing import InputSpec, OutputSpec
    from edge_deeplab.runtimes.base import TensorInfo

    height, width = source.config.input_size
    classes = source.config.num_classes
    spec_in = InputSpec.from_tensor(TensorInfo("image", (1, height, width, 3), np.dtype(np.float32)), "0,1")
    spec_out = OutputSpec.from_tensor(TensorInfo("logits", (1, height, width, classes), np.dtype(np.float32)),
                                      declared="logits")
    metrics = SegmentationMetrics(classes)
    check_masks(data_dir, classes)
    for pair in list_pairs(data_dir):
        image = load_image(pair.image)
        logits = source.model(spec_in.prepare(image), training=False).numpy()
        metrics.update(spec_out.decode(logits, image.shape[1], image.shape[0]).labels, load_mask(pair.mask))
    iou = metrics.iou()
    return metrics.miou(), float(iou[1]) if len(iou) > 1 else float("nan")


def main() -> None:
    from edge_deeplab.evaluation import evaluate
    from edge_deeplab.converters import FORMATS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="portrait")
    parser.add_argument("--formats", default=",".join(FORMATS.names()))
    parser.add_argument("--calibration", type=Path, default=DATA / "train")
    parser.add_argument("--val", type=Path, default=DATA / "val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="keep the artifacts here (default: a temp dir)")
    parser.add_argument("--max-miou-drop", type=float, default=1.0,
                        help="as for `export`: raise it to time quantized artifacts that lose more")
    json_option(parser, __file__)
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="export_formats."))
    source, results = export_all(args.source, args.formats.split(","), args.calibration, out, args.max_miou_drop)
    reasons = {r.format: runnable(r) for r in results}
    timed = [r for r in results if reasons[r.format] is None]
    latency = time_in_rounds([r.path for r in timed], args.threads, args.runs, args.rounds)
    quality = {r.format: evaluate(str(r.path), str(args.val), threads=args.threads, show_progress=False)
               for r in timed}
    source_miou, source_person = keras_miou(source, args.val)

    weights = "random init (no trained weights shipped)" if source.random_init else str(source.weights)
    print(f"\nsource: `{args.source}` ({weights}); {args.threads} threads; {args.runs} timed runs in "
          f"{args.rounds} alternating rounds; calibration: 100 images of {args.calibration.name}; "
          f"--max-miou-drop {args.max_miou_drop:g}; "
          f"mIoU on {args.val} ({len(next(iter(quality.values()))['iou']) if quality else '-'} classes)\n")
    print("| format | artifact | size MB | runtime | p50 ms | p90 ms | mIoU | person IoU | parity: pixels agree | "
          "parity: mIoU delta (pts, artifact - source; negative = lost) |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    print(f"| keras (source) | - | - | TensorFlow | - | - | {source_miou:.4f} | {source_person:.4f} | - | - |")
    report = {"source": args.source, "weights": weights, "threads": args.threads, "val": str(args.val),
              "source_miou": source_miou, "source_person_iou": source_person, "rows": []}
    for r in results:
        parity = r.parity
        agree = f"{100 * parity.pixel_agreement:.2f}%" if parity else "-"
        delta = f"{parity.miou_delta:+.2f}" if parity else "-"
        size = f"{r.size_mb:.2f}" if r.size_mb else "-"
        name = r.path.name if r.path else "-"
        row = {"format": r.format, "artifact": name, "size_mb": r.size_mb, "status": r.status,
               "pixel_agreement": parity.pixel_agreement if parity else None,
               "miou_delta": parity.miou_delta if parity else None, "not_run": reasons[r.format]}
        report["rows"].append(row)
        if reasons[r.format] is not None:
            print(f"| {r.format} | {name} | {size} | not run: {reasons[r.format]} | - | - | - | - | {agree} | {delta} |")
            continue
        samples, q = latency[r.path], quality[r.format]
        person = q["iou"][1] if len(q["iou"]) > 1 else None
        row.update(runtime=q["runtime"], p50_ms=float(np.percentile(samples, 50)),
                   p90_ms=float(np.percentile(samples, 90)), miou=q["miou"], person_iou=person)
        print(f"| {r.format} | {name} | {size} | {q['runtime']} | {np.percentile(samples, 50):.2f} | "
              f"{np.percentile(samples, 90):.2f} | {q['miou']:.4f} | {person:.4f} | {agree} | {delta} |")
    print(f"\nartifacts and manifests: {out}")
    write_json(args.json, report)


if __name__ == "__main__":
    main()
