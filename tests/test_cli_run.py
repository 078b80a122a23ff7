"""``segment``, ``benchmark`` and ``evaluate`` end to end through the CLI, including every bad input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import sigterm_turned_into_an_error
from PIL import Image

from edge_deeplab.cli import main
from edge_deeplab.runtimes import RUNTIMES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
TWO_CLASS = str(FIXTURES / "two_class_float.tflite")
EVALUATE_KEYS = {"model", "runtime", "images", "miou", "iou", "pixel_accuracy", "boundary_iou", "latency_ms"}
LATENCY_KEYS = {"mean", "std", "min", "p50", "p90", "p99", "max"}


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def stripes(path: Path, height: int = 60, width: int = 90) -> Path:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 2:] = 224  # left dark (class 0), right bright (class 1)
    Image.fromarray(image).save(path)
    return path


def assert_one_line_error(result, *words: str):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    stripes(folder / "good1.jpg")
    stripes(folder / "good2.png", 40, 70)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    stripes(folder / "cut.jpg", 400, 400)
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:1500])
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


# ---------------------------------------------------------------- segment
def test_segment_mask_is_class_indices_at_image_size(tmp_path):
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, stripes(tmp_path / "one.jpg"), "--out", out)
    assert result.exit_code == 0, result.output
    assert "one.jpg ->" in result.stdout and "ms (model" in result.stdout
    mask = np.asarray(Image.open(out / "one.png"))
    assert mask.shape == (60, 90) and mask.dtype == np.uint8
    assert (mask[:, :40] == 0).all() and (mask[:, 50:] == 1).all()


def test_segment_folder_skips_bad_images_and_writes_the_good(photos, tmp_path):
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, photos, "--out", out)
    assert result.exit_code == 1
    assert sorted(os.listdir(out)) == ["good1.png", "good2.png"]  # nothing half-written, no temp files
    for bad in ("empty.jpg", "text.png", "cut.jpg"):
        assert sum(bad in line and "skipped" in line for line in result.stderr.splitlines()) == 1
    assert "3 input(s) failed, 2 written" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("mode", ["overlay", "blur", "replace"])
def test_segment_effect_modes_write_rgb_images(tmp_path, mode):
    backdrop = tmp_path / "beach.png"
    Image.new("RGB", (50, 30), (0, 0, 255)).save(backdrop)
    extra = ["--background", backdrop] if mode == "replace" else []
    result = run("segment", TWO_CLASS, stripes(tmp_path / "one.jpg"), "--out", tmp_path / "o", "--mode", mode, *extra)
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / "o") == ["one.jpg"]  # a JPEG photo stays a JPEG
    image = np.asarray(Image.open(tmp_path / "o" / "one.jpg"))
    assert image.shape == (60, 90, 3)
    if mode == "replace":
        assert np.abs(image[30, 5].astype(int) - [0, 0, 255]).max() < 8  # background replaced (JPEG: near)
        assert abs(int(image[30, 80, 0]) - 224) < 8  # subject kept


def test_segment_replace_needs_a_background(tmp_path):
    result = run("segment", TWO_CLASS, stripes(tmp_path / "a.jpg"), "--mode", "replace")
    assert result.exit_code == 2 and "--background" in result.output


def test_input_range_flag_overrides_metadata_with_a_note(tmp_path):
    image = tmp_path / "s.jpg"
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(image)  # brightness 0.5 -> 0.0 under [-1,1]
    model = FIXTURES / "metadata_logit.tflite"
    assert run("segment", model, image, "--out", tmp_path / "a").exit_code == 0
    result = run("segment", model, image, "--out", tmp_path / "b", "--input-range", "0,1")
    assert "overrides the model's own -1,1" in result.stderr
    assert not np.asarray(Image.open(tmp_path / "a" / "s.png")).any()
    assert np.asarray(Image.open(tmp_path / "b" / "s.png")).all()


def test_segment_refuses_to_overwrite_its_input(tmp_path):
    source = stripes(tmp_path / "x.png")
    before = source.read_bytes()
    result = run("segment", TWO_CLASS, source, "--out", tmp_path)
    assert_one_line_error(result, "overwrite the input")
    assert source.read_bytes() == before


@pytest.mark.parametrize("model,image,words", [
    ("missing.tflite", "good", ("model file not found",)),
    ("good", "missing.jpg", ("missing.jpg", "no such file")),
    ("good", "empty", ("empty file",)),
    ("text_as.tflite", "good", ("not a TFLite model",)),
    ("truncated.tflite", "good", ("LiteRT cannot load",)),
    ("model.weird", "good", ("cannot tell the model format", "--runtime")),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, model, image, words):
    good_image = stripes(tmp_path / "good.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text_as.tflite").write_text("hello")
    (tmp_path / "model.weird").write_bytes(b"\0" * 64)
    (tmp_path / "truncated.tflite").write_bytes(Path(TWO_CLASS).read_bytes()[:700])
    model_arg = TWO_CLASS if model == "good" else tmp_path / model
    image_arg = {"good": good_image, "empty": tmp_path / "empty.jpg"}.get(image, tmp_path / image)
    result = run("segment", model_arg, image_arg, "--out", tmp_path / "out")
    assert_one_line_error(result, *words)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_an_error_starts_its_own_line_after_a_progress_bar_left_open():
    import click

    from edge_deeplab.cli import _Group
    from edge_deeplab.errors import DatasetError
    from edge_deeplab.progress import BAR_STREAM

    @click.group(cls=_Group)
    def group():
        pass

    @group.command()
    def fails():
        BAR_STREAM.write("\rdecoding: 3/10")  # a bar's line, not yet ended
        raise DatasetError("masks/x.png: not a class-index PNG")

    result = CliRunner().invoke(group, ["fails"])
    assert result.exit_code == 1
    assert result.stderr.split("\n")[-2:] == ["error: masks/x.png: not a class-index PNG", ""]
    assert not BAR_STREAM.line_open


def test_an_error_after_sigterm_ends_the_command_as_sigterm_does():
    import click

    from edge_deeplab.cli import _Group

    @click.group(cls=_Group)
    def group():
        pass

    @group.command()
    def interrupted():
        sigterm_turned_into_an_error(by="callback")

    @group.command()
    def fails():
        raise RuntimeError("a bug")

    result = CliRunner().invoke(group, ["interrupted"])
    assert result.exit_code == 128 + signal.SIGTERM and result.stderr == ""
    result = CliRunner().invoke(group, ["fails"])  # the next command starts with no SIGTERM on record
    assert isinstance(result.exception, RuntimeError) and result.exit_code == 1


@pytest.mark.parametrize("name", ["edgetpu", "coreml"])
def test_unavailable_runtime_is_one_line(tmp_path, name):
    if RUNTIMES.load(name).unavailable_reason() is None:
        pytest.skip(f"{name} is available here")
    model = TWO_CLASS if name == "edgetpu" else tmp_path / "m.mlpackage"  # a file of the engine's own kind
    if name == "coreml":
        model.mkdir()
    result = run("segment", model, stripes(tmp_path / "a.jpg"), "--runtime", name)
    assert_one_line_error(result, f"runtime {name!r} cannot run here")


@pytest.mark.parametrize("model", ["default", "default_int8"])
def test_default_model_segments(tmp_path, model):
    result = run("segment", model, stripes(tmp_path / "a.jpg"), "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    assert mask.shape == (60, 90) and set(np.unique(mask)) <= {0, 1}


def test_a_missing_int8_file_is_one_line_and_writes_nothing(tmp_path):
    result = run("segment", "portrait_selfie_int8", stripes(tmp_path / "a.jpg"), "--out", tmp_path / "o")
    assert_one_line_error(result, "ships no int8 file", "tflite-int8")
    assert not (tmp_path / "o").exists()


def test_default_model_not_packaged_is_one_line(tmp_path, monkeypatch):
    from edge_deeplab import zoo
    monkeypatch.setattr(zoo, "asset_path", lambda name: None)  # an install without the assets
    result = run("segment", "default", stripes(tmp_path / "a.jpg"), "--out", tmp_path / "o")
    assert_one_line_error(result, "default portrait model", "not packaged")
    assert not (tmp_path / "o").exists()


def test_runtime_path_never_imports_tensorflow(tmp_path):
    """The base-install path: segment a .tflite in a fresh interpreter, then inspect sys.modules."""
    script = (
        "import sys\n"
        "from edge_deeplab.cli import main\n"
        "try:\n"
        f"    main(['segment', {TWO_CLASS!r}, {str(stripes(tmp_path / 'a.jpg'))!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('tensorflow', 'tf_keras', 'keras', 'openvino', 'onnxruntime', 'onnx', 'coremltools', 'matplotlib'))\n"
        "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout
    assert (tmp_path / "o" / "a.png").is_file()


# ---------------------------------------------------------------- benchmark
def test_benchmark_outputs_table_json_csv_plot(tmp_path):
    onnx_model = FIXTURES / "nchw_two_class.onnx"
    models = [TWO_CLASS] + ([onnx_model] if RUNTIMES.load("onnxruntime").unavailable_reason() is None else [])
    result = run("benchmark", *models, "--runs", 5, "--warmup", 1, "--threads", 1, "--json", tmp_path / "b.json",
                 "--csv", tmp_path / "b.csv", "--plot", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("| ") for line in result.stdout.splitlines()) == 1 + len(models)  # header + rows
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [r["runtime"] for r in rows] == ["litert", "onnxruntime"][:len(models)]
    for row in rows:
        assert {"model", "runtime", "threads", "warmup", "runs", "load_ms", "latency_ms", "peak_rss_mb"} <= set(row)
        assert set(row["latency_ms"]) == LATENCY_KEYS and row["runs"] == 5 and row["threads"] == 1
    table = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert len(table) == len(models) and float(table[0]["p50"]) == rows[0]["latency_ms"]["p50"]
    assert Image.open(tmp_path / "b.png").size[0] > 100


def test_benchmark_profile_ops_says_when_litert_cannot(tmp_path):
    result = run("benchmark", TWO_CLASS, "--runs", 3, "--warmup", 0, "--profile-ops", "--json", tmp_path / "b.json")
    assert result.exit_code == 0
    assert "not available (not exposed by the LiteRT Python Interpreter" in result.stdout
    assert json.loads((tmp_path / "b.json").read_text())[0]["ops"]["available"] is False


def test_benchmark_one_failing_row_keeps_the_others(tmp_path):
    """The failed model stays a row, with its error, in the table, JSON, CSV and plot; exit code 1."""
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(Path(TWO_CLASS).read_bytes()[:300])  # loads as far as the TFL3 header, then fails
    outputs = ["--json", tmp_path / "b.json", "--csv", tmp_path / "b.csv", "--plot", tmp_path / "b.png"]
    result = run("benchmark", TWO_CLASS, tmp_path / "missing.tflite", broken, "--runs", 3, *outputs)
    assert result.exit_code == 1
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["error"] * 2, result.stderr
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [Path(r["model"]).name for r in rows] == ["two_class_float.tflite", "missing.tflite", "broken.tflite"]
    assert "error" not in rows[0] and rows[0]["latency_ms"]["p50"] > 0
    assert "model file not found" in rows[1]["error"] and "LiteRT cannot load" in rows[2]["error"]
    assert rows[1]["runtime"] == rows[2]["runtime"] == "litert" and rows[1]["latency_ms"] is None
    table = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert [bool(r["error"]) for r in table] == [False, True, True] and table[1]["p50"] == ""
    assert sum("FAILED: model file not found" in line for line in result.stdout.splitlines()) == 1
    assert Image.open(tmp_path / "b.png").size[0] > 100


def test_benchmark_interleave_retimes_every_row_that_ran_together(tmp_path, monkeypatch):
    """--interleave: one in-process timing of all rows replaces each row's latency; a failed row stays failed."""
    from edge_deeplab.runtimes import profiler
    calls = []

    def spy(targets, warmup, runs):
        calls.append((targets, warmup, runs))
        return real(targets, warmup, runs)
    real = profiler.latency_interleaved
    monkeypatch.setattr(profiler, "latency_interleaved", spy)
    result = run("benchmark", TWO_CLASS, tmp_path / "missing.tflite", FIXTURES / "argmax_uint8.tflite",
                 "--runs", 7, "--warmup", 1, "--threads", 1, "--interleave", "--json", tmp_path / "b.json")
    assert result.exit_code == 1  # the missing model's row
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [Path(t[0]).name for t in calls[0][0]] == ["two_class_float.tflite", "argmax_uint8.tflite"]
    assert calls == [(calls[0][0], 1, 7)] and len(calls[0][0]) == 2
    assert rows[1]["latency_ms"] is None and "model file not found" in rows[1]["error"]
    for row in (rows[0], rows[2]):
        assert row["runs"] == 7 and set(row["latency_ms"]) == LATENCY_KEYS and row["load_ms"] > 0
        assert 0 < row["latency_ms"]["min"] <= row["latency_ms"]["p50"] <= row["latency_ms"]["max"]
    assert "timing 2 row(s) interleaved, 7 invokes each" in result.stderr


def test_benchmark_interleave_times_one_engine_at_a_time(tmp_path, monkeypatch):
    """Engines slow each other in one process, so each engine's rows are interleaved among themselves."""
    if RUNTIMES.load("onnxruntime").unavailable_reason() is not None:
        pytest.skip("onnxruntime is not installed")
    from edge_deeplab.runtimes import profiler
    groups = []

    def spy(targets, warmup, runs):
        groups.append([(Path(model).name, engine) for model, engine, _, _ in targets])
        return real(targets, warmup, runs)
    real = profiler.latency_interleaved
    monkeypatch.setattr(profiler, "latency_interleaved", spy)
    result = run("benchmark", TWO_CLASS, FIXTURES / "nchw_two_class.onnx", FIXTURES / "argmax_uint8.tflite",
                 "--runs", 3, "--warmup", 1, "--threads", 1, "--interleave", "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    assert groups == [[("two_class_float.tflite", "litert"), ("argmax_uint8.tflite", "litert")],
                      [("nchw_two_class.onnx", "onnxruntime")]]
    assert [row["runs"] for row in json.loads((tmp_path / "b.json").read_text())] == [3, 3, 3]
    assert "one engine at a time" in result.stderr


def test_benchmark_interleave_a_row_that_fails_there_keeps_its_own_figures_and_says_why(tmp_path, monkeypatch):
    from edge_deeplab.runtimes import profiler
    real = profiler.latency_interleaved

    def second_fails(targets, warmup, runs):
        first, _ = real(targets, warmup, runs)
        return [first, RuntimeError("Invoke failed: simulated")]
    monkeypatch.setattr(profiler, "latency_interleaved", second_fails)
    result = run("benchmark", TWO_CLASS, FIXTURES / "argmax_uint8.tflite", "--runs", 4, "--warmup", 1,
                 "--interleave", "--json", tmp_path / "b.json", "--csv", tmp_path / "b.csv")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "argmax_uint8.tflite on litert, interleaved timing: Invoke failed: simulated" in result.stderr
    good, failed = json.loads((tmp_path / "b.json").read_text())
    assert "error" not in good and good["latency_ms"]["p50"] > 0
    assert failed["error"] == "interleaved timing: Invoke failed: simulated" and failed["latency_ms"] is None
    assert failed["load_ms"] > 0 and failed["peak_rss_mb"] > 0 and failed["runs"] == 4  # from its own process
    assert "FAILED: interleaved timing" in result.stdout
    assert len(list(csv.DictReader((tmp_path / "b.csv").open()))) == 2


