"""TrainConfig and training config files: ``{"model": ModelConfig dict or zoo name, "train": TrainConfig}``;
``{"zoo": name, field: value}`` as the model is that zoo model with those fields changed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_deeplab.configs import Config, absolute_path, check_choice, check_range, read_mapping, resolve_paths
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.config import ModelConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "poly", "constant")
STRATEGIES = ("default", "mirrored", "multi_worker")
INITS = ("none", "imagenet", "weights", "weights_by_name", "weights_mean")


@dataclass(frozen=True)
class ClassMap(Config):
    """Relabels one dataset folder whose masks use another class set: ``classes`` pairs (source class,
    model class); every other class becomes ``other``; 255 stays ignored. E.g. CamVid for a person
    model: pedestrian (9) -> person (1), bicyclist (10, rider and bicycle) -> 255, the rest background."""

    path_fields = ("folder",)

    folder: str = ""
    classes: tuple[tuple[int, int], ...] = ()
    other: int = 0

    def validate(self) -> None:
        if not self.folder:
            raise ConfigError("class_maps: each entry needs folder: the --data/--val folder it relabels")
        for pair in self.classes:
            if len(pair) != 2:
                raise ConfigError(f"class_maps[{self.folder}].classes: pairs [source, target], got {list(pair)}")
            for value in pair:
                check_range(f"class_maps[{self.folder}] class", value, 0, 255)
        check_range(f"class_maps[{self.folder}].other", self.other, 0, 255)

    def lookup(self) -> "np.ndarray":
        """A 256-entry table: mask values -> model classes."""
        import numpy as np
        table = np.full(256, self.other, np.uint8)
        table[255] = 255
        for source, target in self.classes:
            table[source] = target
        return table


@dataclass(frozen=True)
class PersonFree(Config):
    """Images of an unlabelled --data folder known to show nobody (e.g. DAVIS's animal and vehicle
    sequences): every pixel is background, whatever a model-file teacher would rate it. ``stems``:
    file-name patterns (fnmatch, e.g. ``bear_*``); none: the whole folder."""

    path_fields = ("folder",)

    folder: str = ""
    stems: tuple[str, ...] = ()

    def validate(self) -> None:
        if not self.folder:
            raise ConfigError("person_free: each entry needs folder: the unlabelled --data folder it describes")

    def matches(self, stem: str) -> bool:
        from fnmatch import fnmatchcase
        return not self.stems or any(fnmatchcase(stem, pattern) for pattern in self.stems)

    def unmatched(self, stems) -> list[str]:
        """The patterns that match none of ``stems`` (a typo would leave the teacher's labels in place)."""
        from fnmatch import fnmatchcase
        return [pattern for pattern in self.stems if not any(fnmatchcase(stem, pattern) for stem in stems)]


@dataclass(frozen=True)
class TrainConfig(Config):
    """How to train: schedule, augmentation, loss, QAT fine-tuning, distribution, initialization."""

    # Relative to the config file's folder.
    path_fields = ("init_weights", "init_weights_mean", "teacher", "teacher_ensemble")

    epochs: int = 30
    batch_size: int = 16  # global batch, split across replicas
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0  # adamw's decoupled decay; sgd's L2 via the optimizer's weight_decay
    momentum: float = 0.9  # sgd only
    # Augmentation. Images are first stretched to the model's input size (as at inference), then:
    scale_range: tuple[float, float] = (0.75, 1.5)  # zoom in/out, then crop/pad back to input size
    # > 1: the zoom also stretches one axis against the other, height:width by a factor drawn
    # log-uniformly from [1/a, a] (torchvision's RandomResizedCrop ratio): photos of other shapes reach
    # a fixed input stretched, so people arrive wider or narrower than they are (1 disables).
    aspect_jitter: float = 1.0
    zoom_out_prob: float = 0.0  # framing: shrink the sample and paste it onto another sample
    zoom_out_range: tuple[float, float] = (0.35, 0.9)  # linear size of the pasted sample
    pad_label: int = 255  # label of padding when zooming out without a paste canvas
    # Composite: with this probability a sample is replaced by 1..paste_max people cut out of labelled
    # samples, each scaled to a share of the frame height in paste_height_range, pasted onto an
    # unlabelled scene (or another sample when there are none); see train/composite.py.
    paste_prob: float = 0.0
    paste_max: int = 3
    paste_height_range: tuple[float, float] = (0.25, 0.95)
    hflip: bool = True
    color_jitter: float = 0.2  # brightness/contrast/saturation strength (0 disables)
    hue_jitter: float = 0.0  # largest hue shift, a fraction of the colour circle (0 disables)
    # Largest rotation, degrees either way, about the crop's centre: leaning, tilted and crouching
    # bodies (the corners it uncovers mirror the crop, targets alike; 0 disables).
    rotation_degrees: float = 0.0
    cache_scale: float = 1.25  # images are cached in memory at this multiple of input size
    # Loss: cross-entropy over classes, label 255 ignored.
    class_weights: tuple[float, ...] = ()
    ohem_ratio: float = 1.0  # < 1: average only the hardest fraction of pixels
    label_smoothing: float = 0.0
    lovasz_weight: float = 0.0  # > 0: add this much Lovasz-softmax (an IoU surrogate) to the loss
    # Knowledge distillation: a trained model with the same classes (export SOURCE: zoo name, run
    # folder, or .h5 beside its config) whose softened per-pixel class distribution the model also
    # learns, with this weight and temperature (Hinton et al. 2015), on the same augmented batches.
    # Or a person segmentation model file (.tflite/.onnx/.xml, run like `segment` runs it): its person
    # probability is the soft target, and it labels --data folders that have no masks/ (person at or
    # above pseudo_label_band's high end, background at or below its low end, ignored between).
    teacher: str = ""
    # More person segmentation model files beside a model-file teacher: the teacher's probability is
    # then the mean of all of them (MediaPipe's square and landscape models together beat each alone).
    teacher_ensemble: tuple[str, ...] = ()
    # > 1: a model-file teacher sees an image wider than teacher_tile_aspect (width:height) as this many
    # overlapping tiles of that aspect (more if they would not cover it), their probabilities averaged:
    # people in a 16:9 frame get more of the teacher's input width.
    teacher_tiles: int = 1
    teacher_tile_aspect: float = 4 / 3
    distill_weight: float = 1.0
    distill_temperature: float = 1.0
    pseudo_label_band: tuple[float, float] = (0.3, 0.7)
    # > 0: on labelled images, background pixels a model-file teacher rates at least this person
    # probability are ignored (DAVIS masks only the performer; the people behind are left as background).
    ignore_disputed_background: float = 0.0
    # True: every training and val image (with its mask and teacher probability) is centre-cropped to
    # the input's aspect ratio before it is resized, as a photo of that shape arrives at inference;
    # False: stretched to the input like any photo (a 16:9 frame into a 9:16 input: people 3.2x thinner).
    crop_to_input_aspect: bool = False
    # Batch-norm moving-average momentum while training (the builders' 0.99 suits long schedules;
    # short CPU schedules need faster-tracking statistics or inference-mode outputs lag behind).
    bn_momentum: float = 0.9
    # Before each validation, re-estimate batch-norm statistics on this many (augmented) training
    # batches with the current weights: moving averages lag behind fast-changing weights early on.
    bn_recalibration_batches: int = 20
    # > 0: what is validated and saved (best, last, qat weights) is the exponential moving average of
    # the weights with this decay per step (Polyak averaging, as timm's ModelEma), not the latest step's:
    # short fine-tunes on noisy composites swing by points from epoch to epoch. Training itself is
    # unchanged. E.g. 0.998 averages over about the last 500 steps.
    ema_decay: float = 0.0
    # Quantization-aware fine-tuning (``--qat``), started from the best float weights.
    qat_epochs: int = 3
    qat_learning_rate: float = 1e-4
    qat_calibration_batches: int = 30  # batches that set activation ranges before QAT (see train/qat.py)
    strategy: str = "default"
    seed: int = 0
    init: str = "none"
    # imagenet: path of the int8 MobileNetV2 .tflite to import; weights: float .h5 of this same model
    # (fine-tuning from an earlier run's best.weights.h5); weights_by_name: a related model's trained
    # weights (run folder, .h5 beside its config, or a zoo model that ships weights), layers matched by
    # name (narrower ones, e.g. a reduced tail, take the leading channels; wider ones, e.g. a larger
    # expansion_scale, start as the donor's function), the others (e.g. an added refinement) keep their
    # initialization
    init_weights: str = ""
    # init: weights_mean: the element-wise mean of these float .h5 weights of this same model (a uniform
    # model soup, Wortsman et al. 2022): two fine-tunes from one start, each better on some photos.
    init_weights_mean: tuple[str, ...] = ()
    # Data folders labelled with another class set, relabelled on load (see ClassMap).
    class_maps: tuple[ClassMap, ...] = ()
    # Unlabelled images known to show nobody: background everywhere, not the teacher's pseudo-labels
    # (person segmenters such as MediaPipe's mark a bear or a car as a person with confidence, and a
    # student taught so calls any salient object a person). They stay composite backgrounds.
    person_free: tuple[PersonFree, ...] = ()
    checkpoint_steps: int = 0  # also save resumable state every N steps inside an epoch (0: per epoch)
    val_every: int = 1

    def validate(self) -> None:
        check_range("epochs", self.epochs, 0, 100000)
        check_range("batch_size", self.batch_size, 1, 4096)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("lr_schedule", self.lr_schedule, SCHEDULES)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("init", self.init, INITS)
        check_range("learning_rate", self.learning_rate, 0.0, 10.0)
        check_range("qat_learning_rate", self.qat_learning_rate, 0.0, 10.0)
        check_range("qat_epochs", self.qat_epochs, 0, 10000)
        check_range("zoom_out_prob", self.zoom_out_prob, 0.0, 1.0)
        check_range("ohem_ratio", self.ohem_ratio, 0.01, 1.0)
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.5)
        check_range("lovasz_weight", self.lovasz_weight, 0.0, 10.0)
        check_range("distill_weight", self.distill_weight, 0.0, 100.0)
        check_range("distill_temperature", self.distill_temperature, 0.1, 100.0)
        check_range("color_jitter", self.color_jitter, 0.0, 1.0)
        check_range("hue_jitter", self.hue_jitter, 0.0, 0.5)
        check_range("rotation_degrees", self.rotation_degrees, 0.0, 90.0)
        check_range("aspect_jitter", self.aspect_jitter, 1.0, 4.0)
        check_range("cache_scale", self.cache_scale, 1.0, 4.0)
        check_range("bn_momentum", self.bn_momentum, 0.0, 1.0)
        check_range("bn_recalibration_batches", self.bn_recalibration_batches, 0, 100000)
        check_range("ema_decay", self.ema_decay, 0.0, 0.99999)
        check_range("qat_calibration_batches", self.qat_calibration_batches, 0, 100000)
        check_range("pad_label", self.pad_label, 0, 255)
        check_range("paste_prob", self.paste_prob, 0.0, 1.0)
        check_range("paste_max", self.paste_max, 1, 10)
        check_range("val_every", self.val_every, 1, 10000)
        for name, (low, high), bounds in (("scale_range", self.scale_range, (0.1, 4.0)),
                                          ("zoom_out_range", self.zoom_out_range, (0.1, 1.0)),
                                          ("paste_height_range", self.paste_height_range, (0.05, 1.0)),
                                          ("pseudo_label_band", self.pseudo_label_band, (0.0, 1.0))):
            if not bounds[0] <= low <= high <= bounds[1]:
                raise ConfigError(f"{name} must be [low, high] with {bounds[0]} <= low <= high <= "
                                  f"{bounds[1]}, got {[low, high]}")
        from edge_deeplab.train.file_teacher import is_model_file
        check_range("ignore_disputed_background", self.ignore_disputed_background, 0.0, 1.0)
        if self.ignore_disputed_background and not is_model_file(self.teacher):
            raise ConfigError("ignore_disputed_background needs a model-file teacher (teacher: a person "
                              "segmentation .tflite/.onnx/.xml) to say which background pixels are people")
        if self.teacher_ensemble:
            not_files = [t for t in (self.teacher, *self.teacher_ensemble) if not is_model_file(t)]
            if not_files:
                raise ConfigError(f"teacher_ensemble averages person segmentation model files (.tflite, .onnx, "
                                  f".xml); teacher and every entry must be one, not {not_files[0]!r}")
        check_range("teacher_tiles", self.teacher_tiles, 1, 16)
        check_range("teacher_tile_aspect", self.teacher_tile_aspect, 0.25, 4.0)
        if self.teacher_tiles > 1 and not is_model_file(self.teacher):
            raise ConfigError("teacher_tiles needs a model-file teacher (teacher: a person segmentation "
                              ".tflite/.onnx/.xml); a Keras teacher sees the same augmented crops as the student")
        if any(w < 0 for w in self.class_weights):
            raise ConfigError(f"class_weights must be >= 0, got {list(self.class_weights)}")
        if self.init == "imagenet" and not self.init_weights:
            raise ConfigError("init: imagenet needs init_weights: the path of an int8 ImageNet "
                              "MobileNetV2 .tflite (e.g. mobilenet_v2_1.0_224_quant.tflite)")
        if self.init == "weights" and not self.init_weights.endswith((".h5", ".keras")):
            raise ConfigError("init: weights needs init_weights: the float .h5 weights of this same model "
                              "(e.g. an earlier run's best.weights.h5)")
        if self.init == "weights_mean" and (len(self.init_weights_mean) < 2 or not all(
                str(w).endswith((".h5", ".keras")) for w in self.init_weights_mean)):
            raise ConfigError("init: weights_mean needs init_weights_mean: two or more float .h5 weights of this "
                              "same model (e.g. two runs' best.weights.h5), whose mean starts training")
        if self.init_weights_mean and self.init != "weights_mean":
            raise ConfigError(f"init_weights_mean is read by init: weights_mean only (init is {self.init!r})")
        if self.init == "weights_by_name" and not self.init_weights:
            raise ConfigError("init: weights_by_name needs init_weights: a related model's trained weights "
                              "(a run folder, its best.weights.h5, or a zoo model that ships weights, e.g. "
                              "portrait); layers are matched by name and shape")


