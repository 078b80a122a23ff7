"""The documents: rendered tables match the committed results, and the README's examples run as written."""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PHOTO = "data/portrait/val/images/00020.jpg"  # a real photo, as in the set-up command


def load_render():
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = load_render()


# ---------------------------------------------------------------- one source of truth
def test_committed_documents_match_the_committed_results():
    stale = render.stale()
    assert not stale, f"re-render with `python benchmarks/render.py`: {sorted(str(p) for p in stale)}"


def test_every_document_block_is_known_and_every_results_file_is_rendered():
    names = {m.group("name") for doc in render.DOCUMENTS for m in render.MARKER.finditer((ROOT / doc).read_text())}
    assert names <= set(render.BLOCKS), names - set(render.BLOCKS)
    rendered_files = {render.BLOCKS[name][0] for name in names}
    committed = {p.name for p in render.RESULTS.glob("*.json")}
    tracked = subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert {Path(p).name for p in tracked} & committed <= rendered_files | NOT_RENDERED, \
        "a committed results file no document shows"


# Results written by the old print-only scripts' next run: they land in docs when a block is added.
NOT_RENDERED = {f"{name}.json" for name in (
    "portrait_vs_mediapipe", "framing_shift", "stage_profile", "export_formats", "runtime_overhead",
    "cold_start", "prepost", "camvid", "qat_fidelity", "latency_predictor", "search_portrait",
    "proxy_correlation")}


def test_a_changed_result_changes_the_table(tmp_path):
    """The tables come from the JSON, not from the document: edit a figure, the rendering follows."""
    for file in render.RESULTS.glob("*.json"):
        shutil.copy(file, tmp_path / file.name)
    data = json.loads((tmp_path / "refine.json").read_text())
    data["refine"]["on"]["boundary_iou"] = 0.1234
    (tmp_path / "refine.json").write_text(json.dumps(data))
    text = "x\n<!-- results:refine -->\nstale\n<!-- /results:refine -->\ny\n"
    out = render.render_text(text, tmp_path)
    assert "| `--refine` |" in out and "0.1234" in out and "stale" not in out
    assert out.startswith("x\n<!-- results:refine -->\n") and out.endswith("<!-- /results:refine -->\ny\n")
    (tmp_path / "refine.json").unlink()
    assert "python benchmarks/refine.py" in render.render_text(text, tmp_path)  # not measured: says how
    with pytest.raises(ValueError, match="unknown results block 'nope'"):
        render.render_text("<!-- results:nope -->\n<!-- /results:nope -->", tmp_path)


@pytest.mark.parametrize("kind", ["formats", "runtimes", "zoo"])
def test_every_registry_entry_has_its_documented_facts(kind):
    """A new format, runtime or zoo entry fails here until the support matrix / zoo table covers it."""
    from edge_deeplab.converters import FORMATS
    from edge_deeplab.runtimes import RUNTIMES
    from edge_deeplab.zoo import ZOO
    if kind == "formats":
        assert {render.DEPLOYED_ON.get(e.name, e.load().runtime) for e in FORMATS} <= set(render.RUNTIME_PLATFORMS)
    elif kind == "runtimes":
        assert set(RUNTIMES.names()) == set(render.RUNTIME_PLATFORMS)
    else:
        assert set(ZOO.names()) == set(render.ZOO_DATA)


def test_the_support_matrix_follows_the_registries():
    from edge_deeplab.converters import FORMATS
    matrix = render.render_block("support")
    for entry in FORMATS:
        assert f"`{entry.name}`" in matrix
    assert "| `coreml` | `.mlpackage` | `coreml` | needs macOS |" in matrix


