"""Packaging: the wheel maps converters/ runtimes/ calibration/ into edge_deeplab, ships its data,
and the README's test command is the one CI runs."""
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out)], check=True)
    (path,) = out.glob("edge_deeplab-*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def wheel_files(wheel):
    return set(wheel.namelist())


def test_wheel_installs_subpackages_under_edge_deeplab(wheel_files):
    for module in ("edge_deeplab/runtimes/litert.py", "edge_deeplab/converters/tflite.py",
                   "edge_deeplab/calibration/dataset.py", "edge_deeplab/cli/segment.py",
                   "edge_deeplab/models/backbones/mobilenet_v2.py", "edge_deeplab/train/__init__.py",
                   "edge_deeplab/search/__init__.py", "edge_deeplab/converters/edgetpu_ops.json"):
        assert module in wheel_files, module
    top_level = {name.split("/")[0] for name in wheel_files}
    assert not top_level & {"runtimes", "converters", "calibration", "tests"}, top_level


def test_wheel_declares_console_script_and_extras(wheel, wheel_files):
    dist_info = next(n.split("/")[0] for n in wheel_files if n.endswith(".dist-info/METADATA"))
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert "edge-deeplab = edge_deeplab.cli:main" in entry_points
    metadata = wheel.read(f"{dist_info}/METADATA").decode()
    for extra in ("train", "onnx", "openvino", "coreml", "test", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    base = [line for line in metadata.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any("tensorflow" in line for line in base), base


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^```(?:sh|bash)\n(.*?)\n```", readme, flags=re.S | re.M)
    assert len(commands) >= 2, "README must start with the install+run and install+test commands"
    assert commands[1].strip() in ci


def test_wheel_carries_runtime_assets_but_not_training_weights(wheel_files):
    """segment/benchmark/evaluate need the artifacts and manifests; only train/export need the .h5."""
    from edge_deeplab.zoo import ZOO
    shipped = [entry for entry in ZOO if "artifact" in entry.meta]
    assert {entry.name for entry in shipped} >= {"portrait", "portrait_landscape", "portrait_selfie"}
    for entry in shipped:
        for name in (entry.meta["artifact"], entry.meta["artifact"] + ".json"):
            assert f"edge_deeplab/assets/{name}" in wheel_files, name
        assert (ROOT / "edge_deeplab" / "assets" / entry.meta["weights"]).is_file()  # still in the checkout
    assert not [name for name in wheel_files if name.endswith((".h5", ".keras"))]


def test_training_weights_are_found_through_the_environment(tmp_path, monkeypatch):
    from edge_deeplab import zoo
    name = zoo.ZOO.get("portrait").meta["weights"]
    checkout = zoo.asset_path(name)
    assert checkout is not None and zoo.weights_path(name) == checkout  # editable install / source checkout
    monkeypatch.setattr(zoo, "asset_path", lambda name: None)  # an install from the wheel
    assert zoo.weights_path(name) is None
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / name).symlink_to(checkout)
    monkeypatch.setenv(zoo.WEIGHTS_ENV, os.pathsep.join([str(tmp_path / "elsewhere"), str(folder)]))
    assert zoo.weights_path(name) == folder / name


def test_export_without_the_training_weights_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from edge_deeplab import zoo
    from edge_deeplab.cli import main
    monkeypatch.setattr(zoo, "asset_path", lambda name: None)
    monkeypatch.delenv(zoo.WEIGHTS_ENV, raising=False)
    result = CliRunner().invoke(main, ["export", "portrait", "--format", "tflite", "--out", str(tmp_path / "o")])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    for words in ("portrait.weights.h5", "pip install -e .", zoo.WEIGHTS_ENV):
        assert words in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_python_run_from_the_source_tree_finds_the_mapped_subpackages():
    # As after a plain `pip install .`: the repo root's edge_deeplab/ shadows the installed package
    # (the editable install's finder, which maps runtimes/ etc. in, is taken away).
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
            "import edge_deeplab.runtimes.base, edge_deeplab.converters.base, edge_deeplab.calibration\n"
            "print(edge_deeplab.runtimes.base.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == ROOT / "runtimes" / "base.py"
