"""``edge-deeplab benchmark``: latency of one or more models on one or more runtimes."""
from __future__ import annotations

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError


@click.command("benchmark")
@click.argument("models", nargs=-1, required=True)
@options.runtime
@options.threads
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--profile-ops", is_flag=True, help="Per-op timing where the engine exposes it.")
@options.json_out
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None)
def command(models, runtime, threads, warmup, runs, profile_ops, json_path, csv_path, plot_path) -> None:
    """Time MODELS (artifact paths or `default`): load, warm-up, percentiles, peak memory."""
    raise EdgeDeeplabError("benchmark is not available in this version yet (runtimes land with issue #3)")
