"""Segmentation metrics accumulated over a dataset: confusion matrix -> mIoU, per-class IoU, pixel
accuracy, and Boundary IoU (Cheng et al., CVPR 2021). Pure numpy.

    metrics = SegmentationMetrics(num_classes=2)
    for pred, mask in ...: metrics.update(pred, mask)    # (H, W) integer maps, 255 = ignore
    metrics.summary()  # {"miou", "iou", "pixel_accuracy", "boundary_iou"}
"""
from __future__ import annotations

import math

import numpy as np

IGNORE_INDEX = 255


def _window_sums(mask: np.ndarray, radius: int) -> np.ndarray:
    """Sum of ``mask`` over each (2r+1)^2 window, pixels beyond the image counting as 0."""
    k = 2 * radius + 1
    table = np.zeros((mask.shape[0] + 2 * radius + 1, mask.shape[1] + 2 * radius + 1), np.int32)
    table[radius + 1:radius + 1 + mask.shape[0], radius + 1:radius + 1 + mask.shape[1]] = mask
    table = table.cumsum(0, out=table).cumsum(1, out=table)
    return table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]


def inner_boundary(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``mask`` within ``radius`` (chessboard distance) of its contour or the image border."""
    k = 2 * radius + 1
    return mask & (_window_sums(mask, radius) < k * k)


def boundary_radius(height: int, width: int, ratio: float = 0.02) -> int:
    """The paper's band width: ``ratio`` of the image diagonal, at least one pixel."""
    return max(1, int(round(ratio * math.hypot(height, width))))


class SegmentationMetrics:
    """Accumulates a confusion matrix (rows = ground truth, columns = prediction) and boundary counts.

    The class count grows if a label beyond ``num_classes`` shows up, so nothing is silently dropped.
    """

    def __init__(self, num_classes: int = 2, ignore_index: int = IGNORE_INDEX, boundary: bool = True,
                 boundary_ratio: float = 0.02):
        self.ignore_index, self.boundary, self.boundary_ratio = ignore_index, boundary, boundary_ratio
        self.matrix = np.zeros((num_classes, num_classes), np.int64)
        self._boundary_inter = np.zeros(num_classes, np.int64)
        self._boundary_union = np.zeros(num_classes, np.int64)
        self.images = 0

    @property
    def num_classes(self) -> int:
        return self.matrix.shape[0]

    def _grow(self, size: int) -> None:
        if size <= self.num_classes:
            return
        matrix = np.zeros((size, size), np.int64)
        matrix[:self.num_classes, :self.num_classes] = self.matrix
        self.matrix = matrix
        self._boundary_inter = np.pad(self._boundary_inter, (0, size - len(self._boundary_inter)))
        self._boundary_union = np.pad(self._boundary_union, (0, size - len(self._boundary_union)))

    def update(self, prediction: np.ndarray, target: np.ndarray) -> None:
        """Add one image: ``prediction`` and ``target`` are (H, W) class maps of the same shape."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
        valid = target != self.ignore_index
        pred, true = prediction[valid].astype(np.int64), target[valid].astype(np.int64)
        if pred.size:
            self._grow(int(max(pred.max(), true.max())) + 1)
        n = self.num_classes
        self.matrix += np.bincount(true * n + pred, minlength=n * n).reshape(n, n)
        if self.boundary:
            self._update_boundary(prediction, target, valid)
        self.images += 1

    def _update_boundary(self, prediction: np.ndarray, target: np.ndarray, valid: np.ndarray) -> None:
        radius = boundary_radius(*target.shape, self.boundary_ratio)
        # Ignored pixels cannot be wrong: they take the prediction's class, so they add no fake contours.
        target = np.where(valid, target, prediction)
        present = np.union1d(np.unique(prediction[valid]), np.unique(target[valid]))
        for cls in present:
            gt = inner_boundary(target == cls, radius) & valid
            dt = inner_boundary(prediction == cls, radius) & valid
            self._boundary_inter[cls] += np.count_nonzero(gt & dt)
            self._boundary_union[cls] += np.count_nonzero(gt | dt)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both predictions and ground truth."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def boundary_iou(self) -> float:
        """Mean over classes of dataset-level Boundary IoU (NaN if ``boundary=False``)."""
        union = self._boundary_union
        if not self.boundary or not union.any():
            return float("nan")
        return float(np.mean(self._boundary_inter[union > 0] / union[union > 0]))

    def summary(self) -> dict:
        """The ``evaluate`` JSON metric keys; NaN becomes None so the JSON stays valid."""
        def clean(x: float):
            return None if math.isnan(x) else round(float(x), 6)
        return {"miou": clean(self.miou()), "iou": [clean(x) for x in self.iou()],
                "pixel_accuracy": clean(self.pixel_accuracy()), "boundary_iou": clean(self.boundary_iou())}