def _zoo_model(name: Any) -> ModelConfig:
    from edge_deeplab.zoo import ZOO
    if not isinstance(name, str):
        raise ConfigError(f"training config: model.zoo must be a zoo model name, not {name!r}")
    return ZOO.get(name).target


def model_entry(model: Any) -> ModelConfig:
    """A training config's ``model``: a zoo name, ``{zoo: name, field: value, ...}`` (that zoo model with
    those fields changed), or a ModelConfig mapping."""
    if isinstance(model, dict) and "zoo" in model:
        changes = dict(model)
        model = {**_zoo_model(changes.pop("zoo")).to_dict(), **changes}
    return _zoo_model(model) if isinstance(model, str) else ModelConfig.from_dict(model)


@dataclass(frozen=True)
class TrainingSpec:
    """A training config file: the model to build and how to train it."""

    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> TrainingSpec:
        if not isinstance(data, dict) or "model" not in data:
            raise ConfigError('a training config is a mapping {"model": <ModelConfig, zoo name, or {zoo: name, '
                              'field: value}>, "train": <TrainConfig>}')
        unknown = set(data) - {"model", "train"}
        if unknown:
            raise ConfigError(f"training config: unknown key {sorted(unknown)[0]!r}; "
                              "valid keys: model, train (and base, in a config file)")
        return cls(model_entry(data["model"]), TrainConfig.from_dict(data.get("train") or {}))

    @classmethod
    def load(cls, path: str | Path) -> TrainingSpec:
        """A training config file; relative paths in it (init_weights, teacher) resolve against its folder.

        ``base: other.yaml`` (relative to the file) starts from another training config: the file's
        ``model`` replaces the base's, and its ``train`` keys replace the base's one by one.
        """
        return cls.from_dict(_read_with_base(Path(path), ()))

    def save(self, path: str | Path) -> None:
        import yaml
        from edge_deeplab.atomic import atomic_write_text
        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


