"""Trainer: configs, augmentation, loss, float + QAT training, resume after a kill, mirrored strategy,
ImageNet import. Tiny real data: a few portrait pairs resized into tmp_path, 64x64 models."""
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_deeplab.errors import ConfigError, DatasetError, UnknownChoiceError
from edge_deeplab.train.config import TrainConfig, TrainingSpec

MODEL = {"backbone": "mobilenet_v2", "width": 0.35, "head": "lraspp", "head_channels": 16,
         "input_size": [64, 64], "num_classes": 2, "dropout": 0.1}


def tiny_split(portrait: Path, root: Path, split: str, count: int) -> Path:
    out = root / split
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    for image in sorted((portrait / split / "images").iterdir())[:count]:
        Image.open(image).resize((48, 64)).save(out / "images" / image.name)
        mask = portrait / split / "masks" / f"{image.stem}.png"
        Image.open(mask).resize((48, 64), Image.NEAREST).save(out / "masks" / mask.name)
    return out


@pytest.fixture(scope="module")
def tiny(shared, tmp_path_factory):
    portrait, root = shared("data/portrait"), tmp_path_factory.mktemp("tiny")
    return tiny_split(portrait, root, "train", 4), tiny_split(portrait, root, "val", 2)


def write_config(path: Path, model: dict | None = None, **train) -> Path:
    """A training config of the tiny MODEL (``model`` overrides some of its fields)."""
    defaults = {"epochs": 2, "batch_size": 2, "qat_epochs": 1, "zoom_out_prob": 0.5, "seed": 3}
    path.write_text(json.dumps({"model": {**MODEL, **(model or {})}, "train": {**defaults, **train}}))
    return path


@pytest.fixture(scope="module")
def first_run(tiny, tmp_path_factory) -> Path:
    """One float epoch of the tiny model (``write_config(epochs=1)``), trained once and shared.

    Tests read it; one that resumes into it trains a copy (``shutil.copytree``).
    """
    from edge_deeplab.train.trainer import Trainer
    root = tmp_path_factory.mktemp("first")
    spec = TrainingSpec.load(write_config(root / "first.json", epochs=1))
    Trainer(spec, tiny[0], root / "run", progress=False).run()
    return root / "run"


# -- configs -------------------------------------------------------------------------------------
def test_train_config_round_trips_and_rejects_bad_values(tmp_path):
    config = TrainConfig(epochs=5, scale_range=(0.5, 2.0), class_weights=(1.0, 2.0), strategy="mirrored")
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config
    with pytest.raises(UnknownChoiceError, match="strategy"):
        TrainConfig(strategy="tpu")
    with pytest.raises(ConfigError, match="scale_range"):
        TrainConfig(scale_range=(2.0, 1.0))
    with pytest.raises(ConfigError, match="init_weights"):
        TrainConfig(init="imagenet")
    with pytest.raises(ConfigError, match="float .h5"):
        TrainConfig(init="weights", init_weights="mobilenet.tflite")
    with pytest.raises(ConfigError, match="related model"):
        TrainConfig(init="weights_by_name", init_weights="")
    assert TrainConfig(init="weights_by_name", init_weights="portrait").init_weights == "portrait"
    with pytest.raises(ConfigError, match="distill_temperature"):
        TrainConfig(teacher="runs/big", distill_temperature=0.0)
    with pytest.raises(UnknownChoiceError, match="epoch"):
        TrainConfig.from_dict({"epoch": 3})


def test_training_spec_accepts_zoo_names_and_round_trips(tmp_path):
    spec = TrainingSpec.from_dict({"model": "portrait", "train": {"epochs": 1}})
    assert spec.model.num_classes == 2 and spec.train.epochs == 1
    spec.save(tmp_path / "config.yaml")
    assert TrainingSpec.load(tmp_path / "config.yaml") == spec
    with pytest.raises(ConfigError, match="unknown key"):
        TrainingSpec.from_dict({"model": "portrait", "optimizer": "sgd"})
    changed = TrainingSpec.from_dict({"model": {"zoo": "portrait", "input_size": [144, 256]}})
    assert changed.model == spec.model.replace(input_size=(144, 256))
    with pytest.raises(ConfigError, match="input_size"):
        TrainingSpec.from_dict({"model": {"zoo": "portrait", "input_size": "big"}})
    with pytest.raises(UnknownChoiceError):
        TrainingSpec.from_dict({"model": {"zoo": "no_such_model"}})


def test_shipped_recipes_load():
    root = Path(__file__).parent.parent / "configs"
    recipes = sorted(root.glob("*.yaml"))
    assert {p.name for p in recipes} >= {"portrait.yaml", "portrait_finetune.yaml", "camvid.yaml"}
    for path in recipes:
        spec = TrainingSpec.load(path)
        assert spec.train.epochs > 0 or spec.train.qat_epochs > 0  # QAT alone: `epochs: 0`


def test_recipe_stages_with_a_base_say_only_what_they_change():
    """A stage written on another (base:) lists only the keys it changes, so a reader sees the change."""
    import yaml
    root = Path(__file__).parent.parent / "configs"
    derived = [path for path in sorted(root.glob("*.yaml")) if "base" in yaml.safe_load(path.read_text())]
    assert len(derived) >= 12
    for path in derived:
        data = yaml.safe_load(path.read_text())
        spec, base = TrainingSpec.load(path).to_dict(), TrainingSpec.load(root / data["base"]).to_dict()
        if "model" in data:
            assert spec["model"] != base["model"], path.name
        for key in data.get("train") or {}:
            assert spec["train"][key] != base["train"][key], f"{path.name}: {key} repeats its base's value"


