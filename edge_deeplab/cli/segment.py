"""``edge-deeplab segment``: masks, overlays and background effects for images."""
from __future__ import annotations

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError


@click.command("segment")
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="segment_out", show_default=True)
@click.option("--mode", type=click.Choice(["mask", "overlay", "blur", "replace"]), default="mask",
              show_default=True)
@click.option("--background", type=click.Path(dir_okay=False), default=None,
              help="Background image for --mode replace.")
@options.runtime
@options.threads
@options.input_range
def command(model, inputs, out_dir, mode, background, runtime, threads, input_range) -> None:
    """Segment image files or folders with MODEL (an artifact path or `default`)."""
    raise EdgeDeeplabError("segment is not available in this version yet (runtimes land with issue #3)")
