"""Options shared by several commands, so each is declared once."""
from __future__ import annotations

import click

runtime = click.option("--runtime", default="auto", show_default=True,
                       help="Inference engine (see `edge-deeplab models`); auto picks by file suffix.")
threads = click.option("--threads", type=click.IntRange(min=1), default=None,
                       help="CPU threads for the engine (default: the engine's own).")
input_range = click.option("--input-range", type=click.Choice(["0,1", "-1,1", "0,255"]), default=None,
                           help="Input normalization of a float model without metadata (default 0,1).")
json_out = click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                        help="Also write the results as JSON to this file.")
