"""Options shared by several commands, so each is declared once."""
from __future__ import annotations

import click

runtime = click.option("--runtime", default="auto", show_default=True,
                       help="Inference engine (see `edge-deeplab models`); auto picks by file suffix.")
threads = click.option("--threads", type=click.IntRange(min=1), default=None,
                       help="CPU threads for the engine (default: the engine's own).")
input_range = click.option("--input-range", type=click.Choice(["0,1", "-1,1", "0,255"]), default=None,
                           help="Input normalization: overrides the model's own metadata (ours, then the standard "
                                "TFLite metadata); default for a float model without any: 0,1.")
def _checked_output(check: str):
    """A click callback running ``edge_deeplab.cli.outputs.<check>`` on the option's path: an output is
    checked before the work, not after (imported on use: the CLI starts without it)."""
    def callback(ctx, param, value):
        if value is not None:
            from pathlib import Path

            from edge_deeplab.cli import outputs
            getattr(outputs, check)(Path(value), param.opts[0])
        return value
    return callback


output_file = _checked_output("check_output_file")  # --json, --csv, --plot
output_folder = _checked_output("check_output_folder")  # --out


json_out = click.option("--json", "json_path", type=click.Path(), default=None, callback=output_file,
                        help="Also write the results as JSON to this file.")


def _labels_file(ctx, param, value):
    if value is None:
        return None
    from edge_deeplab.processing import read_labels
    return read_labels(value)


labels = click.option("--labels", "labels", type=click.Path(dir_okay=False), default=None, callback=_labels_file,
                      help="Class names, one per line (line i names class i), for a model that carries "
                           "none; overrides the model's own.")
precision = click.option("--precision", default=None,
                         help="Inference precision for engines that offer a choice (OpenVINO: f32 (the "
                              "default), bf16, f16, or default = the plugin's own choice).")
verbose = click.option("--verbose", is_flag=True,
                       help="Show TensorFlow's and absl's own log output (CUDA probing, retracing warnings).")
