"""Representative datasets: images preprocessed exactly as ``segment`` feeds them to a model."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_deeplab.calibration.sampling import Sample, find_samples, seeded_order
from edge_deeplab.datasets import MaskValues, load_mask
from edge_deeplab.errors import BadImageError, DatasetError
from edge_deeplab.imaging import load_image
from edge_deeplab.processing import InputSpec, resize_rgb
from edge_deeplab.runtimes.base import TensorInfo

@dataclass(frozen=True)
class CalibrationSet:
    """``images``: (N, H, W, 3) uint8 RGB at the model's input size; ``masks``: (N, H, W) class ids or None."""

    images: np.ndarray
    masks: np.ndarray | None
    paths: tuple[Path, ...]
    source: str
    seed: int
    skipped: tuple[str, ...] = field(default=())  # unreadable files, "path: reason"

    def __len__(self) -> int:
        return len(self.images)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def float_inputs(self) -> np.ndarray:
        """(N, H, W, 3) float32 in [0, 1], through the same lookup table as inference."""
        height, width = self.input_size
        spec = InputSpec.from_tensor(TensorInfo("image", (1, height, width, 3), np.dtype(np.float32)), "0,1")
        return np.concatenate([spec.prepare(image) for image in self.images])

    def representative_dataset(self) -> Iterator[list[np.ndarray]]:
        """The generator ``tf.lite.TFLiteConverter.representative_dataset`` expects: one [1,H,W,3] batch a step."""
        for batch in self.float_inputs():
            yield [batch[None]]

    def subset(self, count: int) -> CalibrationSet:
        count = min(count, len(self))
        masks = None if self.masks is None else self.masks[:count]
        return CalibrationSet(self.images[:count], masks, self.paths[:count], self.source, self.seed, self.skipped)

    def statistics(self) -> dict[str, list[float]]:
        """Per-channel mean and std of the [0, 1] pixels: a quick check the sample looks like the deployment."""
        pixels = self.images.reshape(-1, 3).astype(np.float64) / 255.0
        return {"mean": [round(float(v), 4) for v in pixels.mean(axis=0)],
                "std": [round(float(v), 4) for v in pixels.std(axis=0)]}

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "images": len(self), "seed": self.seed,
                "masks": self.masks is not None, "skipped": list(self.skipped), **self.statistics()}


def load_calibration(folder: str | Path, input_size: tuple[int, int], size: int = 100,
                     seed: int = 0, num_classes: int | None = None) -> CalibrationSet:
    """Draw ``size`` images (seeded) from an image folder or dataset split, resized to ``input_size`` (H, W).

    The drawn masks go through the check ``train`` and ``evaluate`` apply (:class:`MaskValues`, with the
    model's ``num_classes`` when given): parity scores the artifact against them, so 0/255 masks or
    another dataset's classes would make its figures meaningless; such a folder is a :class:`DatasetError`.
    """
    samples = find_samples(folder)
    height, width = input_size
    picked, skipped = [], []
    # A seeded shuffle, read until ``size`` images decode: unreadable files are replaced, not lost.
    for sample in seeded_order(samples, seed):
        if len(picked) == size:
            break
        try:
            picked.append((sample, resize_rgb(load_image(sample.image), width, height)))
        except BadImageError as exc:
            skipped.append(str(exc))
    picked.sort(key=lambda item: item[0].image)
    images = [image for _, image in picked]
    paths = [sample.image for sample, _ in picked]
    values = MaskValues(folder, num_classes)
    masks = [_load_mask(sample, width, height, values) for sample, _ in picked]
    values.finish()
    if not images:
        raise DatasetError(f"calibration folder {folder} has no readable images ({len(skipped)} failed, "
                           f"first: {skipped[0]})")
    stacked_masks = np.stack(masks) if all(m is not None for m in masks) else None
    return CalibrationSet(np.stack(images), stacked_masks, tuple(paths), str(folder), seed, tuple(skipped))


def _load_mask(sample: Sample, width: int, height: int, values: MaskValues) -> np.ndarray | None:
    if sample.mask is None:
        return None
    mask = load_mask(sample.mask)
    values.add(mask, sample.mask)
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
