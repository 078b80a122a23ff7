"""``edge-deeplab train``: float training, then optional quantization-aware fine-tuning."""
from __future__ import annotations

import click


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help='Training config (.yaml/.json): {"model": <ModelConfig or zoo name>, "train": {...}}.')
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--val", "val_dir", type=click.Path(file_okay=False), default=None,
              help="Validation folder: mIoU and boundary IoU every epoch; the best epoch is kept.")
@click.option("--qat", is_flag=True, help="Quantization-aware fine-tuning after float training.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/train", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
def command(config_path, data_dir, val_dir, qat, out_dir, resume) -> None:
    """Train a model described by a config file on DATA (images/ + masks/)."""
    from edge_deeplab.train.config import TrainingSpec

    spec = TrainingSpec.load(config_path)  # config errors before TensorFlow loads
    from edge_deeplab.train.trainer import Trainer, format_summary
    summary = Trainer(spec, data_dir, out_dir, val_dir).run(qat=qat, resume=resume)
    click.echo(format_summary(summary))
