"""The parity figures' sign and wording: ``miou_delta`` is artifact minus source (negative = the export
lost accuracy), ``--max-miou-drop`` bounds that loss, and the terminal says when no masks scored it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_deeplab.converters.base import ExportOptions
from edge_deeplab.converters.parity import compare, judge
from edge_deeplab.converters.pipeline import ExportResult, _summary

MASKS = np.zeros((2, 8, 8), np.uint8)
MASKS[:, 2:6, 2:6] = 1


def with_errors(labels: np.ndarray, pixels: int) -> np.ndarray:
    """``labels`` with the person class cut back by ``pixels`` pixels per image."""
    worse = labels.copy()
    worse[:, 2, 2:2 + pixels] = 0
    return worse


def test_an_artifact_worse_than_its_source_has_a_negative_delta():
    worse = with_errors(MASKS, 3)
    parity = compare(MASKS, worse, 2, masks=MASKS)
    assert parity.against == "masks" and parity.miou_source == 1.0 and parity.miou_artifact < 1.0
    assert parity.miou_delta == 100 * (parity.miou_artifact - parity.miou_source) < 0
    # the other way round, the artifact gained
    assert compare(worse, MASKS, 2, masks=MASKS).miou_delta == -parity.miou_delta > 0


def test_max_miou_drop_refuses_a_loss_and_never_a_gain():
    worse = with_errors(MASKS, 4)
    lost = compare(MASKS, worse, 2, masks=MASKS)
    assert -lost.miou_delta > 5
    bad, _ = judge(lost, "int8", ExportOptions(max_miou_drop=5.0))
    assert bad.startswith(f"parity failed: mIoU drops {-lost.miou_delta:.2f} points on 2 images")
    assert judge(lost, "int8", ExportOptions(max_miou_drop=-lost.miou_delta + 0.1)) == (None, None)
    gained = compare(worse, MASKS, 2, masks=MASKS)  # the same figure, gained: never a failure
    assert judge(gained, "int8", ExportOptions(max_miou_drop=0.0)) == (None, None)


def test_without_masks_the_delta_is_agreement_with_the_source_and_never_positive():
    parity = compare(MASKS, with_errors(MASKS, 2), 2, data="synthetic")
    assert parity.against == "source" and parity.miou_source == 1.0 and parity.miou_delta < 0
    assert parity.to_dict(full=True)["data"] == "synthetic"


def summary(parity) -> str:
    return _summary(ExportResult("tflite-int8", "ok", None, None, parity=parity))


def test_the_terminal_line_states_the_sign_and_what_scored_it():
    real = compare(MASKS, with_errors(MASKS, 3), 2, masks=MASKS, data="/data/val")
    line = summary(real)
    assert f"mIoU delta {real.miou_delta:+.2f} pts (artifact - source) on 2 images" in line
    assert "mIoU delta -" in line and "synthetic" not in line and "own maps" not in line  # a loss reads negative

    synthetic = compare(MASKS, with_errors(MASKS, 3), 2, data="synthetic")
    assert summary(synthetic).endswith(
        f"mIoU delta {synthetic.miou_delta:+.2f} pts (artifact - source) on 2 synthetic images, "
        "scored against the source's own maps")

    unlabelled = compare(MASKS, MASKS, 2, data="/data/photos")  # real images, no masks/
    assert summary(unlabelled).endswith(
        "mIoU delta +0.00 pts (artifact - source) on 2 images without masks, scored against the source's own maps")


def test_the_shipped_manifests_use_the_same_sign():
    """The packaged files' manifests were written before the sign was fixed; their figures must agree."""
    import json
    from importlib import resources
    assets = resources.files("edge_deeplab") / "assets"
    manifests = [json.loads(p.read_text()) for p in assets.iterdir() if p.name.endswith(".tflite.json")]
    parities = [m["parity"] for m in manifests if m.get("parity")]
    assert len(parities) >= 5
    for parity in parities:
        expected = 100 * (parity["miou_artifact"] - parity["miou_source"])
        assert abs(parity["miou_delta"] - expected) < 2e-4, parity


