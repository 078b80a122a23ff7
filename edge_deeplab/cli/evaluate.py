"""``edge-deeplab evaluate``: mIoU, boundary IoU and latency on a dataset folder."""
from __future__ import annotations

import json
import sys

import click

from edge_deeplab.cli import options
from edge_deeplab.evaluation import evaluate


@click.command("evaluate")
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@options.runtime
@options.threads
@options.input_range
@options.labels
@options.precision
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Score a person/background model's masks with their edges snapped to the photo's, as "
                   "`segment` writes a photo's mask; --no-refine: the model's own masks.")
@options.json_out
def command(model, data_dir, runtime, threads, input_range, labels, precision, refine, json_path) -> None:
    """Evaluate MODEL (an artifact path, `default` or a zoo name such as `portrait`; `default_int8`,
    `portrait_int8`: the shipped int8 files) on DATA (images/ + masks/): mIoU, per-class IoU, pixel
    accuracy, boundary IoU, model latency per image. Unreadable pairs are reported and skipped."""
    result = evaluate(model, data_dir, runtime, threads, input_range, labels=labels, precision=precision,
                      refine=refine)
    for problem in result.get("skipped", []):
        click.echo(f"error: {problem} (skipped)", err=True)
    names = result.get("labels") or [str(i) for i in range(len(result["iou"]))]
    latency = result["latency_ms"]
    on = result["runtime"] + (f" ({result['precision']})" if result.get("precision") else "")
    click.echo(f"model {result['model']} on {on}, {result['images']} images"
               + (", edges refined" if result["refine"] else ""))
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
