"""The examples run as a user runs them (a subprocess, the default model, real val photos)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_deeplab.datasets import load_mask

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def frames(shared, tmp_path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """Three val photos as a folder of frames, with their images and person masks."""
    portrait_val = shared("data/portrait/val")
    folder = tmp_path / "frames"
    folder.mkdir()
    images, masks = [], []
    for image in sorted((portrait_val / "images").iterdir())[:3]:
        shutil.copy(image, folder / image.name)
        images.append(np.asarray(Image.open(image).convert("RGB"), np.float32))
        masks.append(load_mask(portrait_val / "masks" / f"{image.stem}.png") == 1)
    return folder, images, masks


def detail_kept(before: np.ndarray, after: np.ndarray, where: np.ndarray) -> float:
    """How much of the image's edge energy (gradient magnitude) survives where ``where`` is true."""
    def edges(image):
        grey = image.mean(axis=-1)
        return np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    inside = where[:-1, :-1]
    return float(edges(after)[inside].sum() / edges(before)[inside].sum())


def test_portrait_blur_blurs_the_background_and_keeps_the_person(frames, tmp_path):
    folder, images, masks = frames
    out = tmp_path / "blurred"
    # The frames are unrelated photos: no temporal smoothing between them.
    run_example("portrait_blur.py", folder, "--smooth", "0", "--out", out)
    written = sorted(out.iterdir())
    assert [p.stem for p in written] == sorted(p.stem for p in folder.iterdir())
    for path, image, person in zip(written, images, masks):
        result = np.asarray(Image.open(path).convert("RGB"), np.float32)
        assert result.shape == image.shape
        # The background loses most of its detail (blurred); the person keeps it.
        background, kept = detail_kept(image, result, ~person), detail_kept(image, result, person)
        assert background < 0.6 and kept > 0.85, (path.name, background, kept)


def test_portrait_blur_replaces_the_background(frames, tmp_path):
    folder, images, masks = frames
    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (300, 200), (0, 200, 0)).save(backdrop)
    out = tmp_path / "replaced"
    run_example("portrait_blur.py", folder / sorted(p.name for p in folder.iterdir())[0], "--mode", "replace",
                "--background", backdrop, "--out", out)
    result = np.asarray(Image.open(next(out.iterdir())).convert("RGB"), np.float32)
    backdrop_shown = np.abs(result - np.array([0, 200, 0], np.float32)).max(axis=-1) < 30
    # The example composites with the alpha the API gives that photo (a one-frame stream): backdrop
    # where it is background, the photo where it is the person; and that person is the labelled one.
    import edge_deeplab
    alpha = next(edge_deeplab.load("default").stream([images[0].astype(np.uint8)])).alpha
    assert backdrop_shown[alpha < 10].mean() > 0.98 and backdrop_shown[alpha > 245].mean() < 0.02
    assert backdrop_shown[~masks[0]].mean() > 0.8 and backdrop_shown[masks[0]].mean() < 0.1


def test_coral_segment_falls_back_to_the_cpu_without_an_edge_tpu(frames, tmp_path):
    folder, _, masks = frames
    out = tmp_path / "coral"
    result = run_example("coral_segment.py", folder, "--model", tmp_path / "absent_edgetpu.tflite",
                         "--out", out)
    assert "Edge TPU not used" in result.stdout and "on litert (cpu)" in result.stdout
    assert "running default_int8 on the CPU" in result.stdout  # the int8 files, as the docstring says
    written = sorted(out.iterdir())
    assert len(written) == len(masks)
    for line, person in zip([l for l in result.stdout.splitlines() if "% foreground" in l], masks):
        foreground = float(line.rsplit(",", 1)[1].split("%")[0])
        assert abs(foreground - 100 * person.mean()) < 10, line  # the overlay's mask matches the photo's


@pytest.mark.parametrize("example", ["portrait_blur.py", "coral_segment.py"])
def test_a_missing_input_is_one_error_line(example, tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / example), str(tmp_path / "absent.jpg"), "--out",
                             str(tmp_path / "out")], capture_output=True, text=True)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "absent.jpg" in lines[0]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(Path(name).stem, EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coral_segment_default_model_is_the_file_export_compiles(tmp_path, monkeypatch):
    """The example's default --model is the file `export portrait_int8 --format edgetpu` compiles (a
    different name would fall back to the CPU on a board), and its docstring names the float route's."""
    from click.testing import CliRunner

    from edge_deeplab.cli import main
    from edge_deeplab.converters import edgetpu

    report_only = edgetpu.report_and_compile

    def compiling(path, layer_of=None):  # edgetpu_compiler runs on x86-64 hosts only: a stand-in file
        _, details = report_only(path, layer_of)
        compiled = edgetpu.compiled_path(path)
        shutil.copyfile(path, compiled)
        return compiled, details

    monkeypatch.setattr(edgetpu, "report_and_compile", compiling)
    out = tmp_path / "coral"
    result = CliRunner().invoke(main, ["export", "portrait_int8", "--format", "edgetpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    coral = load_example("coral_segment.py")
    compiled = [p.name for p in out.iterdir() if p.name.endswith("_edgetpu.tflite")]
    assert compiled == [coral.DEFAULT_MODEL]
    assert "export portrait_int8 --format edgetpu --out coral/\n" in coral.__doc__
    assert f"--model coral/{coral.DEFAULT_MODEL}" in coral.__doc__
    float_route = edgetpu.compiled_path(Path(edgetpu.EdgeTPUConverter().artifact_name("portrait"))).name
    assert float_route in coral.__doc__
