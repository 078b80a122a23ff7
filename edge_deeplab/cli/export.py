"""``edge-deeplab export``: deployable, verified artifacts from a zoo name, config or checkpoint."""
from __future__ import annotations

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError


@click.command("export")
@click.argument("source")
@click.option("--format", "formats", required=True, help="Comma-separated formats (see `models`).")
@click.option("--calibration", "calibration_dir", type=click.Path(file_okay=False), default=None)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="export_out", show_default=True)
@options.json_out
def command(source, formats, calibration_dir, out_dir, json_path) -> None:
    """Export SOURCE to one or more formats, verify each against the source model."""
    raise EdgeDeeplabError("export is not available in this version yet (converters land with issue #4)")
