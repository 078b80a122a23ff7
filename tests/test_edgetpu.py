"""The static Edge TPU report against Coral's compiler: the reference pairs (each model beside its
``_edgetpu.tflite``), one rule at a time on tiny synthetic graphs, and the compiler-log parser on a
reconstructed log. No TensorFlow needed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED
from edge_deeplab.converters.edgetpu_log import compare, compiled_placement, parse_compiler_log
from edge_deeplab.converters.edgetpu_report import compatibility_report, supported_ops
from edge_deeplab.converters.tflite_graph import read_ops
from edgetpu_graphs import LOG, PAIRS_DIR, Builder, compiler_partition, conv, depthwise, resize, unary

PAIRS = sorted(p.name.removesuffix("_edgetpu.tflite") for p in (SHARED / PAIRS_DIR).glob("*_edgetpu.tflite"))


@pytest.mark.parametrize("pair", PAIRS or ["(no pairs staged)"])
def test_report_reproduces_the_compilers_partition(shared, pair):
    folder = shared(PAIRS_DIR)
    model, compiled = folder / f"{pair}.tflite", folder / f"{pair}_edgetpu.tflite"
    truth = compiler_partition(model, compiled)
    report = compatibility_report(model)
    predicted = [row["placement"] for row in report["ops"]]
    wrong = [f"{row['index']} {row['op']}: {row['placement']}" for row, t in zip(report["ops"], truth)
             if row["placement"] != t]
    assert predicted == truth, f"ops placed unlike the compiler: {wrong}"
    assert (report["ops_total"], report["ops_on_edgetpu"]) == (len(truth), truth.count("edgetpu"))
    first = next((i for i, t in enumerate(truth) if t == "cpu"), None)
    assert (report["first_cpu_op"] or {}).get("index") == first
    if first is not None:
        assert report["first_cpu_op"]["op"] == read_ops(model)[first].type
    assert compiled_placement(model, compiled) == truth
    assert compare(report, placement=truth) == {"agrees": True, "differences": []}


def test_pairs_are_staged(shared):
    assert len(PAIRS) >= 5, f"expected the five reference pairs in {shared(PAIRS_DIR)}"


def test_pairs_benchmark_script(shared, tmp_path):
    """benchmarks/edgetpu_pairs.py: the README's table and its JSON, one row per pair."""
    import subprocess
    import sys
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "edgetpu_pairs.py"
    done = subprocess.run([sys.executable, script, "--pairs", shared(PAIRS_DIR), "--json", tmp_path / "r.json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["pairs"]
    assert [r["pair"] for r in rows] == PAIRS and all(r["agrees"] for r in rows)
    assert f"{len(PAIRS)} of {len(PAIRS)} pairs placed exactly as the compiler did" in done.stdout


# --- one rule at a time -------------------------------------------------------------------------------

def placements(path: Path) -> list[tuple[str, str, str | None]]:
    return [(row["op"], row["placement"], row.get("role")) for row in compatibility_report(path)["ops"]]


def test_dilated_depthwise_maps_unless_x_and_y_differ(tmp_path):
    b = Builder()
    x = b.tensor("in", (1, 16, 16, 8))
    same = depthwise(b, x, "atrous", 8, 16, dilation=(2, 2))
    uneven = depthwise(b, same, "uneven", 8, 16, dilation=(1, 2))
    ops = placements(b.write(tmp_path / "m.tflite", [x], [uneven]))
    assert ops == [("DEPTHWISE_CONV_2D", "edgetpu", None), ("DEPTHWISE_CONV_2D", "cpu", "unsupported")]


def test_unsupported_input_ops_run_first_without_splitting(tmp_path):
    """A CAST and a float QUANTIZE of the input run on the CPU before the Edge TPU subgraph."""
    b = Builder()
    x = b.tensor("in", (1, 8, 8, 3))
    as_float = unary(b, "CAST", x, "cast", (1, 8, 8, 3), "FLOAT32")
    as_int8 = unary(b, "QUANTIZE", as_float, "quantize", (1, 8, 8, 3), "INT8")
    out = conv(b, as_int8, "conv", 3, 8, 8)
    report = compatibility_report(b.write(tmp_path / "m.tflite", [x], [out]))
    assert [(r["op"], r["placement"], r.get("role")) for r in report["ops"]] == [
        ("CAST", "cpu", "start"), ("QUANTIZE", "cpu", "start"), ("CONV_2D", "edgetpu", None)]
    assert report["first_cpu_op"]["index"] == 0 and report["cpu_roles"]["start"] == 2


def test_ops_after_an_unsupported_op_leave_only_along_its_paths(tmp_path):
    """The compiler partitions once: what depends on the CPU op follows it there; a parallel branch stays."""
    b = Builder()
    x = b.tensor("in", (1, 8, 8, 4))
    trunk = conv(b, x, "trunk", 4, 4, 8)
    cut = unary(b, "GELU", trunk, "gelu", (1, 8, 8, 4))
    after = conv(b, cut, "after_cut", 4, 4, 8)
    branch = conv(b, trunk, "branch", 4, 4, 8)
    report = compatibility_report(b.write(tmp_path / "m.tflite", [x], [after, branch]))
    assert [(r["placement"], r.get("role")) for r in report["ops"]] == [
        ("edgetpu", None), ("cpu", "unsupported"), ("cpu", "follows"), ("edgetpu", None)]
    assert report["ops"][2]["after"] == 1 and report["ops_on_edgetpu"] == 2
    assert [f["kind"] for f in report["flags"]] == ["split"] and report["flags"][0]["index"] == 1


def test_unsupported_output_ops_cost_only_themselves(tmp_path):
    """The end: a requantizing QUANTIZE maps, DEQUANTIZE and ARG_MAX stay on the CPU without followers."""
    b = Builder()
    x = b.tensor("in", (1, 8, 8, 4), "INT8")
    y = unary(b, "QUANTIZE", x, "requantize", (1, 8, 8, 4), "UINT8")
    labels = unary(b, "ARG_MAX", y, "argmax", (1, 8, 8), "INT32")
    logits = unary(b, "DEQUANTIZE", y, "dequantize", (1, 8, 8, 4), "FLOAT32")
    report = compatibility_report(b.write(tmp_path / "m.tflite", [x], [labels, logits]))
    assert [r["placement"] for r in report["ops"]] == ["edgetpu", "cpu", "cpu"]
    assert report["first_cpu_op"] == {"index": 1, "op": "ARG_MAX", "role": "unsupported",
                                      "reason": "op ARG_MAX is not in the Edge TPU's supported-op table"}
    assert report["flags"] == []  # nothing that could map was pushed off


def test_more_than_three_dimensions_do_not_map(tmp_path):
    b = Builder()
    x = b.tensor("in", (2, 8, 8, 4))
    out = unary(b, "RELU", x, "relu", (2, 8, 8, 4))
    [row] = compatibility_report(b.write(tmp_path / "m.tflite", [x], [out]))["ops"]
    assert row["placement"] == "cpu" and "more than 3 dimensions" in row["reason"]


@pytest.mark.parametrize("weights_format, placement", [(0, "edgetpu"), (1, "cpu")])
def test_fully_connected_needs_the_default_weight_format(tmp_path, weights_format, placement):
    from ai_edge_litert import schema_py_generated as schema
    b = Builder()
    x = b.tensor("in", (1, 64))
    options = schema.FullyConnectedOptionsT()
    options.weightsFormat = weights_format
    out = b.tensor("fc", (1, 10))
    b.op("FULLY_CONNECTED", [x, b.weights("w", (10, 64)), b.weights("b", (10,), "INT32")], [out], options)
    [row] = compatibility_report(b.write(tmp_path / "m.tflite", [x], [out]))["ops"]
    assert row["placement"] == placement


def test_dynamic_shapes_do_not_map(tmp_path):
    b = Builder()
    x = b.tensor("in", (1, -1, 8, 4))
    out = unary(b, "RELU", x, "relu", (1, -1, 8, 4))
    [row] = compatibility_report(b.write(tmp_path / "m.tflite", [x], [out]))["ops"]
    assert row["placement"] == "cpu" and "dynamic shape" in row["reason"]


def test_large_resize_stays_on_the_cpu_with_a_fix(tmp_path):
    limit = supported_ops()["ops"]["RESIZE_BILINEAR"]["max_output_elements"]
    b = Builder()
    x = b.tensor("logits", (1, 16, 16, 4))
    small = resize(b, x, "up_small", 4, 32)  # 4 Ki values
    side = int(np.ceil(np.sqrt(limit / 4))) + 1
    large = resize(b, small, "up_large", 4, side)
    report = compatibility_report(b.write(tmp_path / "m.tflite", [x], [large]))
    assert [r["placement"] for r in report["ops"]] == ["edgetpu", "cpu"]
    [flag] = report["flags"]
    assert flag["kind"] == "resize" and flag["index"] == 1 and "upsample on the CPU side" in flag["fix"]


def test_parameters_beyond_the_cache_and_large_activations_are_flagged(tmp_path):
    b = Builder()
    x = b.tensor("in", (1, 4, 4, 1024))
    wide = conv(b, x, "wide", 1024, 8192, 4)  # 8 MiB of int8 weights
    big = b.tensor("big", (1, 1024, 1024, 6))  # 6 MiB in, 6 MiB out
    out = unary(b, "RELU", big, "relu", (1, 1024, 1024, 6))
    report = compatibility_report(b.write(tmp_path / "m.tflite", [x, big], [wide, out]))
    memory = report["memory"]
    assert memory["parameters_mib"] == pytest.approx(8.03, abs=0.01) and memory["streamed_mib"] > 1.0
    kinds = {f["kind"]: f for f in report["flags"]}
    assert kinds["parameters"]["op"] == "CONV_2D" and "stream from the host" in kinds["parameters"]["detail"]
    assert kinds["activations"]["op"] == "RELU" and "12.0 MiB" in kinds["activations"]["detail"]


def test_recurrent_state_may_be_int16(tmp_path):
    """An LSTM's int16 cell state is a variable tensor, not an activation (the LSTM pair maps whole)."""
    b = Builder()
    x = b.tensor("in", (1, 28, 28), "INT8")
    state = b.tensor("cell", (1, 20), "INT16", variable=True)
    out = b.tensor("out", (1, 28, 20), "INT8")
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", [x, b.weights("w", (20, 28)), state], [out])
    assert placements(b.write(tmp_path / "m.tflite", [x], [out])) == [
        ("UNIDIRECTIONAL_SEQUENCE_LSTM", "edgetpu", None)]


# --- the compiler's own output ------------------------------------------------------------------------

def test_reconstructed_log_is_parsed():
    """A reconstructed log (tests/fixtures/edgetpu/README.md), in the compiler's documented layout."""
    log = parse_compiler_log(LOG.read_text())
    assert log["version"] == "16.0.384591198" and log["subgraphs"] == 1
    assert (log["ops_total"], log["ops_on_edgetpu"], log["ops_on_cpu"]) == (84, 82, 2)
    assert (log["on_chip_mib"], log["off_chip_mib"]) == (2.11, 0.0)
    assert log["operators"][-1] == {"op": "ARG_MAX", "count": 1, "status": "Operation not supported"}
    assert sum(row["count"] for row in log["operators"]) == 84


def test_fully_mapped_log_has_no_split_lines():
    text = LOG.read_text().split("Model successfully compiled but")[0] + (
        "Operator                       Count      Status\n\nCONV_2D                        4          "
        "Mapped to Edge TPU\n")
    log = parse_compiler_log(text)
    assert (log["ops_on_edgetpu"], log["ops_on_cpu"]) == (4, 0)


def test_log_agrees_with_the_report_and_a_disagreement_is_spelled_out(shared):
    report = compatibility_report(shared(PAIRS_DIR) / "deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite")
    text = LOG.read_text()
    assert compare(report, parse_compiler_log(text))["agrees"]
    # Had the compiler kept the second resize on the Edge TPU, the comparison must say so.
    changed = text.replace("Edge TPU: 82", "Edge TPU: 83").replace(
        "RESIZE_BILINEAR                1          Mapped", "RESIZE_BILINEAR                2          Mapped")
    check = compare(report, parse_compiler_log(changed))
    assert not check["agrees"]
    assert "ops_on_edgetpu: predicted 82, compiler 83" in check["differences"]
    assert "RESIZE_BILINEAR on the Edge TPU: predicted 1, compiler 2" in check["differences"]
    flipped = [row["placement"] for row in report["ops"]]
    flipped[82] = "edgetpu"
    assert compare(report, placement=flipped)["differences"] == [
        "op 82 RESIZE_BILINEAR: predicted cpu, compiled edgetpu"]
