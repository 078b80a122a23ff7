"""People data for training: a model-file teacher (pseudo-labels, soft targets), unlabelled folders,
composite augmentation, several training and val folders."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.errors import ConfigError, DatasetError
from edge_deeplab.train.config import TrainConfig

FIXTURES = Path(__file__).parent / "fixtures" / "models"
TEACHER = FIXTURES / "two_class_float.tflite"  # class 1 iff (R + B) / 2 > 0.4


@pytest.fixture
def portrait_val(shared) -> Path:
    return shared("data/portrait/val")


def _copy_images(portrait_val: Path, out: Path, count: int, masks: bool, size=(48, 64)) -> Path:
    (out / "images").mkdir(parents=True)
    if masks:
        (out / "masks").mkdir()
    for image in sorted((portrait_val / "images").iterdir())[:count]:
        Image.open(image).resize(size).save(out / "images" / f"{image.stem}.png")
        if masks:
            mask = portrait_val / "masks" / f"{image.stem}.png"
            Image.open(mask).resize(size, Image.NEAREST).save(out / "masks" / mask.name)
    return out


@pytest.mark.parametrize("band", [(0.5, 0.5), (0.3, 0.7)])
def test_pseudo_labels_are_what_segment_gives_for_the_teacher_file(portrait_val, tmp_path, band):
    from edge_deeplab.cli import main
    from edge_deeplab.train.data import load_folder
    from edge_deeplab.train.file_teacher import FileTeacher
    folder = _copy_images(portrait_val, tmp_path / "scenes", 3, masks=False)
    data = load_folder(folder, (40, 40), masks_at_size=False, teacher=FileTeacher(TEACHER), band=band)
    result = CliRunner().invoke(main, ["segment", str(TEACHER), str(folder / "images"), "--out",
                                       str(tmp_path / "seg"), "--no-refine"])
    assert result.exit_code == 0, result.output
    assert not data.is_labelled.any()
    ignored = 0
    for name, labels in zip(data.names, data.masks):
        expected = np.asarray(Image.open(tmp_path / "seg" / f"{name}.png"))
        sure = labels != 255
        ignored += int((~sure).sum())
        assert labels.shape == expected.shape
        assert np.array_equal(labels[sure], expected[sure])
        assert set(np.unique(labels[sure])) <= {0, 1}
    # The degenerate band is exactly segment's mask; a real band leaves uncertain pixels out.
    assert (ignored == 0) == (band == (0.5, 0.5))


def test_teacher_probability_is_kept_beside_labelled_images(portrait_val, tmp_path):
    from edge_deeplab.train.data import load_folders
    from edge_deeplab.train.file_teacher import FileTeacher
    labelled = _copy_images(portrait_val, tmp_path / "a", 2, masks=True)
    unlabelled = _copy_images(portrait_val, tmp_path / "b", 2, masks=False)
    data = load_folders([labelled, unlabelled], (32, 32), FileTeacher(TEACHER))
    assert data.images.shape == (4, 32, 32, 3) and data.soft.shape == (4, 32, 32)
    assert data.is_labelled.tolist() == [True, True, False, False]
    # The labelled images keep their own masks, not the teacher's.
    own = np.asarray(Image.open(labelled / "masks" / f"{data.names[0]}.png").resize((32, 32), Image.NEAREST))
    assert np.array_equal(data.masks[0], own)


def test_unlabelled_folder_without_a_file_teacher_is_a_clear_error(portrait_val, tmp_path):
    from edge_deeplab.train.data import load_folder
    folder = _copy_images(portrait_val, tmp_path / "scenes", 1, masks=False)
    with pytest.raises(DatasetError, match="no masks/.*teacher"):
        load_folder(folder, (32, 32))


@pytest.mark.parametrize("model, message", [("argmax_uint8.tflite", "class map"),
                                            ("int8_logits.tflite", "3-class scores")])
def test_a_teacher_that_is_not_a_person_model_fails_before_training(model, message):
    from edge_deeplab.train.file_teacher import FileTeacher
    with pytest.raises(ConfigError, match=message):
        FileTeacher(FIXTURES / model)


def test_a_missing_or_broken_teacher_file_is_a_config_error(tmp_path):
    from edge_deeplab.train.file_teacher import FileTeacher
    with pytest.raises(ConfigError, match="no such file"):
        FileTeacher(tmp_path / "nope.tflite")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="cannot be used"):
        FileTeacher(broken)


def test_an_ensemble_teacher_is_the_mean_of_its_files(portrait_val, tmp_path):
    from edge_deeplab.imaging import load_image
    from edge_deeplab.train.data import load_folder
    from edge_deeplab.train.file_teacher import FileTeacher, file_teacher, pseudo_labels
    other = FIXTURES / "metadata_logit.tflite"  # one logit channel, person iff (R + B) / 2 > 0.1
    folder = _copy_images(portrait_val, tmp_path / "scenes", 2, masks=False)
    images = [load_image(path) for path in sorted((folder / "images").iterdir())]
    ensemble = file_teacher([TEACHER, other])
    assert isinstance(file_teacher([TEACHER]), FileTeacher)
    for image in images:
        first, second = FileTeacher(TEACHER).probability(image), FileTeacher(other).probability(image)
        assert not np.array_equal(first, second)
        expected = ((first.astype(np.uint16) + second + 1) // 2).astype(np.uint8)
        assert np.array_equal(ensemble.probability(image), expected)
    # Its pseudo-labels are the band applied to the mean.
    data = load_folder(folder, (48, 64), masks_at_size=False, teacher=ensemble, band=(0.3, 0.7))
    for labels, image in zip(data.masks, images):
        assert np.array_equal(labels, pseudo_labels(ensemble.probability(image), (0.3, 0.7)))


def test_an_ensemble_needs_model_files_throughout():
    TrainConfig(teacher=str(TEACHER), teacher_ensemble=(str(TEACHER),)).validate()
    with pytest.raises(ConfigError, match="teacher_ensemble.*'runs/big'"):
        TrainConfig(teacher="runs/big", teacher_ensemble=(str(TEACHER),)).validate()
    with pytest.raises(ConfigError, match="teacher_ensemble.*'portrait'"):
        TrainConfig(teacher=str(TEACHER), teacher_ensemble=("portrait",)).validate()


@pytest.mark.parametrize("width, height, tiles, expected", [
    (854, 480, 3, [(0, 640), (107, 747), (214, 854)]),  # a DAVIS frame: three 4:3 tiles
    (640, 480, 3, [(0, 640)]),  # no wider than a tile: the image itself
    (480, 640, 3, [(0, 480)]),
    (64, 12, 2, [(0, 16), (16, 32), (32, 48), (48, 64)]),  # two tiles would not cover it: four
])
def test_a_tiled_teacher_covers_wide_images_with_overlapping_tiles(width, height, tiles, expected):
    from edge_deeplab.train.file_teacher import FileTeacher, TiledTeacher
    assert TiledTeacher(FileTeacher(TEACHER), tiles, 4 / 3).windows(width, height) == expected


def test_a_tiled_teacher_averages_its_tiles_where_they_overlap(portrait_val, tmp_path):
    from edge_deeplab.imaging import load_image
    from edge_deeplab.train.data import load_folder
    from edge_deeplab.train.file_teacher import FileTeacher, file_teacher, pseudo_labels
    plain = FileTeacher(TEACHER)
    tiled = file_teacher([TEACHER], tiles=3, tile_aspect=1.0)
    wide = _copy_images(portrait_val, tmp_path / "wide", 2, masks=False, size=(96, 32))
    for path in sorted((wide / "images").iterdir()):
        image = load_image(path)
        tiles = [plain.probability(np.ascontiguousarray(image[:, left:left + 32])) for left in (0, 32, 64)]
        # Windows at 0, 32, 64 of width 32 do not overlap: each column is its own tile's.
        assert np.array_equal(tiled.probability(image), np.concatenate(tiles, axis=1))
        assert not np.array_equal(tiled.probability(image), plain.probability(image))
        overlapping = file_teacher([TEACHER], tiles=3, tile_aspect=1.5)  # 48 wide at 0, 24, 48
        middle = [plain.probability(np.ascontiguousarray(image[:, left:left + 48]))[:, 24 - left:48 - left]
                  for left in (0, 24)]
        expected = (middle[0].astype(np.uint16) + middle[1] + 1) // 2
        assert np.array_equal(overlapping.probability(image)[:, 24:48], expected)
    # A portrait (narrower than a tile) is the teacher's own probability; pseudo-labels follow the tiles.
    narrow = load_image(sorted((portrait_val / "images").iterdir())[0])
    assert np.array_equal(tiled.probability(narrow), plain.probability(narrow))
    data = load_folder(wide, (32, 96), masks_at_size=False, teacher=tiled, band=(0.3, 0.7))
    for labels, name in zip(data.masks, data.names):
        assert np.array_equal(labels, pseudo_labels(tiled.probability(load_image(wide / "images" /
                                                                               f"{name}.png")), (0.3, 0.7)))


@pytest.mark.parametrize("option, value, out_of_range", [("teacher_tiles", 3, 0),
                                                        ("ignore_disputed_background", 0.8, 1.5)])
def test_model_file_teacher_options_need_one_and_sane_values(option, value, out_of_range):
    TrainConfig(teacher=str(TEACHER), **{option: value}).validate()
    with pytest.raises(ConfigError, match=f"{option} needs a model-file teacher"):
        TrainConfig(teacher="runs/big", **{option: value}).validate()
    with pytest.raises(ConfigError, match=f"{option} must be in"):
        TrainConfig(teacher=str(TEACHER), **{option: out_of_range}).validate()


def test_a_tile_aspect_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="teacher_tile_aspect must be in"):
        TrainConfig(teacher=str(TEACHER), teacher_tiles=3, teacher_tile_aspect=10.0).validate()


def test_background_the_teacher_calls_person_is_ignored_on_labelled_images(portrait_val, tmp_path):
    from edge_deeplab.imaging import load_image
    from edge_deeplab.train.data import load_folder
    from edge_deeplab.train.file_teacher import FileTeacher
    folder = _copy_images(portrait_val, tmp_path / "a", 2, masks=True)
    teacher = FileTeacher(TEACHER)
    plain = load_folder(folder, (48, 64), masks_at_size=False, teacher=teacher)
    data = load_folder(folder, (48, 64), masks_at_size=False, teacher=teacher, disputed=0.8)
    disputed_somewhere = False
    for name, own, mask in zip(data.names, plain.masks, data.masks):
        probability = teacher.probability(load_image(folder / "images" / f"{name}.png"))
        disputed = (own == 0) & (probability >= 204)
        disputed_somewhere |= bool(disputed.any())
        assert np.all(mask[disputed] == 255)
        assert np.array_equal(mask[~disputed], own[~disputed])  # person and other background kept
    assert disputed_somewhere


def test_bodypix_teacher_script_keeps_the_person_head_runnable(shared, tmp_path):
    """configs/bodypix_teacher.py drops Coral's custom decoder op; what remains runs as a teacher and
    rates a portrait's person above its background."""
    import runpy
    from edge_deeplab.datasets import list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.train.file_teacher import FileTeacher
    source = shared("models/edgetpu_pairs/bodypix_mobilenet_v1_075_512_512_16_quant_decoder.tflite")
    script = runpy.run_path(str(Path(__file__).parents[1] / "configs" / "bodypix_teacher.py"))
    dest = tmp_path / "bodypix.tflite"
    script["main"](str(source), str(dest))
    teacher = FileTeacher(dest)
    pair = list_pairs(shared("data/portrait/val"))[0]
    probability, mask = teacher.probability(load_image(pair.image)), load_mask(pair.mask)
    assert probability.shape == mask.shape
    person, predicted = mask == 1, probability >= 128
    assert (person & predicted).sum() / (person | predicted).sum() > 0.7  # BodyPix: 0.87 on portrait/val
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    for wrong in (dest, junk):
        with pytest.raises(SystemExit, match="not the BodyPix decoder model"):
            script["main"](str(wrong), str(tmp_path / "again.tflite"))
    with pytest.raises(SystemExit, match="no such file"):
        script["main"](str(tmp_path / "nope.tflite"), str(tmp_path / "again.tflite"))
    assert not (tmp_path / "again.tflite").exists()


