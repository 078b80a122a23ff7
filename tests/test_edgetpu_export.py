"""``export MODEL.tflite --format edgetpu`` on the reference pairs and other .tflite files, the compiler's
output compared with the report during an export, and the search's edgetpu target."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_deeplab.cli import main
from edge_deeplab.converters import edgetpu
from edge_deeplab.converters.edgetpu_log import parse_compiler_log
from edgetpu_graphs import COMPILER_MISSING, LOG, PAIRS_DIR, compiler_partition


# --- export MODEL.tflite --format edgetpu -------------------------------------------------------------

def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.skipif(not COMPILER_MISSING, reason="edgetpu_compiler is installed: the export compiles")
def test_export_of_a_foreign_int8_model_writes_the_report(shared, tmp_path):
    model = shared(PAIRS_DIR) / "movenet_single_pose_lightning_ptq.tflite"
    result = cli("export", model, "--format", "edgetpu", "--out", tmp_path / "out", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    [row] = json.loads((tmp_path / "r.json").read_text())
    assert row["status"] == "skipped" and "edgetpu_compiler is not on PATH" in row["reason"]
    manifest = json.loads((tmp_path / "out" / f"{model.name}.json").read_text())
    report = manifest["details"]["edgetpu_report"]
    truth = compiler_partition(model, model.with_name(f"{model.stem}_edgetpu.tflite"))
    assert (report["ops_total"], report["ops_on_edgetpu"]) == (len(truth), truth.count("edgetpu"))
    assert report["first_cpu_op"]["index"] == truth.index("cpu") and report["first_cpu_op"]["op"] == "CAST"
    assert f"{truth.count('edgetpu')} of {len(truth)} ops map to the Edge TPU" in result.output
    assert "first CPU op: #0 CAST" in result.output and "! split: op 89 ARG_MAX" in result.output
    assert (tmp_path / "out" / model.name).read_bytes() == model.read_bytes()


def test_export_compares_the_compiler_with_the_report(shared, tmp_path, monkeypatch):
    """Where the compiler runs, its output is compared with the prediction. Here its place is taken by the
    pair's real compiled file and the reconstructed log, edited to disagree: the export must print that."""
    folder = shared(PAIRS_DIR)
    name = "deeplab_mobilenet_edgetpu_slim_cityscapes_quant"

    def compiler(path):
        compiled = path.with_name(f"{path.stem}_edgetpu.tflite")
        shutil.copyfile(folder / compiled.name, compiled)
        text = LOG.read_text().replace("Edge TPU: 82", "Edge TPU: 83")
        return compiled, {"status": "ok", **parse_compiler_log(text)}

    monkeypatch.setattr(edgetpu, "compile_for_edgetpu", compiler)
    result = cli("export", folder / f"{name}.tflite", "--format", "edgetpu", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "edgetpu: unverified" in result.output
    assert "DISAGREES with the report" in result.output and "predicted 82, compiler 83" in result.output
    manifest = json.loads((tmp_path / f"{name}_edgetpu.tflite.json").read_text())
    assert manifest["details"]["compiler_vs_report"]["agrees"] is False
    assert sorted(manifest["files"]) == sorted([f"{name}.tflite", f"{name}_edgetpu.tflite"])


def test_a_shipped_int8_name_exports_like_its_path(tmp_path):
    """`export portrait_int8 --format edgetpu` takes the packaged QAT file `segment portrait_int8` runs, as
    its path would; docs/reference.md shows that report as printed."""
    from edge_deeplab.runtimes import resolve_model
    path = resolve_model("portrait_int8")
    by_name = cli("export", "portrait_int8", "--format", "edgetpu", "--out", tmp_path / "name")
    by_path = cli("export", path, "--format", "edgetpu", "--out", tmp_path / "path")
    assert by_name.exit_code == by_path.exit_code == 0, by_name.output
    assert sorted(p.name for p in (tmp_path / "name").iterdir()) == sorted(p.name for p in (tmp_path / "path").iterdir())
    assert (tmp_path / "name" / path.name).read_bytes() == path.read_bytes()
    report = by_name.output.split("\n", 1)[1]
    assert report == by_path.output.split("\n", 1)[1] and "ops map to the Edge TPU" in report
    if COMPILER_MISSING:  # the doc's example is the predicted report, as printed without the compiler
        reference = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()
        assert all(line in reference for line in report.splitlines()), report


@pytest.mark.parametrize("formats, fix", [("onnx", "edge-deeplab export portrait --format onnx"),
                                          ("edgetpu,tflite-int8", "export portrait --format tflite-int8 --calibration DIR")])
def test_a_shipped_int8_name_names_its_keras_source_for_other_formats(formats, fix, tmp_path):
    result = cli("export", "portrait_int8", "--format", formats, "--out", tmp_path / "out")
    assert result.exit_code == 1 and result.stdout == "" and "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert "shipped int8 file portrait_int8.tflite: it exports only to edgetpu" in line and fix in line
    assert not (tmp_path / "out").exists()


def test_the_default_family_is_refused_by_name(tmp_path):
    result = cli("export", "default_int8", "--format", "edgetpu", "--out", tmp_path / "out")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "'default_int8' is a family of models" in line and "portrait_landscape_int8" in line


def test_float_model_is_one_line_naming_the_int8_export(shared, tmp_path):
    result = cli("export", shared("models/mediapipe_selfie_segmentation.tflite"), "--format", "edgetpu",
                 "--out", tmp_path / "out")
    assert result.exit_code == 1 and "--format tflite-int8" in result.output
    assert "not a full-integer model" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_already_compiled_model_is_refused(shared, tmp_path):
    model = shared(PAIRS_DIR) / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    result = cli("export", model, "--format", "edgetpu", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "already compiled for the Edge TPU" in result.output
    assert not (tmp_path / "out").exists()


def test_a_tflite_source_takes_only_the_edgetpu_format(shared, tmp_path):
    model = shared(PAIRS_DIR) / "mobilenet_v1_0.25_128_quant.tflite"
    result = cli("export", model, "--format", "edgetpu,onnx", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "exports only to edgetpu" in result.output
    assert not (tmp_path / "out").exists()


# --- our own exports ------------------------------------------------------------------------------------

def test_search_export_of_the_best_carries_the_report(shared, tmp_path):
    """The search's edgetpu target exports its best candidate with the same report as `export`."""
    keras = pytest.importorskip("tf_keras")
    from edge_deeplab.models import build_model
    from edge_deeplab.search.report import export_best
    from edge_deeplab.search.search import Trial
    from edge_deeplab.zoo import ZOO

    keras.utils.set_random_seed(0)
    config = ZOO.load("portrait_edgetpu").replace(input_size=(64, 64))
    build_model(config).save_weights(tmp_path / "proxy.weights.h5")
    trial = Trial(config, 1.0, 1.0, 0.5, str(tmp_path / "proxy.weights.h5"))
    exported = export_best(trial, "edgetpu", shared("data/portrait"), tmp_path)
    manifest = json.loads(Path(exported["path"] + ".json").read_text())["details"]["edgetpu_report"]
    brief = exported["edgetpu_report"]
    assert (brief["ops_total"], brief["ops_on_edgetpu"]) == (manifest["ops_total"], manifest["ops_on_edgetpu"])
    assert brief["first_cpu_op"] == manifest["first_cpu_op"] and brief["first_cpu_op"]["op"] == "ARG_MAX"
    assert brief["ops_on_edgetpu"] == brief["ops_total"] - 2  # all but the fused argmax and its cast
    assert exported["status"] == ("skipped" if COMPILER_MISSING else "ok")
