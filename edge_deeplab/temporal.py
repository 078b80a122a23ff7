"""Temporal smoothing of a segmentation over video frames.

A per-frame model flickers where its probability hovers near the decision threshold (edges, hair,
low contrast) and on single-frame misfires. Two cheap remedies, both at the model's own resolution or
on the final labels, so they cost next to nothing against the model:

* a motion-aware exponential moving average of the class probabilities: where the new frame agrees
  with the running estimate (small change: noise) it moves the estimate by ``rate``; where it differs
  by ``motion`` or more (a real movement) the estimate follows at once, so moving people do not lag;
* hysteresis on the labels: a pixel changes class only when the new class beats the pixel's previous
  class by ``hysteresis`` (in probability), so values jittering around 0.5 keep their label
  (``hysteresis=0``: off, each frame's labels are those of the smoothed probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
from PIL import Image

from edge_deeplab.errors import ConfigError
from edge_deeplab.processing import Segmentation


@dataclass(frozen=True)
class Smoothing:
    """Parameters of :class:`TemporalSmoother` (chosen on the people/train sequences, see benchmarks/video.py)."""

    rate: float = 0.2  # weight of the new frame where it agrees with the running estimate
    motion: float = 0.8  # a probability change this large is followed entirely (no smoothing)
    hysteresis: float = 0.2  # margin a new class needs over the pixel's previous class; 0: none
    # Scale the margin down where the probability moved (by ``motion`` or more: no margin). Less lag
    # at moving edges, less flicker removed; the tuning on people/train preferred it off.
    moving_hysteresis: bool = False

    def __post_init__(self):
        if not isinstance(self.moving_hysteresis, bool):
            raise ConfigError(f"smoothing moving_hysteresis {self.moving_hysteresis!r}: expected True or False")
        # rate and motion divide or weigh the change, so 0 is meaningless; hysteresis 0 turns it off.
        for name, low, high, low_ok in (("rate", 0.0, 1.0, False), ("motion", 0.0, 1.0, False),
                                        ("hysteresis", 0.0, 0.5, True)):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):  # np.float32 is a Real
                raise ConfigError(f"smoothing {name} {value!r}: expected a number, got {type(value).__name__}")
            if not ((low <= value) if low_ok else (low < value)) or not value <= high:  # NaN fails both
                raise ConfigError(f"smoothing {name} {value!r} is out of range: expected "
                                  f"{low} {'<=' if low_ok else '<'} {name} <= {high}")


class TemporalSmoother:
    """Frame-by-frame: class probabilities at the model's resolution in, a :class:`Segmentation` out.

    A frame of another size than the previous one (a new clip, a rotated camera) starts afresh.
    """

    def __init__(self, smoothing: Smoothing | None = None):
        self.smoothing = smoothing or Smoothing()
        self.reset()

    def reset(self) -> None:
        self._state: np.ndarray | None = None  # (C, h, w) smoothed probabilities
        self._moved: np.ndarray | None = None  # (h, w) 0..1: how much of the last change was motion
        self._labels: np.ndarray | None = None  # previous labels at the image's size
        self._size: tuple[int, int] | None = None  # (width, height) of the previous frame

    def update(self, probabilities: np.ndarray, width: int, height: int) -> Segmentation:
        """Fold in one frame's (C, h, w) probabilities; labels and foreground alpha at width x height."""
        if self._size != (width, height):  # the output size, not only the model's: a rotated frame
            self.reset()                     # of a one-shape model keeps the probability shape
            self._size = (width, height)
        state = self._smooth(np.asarray(probabilities, np.float32))
        if state.shape[0] == 2:
            segmentation = self._binary(state[1], width, height)
        else:
            segmentation = self._multiclass(state, width, height)
        self._labels = segmentation.labels
        return segmentation

    def _smooth(self, probabilities: np.ndarray) -> np.ndarray:
        previous = self._state
        if previous is None or previous.shape != probabilities.shape:
            self._state = probabilities.copy()
            self._labels = self._moved = None
            return self._state
        change = probabilities - previous
        # Per pixel: the largest class change decides how much of it is motion rather than noise.
        size = np.abs(change).max(axis=0) if change.shape[0] > 2 else np.abs(change[1])
        self._moved = np.minimum(size / self.smoothing.motion, 1.0)
        rate = self.smoothing.rate
        previous += (rate + (1.0 - rate) * self._moved) * change  # in place: the state is ours
        return previous

    def _binary(self, foreground: np.ndarray, width: int, height: int) -> Segmentation:
        alpha = _upsample(foreground, width, height)
        if self._labels is None:
            return Segmentation((alpha >= 128).view(np.uint8), alpha)
        # A person pixel stays until alpha < 128 - margin, a background one until alpha >= 128 + margin.
        margin = min(127, int(round(self.smoothing.hysteresis * 255)))
        if not self.smoothing.moving_hysteresis or self._moved is None:
            threshold = np.multiply(self._labels != 0, np.uint8(2 * margin), dtype=np.uint8)
            np.subtract(np.uint8(128 + margin), threshold, out=threshold)  # 128 + m - 2m * previous label
            return Segmentation((alpha >= threshold).view(np.uint8), alpha)
        margins = _upsample((1.0 - self._moved) * (margin / 255.0), width, height)  # per pixel, uint8
        threshold = np.where(self._labels != 0, np.uint8(128) - margins, np.uint8(128) + margins)
        return Segmentation((alpha >= threshold).view(np.uint8), alpha)

    def _multiclass(self, state: np.ndarray, width: int, height: int) -> Segmentation:
        planes = np.stack([_resize_plane(plane, width, height) for plane in state])
        labels = planes.argmax(axis=0).astype(np.uint8)
        if self._labels is not None:
            best = np.take_along_axis(planes, labels[None].astype(np.intp), axis=0)[0]
            kept = np.take_along_axis(planes, self._labels[None].astype(np.intp), axis=0)[0]
            labels = np.where(best - kept > self.smoothing.hysteresis, labels, self._labels).astype(np.uint8)
        alpha = (np.clip(1.0 - planes[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Segmentation(labels, alpha)


def _resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    if plane.shape == (height, width):
        return plane
    return np.asarray(Image.fromarray(plane).resize((width, height), Image.BILINEAR))


def _upsample(probability: np.ndarray, width: int, height: int) -> np.ndarray:
    """Probability (h, w) -> uint8 alpha at width x height, as :meth:`OutputSpec.decode` makes it."""
    alpha = (np.clip(probability, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if alpha.shape == (height, width):
        return alpha
    return np.asarray(Image.fromarray(alpha).resize((width, height), Image.BILINEAR))
