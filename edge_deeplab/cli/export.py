"""``edge-deeplab export``: deployable, verified artifacts from a zoo name, config or checkpoint."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edge_deeplab.cli import options
from edge_deeplab.converters.base import INT8_INPUTS, INT8_OUTPUTS, ExportOptions


def parse_formats(text: str) -> list[str]:
    """``"tflite, onnx,tflite"`` -> ``["tflite", "onnx"]``; unknown names fail with the closest match."""
    from edge_deeplab.converters import FORMATS

    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise click.BadParameter("give at least one format, e.g. --format tflite-int8,onnx",
                                 param_hint="--format")
    for name in names:
        FORMATS.get(name)
    return names


@click.command("export")
@click.argument("source")
@click.option("--format", "formats", required=True,
              help="Comma-separated formats: tflite, tflite-fp16, tflite-int8, edgetpu, onnx, openvino, "
                   "openvino-int8, coreml.")
@click.option("--calibration", "calibration_dir", type=click.Path(file_okay=False), default=None,
              help="Representative images (a folder, or a dataset split with images/ and masks/): "
                   "calibrate int8 and verify every artifact on them.")
@click.option("--out", "out_dir", type=click.Path(), callback=options.output_folder,
              default="export_out", show_default=True)
@click.option("--max-miou-drop", type=click.FloatRange(0, 100), default=1.0, show_default=True,
              help="mIoU points a reduced-precision (fp16/int8) artifact may lose before it fails "
                   "(measured on --calibration masks, so it needs a dataset split with masks/).")
@click.option("--int8-input", type=click.Choice(INT8_INPUTS), default="uint8", show_default=True,
              help="Input type of full-integer models (uint8 takes raw RGB pixels).")
@click.option("--int8-output", type=click.Choice(INT8_OUTPUTS), default="classmap", show_default=True,
              help="classmap: argmax fused in, uint8 class ids out; logits: int8 logits out.")
@click.option("--openvino-weights", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True,
              help="Weight storage of the openvino IR (its CPU plugin computes in fp32 either way).")
@click.option("--calibration-size", type=click.IntRange(min=1), default=100, show_default=True,
              help="Images drawn from --calibration.")
@click.option("--parity-images", type=click.IntRange(min=1), default=16, show_default=True,
              help="Of those, images every artifact is re-run on and compared with the source model.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration sample.")
@click.option("--random-weights", is_flag=True,
              help="Allow a SOURCE without trained weights (a zoo entry that ships none, a bare config): "
                   "the artifacts hold a randomly initialized model, for latency work only.")
@options.json_out
@options.verbose
def command(source, formats, calibration_dir, out_dir, max_miou_drop, int8_input, int8_output,
            openvino_weights, calibration_size, parity_images, seed, random_weights, json_path, verbose) -> None:
    """Export SOURCE to one or more formats, verify each against the source model.

    SOURCE is a zoo name (see `edge-deeplab models`), a ModelConfig file (.json/.yaml), a training
    checkpoint folder, or .h5 weights with a config beside them. With --format edgetpu it may also be any
    full-integer .tflite or a shipped int8 file by name (portrait_int8), reported on (and compiled, where
    edgetpu_compiler runs) as it is. Each artifact gets a manifest
    `<artifact>.json`; nothing is left behind by a failed export. Formats are independent: one that
    fails does not stop the others, and the command then exits with 1. Status per format: ok (verified
    against the source here), unverified (written, but this machine cannot run it), skipped (a step
    could not run here), failed (nothing written).
    """
    from edge_deeplab._optional import quiet_tensorflow
    from edge_deeplab.atomic import atomic_write_text
    from edge_deeplab.calibration import load_calibration
    from edge_deeplab.calibration.sampling import find_samples
    from edge_deeplab.converters.pipeline import export, make_converters, untrained_message
    from edge_deeplab.errors import UntrainedModelError
    from edge_deeplab.sources import resolve_source, shipped_tflite

    export_options = ExportOptions(int8_input=int8_input, int8_output=int8_output,
                                   openvino_weights=openvino_weights, calibration_size=calibration_size,
                                   parity_images=parity_images, seed=seed, max_miou_drop=max_miou_drop)
    names = parse_formats(formats)
    shipped = shipped_tflite(source)  # portrait_int8 -> its packaged .tflite, as segment reads it
    if shipped is not None or source.lower().endswith(".tflite"):
        _export_tflite(source, shipped, names, out_dir, json_path)
        return
    converters = make_converters(names, export_options)
    if calibration_dir is not None:
        find_samples(calibration_dir)  # an empty or missing folder fails here, before the model is built
    quiet_tensorflow("export", verbose)
    model_source = resolve_source(source)
    if model_source.random_init:
        if not random_weights:
            raise UntrainedModelError(untrained_message(model_source))
        click.echo(f"note: no trained weights for {model_source.name!r} (--random-weights): exporting a "
                   "randomly initialized model (manifests say \"weights\": null)")
    calibration = None
    if calibration_dir is not None:
        # Masks are checked against the model's classes here, before the out folder or any artifact exists.
        calibration = load_calibration(calibration_dir, model_source.config.input_size, calibration_size, seed,
                                       model_source.config.num_classes)
        click.echo(f"calibration: {len(calibration)} images from {calibration_dir} (seed {seed})")
    results = export(model_source, converters, out_dir, calibration, log=click.echo,
                     allow_random_weights=random_weights)
    if json_path:
        atomic_write_text(json_path, json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        reasons = "; ".join(f"{r.format}: {r.error or r.reason}" for r in failed)
        click.echo(f"error: {len(failed)} of {len(results)} formats failed ({reasons})", err=True)
        sys.exit(1)


def _export_tflite(source: str, shipped: Path | None, names: list[str], out_dir: str,
                   json_path: str | None) -> None:
    """An existing .tflite (``shipped``: the packaged file a name like ``portrait_int8`` gave): only the
    Edge TPU takes it as it is (its report, and the compiler where it runs)."""
    from edge_deeplab.atomic import atomic_write_text
    from edge_deeplab.converters.edgetpu import export_tflite
    from edge_deeplab.errors import ConfigError
    from edge_deeplab.zoo import split_int8

    if names != ["edgetpu"]:
        if shipped is not None:  # the int8 file holds no Keras graph: the others start from its zoo model
            others = ",".join(name for name in names if name != "edgetpu")
            calibrate = " --calibration DIR" if "int8" in others else ""  # post-training, from float weights
            raise ConfigError(f"{source!r} is the shipped int8 file {shipped.name}: it exports only to edgetpu "
                              f"(asked: {', '.join(names)}); for {others} export its Keras source: "
                              f"edge-deeplab export {split_int8(source)[0]} --format {others}{calibrate}")
        raise ConfigError(f"a .tflite SOURCE exports only to edgetpu (asked: {', '.join(names)}); the other "
                          "formats convert from a zoo name, config or checkpoint")
    result = export_tflite(shipped or source, out_dir)
    click.echo(f"edgetpu: {result.status} -> {result.path} ({result.size_mb:.2f} MB) ({result.reason})")
    click.echo(f"  {result.summary}")
    if json_path:
        atomic_write_text(json_path, json.dumps([result.to_dict()], indent=2) + "\n")
