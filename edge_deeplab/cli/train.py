"""``edge-deeplab train``: float training, then optional quantization-aware fine-tuning."""
from __future__ import annotations

import click

from edge_deeplab.errors import EdgeDeeplabError


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--val", "val_dir", type=click.Path(file_okay=False), default=None)
@click.option("--qat", is_flag=True, help="Quantization-aware fine-tuning after float training.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/train", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
def command(config_path, data_dir, val_dir, qat, out_dir, resume) -> None:
    """Train a model described by a config file on DATA (images/ + masks/)."""
    raise EdgeDeeplabError("train is not available in this version yet (the trainer lands with issue #5)")
