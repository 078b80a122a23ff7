"""Does the exported artifact segment like the source model? Pixel agreement and mIoU delta."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_deeplab.metrics import SegmentationMetrics

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.converters.base import ExportOptions
    from edge_deeplab.runtimes.base import Runtime


@dataclass(frozen=True)
class Parity:
    """``miou_delta`` is in mIoU points (0-100 scale): artifact minus source; negative = the export lost.

    Against ground-truth masks when the calibration folder has them, else against the source model's own
    class maps (then the source scores 100 by definition, so the delta is never positive).
    """

    pixel_agreement: float  # share of pixels (0-1) whose class matches the source model's
    miou_delta: float
    images: int
    against: str  # "masks" or "source"
    miou_source: float  # 0-1
    miou_artifact: float  # 0-1
    data: str = ""  # the images' folder, or "synthetic"

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        core = {"pixel_agreement": round(self.pixel_agreement, 6), "miou_delta": round(self.miou_delta, 4),
                "images": self.images}
        if full:
            core.update(against=self.against, miou_source=round(self.miou_source, 6),
                        miou_artifact=round(self.miou_artifact, 6), data=self.data)
        return core


def reference_labels(model: Any, calibration: "CalibrationSet", output: str = "logits",
                     batch: int = 4) -> np.ndarray:
    """(N, H, W) uint8 class maps of the source Keras model, decoded as the artifact's output is.

    ``output`` is the artifact's output kind (``Artifact.output``): ``logits`` go through the very
    :class:`OutputSpec` decode ``segment`` applies to a logits artifact (for two classes a sigmoid
    threshold, so an exact tie is class 1); ``labels`` (a fused-argmax class map) through the same
    argmax the export fuses in (an exact tie is class 0). A QAT model's fake-quantized logits tie
    exactly on many pixels, so decoding source and artifact by different rules flips every tie.
    """
    from edge_deeplab.converters.keras_graph import fused_classmap
    from edge_deeplab.processing import OutputSpec
    from edge_deeplab.runtimes.base import TensorInfo

    inputs = calibration.float_inputs()
    height, width = calibration.input_size
    outputs = []
    for i in range(0, len(inputs), batch):
        logits = model(inputs[i:i + batch], training=False)
        if output == "labels":
            logits = fused_classmap(logits)
        outputs.append(logits.numpy())
    raw = np.concatenate(outputs)
    decoder = OutputSpec.from_tensor(TensorInfo(output, (1, *raw.shape[1:]), raw.dtype), declared=output)
    return np.stack([decoder.decode(raw[i:i + 1], width, height).labels for i in range(len(raw))])


def artifact_labels(runtime: "Runtime", calibration: "CalibrationSet") -> np.ndarray:
    """(N, H, W) uint8 class maps of the artifact, through the same pre/post-processing as ``segment``."""
    from edge_deeplab.processing import Segmenter

    segmenter = Segmenter(runtime)
    height, width = calibration.input_size
    return np.stack([segmenter(image).labels.reshape(height, width) for image in calibration.images])


def mean_iou(predicted: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """Dataset-level mIoU of (N, H, W) maps over the classes present in either; 255 in target ignored."""
    metrics = SegmentationMetrics(num_classes, boundary=False)
    for pred, true in zip(predicted, target):
        metrics.update(pred, true)
    miou = metrics.miou()
    return 1.0 if np.isnan(miou) else miou


def compare(source: np.ndarray, artifact: np.ndarray, num_classes: int,
            masks: np.ndarray | None = None, data: str = "") -> Parity:
    agreement = float((source == artifact).mean())
    if masks is not None:
        miou_source, miou_artifact = mean_iou(source, masks, num_classes), mean_iou(artifact, masks, num_classes)
        against = "masks"
    else:
        miou_source, miou_artifact = 1.0, mean_iou(artifact, source, num_classes)
        against = "source"
    return Parity(agreement, 100.0 * (miou_artifact - miou_source), len(source), against,
                  miou_source, miou_artifact, data)


def loss(parity: Parity) -> float:
    """mIoU points the artifact lost against the source (negative: it gained)."""
    return -parity.miou_delta


def judge(parity: Parity, precision: str, options: "ExportOptions",
          qat: bool = False) -> tuple[str | None, str | None]:
    """(why ``parity`` fails, a note) under the rule for ``precision``; ``qat``: the source is a QAT model.

    float32 must agree with the source on ``min_agreement`` of the pixels. Reduced precision may lose up
    to ``max_miou_drop`` mIoU points, which takes ground-truth masks to measure: against the source's own
    maps, every disagreeing pixel counts as an error, so the figure is reported but not enforced.
    """
    if precision == "fp32":
        if parity.pixel_agreement < options.min_agreement:
            return (f"parity failed: {100 * parity.pixel_agreement:.3f}% of pixels agree with the source "
                    f"model, below the {100 * options.min_agreement:.1f}% a float32 export must reach"), None
        return None, None
    if parity.against != "masks":
        return None, ("mIoU drop not enforced: no ground-truth masks (give --calibration a dataset split "
                      "with masks/ to check it); the figures compare with the source model's maps")
    if loss(parity) > options.max_miou_drop:
        # A QAT source carries its own ranges (no calibration) and is QAT already: neither remedy applies.
        fixes = ("fine-tune it longer (a larger qat_epochs with --resume: its learned ranges are the int8 "
                 "file's), or raise --max-miou-drop" if qat
                 else "calibrate with more representative images, train with --qat, or raise --max-miou-drop")
        return (f"parity failed: mIoU drops {loss(parity):.2f} points on {parity.images} images, more "
                f"than --max-miou-drop {options.max_miou_drop:g}; {fixes}"), None
    return None, None
