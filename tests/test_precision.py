"""Inference precision: OpenVINO computes in f32 unless asked (its CPU plugin defaults to bf16 where the CPU
has it), reports what ran, and `benchmark --precision` compares; engines without a choice ignore it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_deeplab.cli import main
from edge_deeplab.errors import UnknownChoiceError
from edge_deeplab.runtimes import RUNTIMES, load_runtime

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
IR = FIXTURES / "nchw_two_class.xml"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "portrait" / "val"

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


def test_engines_without_a_choice_ignore_it():
    engine = load_runtime(FIXTURES / "two_class_float.tflite", precision="bf16")
    assert engine.precision is None and RUNTIMES.load("litert").precisions == ()


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