def test_the_default_models_recipe_chains_its_sixteen_stages():
    """configs/train_default.sh runs the sixteen stages in order, each reading the folder the previous one
    writes, each building the zoo model it says it trains; its exports read the shipped models' folders."""
    import shlex
    from edge_deeplab.zoo import ZOO
    root = Path(__file__).parent.parent / "configs"
    script = (root / "train_default.sh").read_text().replace("\\\n", " ")
    calls = [shlex.split(line.strip()) for line in script.splitlines() if line.startswith("stage ")]
    stages = [(call[call.index("--config") + 1], call[1]) for call in calls]
    assert stages == [("configs/portrait.yaml", "runs/portrait_ce"),
                      ("configs/portrait_finetune.yaml", "runs/portrait_teacher"),
                      ("configs/portrait_distill.yaml", "runs/portrait_selfie"),
                      ("configs/people.yaml", "runs/people"),
                      ("configs/people_finetune.yaml", "runs/people_finetune"),
                      ("configs/people_continue.yaml", "runs/portrait_192"),
                      ("configs/people_hr.yaml", "runs/portrait_208"),
                      ("configs/people_hr_tiled.yaml", "runs/portrait"),
                      ("configs/people_landscape.yaml", "runs/portrait_landscape_256"),
                      ("configs/people_landscape_hr.yaml", "runs/portrait_landscape_288"),
                      ("configs/people_landscape_tiled.yaml", "runs/portrait_landscape_tiled"),
                      ("configs/people_landscape_soup.yaml", "runs/portrait_landscape_soup"),
                      ("configs/people_landscape_jitter.yaml", "runs/portrait_landscape_jitter"),
                      ("configs/people_landscape_scenes.yaml", "runs/portrait_landscape_scenes"),
                      ("configs/people_landscape_final.yaml", "runs/portrait_landscape"),
                      ("configs/people_tall.yaml", "runs/portrait_tall")]
    # QAT only where an int8 file ships from: the square and landscape models.
    assert [call[1] for call in calls if "--qat" in call] == ["runs/portrait", "runs/portrait_landscape"]
    for call in calls[3:15]:
        assert call.count("--val") == 2 and "$H/scenes" in call and "$C/train" in call
    # Stages 14 and 15 see the scene sequences with people a second time, from a folder the script links.
    assert [call[1] for call in calls if "runs/people_scenes" in call] == [
        "runs/portrait_landscape_scenes", "runs/portrait_landscape"]
    assert script.index('S=runs/people_scenes/images') < script.index("stage runs/portrait_landscape_scenes")
    assert "edge-deeplab export runs/portrait --format tflite,tflite-int8" in script
    assert "edge-deeplab export runs/portrait_landscape --format tflite,tflite-int8" in script
    assert "edge-deeplab export runs/portrait_tall --format tflite,tflite-int8" in script
    # The tall int8 file: the square model's QAT weights (they hold no input shape) beside stage 16's.
    assert "cp runs/portrait/qat.weights.h5 runs/portrait_tall/qat.weights.h5" in script
    assert script.index("cp runs/portrait/qat.weights.h5") < script.index("export runs/portrait_tall")
    specs = {out: TrainingSpec.load(root.parent / name) for name, out in stages}
    repo = root.parent

    def init(out):  # paths in a config resolve against its folder: each reads where the previous wrote
        return specs[out].train.init_weights

    def weights(out):
        return str(repo / out / "best.weights.h5")

    assert specs["runs/portrait_ce"].model == ZOO.load("portrait_teacher").replace(decoder=False,
                                                                                   decoder_channels=48)
    assert specs["runs/portrait_teacher"].model == ZOO.load("portrait_teacher")
    assert init("runs/portrait_teacher") == weights("runs/portrait_ce")
    assert specs["runs/portrait_selfie"].model == ZOO.load("portrait_selfie")
    assert specs["runs/portrait_selfie"].train.teacher == str(repo / "runs/portrait_teacher")
    assert init("runs/portrait_selfie") == weights("runs/portrait_teacher")
    square_192 = ZOO.load("portrait").replace(input_size=(192, 192))
    for out, previous in (("runs/people", "runs/portrait_selfie"), ("runs/people_finetune", "runs/people"),
                          ("runs/portrait_192", "runs/people_finetune")):
        assert specs[out].model == square_192 and init(out) == weights(previous)
    for out, model, previous in (("runs/portrait_208", "portrait", "runs/portrait_192"),
                                 ("runs/portrait", "portrait", "runs/portrait_208"),
                                 ("runs/portrait_landscape_256", None, "runs/portrait_192"),
                                 ("runs/portrait_landscape_288", "portrait_landscape", "runs/portrait_landscape_256"),
                                 ("runs/portrait_landscape_tiled", "portrait_landscape", "runs/portrait_landscape_288"),
                                 ("runs/portrait_landscape_jitter", "portrait_landscape", "runs/portrait_landscape_soup"),
                                 ("runs/portrait_landscape_scenes", "portrait_landscape", "runs/portrait_landscape_soup"),
                                 ("runs/portrait_tall", "portrait_tall", "runs/portrait")):
        assert init(out) == weights(previous)
        if model:
            assert specs[out].model == ZOO.load(model)
    for out, ingredients in (("runs/portrait_landscape_soup", ("288", "tiled")),
                             ("runs/portrait_landscape", ("jitter", "scenes"))):
        soup = specs[out]
        assert soup.model == ZOO.load("portrait_landscape") and soup.train.epochs == 0
        assert soup.train.init == "weights_mean" and list(soup.train.init_weights_mean) == [
            weights(f"runs/portrait_landscape_{name}") for name in ingredients]
    assert specs["runs/portrait_landscape_jitter"].train.aspect_jitter == 1.4
    assert specs["runs/portrait_landscape_scenes"].train.aspect_jitter == 1.0
    assert specs["runs/portrait_landscape_256"].model == ZOO.load("portrait").replace(input_size=(144, 256))
    assert ZOO.load("portrait_landscape") == ZOO.load("portrait").replace(input_size=(160, 288))
    people_stages = [specs[out] for _, out in stages[3:15]]
    assert Path(people_stages[0].train.teacher).is_file()
    assert all(s.train.teacher == people_stages[0].train.teacher for s in people_stages)
    assert all(s.train.class_maps == people_stages[0].train.class_maps for s in people_stages)
    # The last stages add MediaPipe's square model and see wide frames as tiles.
    assert [s.train.teacher_tiles for s in people_stages].count(3) == 6
    for out in ("runs/portrait", "runs/portrait_landscape_tiled", "runs/portrait_landscape_soup",
                "runs/portrait_landscape_jitter", "runs/portrait_landscape_scenes", "runs/portrait_landscape"):
        tiled = specs[out].train
        assert tiled.teacher_tiles == 3 and all(Path(t).is_file() for t in tiled.teacher_ensemble)
    # The tall variant is stage 8's weights as they are: no epochs.
    assert ZOO.load("portrait_tall") == ZOO.load("portrait").replace(input_size=(256, 144))
    assert specs["runs/portrait_tall"].train.epochs == 0


def test_the_default_recipe_skips_finished_stages_and_resumes_interrupted_ones(tmp_path):
    """The script's stage() as written, with `edge-deeplab` replaced by a recorder."""
    import os
    import subprocess
    script = (Path(__file__).parent.parent / "configs" / "train_default.sh").read_text()
    stage = script[script.index("stage() {"):script.index("\n}\n", script.index("stage() {")) + 3]
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "summary.json").write_text("{}")
    (tmp_path / "half" / "state").mkdir(parents=True)
    recorder = tmp_path / "bin" / "edge-deeplab"
    recorder.parent.mkdir()
    recorder.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n')
    recorder.chmod(0o755)
    shell = f"{stage}\nstage done --config a.yaml\nstage half --config b.yaml\nstage new --config c.yaml\n"
    env = {**os.environ, "PATH": f"{recorder.parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["sh", "-c", shell], cwd=tmp_path, capture_output=True, text=True, check=True, env=env)
    assert "done: finished, skipped" in out.stdout
    assert (tmp_path / "calls").read_text().splitlines() == [
        "train --config b.yaml --out half --resume", "train --config c.yaml --out new"]


# -- data and loss -------------------------------------------------------------------------------
def test_augmentation_is_a_pure_function_of_seed_epoch_and_step(tiny):
    from edge_deeplab.train.data import load_folder, train_dataset
    config = TrainConfig(batch_size=2, zoom_out_prob=0.5, seed=1)
    data = load_folder(tiny[0], (80, 80))

    def batches(epoch, start=0, cfg=config):
        return [(i.numpy(), m.numpy()) for i, m in train_dataset(data, cfg, (64, 64), epoch, start)]

    first, again, later = batches(0), batches(0), batches(1)
    assert len(first) == 2 and first[0][0].shape == (2, 64, 64, 3) and first[0][1].shape == (2, 64, 64)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not np.array_equal(first[0][0], later[0][0])
    resumed = batches(0, start=1)  # resuming mid-epoch yields exactly the remaining batches
    assert len(resumed) == 1 and np.array_equal(resumed[0][0], first[1][0])
    images = np.concatenate([b[0] for b in first])
    labels = np.concatenate([b[1] for b in first])
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(labels)) <= {0, 1, 255}
    # Zooming out without a canvas pads with pad_label.
    padded = batches(0, cfg=config.replace(zoom_out_prob=0.0, scale_range=(0.5, 0.5), pad_label=255))
    assert (np.concatenate([b[1] for b in padded]) == 255).mean() > 0.5


