"""Where ``segment`` writes each result, and in which format.

Masks, mattes and cut-outs are PNG (exact values; a cut-out's transparency). The photo effects keep
a lossy photo lossy: a JPEG (or WebP) in gives a JPEG (WebP) out under the input's own suffix, anything
else a PNG. ``--out`` with an image suffix names the one output file of a single input image; without
one (or if it is an existing folder) it is the folder the outputs go to.
"""
from __future__ import annotations

import os
from pathlib import Path

from edge_deeplab.errors import ConfigError
from edge_deeplab.imaging import IMAGE_SUFFIXES, WRITERS

PNG_MODES = ("mask", "matte", "cutout")
LOSSY = (".jpg", ".jpeg", ".webp")


def image_suffix(source: Path, mode: str) -> str:
    """The suffix of ``source``'s output in ``mode``."""
    if mode in PNG_MODES or source.suffix.lower() not in LOSSY:
        return ".png"
    return source.suffix


VIDEO_OUT = ".mp4"  # what a video's effects are written as (H.264)
FRAME_MODES = ("mask", "cutout")  # a video's output in these modes is a folder of PNG frames


def names_a_file(out: Path) -> bool:
    """True if ``--out`` names one output file rather than a folder."""
    return out.suffix.lower() in (*IMAGE_SUFFIXES, VIDEO_OUT) and not out.is_dir()


def check_file_target(out: Path, mode: str, sources: list[Path], is_video) -> None:
    """Raise :class:`ConfigError` unless ``out`` can be the single output file for ``sources``."""
    if len(sources) != 1 or sources[0].is_dir():
        count = "a folder" if sources and sources[0].is_dir() else f"{len(sources)} inputs"
        raise ConfigError(f"--out {out} names one output file, but {count} were given; pass a folder as --out "
                          "(outputs are named after their inputs)")
    suffix = out.suffix.lower()
    if is_video(sources[0]):
        if suffix != VIDEO_OUT:
            raise ConfigError(f"--out {out} names an image file, but {sources[0]} is a video; name an "
                              f"{VIDEO_OUT} file or a folder")
        if mode in FRAME_MODES:
            raise ConfigError(f"--out {out}: --mode {mode} writes a video's frames as PNG files into a folder; "
                              "pass a folder as --out")
        return
    if suffix == VIDEO_OUT:
        raise ConfigError(f"--out {out} names a video file, but {sources[0]} is an image; name an image file "
                          "or a folder")
    allowed = [".png"] if mode in PNG_MODES else list(WRITERS)
    if suffix not in allowed:
        what = f"--mode {mode} writes PNG" if mode in PNG_MODES else f"cannot write {suffix} files"
        raise ConfigError(f"--out {out}: {what}; use {' or '.join(allowed)} as its suffix")


def _check_writable_folder(folder: Path, option: str, value: Path) -> None:
    """``folder`` exists as a writable folder or can be created: its nearest existing ancestor is one."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{option} {value}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {value}: cannot write in {ancestor} (permission denied); choose another path")


def check_output_file(path: Path, option: str) -> None:
    """Refuse an output file that cannot be written, before the work whose results it records."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; name a file")
    _check_writable_folder(path.parent, option, path)


def check_output_folder(path: Path, option: str) -> None:
    """Refuse an output folder that cannot be created or written, before any work."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is an existing file, not a folder; name a folder")
    _check_writable_folder(path, option, path)
