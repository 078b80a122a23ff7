"""Where ``segment`` writes each result, and in which format.

Masks, mattes and cut-outs are PNG (exact values; a cut-out's transparency). The photo effects keep
a lossy photo lossy: a JPEG (or WebP) in gives a JPEG (WebP) out under the input's own suffix, anything
else a PNG. ``--out`` with an image suffix names the one output file of a single input image; without
one (or if it is an existing folder) it is the folder the outputs go to.
"""
from __future__ import annotations

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


def names_a_file(out: Path) -> bool:
    """True if ``--out`` names one output file rather than a folder."""
    return out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir()


def check_file_target(out: Path, mode: str, sources: list[Path], is_video) -> None:
    """Raise :class:`ConfigError` unless ``out`` can be the single output file for ``sources``."""
    if len(sources) != 1 or sources[0].is_dir():
        count = "a folder" if sources and sources[0].is_dir() else f"{len(sources)} inputs"
        raise ConfigError(f"--out {out} names one image file, but {count} were given; pass a folder as --out "
                          "(outputs are named after their inputs)")
    if is_video(sources[0]):
        raise ConfigError(f"--out {out} names an image file, but {sources[0]} is a video; pass a folder as --out")
    suffix = out.suffix.lower()
    allowed = [".png"] if mode in PNG_MODES else list(WRITERS)
    if suffix not in allowed:
        what = f"--mode {mode} writes PNG" if mode in PNG_MODES else f"cannot write {suffix} files"
        raise ConfigError(f"--out {out}: {what}; use {' or '.join(allowed)} as its suffix")
