"""Representative datasets for post-training quantization, QAT and export parity checks."""
from __future__ import annotations

from edge_deeplab.calibration.dataset import CalibrationSet, load_calibration

__all__ = ["CalibrationSet", "load_calibration"]
