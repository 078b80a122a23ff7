"""Dataset folders: ``images/`` + ``masks/`` with matching stems; masks are single-channel class indices.

    pairs = list_pairs("data/portrait/val")      # [Pair(image=Path, mask=Path), ...], sorted by stem
    mask = load_mask(pairs[0].mask)              # (H, W) uint8, 255 = ignore
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from edge_deeplab.errors import DatasetError
from edge_deeplab.imaging import IMAGE_SUFFIXES

IGNORE_INDEX = 255
_MASK_MODES = ("L", "P", "1", "I", "I;16", "I;16L", "I;16B")


class Pair(NamedTuple):
    image: Path
    mask: Path


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes and not path.name.startswith("."):
            if path.stem in files:
                raise DatasetError(f"{folder} has two files for {path.stem!r}: {files[path.stem].name}, {path.name}")
            files[path.stem] = path
    return files


def list_pairs(folder: str | Path) -> list[Pair]:
    """Image/mask pairs of a dataset folder, sorted by stem; :class:`DatasetError` if the layout is wrong.

    Every image needs a mask (a missing one is an error, not a silent skip); masks without an image
    are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"dataset folder not found: {folder}")
    images_dir, masks_dir = folder / "images", folder / "masks"
    missing = [d.name + "/" for d in (images_dir, masks_dir) if not d.is_dir()]
    if missing:
        raise DatasetError(f"{folder} has no {' or '.join(missing)}; a dataset folder holds images/ "
                           "(JPEG/PNG) and masks/ (PNG class indices) with matching file names")
    images = _files(images_dir, IMAGE_SUFFIXES)
    masks = _files(masks_dir, (".png",))
    if not images:
        raise DatasetError(f"{images_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    orphans = [stem for stem in images if stem not in masks]
    if orphans:
        shown = ", ".join(images[s].name for s in orphans[:3]) + (", ..." if len(orphans) > 3 else "")
        raise DatasetError(f"{len(orphans)} image(s) in {images_dir} have no mask <stem>.png in {masks_dir}: {shown}")
    return [Pair(images[stem], masks[stem]) for stem in images]


class MaskValues:
    """Catches the two common mask mistakes while a folder is read: a value that is no class of the
    model (a 0-255 matte, a class the model lacks), and 0/255 binary masks, where 255, which means
    ignore, was meant as the person. Call :meth:`add` for each mask (from any thread), then
    :meth:`finish`."""

    def __init__(self, folder: str | Path, num_classes: int | None = None):
        self.folder, self.num_classes = Path(folder), num_classes
        self.labelled = self.ignored = self.background = False  # any pixel of a class other than 0 / 255 / 0
        self.largest = 0  # the largest class index seen
        self._lock = threading.Lock()

    def add(self, mask: np.ndarray, path: str | Path) -> None:
        counts = np.bincount(mask.ravel(), minlength=256)
        classes = np.flatnonzero(counts[:IGNORE_INDEX])
        if self.num_classes is not None and classes.size and classes[-1] >= self.num_classes:
            n = self.num_classes
            raise DatasetError(f"{path}: mask holds value {classes[-1]}, but the model has {n} classes "
                               f"(0-{n - 1}; 255 = ignore); masks hold class indices (e.g. 0 background, "
                               "1 person), not a 0-255 matte: threshold it and write 1 where the class is")
        with self._lock:
            self.labelled |= bool(classes.size and classes[-1] > 0)
            self.largest = max(self.largest, int(classes[-1]) if classes.size else 0)
            self.ignored |= bool(counts[IGNORE_INDEX])
            self.background |= bool(counts[0])

    def finish(self) -> None:
        if self.ignored and not self.labelled:
            held = "only 0 and 255" if self.background else "only 255"
            raise DatasetError(f"the masks of {self.folder} hold {held}, and 255 means ignore, so no pixel is "
                               "labelled with a class; if 255 marks the person, write the masks as class "
                               "indices (0 background, 1 person)")


def check_masks(folder: str | Path, num_classes: int | None = None,
                pairs: list[Pair] | None = None) -> dict[Path, str]:
    """Reads every mask of ``folder`` (or of ``pairs``) through :class:`MaskValues` before anything is
    scored or trained on: a mask of the wrong kind raises :class:`DatasetError`. Returns the masks that
    cannot be read at all, each with its message, for the caller to skip or refuse."""
    values, unreadable = MaskValues(folder, num_classes), {}
    for pair in list_pairs(folder) if pairs is None else pairs:
        try:
            mask = load_mask(pair.mask)
        except DatasetError as exc:
            unreadable[pair.mask] = str(exc)
            continue
        values.add(mask, pair.mask)
    values.finish()
    return unreadable


def is_unlabelled(folder: str | Path) -> bool:
    """A folder with ``images/`` and no ``masks/``: images for a teacher to label."""
    folder = Path(folder)
    return (folder / "images").is_dir() and not (folder / "masks").exists()


def list_images(folder: str | Path) -> list[Path]:
    """The images of an unlabelled folder (``images/`` only), sorted by stem."""
    images_dir = Path(folder) / "images"
    images = _files(images_dir, IMAGE_SUFFIXES) if images_dir.is_dir() else {}
    if not images:
        raise DatasetError(f"{images_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return list(images.values())


def load_mask(path: str | Path) -> np.ndarray:
    """A mask PNG as (H, W) uint8 class indices (palette PNGs read as their indices; 255 = ignore)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode, mask = image.mode, np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the mask ({exc})") from None
    if mode not in _MASK_MODES:
        raise DatasetError(f"{path}: mask has mode {mode}; expected a single-channel PNG of class "
                           "indices (grayscale or palette)")
    if mask.dtype == np.bool_:
        return mask.astype(np.uint8)
    if mask.dtype != np.uint8:
        if mask.max(initial=0) > 255 or mask.min(initial=0) < 0:
            raise DatasetError(f"{path}: mask values exceed 0..255; expected class indices")
        mask = mask.astype(np.uint8)
    return mask
