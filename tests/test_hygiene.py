"""Config and CLI hygiene: config-relative paths, one line for every missing extra, TensorFlow's start-up
noise held back unless --verbose, search's per-trial line and its complete best.yaml."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_deeplab.cli import main
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.proxy import ProxySettings
from edge_deeplab.search.search import Search, SearchSettings, SearchState, trial_line
from edge_deeplab.search.space import SearchSpace, describe
from edge_deeplab.train.config import TrainingSpec

REPO = Path(__file__).resolve().parents[1]
TINY = ModelConfig(backbone="mobilenet_v2", width=0.35, head="lraspp", head_channels=16, input_size=(64, 64),
                   num_classes=2, labels=("background", "person"))


# -- relative paths in config files ---------------------------------------------------------------
def test_config_paths_resolve_against_the_config_folder_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    config = folder / "stage.yaml"
    config.write_text("model: portrait\ntrain:\n  init: weights_by_name\n"
                      "  init_weights: ../runs/a/best.weights.h5\n  teacher: ../m/a.tflite\n"
                      "  teacher_ensemble: [../m/b.tflite, /abs/c.onnx]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (tmp_path, elsewhere):
        monkeypatch.chdir(cwd)
        train = TrainingSpec.load(os.path.relpath(config, cwd)).train
        assert train.init_weights == str(tmp_path / "runs" / "a" / "best.weights.h5")
        assert train.teacher == str(tmp_path / "m" / "a.tflite")
        assert train.teacher_ensemble == (str(tmp_path / "m" / "b.tflite"), "/abs/c.onnx")
    # A zoo name is a name, and an absolute path stays as written.
    config.write_text(f"model: portrait\ntrain:\n  init: weights_by_name\n  init_weights: portrait\n"
                      f"  teacher: {tmp_path / 'abs'}\n")
    train = TrainingSpec.load(config).train
    assert (train.init_weights, train.teacher) == ("portrait", str(tmp_path / "abs"))
    # The resolved spec saved into a run folder means the same files when loaded from there.
    TrainingSpec.load(config).save(tmp_path / "run.yaml")
    assert TrainingSpec.load(tmp_path / "run.yaml").train == train


def test_a_config_with_a_base_changes_only_what_it_says(tmp_path, monkeypatch):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "first.yaml").write_text(
        "model: portrait\ntrain:\n  epochs: 8\n  learning_rate: 0.0002\n  init: weights_by_name\n"
        "  init_weights: ../runs/a/best.weights.h5\n  teacher: ../m/a.tflite\n  class_maps:\n"
        "  - folder: ../data/camvid\n    classes: [[9, 1]]\n")
    (tmp_path / "second.yaml").write_text("base: recipes/first.yaml\nmodel: {zoo: portrait, input_size: [160, 288]}\n"
                                          "train:\n  learning_rate: 0.0001\n  init: weights\n"
                                          "  init_weights: runs/b/best.weights.h5\n")
    (tmp_path / "third.yaml").write_text("base: second.yaml\ntrain:\n  epochs: 0\n")
    monkeypatch.chdir(tmp_path / "recipes")  # paths resolve against each file's folder, not here
    first, second, third = (TrainingSpec.load(tmp_path / name) for name in
                            ("recipes/first.yaml", "second.yaml", "third.yaml"))
    assert second.model == first.model.replace(input_size=(160, 288))
    assert second.train == first.train.replace(learning_rate=0.0001, init="weights",
                                               init_weights=str(tmp_path / "runs" / "b" / "best.weights.h5"))
    assert second.train.teacher == str(tmp_path / "m" / "a.tflite")  # the base's path, from the base's folder
    assert second.train.class_maps[0].folder == str(tmp_path / "data" / "camvid")
    assert third == TrainingSpec(second.model, second.train.replace(epochs=0))
    # A run folder's config.yaml is the merged spec, standalone.
    third.save(tmp_path / "run.yaml")
    assert "\nbase:" not in "\n" + (tmp_path / "run.yaml").read_text()
    assert TrainingSpec.load(tmp_path / "run.yaml") == third


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "base: a.yaml\n"}, "inherit in a loop"),
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\nmodel: portrait\n"}, "inherit in a loop"),
    ({"a.yaml": "base: missing.yaml\n"}, "base of .*a.yaml not found: .*missing.yaml"),
    ({"a.yaml": "base: [b.yaml]\n"}, "base must be the path of another training config"),
    ({"a.yaml": "base: b.yaml\ntrain: 3\n", "b.yaml": "model: portrait\n"}, "train must be a mapping"),
])
def test_a_bad_base_is_one_config_error_line(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        TrainingSpec.load(tmp_path / "a.yaml")
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "a.yaml"), "--data", str(tmp_path),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert not (tmp_path / "run").exists()


def test_proxy_settings_paths_resolve_against_their_file(tmp_path, monkeypatch):
    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / "mnv2.tflite"
    weights.write_bytes(b"stand-in: only its existence is checked here")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "proxy.json").write_text(json.dumps({"init_weights": "../weights/mnv2.tflite"}))
    monkeypatch.chdir(tmp_path / "weights")  # where ../weights/mnv2.tflite does not exist
    assert ProxySettings.load(tmp_path / "search" / "proxy.json").init_weights == str(weights)


def test_shipped_configs_point_at_the_shared_weights_and_the_repo_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    camvid = TrainingSpec.load(REPO / "configs" / "camvid.yaml").train
    assert camvid.init_weights == str(REPO.parent / "shared" / "weights" / "mobilenet_v2_1.0_224_quant.tflite")
    distill = TrainingSpec.load(REPO / "configs" / "portrait_distill.yaml").train
    assert distill.teacher == str(REPO / "runs" / "portrait_teacher")  # where stage 2's command writes


# -- missing extras: all of them, one line ---------------------------------------------------------
def _missing(monkeypatch, *modules: str) -> None:
    import edge_deeplab._optional as optional
    import edge_deeplab.converters.base as base
    installed = optional.is_installed
    fake = lambda module: module.split(".")[0] not in modules and installed(module)  # noqa: E731
    monkeypatch.setattr(optional, "is_installed", fake)
    monkeypatch.setattr(base, "is_installed", fake)


def test_search_names_every_missing_extra_in_one_line(monkeypatch, tmp_path):
    _missing(monkeypatch, "matplotlib", "tensorflow")
    result = CliRunner().invoke(main, ["search", "--data", str(tmp_path), "--budget-ms", "5", "--runtime",
                                       "litert", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output == ("error: search needs matplotlib, tensorflow, which are not installed: "
                             "pip install 'edge-deeplab[plot,train]'\n")
    assert not (tmp_path / "out").exists()


def test_export_names_every_missing_extra_in_one_line(monkeypatch, tmp_path):
    _missing(monkeypatch, "tf2onnx", "onnx", "coremltools")
    result = CliRunner().invoke(main, ["export", "portrait", "--format", "tflite,onnx,coreml",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output == ("error: export to onnx, coreml needs tf2onnx, onnx, coremltools, which are not "
                             "installed: pip install 'edge-deeplab[coreml,onnx]'\n")


def test_train_names_its_missing_extra_before_any_work(monkeypatch, tmp_path):
    _missing(monkeypatch, "tensorflow_model_optimization")
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"model": TINY.to_dict(), "train": {"epochs": 1}}))
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--data", str(tmp_path),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "pip install 'edge-deeplab[train]'" in result.output and not (tmp_path / "run").exists()


# -- TensorFlow's start-up noise -------------------------------------------------------------------
NOISE = ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "retracing")


def _export_stderr(tmp_path: Path, *extra: str) -> str:
    config = tmp_path / "tiny.json"
    TINY.save(config)
    out = tmp_path / ("out" + "".join(extra))
    done = subprocess.run([str(Path(sys.executable).parent / "edge-deeplab"), "export", str(config), "--format",
                           "tflite", "--random-weights", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert "tflite: ok" in done.stdout
    return done.stderr


@pytest.mark.slow  # two TensorFlow start-ups in subprocesses (~40 s here)
def test_tensorflow_start_up_noise_is_held_back_unless_verbose(tmp_path):
    loud = [line for line in _export_stderr(tmp_path, "--verbose").splitlines()
            if any(n in line for n in NOISE)]
    if not loud:
        pytest.skip("TensorFlow prints no start-up noise on this machine, even with --verbose")
    quiet = _export_stderr(tmp_path)
    assert not [line for line in quiet.splitlines() if any(n in line for n in NOISE)], quiet


def test_quiet_tensorflow_sets_its_loggers_to_errors():
    import logging

    from edge_deeplab._optional import quiet_tensorflow
    tf = quiet_tensorflow("a test")
    from absl import logging as absl_logging
    assert tf.get_logger().level == logging.ERROR  # tf.function retracing warnings are WARNING
    assert absl_logging.get_verbosity() == absl_logging.ERROR


# -- search: a line per trial, a complete best.yaml -------------------------------------------------
SPACE = SearchSpace(backbones=("mobilenet_v2",), widths=(0.35, 0.5), output_strides=(32,), heads=("lraspp",),
                    aspp_rates=((),), decoder=(False,), separable=(False,), head_channels=(16, 32),
                    decoder_channels=(16,), input_sizes=((64, 64), (96, 96)))


class _Latency:
    class table:  # noqa: N801 (the attribute a LatencyModel has)
        @staticmethod
        def save():
            pass

    def predict(self, config):
        return config.width * config.input_size[0] / 64

    def measure(self, config):
        return self.predict(config) * 1.1


def test_search_logs_one_line_per_trial_with_elapsed_and_eta(tmp_path):
    settings = SearchSettings(budget_ms=5.0, runtime="litert", trials=3, population=2, warm_start=False)
    state = SearchState.start(tmp_path, settings, SPACE, resume=False)
    ticks = itertools.count(0.0, 30.0)  # read at the start, then once per finished trial: 30 s a trial
    lines = []
    Search(state, tmp_path, _Latency(), lambda config, folder: (config.width, folder / "w.h5"),
           log=lines.append, clock=lambda: next(ticks)).run()
    assert len(lines) == 3
    for number, (line, trial) in enumerate(zip(lines, state.trials), start=1):
        assert line.startswith(f"trial {number}/3  {describe(trial.config)}  {trial.latency_ms:.2f} ms "
                               f"(predicted {trial.latency_ms_predicted:.2f})  proxy mIoU {trial.score:.4f}  ")
    assert [line.split("  ")[-2:] for line in lines] == [["elapsed 0m30s", "ETA 1m00s"],
                                                          ["elapsed 1m00s", "ETA 0m30s"],
                                                          ["elapsed 1m30s", "ETA 0m00s"]]


def test_trial_line_marks_a_candidate_over_budget():
    from edge_deeplab.search.search import Trial
    settings = SearchSettings(budget_ms=1.0, runtime="litert", trials=10)
    line = trial_line(Trial(TINY, 0.9, 1.4, 0.5), done=2, settings=settings, elapsed=3725.0, finished=2)
    assert "1.40 ms (predicted 0.90)  over budget" in line and "elapsed 1h02m" in line and "ETA 4h08m" in line


@pytest.mark.parametrize("backbone, init", [("mobilenet_v2", "imagenet"), ("mobilenet_v3_small", "none")])
def test_best_yaml_is_a_complete_training_config(backbone, init, tmp_path):
    from edge_deeplab.search.report import training_config
    weights = tmp_path / "mnv2.tflite"
    config = TINY.replace(backbone=backbone, width=0.5, labels=())  # a search space without class names
    training_config(config, str(weights)).save(tmp_path / "best.yaml")
    data = TrainingSpec.load(tmp_path / "best.yaml")
    assert data.model == config.replace(labels=("class_0", "class_1"))
    assert data.train.init == init and data.train.init_weights == (str(weights) if init == "imagenet" else "")
    import yaml
    raw = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert set(raw) == {"model", "train"} and raw["model"]["labels"] == ["class_0", "class_1"]
    assert raw["train"]["epochs"] > 0  # the train block is written out, not left to defaults
