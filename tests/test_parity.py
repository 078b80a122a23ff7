"""The parity figures' sign and wording: ``miou_delta`` is artifact minus source (negative = the export
lost accuracy), ``--max-miou-drop`` bounds that loss, and the terminal says when no masks scored it."""
from __future__ import annotations

import numpy as np

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
