"""benchmarks/video.py: the flicker measure, and the script end to end on a few frames."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "video.py"
TWO_CLASS = ROOT / "tests" / "fixtures" / "models" / "two_class_float.tflite"


def load_script():
    spec = importlib.util.spec_from_file_location("video_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPT.parent))  # its sibling results_io, as when run as a script
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_flicker_counts_label_changes_only_where_the_truth_is_stable():
    bench = load_script()
    truth = [np.zeros((2, 4), np.uint8) for _ in range(3)]
    truth[2][0, :] = 1  # the person enters row 0 in frame 2: those 4 pixels may change
    truth[1][1, 3] = 255  # ignored in frame 1
    labels = [np.zeros((2, 4), np.uint8) for _ in range(3)]
    labels[1][1, 0] = 1  # a flicker: the truth is 0 in frames 0 and 1
    labels[2][0, :] = 1  # follows the truth: no flicker
    row = bench.score(labels, truth)
    # Stable pixels: 0->1 all 8 but the ignored one = 7; 1->2 row 1 but the ignored one = 3. Changed:
    # (1, 0) flips up in 0->1 and back in 1->2 = 2; row 0's change in 1->2 follows the truth.
    assert row["stable"] == 10 and row["changed"] == 2
    assert row["flicker"] == pytest.approx(0.2)
    # Person IoU: frame 2's row is right (4), frame 1's flicker is a false positive (1).
    assert row["person_iou"] == pytest.approx(4 / 5)


@needs("av")
def test_refined_kind_is_the_smoothed_alpha_snapped_to_each_frame(shared, tmp_path):
    """What `segment clip --refine` writes, frame by frame, from the smoothed alpha."""
    import edge_deeplab
    from edge_deeplab.imaging import load_image
    from edge_deeplab.refine import refine_alpha
    from edge_deeplab.temporal import Smoothing, TemporalSmoother
    bench = load_script()
    val = shared("data/people/val")
    pairs = [(val / "images" / f"hike_{i:05d}.jpg", val / "masks" / f"hike_{i:05d}.png") for i in range(3)]
    outputs = bench.model_outputs(edge_deeplab.load(TWO_CLASS), pairs)
    _, got = bench.smoothed(outputs, Smoothing(), [image for image, _ in pairs])
    smoother = TemporalSmoother(Smoothing())
    for (p, _, truth), (image, _), labels in zip(outputs, pairs, got):
        alpha = smoother.update(p, truth.shape[1], truth.shape[0]).alpha
        np.testing.assert_array_equal(labels, (refine_alpha(load_image(image), alpha) >= 128).view(np.uint8))


def test_script_writes_json_and_tables(shared, tmp_path):
    val = shared("data/people/val")
    data = tmp_path / "people"
    for split in ("val",):
        for folder in ("images", "masks"):
            (data / split / folder).mkdir(parents=True)
        for stem in [f"hike_{i:05d}" for i in range(4)] + [f"rollerblade_{i:05d}" for i in range(3)]:
            shutil.copy(val / "images" / f"{stem}.jpg", data / split / "images")
            shutil.copy(val / "masks" / f"{stem}.png", data / split / "masks")
    report = tmp_path / "video.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--model", str(TWO_CLASS), "--data", str(data),
                             "--repeats", "1", "--json", str(report)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    figures = json.loads(report.read_text())
    rows = figures["smoothing"]["models"][str(TWO_CLASS)]
    assert set(rows) == {"hike", "rollerblade", "all"}
    assert rows["hike"]["plain"]["frames"] == 4 and rows["all"]["smooth"]["frames"] == 7
    assert rows["all"]["refined"]["frames"] == 7 and 0.0 <= rows["all"]["refined"]["person_iou"] <= 1.0
    realtime = figures["realtime"]
    assert realtime["clip"]["frames"] == 7 and realtime["output"]["frames"] == 7
    assert (realtime["output"]["width"], realtime["output"]["height"]) == (854, 480)
    assert len(realtime["refine_wall_s"]) == 1 and realtime["refine_end_to_end_fps"] > 0
    assert "| two_class_float | hike |" in result.stdout and "x real time" in result.stdout


def test_script_bad_model_is_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tmp_path / "absent.tflite"),
                             "--json", str(tmp_path / "v.json")], capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.strip().startswith("error: ")
    assert "Traceback" not in result.stderr and not (tmp_path / "v.json").exists()
