"""``edge-deeplab segment``: masks, overlays and background effects for images and videos."""
from __future__ import annotations

import time
from pathlib import Path

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import BadImageError


def _render(mode: str, image, result, backdrop, strength: float | None = None, refine: bool = False):
    """What ``mode`` writes for one image or frame, from its :class:`edge_deeplab.api.Result`: a still's
    result comes refined unless --no-refine; ``refine`` refines a video frame's (--refine)."""
    import numpy as np

    if refine and not result.refine:
        result = result.refined(image)
    if mode == "mask":
        return result.labels
    if mode == "blur":
        return np.asarray(result.blur(image, **({} if strength is None else {"strength": strength})))
    if mode == "replace":
        return np.asarray(result.replace(image, backdrop))
    return np.asarray(getattr(result, mode)(image))  # overlay, matte, cutout


def _strength(ctx, param, value):
    if value is None:
        return None
    from edge_deeplab.effects import check_strength
    from edge_deeplab.errors import ConfigError
    try:
        return check_strength(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def _target(source: Path, out_dir: Path, mode: str) -> Path:
    from edge_deeplab.cli.outputs import image_suffix
    from edge_deeplab.video import is_video
    if not is_video(source):
        return out_dir / f"{source.stem}{image_suffix(source, mode)}"
    from edge_deeplab.cli.outputs import FRAME_MODES, VIDEO_OUT
    # H.264 has no alpha: a video's cut-outs are PNG frames in a folder, like its masks.
    return out_dir / source.stem if mode in FRAME_MODES else out_dir / f"{source.stem}{VIDEO_OUT}"


def _plan(inputs: tuple[str, ...], out_dir: Path, mode: str,
          out_file: Path | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(source, target) pairs, and the problems that make some inputs unusable before any work starts;
    ``out_file``: the one input's output file (``--out result.jpg``)."""
    from edge_deeplab.imaging import IMAGE_SUFFIXES, iter_image_files
    from edge_deeplab.video import VIDEO_SUFFIXES

    suffixes = IMAGE_SUFFIXES + VIDEO_SUFFIXES
    jobs, problems, taken = [], [], {}
    for item in inputs:
        if Path(item).is_dir() and not any(True for _ in iter_image_files([item], suffixes)):
            problems.append(f"{item}: folder holds no images or videos ({', '.join(suffixes)})")
    for source in iter_image_files(inputs, suffixes):
        if not source.exists():
            problems.append(f"{source}: no such file or folder")
            continue
        target = out_file or _target(source, out_dir, mode)
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
@click.option("--out", "out_dir", type=click.Path(), default="segment_out", show_default=True,
              help="Output folder; or, for a single input, the output file (e.g. result.jpg, or clip.mp4 "
                   "for a video's effects).")
@click.option("--mode", type=click.Choice(["mask", "overlay", "blur", "replace", "matte", "cutout"]),
              default="mask", show_default=True,
              help="mask: class indices; matte: grey alpha; cutout: RGBA; overlay, blur, replace: the photo.")
@click.option("--background", type=click.Path(dir_okay=False), default=None,
              help="Background image for --mode replace.")
@click.option("--strength", type=float, default=None, callback=_strength,
              help="Blur radius as a fraction of the longer side, 0 < s <= 0.25 (default 0.02).")
@click.option("--refine/--no-refine", default=None,
              help="Snap the mask's edges to the image's (guided filter). Default: on for images, off for "
                   "video (about 30 ms per 800x600 frame).")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Smooth the segmentation over a video's frames (no effect on still images).")
@options.runtime
@options.threads
@options.input_range
@options.labels
@options.precision
@click.pass_context
def command(ctx, model, inputs, out_dir, mode, background, strength, refine, smooth, runtime, threads, input_range,
            labels, precision) -> None:
    """Segment images, videos (.mp4 .mov .mkv .avi .webm) and folders of them with MODEL (an artifact
    path, `default` or a zoo name such as `portrait`; `default_int8`, `portrait_int8`: the shipped int8
    files).

    Writes OUT/<stem>.png per image: class indices (mask), the alpha as grey (matte) or transparency
    (cutout); or a colour overlay or the portrait with its background blurred or replaced, as JPEG for
    a JPEG input (OUT/<stem>.jpg). --out NAME.jpg|.png for a single image writes exactly that file.
    A video gives OUT/<stem>/000000.png... (mask, cutout) or OUT/<stem>.mp4 (--out NAME.mp4 for a single
    video: that file). A bad input is reported and skipped; the exit code is then 1.
    """
    if mode == "replace" and background is None:
        raise click.UsageError("--mode replace needs --background IMAGE")
    if background is not None and mode != "replace":
        raise click.UsageError("--background is only used with --mode replace")
    if strength is not None and mode != "blur":
        raise click.UsageError("--strength is only used with --mode blur")
    from edge_deeplab.api import load
    from edge_deeplab.cli.outputs import check_file_target, check_output_file, check_output_folder, names_a_file
    from edge_deeplab.imaging import load_image, save_image
    from edge_deeplab.video import is_video

    out = Path(out_dir)
    out_file = out if names_a_file(out) else None
    if out_file is not None:
        check_file_target(out_file, mode, [Path(item) for item in inputs], is_video)
        check_output_file(out_file, "--out")
    else:
        check_output_folder(out, "--out")
    backdrop = load_image(background) if background else None
    jobs, problems = _plan(inputs, out, mode, out_file)
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
        try:
            if is_video(source):
                _video(segmenter, source, target, mode, backdrop, smooth, strength, bool(refine))
                written += 1
                continue
            image = load_image(source)
        except BadImageError as exc:
            if single:
                raise
            click.echo(f"error: {exc} (skipped)", err=True)
            failures += 1
            continue
        start = time.perf_counter()
        result = segmenter(image, refine=refine is not False)
        rendered = _render(mode, image, result, backdrop, strength)
        total_ms = (time.perf_counter() - start) * 1000.0
        save_image(target, rendered)
        written += 1
        click.echo(f"{source} -> {target}  {total_ms:.1f} ms (model {result.model_ms:.1f} ms)")
    if failures:
        click.echo(f"{failures} input(s) failed, {written} written to {out}", err=True)
        ctx.exit(1)


def _video(segmenter, source: Path, target: Path, mode: str, backdrop, smooth: bool, strength: float | None,
           refine: bool) -> None:
    from edge_deeplab.video_pipeline import segment_video

    render = None if mode == "mask" and not refine else (  # masks: the (smoothed) labels as the stream gives them
        lambda frame, result: _render(mode, frame, result, backdrop, strength, refine))
    report = segment_video(segmenter, source, target, render, smooth, png=mode in ("mask", "cutout"))
    click.echo(f"{source} -> {target}  {report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} fps; "
               f"model {report.model_ms / max(report.frames, 1):.1f} ms/frame)")
