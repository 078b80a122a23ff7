"""Edge refinement of a soft mask: the guided filter (He, Sun and Tang, "Guided Image Filtering",
ECCV 2010 / TPAMI 2013), guided by the photo, in numpy.

The model sees the photo at 192x192, so its alpha, upsampled, is blurry where the photo has a sharp
outline. The guided filter fits the alpha locally as a linear function of the photo's colours
(q = a.I + b in every window), which moves the alpha's transitions onto the photo's edges. It runs at
a moderate resolution (``size`` on the longer side) and the result is upsampled once, so its cost does
not grow with the photo's megapixels.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

REFINE_SIZE = 1024  # longer side, in pixels, at which the refined alpha is computed
STATS_SIZE = 192  # longer side at which the filter's window statistics are computed
REFINE_RADIUS = 0.03  # window radius as a fraction of the statistics' longer side
REFINE_EPS = 1e-3  # regularization (colours in [0, 1]): larger = smoother, closer to the input


def _window_sum(values: np.ndarray, axis: int, radius: int) -> np.ndarray:
    """Sums over [i - r, i + r] along ``axis`` (clipped at the ends), from one cumulative sum."""
    values = np.moveaxis(values, axis, 0)
    size = values.shape[0]
    radius = min(radius, size - 1)
    cumulative = np.empty((size + 1,) + values.shape[1:], np.float64)  # float64: exact differences
    cumulative[0] = 0
    np.cumsum(values, axis=0, out=cumulative[1:])
    upper = np.concatenate([cumulative[radius + 1:], np.repeat(cumulative[-1:], radius, axis=0)])
    lower = np.concatenate([np.repeat(cumulative[:1], radius, axis=0), cumulative[:size - radius]])
    return np.moveaxis(upper - lower, 0, axis)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``x`` (H, W, ...) over the (2r+1)^2 window around each pixel, clipped at the borders.

    Cumulative sums: O(1) per pixel whatever the radius.
    """
    height, width = x.shape[:2]
    sums = _window_sum(_window_sum(x, 0, radius), 1, radius)
    rows = np.minimum(np.arange(height) + radius + 1, height) - np.maximum(np.arange(height) - radius, 0)
    cols = np.minimum(np.arange(width) + radius + 1, width) - np.maximum(np.arange(width) - radius, 0)
    counts = (rows[:, None] * cols[None, :]).reshape((height, width) + (1,) * (x.ndim - 2))
    return (sums / counts).astype(np.float32)


_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))  # the covariance's distinct entries


def guided_coefficients(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The guided filter's window-averaged linear coefficients, (H, W, 4) [a_r, a_g, a_b, b], for a
    colour ``guide`` (H, W, 3) and a ``source`` (H, W), floats in [0, 1].

    All window statistics come from one box filter over 13 stacked planes; the per-pixel 3x3 systems
    are solved in closed form (adjugate / determinant), which numpy vectorizes, unlike linalg.solve.
    """
    guide = guide.astype(np.float32, copy=False)
    source = source.astype(np.float32, copy=False)
    planes = [guide[..., c] for c in range(3)] + [source] + [guide[..., c] * source for c in range(3)]
    planes += [guide[..., i] * guide[..., j] for i, j in _PAIRS]
    means = box_mean(np.stack(planes, axis=-1), radius)
    mean_i, mean_p = means[..., 0:3], means[..., 3]
    cov = [means[..., 4 + c] - mean_i[..., c] * mean_p for c in range(3)]
    var = {(i, j): means[..., 7 + k] - mean_i[..., i] * mean_i[..., j] for k, (i, j) in enumerate(_PAIRS)}
    rr, rg, rb, gg, gb, bb = (var[pair] + (eps if pair[0] == pair[1] else 0.0) for pair in _PAIRS)
    inv = [gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb,  # adjugate of the symmetric matrix
           rr * bb - rb * rb, rg * rb - rr * gb, rr * gg - rg * rg]
    det = rr * inv[0] + rg * inv[1] + rb * inv[2]
    a_r = (inv[0] * cov[0] + inv[1] * cov[1] + inv[2] * cov[2]) / det
    a_g = (inv[1] * cov[0] + inv[3] * cov[1] + inv[4] * cov[2]) / det
    a_b = (inv[2] * cov[0] + inv[4] * cov[1] + inv[5] * cov[2]) / det
    b = mean_p - a_r * mean_i[..., 0] - a_g * mean_i[..., 1] - a_b * mean_i[..., 2]
    return box_mean(np.stack([a_r, a_g, a_b, b], axis=-1), radius)


def apply_coefficients(coefficients: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """q = a . I + b, with (H, W, 4) coefficients [a_r, a_g, a_b, b] and an (H, W, 3) guide."""
    return np.einsum("hwc,hwc->hw", coefficients[..., :3], guide) + coefficients[..., 3]


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a colour guide: ``guide`` (H, W, 3) and ``source`` (H, W) floats
    in [0, 1]; returns the filtered (H, W) float32 (not clipped)."""
    return apply_coefficients(guided_coefficients(guide, source, radius, eps), guide)


def _resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if array.shape[1::-1] == size:
        return array
    # reducing_gap 1: an integer box reduction first (cheap), then a bilinear step of less than 2x.
    return np.asarray(Image.fromarray(array).resize(size, Image.BILINEAR, reducing_gap=1.0))


def _fit(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def refine_alpha(image: np.ndarray, alpha: np.ndarray, *, size: int = REFINE_SIZE, stats_size: int = STATS_SIZE,
                 radius: float = REFINE_RADIUS, eps: float = REFINE_EPS) -> np.ndarray:
    """``alpha`` (H, W uint8) with its edges moved onto ``image``'s (H, W, 3 uint8); same shape and dtype.

    The fast guided filter (He and Sun, 2015): window statistics at ``stats_size`` (longer side), the
    linear coefficients upsampled and applied to the photo at ``size``, the result upsampled once to
    the photo's size. ``radius`` is the window radius as a fraction of the longer side.
    """
    height, width = alpha.shape
    low, work = _fit(width, height, stats_size), _fit(width, height, size)
    pixels = _resized(image, work)  # the one pass over the full-size photo
    guide = _resized(pixels, low).astype(np.float32) / 255
    source = _resized(alpha, low).astype(np.float32) / 255
    coefficients = guided_coefficients(guide, source, max(1, round(radius * max(low))), eps)
    planes = [Image.fromarray(np.ascontiguousarray(coefficients[..., c])) for c in range(4)]
    coefficients = np.stack([np.asarray(p.resize(work, Image.BILINEAR)) for p in planes], axis=-1)
    refined = apply_coefficients(coefficients, pixels.astype(np.float32) / 255)
    return _resized(np.clip(refined * 255 + 0.5, 0, 255).astype(np.uint8), (width, height))