def test_rotation_turns_image_and_targets_alike():
    import tensorflow as tf
    from edge_deeplab.train.data import rotate
    image = np.zeros((40, 60, 1), np.float32)
    image[5:15, 10:50] = 1.0  # a wide bar above the centre
    quarter = rotate(tf.constant(image), tf.constant(np.pi / 2, tf.float32), "NEAREST").numpy()
    # A quarter turn about the centre maps the wide bar to a tall one beside the centre line.
    rows, cols = np.nonzero(quarter[..., 0] > 0.5)
    assert np.ptp(rows) > np.ptp(cols)
    assert np.array_equal(rotate(tf.constant(image), tf.constant(0.0), "BILINEAR").numpy(), image)


def test_rotation_and_hue_jitter_keep_labels_on_the_person(tiny):
    from edge_deeplab.train.data import load_folder, train_dataset
    data = load_folder(tiny[0], (64, 64))
    plain = TrainConfig(batch_size=2, seed=4, scale_range=(1.0, 1.0), hflip=False, color_jitter=0.0)
    turned = plain.replace(rotation_degrees=30.0, hue_jitter=0.2)
    (image0, labels0), = list(train_dataset(data, plain, (64, 64), 0))[:1]
    (image1, labels1), = list(train_dataset(data, turned, (64, 64), 0))[:1]
    image1, labels1 = image1.numpy(), labels1.numpy()
    assert not np.array_equal(labels0.numpy(), labels1)  # the masks turned
    assert set(np.unique(labels1)) <= set(np.unique(labels0.numpy()))  # nearest: no new label values
    assert 0.0 <= image1.min() and image1.max() <= 1.0
    assert np.array_equal(labels1, list(train_dataset(data, turned, (64, 64), 0))[0][1].numpy())
    with pytest.raises(ConfigError, match="rotation_degrees"):
        TrainConfig(rotation_degrees=120.0)


def test_aspect_jitter_stretches_one_axis_against_the_other():
    """A centred square person comes out as rectangles of about its area, taller or wider (ratio within
    [1/a, a]); without the option the same samples are squares, as before it existed."""
    from edge_deeplab.train.data import CachedSet, train_dataset
    images = np.full((8, 80, 80, 3), 128, np.uint8)
    masks = np.zeros((8, 80, 80), np.uint8)
    masks[:, 30:50, 30:50] = 1
    images[masks == 1] = 220
    data = CachedSet(images, list(masks), [f"s{i}" for i in range(8)])
    plain = TrainConfig(batch_size=8, seed=3, scale_range=(1.0, 1.0), hflip=False, color_jitter=0.0)

    def boxes(config):
        labels = next(iter(train_dataset(data, config, (64, 64), 0)))[1].numpy()
        found = []
        for person in labels == 1:
            rows, cols = np.nonzero(person)
            found.append((np.ptp(rows) + 1, np.ptp(cols) + 1))
        return np.array(found, float)

    square = boxes(plain)
    assert np.all(square == square[0]) and square[0, 0] == square[0, 1]
    stretched = boxes(plain.replace(aspect_jitter=2.0))
    ratio = stretched[:, 0] / stretched[:, 1]
    assert np.all((ratio > 1 / 2.2) & (ratio < 2.2)) and np.ptp(ratio) > 0.2
    assert np.any(ratio > 1.1) and np.any(ratio < 1 / 1.1)  # both ways
    assert np.allclose(stretched.prod(axis=1), square[0].prod(), rtol=0.2)  # the zoom keeps the area
    np.testing.assert_array_equal(boxes(plain.replace(aspect_jitter=2.0)), stretched)  # seeded
    with pytest.raises(ConfigError, match="aspect_jitter"):
        TrainConfig(aspect_jitter=0.5)


def test_loss_ignores_255_and_weights_classes_and_mines_hard_pixels():
    from edge_deeplab.train.losses import SegmentationLoss
    logits = np.zeros((1, 2, 2, 2), np.float32)
    logits[0, 0, 0] = [4.0, 0.0]  # confident, right for label 0
    labels = np.array([[[0, 1], [255, 255]]])
    plain = float(SegmentationLoss(TrainConfig(), 2)(labels, logits))
    expected = (np.log1p(np.exp(-4.0)) + np.log(2.0)) / 2  # the two valid pixels only
    assert plain == pytest.approx(expected, rel=1e-5)
    weighted = float(SegmentationLoss(TrainConfig(class_weights=(0.0, 1.0)), 2)(labels, logits))
    assert weighted == pytest.approx(np.log(2.0) / 2, rel=1e-5)
    hard = float(SegmentationLoss(TrainConfig(ohem_ratio=0.5), 2)(labels, logits))
    assert hard == pytest.approx(np.log(2.0), rel=1e-5)
    with pytest.raises(ConfigError, match="class_weights"):
        SegmentationLoss(TrainConfig(class_weights=(1.0,)), 2)


def test_lovasz_of_hard_predictions_is_one_minus_iou_over_present_classes():
    from edge_deeplab.train.losses import SegmentationLoss, lovasz_softmax
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    labels[:40] = 255  # ignored
    predicted = rng.integers(0, 3, 500)
    predicted[predicted == 2] = 0  # class 2 is present in the labels but never predicted: IoU 0
    valid = labels != 255
    probs = np.eye(3, dtype=np.float32)[predicted]
    ious = []
    for c in range(3):
        inter = np.sum((labels == c) & (predicted == c) & valid)
        union = np.sum(((labels == c) | (predicted == c)) & valid)
        ious.append(inter / union)
    safe = np.where(valid, labels, 0)
    value = float(lovasz_softmax(probs, safe, valid, 3))
    assert value == pytest.approx(1 - np.mean(ious), abs=1e-5)
    perfect = np.eye(3, dtype=np.float32)[safe]
    assert float(lovasz_softmax(perfect, safe, valid, 3)) == pytest.approx(0.0, abs=1e-6)
    # In the training loss it is added, weighted, to the cross-entropy.
    logits = rng.normal(size=(1, 10, 50, 3)).astype(np.float32)
    grid = labels.reshape(1, 10, 50)
    plain = float(SegmentationLoss(TrainConfig(), 3)(grid, logits))
    mixed = float(SegmentationLoss(TrainConfig(lovasz_weight=0.5), 3)(grid, logits))
    flat = logits.reshape(-1, 3)
    soft = np.exp(flat) / np.exp(flat).sum(-1, keepdims=True)
    assert mixed == pytest.approx(plain + 0.5 * float(lovasz_softmax(soft, safe, valid, 3)), rel=1e-5)


