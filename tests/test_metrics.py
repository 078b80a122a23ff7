"""Dataset folders and segmentation metrics (reused by the trainer and calibration)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_deeplab.datasets import MaskValues, Pair, list_pairs, load_mask
from edge_deeplab.errors import DatasetError
from edge_deeplab.metrics import SegmentationMetrics, boundary_radius, inner_boundary

def make_dataset(root: Path, stems=("a", "b"), size=(8, 6)) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in stems:
        Image.new("RGB", size, (10, 20, 30)).save(root / "images" / f"{stem}.jpg")
        Image.new("L", size, 1).save(root / "masks" / f"{stem}.png")
    return root


# ---------------------------------------------------------------- datasets
def test_list_pairs_matches_stems_sorted(tmp_path):
    root = make_dataset(tmp_path, stems=("b", "a"))
    (root / "masks" / "orphan.png").write_bytes(b"")  # a mask without image is ignored
    pairs = list_pairs(root)
    assert pairs == [Pair(root / "images" / "a.jpg", root / "masks" / "a.png"),
                     Pair(root / "images" / "b.jpg", root / "masks" / "b.png")]


@pytest.mark.parametrize("breakage,message", [
    ("no_folder", "not found"), ("no_masks", "masks/"), ("no_images_dir", "images/"),
    ("missing_mask", "have no mask"), ("empty", "holds no images")])
def test_bad_layouts_raise_dataset_error(tmp_path, breakage, message):
    root = tmp_path / "data"
    if breakage != "no_folder":
        make_dataset(root, stems=() if breakage == "empty" else ("a", "b"))
    if breakage == "no_masks":
        for path in (root / "masks").iterdir():
            path.unlink()
        (root / "masks").rmdir()
    if breakage == "no_images_dir":
        for path in (root / "images").iterdir():
            path.unlink()
        (root / "images").rmdir()
    if breakage == "missing_mask":
        (root / "masks" / "b.png").unlink()
    with pytest.raises(DatasetError, match=message):
        list_pairs(root)


def test_load_mask_reads_palette_indices_not_colours(tmp_path):
    indices = np.array([[0, 1, 2], [255, 1, 0]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192])
    image.save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == indices.tolist()


def test_load_mask_rejects_rgb_and_garbage(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match="single-channel"):
        load_mask(tmp_path / "rgb.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="cannot read"):
        load_mask(tmp_path / "junk.png")


def test_mask_values_accept_classes_and_ignore():
    values = MaskValues("data", num_classes=2)
    values.add(np.array([[0, 1], [255, 0]], np.uint8), "a.png")
    values.add(np.zeros((2, 2), np.uint8), "b.png")  # a photo with nobody in it
    values.finish()
    assert values.labelled and values.ignored and values.largest == 1
    several = MaskValues("data")  # class count unknown: the largest index tells it
    several.add(np.array([[0, 3], [255, 1]], np.uint8), "d.png")
    assert several.largest == 3


def test_mask_values_name_a_matte_and_how_to_fix_it():
    values = MaskValues("data", num_classes=2)
    values.add(np.array([[0, 1]], np.uint8), "a.png")
    with pytest.raises(DatasetError, match=r"b.png: mask holds value 128, but the model has 2 classes.*threshold"):
        values.add(np.array([[0, 128], [1, 255]], np.uint8), "b.png")
    MaskValues("data").add(np.array([[0, 128]], np.uint8), "c.png")  # class count unknown: any value


@pytest.mark.parametrize("num_classes", [2, None])
def test_mask_values_refuse_binary_masks_whose_255_was_meant_as_person(num_classes):
    values = MaskValues("data/people", num_classes)
    for name in ("a.png", "b.png"):
        values.add(np.array([[0, 255], [0, 255]], np.uint8), name)
    with pytest.raises(DatasetError, match=r"masks of data/people hold only 0 and 255.*1 person"):
        values.finish()
    ignored_only = MaskValues("data/blank", num_classes)
    ignored_only.add(np.full((2, 2), 255, np.uint8), "c.png")
    with pytest.raises(DatasetError, match=r"masks of data/blank hold only 255, and 255 means ignore"):
        ignored_only.finish()
    background_only = MaskValues("data/empty", num_classes)
    background_only.add(np.zeros((2, 2), np.uint8), "a.png")
    background_only.finish()  # no 255 either: nothing suggests a misread


def test_real_portrait_split(shared):
    pairs = list_pairs(shared("data/portrait/val"))
    assert len(pairs) == 150
    mask = load_mask(pairs[0].mask)
    assert mask.shape == (800, 600) and set(np.unique(mask)) <= {0, 1, 255}


# ---------------------------------------------------------------- metrics
def test_confusion_metrics_by_hand():
    target = np.array([[0, 0, 1, 1], [0, 255, 1, 2]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 0, 2, 2]], np.uint8)
    metrics = SegmentationMetrics(num_classes=3, boundary=False)
    metrics.update(pred, target)
    # valid pixels (ignore dropped): class0 tp=2 fp=0 fn=1; class1 tp=2 fp=1 fn=1; class2 tp=1 fp=1 fn=0
    np.testing.assert_allclose(metrics.iou(), [2 / 3, 2 / 4, 1 / 2])
    assert metrics.miou() == pytest.approx((2 / 3 + 0.5 + 0.5) / 3)
    assert metrics.pixel_accuracy() == pytest.approx(5 / 7)
    summary = metrics.summary()
    assert set(summary) == {"miou", "iou", "pixel_accuracy", "boundary_iou"} and summary["boundary_iou"] is None


def test_absent_classes_are_nan_and_unknown_labels_grow_the_matrix():
    metrics = SegmentationMetrics(num_classes=2, boundary=False)
    metrics.update(np.array([[0, 3]], np.uint8), np.array([[0, 0]], np.uint8))
    iou = metrics.iou()
    assert metrics.num_classes == 4 and np.isnan(iou[1]) and iou[3] == 0.0
    assert metrics.summary()["iou"][1] is None


def _naive_inner_boundary(mask: np.ndarray, radius: int) -> np.ndarray:
    padded = np.pad(mask, radius, constant_values=False)
    out = np.zeros_like(mask)
    for y in range(mask.shape[0]):
        for x in range(mask.shape[1]):
            window = padded[y:y + 2 * radius + 1, x:x + 2 * radius + 1]
            out[y, x] = mask[y, x] and not window.all()
    return out


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_inner_boundary_matches_a_naive_erosion(radius):
    mask = np.random.default_rng(radius).random((17, 23)) > 0.3
    mask[4:14, 5:20] = True
    np.testing.assert_array_equal(inner_boundary(mask, radius), _naive_inner_boundary(mask, radius))


def test_boundary_iou_is_one_for_perfect_and_drops_for_a_shift():
    target = np.zeros((100, 100), np.uint8)
    target[20:80, 20:80] = 1
    perfect, shifted = SegmentationMetrics(2), SegmentationMetrics(2)
    perfect.update(target, target)
    shifted.update(np.roll(target, 3, axis=1), target)
    assert perfect.boundary_iou() == 1.0
    assert boundary_radius(100, 100) == 3
    # The shift barely moves mask IoU but strongly moves boundary IoU: that is what the metric is for.
    assert shifted.miou() > 0.9 and shifted.boundary_iou() < 0.75
