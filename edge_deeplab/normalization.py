"""Input normalization: which real values a model expects for RGB pixels 0..255, and where that is declared.

Everything is expressed as the TFLite Model Metadata does it, ``tensor = (pixel - mean) / std`` per
channel; the named ranges are special cases (``0,1``: mean 0, std 255; ``-1,1``: mean = std = 127.5;
``0,255``: mean 0, std 1). Precedence (:func:`resolve`): the ``--input-range`` flag, then our own
``edge_deeplab`` metadata, then the format's standard metadata, then the default (``0,1`` for float
inputs; raw pixels for integer inputs, whose quantization already encodes the range).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_deeplab.errors import BadModelError, UnknownChoiceError
from edge_deeplab.runtimes.base import INPUT_RANGES

RANGES = dict(zip(INPUT_RANGES, ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))))
_PIXELS = np.arange(256, dtype=np.float64)


@dataclass(frozen=True)
class Normalization:
    """``tensor = (pixel - mean) / std``; one value applies to every channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def named(cls, input_range: str) -> Normalization:
        if input_range not in RANGES:  # an API argument or a model's metadata: the CLI's flag is a Choice
            raise UnknownChoiceError("input range", input_range, RANGES)
        low, high = RANGES[input_range]
        std = 255.0 / (high - low)
        return cls((0.0 - low * std,), (std,))  # 0.0 - : no -0.0 in manifests

    @property
    def range_name(self) -> str | None:
        """The named range this equals (``0,1``, ``-1,1``, ``0,255``), or None."""
        if len(set(self.mean)) != 1 or len(set(self.std)) != 1:
            return None
        for name in INPUT_RANGES:
            other = Normalization.named(name)
            if np.allclose((self.mean[0], self.std[0]), (other.mean[0], other.std[0]), rtol=1e-6, atol=1e-6):
                return name
        return None

    def describe(self) -> str:
        return self.range_name or f"mean {list(self.mean)}, std {list(self.std)}"

    def per_channel(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) as float64 arrays of length ``channels``."""
        if {len(self.mean), len(self.std)} - {1, channels}:
            raise BadModelError(f"normalization {self.describe()} does not fit a {channels}-channel input; "
                                "pass --input-range to override it")
        return (np.broadcast_to(np.asarray(self.mean, np.float64), (channels,)),
                np.broadcast_to(np.asarray(self.std, np.float64), (channels,)))


def resolve(input_range: str | None, metadata: dict[str, Any], standard: Any,
            integer_input: bool) -> tuple[Normalization | None, str]:
    """(normalization or None for the default, where it came from: flag / metadata / standard / default).

    Standard metadata's normalization describes the float model; for an integer input the maintained
    readers (TFLite Task Library, MediaPipe) feed raw pixels and so do we.
    """
    if input_range:
        return Normalization.named(input_range), "flag"
    if metadata.get("input_range"):
        return Normalization.named(metadata["input_range"]), "metadata"
    if standard is not None and standard.mean is not None and not integer_input:
        return Normalization(standard.mean, standard.std), "standard"
    return None, "default"


def pixel_map(dtype: np.dtype, channels: int, scale: float | None, zero_point: int | None,
              normalization: Normalization | None) -> tuple[Any, Any, np.ndarray | None]:
    """(scale, offset, lut) for :class:`edge_deeplab.processing.InputSpec`.

    Float inputs: ``tensor = pixel * scale + offset`` (scalars, or per-channel arrays). Integer inputs:
    ``lut[pixel]`` (a (256,) table, or (channels, 256) when channels differ); ``lut=None`` when the table
    is the identity (uint8) or a shift by -128 (int8), handled without a gather.
    """
    if dtype.kind == "f":
        mean, std = (normalization or Normalization.named("0,1")).per_channel(channels)
        scales, offsets = 1.0 / std, -mean / std
        if np.all(scales == scales[0]) and np.all(offsets == offsets[0]):
            return float(scales[0]), float(offsets[0]), None
        return scales, offsets, None
    if dtype not in (np.uint8, np.int8):
        raise BadModelError(f"model input is {dtype}; expected float32/16, uint8 or int8")
    qmin, qmax = (0, 255) if dtype == np.uint8 else (-128, 127)
    if normalization is None or not scale:
        # Integer models fold normalization into their input quantization: raw pixels span [qmin, qmax].
        return 1.0, qmin, None
    mean, std = normalization.per_channel(channels)
    real = (_PIXELS[None, :] - mean[:, None]) / std[:, None]
    lut = np.clip(np.round(real / scale + zero_point), qmin, qmax)
    if np.all(lut == lut[0]):
        lut = lut[0]
        if np.array_equal(lut, _PIXELS + qmin):
            return 1.0, qmin, None
    return 1.0, qmin, lut.astype(dtype)
