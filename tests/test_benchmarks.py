"""The README's comparison scripts run as a user runs them, on a few val pairs (figures stay in benchmarks/)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_deeplab.cli.evaluate import evaluate

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def mediapipe(shared) -> Path:
    return shared("models/mediapipe_selfie_segmentation.tflite")


@pytest.fixture(scope="module")
def few_pairs(shared, tmp_path_factory) -> Path:
    portrait_val = shared("data/portrait/val")
    folder = tmp_path_factory.mktemp("val")
    for sub in ("images", "masks"):
        (folder / sub).mkdir()
    for image in sorted((portrait_val / "images").iterdir())[:4]:
        shutil.copy(image, folder / "images" / image.name)
        shutil.copy(portrait_val / "masks" / f"{image.stem}.png", folder / "masks" / f"{image.stem}.png")
    return folder


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], capture_output=True,
                          text=True, cwd=BENCHMARKS.parent)


def test_portrait_vs_mediapipe_scores_as_evaluate_does(few_pairs, mediapipe, tmp_path):
    report = tmp_path / "report.json"
    result = run_script("portrait_vs_mediapipe.py", "default", "--data", few_pairs, "--mediapipe", mediapipe,
                        "--rounds", 2, "--runs", 3, "--warmup", 1, "--json", report)
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(report.read_text())}
    assert list(rows) == ["ours: default", "mediapipe selfie"]
    for row, model in zip(rows.values(), ("default", str(mediapipe))):
        expected = evaluate(model, str(few_pairs), "litert", 2, show_progress=False, refine=False)
        assert row["person_iou"] == expected["iou"][1] and row["images"] == 4
        assert row["latency_ms"]["runs"] == 6 and row["latency_ms"]["p50"] > 0
        assert f"| {row['model']} |" in result.stdout
    assert rows["mediapipe selfie"]["p50_ratio_to_mediapipe"] == 1.0
    assert rows["ours: default"]["person_iou"] > 0.8  # real portraits, the shipped model


@pytest.mark.parametrize("script", ["portrait_vs_mediapipe.py", "framing_shift.py"])
def test_a_bad_model_is_one_error_line_before_any_table(script, few_pairs, mediapipe):
    result = run_script(script, "missing.tflite", "--data", few_pairs, "--mediapipe", mediapipe)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: model file not found: missing.tflite"]
    assert "|" not in result.stdout


def test_people_scores_raw_and_refined_masks_as_evaluate_does(few_pairs, mediapipe, tmp_path):
    report = tmp_path / "people.json"
    result = run_script("people.py", "default", "--sets", few_pairs, "--selfie", mediapipe,
                        "--rounds", 2, "--runs", 3, "--warmup", 1, "--json", report)
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(report.read_text())["models"]}
    assert list(rows) == ["default", "mediapipe selfie", "mediapipe landscape"]
    set_name = f"{few_pairs.parent.name}/{few_pairs.name}"
    for name, model in (("default", "default"), ("mediapipe selfie", str(mediapipe))):
        for key, refine in (("sets", False), ("refined", True)):
            expected = evaluate(model, str(few_pairs), "litert", 2, show_progress=False, refine=refine)
            assert rows[name][key][set_name]["person_iou"] == expected["iou"][1]
        assert rows[name]["latency_ms"]["runs"] == 6
    assert rows["mediapipe selfie"]["p50_ratio_to_mediapipe_selfie"] == 1.0


def test_people_scores_video_frames_per_sequence_as_evaluate_does(shared, few_pairs, mediapipe, tmp_path):
    people_val = shared("data/people/val")
    frames = tmp_path / "clips" / "val"
    for sub in ("images", "masks"):
        (frames / sub).mkdir(parents=True)
    for sequence in ("hike", "rollerblade"):
        clip = tmp_path / sequence
        for sub in ("images", "masks"):
            (clip / sub).mkdir(parents=True)
        for image in sorted((people_val / "images").glob(f"{sequence}_*"))[:2]:
            mask = people_val / "masks" / f"{image.stem}.png"
            for folder in (frames, clip):
                shutil.copy(image, folder / "images" / image.name)
                shutil.copy(mask, folder / "masks" / mask.name)
    report = tmp_path / "people.json"
    result = run_script("people.py", "default", "--sets", few_pairs, frames, "--selfie", mediapipe,
                        "--rounds", 1, "--runs", 2, "--warmup", 1, "--json", report)
    assert result.returncode == 0, result.stderr
    default = json.loads(report.read_text())["models"][0]
    portraits, clips = default["sets"][f"{few_pairs.parent.name}/{few_pairs.name}"], default["sets"]["clips/val"]
    assert "sequences" not in portraits  # photos, not frames of clips
    assert list(clips["sequences"]) == ["hike", "rollerblade"]
    for sequence, iou in clips["sequences"].items():
        assert iou == evaluate("default", str(tmp_path / sequence), "litert", 2, show_progress=False,
                               refine=False)["iou"][1]
    assert "clips/val person IoU per sequence" in result.stdout


def test_aspect_scores_crops_and_default_follows_its_rule(few_pairs, mediapipe, tmp_path):
    report = tmp_path / "aspect.json"
    result = run_script("aspect.py", "portrait", "portrait_landscape", "portrait_tall", "default", "--sets", few_pairs,
                        "--selfie", mediapipe, "--landscape", mediapipe, "--json", report)
    assert result.returncode == 0, result.stderr
    rows = json.loads(report.read_text())["rows"]
    assert [r["crop"] for r in rows] == ["16:9", "4:3", "1:1", "3:4", "9:16"]
    for row in rows:
        iou = row["person_iou"]
        assert 0.5 < iou["portrait"] <= 1.0
        runs_on = {"16:9": "portrait_landscape", "4:3": "portrait_landscape", "9:16": "portrait_tall"}
        assert iou["default"] == iou[runs_on.get(row["crop"], "portrait")]
    # The portraits are 3:4 already: that crop is the whole photo, scored as evaluate scores it.
    expected = evaluate("portrait", str(few_pairs), "litert", 2, show_progress=False, refine=False)["iou"][1]
    assert rows[3]["person_iou"]["portrait"] == pytest.approx(expected, abs=1e-9)


def binary_masks_folder(folder: Path) -> Path:
    """Two frames of one sequence whose masks mark the person 255 (ignore), not 1."""
    import numpy as np
    from PIL import Image
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(folder / "images" / f"walk_{i:05d}.jpg")
        mask = np.zeros((48, 64), np.uint8)
        mask[:, 30:] = 255
        Image.fromarray(mask).save(folder / "masks" / f"walk_{i:05d}.png")
    return folder


@pytest.mark.parametrize("script,args", [
    ("people.py", ("default", "--sets", "{data}")),
    ("aspect.py", ("default", "--sets", "{data}")),
    ("refine.py", ("--data", "{data}")),
    ("video.py", ("--data", "{root}", "--realtime", "no")),
])
def test_masks_that_are_not_class_indices_are_one_error_line_and_no_json(script, args, tmp_path):
    data = binary_masks_folder(tmp_path / "set" / "val")
    report = tmp_path / "report.json"
    args = [a.format(data=data, root=data.parent) for a in args]
    result = run_script(script, *args, "--json", report)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "hold only 0 and 255" in result.stderr
    assert not report.exists()


def test_interleave_reports_the_p50_ratio_of_each_run_in_both_modes(tmp_path):
    fixtures = Path(__file__).resolve().parent / "fixtures" / "models"
    report = tmp_path / "interleave.json"
    result = run_script("interleave.py", fixtures / "two_class_float.tflite", fixtures / "argmax_uint8.tflite",
                        "--repeats", 2, "--runs", 5, "--threads", 1, "--load-period", 0, "--json", report)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert list(data["modes"]) == ["one after another", "--interleave"]
    for mode in data["modes"].values():
        assert len(mode["ratios"]) == 2 and all(r > 0 for r in mode["ratios"])
        assert mode["min"] <= mode["median"] <= mode["max"]
        assert mode["spread"] == pytest.approx(mode["max"] / mode["min"], rel=1e-3)  # figures rounded to 4 places
    assert "| `--interleave` |" in result.stdout
