"""The export command's statuses and failures as a user meets them: independent formats, parity below its
threshold, sources without trained weights, engines missing here, and the command `train` prints."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.cli import main

keras = pytest.importorskip("tf_keras")

SIZE = (64, 64)
TINY = {"backbone": "mobilenet_v2", "width": 0.35, "head": "lraspp", "head_channels": 16,
        "input_size": list(SIZE), "num_classes": 2, "labels": ["background", "person"]}


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def tiny_data(shared, tmp_path_factory) -> Path:
    """Four portrait pairs at 48x64."""
    portrait = shared("data/portrait/train")
    out = tmp_path_factory.mktemp("data")
    (out / "images").mkdir()
    (out / "masks").mkdir()
    for image in sorted((portrait / "images").iterdir())[:4]:
        Image.open(image).resize((48, 64)).save(out / "images" / image.name)
        mask = portrait / "masks" / f"{image.stem}.png"
        Image.open(mask).resize((48, 64), Image.NEAREST).save(out / "masks" / mask.name)
    return out


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A checkpoint folder as training writes it (model.json + best.weights.h5): trained weights, as far
    as export can tell (the same network every time: seeded)."""
    from edge_deeplab.models import build_model
    from edge_deeplab.models.config import ModelConfig
    folder = tmp_path_factory.mktemp("run")
    config = ModelConfig.from_dict(TINY)
    config.save(folder / "model.json")
    keras.utils.set_random_seed(0)
    build_model(config).save_weights(str(folder / "best.weights.h5"))
    return folder


def test_formats_without_calibration_are_still_written(run_folder, tmp_path):
    """tflite,tflite-int8,onnx without --calibration: tflite and onnx written and verified, the int8 row
    failed with its reason, exit 1 (before, nothing was written)."""
    pytest.importorskip("tf2onnx")
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = cli("export", str(run_folder), "--format", "tflite,tflite-int8,onnx", "--out", str(out),
                 "--json", str(report))
    assert result.exit_code == 1, result.output
    rows = {row["format"]: row for row in json.loads(report.read_text())}
    assert [rows[f]["status"] for f in ("tflite", "tflite-int8", "onnx")] == ["ok", "failed", "ok"]
    assert "--calibration" in rows["tflite-int8"]["reason"] and rows["tflite-int8"]["path"] is None
    assert rows["tflite"]["parity"]["pixel_agreement"] >= 0.999 and rows["onnx"]["parity"]["images"] > 0
    name = run_folder.name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}_fp32.tflite", f"{name}_fp32.tflite.json", f"{name}.onnx", f"{name}.onnx.json"])
    [error] = result.stderr.splitlines()
    assert error.startswith("error: 1 of 3 formats failed (tflite-int8: ") and "--calibration" in error


def test_without_calibration_the_parity_line_says_its_images_are_synthetic(run_folder, tmp_path):
    """No --calibration: parity runs on synthetic scenes against the source's own maps; the terminal
    line says so (not a real accuracy change) and the manifest records the data as "synthetic"."""
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = cli("export", str(run_folder), "--format", "tflite", "--out", str(out), "--json", str(report))
    assert result.exit_code == 0, result.output
    [row] = json.loads(report.read_text())
    [line] = [line for line in result.stdout.splitlines() if line.startswith("tflite: ok")]
    assert (f"pts (artifact - source) on {row['parity']['images']} synthetic images, scored against the "
            "source's own maps") in line
    manifest = json.loads(Path(row["path"] + ".json").read_text())
    assert manifest["parity"]["data"] == "synthetic" and manifest["parity"]["against"] == "source"
    assert manifest["parity"]["miou_delta"] == row["parity"]["miou_delta"] <= 0  # never above the source


def test_parity_below_threshold_fails_and_publishes_nothing(run_folder, tmp_path, monkeypatch):
    """A converter that writes another network: its parity is far below the float32 bar, so the format
    fails with the ParityError's message and nothing lands under the final name."""
    from edge_deeplab.converters.tflite import TFLiteFP32
    from edge_deeplab.models import build_model
    from edge_deeplab.sources import Source
    convert = TFLiteFP32.convert

    def another_network(self, source, calibration, path):
        keras.utils.set_random_seed(7)
        other = Source(source.name, source.origin, source.config, build_model(source.config), source.weights)
        return convert(self, other, calibration, path)

    monkeypatch.setattr(TFLiteFP32, "convert", another_network)
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = cli("export", str(run_folder), "--format", "tflite", "--out", str(out), "--json", str(report))
    assert result.exit_code == 1, result.output
    [row] = json.loads(report.read_text())
    assert row["status"] == "failed" and row["path"] is None and row["parity"]["pixel_agreement"] < 0.999
    assert "parity failed" in row["reason"] and "nothing written" in row["reason"]
    assert result.stderr.splitlines() == [f"error: 1 of 1 formats failed (tflite: {row['reason'].split('; nothing')[0]})"]
    assert not out.exists() or list(out.iterdir()) == []  # neither the artifact nor a staging folder


