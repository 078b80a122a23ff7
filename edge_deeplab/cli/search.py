"""``edge-deeplab search``: NAS-lite under a latency budget."""
from __future__ import annotations

import click

from edge_deeplab.errors import EdgeDeeplabError


@click.command("search")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), required=True)
@click.option("--runtime", required=True, help="Runtime to measure latency on: litert, openvino, onnxruntime, edgetpu.")
@click.option("--trials", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/search", show_default=True)
@click.option("--resume", is_flag=True)
def command(data_dir, budget_ms, runtime, trials, out_dir, resume) -> None:
    """Search backbone, width, stride, head and input size for the best model under a latency budget."""
    raise EdgeDeeplabError("search is not available in this version yet (NAS-lite lands with issue #6)")
