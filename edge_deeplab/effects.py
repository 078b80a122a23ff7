"""What ``segment --mode`` draws: class overlays, background blur/replacement, mattes and cut-outs.

Every function takes an HxWx3 uint8 image (plus an HxW uint8 alpha or label map) and returns a uint8
array of the image's size. The cost follows the need, not the pixel count: the background blur runs at
a resolution where its radius is a few pixels, the feathering of the alpha likewise, and the
full-resolution work (upsampling, blending) runs in strips of rows through Pillow's C loops, so a 12 MP
photo never gets a float copy of itself.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from edge_deeplab.errors import ConfigError

DEFAULT_STRENGTH = 0.02  # blur radius as a fraction of the image's longer side
MAX_STRENGTH = 0.25
STRIP_ROWS = 128  # rows blended at a time: a few MB per strip, and cache-friendly
_BLUR_PIXELS = 4.0  # the blur radius (in pixels) the reduced working image still gets
_FEATHER_PIXELS = 2.0  # same for the feathering of the alpha


def palette(num_classes: int = 256) -> np.ndarray:
    """(num_classes, 3) uint8 colours, the PASCAL VOC bit-interleaved colour map (class 0 black)."""
    ids = np.arange(num_classes)
    colors = np.zeros((num_classes, 3), np.uint8)
    for shift in range(7, -1, -1):
        for channel in range(3):
            colors[:, channel] |= (((ids >> (3 * (7 - shift) + channel)) & 1) << shift).astype(np.uint8)
    return colors


def check_strength(strength: float) -> float:
    """``strength`` if it is a usable blur strength, else a :class:`ConfigError` saying what is."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= MAX_STRENGTH:
        raise ConfigError(f"blur strength {strength!r} is out of range: it is the blur radius as a fraction of "
                          f"the image's longer side, 0 < strength <= {MAX_STRENGTH} (default {DEFAULT_STRENGTH})")
    return float(strength)


def _strips(height: int):
    for top in range(0, height, STRIP_ROWS):
        yield top, min(height, top + STRIP_ROWS)


def _compose(front: np.ndarray, back: Callable[[int, int], Image.Image], alpha: np.ndarray) -> np.ndarray:
    """front * a + back * (1 - a), strip by strip; ``back(top, bottom)`` renders those rows of the back."""
    out = np.empty_like(front)
    for top, bottom in _strips(front.shape[0]):
        mixed = Image.composite(Image.fromarray(front[top:bottom]), back(top, bottom),
                                Image.fromarray(alpha[top:bottom]))
        out[top:bottom] = np.asarray(mixed)
    return out


def _resizer(source: Image.Image, width: int, height: int,
             box: tuple[float, float, float, float] | None = None) -> Callable[[int, int], Image.Image]:
    """Rows [top, bottom) of ``source`` (or of its ``box``) resized bilinearly to ``width`` x ``height``."""
    left, upper, right, lower = box or (0.0, 0.0, float(source.width), float(source.height))
    step = (lower - upper) / height

    def rows(top: int, bottom: int) -> Image.Image:
        return source.resize((width, bottom - top), Image.BILINEAR,
                             box=(left, upper + top * step, right, upper + bottom * step))
    return rows