def calibration_split(folder: Path, masks: list[np.ndarray]) -> Path:
    """A dataset split of flat grey images with the given masks."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray(np.full((*mask.shape, 3), 90 + 20 * i, np.uint8)).save(folder / "images" / f"{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i}.png")
    return folder


def blob(value: int, background: int = 0) -> np.ndarray:
    mask = np.full((48, 40), background, np.uint8)
    mask[10:30, 8:30] = value
    return mask


@pytest.mark.parametrize("masks, message", [
    ([blob(255), blob(255)], "hold only 0 and 255, and 255 means ignore"),  # 0/255 person masks
    ([blob(1), blob(10, background=3)], "mask holds value 10, but the model has 2 classes"),  # CamVid's 11
])
def test_calibration_masks_train_would_refuse_are_one_line(masks, message, run_folder, tmp_path):
    """--calibration masks go through the check train and evaluate apply: parity scored against 0/255
    masks or another dataset's classes means nothing, so the command refuses before any conversion."""
    data = calibration_split(tmp_path / "val", masks)
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = cli("export", str(run_folder), "--format", "tflite,tflite-int8", "--calibration", str(data),
                 "--out", str(out), "--json", str(report))
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not out.exists() and not report.exists()


def test_a_source_without_trained_weights_needs_the_opt_in(tmp_path):
    result = cli("export", "camvid", "--format", "tflite", "--out", str(tmp_path / "out"))
    assert result.exit_code == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "'camvid' ships no trained weights" in line and "--random-weights" in line
    assert "edge-deeplab train --config" in line and not (tmp_path / "out").exists()

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    refused = cli("export", str(config), "--format", "tflite", "--out", str(tmp_path / "out"))
    assert refused.exit_code == 1 and "--random-weights" in refused.stderr
    allowed = cli("export", str(config), "--format", "tflite", "--out", str(tmp_path / "out"),
                  "--random-weights", "--json", str(tmp_path / "report.json"))
    assert allowed.exit_code == 0, allowed.output
    assert "randomly initialized" in allowed.stdout
    [row] = json.loads((tmp_path / "report.json").read_text())
    assert row["status"] == "ok"
    manifest = json.loads(Path(row["path"] + ".json").read_text())
    assert manifest["source"]["weights"] is None


def test_an_artifact_nothing_here_can_run_is_unverified(run_folder, tmp_path, monkeypatch):
    """Written and checked statically, but no engine here to compare it with the source: `unverified`
    with the reason, not `ok` (Core ML off macOS is the everyday case; here LiteRT is made unavailable)."""
    from edge_deeplab.runtimes.litert import LiteRTRuntime
    monkeypatch.setattr(LiteRTRuntime, "unavailable_reason", classmethod(lambda cls: "no engine in this test"))
    report = tmp_path / "report.json"
    result = cli("export", str(run_folder), "--format", "tflite", "--out", str(tmp_path / "out"),
                 "--json", str(report))
    assert result.exit_code == 0, result.output
    [row] = json.loads(report.read_text())
    assert row["status"] == "unverified" and "parity" not in row
    assert "no engine in this test" in row["reason"] and Path(row["path"]).is_file()


@pytest.mark.parametrize("qat", [False, pytest.param(True, marks=pytest.mark.slow)],  # QAT: ~3 min here
                         ids=["float", "qat"])
def test_the_export_command_train_prints_works_as_printed(qat, tiny_data, tmp_path, monkeypatch):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"model": TINY, "train": {
        "epochs": 1, "batch_size": 2, "qat_epochs": 1, "bn_recalibration_batches": 1,
        "qat_calibration_batches": 1}}))
    monkeypatch.chdir(tmp_path)  # the command is printed with the paths as given: relative here
    trained = cli("train", "--config", "train.json", "--data", str(tiny_data), "--out", "runs/tiny",
                  *(["--qat"] if qat else []))
    assert trained.exit_code == 0, trained.output
    [line] = [line for line in trained.stdout.splitlines() if line.strip().startswith("export:")]
    command = shlex.split(line.split("export:", 1)[1])
    assert command[:2] == ["edge-deeplab", "export"] and "--format" in command
    assert ("--calibration" in command) != qat  # a QAT model carries its ranges; a float one needs images
    exported = cli(*command[1:], "--json", "report.json")
    assert exported.exit_code == 0, exported.output
    [row] = json.loads(Path("report.json").read_text())
    assert row["format"] == "tflite-int8" and row["status"] == "ok" and Path(row["path"]).is_file()


def test_format_summary_without_images_prints_a_float_export():
    from edge_deeplab.train.trainer import format_summary
    summary = {"epochs": 1, "train_images": 4, "seconds": 6.0, "out": "runs/my run",
               "float_best": {"epoch": 1}, "weights": "runs/my run/best.weights.h5"}
    assert format_summary(summary).endswith("export:  edge-deeplab export 'runs/my run' --format tflite")
    assert format_summary(summary, calibration="data/train").endswith(
        "edge-deeplab export 'runs/my run' --format tflite-int8 --calibration data/train")
