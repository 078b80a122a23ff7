"""Find the images (and masks) of a calibration folder and draw a seeded sample of them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_deeplab.errors import DatasetError
from edge_deeplab.imaging import IMAGE_SUFFIXES, iter_image_files


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path | None


def find_samples(folder: str | Path) -> list[Sample]:
    """Images of an image folder, or of a dataset split (``images/`` + optional ``masks/``), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"calibration folder not found: {folder} (expected a folder of images or a "
                           "dataset split with images/ and masks/)")
    images_dir = folder / "images" if (folder / "images").is_dir() else folder
    masks = _masks_by_stem(folder / "masks")
    samples = [Sample(path, masks.get(path.stem)) for path in iter_image_files([images_dir])]
    if not samples:
        raise DatasetError(f"calibration folder {folder} has no images ({describe_suffixes()}); "
                           "point --calibration at a folder of representative photos")
    return samples


def _masks_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")}


def seeded_order(samples: list[Sample], seed: int) -> list[Sample]:
    """The samples in a random order fixed by ``seed``: take a prefix for a reproducible sample."""
    return [samples[i] for i in np.random.default_rng(seed).permutation(len(samples))]


def describe_suffixes() -> str:
    return ", ".join(sorted({s.lstrip(".") for s in IMAGE_SUFFIXES}))
