"""Inference precision: OpenVINO computes in f32 unless asked (its CPU plugin defaults to bf16 where the CPU
has it), reports what ran, and `benchmark --precision` compares; a value no engine offers is an error
everywhere, and asking an engine without a choice is an error (segment, evaluate, the API) or, in a
benchmark of several engines, a note and one row in the model's own types."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_deeplab.cli import main
from edge_deeplab.errors import ConfigError, UnknownChoiceError
from edge_deeplab.runtimes import RUNTIMES, load_runtime

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
IR = FIXTURES / "nchw_two_class.xml"

openvino = pytest.mark.skipif(RUNTIMES.load("openvino").unavailable_reason() is not None,
                              reason="OpenVINO not installed: pip install 'edge-deeplab[openvino]'")


def cpu_has_bf16() -> bool:
    import openvino as ov
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@openvino
def test_openvino_defaults_to_f32_and_reports_what_ran():
    assert load_runtime(IR).precision == "f32"
    assert load_runtime(IR, precision="bf16").precision == ("bf16" if cpu_has_bf16() else "f32")
    assert load_runtime(IR, precision="default").precision in ("f32", "bf16", "f16")


@openvino
def test_unknown_precision_lists_the_valid_ones():
    with pytest.raises(UnknownChoiceError, match="openvino precision 'fp8'.*bf16, default, f16, f32"):
        load_runtime(IR, precision="fp8")


def test_engines_without_a_choice_refuse_it_and_say_which_take_one():
    assert RUNTIMES.load("litert").precisions == ()
    with pytest.raises(ConfigError, match=r"precision 'bf16': litert has no precision choice.*"
                                          r"applies to openvino \(f32, bf16, f16, default\).*--runtime openvino"):
        load_runtime(FIXTURES / "two_class_float.tflite", precision="bf16")
    assert load_runtime(FIXTURES / "two_class_float.tflite").precision is None


def test_made_up_precision_is_refused_whatever_the_engine():
    with pytest.raises(UnknownChoiceError, match="unknown precision 'xyz'.*Valid: bf16, default, f16, f32"):
        load_runtime(FIXTURES / "two_class_float.tflite", precision="xyz")


def one_line_error(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


@pytest.fixture
def photo_and_data(tmp_path):
    import numpy as np
    from PIL import Image
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 224
    for folder in ("data/images", "data/masks"):
        (tmp_path / folder).mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "photo.png")
    Image.fromarray(image).save(tmp_path / "data/images/0.png")
    Image.fromarray((image[..., 0] > 0).astype(np.uint8)).save(tmp_path / "data/masks/0.png")
    return tmp_path


@pytest.mark.parametrize("command", ["segment", "evaluate", "benchmark"])
@pytest.mark.parametrize("model", ["default", str(FIXTURES / "two_class_float.tflite")])
def test_cli_refuses_a_made_up_precision_in_one_line(command, model, photo_and_data):
    tmp = photo_and_data
    args = {"segment": [str(tmp / "photo.png"), "--out", str(tmp / "p.png")],
            "evaluate": ["--data", str(tmp / "data")], "benchmark": ["--runs", "3"]}[command]
    result = CliRunner().invoke(main, [command, model, *args, "--precision", "xyz"])
    one_line_error(result, "unknown precision 'xyz'", "Valid: bf16, default, f16, f32")
    assert not (tmp / "p.png").exists()


@pytest.mark.parametrize("command", ["segment", "evaluate"])
def test_cli_refuses_a_precision_the_engine_cannot_honour(command, photo_and_data):
    tmp = photo_and_data
    args = [str(tmp / "photo.png"), "--out", str(tmp / "p.png")] if command == "segment" else ["--data", str(tmp / "data")]
    result = CliRunner().invoke(main, [command, "default", *args, "--precision", "bf16"])
    one_line_error(result, "litert has no precision choice", "--runtime openvino")


def test_benchmark_notes_an_engine_without_a_choice_and_runs_it_once(tmp_path):
    result = CliRunner().invoke(main, ["benchmark", str(FIXTURES / "two_class_float.tflite"), "--precision", "bf16",
                                       "--runs", "2", "--warmup", "0", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    assert [(r["runtime"], r["precision"]) for r in json.loads((tmp_path / "b.json").read_text())] == [("litert", None)]
    assert result.stderr.strip() == ("note: litert has no precision choice: its rows ran once, in the model's own "
                                     "types (precision -), not at --precision bf16")


@openvino
def test_benchmark_compares_precisions_on_openvino_rows_only(tmp_path):
    result = CliRunner().invoke(main, ["benchmark", str(IR), str(FIXTURES / "two_class_float.tflite"),
                                       "--precision", "f32,bf16", "--runs", "2", "--warmup", "0",
                                       "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [(r["runtime"], r["precision"]) for r in rows] == [
        ("openvino", "f32"), ("openvino", "bf16" if cpu_has_bf16() else "f32"), ("litert", None)]
    assert "| openvino | f32 |" in result.stdout and "| litert | - |" in result.stdout
    substituted = "--precision bf16 ran as f32" in result.stderr  # said when the CPU lacks it
    assert substituted == (not cpu_has_bf16())
    assert "no --threads: each engine ran with its own default" in result.stderr  # two engines compared
    same_count = CliRunner().invoke(main, ["benchmark", str(IR), str(FIXTURES / "two_class_float.tflite"),
                                           "--threads", "1", "--runs", "2", "--warmup", "0"])
    assert same_count.exit_code == 0 and "no --threads" not in same_count.stderr


# ---------------------------------------------------------------- the default model on portrait photos
@openvino
def test_onnx_and_openvino_agree_with_tflite_fp32_on_portraits(shared, tmp_path):
    """The default model exported to tflite/onnx/openvino here: >= 99.9% of pixels agree with TFLite fp32
    on val photos (benchmarks/precision_parity.py; OpenVINO's bf16 default gave 99.6% on all 150)."""
    pytest.importorskip("tensorflow")
    if RUNTIMES.load("onnxruntime").unavailable_reason() is not None:
        pytest.skip("ONNX Runtime not installed: pip install 'edge-deeplab[onnx]'")
    import importlib.util

    from edge_deeplab.datasets import list_pairs
    from edge_deeplab.imaging import load_image
    spec = importlib.util.spec_from_file_location(
        "precision_parity", Path(__file__).resolve().parents[1] / "benchmarks" / "precision_parity.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pairs = list_pairs(shared("data/portrait/val"))
    images = [load_image(pair.image) for pair in pairs[::25]]  # 6 photos across the split
    rows = {row["candidate"]: row for row in script.agreement(script.export_formats("portrait", tmp_path), images)}
    assert rows["ONNX Runtime"]["pixel_agreement"] >= 0.999
    assert rows["OpenVINO f32"]["pixel_agreement"] >= 0.999 and rows["OpenVINO f32"]["precision"] == "f32"
    assert rows["OpenVINO plugin default"]["precision"] == ("bf16" if cpu_has_bf16() else "f32")