def test_distillation_is_the_temperature_scaled_kl_to_the_teacher():
    from edge_deeplab.train.losses import SegmentationLoss, distillation
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 6, 5, 2)).astype(np.float32)
    teacher = rng.normal(size=(1, 6, 5, 2)).astype(np.float32) * 3
    labels = rng.integers(0, 2, (1, 6, 5))
    labels[0, 0] = 255
    valid = (labels != 255).ravel()

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    t, s = softmax(teacher.reshape(-1, 2) / 2.0), softmax(logits.reshape(-1, 2) / 2.0)
    expected = 4.0 * (t * (np.log(t) - np.log(s))).sum(-1)[valid].mean()
    value = float(distillation(logits.reshape(-1, 2), teacher.reshape(-1, 2), valid, 2.0))
    assert value == pytest.approx(expected, rel=1e-5) and value > 0
    same = distillation(logits.reshape(-1, 2), logits.reshape(-1, 2), valid, 2.0)
    assert float(same) == pytest.approx(0, abs=1e-6)
    # In the training loss: added with its weight, and only when a teacher is configured.
    plain = float(SegmentationLoss(TrainConfig(), 2)(labels, logits, teacher))
    assert plain == pytest.approx(float(SegmentationLoss(TrainConfig(), 2)(labels, logits)))
    config = TrainConfig(teacher="runs/teacher", distill_weight=0.5, distill_temperature=2.0)
    assert float(SegmentationLoss(config, 2)(labels, logits, teacher)) == pytest.approx(plain + 0.5 * value,
                                                                                     rel=1e-5)


def test_averaged_weights_are_the_moving_average_of_the_steps_and_training_weights_come_back():
    import tensorflow as tf
    import tf_keras

    from edge_deeplab.train.optim import averaged_weights, make_optimizer
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,))])
    optimizer = make_optimizer(TrainConfig(ema_decay=0.6, learning_rate=0.1), 0.1, 10, 10, warmup=False)
    with averaged_weights(model, optimizer):  # no step yet: nothing to average
        untouched = [v.numpy() for v in model.trainable_variables]
    expected = [w.copy() for w in untouched]  # the average starts at the weights of the first step
    for step in range(4):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(tf.fill((2, 4), float(step + 1))) ** 2)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        expected = [0.6 * e + 0.4 * v.numpy() for e, v in zip(expected, model.trainable_variables)]
    training = [v.numpy() for v in model.trainable_variables]
    with averaged_weights(model, optimizer):
        for variable, average, latest in zip(model.trainable_variables, expected, training):
            np.testing.assert_allclose(variable.numpy(), average, rtol=1e-5, atol=1e-6)
            assert not np.allclose(average, latest)
    for variable, latest in zip(model.trainable_variables, training):
        np.testing.assert_array_equal(variable.numpy(), latest)
    plain = make_optimizer(TrainConfig(), 0.1, 10, 10)
    with averaged_weights(model, plain):
        for variable, latest in zip(model.trainable_variables, training):
            np.testing.assert_array_equal(variable.numpy(), latest)
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


# -- training ------------------------------------------------------------------------------------
CLI = [sys.executable, "-c", "from edge_deeplab.cli import main; main()"]


@dataclasses.dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args) -> CliResult:
    """The CLI in this process: TensorFlow is imported once, not per call (about 10 s each here).

    What escapes the CLI's own error handling is put into stderr as the traceback a user would see,
    so the tests' "no traceback" checks keep their meaning. Signals are tested in subprocesses.
    """
    from click.testing import CliRunner

    from edge_deeplab.cli import main
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, stderr)


def test_train_writes_an_exportable_checkpoint(tiny, tmp_path):
    from click.testing import CliRunner

    from edge_deeplab.cli import main
    from edge_deeplab.sources import resolve_source
    config = write_config(tmp_path / "train.json", epochs=2, val_every=2)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(tiny[0]),
                                       "--val", str(tiny[1]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "val mIoU" in result.output and "edge-deeplab export" in result.output
    for name in ("config.yaml", "model.json", "best.weights.h5", "last.weights.h5", "summary.json"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())["float"]
    assert [r["epoch"] for r in history] == [1, 2]
    assert "val_miou" not in history[0]  # val_every: 2
    # Only scored epochs compete for best.weights.h5: an unscored epoch never outranks a scored one.
    assert "best" not in history[0] and history[1]["best"]
    assert 0.0 <= history[1]["val_miou"] <= 1.0 and history[1]["val_boundary_iou"] is not None
    assert TrainingSpec.load(out / "config.yaml").train.seed == 3
    source = resolve_source(str(out))
    assert not source.random_init and source.weights.name == "best.weights.h5"
    # A second run into the same folder without --resume would mix runs: refused.
    again = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(tiny[0]),
                                      "--out", str(out)])
    assert again.exit_code == 1 and "--resume" in again.output


def test_train_reports_bad_input_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: portrait\ntrain: {optimizer: lion}\n")
    result = run_cli("train", "--config", bad, "--data", tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error:") and "adam" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where,person,words", [
    ("--data", 255, "hold only 0 and 255"),  # 0/255 binary masks: 255 is ignore, so no person at all
    ("--val", 200, "mask holds value 200"),  # a matte
])
def test_train_refuses_masks_that_are_not_class_indices(tiny, tmp_path, where, person, words):
    bad = tmp_path / "bad"
    shutil.copytree(tiny[0], bad)
    for path in (bad / "masks").iterdir():
        mask = np.asarray(Image.open(path)).copy()
        mask[mask == 1] = person
        Image.fromarray(mask).save(path)
    folders = {"--data": tiny[0], "--val": tiny[1], where: bad}
    result = run_cli("train", "--config", write_config(tmp_path / "t.json", epochs=1), "--data", folders["--data"],
                     "--val", folders["--val"], "--out", tmp_path / "run")
    assert result.returncode == 1 and result.stderr.startswith("error:") and words in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_qat_fine_tuning_produces_qat_weights_for_export(tiny, tmp_path):
    from edge_deeplab.sources import resolve_source
    from edge_deeplab.train.trainer import Trainer
    spec = TrainingSpec.load(write_config(tmp_path / "train.json", epochs=1))
    summary = Trainer(spec, tiny[0], tmp_path / "run", tiny[1], progress=False).run(qat=True)
    assert summary["qat_epochs"] == 1 and summary["qat_best"]["val_miou"] is not None
    source = resolve_source(str(tmp_path / "run"))
    assert source.qat and source.weights.name == "qat.weights.h5"