def test_a_qat_source_is_not_told_to_train_with_qat():
    lost = compare(MASKS, with_errors(MASKS, 4), 2, masks=MASKS)
    options = ExportOptions(max_miou_drop=1.0)
    assert "--qat" in judge(lost, "int8", options)[0]
    bad, _ = judge(lost, "int8", options, qat=True)
    assert bad.startswith("parity failed: mIoU drops") and "--qat" not in bad and "calibrate" not in bad


# Exact ties: a QAT model's fake-quantized logits tie on many pixels. The source's reference maps must
# decode a tie exactly as the artifact's output is decoded, for each output kind, or parity counts
# every tie as a lost pixel.
TIE_SIZE = (32, 32)


def tie_images() -> np.ndarray:
    """Three bands per image: R > G (class 0), R == G (a tie), R < G (class 1); varied levels."""
    rng = np.random.default_rng(0)
    images = np.zeros((4, *TIE_SIZE, 3), np.uint8)
    for image in images:
        low, high = sorted(rng.choice(np.arange(20, 236), 2, replace=False))
        image[:, :10, 0], image[:, :10, 1] = high, low
        image[:, 10:22, 0] = image[:, 10:22, 1] = rng.integers(0, 256)
        image[:, 22:, 0], image[:, 22:, 1] = low, high
        image[..., 2] = rng.integers(0, 256)
    return images


def tie_source(channels: int):
    """A 1x1 conv over the RGB input: 2 channels = (R, G) logits, 1 channel = the logit G - R (class 1
    where G wins); both tie exactly where R == G, in float and in int8."""
    keras = pytest.importorskip("tf_keras")
    from edge_deeplab.models.config import ModelConfig
    from edge_deeplab.sources import Source

    image = keras.Input((*TIE_SIZE, 3), batch_size=1)
    conv = keras.layers.Conv2D(channels, 1, use_bias=False)
    model = keras.Model(image, conv(image))
    kernel = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]) if channels == 2 else np.array([[-1.0], [1.0], [0.0]])
    conv.set_weights([kernel[None, None].astype(np.float32)])
    config = ModelConfig.from_dict({"backbone": "mobilenet_v2", "head": "lraspp", "input_size": list(TIE_SIZE),
                                    "num_classes": 2, "labels": ["background", "person"]})
    return Source(f"tie{channels}", "checkpoint", config, model, weights=Path("tie.weights.h5"))


@pytest.mark.parametrize("channels", [2, 1])
def test_exact_ties_decode_alike_in_source_and_artifact(channels, tmp_path):
    """tflite (float logits), tflite-int8 with a fused argmax (classmap) and with int8 logits: each artifact,
    run through ``segment``'s decode, agrees with the source's reference maps on every pixel, ties included."""
    pytest.importorskip("tensorflow")
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.converters.parity import reference_labels
    from edge_deeplab.converters.pipeline import export, make_converters

    source = tie_source(channels)
    images = tie_images()
    calibration = CalibrationSet(images, None, (), "ties", 0)
    if channels == 2:  # the rules themselves: argmax gives a tie to class 0, the two-class threshold to 1
        assert (reference_labels(source.model, calibration, "labels")[:, :, 10:22] == 0).all()
        assert (reference_labels(source.model, calibration, "logits")[:, :, 10:22] == 1).all()
    rows = []
    for output in ("classmap", "logits"):
        options = ExportOptions(int8_output=output, parity_images=len(images))
        formats = ["tflite", "tflite-int8"] if output == "classmap" else ["tflite-int8"]
        rows += export(source, make_converters(formats, options), tmp_path / output, calibration)
    for row in rows:
        assert row.status == "ok", row.reason
        assert row.parity.pixel_agreement == 1.0, (row.format, row.path, row.parity)