def _shrink(array: np.ndarray, factor: int) -> Image.Image:
    """``array`` box-averaged by ``factor`` (a partial last box averages what it covers), in strips."""
    if factor <= 1:
        return Image.fromarray(array)
    rows = factor * max(1, STRIP_ROWS // factor)  # strip edges on box edges: same result as one reduce()
    parts = [Image.fromarray(array[top:top + rows]).reduce(factor) for top in range(0, array.shape[0], rows)]
    small = Image.new(parts[0].mode, (parts[0].width, sum(part.height for part in parts)))
    offset = 0
    for part in parts:
        small.paste(part, (0, offset))
        offset += part.height
    return small


def _factor(radius: float, pixels: float) -> int:
    return max(1, int(radius / pixels))


def _upsample(small: Image.Image, factor: int, width: int, height: int) -> np.ndarray:
    """Undo :func:`_shrink` geometrically: pixel i of ``small`` covers [i * factor, (i + 1) * factor)."""
    return np.asarray(small.resize((width, height), Image.BILINEAR, box=(0, 0, width / factor, height / factor)))


def feather(alpha: np.ndarray, radius: float, factor: int | None = None) -> np.ndarray:
    """Gaussian-soften ``alpha``; a wide radius is applied at a reduced resolution and upsampled once."""
    if radius <= 0:
        return alpha
    factor = _factor(radius, _FEATHER_PIXELS) if factor is None else factor
    blurred = _shrink(alpha, factor).filter(ImageFilter.GaussianBlur(radius / factor))
    return np.asarray(blurred) if factor == 1 else _upsample(blurred, factor, alpha.shape[1], alpha.shape[0])


def _background_blur(image: np.ndarray, alpha: np.ndarray, radius: float, factor: int) -> Image.Image:
    """The background blurred at 1/``factor`` of the image's size, normalized by the background weight
    so the subject's colours do not halo into it."""
    gaussian = ImageFilter.GaussianBlur(radius / factor)
    small = np.asarray(_shrink(image, factor), np.uint16)
    weight = 255 - np.asarray(_shrink(alpha, factor))
    premultiplied = ((small * weight[..., None].astype(np.uint16) + 127) // 255).astype(np.uint8)
    numerator = np.asarray(Image.fromarray(premultiplied).filter(gaussian), np.float32)
    denominator = np.asarray(Image.fromarray(weight).filter(gaussian), np.float32)[..., None]
    plain = np.asarray(Image.fromarray(small.astype(np.uint8)).filter(gaussian), np.float32)
    background = np.where(denominator >= 8, numerator * 255.0 / np.maximum(denominator, 1.0), plain)
    return Image.fromarray(np.clip(background + 0.5, 0, 255).astype(np.uint8))


def _maybe_refine(image: np.ndarray, alpha: np.ndarray, refine: bool) -> np.ndarray:
    if not refine:
        return alpha
    from edge_deeplab.refine import refine_alpha
    return refine_alpha(image, alpha)


def blur_background(image: np.ndarray, alpha: np.ndarray, strength: float = DEFAULT_STRENGTH, *,
                    refine: bool = False, factor: int | None = None) -> np.ndarray:
    """Keep the foreground sharp, blur the rest (Gaussian, radius = ``strength`` x the longer side).

    ``factor`` forces the working reduction (1 = full resolution, the slow reference); by default the
    blur runs where its radius is about 4 pixels. ``refine`` snaps the alpha to the image's edges first.
    """
    height, width = image.shape[:2]
    radius = max(1.0, check_strength(strength) * max(height, width))
    alpha = feather(_maybe_refine(image, alpha, refine), radius / 10, factor)
    factor = _factor(radius, _BLUR_PIXELS) if factor is None else factor
    background = _background_blur(image, alpha, radius, factor)
    box = (0.0, 0.0, width / factor, height / factor)
    return _compose(image, _resizer(background, width, height, box), alpha)


def _cover_box(size: tuple[int, int], width: int, height: int) -> tuple[float, float, float, float]:
    """The centred region of an image of ``size`` that, scaled up or down, covers width x height."""
    bw, bh = size
    scale = max(width / bw, height / bh)
    crop_w, crop_h = min(bw, width / scale), min(bh, height / scale)
    left, top = (bw - crop_w) / 2, (bh - crop_h) / 2
    return left, top, left + crop_w, top + crop_h


def fit_cover(background: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``background`` to cover ``width`` x ``height`` and centre-crop it (no distortion)."""
    source = Image.fromarray(background)
    return np.asarray(_resizer(source, width, height, _cover_box(source.size, width, height))(0, height))


def replace_background(image: np.ndarray, alpha: np.ndarray, background: np.ndarray, *,
                       refine: bool = False) -> np.ndarray:
    """Put the foreground over ``background`` (any size, cover-fitted), with soft edges."""
    height, width = image.shape[:2]
    alpha = feather(_maybe_refine(image, alpha, refine), max(1.0, 0.002 * max(height, width)))
    source = Image.fromarray(np.ascontiguousarray(background[..., :3]))
    return _compose(image, _resizer(source, width, height, _cover_box(source.size, width, height)), alpha)


def overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Tint every non-background pixel with its class colour, at ``opacity`` (0 = none, 1 = solid)."""
    if not 0.0 <= opacity <= 1.0:
        raise ConfigError(f"overlay opacity {opacity!r} is out of range: use 0 (no tint) to 1 (solid colour)")
    colors = palette(256)  # per channel, a 256-entry lookup table for Image.point (C, no gather)
    tables = [colors[:, channel].tolist() for channel in range(3)]
    level = np.uint8(round(255 * opacity))

    def tinted(top: int, bottom: int) -> Image.Image:
        strip = Image.fromarray(labels[top:bottom])
        return Image.merge("RGB", [strip.point(table) for table in tables])
    alpha = np.empty(labels.shape, np.uint8)
    for top, bottom in _strips(labels.shape[0]):
        np.multiply(labels[top:bottom] > 0, level, out=alpha[top:bottom], casting="unsafe")
    return _compose(image, tinted, 255 - alpha)


def matte(image: np.ndarray, alpha: np.ndarray, *, refine: bool = False) -> np.ndarray:
    """The alpha as a viewable grey image (HxW uint8, white = foreground)."""
    return np.ascontiguousarray(_maybe_refine(image, alpha, refine))


def cutout(image: np.ndarray, alpha: np.ndarray, *, refine: bool = False) -> np.ndarray:
    """An HxWx4 RGBA cut-out: the image with the alpha as its transparency."""
    out = np.empty(image.shape[:2] + (4,), np.uint8)
    out[..., :3] = image
    out[..., 3] = _maybe_refine(image, alpha, refine)
    return out