def test_epochs_zero_with_qat_quantizes_the_init_weights(tiny, first_run, tmp_path):
    """`epochs: 0` + `--qat`: QAT straight from init_weights (how a shipped float model gets its int8 file)."""
    from edge_deeplab.models import build_model
    from edge_deeplab.train.trainer import Trainer
    spec = TrainingSpec.load(write_config(tmp_path / "qat.json", epochs=0, init="weights",
                                          init_weights=str(first_run / "best.weights.h5")))
    summary = Trainer(spec, tiny[0], tmp_path / "qat", tiny[1], progress=False).run(qat=True)
    assert summary["epochs"] == 0 and summary["float_best"] is None and summary["qat_epochs"] == 1
    start, kept = build_model(spec.model), build_model(spec.model)
    start.load_weights(str(first_run / "best.weights.h5"))
    kept.load_weights(str(tmp_path / "qat" / "best.weights.h5"))
    for a, b in zip(start.weights, kept.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert (tmp_path / "qat" / "qat.weights.h5").is_file()


def test_epochs_zero_without_qat_writes_the_init_weights_and_never_decodes_the_data(tiny, first_run, tmp_path,
                                                                                   monkeypatch):
    """How the recipe's `portrait_tall` stage gets its weights: nothing trains, so no image is decoded
    (nor labelled by a teacher); the folders are still listed and checked up front."""
    from edge_deeplab.models import build_model
    from edge_deeplab.train import trainer as trainer_module
    Trainer = trainer_module.Trainer

    def decoding(*args, **kwargs):
        raise AssertionError("decoded the data of a run that trains nothing")
    monkeypatch.setattr(trainer_module, "load_folders", decoding)
    monkeypatch.setattr(trainer_module, "load_folder", decoding)
    spec = TrainingSpec.load(write_config(tmp_path / "zero.json", epochs=0, init="weights",
                                          init_weights=str(first_run / "best.weights.h5")))
    summary = Trainer(spec, tiny[0], tmp_path / "zero", tiny[1], progress=False).run()
    assert summary["epochs"] == 0 and summary["train_images"] == 4 and summary["val_images"] == 2
    start, kept = build_model(spec.model), build_model(spec.model)
    start.load_weights(str(first_run / "best.weights.h5"))
    kept.load_weights(str(tmp_path / "zero" / "best.weights.h5"))
    for a, b in zip(start.weights, kept.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(DatasetError, match="not found"):
        Trainer(spec, tmp_path / "nowhere", tmp_path / "bad", tiny[1], progress=False)


def test_weights_mean_starts_from_the_mean_of_two_runs(tiny, first_run, tmp_path, monkeypatch):
    """`init: weights_mean` (a uniform soup): the run's init weights are the two runs' element-wise mean."""
    from edge_deeplab.models import build_model
    from edge_deeplab.train.trainer import Trainer
    spec = TrainingSpec.load(write_config(tmp_path / "run4.json", epochs=1, seed=4))  # first_run's seed is 3
    Trainer(spec, tiny[0], tmp_path / "run4", progress=False).run()
    runs = [str(first_run / "best.weights.h5"), str(tmp_path / "run4" / "best.weights.h5")]
    spec = TrainingSpec.load(write_config(tmp_path / "soup.json", epochs=0, init="weights_mean",
                                          init_weights_mean=runs))
    Trainer(spec, tiny[0], tmp_path / "soup", tiny[1], progress=False).run()
    models = [build_model(spec.model) for _ in range(3)]
    for model, weights in zip(models, [*runs, str(tmp_path / "soup" / "best.weights.h5")]):
        model.load_weights(weights)
    differ = 0
    for a, b, mean in zip(*(model.weights for model in models)):
        if a.dtype.is_floating:
            np.testing.assert_allclose(mean.numpy(), (a.numpy() + b.numpy()) / 2, rtol=1e-6, atol=1e-7)
            differ += not np.array_equal(a.numpy(), b.numpy())
    assert differ > 0  # the two runs are not the same weights
    # A missing file is one error before any image is decoded, and leaves no run folder.
    from edge_deeplab.train import trainer as trainer_module

    def decoding(*args, **kwargs):
        raise AssertionError("decoded the data before checking the init files")
    monkeypatch.setattr(trainer_module, "load_folders", decoding)
    bad = TrainingSpec.load(write_config(tmp_path / "bad.json", epochs=1, init="weights_mean",
                                         init_weights_mean=[runs[0], str(tmp_path / "nope.h5")]))
    with pytest.raises(DatasetError, match="init_weights_mean .*nope.h5: no such file"):
        Trainer(bad, tiny[0], tmp_path / "bad", progress=False).run()
    assert not (tmp_path / "bad").exists()


def test_a_weights_by_name_donor_without_a_model_config_fails_before_the_data_is_decoded(tiny, tmp_path,
                                                                                         monkeypatch):
    from edge_deeplab.train import trainer as trainer_module
    from edge_deeplab.train.trainer import Trainer
    spec = TrainingSpec.load(write_config(tmp_path / "run.json", epochs=1))
    Trainer(spec, tiny[0], tmp_path / "run", progress=False).run()
    donor = tmp_path / "weights_only"
    donor.mkdir()
    (tmp_path / "run" / "best.weights.h5").rename(donor / "best.weights.h5")

    def decoding(*args, **kwargs):
        raise AssertionError("decoded the data before checking the init weights")
    monkeypatch.setattr(trainer_module, "load_folders", decoding)
    bad = TrainingSpec.load(write_config(tmp_path / "bad.json", epochs=1, init="weights_by_name",
                                         init_weights=str(donor)))
    with pytest.raises(ConfigError, match="no model config in .*weights_only"):
        Trainer(bad, tiny[0], tmp_path / "bad", progress=False).run()
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("train, message", [
    ({"init": "weights_mean", "init_weights_mean": ["a.h5"]}, "two or more float .h5"),
    ({"init": "weights_mean", "init_weights_mean": ["a.h5", "portrait"]}, "two or more float .h5"),
    ({"init": "weights", "init_weights": "a.h5", "init_weights_mean": ["a.h5", "b.h5"]},
     "read by init: weights_mean only"),
])
def test_a_bad_weights_mean_is_a_config_error(train, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(train).validate()


def test_fine_tuning_starts_from_an_earlier_runs_weights(tiny, first_run, tmp_path):
    from edge_deeplab.models import build_model
    from edge_deeplab.train.trainer import Trainer
    start = first_run / "best.weights.h5"
    # Learning rate 0: the fine-tuned weights must be exactly the ones it started from.
    spec = TrainingSpec.load(write_config(tmp_path / "tune.json", epochs=1, learning_rate=0.0,
                                          init="weights", init_weights=str(start), lovasz_weight=0.5))
    Trainer(spec, tiny[0], tmp_path / "tune", progress=False).run()
    before, after = build_model(spec.model), build_model(spec.model)
    before.load_weights(str(start))
    after.load_weights(str(tmp_path / "tune" / "last.weights.h5"))
    for a, b in zip(before.trainable_weights, after.trainable_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Weights of another architecture: one line that says what init_weights must be.
    other = write_config(tmp_path / "other.json", model={"width": 0.5}, epochs=1, init="weights",
                         init_weights=str(start))
    result = run_cli("train", "--config", other, "--data", tiny[0], "--out", tmp_path / "other")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "do not fit" in result.stderr and "same model config" in result.stderr
    assert not (tmp_path / "other").exists(), "a run that failed before training left files behind"


def train_by_name(tiny, tmp_path: Path, start: Path, out: str, **model):
    """One epoch at learning rate 0 of MODEL changed by ``model``, ``init: weights_by_name`` from ``start``."""
    from edge_deeplab.models import build_model
    by_name = write_config(tmp_path / f"{out}.json", model=model, epochs=1, learning_rate=0.0,
                           init="weights_by_name", init_weights=str(start))
    result = run_cli("train", "--config", by_name, "--data", tiny[0], "--out", tmp_path / out)
    if result.returncode:
        return result, None
    trained = build_model(TrainingSpec.load(by_name).model)
    trained.load_weights(str(tmp_path / out / "last.weights.h5"))
    return result, trained


def test_weights_by_name_keeps_the_shared_layers_and_narrows_a_reduced_tail(tiny, first_run, tmp_path):
    from edge_deeplab.models import ModelConfig, build_model
    from edge_deeplab.models.narrowing import rank_expansions
    start = first_run / "best.weights.h5"
    before = build_model(ModelConfig.from_dict(MODEL))
    before.load_weights(str(start))
    # LR-ASPP plus the stride-4 refinement, from the plain LR-ASPP run. Learning rate 0: the shared
    # layers keep the earlier run's weights, the refinement its initialization (zero classifier).
    result, tuned = train_by_name(tiny, tmp_path, start, "refined", decoder=True, decoder_channels=8)
    assert result.returncode == 0, result.stderr
    assert "new, as initialized: refine_low, refine_low_bn, refine_conv_dw" in result.stderr
    for layer in before.layers:
        for a, b in zip(layer.trainable_weights, tuned.get_layer(layer.name).trainable_weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not tuned.get_layer("refine_classifier").get_weights()[0].any()
    # A reduced tail from the full one: narrower layers take the leading channels, expanded channels
    # ranked strongest first (models/narrowing.py).
    result, narrow = train_by_name(tiny, tmp_path, start, "narrow", reduced_tail=True)
    assert result.returncode == 0, result.stderr
    assert "new, as initialized: none; narrowed to their leading channels: block13_project," in result.stderr
    stored = {layer.name: layer.get_weights() for layer in before.layers if layer.weights}
    assert "block14" in rank_expansions(
        stored, {layer.name: [tuple(w.shape) for w in layer.weights] for layer in narrow.layers if layer.weights})
    cut = narrow.get_layer("block14_expand").get_weights()[0]
    assert cut.shape[2:] < stored["block14_expand"][0].shape[2:]
    np.testing.assert_array_equal(cut, stored["block14_expand"][0][:, :, :cut.shape[2], :cut.shape[3]])


def test_init_weights_takes_a_run_folder_or_a_zoo_model_and_refuses_an_unrelated_one(tiny, first_run, tmp_path):
    start = first_run / "best.weights.h5"
    # init_weights takes what teacher takes: a run folder (its float weights, even after --qat) ...
    folder = write_config(tmp_path / "folder.json", epochs=1, learning_rate=0.0, init="weights_by_name",
                          init_weights=str(first_run))
    result = run_cli("train", "--config", folder, "--data", tiny[0], "--out", tmp_path / "folder")
    assert result.returncode == 0, result.stderr
    assert f"init: layers from {start}; new, as initialized: none" in result.stderr
    # ... or a zoo model that ships weights: every layer of the packaged default, at another input size.
    from edge_deeplab.zoo import ZOO
    default = {**ZOO.load("portrait").to_dict(), "input_size": [64, 64]}
    zoo = write_config(tmp_path / "zoo.json", model=default, epochs=1, learning_rate=0.0,
                       init="weights_by_name", init_weights="portrait")
    result = run_cli("train", "--config", zoo, "--data", tiny[0], "--out", tmp_path / "zoo")
    assert result.returncode == 0, result.stderr
    assert "portrait.weights.h5; new, as initialized: none" in result.stderr
    assert "narrowed" not in result.stderr
    # Nothing in common (another width and head size): one line, nothing left behind.
    result, _ = train_by_name(tiny, tmp_path, start, "unrelated", reduced_tail=True, width=1.0, head_channels=32)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no layer matches" in result.stderr and not (tmp_path / "unrelated").exists()


def test_distillation_from_a_teacher_run(tiny, tmp_path):
    from edge_deeplab.models import ModelConfig, build_model
    assert run_cli("train", "--config", write_config(tmp_path / "t.json", epochs=1), "--data", tiny[0],
                   "--qat", "--out", tmp_path / "teacher").returncode == 0
    # The student: another architecture at another input size (the teacher sees the same crops
    # resized to its own). Learning rate 0 keeps the weights, so the loss differs from a run without
    # the teacher by exactly the distillation term, which is positive (the two models disagree).
    losses = {}
    for name, teacher in (("plain", ""), ("distilled", str(tmp_path / "teacher"))):
        config = write_config(tmp_path / f"{name}.json", model={"reduced_tail": True, "input_size": [96, 96]},
                              epochs=1, learning_rate=0.0, teacher=teacher, distill_temperature=2.0)
        result = run_cli("train", "--config", config, "--data", tiny[0], "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        # A run folder teaches with its float weights, not its QAT ones.
        float_weights = tmp_path / "teacher" / "best.weights.h5"
        assert (f"distilling from {float_weights}" in result.stderr) == bool(teacher)
        losses[name] = json.loads((tmp_path / name / "history.json").read_text())["float"][0]["loss"]
    assert losses["distilled"] > losses["plain"]

    # A teacher of other classes, or none at that path: one line, nothing left behind.
    other = tmp_path / "three"
    other.mkdir()
    three = ModelConfig.from_dict({**MODEL, "num_classes": 3})
    three.save(other / "model.json")
    build_model(three).save_weights(str(other / "best.weights.h5"))
    missing = tmp_path / "missing"
    for teacher, message in ((other, "same classes"), (missing, f"teacher '{missing}': no such file")):
        config = write_config(tmp_path / "bad.json", epochs=1, teacher=str(teacher))
        result = run_cli("train", "--config", config, "--data", tiny[0], "--out", tmp_path / "bad")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert message in result.stderr and "teacher" in result.stderr
        assert not (tmp_path / "bad").exists()


def test_ema_decay_changes_what_is_kept_not_how_it_trains(tiny, tmp_path):
    runs = {}
    for name, decay in (("plain", 0.0), ("ema", 0.8)):
        config = write_config(tmp_path / f"{name}.json", epochs=2, ema_decay=decay)
        result = run_cli("train", "--config", config, "--data", tiny[0], "--val", tiny[1], "--out", tmp_path / name)
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads((tmp_path / name / "history.json").read_text())["float"]
    # The same steps (the average never feeds back into training) ...
    assert [r["loss"] for r in runs["ema"]] == pytest.approx([r["loss"] for r in runs["plain"]], rel=1e-4)
    # ... but the kept weights are the average, so they differ.
    kept = zip(final_weights(tmp_path / "ema"), final_weights(tmp_path / "plain"))
    assert any(not np.allclose(ours, theirs) for ours, theirs in kept)


def final_weights(folder: Path, name: str = "last.weights.h5") -> list[np.ndarray]:
    import h5py
    with h5py.File(folder / name) as f:
        arrays = []
        f.visititems(lambda _, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


@pytest.mark.slow
@pytest.mark.parametrize("ema_decay", [0.0, 0.7], ids=["plain", "ema"])
def test_resume_after_a_kill_matches_an_uninterrupted_run(tiny, tmp_path, ema_decay):
    # With ema_decay the moving average must survive the kill too (it is checkpointed with the optimizer).
    config = write_config(tmp_path / "train.json", epochs=3, checkpoint_steps=1, ema_decay=ema_decay)
    common = ["--config", config, "--data", tiny[0], "--val", tiny[1]]
    reference = run_cli("train", *common, "--out", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen([*CLI, "train",
                                *map(str, common), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = out / "state" / "float" / "checkpoint"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if index.is_file() and "ckpt-3" in index.read_text():  # epoch 2 is under way
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "summary.json").exists()

    resumed = run_cli("train", *common, "--out", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    history = json.loads((out / "history.json").read_text())["float"]
    assert history == json.loads((tmp_path / "ref" / "history.json").read_text())["float"]
    for ours, theirs in zip(final_weights(out), final_weights(tmp_path / "ref")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


# not slow: issue #5 asks for distribution tested in CI (~1.5 min)
def test_mirrored_strategy_on_two_logical_cpus(tiny, tmp_path):
    # With a teacher (the packaged default, at its own 208x208 input): it is built in the strategy's
    # scope and runs on each replica's share of the batch.
    config = write_config(tmp_path / "train.json", epochs=1, strategy="mirrored", teacher="portrait")
    script = f"""
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edge_deeplab.train.config import TrainingSpec
from edge_deeplab.train.trainer import Trainer
summary = Trainer(TrainingSpec.load({str(config)!r}), {str(tiny[0])!r}, {str(tmp_path / 'run')!r},
                  {str(tiny[1])!r}, progress=False).run()
print(summary["replicas"], summary["float_best"]["loss"])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    replicas, loss = result.stdout.split()[-2:]
    assert replicas == "2" and np.isfinite(float(loss))
    assert "distilling from" in result.stderr
    assert (tmp_path / "run" / "best.weights.h5").is_file()


WORKER = """
import hashlib, json, sys
from edge_deeplab.train.config import TrainingSpec
from edge_deeplab.train.trainer import Trainer
config, data, out, resume = sys.argv[1:]
trainer = Trainer(TrainingSpec.load(config), data, out, progress=False)
summary = trainer.run(resume=resume == "resume")
weights = hashlib.sha256(b"".join(w.tobytes() for w in trainer.model.get_weights())).hexdigest()
print(json.dumps({"chief": trainer.chief, "replicas": summary["replicas"], "weights": weights}))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_workers(config: Path, data: Path, outs: list[Path], logs: Path, resume: bool = False) -> list[dict]:
    """One training process per entry of ``outs`` (its --out), clustered on localhost by TF_CONFIG."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(len(outs))]}
    processes = []
    try:
        for index, out in enumerate(outs):
            tmp = logs / f"tmp{index}"  # the worker's TMPDIR: where a non-chief writes its private copies
            tmp.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            with open(logs / f"w{index}.out", "w") as stdout, open(logs / f"w{index}.err", "w") as stderr:
                processes.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(config), str(data), str(out), "resume" if resume else "new"],
                    stdout=stdout, stderr=stderr, env=env))
        for process in processes:
            process.wait(timeout=900)
    finally:
        for process in processes:  # one worker failing leaves the other waiting on a collective
            if process.poll() is None:
                process.kill()
                process.wait()
    for index, process in enumerate(processes):
        assert process.returncode == 0, (logs / f"w{index}.err").read_text()[-3000:]
    return [json.loads((logs / f"w{index}.out").read_text().splitlines()[-1]) for index in range(len(outs))]


@pytest.mark.slow  # four TensorFlow processes, ~165 s of CPU (199 s here); the mirrored test covers CI
def test_multi_worker_strategy_with_two_workers_on_localhost(tiny, tmp_path):
    train = {"strategy": "multi_worker", "bn_recalibration_batches": 2}
    out = tmp_path / "run"
    # The second worker is given another --out: nothing may appear there (only the chief writes), and its
    # private copies (in its TMPDIR) are deleted when it is done.
    first = run_workers(write_config(tmp_path / "one.json", epochs=1, **train), tiny[0],
                        [out, tmp_path / "not_the_chief"], tmp_path / "logs1")
    assert [w["chief"] for w in first] == [True, False] and [w["replicas"] for w in first] == [2, 2]
    assert first[0]["weights"] == first[1]["weights"]  # gradients all-reduced: one model
    assert not (tmp_path / "not_the_chief").exists() and not any((tmp_path / "logs1" / "tmp1").iterdir())
    for name in ("config.yaml", "model.json", "best.weights.h5", "last.weights.h5", "history.json"):
        assert (out / name).is_file(), name
    assert "ckpt-1" in (out / "state" / "float" / "checkpoint").read_text()
    history = json.loads((out / "history.json").read_text())["float"]
    assert [r["epoch"] for r in history] == [1]
    from edge_deeplab.models import build_model
    saved = build_model(TrainingSpec.load(out / "config.yaml").model)
    saved.load_weights(str(out / "last.weights.h5"))
    import hashlib
    assert hashlib.sha256(b"".join(w.tobytes() for w in saved.get_weights())).hexdigest() == first[0]["weights"]

    # Resumed with one more epoch: both workers restore the chief's checkpoint and continue from it.
    resumed = run_workers(write_config(tmp_path / "two.json", epochs=2, **train), tiny[0], [out, out],
                          tmp_path / "logs2", resume=True)
    assert resumed[0]["weights"] == resumed[1]["weights"] != first[0]["weights"]
    again = json.loads((out / "history.json").read_text())["float"]
    assert [r["epoch"] for r in again] == [1, 2] and again[0] == history[0]  # epoch 1 not re-run
    assert "ckpt-2" in (out / "state" / "float" / "checkpoint").read_text()
    assert not any((tmp_path / "logs2" / "tmp1").iterdir())


# -- ImageNet import -----------------------------------------------------------------------------
def test_imagenet_import_reproduces_the_tflite_features(shared):
    from ai_edge_litert.interpreter import Interpreter

    from edge_deeplab._optional import keras
    from edge_deeplab.errors import BadModelError
    from edge_deeplab.models import ModelConfig, build_model
    from edge_deeplab.train.pretrained import import_mobilenet_v2

    imagenet = shared("weights/mobilenet_v2_1.0_224_quant.tflite")
    image = sorted((shared("data/portrait/val/images")).iterdir())[0]
    pixels = np.asarray(Image.open(image).convert("RGB").resize((224, 224)))
    interpreter = Interpreter(str(imagenet), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels[None])
    interpreter.invoke()
    convs = [op for op in interpreter._get_ops_details()
             if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    last = convs[50]["outputs"][0]  # block 16's projection, the backbone's deepest features
    detail = next(t for t in interpreter.get_tensor_details() if t["index"] == last)
    quant = detail["quantization_parameters"]
    reference = (interpreter.get_tensor(last).astype(np.float32) - quant["zero_points"][0]) * quant["scales"][0]

    config = ModelConfig(backbone="mobilenet_v2", width=1.0, output_stride=32, head="lraspp",
                         input_size=(224, 224), num_classes=2)
    model = build_model(config)
    assert import_mobilenet_v2(model, imagenet) == 51
    features = keras().Model(model.input, model.get_layer("block16_project_bn").output)
    ours = features(pixels[None].astype(np.float32) / 255.0).numpy()
    assert ours.shape == reference.shape
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.97

    narrow = build_model(config.replace(width=0.5, input_size=(64, 64)))
    assert import_mobilenet_v2(narrow, imagenet) == 51
    # A reduced tail takes the first channels of the stride-32 stage and is exact before it.
    reduced = build_model(config.replace(reduced_tail=True))
    assert import_mobilenet_v2(reduced, imagenet) == 51
    stride16 = [keras().Model(m.input, m.get_layer("block12_add").output)(pixels[None] / 255.0).numpy()
                for m in (model, reduced)]
    np.testing.assert_array_equal(*stride16)
    full_kernel = model.get_layer("block14_expand").get_weights()[0]
    np.testing.assert_array_equal(reduced.get_layer("block14_expand").get_weights()[0],
                                  full_kernel[:, :, :80, :480])
    with pytest.raises(BadModelError, match="width"):
        import_mobilenet_v2(build_model(config.replace(width=1.4, input_size=(64, 64))), imagenet)


def test_qat_resumed_after_the_float_phase_matches_one_run(tiny, first_run, tmp_path):
    """`train` then `train --resume --qat` (the float phase done by an earlier call) must give the
    QAT weights of one `train --qat` run: the QAT phase may not depend on what the call did before
    (here: init: weights_by_name builds a donor model in the float phase of the one run only)."""
    config = write_config(tmp_path / "train.json", epochs=1, qat_epochs=1, init="weights_by_name",
                          init_weights=str(first_run / "best.weights.h5"))
    common = ["--config", config, "--data", tiny[0], "--val", tiny[1]]
    assert run_cli("train", *common, "--qat", "--out", tmp_path / "one").returncode == 0
    assert run_cli("train", *common, "--out", tmp_path / "two").returncode == 0
    resumed = run_cli("train", *common, "--qat", "--resume", "--out", tmp_path / "two")
    assert resumed.returncode == 0, resumed.stderr
    history = [json.loads((tmp_path / run / "history.json").read_text())["qat"] for run in ("one", "two")]
    assert history[0] == history[1] and history[0]
    one, two = (final_weights(tmp_path / run, "qat.weights.h5") for run in ("one", "two"))
    assert len(one) == len(two)
    for ours, theirs in zip(one, two):
        np.testing.assert_array_equal(ours, theirs)


# -- resume, --qat and interruptions: refused before anything is written -------------------------
def folder_bytes(folder: Path) -> dict:
    return {path.relative_to(folder): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_resume_refuses_a_changed_model_and_leaves_the_run_as_it_was_but_takes_more_epochs(tiny, first_run,
                                                                                           tmp_path):
    common = ["--data", tiny[0], "--out"]
    shutil.copytree(first_run, tmp_path / "a")
    for name, model, words in [("wider", {"width": 0.5}, "model.width (0.35 -> 0.5)"),
                               ("bigger", {"input_size": [96, 96]}, "model.input_size ([64, 64] -> [96, 96])")]:
        run = tmp_path / name
        shutil.copytree(tmp_path / "a", run)
        before = folder_bytes(run)
        result = run_cli("train", "--config", write_config(tmp_path / f"{name}.json", model, epochs=1),
                         *common, run, "--resume")
        assert result.returncode == 1 and result.stderr.startswith("error: --resume") and words in result.stderr
        assert result.stderr.count("\n") == 1 and "new --out" in result.stderr
        assert folder_bytes(run) == before
    # A longer schedule is what --resume is for.
    longer = run_cli("train", "--config", write_config(tmp_path / "longer.json", epochs=2), *common,
                     tmp_path / "a", "--resume")
    assert longer.returncode == 0, longer.stderr
    assert [r["epoch"] for r in json.loads((tmp_path / "a" / "history.json").read_text())["float"]] == [1, 2]
    assert TrainingSpec.load(tmp_path / "a" / "config.yaml").train.epochs == 2


def test_which_config_changes_a_resume_accepts(tmp_path):
    from edge_deeplab.train.config import check_resume
    base = TrainingSpec.load(write_config(tmp_path / "base.json"))
    run = tmp_path / "run"
    run.mkdir()
    base.save(run / "config.yaml")

    def changed(**train):
        return TrainingSpec(base.model, base.train.replace(**train))
    check_resume(base, tmp_path / "nothing_yet")  # no config.yaml: a fresh run
    for ok in ({"epochs": 5}, {"qat_epochs": 0}, {"qat_learning_rate": 1e-5}, {"val_every": 2},
               {"checkpoint_steps": 3}, {"strategy": "mirrored"}):
        check_resume(changed(**ok), run)
    for bad, words in (({"epochs": 1}, "train.epochs (2 -> 1)"), ({"learning_rate": 0.1}, "train.learning_rate"),
                       ({"zoom_out_prob": 0.0}, "train.zoom_out_prob")):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
            check_resume(changed(**bad), run)
    # Once QAT has started, its settings are what it was trained with; qat_epochs may still grow.
    (run / "state" / "qat").mkdir(parents=True)
    (run / "state" / "qat" / "checkpoint").write_text("")
    check_resume(changed(qat_epochs=4), run)
    with pytest.raises(ConfigError, match="qat_learning_rate"):
        check_resume(changed(qat_learning_rate=1e-5), run)


def test_qat_with_qat_epochs_zero_is_refused_before_training(tiny, tmp_path):
    config = write_config(tmp_path / "t.json", epochs=1, qat_epochs=0)
    result = run_cli("train", "--config", config, "--data", tiny[0], "--qat", "--out", tmp_path / "run")
    assert result.returncode == 1 and "qat_epochs: 0" in result.stderr and "qat_epochs >= 1" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


def test_an_unlabelled_val_folder_is_refused_even_with_a_model_file_teacher(tiny, tmp_path):
    from edge_deeplab.train.trainer import Trainer
    teacher = Path(__file__).parent / "fixtures" / "models" / "two_class_float.tflite"
    unlabelled = tmp_path / "scenes"
    shutil.copytree(tiny[1] / "images", unlabelled / "images")
    spec = TrainingSpec.load(write_config(tmp_path / "t.json", epochs=1, teacher=str(teacher)))
    with pytest.raises(DatasetError, match=r"validation folders need masks/ \(unlabelled folders go in --data"):
        Trainer(spec, tiny[0], tmp_path / "run", unlabelled, progress=False)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 1)], ids=["sigterm", "ctrl-c"])
def test_an_interrupted_training_says_the_checkpoint_is_kept(tiny, tmp_path, signum, code):
    config = write_config(tmp_path / "t.json", epochs=50, checkpoint_steps=1, bn_recalibration_batches=0)
    out = tmp_path / "run"
    process = subprocess.Popen([*CLI, "train", "--config", str(config), "--data", str(tiny[0]), "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not (out / "state" / "float" / "checkpoint").is_file():
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be stopped"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    line = f"interrupted; the last checkpoint in {out} is kept: continue with --resume"
    assert line in stderr.splitlines()[-3:], stderr[-1000:]  # Ctrl-C: click's "Aborted!" follows
    assert "Traceback" not in stderr


def test_sigterm_turned_into_another_error_still_ends_training_as_interrupted(tiny, tmp_path, monkeypatch):
    """SIGTERM inside code TensorFlow called back into surfaces as TensorFlow's error, not SystemExit."""
    from conftest import sigterm_turned_into_an_error
    from edge_deeplab.train.trainer import Trainer
    out = tmp_path / "run"

    def run(self, qat=False, resume=False):
        (out / "state" / "float").mkdir(parents=True)
        (out / "state" / "float" / "checkpoint").write_text("")  # a checkpoint was written
        sigterm_turned_into_an_error(by="py_function")
    monkeypatch.setattr(Trainer, "run", run)
    result = run_cli("train", "--config", write_config(tmp_path / "t.json"), "--data", tiny[0], "--out", out)
    assert result.returncode == 128 + signal.SIGTERM and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == f"interrupted; the last checkpoint in {out} is kept: continue with --resume"


def test_the_interrupted_message_starts_its_own_line_after_a_live_progress_bar(tmp_path, capsys):
    from tqdm import tqdm
    from edge_deeplab.cli.train import _interrupted
    bar = tqdm(total=2, desc="float 1/50", file=sys.stderr)  # what a signal can leave open mid-epoch
    bar.update(1)
    _interrupted(str(tmp_path))
    lines = capsys.readouterr().err.splitlines()
    assert "interrupted before the first checkpoint; nothing to resume" in lines
    assert any(line.startswith("float 1/50:") for line in lines)


class _SignalOnNewline:
    """A stderr whose first newline is cut off by SIGTERM, as the CLI's handler raises it."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if text == "\n":
            raise SystemExit(128 + signal.SIGTERM)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def test_the_interrupted_message_starts_its_own_line_when_a_signal_cut_a_bar_s_close(tmp_path, capsys, monkeypatch):
    """A signal between a closing bar's last draw and its newline leaves the line open (seen in CI)."""
    from tqdm import tqdm
    from edge_deeplab.cli.train import _interrupted
    from edge_deeplab.progress import BAR_STREAM
    bar = tqdm(total=2, desc="float 1/50", file=BAR_STREAM)  # as the trainer draws its epochs
    bar.update(1)
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stderr", _SignalOnNewline(sys.stderr))
        with pytest.raises(SystemExit):
            bar.close()
    _interrupted(str(tmp_path))
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "interrupted before the first checkpoint; nothing to resume"
    assert lines[-2].startswith("float 1/50:  50%")
