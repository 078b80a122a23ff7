"""Export sources: zoo names (shipped weights or random init), config files, checkpoint folders, .h5."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_deeplab.errors import BadModelError, ConfigError, UnknownChoiceError
from edge_deeplab.sources import resolve_source
from edge_deeplab.zoo import ZOO, asset_path

keras = pytest.importorskip("tf_keras")

SMALL = ZOO.load("portrait").replace(input_size=(64, 64))


def save_checkpoint(folder, config=SMALL, name="best.weights.h5", seed=0):
    from edge_deeplab.models import build_model
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    model.save_weights(str(folder / name))
    return model


def same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_zoo_name():
    source = resolve_source("portrait")
    assert source.origin == "zoo" and source.config == ZOO.load("portrait")
    config = ZOO.load("portrait")
    assert source.model.output_shape == (None, *config.input_size, config.num_classes)
    shipped = asset_path(ZOO.get("portrait").meta["weights"])
    assert shipped is not None, "the package ships the default model's weights"
    assert source.weights == shipped and not source.random_init
    # Manifests name packaged weights relative to the package, not by this machine's install path.
    assert source.describe()["weights"] == f"edge_deeplab/assets/{shipped.name}"


def test_zoo_entry_without_weights_is_random_init():
    source = resolve_source("portrait_edgetpu")
    assert source.random_init and source.describe()["weights"] is None


def test_unknown_zoo_name_suggests_the_closest():
    with pytest.raises(UnknownChoiceError, match="Did you mean 'portrait'"):
        resolve_source("portrat")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_file(suffix, tmp_path):
    path = tmp_path / f"tiny{suffix}"
    SMALL.save(path)
    source = resolve_source(str(path))
    assert (source.name, source.origin, source.config) == ("tiny", "config", SMALL)
    assert source.random_init and source.model.output_shape == (None, 64, 64, 2)


def test_training_config_nesting_the_model(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"model": SMALL.to_dict(), "epochs": 3}))
    assert resolve_source(str(path)).config == SMALL
    named = tmp_path / "train.yaml"
    named.write_text("model: portrait_edgetpu\ntrain: {epochs: 3}\n")
    assert resolve_source(str(named)).config == ZOO.load("portrait_edgetpu")
    changed = tmp_path / "changed.yaml"
    changed.write_text("model: {zoo: portrait_edgetpu, input_size: [96, 128]}\n")
    assert resolve_source(str(changed)).config == ZOO.load("portrait_edgetpu").replace(input_size=(96, 128))
    # A recipe stage that starts from another config (base:) has its base's model, or its own.
    recipes = Path(__file__).resolve().parents[1] / "configs"
    assert resolve_source(str(recipes / "people_continue.yaml")).config == ZOO.load("portrait").replace(
        input_size=(192, 192))
    assert resolve_source(str(recipes / "people_landscape_tiled.yaml")).config == ZOO.load("portrait_landscape")


def test_checkpoint_folder_loads_its_weights(tmp_path):
    folder = tmp_path / "run1"
    trained = save_checkpoint(folder)
    SMALL.save(folder / "config.json")
    source = resolve_source(str(folder))
    assert (source.name, source.origin, source.qat) == ("run1", "checkpoint", False)
    assert source.weights == folder / "best.weights.h5" and same_weights(source.model, trained)


def test_weights_file_with_a_config_beside_it(tmp_path):
    trained = save_checkpoint(tmp_path, name="last.weights.h5", seed=3)
    SMALL.save(tmp_path / "model.yaml")
    source = resolve_source(str(tmp_path / "last.weights.h5"))
    assert source.name == "last" and same_weights(source.model, trained)


def test_weights_without_a_config_say_where_they_looked(tmp_path):
    save_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="no model config in .*config.json"):
        resolve_source(str(tmp_path / "best.weights.h5"))


def test_weights_of_another_architecture(tmp_path):
    save_checkpoint(tmp_path, config=ZOO.load("portrait_edgetpu").replace(input_size=(64, 64)))
    SMALL.save(tmp_path / "config.json")
    with pytest.raises(BadModelError, match="do not fit the model"):
        resolve_source(str(tmp_path))


def test_empty_checkpoint_folder(tmp_path):
    SMALL.save(tmp_path / "config.json")
    with pytest.raises(BadModelError, match="holds no weights"):
        resolve_source(str(tmp_path))


@pytest.mark.parametrize("spec, message", [
    ("missing/model.json", "no such file"),
    ("notes.txt", "expected a zoo name"),
])
def test_paths_that_are_not_sources(spec, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BadModelError, match=message):
        resolve_source(spec)


@pytest.mark.slow  # tfmot wraps the model in ~10 s
def test_qat_checkpoint_is_detected(tmp_path):
    from edge_deeplab.models import build_model
    from edge_deeplab.models.quantize import qat_model
    qat = qat_model(build_model(SMALL))
    qat.save_weights(str(tmp_path / "best.weights.h5"))  # no "qat" in the name: detected by its variables
    SMALL.save(tmp_path / "config.json")
    source = resolve_source(str(tmp_path))
    assert source.qat and same_weights(source.model, qat)


@pytest.mark.slow  # two tfmot wraps, ~10 s each
def test_qat_weights_with_per_tensor_depthwise_ranges_say_how_to_recover(tmp_path, monkeypatch):
    from edge_deeplab.models import build_model, quantize
    with monkeypatch.context() as patch:  # how QAT checkpoints were wrapped before per-channel ranges
        patch.setattr(quantize.QuantizeScheme, "get_quantize_registry",
                      lambda self: quantize._default_8bit.Default8BitQuantizeRegistry())
        quantize.qat_model(build_model(SMALL)).save_weights(str(tmp_path / "qat.weights.h5"))
    SMALL.save(tmp_path / "config.json")
    with pytest.raises(BadModelError, match="re-run the QAT phase"):
        resolve_source(str(tmp_path))