# -- composite augmentation ------------------------------------------------------------------------
def _toy_set():
    """Two labelled samples with a 'person' block, two unlabelled scenes (uniform colours)."""
    images = np.zeros((4, 60, 80, 3), np.uint8)
    targets = np.zeros((4, 60, 80, 2), np.uint8)
    images[0], images[1] = 50, 60
    images[0, 10:50, 30:45], images[1, 20:58, 10:20] = 250, 240
    targets[0, 10:50, 30:45, 0] = targets[1, 20:58, 10:20, 0] = 1
    images[2], images[3] = (0, 0, 120), (0, 120, 0)
    targets[2:, :5, :, 0] = 255  # a pseudo-labelled scene with an uncertain strip
    return images, targets, np.array([True, True, False, False])


def test_composite_pastes_people_onto_scenes_with_person_labels():
    from edge_deeplab.train.composite import Compositor
    images, targets, labelled = _toy_set()
    compose = Compositor(images, targets, labelled, paste_max=3, height_range=(0.3, 0.8))
    assert compose.donors == [0, 1] and list(compose.backgrounds) == [2, 3]
    for seed in range(20):
        image, target = compose(np.random.default_rng(seed))
        person = target[..., 0] == 1
        assert person.any()
        # Person pixels are bright (the donors' people), the rest is a scene's colour.
        assert image[person].mean() > 150
        scene = image[~person & (target[..., 0] != 255)]
        assert scene.max() <= 250 and (scene[:, 0] == 0).mean() > 0.8
        assert np.array_equal(target[..., 1][person], np.full(person.sum(), 255))
    first = compose(np.random.default_rng(7))
    again = compose(np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert images[2].max() == 120  # the cached scenes are not modified


def test_composite_needs_people_to_cut_out():
    from edge_deeplab.train.composite import Compositor, person_box
    images, targets, labelled = _toy_set()
    targets[:2, ..., 0] = 0
    assert person_box(targets[0, ..., 0]) is None
    assert not Compositor(images, targets, labelled, 2, (0.3, 0.8)).usable


def test_batches_carry_the_teacher_probability_and_are_reproducible():
    pytest.importorskip("tensorflow")
    from edge_deeplab.train.data import CachedSet, train_dataset
    images, targets, labelled = _toy_set()
    data = CachedSet(images, list(targets[..., 0]), ["a", "b", "c", "d"], targets[..., 1], labelled)
    config = TrainConfig(batch_size=2, paste_prob=0.7, seed=2)

    def run():
        return [tuple(t.numpy() for t in batch) for batch in train_dataset(data, config, (48, 64), 0)]

    first, again = run(), run()
    assert len(first) == 2 and all(len(batch) == 3 for batch in first)
    image, labels, soft = first[0]
    assert image.shape == (2, 48, 64, 3) and labels.shape == soft.shape == (2, 48, 64)
    assert 0.0 <= soft.min() and soft.max() <= 1.0
    assert all(np.array_equal(a, b) for x, y in zip(first, again) for a, b in zip(x, y))


@pytest.mark.parametrize("ensemble, tiles", [([], 1), ([str(FIXTURES / "metadata_logit.tflite")], 3)])
def test_training_on_labelled_and_unlabelled_folders_with_two_val_sets(portrait_val, tmp_path, ensemble, tiles):
    pytest.importorskip("tensorflow")
    from edge_deeplab.cli import main
    model = {"backbone": "mobilenet_v2", "width": 0.35, "head": "lraspp", "head_channels": 16,
             "input_size": [64, 64], "num_classes": 2}
    train = {"epochs": 1, "batch_size": 2, "paste_prob": 0.5, "teacher": str(TEACHER),
             "teacher_ensemble": ensemble, "teacher_tiles": tiles, "distill_weight": 0.5,
             "bn_recalibration_batches": 1}
    config = tmp_path / "people.json"
    config.write_text(json.dumps({"model": model, "train": train}))
    labelled = _copy_images(portrait_val, tmp_path / "labelled", 3, masks=True)
    scenes = _copy_images(portrait_val, tmp_path / "scenes", 2, masks=False)
    val_a = _copy_images(portrait_val, tmp_path / "a" / "val", 2, masks=True)
    val_b = _copy_images(portrait_val, tmp_path / "b" / "val", 2, masks=True)
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(labelled),
                                       "--data", str(scenes), "--val", str(val_a), "--val", str(val_b),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    tiled = f" (on {tiles} tiles of 1.33:1)" if tiles > 1 else ""
    assert f"teacher {' + '.join([str(TEACHER), *ensemble])}{tiled}: pseudo-labels" in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_images"] == 5 and summary["val_images"] == 4
    record = json.loads((tmp_path / "run" / "history.json").read_text())["float"][0]
    assert record["val_miou"] == pytest.approx((record["val_a_miou"] + record["val_b_miou"]) / 2)


def test_a_person_cut_at_the_donor_frame_bottom_stands_on_the_canvas_bottom():
    from edge_deeplab.train.composite import Compositor
    images, targets, labelled = _toy_set()
    targets[0, ..., 0] = 0
    targets[0, 30:, 20:50, 0] = 1  # a torso cut by the frame's bottom edge
    targets[1, ..., 0] = 0
    compose = Compositor(images, targets, labelled, paste_max=1, height_range=(0.3, 0.6))
    assert compose.donors == [0]
    for seed in range(10):
        _, target = compose(np.random.default_rng(seed))
        assert (target[-1, :, 0] == 1).any()


def test_a_repeated_folder_weighs_twice_but_is_labelled_once(portrait_val, tmp_path):
    from edge_deeplab.train.data import load_folders
    from edge_deeplab.train.file_teacher import FileTeacher
    scenes = _copy_images(portrait_val, tmp_path / "scenes", 2, masks=False)
    teacher = FileTeacher(TEACHER)
    calls = []
    probability = teacher.probability
    teacher.probability = lambda image: calls.append(image.shape) or probability(image)
    data = load_folders([scenes, scenes], (32, 32), teacher)
    assert len(data) == 4 and len(calls) == 2
    assert np.array_equal(data.images[:2], data.images[2:]) and np.array_equal(data.soft[:2], data.soft[2:])


# -- folders labelled with another class set -------------------------------------------------------
def _camvid_like(root: Path, count: int = 4) -> Path:
    """A folder whose masks use CamVid's classes: 9 pedestrian, 10 bicyclist, 1 building, 255 void."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8)).save(root / "images" / f"f{i}.png")
        mask = np.ones((40, 48), np.uint8)
        mask[5:30, 10:20], mask[5:30, 30:40], mask[:3] = 9, 10, 255
        Image.fromarray(mask).save(root / "masks" / f"f{i}.png")
    return root


def test_a_class_map_relabels_its_folder_on_load(tmp_path):
    from edge_deeplab.train.config import ClassMap, TrainingSpec
    from edge_deeplab.train.data import load_folders
    folder = _camvid_like(tmp_path / "data" / "camvid")
    config = tmp_path / "configs" / "c.yaml"
    config.parent.mkdir()
    config.write_text("model: portrait\ntrain:\n  class_maps:\n    - folder: ../data/camvid\n"
                      "      classes: [[9, 1], [10, 255]]\n")
    class_map = TrainingSpec.load(config).train.class_maps[0]
    assert class_map == ClassMap(str(folder.resolve()), ((9, 1), (10, 255)), 0)  # relative to the file
    plain, relabelled = (load_folders([folder], (40, 48), relabel=r)
                         for r in (None, {folder.resolve(): class_map.lookup()}))
    before, after = plain.masks[0], relabelled.masks[0]
    assert np.array_equal(after == 1, before == 9)
    assert np.array_equal(after == 255, (before == 10) | (before == 255))
    assert np.array_equal(after == 0, before == 1)


@pytest.mark.parametrize("entry, message", [
    ({"folder": "elsewhere", "classes": [[9, 1]]}, "not a --data or --val folder"),
    ({"folder": "DATA", "classes": [[9, 3]]}, "maps to class 3, but the model has 2 classes"),
    ({"folder": "DATA", "classes": [[9]]}, "pairs"),
    ({"classes": [[9, 1]]}, "needs folder"),
])
def test_a_bad_class_map_is_one_clear_error_before_training(tmp_path, entry, message):
    from edge_deeplab.cli import main
    folder = _camvid_like(tmp_path / "camvid")
    entry = {k: (str(folder) if v == "DATA" else v) for k, v in entry.items()}
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"backbone": "mobilenet_v2", "width": 0.35, "head": "lraspp",
                                            "head_channels": 16, "input_size": [32, 32], "num_classes": 2},
                                  "train": {"epochs": 1, "batch_size": 2, "class_maps": [entry]}}))
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(folder),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_crop_to_input_aspect_cuts_image_mask_and_teacher_probability_alike(tmp_path):
    """A 16:9 frame for a 9:16 input: the centre window, not the whole frame squashed."""
    from edge_deeplab.train.data import load_folder
    from edge_deeplab.train.file_teacher import FileTeacher
    folder = tmp_path / "frames"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    image = np.zeros((36, 64, 3), np.uint8)
    image[:, 27:37] = 255  # a bright upright "person" in the middle: class 1 for the fixture teacher
    image[:, :8] = 255  # and one at the left edge, outside a 9:16 window
    mask = (image[..., 0] > 0).astype(np.uint8)
    Image.fromarray(image).save(folder / "images" / "f_00000.png")
    Image.fromarray(mask).save(folder / "masks" / "f_00000.png")
    teacher = FileTeacher(TEACHER)
    cropped = load_folder(folder, (32, 18), masks_at_size=False, teacher=teacher, crop=True)
    stretched = load_folder(folder, (32, 18), masks_at_size=False, teacher=teacher)
    window = mask[:, 22:42]  # 36 * 9/16 = 20 columns, centred in 64
    np.testing.assert_array_equal(cropped.masks[0], window)
    assert cropped.masks[0].mean() == 0.5 and stretched.masks[0].shape == (36, 64)
    # The cached image is the window resized: its bright band spans the middle half, not a sliver.
    bright = cropped.images[0][..., 0].mean(axis=0) > 128
    assert bright[5:13].all() and not bright[:4].any() and not bright[14:].any()
    assert (cropped.soft[0][:, 5:13] > 128).all() and (cropped.soft[0][:, :3] < 128).all()
    assert stretched.soft[0][:, :2].mean() > 128  # uncropped: the edge "person" is still there


def test_person_free_scenes_are_background_whatever_the_teacher_says(portrait_val, tmp_path):
    """Person segmenters call any salient object a person; scenes known to show nobody override them."""
    from edge_deeplab.train.config import PersonFree, TrainingSpec
    from edge_deeplab.train.data import load_folders
    from edge_deeplab.train.file_teacher import FileTeacher
    scenes = _copy_images(portrait_val, tmp_path / "data" / "scenes", 4, masks=False)
    stems = sorted(path.stem for path in (scenes / "images").iterdir())
    config = tmp_path / "configs" / "c.yaml"
    config.parent.mkdir()
    config.write_text(f"model: portrait\ntrain:\n  person_free:\n    - folder: ../data/scenes\n"
                      f"      stems: ['{stems[0]}', '{stems[1][:-1]}*']\n")
    entry = TrainingSpec.load(config).train.person_free[0]
    assert entry == PersonFree(str(scenes.resolve()), (stems[0], f"{stems[1][:-1]}*"))  # relative to the file
    teacher = FileTeacher(TEACHER)
    plain, data = (load_folders([scenes], (40, 48), teacher, band=(0.5, 0.5), person_free=p)
                   for p in (None, {scenes.resolve(): entry}))
    free = [entry.matches(name) for name in data.names]
    assert free == [True, True, False, False]
    assert not data.is_labelled.any()  # still unlabelled scenes: composite backgrounds
    for i, is_free in enumerate(free):
        if is_free:
            assert (plain.masks[i] == 1).any() and plain.soft[i].max() > 128  # the teacher saw a person
            assert not data.masks[i].any() and not data.soft[i].any()
        else:
            assert np.array_equal(data.masks[i], plain.masks[i])
            assert np.array_equal(data.soft[i], plain.soft[i])


def test_a_person_free_folder_needs_no_teacher_unless_it_is_partly_so(portrait_val, tmp_path):
    from edge_deeplab.train.config import PersonFree
    from edge_deeplab.train.data import load_folder
    scenes = _copy_images(portrait_val, tmp_path / "scenes", 2, masks=False)
    data = load_folder(scenes, (32, 32), person_free=PersonFree(str(scenes)))
    assert data.soft is None and all(not mask.any() for mask in data.masks)
    first = sorted(path.stem for path in (scenes / "images").iterdir())[0]
    with pytest.raises(DatasetError, match="no masks/.*teacher.*person_free"):
        load_folder(scenes, (32, 32), person_free=PersonFree(str(scenes), (first,)))


@pytest.mark.parametrize("entry, message", [
    ({"folder": "elsewhere"}, "not a --data folder"),
    ({"folder": "LABELLED"}, "has masks/; it is for unlabelled folders"),
    ({"folder": "SCENES", "stems": ["bera_*"]}, "no image matches 'bera_*'"),
    ({"stems": ["bear_*"]}, "needs folder"),
    ([{"folder": "SCENES"}, {"folder": "SCENES"}], "twice; merge the two entries"),
])
def test_a_bad_person_free_entry_is_one_clear_error_before_training(portrait_val, tmp_path, entry, message):
    from edge_deeplab.cli import main
    labelled = _copy_images(portrait_val, tmp_path / "labelled", 2, masks=True)
    scenes = _copy_images(portrait_val, tmp_path / "scenes", 2, masks=False)
    named = {"LABELLED": str(labelled), "SCENES": str(scenes)}
    entries = [{k: named.get(v, v) if isinstance(v, str) else v for k, v in e.items()}
               for e in (entry if isinstance(entry, list) else [entry])]
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"backbone": "mobilenet_v2", "width": 0.35, "head": "lraspp",
                                            "head_channels": 16, "input_size": [32, 32], "num_classes": 2},
                                  "train": {"epochs": 1, "batch_size": 2, "teacher": str(TEACHER),
                                            "person_free": entries}}))
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(labelled),
                                       "--data", str(scenes), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert message in result.output.strip().splitlines()[-1] and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()
