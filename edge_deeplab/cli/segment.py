"""``edge-deeplab segment``: masks, overlays and background effects for images."""
from __future__ import annotations

import time
from pathlib import Path

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import BadImageError


def _render(mode: str, image, segmentation, backdrop):
    from edge_deeplab import effects
    if mode == "mask":
        return segmentation.labels
    if mode == "overlay":
        return effects.overlay(image, segmentation.labels)
    if mode == "blur":
        return effects.blur_background(image, segmentation.alpha)
    return effects.replace_background(image, segmentation.alpha, backdrop)


def _plan(inputs: tuple[str, ...], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(source, target) pairs, and the problems that make some inputs unusable before any work starts."""
    from edge_deeplab.imaging import iter_image_files

    jobs, problems, taken = [], [], {}
    for item in inputs:
        if Path(item).is_dir() and not any(True for _ in iter_image_files([item])):
            problems.append(f"{item}: folder holds no images")
    for source in iter_image_files(inputs):
        if not source.exists():
            problems.append(f"{source}: no such file or folder")
            continue
        target = out_dir / f"{source.stem}.png"
        if target in taken:
            problems.append(f"{source}: skipped, its output {target} would overwrite the one of {taken[target]}")
        elif target.exists() and source.exists() and target.resolve() == source.resolve():
            problems.append(f"{source}: skipped, its output would overwrite the input; choose another --out")
        else:
            taken[target] = source
            jobs.append((source, target))
    return jobs, problems


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
@options.labels
@options.precision
@click.pass_context
def command(ctx, model, inputs, out_dir, mode, background, runtime, threads, input_range, labels,
            precision) -> None:
    """Segment image files or folders with MODEL (an artifact path or `default`).

    Writes OUT/<stem>.png per image: class indices (mask), a colour overlay, or the portrait with its
    background blurred or replaced. A bad image is reported and skipped; the exit code is then 1.
    """
    if mode == "replace" and background is None:
        raise click.UsageError("--mode replace needs --background IMAGE")
    if background is not None and mode != "replace":
        raise click.UsageError("--background is only used with --mode replace")
    from edge_deeplab.imaging import load_image, save_png
    from edge_deeplab.processing import Segmenter
    from edge_deeplab.runtimes import load_runtime

    backdrop = load_image(background) if background else None
    out = Path(out_dir)
    jobs, problems = _plan(inputs, out)
    if not jobs:
        raise BadImageError("; ".join(problems) or "no input images")
    engine = load_runtime(model, runtime, threads, precision=precision)
    segmenter = Segmenter(engine, input_range, labels)
    declared = segmenter.declared
    if input_range and declared and declared.range_name != input_range:
        click.echo(f"note: --input-range {input_range} overrides the model's own {declared.describe()}", err=True)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    failures, written, single = len(problems), 0, len(jobs) + len(problems) == 1
    for source, target in jobs:
        try:
            image = load_image(source)
        except BadImageError as exc:
            if single:
                raise
            click.echo(f"error: {exc} (skipped)", err=True)
            failures += 1
            continue
        start = time.perf_counter()
        tensor = segmenter.preprocess(image)
        model_start = time.perf_counter()
        raw = engine.run(tensor)
        model_ms = (time.perf_counter() - model_start) * 1000.0
        segmentation = segmenter.postprocess(raw, image, with_alpha=mode in ("blur", "replace"))
        result = _render(mode, image, segmentation, backdrop)
        total_ms = (time.perf_counter() - start) * 1000.0
        save_png(target, result)
        written += 1
        click.echo(f"{source} -> {target}  {total_ms:.1f} ms (model {model_ms:.1f} ms)")
    if failures:
        click.echo(f"{failures} input(s) failed, {written} written to {out}", err=True)
        ctx.exit(1)