# What a resumed run may change: the remaining schedule, and bookkeeping that leaves the weights as they
# are. Everything else (the model, its input size, the data pipeline, the loss) describes the epochs
# already trained, so a change would leave the folder's config.yaml describing weights it did not make.
_RESUME_GROWS = ("epochs",)
_RESUME_FREE = ("val_every", "checkpoint_steps", "strategy")
# The QAT phase's settings are free until it has started; then qat_epochs may only grow.
_RESUME_QAT = ("qat_epochs", "qat_learning_rate", "qat_calibration_batches")


def check_run(spec: TrainingSpec, out: str | Path, qat: bool, resume: bool) -> None:
    """What ``train`` can refuse from the config alone, before TensorFlow loads or anything is written."""
    if qat and not spec.train.qat_epochs:
        raise ConfigError("--qat asks for quantization-aware fine-tuning, but the config sets qat_epochs: 0; "
                          "set qat_epochs >= 1, or drop --qat")
    if resume:
        check_resume(spec, out)


def check_resume(spec: TrainingSpec, out: str | Path) -> None:
    """Refuse to ``--resume`` ``out`` with a config that differs from its config.yaml in anything but a
    longer schedule; reads only, so a refused resume leaves the folder as it was."""
    out = Path(out)
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        return  # nothing trained yet: this config starts the run
    saved = TrainingSpec.load(saved_path)
    qat_started = (out / "state" / "qat" / "checkpoint").is_file()
    changed = [f"model.{key} ({old!r} -> {new!r})" for key, old, new in _differences(saved.model, spec.model)]
    for key, old, new in _differences(saved.train, spec.train):
        if key in _RESUME_FREE or (key in _RESUME_QAT and not qat_started):
            continue
        if key in _RESUME_GROWS + ("qat_epochs",) and new >= old:
            continue
        changed.append(f"train.{key} ({old!r} -> {new!r})")
    if changed:
        raise ConfigError(f"--resume: the config differs from {saved_path} in {', '.join(changed)}; the run's "
                          f"weights were trained with its config.yaml: start a new --out for this config, or "
                          f"resume with --config {saved_path} (a resume may only lengthen epochs or qat_epochs)")