# ---------------------------------------------------------------- the README's examples
def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)\n```", README, flags=re.S | re.M)


def commands() -> list[list[str]]:
    """Every `edge-deeplab ...` line of the README's sh blocks after the two set-up commands."""
    lines = [line for block in code_blocks("sh")[2:] for line in block.replace("\\\n", " ").splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("edge-deeplab ")]


# Examples not run in the fast tier, and why. Training and search take CPU-hours (tests/test_train.py and
# tests/test_search.py run the same code on tiny models); the others read a previous recipe step's output.
NOT_RUN = {"train": "trains for CPU-hours", "search": "trains 30 proxy models",
           "runs/mine": "needs the recipe's training run", "exported/*.tflite": "needs the recipe's export"}
SLOW = {"evaluate": "scores all 150 photos of portrait/val"}


def tier(args: list[str]) -> tuple[str, str]:
    for word in (args[0], *args[1:]):
        if word in NOT_RUN:
            return "parse", NOT_RUN[word]
    return ("slow", SLOW[args[0]]) if args[0] in SLOW else ("run", "")


@pytest.fixture
def examples(tmp_path, shared):
    """The README's stand-in files, made from real photos: photo.jpg, photos/, backdrop.jpg, clip.mp4."""
    photos = sorted((shared("data/portrait/val/images")).glob("*.jpg"))[:3]
    shutil.copy(shared(PHOTO), tmp_path / "photo.jpg")
    shutil.copy(photos[1], tmp_path / "backdrop.jpg")
    (tmp_path / "photos").mkdir()
    for photo in photos[:2]:
        shutil.copy(photo, tmp_path / "photos" / photo.name)
    if importlib.util.find_spec("av"):
        from video_clips import make_clip
        frames = [np.asarray(Image.open(p).convert("RGB").resize((96, 128))) for p in photos]
        make_clip(tmp_path / "clip.mp4", frames * 2)
    return tmp_path


def localized(args: list[str]) -> list[str]:
    """Paths that exist from the repo root (configs, ../shared, assets) made absolute; the rest as written
    (run in the examples folder, where the stand-in inputs are and the outputs go)."""
    return [str((ROOT / a).resolve()) if not a.startswith("-") and (ROOT / a).exists() else a for a in args]


def test_the_readme_has_examples_of_every_command():
    verbs = {args[0] for args in commands()}
    assert {"segment", "benchmark", "evaluate", "export", "train", "search", "models"} <= verbs, verbs


@pytest.mark.parametrize("args", commands(), ids=lambda a: " ".join(a)[:60])
def test_readme_command_parses_and_names_real_inputs(args):
    """Every example's options exist (click parses them) and its config and data folders exist."""
    command = main.commands[args[0]]
    command.make_context(args[0], localized(args[1:]))
    for flag, value in zip(args, args[1:]):
        if flag in ("--config", "--data", "--val", "--calibration", "--background") and "backdrop" not in value:
            assert (ROOT / value).exists(), f"{flag} {value}"
    if args[0] == "train":
        from edge_deeplab.train.config import TrainingSpec
        TrainingSpec.load(ROOT / args[args.index("--config") + 1])


@pytest.mark.parametrize("args", [a for a in commands() if tier(a)[0] == "run"], ids=lambda a: " ".join(a)[:60])
def test_readme_command_runs(args, examples, monkeypatch):
    if any(a.endswith(".mp4") for a in args) and not (examples / "clip.mp4").exists():
        pytest.skip("PyAV not installed (edge-deeplab[video])")
    monkeypatch.chdir(examples)
    result = CliRunner().invoke(main, localized(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = args[args.index("--out") + 1] if "--out" in args else args[args.index("--json") + 1] if "--json" in args else None
    if out:
        assert (examples / out).exists(), out


@pytest.mark.slow
@pytest.mark.parametrize("args", [a for a in commands() if tier(a)[0] == "slow"], ids=lambda a: " ".join(a)[:60])
def test_readme_slow_command_runs(args, examples, monkeypatch):
    """Slow: see SLOW for each one's reason."""
    monkeypatch.chdir(examples)
    result = CliRunner().invoke(main, localized(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_readme_python_example_runs(examples, monkeypatch):
    code = "\n".join(code_blocks("python"))  # the photo block, then the video block using its `seg`
    if not (examples / "clip.mp4").exists():
        pytest.skip("PyAV not installed (edge-deeplab[video])")
    monkeypatch.chdir(examples)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[0].startswith("(") and len(lines) > 2  # the labels' shape, then one line per frame
    photo = Image.open("photo.jpg")
    assert Image.open("blurred.jpg").size == photo.size and Image.open("person.png").mode == "RGBA"


@pytest.mark.slow
def test_readme_setup_command_runs_as_written(tmp_path, shared):
    """Slow: a fresh venv and `pip install .` from the package index (minutes, network)."""
    setup = code_blocks("sh")[0]
    shared(PHOTO)
    work = tmp_path / "repo"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", "build", "runs", "*.egg-info", ".git"))
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    done = subprocess.run(["bash", "-c", setup], cwd=work, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(work / "out" / "00020.jpg").size == Image.open(ROOT.parent / "shared" / PHOTO).size


# ---------------------------------------------------------------- every benchmark writes JSON
SCRIPTS = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in ("render", "results_io"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_script_writes_json_under_results(script):
    source = script.read_text()
    assert "json_option(parser, __file__)" in source or f'"{script.stem}.json"' in source, \
        f"{script.name}: give it a --json defaulting to benchmarks/results/{script.stem}.json (results_io)"


def test_results_io_defaults_to_the_scripts_file_and_writes_whole_files(tmp_path):
    import argparse
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import results_io
    finally:
        sys.path.pop(0)
    parser = argparse.ArgumentParser()
    results_io.json_option(parser, "/somewhere/stage_profile.py")
    assert Path(parser.parse_args([]).json) == ROOT / "benchmarks" / "results" / "stage_profile.json"
    assert parser.parse_args(["--json", ""]).json == ""
    results_io.write_json("", {"a": 1})  # '' writes nothing
    results_io.write_json(tmp_path / "new" / "r.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "new" / "r.json").read_text()) == {"a": [1, 2]}


def test_people_results_fill_the_zoo_and_people_tables(tmp_path):
    """people.json as benchmarks/people.py writes it: the zoo rows of the shipped files take its figures."""
    def model(name, iou, ratio, size):
        sets = {"portrait/val": {"person_iou": iou, "miou": iou, "boundary_iou": 0.5, "images": 150},
                "people/val": {"person_iou": iou - 0.1, "miou": iou, "boundary_iou": 0.4, "images": 115}}
        refined = {name: {**scores, "person_iou": scores["person_iou"] + 0.01} for name, scores in sets.items()}
        return {"model": name, "path": name, "input": "192x192 float32", "sets": sets, "refined": refined,
                "latency_ms": {"p50": 2.0 * ratio, "p90": 3.0, "runs": 500},
                "p50_ratio_to_mediapipe_selfie": ratio, "size_mb": size}
    data = {"threads": 2, "models": [model("default", 0.95, 0.9, 3.12),
                                     model("portrait_int8", 0.94, 0.6, 1.13),
                                     model("portrait_landscape", 0.93, 0.8, 2.14),
                                     model("edge_deeplab/assets/portrait_landscape_int8.tflite", 0.92, 0.5, 0.8),
                                     model("mediapipe selfie", 0.96, 1.0, 0.25)]}
    (tmp_path / "people.json").write_text(json.dumps(data))
    zoo = render.render_text("<!-- results:zoo -->\n<!-- /results:zoo -->", tmp_path)
    assert "| `portrait` | 208x208 | 3.12 | 0.950 / 0.850 | 0.90 |" in zoo
    assert "| `portrait_int8` | 208x208 | 1.13 | 0.940 / 0.840 | 0.60 | as `portrait` |" in zoo
    assert "| `portrait_landscape` | 160x288 | 2.14 | 0.930 / 0.830 | 0.80 |" in zoo
    assert "| `portrait_landscape_int8` | 160x288 | 0.80 | 0.920 / 0.820 | 0.50 | as `portrait_landscape` |" in zoo
    assert "portrait_tall_int8" not in zoo  # not measured in this people.json
    assert "| `camvid` | 288x384 | - | - | - |" in zoo
    people = render.render_text("<!-- results:people -->\n<!-- /results:people -->", tmp_path)
    assert ("| default (fp32, aspect-matched) | 192x192 float32 | 0.9500 | 0.8500 | 0.9600 | 0.8600 | 1.80 | 0.90 "
            "| 3.12 |") in people
    summary = render.render_text("<!-- results:people_summary -->\n<!-- /results:people_summary -->", tmp_path)
    assert "| default (fp32, aspect-matched) | 0.950 | 0.850 | 0.960 | 0.860 | 0.90 |" in summary
    assert "| mediapipe selfie |" in people and "2 threads" in people
