"""``edge-deeplab evaluate``: mIoU, boundary IoU and latency on a dataset folder."""
from __future__ import annotations

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError


@click.command("evaluate")
@click.argument("model")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@options.runtime
@options.threads
@options.input_range
@options.json_out
def command(model, data_dir, runtime, threads, input_range, json_path) -> None:
    """Evaluate MODEL on DATA (images/ + masks/)."""
    raise EdgeDeeplabError("evaluate is not available in this version yet (runtimes land with issue #3)")
