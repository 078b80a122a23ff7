"""``edge-deeplab segment``: masks, overlays and background effects for images and videos."""
from __future__ import annotations

import time
from pathlib import Path

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import BadImageError


def _render(mode: str, image, result, backdrop):
    """What ``mode`` writes for one image or frame, from its :class:`edge_deeplab.api.Result`."""
    import numpy as np
    if mode == "mask":
        return result.labels
    if mode == "overlay":
        return np.asarray(result.overlay(image))
    if mode == "blur":
        return np.asarray(result.blur(image))
    return np.asarray(result.replace(image, backdrop))


def _target(source: Path, out_dir: Path, mode: str) -> Path:
    from edge_deeplab.video import is_video
    if not is_video(source):
        return out_dir / f"{source.stem}.png"
    return out_dir / source.stem if mode == "mask" else out_dir / f"{source.stem}.mp4"


def _plan(inputs: tuple[str, ...], out_dir: Path, mode: str) -> tuple[list[tuple[Path, Path]], list[str]]:
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
        target = _target(source, out_dir, mode)
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
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Smooth the segmentation over a video's frames (no effect on still images).")
@options.runtime
@options.threads
@options.input_range
@options.labels
@options.precision
@click.pass_context
def command(ctx, model, inputs, out_dir, mode, background, smooth, runtime, threads, input_range, labels,
            precision) -> None:
    """Segment images, folders of images and videos (.mp4 .mov .mkv .avi .webm) with MODEL (an artifact
    path, `default` or a zoo name such as `portrait`).

    Writes OUT/<stem>.png per image: class indices (mask), a colour overlay, or the portrait with its
    background blurred or replaced. A video gives OUT/<stem>/000000.png... (mask) or OUT/<stem>.mp4.
    A bad input is reported and skipped; the exit code is then 1.
    """
    if mode == "replace" and background is None:
        raise click.UsageError("--mode replace needs --background IMAGE")
    if background is not None and mode != "replace":
        raise click.UsageError("--background is only used with --mode replace")
    from edge_deeplab.api import load
    from edge_deeplab.imaging import load_image, save_png
    from edge_deeplab.video import is_video

    backdrop = load_image(background) if background else None
    out = Path(out_dir)
    jobs, problems = _plan(inputs, out, mode)
    if not jobs:
        raise BadImageError("; ".join(problems) or "no input images")
    segmenter = load(model, runtime, threads, input_range=input_range, labels=labels, precision=precision)
    declared = segmenter.core.declared
    if input_range and declared and declared.range_name != input_range:
        click.echo(f"note: --input-range {input_range} overrides the model's own {declared.describe()}", err=True)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    failures, written, single = len(problems), 0, len(jobs) + len(problems) == 1
    for source, target in jobs:
        if is_video(source):
            try:
                _video(segmenter, source, target, mode, backdrop, smooth)
                written += 1
            except BadImageError as exc:
                if single:
                    raise
                click.echo(f"error: {exc} (skipped)", err=True)
                failures += 1
            continue
        try:
            image = load_image(source)
        except BadImageError as exc:
            if single:
                raise
            click.echo(f"error: {exc} (skipped)", err=True)
            failures += 1
            continue
        start = time.perf_counter()
        result = segmenter(image)
        rendered = _render(mode, image, result, backdrop)
        total_ms = (time.perf_counter() - start) * 1000.0
        save_png(target, rendered)
        written += 1
        click.echo(f"{source} -> {target}  {total_ms:.1f} ms (model {result.model_ms:.1f} ms)")
    if failures:
        click.echo(f"{failures} input(s) failed, {written} written to {out}", err=True)
        ctx.exit(1)


def _video(segmenter, source: Path, target: Path, mode: str, backdrop, smooth: bool) -> None:
    from edge_deeplab.video_pipeline import segment_video

    render = None if mode == "mask" else (lambda frame, result: _render(mode, frame, result, backdrop))
    report = segment_video(segmenter, source, target, render, smooth)
    click.echo(f"{source} -> {target}  {report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} fps; "
               f"model {report.model_ms / max(report.frames, 1):.1f} ms/frame)")
