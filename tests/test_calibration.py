"""Representative datasets: folders and dataset splits, seeded sampling, the inference preprocessing,
unreadable files, empty folders, synthetic parity scenes."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_deeplab.calibration import CalibrationSet, load_calibration
from edge_deeplab.calibration.sampling import find_samples
from edge_deeplab.calibration.synthetic import synthetic_set
from edge_deeplab.datasets import load_mask
from edge_deeplab.errors import DatasetError
from edge_deeplab.imaging import load_image
from edge_deeplab.processing import InputSpec, resize_rgb
from edge_deeplab.runtimes.base import TensorInfo

SIZE = (48, 64)  # (height, width): not square, so a swapped axis shows


@pytest.fixture
def portrait_val(shared) -> Path:
    return shared("data/portrait/val")


@pytest.fixture
def photos(portrait_val, tmp_path) -> Path:
    """A plain folder of 6 real photos plus a non-image file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted((portrait_val / "images").iterdir())[:6]:
        shutil.copy(path, folder / path.name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_dataset_split_gives_images_and_masks(portrait_val):
    calibration = load_calibration(portrait_val, SIZE, size=5, seed=0)
    assert calibration.images.shape == (5, *SIZE, 3) and calibration.images.dtype == np.uint8
    assert calibration.masks.shape == (5, *SIZE) and set(np.unique(calibration.masks)) <= {0, 1, 255}
    assert len(calibration.paths) == 5 and list(calibration.paths) == sorted(calibration.paths)
    for path, mask in zip(calibration.paths, calibration.masks):
        full = load_mask(portrait_val / "masks" / f"{path.stem}.png")
        assert mask.mean() == pytest.approx(full.mean(), abs=0.05)  # same mask, nearest-resized


def test_images_are_preprocessed_exactly_as_at_inference(portrait_val):
    calibration = load_calibration(portrait_val, SIZE, size=3, seed=0)
    spec = InputSpec.from_tensor(TensorInfo("image", (1, *SIZE, 3), np.dtype(np.float32)), "0,1")
    for path, image, batch in zip(calibration.paths, calibration.images, calibration.float_inputs()):
        photo = load_image(path)
        np.testing.assert_array_equal(image, resize_rgb(photo, SIZE[1], SIZE[0]))
        np.testing.assert_array_equal(batch[None], spec.prepare(photo))  # the tensor `segment` would feed
    assert calibration.float_inputs().dtype == np.float32
    assert 0.0 <= calibration.float_inputs().min() and calibration.float_inputs().max() <= 1.0


def test_representative_dataset_yields_one_batch_per_image(portrait_val):
    calibration = load_calibration(portrait_val, SIZE, size=4, seed=0)
    batches = list(calibration.representative_dataset())
    assert len(batches) == 4
    assert all(len(b) == 1 and b[0].shape == (1, *SIZE, 3) and b[0].dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), calibration.float_inputs())


def test_sampling_is_seeded(portrait_val):
    first = load_calibration(portrait_val, SIZE, size=10, seed=3)
    again = load_calibration(portrait_val, SIZE, size=10, seed=3)
    other = load_calibration(portrait_val, SIZE, size=10, seed=4)
    assert first.paths == again.paths and np.array_equal(first.images, again.images)
    assert first.paths != other.paths
    everything = load_calibration(portrait_val, SIZE, size=10_000, seed=0)
    assert len(everything) == len(find_samples(portrait_val)) == 150


def test_plain_folder_has_no_masks(photos):
    calibration = load_calibration(photos, SIZE, size=100)
    assert len(calibration) == 6 and calibration.masks is None
    info = calibration.describe()
    assert info["images"] == 6 and info["masks"] is False and len(info["mean"]) == len(info["std"]) == 3
    assert all(0 < m < 1 for m in info["mean"])


def test_unreadable_images_are_replaced_and_reported(photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    calibration = load_calibration(photos, SIZE, size=6, seed=0)
    assert len(calibration) == 6 and all(p.name != "broken.jpg" for p in calibration.paths)
    assert len(calibration.skipped) == 1 and "broken.jpg" in calibration.skipped[0]


def test_subset_keeps_images_and_masks_aligned(portrait_val):
    calibration = load_calibration(portrait_val, SIZE, size=6, seed=0)
    part = calibration.subset(2)
    assert isinstance(part, CalibrationSet) and len(part) == 2
    np.testing.assert_array_equal(part.images, calibration.images[:2])
    np.testing.assert_array_equal(part.masks, calibration.masks[:2])
    assert part.paths == calibration.paths[:2]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "calibration folder not found"),
    (lambda tmp: tmp, "has no images"),
])
def test_no_usable_folder_is_a_dataset_error(make, message, tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match=message):
        load_calibration(make(tmp_path), SIZE)


def test_only_broken_images_is_a_dataset_error(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "ok.png")
    (tmp_path / "ok.png").write_bytes(b"")  # an empty file with an image suffix
    with pytest.raises(DatasetError, match="no readable images"):
        load_calibration(tmp_path, SIZE)


def test_synthetic_scenes_are_seeded_and_smooth():
    first, again = synthetic_set(SIZE, count=3, seed=5), synthetic_set(SIZE, count=3, seed=5)
    assert first.images.shape == (3, *SIZE, 3) and first.masks is None and first.source == "synthetic"
    np.testing.assert_array_equal(first.images, again.images)
    assert not np.array_equal(first.images, synthetic_set(SIZE, count=3, seed=6).images)
    neighbour = np.abs(np.diff(first.images.astype(int), axis=2)).mean()
    assert neighbour < 30  # blobs, not per-pixel noise (which would average ~85)