def test_benchmark_figures_do_not_depend_on_the_order_of_the_models(tmp_path):
    """Each row is measured in its own process: the fixture's peak RSS after `default` is its peak alone
    (in one process it was 20 MB higher, and its load skipped the library import the first row paid)."""
    def rows(*models):
        result = run("benchmark", *models, "--runs", 3, "--warmup", 1, "--threads", 1, "--json", tmp_path / "b.json")
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / "b.json").read_text())
    alone = rows(TWO_CLASS)[0]
    first, after = rows("default", TWO_CLASS)
    assert abs(after["peak_rss_mb"] - alone["peak_rss_mb"]) < 3, (alone, after)
    assert first["peak_rss_mb"] > after["peak_rss_mb"]  # the bigger model's memory is its own, not the next's


def test_benchmark_runtime_that_cannot_read_the_file_is_an_error_row(tmp_path):
    if RUNTIMES.load("onnxruntime").unavailable_reason() is not None:
        pytest.skip("ONNX Runtime not installed")
    result = run("benchmark", TWO_CLASS, "--runtime", "onnxruntime", "--runs", 2, "--json", tmp_path / "b.json")
    assert result.exit_code == 1
    [mismatch] = json.loads((tmp_path / "b.json").read_text())
    assert mismatch["runtime"] == "onnxruntime" and mismatch["latency_ms"] is None
    assert ".tflite files run on litert" in mismatch["error"]
    assert "edge-deeplab export SOURCE --format onnx" in mismatch["error"] and "Protobuf" not in mismatch["error"]
    assert [line.split(":")[0] for line in result.stderr.splitlines()] == ["error"], result.stderr