def _differences(saved: Config, new: Config) -> list[tuple[str, Any, Any]]:
    old_values, new_values = saved.to_dict(), new.to_dict()
    return [(key, old_values.get(key), new_values.get(key)) for key in dict.fromkeys([*old_values, *new_values])
            if old_values.get(key) != new_values.get(key)]


def _read_with_base(path: Path, chain: tuple[Path, ...]) -> Any:
    """A training config file's data, its paths resolved, merged onto its ``base:`` (recursively)."""
    data = read_mapping(path, "training config" if not chain else f"base of {chain[-1]}")
    if not isinstance(data, dict):
        return data
    folder = path.parent
    if isinstance(data.get("train"), dict):
        train = resolve_paths(data["train"], TrainConfig.path_fields, folder)
        for field, entry_type in (("class_maps", ClassMap), ("person_free", PersonFree)):
            if isinstance(train.get(field), list):
                train[field] = [resolve_paths(m, entry_type.path_fields, folder) for m in train[field]]
        data = {**data, "train": train}
    if "base" not in data:
        return data
    base_name = data.pop("base")
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: base must be the path of another training config, not {base_name!r}")
    base_path = Path(absolute_path(base_name, folder))
    here = path.resolve()
    if base_path.resolve() in chain + (here,):
        raise ConfigError(f"{path}: base {base_name!r} leads back to {base_path}; configs cannot inherit in a loop")
    base = _read_with_base(base_path, chain + (here,))
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: a base config must be a mapping with model and train")
    merged = {**base, **{k: v for k, v in data.items() if k != "train"}}
    if "train" in data:
        merged["train"] = {**_train_section(base, base_path), **_train_section(data, path)}
    return merged


def _train_section(data: dict, path: Path) -> dict:
    """A config file's ``train`` mapping ({} when absent or empty), for merging onto or from a base."""
    train = data.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: train must be a mapping of TrainConfig keys")
    return train

