"""Resolve an export SOURCE (zoo name, config file, checkpoint folder or .h5 weights) into a Keras model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab.errors import BadModelError, ConfigError, UnknownChoiceError
from edge_deeplab.configs import read_mapping
from edge_deeplab.models.config import ModelConfig

if TYPE_CHECKING:
    import numpy as np
    import tf_keras

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
WEIGHT_SUFFIXES = (".h5", ".keras")
# File names a checkpoint folder may hold its model config under, most specific first.
CHECKPOINT_CONFIGS = ("model.json", "model.yaml", "config.json", "config.yaml")


@dataclass(frozen=True)
class Source:
    """A model ready to export, plus where it came from (for manifests)."""

    name: str  # file-name stem of the artifacts
    origin: str  # "zoo", "config" or "checkpoint"
    config: ModelConfig
    model: "tf_keras.Model"
    weights: Path | None  # None: random initialization (no trained weights available)
    qat: bool = False  # the model carries quantization-aware-training ranges

    @property
    def random_init(self) -> bool:
        return self.weights is None

    def describe(self) -> dict[str, Any]:
        weights = str(self.weights) if self.weights else None
        if self.weights and self.origin == "zoo":
            # Packaged weights: where the package happens to be installed says nothing about the model.
            weights = f"edge_deeplab/assets/{self.weights.name}"
        return {"name": self.name, "origin": self.origin, "weights": weights, "qat": self.qat}


def resolve_source(spec: str, role: str = "export source") -> Source:
    """Zoo name, ``.json``/``.yaml`` ModelConfig, checkpoint folder, or ``.h5`` weights beside a config.
    ``role`` names what ``spec`` is for in error messages."""
    from edge_deeplab.zoo import ZOO

    path = Path(spec)
    if spec in ZOO:
        return _from_zoo(spec)
    if path.is_dir():
        return _from_checkpoint(path)
    if path.is_file() and path.suffix in CONFIG_SUFFIXES:
        config = _load_config(path)
        return Source(path.stem, "config", config, _build(config), weights=None)
    if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        return _from_weights(path, _config_beside(path))
    if path.suffix or path.exists() or "/" in spec:
        kinds = "a zoo name, a config (.json/.yaml), a checkpoint folder or .h5 weights"
        reason = "no such file or folder" if not path.exists() else f"not {kinds}"
        raise BadModelError(f"{role} {spec!r}: {reason}; expected {kinds}")
    raise UnknownChoiceError("zoo model", spec, ZOO.names())


def shipped_tflite(spec: str) -> Path | None:
    """The packaged int8 ``.tflite`` that ``spec`` names as ``segment`` reads it (``portrait_int8``), or
    None for any other SOURCE. ``default``/``default_int8`` name a family of models: a ConfigError lists
    its members (export takes one model)."""
    from edge_deeplab.runtimes import resolve_model
    from edge_deeplab.zoo import DEFAULT, INT8_SUFFIX, default_variants, split_int8

    if Path(spec).exists():  # a checkpoint folder or file of that name is what the user means
        return None
    base, int8 = split_int8(spec)
    if base == DEFAULT:
        members = ", ".join(name + INT8_SUFFIX * int8 for name in default_variants(int8))
        raise ConfigError(f"{spec!r} is a family of models, one per photo shape ({members}); export one "
                          "of them by name")
    return resolve_model(spec) if int8 else None


def _from_zoo(name: str) -> Source:
    from edge_deeplab.zoo import ZOO, missing_weights_hint, weights_path

    entry = ZOO.get(name)
    weights_name = entry.meta.get("weights")
    if weights_name:
        weights = weights_path(weights_name)
        if weights is None:  # trained, but this install lacks the file: never fall back to random weights
            raise BadModelError(f"zoo model {name!r}: {missing_weights_hint(weights_name)}")
        return _from_weights(weights, entry.target, name, origin="zoo")
    return Source(name, "zoo", entry.target, _build(entry.target), weights=None)


def _from_checkpoint(folder: Path) -> Source:
    config = _config_in(folder)
    candidates = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if not candidates:
        raise BadModelError(f"checkpoint folder {folder} holds no weights file (*.h5); "
                            "point export at the training output folder or pass a config to export "
                            "an untrained model")
    # Prefer the QAT weights when training produced both: they carry the learned int8 ranges.
    qat = [p for p in candidates if "qat" in p.name]
    best = [p for p in candidates if "best" in p.name]
    weights = (qat or best or candidates)[0]
    return _from_weights(weights, config, name=folder.name)


def float_twin(source: Source) -> Source | None:
    """The float weights a QAT checkpoint was fine-tuned from (``best.weights.h5`` beside them), or None.

    Float formats export these: fake-quant weights in a float artifact are neither the float model nor
    the int8 one, and miss the fp32 parity bar.
    """
    if not source.qat or source.weights is None or source.origin != "checkpoint":
        return None
    best = source.weights.parent / "best.weights.h5"
    if not best.is_file():
        return None
    return _from_weights(best, source.config, name=source.name)


def trained_source(spec: str, role: str) -> Source:
    """``spec`` as trained float weights to learn from (a teacher, an init): a zoo model that ships
    weights, a run folder or ``.h5`` weights; a QAT checkpoint gives the float weights beside it."""
    source = resolve_source(spec, role=role)
    source = float_twin(source) or source
    if source.random_init:
        raise BadModelError(f"{role} {spec!r} has no trained weights; give a run folder, its "
                            "best.weights.h5, or a zoo model that ships weights")
    return source


def _from_weights(weights: Path, config: ModelConfig, name: str | None = None,
                  origin: str = "checkpoint") -> Source:
    """Float weights, or QAT weights (named ``*qat*``, or whose variables only fit the QAT-wrapped model)."""
    name = name or weights.name.split(".")[0]
    if "qat" not in weights.name:
        model = _build(config)
        try:
            load_weights(model, weights)
            return Source(name, origin, config, model, weights)
        except BadModelError as float_error:
            try:
                return Source(name, origin, config, _qat_with(weights, config), weights, qat=True)
            except BadModelError:
                raise float_error from None
    return Source(name, origin, config, _qat_with(weights, config), weights, qat=True)


def _qat_with(weights: Path, config: ModelConfig) -> "tf_keras.Model":
    from edge_deeplab.models.quantize import qat_model
    model = qat_model(_build(config))
    load_weights(model, weights, hint="QAT weights saved before edge-deeplab quantized depthwise kernels "
                 "per channel no longer fit: re-run the QAT phase (delete the run's state/qat and "
                 "qat.weights.h5, then train --resume --qat)")
    return model


def _config_beside(weights: Path) -> ModelConfig:
    return _config_in(weights.parent)


def _config_in(folder: Path) -> ModelConfig:
    for candidate in CHECKPOINT_CONFIGS:
        path = folder / candidate
        if path.is_file():
            return _load_config(path)
    raise ConfigError(f"no model config in {folder} (looked for {', '.join(CHECKPOINT_CONFIGS)}); "
                      "save the ModelConfig there or export from a config file")


def _load_config(path: Path) -> ModelConfig:
    """A ModelConfig file, or a training config's model (its own or its ``base:``'s)."""
    from edge_deeplab.train.config import TrainingSpec, model_entry
    data = read_mapping(path)
    if isinstance(data, dict) and "base" in data:
        return TrainingSpec.load(path).model
    if isinstance(data, dict) and "model" in data:
        return model_entry(data["model"])
    return ModelConfig.from_dict(data)


def _build(config: ModelConfig) -> "tf_keras.Model":
    from edge_deeplab.models import build_model
    return build_model(config)


def load_weights(model: "tf_keras.Model", weights: Path, hint: str = "") -> None:
    """Load ``weights`` into ``model``; a one-line BadModelError (plus ``hint``) if they do not fit it."""
    try:
        model.load_weights(str(weights))
    except (ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadModelError(f"weights {weights} do not fit the model {model.name}: {first}"
                            + (f"; {hint}" if hint else "")) from None


def load_matching_weights(model: "tf_keras.Model", donor: Source) -> tuple[list[str], list[str], list[str]]:
    """Copy into ``model`` the layers of the trained float ``donor`` (see :func:`trained_source`) with its names.

    A layer of the same shape is copied; a narrower one (every dimension at most the stored one, e.g. a
    reduced tail) takes the leading channels, the same ones in every layer, so residual sums still add
    matching channels (the ImageNet importer narrows the same way); inside inverted residuals the
    most important expanded channels come first (``models/narrowing.py``). Inside an inverted residual
    whose expanded channels grow (a larger ``expansion_scale``), a wider layer holds the stored weights
    in its leading channels and zero weights wherever a kernel reads a new channel, so the model starts
    computing what the donor did and its new channels learn from there. Returns the names of the
    layers that kept their fresh initialization, of those narrowed and of those widened; a
    BadModelError if none matched.
    """
    weights = donor.weights
    if donor.qat:
        raise BadModelError(f"weights {weights}: QAT weights; init: weights_by_name takes float weights "
                            "(a run's best.weights.h5)")
    from edge_deeplab.models.narrowing import rank_expansions, widened_blocks
    stored = {layer.name: layer.get_weights() for layer in donor.model.layers if layer.weights}
    with_weights = [layer for layer in model.layers if layer.weights]
    targets = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in with_weights}
    rank_expansions(stored, targets)
    growing = widened_blocks(stored, targets)
    fresh, narrowed, widened = [], [], []
    for layer in with_weights:
        source, target = stored.get(layer.name), targets[layer.name]
        if source is not None and len(source) == len(target) and all(map(_narrows, target, source)):
            layer.set_weights([value[tuple(slice(0, n) for n in shape)]
                               for value, shape in zip(source, target)])
            if any(t != s.shape for t, s in zip(target, source)):
                narrowed.append(layer.name)
        elif (source is not None and layer.name.split("_")[0] in growing and len(source) == len(target)
              and all(map(_widens, target, source))):
            layer.set_weights([_widened(variable, value) for variable, value in zip(layer.weights, source)])
            widened.append(layer.name)
        else:
            fresh.append(layer.name)
    if len(fresh) == len(with_weights):
        raise BadModelError(f"weights {weights}: no layer matches the model {model.name} by name and "
                            "shape; init: weights_by_name takes the weights of a related model")
    return fresh, narrowed, widened


def _widens(target: tuple[int, ...], stored: "np.ndarray") -> bool:
    """Whether ``stored`` fits in the leading channels of ``target``: a conv kernel keeps its size."""
    return _channels_only_differ(target, stored) and all(t >= s for t, s in zip(target, stored.shape))


def _widened(variable, stored: "np.ndarray") -> "np.ndarray":
    """``variable``'s fresh value with ``stored`` in its leading channels; a kernel's rows for new input
    channels are zeroed (a depthwise kernel's channels are its outputs too: they keep their init)."""
    value = variable.numpy().copy()
    if variable.name.split("/")[-1].startswith("kernel") and value.ndim >= 2:
        value[(slice(None),) * (value.ndim - 2) + (slice(stored.shape[-2], None),)] = 0.0
    value[tuple(slice(0, n) for n in stored.shape)] = stored
    return value


def _narrows(target: tuple[int, ...], stored: "np.ndarray") -> bool:
    """Whether ``stored`` fits ``target`` by dropping trailing channels: a conv kernel keeps its size."""
    return _channels_only_differ(target, stored) and all(t <= s for t, s in zip(target, stored.shape))


def _channels_only_differ(target: tuple[int, ...], stored: "np.ndarray") -> bool:
    """Same rank and, for a conv kernel, the same spatial size."""
    return len(target) == stored.ndim and (stored.ndim != 4 or target[:2] == stored.shape[:2])
