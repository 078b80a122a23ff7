"""Accuracy proxy: a short training (the project's Trainer) on a subset at reduced resolution, scored by
mIoU on a held-out split.

The subset is written once, already resized, into the search folder (``proxy_data/``), so each trial
decodes small files instead of the full-size photos. Each trial trains in ``trials/<key>/`` and is
resumable there, like any training run; its weights fit the full-size model too (fully convolutional),
which is how the best candidate gets exported with them.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge_deeplab.configs import Config, check_range
from edge_deeplab.datasets import MaskValues, Pair, list_pairs, load_mask
from edge_deeplab.errors import ConfigError, DatasetError
from edge_deeplab.imaging import load_image
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.processing import resize_rgb

SIDE_MULTIPLE = 32  # proxy sides are multiples of the largest output stride, so every candidate fits


@dataclass(frozen=True)
class ProxySettings(Config):
    path_fields = ("init_weights",)  # relative to the settings file's folder

    train_images: int = 240
    val_images: int = 60
    scale: float = 0.5  # proxy input side / candidate input side
    min_side: int = 64
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 3e-3
    # Batch-norm re-estimation batches (the trainer's, run after every epoch): fewer than a full
    # training's, since a proxy epoch is only ~15 steps.
    bn_recalibration_batches: int = 8
    seed: int = 0
    # ImageNet MobileNetV2 int8 .tflite: mobilenet_v2 candidates start from it, as their full training
    # would (the trainer's ``init: imagenet``); other backbones have no ImageNet weights here.
    init_weights: str = ""

    def validate(self) -> None:
        check_range("train_images", self.train_images, 1, 10**6)
        check_range("val_images", self.val_images, 1, 10**6)
        check_range("scale", self.scale, 0.1, 1.0)
        check_range("min_side", self.min_side, SIDE_MULTIPLE, 4096)
        check_range("epochs", self.epochs, 1, 1000)
        check_range("batch_size", self.batch_size, 1, 1024)
        check_range("learning_rate", self.learning_rate, 1e-6, 1.0)
        check_range("bn_recalibration_batches", self.bn_recalibration_batches, 0, 100_000)
        if self.init_weights and not Path(self.init_weights).is_file():
            raise ConfigError(f"proxy init_weights not found: {self.init_weights} (an int8 ImageNet "
                              "MobileNetV2 .tflite, e.g. mobilenet_v2_1.0_224_quant.tflite)")

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The proxy input size for a candidate input size."""
        def side(s: int) -> int:
            return max(self.min_side, int(round(s * self.scale / SIDE_MULTIPLE)) * SIDE_MULTIPLE)
        return side(size[0]), side(size[1])


@dataclass(frozen=True)
class ProxyData:
    train: Path
    val: Path
    num_classes: int


def _splits(data_dir: Path, settings: ProxySettings) -> tuple[list[Pair], list[Pair]]:
    """(train, val) pairs: the dataset's own train/ and val/ folders, else a seeded split of one folder."""
    rng = np.random.default_rng(settings.seed)
    if (data_dir / "train").is_dir() and (data_dir / "val").is_dir():
        train, val = list_pairs(data_dir / "train"), list_pairs(data_dir / "val")
    else:
        pairs = list_pairs(data_dir)
        if len(pairs) < 2:
            raise DatasetError(f"{data_dir} has {len(pairs)} image(s); the proxy needs some to train on "
                               "and some to score on")
        order = rng.permutation(len(pairs))
        held = max(1, min(settings.val_images, len(pairs) // 5))
        val, train = [pairs[i] for i in order[:held]], [pairs[i] for i in order[held:]]
    pick = lambda pairs, n: [pairs[i] for i in sorted(rng.permutation(len(pairs))[:n])]  # noqa: E731
    train, val = pick(train, settings.train_images), pick(val, settings.val_images)
    if len(train) < settings.batch_size:
        raise DatasetError(f"the proxy training split has {len(train)} images, fewer than its batch size "
                           f"{settings.batch_size}: use a larger dataset")
    return train, val


def prepare_data(data_dir: str | Path, folder: str | Path, settings: ProxySettings,
                 size: tuple[int, int]) -> ProxyData:
    """Write the proxy's train/val subsets, resized to ``size`` (H, W), into ``folder`` (reused if done)."""
    data_dir, folder = Path(data_dir), Path(folder)
    recipe = {"data": str(data_dir.resolve()), "size": list(size), **settings.to_dict()}
    done = folder / "proxy.json"
    if done.is_file() and json.loads(done.read_text()).get("recipe") == recipe:
        info = json.loads(done.read_text())
        return ProxyData(folder / "train", folder / "val", info["num_classes"])
    train, val = _splits(data_dir, settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".proxy_data-"))
    try:
        labels = [_write(pairs, staging / name, size) for name, pairs in (("train", train), ("val", val))]
        num_classes = max(2, max(labels) + 1)
        (staging / "proxy.json").write_text(json.dumps({"recipe": recipe, "num_classes": num_classes}))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ProxyData(folder / "train", folder / "val", num_classes)


def _write(pairs: list[Pair], split: Path, size: tuple[int, int]) -> int:
    """Resized copies (stretched, as inference does); returns the largest class index seen."""
    height, width = size
    (split / "images").mkdir(parents=True)
    (split / "masks").mkdir()
    values = MaskValues(pairs[0].mask.parent.parent)
    for pair in pairs:
        Image.fromarray(resize_rgb(load_image(pair.image), width, height)).save(
            split / "images" / f"{pair.image.stem}.png")
        mask = load_mask(pair.mask)
        values.add(mask, pair.mask)
        mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
        Image.fromarray(mask).save(split / "masks" / f"{pair.image.stem}.png")
    values.finish()
    return values.largest  # of the full-size masks: a small region may vanish in the resized copy


@dataclass(frozen=True)
class ProxyResult:
    score: float  # validation mIoU of the short training
    weights: Path
    seconds: float


def proxy_score(config: ModelConfig, data: ProxyData, settings: ProxySettings, folder: str | Path,
                progress: bool = False) -> ProxyResult:
    """Train ``config`` briefly at the proxy resolution in ``folder``; resumes a run a kill interrupted."""
    from edge_deeplab.train.config import TrainConfig, TrainingSpec
    from edge_deeplab.train.trainer import Trainer

    folder = Path(folder)
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        model = config.replace(input_size=settings.input_size(config.input_size))
        pretrained = bool(settings.init_weights) and config.backbone == "mobilenet_v2"
        train = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size,
                            learning_rate=settings.learning_rate, seed=settings.seed,
                            val_every=settings.epochs,  # score once, at the end: validation costs time
                            bn_recalibration_batches=settings.bn_recalibration_batches,
                            init="imagenet" if pretrained else "none",
                            init_weights=settings.init_weights if pretrained else "")
        trainer = Trainer(TrainingSpec(model, train), data.train, folder, val_dir=data.val, progress=progress)
        trainer.run(resume=(folder / "state").exists())
        from edge_deeplab.search.measure import clear_session
        clear_session()
    summary = json.loads(summary_path.read_text())
    score = (summary.get("float_best") or {}).get("val_miou")
    if score is None:
        raise DatasetError(f"the proxy training in {folder} produced no validation mIoU")
    return ProxyResult(float(score), Path(summary["weights"]), float(summary["seconds"]))
