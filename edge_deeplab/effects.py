"""What ``segment --mode`` draws: class overlays and portrait background blur/replacement."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def palette(num_classes: int = 256) -> np.ndarray:
    """(num_classes, 3) uint8 colours, the PASCAL VOC bit-interleaved colour map (class 0 black)."""
    ids = np.arange(num_classes)
    colors = np.zeros((num_classes, 3), np.uint8)
    for shift in range(7, -1, -1):
        for channel in range(3):
            colors[:, channel] |= (((ids >> (3 * (7 - shift) + channel)) & 1) << shift).astype(np.uint8)
    return colors


def _blend(front: np.ndarray, back: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """front * a + back * (1 - a) with ``alpha`` (H, W) uint8, rounded, in integer arithmetic."""
    a = alpha.astype(np.uint16)[..., None]
    mixed = front.astype(np.uint16) * a + back.astype(np.uint16) * (255 - a) + 127
    return (mixed // 255).astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Tint every non-background pixel with its class colour."""
    colors = palette(max(int(labels.max(initial=0)) + 1, 2))[labels]
    alpha = np.where(labels > 0, np.uint8(round(255 * opacity)), np.uint8(0))
    return _blend(colors, image, alpha)


def _feather(alpha: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(alpha).filter(ImageFilter.GaussianBlur(radius))) if radius > 0 else alpha


def blur_background(image: np.ndarray, alpha: np.ndarray, strength: float = 0.02) -> np.ndarray:
    """Keep the foreground sharp, blur the rest (Gaussian, radius = ``strength`` x the longer side).

    The blur is normalized by the background weight so the subject's colours do not halo into it.
    """
    radius = max(1.0, strength * max(image.shape[:2]))
    alpha = _feather(alpha, radius / 10)
    gaussian = ImageFilter.GaussianBlur(radius)
    weight = 255 - alpha
    premultiplied = _blend(image, np.zeros_like(image), weight)  # background pixels only
    numerator = np.asarray(Image.fromarray(premultiplied).filter(gaussian), np.float32)
    denominator = np.asarray(Image.fromarray(weight).filter(gaussian), np.float32)[..., None]
    plain = np.asarray(Image.fromarray(image).filter(gaussian), np.float32)
    background = np.where(denominator >= 8, numerator * 255.0 / np.maximum(denominator, 1.0), plain)
    return _blend(image, np.clip(background + 0.5, 0, 255).astype(np.uint8), alpha)


def fit_cover(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``background`` to cover ``width`` x ``height`` and centre-crop it (no distortion)."""
    bh, bw = background.shape[:2]
    scale = max(width / bw, height / bh)
    size = (max(width, round(bw * scale)), max(height, round(bh * scale)))
    resized = Image.fromarray(background).resize(size, Image.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)))


def replace_background(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Put the foreground over ``background`` (any size, cover-fitted), with soft edges."""
    height, width = image.shape[:2]
    alpha = _feather(alpha, max(1.0, 0.002 * max(height, width)))
    return _blend(image, fit_cover(background, width, height), alpha)
