"""Segment a video file: decode, model, compose and encode each run in their own thread.

Frames are segmented upright (a rotation tag applied). Masks (and RGBA cut-outs) go to
``<folder>/000000.png``...; rendered frames to an untagged H.264 ``.mp4`` with the input's displayed
size, frame count and frame rate, audio copied. Either output appears under its final
name only when complete.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_deeplab import video
from edge_deeplab.progress import Bar
from edge_deeplab.threads import stage, threaded

Render = Callable[[np.ndarray, object], np.ndarray]  # (frame, Result) -> HxWx3 (or HxW) uint8


@dataclass(frozen=True)
class VideoReport:
    source: Path
    target: Path
    frames: int
    seconds: float  # wall time of the whole pipeline
    model_ms: float  # the model's own time, summed over the frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def segment_video(segmenter, source: str | Path, target: str | Path, render: Render | None = None,
                  smooth=True, show_progress: bool = True, png: bool | None = None) -> VideoReport:
    """Segment every frame of ``source`` with ``segmenter`` (:func:`edge_deeplab.load`).

    Each frame becomes ``render(frame, result)`` (None: the class-index mask), written into the ``.mp4``
    ``target``, or with ``png`` (the default for masks) as ``target/000000.png``...: what H.264 cannot
    hold, such as an RGBA cut-out. ``smooth``: see ``ImageSegmenter.stream``.
    """
    source, target = Path(source), Path(target)
    info = video.probe(source)
    step = segmenter.frame_step(smooth)
    model_ms = [0.0]
    start = time.perf_counter()

    def segment(item):
        kind, payload = item
        if kind != "video":
            return item
        result = step(payload)
        model_ms[0] += result.model_ms
        return kind, (payload, result)

    png = render is None if png is None else png
    copy_audio = not png and info.audio_codec is not None
    segmented = stage(segment, threaded(video.read(source, audio=copy_audio), name="decode"), name="model")
    with Bar(f"segment {source.name}", info.frames, unit="frame") if show_progress else _NoBar() as bar:
        if png:
            frames = _write_pngs(segmented, target, render, bar)
        else:
            frames = _write_video(segmented, source, target, info, render, bar)
    return VideoReport(source, target, frames, time.perf_counter() - start, model_ms[0])


def _write_pngs(segmented, folder: Path, render: Render | None, bar) -> int:
    from edge_deeplab.imaging import save_png

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    count = 0

    def save(item):
        nonlocal count
        _, (frame, result) = item
        picture = result.labels if render is None else render(frame, result)
        save_png(tmp / f"{count:06d}.png", picture)  # in order: one writer thread
        count += 1
    try:
        for _ in stage(save, segmented, name="png"):
            bar.update()
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def _swap_in(tmp: Path, folder: Path) -> None:
    """Put the finished folder ``tmp`` at ``folder``, replacing an older one only once it is complete."""
    if folder.exists():
        old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


def _write_video(segmented, source: Path, target: Path, info: video.VideoInfo, render: Render, bar) -> int:
    def compose(item):
        kind, payload = item
        if kind != "video":
            return item
        frame, result = payload
        rendered = render(frame, result)
        if rendered.ndim == 2:  # a grey matte: H.264 wants colour frames
            rendered = np.repeat(rendered[..., None], 3, axis=2)
        return kind, rendered[..., :3]

    template = None
    if info.audio_codec is not None:
        template_container = video.av_module().open(str(source), "r")
        template = template_container.streams.audio[0]
    try:
        writer = video.Writer(target, info, template)
    finally:
        if template is not None:
            template_container.close()
    try:
        for kind, payload in stage(compose, segmented, name="compose"):
            if kind == "video":
                writer.write(payload)
                bar.update()
            else:
                writer.mux_audio(payload)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return writer.frames


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass
