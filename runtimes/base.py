"""The one interface every inference engine implements."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the engine sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None  # affine quantization, when the tensor is (u)int8
    zero_point: int | None = None


class Runtime(abc.ABC):
    """Loads one model file and runs it on ready-made input arrays."""

    name: ClassVar[str]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this engine cannot run on this machine, or None if it can. Must be cheap: no model load."""
        return None

    @abc.abstractmethod
    def __init__(self, path: str | Path, threads: int | None = None) -> None: ...

    @property
    @abc.abstractmethod
    def inputs(self) -> list[TensorInfo]: ...

    @property
    @abc.abstractmethod
    def outputs(self) -> list[TensorInfo]: ...

    @abc.abstractmethod
    def run(self, array: np.ndarray) -> np.ndarray:
        """Run one input tensor (already in the model's dtype and layout); return the first output."""

    def metadata(self) -> dict[str, Any] | None:
        """edge-deeplab metadata embedded in the model (normalization, labels...), if any."""
        return None
