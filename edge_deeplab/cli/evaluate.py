"""``edge-deeplab evaluate``: mIoU, boundary IoU and latency on a dataset folder."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import BadImageError, DatasetError


def progress(items: list, label: str) -> Iterator:
    """tqdm on stderr if installed, else a plain counter on stderr (only for terminals, every 10%)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _counter(items, label)
    return iter(tqdm(items, desc=label, unit="img", file=sys.stderr, leave=False, dynamic_ncols=True,
                     disable=None))  # None: off when stderr is not a terminal


def _counter(items: list, label: str) -> Iterator:
    total, step = len(items), max(1, len(items) // 10)
    for i, item in enumerate(items, 1):
        yield item
        if sys.stderr.isatty() and (i % step == 0 or i == total):
            sys.stderr.write(f"\r{label}: {i}/{total}")
            sys.stderr.flush()
    if sys.stderr.isatty():
        sys.stderr.write("\n")


def evaluate(model: str, data_dir: str, runtime: str = "auto", threads: int | None = None,
             input_range: str | None = None, show_progress: bool = True, *, labels: list[str] | None = None,
             precision: str | None = None) -> dict:
    """The ``evaluate`` JSON: segment every image of ``data_dir`` and compare with its mask.

    ``labels`` name the classes of a model that carries none; ``precision``: see ``load_runtime``.
    """
    from edge_deeplab.datasets import list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.metrics import SegmentationMetrics
    from edge_deeplab.processing import Segmenter
    from edge_deeplab.runtimes import load_runtime
    from edge_deeplab.runtimes.profiler import LatencyStats

    pairs = list_pairs(data_dir)
    engine = load_runtime(model, runtime, threads, precision=precision)
    segmenter = Segmenter(engine, input_range, labels)
    metrics = SegmentationMetrics(num_classes=segmenter.num_classes or 2)
    latencies, skipped = [], []
    items: Iterable = progress(pairs, "evaluate") if show_progress else pairs
    for pair in items:
        try:
            image, mask = load_image(pair.image), load_mask(pair.mask)
            if mask.shape != image.shape[:2]:
                raise DatasetError(f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                                   f"{image.shape[1]}x{image.shape[0]}")
        except (BadImageError, DatasetError) as exc:
            skipped.append(str(exc))
            continue
        tensor = segmenter.preprocess(image)
        start = time.perf_counter()
        raw = engine.run(tensor)
        latencies.append((time.perf_counter() - start) * 1000.0)
        metrics.update(segmenter.postprocess(raw, image).labels, mask)
    if not latencies:
        raise DatasetError(f"no usable image/mask pair in {data_dir}: {skipped[0] if skipped else ''}")
    result = {"model": str(model), "runtime": engine.name, "images": metrics.images, **metrics.summary(),
              "latency_ms": asdict(LatencyStats.from_samples(latencies))}
    if skipped:
        result["skipped"] = skipped
    if segmenter.labels:
        result["labels"] = list(segmenter.labels)
    if engine.precision:
        result["precision"] = engine.precision
    return result


@click.command("evaluate")
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@options.runtime
@options.threads
@options.input_range
@options.labels
@options.precision
@options.json_out
def command(model, data_dir, runtime, threads, input_range, labels, precision, json_path) -> None:
    """Evaluate MODEL on DATA (images/ + masks/): mIoU, per-class IoU, pixel accuracy, boundary IoU,
    model latency per image. Unreadable pairs are reported and skipped."""
    result = evaluate(model, data_dir, runtime, threads, input_range, labels=labels, precision=precision)
    for problem in result.get("skipped", []):
        click.echo(f"error: {problem} (skipped)", err=True)
    names = result.get("labels") or [str(i) for i in range(len(result["iou"]))]
    latency = result["latency_ms"]
    on = result["runtime"] + (f" ({result['precision']})" if result.get("precision") else "")
    click.echo(f"model {result['model']} on {on}, {result['images']} images")
    click.echo(f"  mIoU {_pct(result['miou'])}  pixel accuracy {_pct(result['pixel_accuracy'])}  "
               f"boundary IoU {_pct(result['boundary_iou'])}")
    for name, iou in zip(names, result["iou"]):
        click.echo(f"  IoU {name:<16} {_pct(iou)}")
    click.echo(f"  latency p50 {latency['p50']:.2f} ms  p90 {latency['p90']:.2f} ms  mean {latency['mean']:.2f} ms")
    if json_path:
        from edge_deeplab.atomic import atomic_write_text
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    if result.get("skipped"):
        sys.exit(1)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
