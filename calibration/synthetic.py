"""Seeded synthetic images for parity checks when no real images are given (never for calibration)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from edge_deeplab.calibration.dataset import CalibrationSet

SOURCE = "synthetic"


def synthetic_set(input_size: tuple[int, int], count: int = 8, seed: int = 0) -> CalibrationSet:
    """Smooth colour blobs with edges (low-resolution noise, upsampled), not flat noise.

    Pixel-wise noise would put every class boundary everywhere; blobs give a model regions to segment,
    so agreement figures mean roughly what they mean on photos. Quantization must not calibrate on
    these: the pipeline only uses them to compare the artifact with its source model.
    """
    height, width = input_size
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        coarse = rng.integers(0, 256, size=(max(height // 16, 2), max(width // 16, 2), 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
        grain = rng.normal(0, 8, size=smooth.shape)
        images.append(np.clip(smooth + grain, 0, 255).astype(np.uint8))
    return CalibrationSet(np.stack(images), None, (), SOURCE, seed)
