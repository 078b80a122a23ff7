"""Manifests record each artifact file's sha256; loading a model whose manifest sits beside it checks them."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.cli import main
from edge_deeplab.errors import BadModelError, ChecksumError
from edge_deeplab.runtimes import load_runtime
from edge_deeplab.runtimes.integrity import check_artifact, sha256

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
ASSETS = Path(__file__).resolve().parents[1] / "edge_deeplab" / "assets"


def exported(tmp_path: Path, name: str = "two_class_float.tflite") -> Path:
    """A copy of a fixture model with a manifest beside it, as ``export`` writes one."""
    model = tmp_path / name
    shutil.copy(FIXTURES / name, model)
    manifest = {"format": "tflite", "artifact": name, "files": [name], "sha256": {name: sha256(model)}}
    (tmp_path / f"{name}.json").write_text(json.dumps(manifest))
    return model


def tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte of a weight buffer: still a loadable model, only the numbers change
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("asset", ["portrait_fp32.tflite", "portrait_int8.tflite", "portrait_landscape_fp32.tflite",
                                   "portrait_landscape_int8.tflite", "portrait_tall_fp32.tflite",
                                   "portrait_selfie_fp32.tflite"])
def test_shipped_assets_match_their_manifests(asset):
    manifest = json.loads((ASSETS / f"{asset}.json").read_text())
    assert manifest["sha256"] == {asset: hashlib.sha256((ASSETS / asset).read_bytes()).hexdigest()}
    check_artifact(ASSETS / asset)


def test_a_matching_artifact_loads(tmp_path):
    assert load_runtime(exported(tmp_path)).inputs[0].shape[0] == 1


def test_a_changed_file_is_a_checksum_error(tmp_path):
    model = exported(tmp_path)
    tamper(model)
    load_runtime(model, verify=False)  # the bytes still form a model: only the digest catches it
    with pytest.raises(ChecksumError, match="does not match its manifest two_class_float.tflite.json") as info:
        load_runtime(model)
    assert isinstance(info.value, BadModelError) and "\n" not in str(info.value)


def test_a_listed_file_that_is_missing_is_named(tmp_path):
    model = exported(tmp_path)
    manifest_file = tmp_path / "two_class_float.tflite.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["sha256"]["two_class_float.bin"] = "0" * 64  # e.g. an IR's weights left behind
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ChecksumError, match="two_class_float.bin is missing"):
        load_runtime(model)


@pytest.mark.parametrize("manifest", [
    {"artifact": "two_class_float.tflite", "files": ["two_class_float.tflite"]},  # written before digests
    {"artifact": "other.tflite", "sha256": {"two_class_float.tflite": "0" * 64}},  # another model's manifest
])
def test_manifests_without_a_digest_for_this_model_are_not_checked(tmp_path, manifest):
    model = exported(tmp_path)
    tamper(model)
    (tmp_path / "two_class_float.tflite.json").write_text(json.dumps(manifest))
    load_runtime(model)


def test_folder_digest_covers_names_and_contents(tmp_path):
    package = tmp_path / "m.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Data" / "weights.bin").write_bytes(b"abc")
    (package / "Manifest.json").write_text("{}")
    first = sha256(package)
    assert sha256(package) == first and len(first) == 64
    (package / "Data" / "weights.bin").write_bytes(b"abd")
    assert sha256(package) != first
    (package / "Data" / "weights.bin").write_bytes(b"abc")
    (package / "Data" / "weights.bin").rename(package / "Data" / "other.bin")
    assert sha256(package) != first


def test_cli_reports_a_mismatch_in_one_line(tmp_path):
    model = exported(tmp_path)
    tamper(model)
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 10)).save(image)
    result = CliRunner().invoke(main, ["segment", str(model), str(image), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not match its manifest" in lines[0]
    assert not (tmp_path / "out").exists()


def test_benchmark_keeps_a_mismatching_model_as_a_failed_row(tmp_path):
    model = exported(tmp_path)
    tamper(model)
    result = CliRunner().invoke(main, ["benchmark", str(model), str(FIXTURES / "two_class_float.tflite"),
                                       "--runs", "2", "--warmup", "0", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 1
    rows = json.loads((tmp_path / "b.json").read_text())
    assert "does not match its manifest" in rows[0]["error"] and "error" not in rows[1]