def test_benchmark_across_formats_leaves_out_the_engines_a_file_is_not_for(tmp_path):
    if RUNTIMES.load("onnxruntime").unavailable_reason() is not None:
        pytest.skip("ONNX Runtime not installed")
    onnx = str(FIXTURES / "nchw_two_class.onnx")
    result = run("benchmark", TWO_CLASS, onnx, "--runtime", "litert,onnxruntime", "--threads", 1, "--runs", 2,
                 "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [(Path(r["model"]).name, r["runtime"]) for r in rows] == [
        ("two_class_float.tflite", "litert"), ("nchw_two_class.onnx", "onnxruntime")]
    assert all("error" not in r for r in rows)
    assert "not run on onnxruntime (not its file format)" in result.stderr
    assert "not run on litert (not its file format)" in result.stderr


# ---------------------------------------------------------------- evaluate
def make_stripes_dataset(root: Path, count: int = 3) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        stripes(root / "images" / f"{i}.png")
        mask = np.zeros((60, 90), np.uint8)
        mask[:, 45:] = 1
        mask[:, 43:47] = 255  # the soft border is "ignore"
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


def test_evaluate_json_contract(tmp_path):
    data = make_stripes_dataset(tmp_path / "data")
    result = run("evaluate", TWO_CLASS, "--data", data, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert EVALUATE_KEYS <= set(report) and set(report["latency_ms"]) == LATENCY_KEYS
    assert report["images"] == 3 and report["miou"] == 1.0 and report["iou"] == [1.0, 1.0]
    assert report["pixel_accuracy"] == 1.0 and report["boundary_iou"] == 1.0
    assert "mIoU 100.00%" in result.stdout


def test_evaluate_bad_dataset_is_one_line(tmp_path):
    assert_one_line_error(run("evaluate", TWO_CLASS, "--data", tmp_path / "nope"), "dataset folder not found")
    (tmp_path / "flat").mkdir()
    assert_one_line_error(run("evaluate", TWO_CLASS, "--data", tmp_path / "flat"), "images/", "masks/")


@pytest.mark.parametrize("person,words", [
    (255, ("hold only 0 and 255", "class indices")),  # a 0/255 binary mask: 255 is ignore
    (200, ("mask holds value 200", "2 classes")),  # a matte
])
def test_evaluate_refuses_masks_that_are_not_class_indices(tmp_path, person, words):
    data = make_stripes_dataset(tmp_path / "data")
    for path in (data / "masks").iterdir():
        mask = np.asarray(Image.open(path)).copy()
        mask[mask == 1] = person
        Image.fromarray(mask).save(path)
    result = run("evaluate", TWO_CLASS, "--data", data, "--json", tmp_path / "e.json")
    assert_one_line_error(result, *words)
    assert not (tmp_path / "e.json").exists()


def test_evaluate_refuses_binary_masks_before_scoring_and_skips_unreadable_ones(tmp_path, monkeypatch):
    import edge_deeplab
    from edge_deeplab.api import ImageSegmenter

    data = make_stripes_dataset(tmp_path / "data", count=4)
    (data / "masks" / "3.png").write_bytes(b"not a png")
    segmenter, scored = edge_deeplab.load(TWO_CLASS), []
    score = ImageSegmenter.__call__
    monkeypatch.setattr(ImageSegmenter, "__call__", lambda self, *a, **k: scored.append(1) or score(self, *a, **k))
    report = edge_deeplab.evaluate(segmenter, data, show_progress=False)
    assert report["images"] == 3 and report["miou"] == 1.0 and len(scored) == 3
    assert len(report["skipped"]) == 1 and "3.png: cannot read the mask" in report["skipped"][0]

    scored.clear()
    for path in sorted((data / "masks").glob("[012].png")):
        mask = np.asarray(Image.open(path)).copy()
        mask[mask == 1] = 255
        Image.fromarray(mask).save(path)
    with pytest.raises(edge_deeplab.DatasetError, match="hold only 0 and 255"):
        edge_deeplab.evaluate(segmenter, data, show_progress=False)
    assert scored == []  # refused before the first image, not after the whole folder


def test_evaluate_mediapipe_on_real_portraits(shared, tmp_path):
    mediapipe, portrait_val = shared("models/mediapipe_selfie_segmentation.tflite"), shared("data/portrait/val")
    data = tmp_path / "val"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    for image in sorted((portrait_val / "images").iterdir())[:8]:
        (data / "images" / image.name).symlink_to(image)
        (data / "masks" / f"{image.stem}.png").symlink_to(portrait_val / "masks" / f"{image.stem}.png")
    result = run("evaluate", mediapipe, "--data", data, "--threads", 2, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["images"] == 8 and report["iou"][1] > 0.93 and report["boundary_iou"] > 0.6


def test_plot_labels_tell_apart_files_of_one_name():
    from edge_deeplab.cli.benchmark import short_names
    assert short_names(["default", "ex/a/portrait_int8.tflite", "ex_i8/a/portrait_int8.tflite"]) == [
        "default", "ex/a/portrait_int8.tflite", "ex_i8/a/portrait_int8.tflite"]
    assert short_names(["runs/x/model.onnx", "other/y.tflite"]) == ["model.onnx", "y.tflite"]
    assert short_names(["same/p.tflite", "same/p.tflite"]) == ["p.tflite", "p.tflite"]  # one file twice
