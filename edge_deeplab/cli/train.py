"""``edge-deeplab train``: float training, then optional quantization-aware fine-tuning."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from edge_deeplab.cli import options, terminated
from edge_deeplab.progress import end_bar_lines


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help='Training config (.yaml/.json): {"model": <ModelConfig or zoo name>, "train": {...}}.')
@click.option("--data", "data_dir", required=True, multiple=True, type=click.Path(file_okay=False),
              help="Training folder (images/ + masks/); repeat to combine several. A folder with "
                   "images/ only is labelled by the config's model-file teacher.")
@click.option("--val", "val_dir", type=click.Path(file_okay=False), multiple=True,
              help="Validation folder: mIoU and boundary IoU every epoch; the best epoch is kept. "
                   "Repeat to rank epochs by the mean over several sets.")
@click.option("--qat", is_flag=True, help="Quantization-aware fine-tuning after float training, for the "
                                          "config's qat_epochs (default 3; qat_epochs: 0 with --qat is an error).")
@click.option("--out", "out_dir", type=click.Path(), callback=options.output_folder,
              default="runs/train", show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out. The config must "
                                             "match the run's config.yaml, except a longer epochs/qat_epochs.")
@options.verbose
def command(config_path, data_dir, val_dir, qat, out_dir, resume, verbose) -> None:
    """Train a model described by a config file on DATA (images/ + masks/).

    Relative paths inside the config (init_weights, teacher) are relative to the config file's folder.
    """
    from edge_deeplab._optional import TRAIN, check_installed, quiet_tensorflow
    from edge_deeplab.train.config import TrainingSpec, check_run

    spec = TrainingSpec.load(config_path)  # config errors before TensorFlow loads
    check_run(spec, out_dir, qat, resume)  # Trainer.run checks again, for API callers
    check_installed(TRAIN, "train")
    quiet_tensorflow("training", verbose)
    from edge_deeplab.train.trainer import Trainer, format_summary
    try:
        summary = Trainer(spec, list(data_dir), out_dir, list(val_dir) or None).run(qat=qat, resume=resume)
    except KeyboardInterrupt:
        _interrupted(out_dir)
        raise
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:  # the CLI's SIGTERM handler (cli/__init__.py)
            _interrupted(out_dir)
        raise
    except Exception:
        if not terminated():
            raise
        _interrupted(out_dir)  # SIGTERM's SystemExit, turned into another error on its way out
        sys.exit(128 + signal.SIGTERM)
    click.echo(format_summary(summary, calibration=data_dir[0]))


def _interrupted(out_dir: str) -> None:
    """Say what a Ctrl-C or SIGTERM left: the trainer's last checkpoint (state/float or state/qat)."""
    kept = any((Path(out_dir) / "state" / phase / "checkpoint").is_file() for phase in ("float", "qat"))
    end_bar_lines()
    click.echo(f"interrupted; the last checkpoint in {out_dir} is kept: continue with --resume" if kept else
               "interrupted before the first checkpoint; nothing to resume", err=True)
