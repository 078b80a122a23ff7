"""``segment``'s outputs: formats per mode, --out as a file, matte/cutout, --strength, --refine."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import edge_deeplab
from edge_deeplab.cli import main
from edge_deeplab.datasets import list_pairs, load_mask
from edge_deeplab.refine import refine_alpha

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
TWO_CLASS = str(FIXTURES / "two_class_float.tflite")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def photo(path: Path, height: int = 60, width: int = 90) -> Path:
    """Left half dark (class 0 for the fixture model), right half bright with texture (class 1)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    image[:, width // 2:] += 190
    Image.fromarray(image).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(image).save(path)
    return path


def one_error_line(result, *words):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("suffix,mode,written,fmt", [
    (".jpg", "blur", ".jpg", "JPEG"), (".jpg", "overlay", ".jpg", "JPEG"), (".jpg", "replace", ".jpg", "JPEG"),
    (".png", "blur", ".png", "PNG"), (".bmp", "overlay", ".png", "PNG"),
    (".jpg", "mask", ".png", "PNG"), (".jpg", "matte", ".png", "PNG"), (".jpg", "cutout", ".png", "PNG")])
def test_output_format_follows_the_input_and_mode(tmp_path, suffix, mode, written, fmt):
    extra = ["--background", photo(tmp_path / "bg.png")] if mode == "replace" else []
    result = run("segment", TWO_CLASS, photo(tmp_path / f"one{suffix}"), "--mode", mode, "--out", tmp_path / "o",
                 *extra)
    assert result.exit_code == 0, result.output
    assert os.listdir(tmp_path / "o") == [f"one{written}"]
    with Image.open(tmp_path / "o" / f"one{written}") as image:
        assert image.format == fmt and image.size == (90, 60)
        assert image.mode == {"mask": "L", "matte": "L", "cutout": "RGBA"}.get(mode, "RGB")


@pytest.mark.parametrize("name,mode", [("result.jpg", "blur"), ("result.png", "blur"), ("mask.png", "mask"),
                                       ("cut.png", "cutout")])
def test_out_with_an_image_suffix_writes_exactly_that_file(tmp_path, name, mode):
    source = photo(tmp_path / "in.jpg")
    result = run("segment", TWO_CLASS, source, "--mode", mode, "--out", tmp_path / name)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == sorted(["in.jpg", name])  # no folder, no stray temp file
    with Image.open(tmp_path / name) as image:
        assert image.format == ("JPEG" if name.endswith(".jpg") else "PNG") and image.size == (90, 60)


def test_out_naming_an_existing_folder_stays_a_folder(tmp_path):
    (tmp_path / "looks_like.jpg").mkdir()
    result = run("segment", TWO_CLASS, photo(tmp_path / "in.png"), "--out", tmp_path / "looks_like.jpg")
    assert result.exit_code == 0 and os.listdir(tmp_path / "looks_like.jpg") == ["in.png"]


@pytest.mark.parametrize("case,words", [
    ("two inputs", ("names one output file", "2 inputs")),
    ("a folder", ("names one output file", "a folder")),
    ("image to mp4", ("names a video file", "is an image")),
    ("mask to jpg", ("--mode mask writes PNG", ".png")),
    ("bmp", ("cannot write .bmp",))])
def test_out_file_misuse_is_one_error_line_and_nothing_written(tmp_path, case, words):
    folder = tmp_path / "photos"
    folder.mkdir()
    first, second = photo(folder / "a.jpg"), photo(folder / "b.jpg")
    inputs, mode, out = {"two inputs": ([first, second], "blur", "r.jpg"), "a folder": ([folder], "blur", "r.jpg"),
                         "mask to jpg": ([first], "mask", "r.jpg"), "bmp": ([first], "blur", "r.bmp"),
                         "image to mp4": ([first], "blur", "r.mp4")}[case]
    result = run("segment", TWO_CLASS, *inputs, "--mode", mode, "--out", tmp_path / out)
    one_error_line(result, *words)
    assert sorted(os.listdir(tmp_path)) == ["photos"] and sorted(os.listdir(folder)) == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize("refine", [False, True])
def test_matte_and_cutout_are_the_models_alpha(tmp_path, refine):
    source = photo(tmp_path / "in.png")
    image = np.asarray(Image.open(source).convert("RGB"))
    alpha = edge_deeplab.load(TWO_CLASS)(image).raw_alpha
    expected = refine_alpha(image, alpha) if refine else alpha
    flag = "--refine" if refine else "--no-refine"
    for mode in ("matte", "cutout"):
        assert run("segment", TWO_CLASS, source, "--mode", mode, flag, "--out", tmp_path / mode).exit_code == 0
    matte = np.asarray(Image.open(tmp_path / "matte" / "in.png"))
    cutout = np.asarray(Image.open(tmp_path / "cutout" / "in.png"))
    assert matte.shape == (60, 90) and np.array_equal(matte, expected)
    assert np.array_equal(cutout[..., 3], expected) and np.array_equal(cutout[..., :3], image)


@pytest.mark.parametrize("args,words", [
    (["--mode", "blur", "--strength", "0"], ("--strength", "0 < strength <= 0.25")),
    (["--mode", "blur", "--strength", "3"], ("--strength", "fraction of the image's longer side")),
    (["--mode", "blur", "--strength", "x"], ("--strength", "not a valid float")),
    (["--mode", "overlay", "--strength", "0.05"], ("--strength is only used with --mode blur",))])
def test_strength_is_validated(tmp_path, args, words):
    result = run("segment", TWO_CLASS, photo(tmp_path / "in.jpg"), *args, "--out", tmp_path / "o")
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    for word in words:
        assert word in result.output, result.output


def test_strength_changes_the_blur(tmp_path):
    source = photo(tmp_path / "in.png", 120, 160)
    for strength in ("0.01", "0.2"):
        run("segment", TWO_CLASS, source, "--mode", "blur", "--strength", strength, "--out", tmp_path / strength)
    weak, strong = (np.asarray(Image.open(tmp_path / s / "in.png"), np.float32)[:, :60] for s in ("0.01", "0.2"))
    assert strong.std() < weak.std()  # the background (left) is flatter under the stronger blur


def test_default_model_blur_keeps_the_person_sharp_and_blurs_the_rest(tmp_path, shared):
    """As tests/test_examples.py checks the example, through ``segment`` on real val photos."""
    from test_examples import detail_kept
    pairs = list_pairs(shared("data/portrait/val"))[:3]
    result = run("segment", "default", *(pair.image for pair in pairs), "--mode", "blur", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for pair in pairs:
        before = np.asarray(Image.open(pair.image).convert("RGB"), np.float32)
        after = np.asarray(Image.open(tmp_path / pair.image.name).convert("RGB"), np.float32)  # JPEG in, JPEG out
        person = load_mask(pair.mask) == 1
        assert after.shape == before.shape
        assert detail_kept(before, after, ~person) < 0.6 and detail_kept(before, after, person) > 0.85


def test_api_results_refine_stills_by_default_and_not_stream_frames(tmp_path):
    image = np.asarray(Image.open(photo(tmp_path / "in.png")).convert("RGB"))
    seg = edge_deeplab.load(TWO_CLASS)
    still = seg(image)
    frames = [list(seg.stream([image], smooth=smooth))[0] for smooth in (True, False)]
    assert still.refine and not any(frame.refine for frame in frames)
    refined = refine_alpha(image, still.raw_alpha)
    # A still's labels and alpha are the refined ones (what `segment --mode mask` writes), a frame's the model's.
    assert np.array_equal(still.alpha, refined) and np.array_equal(still.labels, (refined >= 128).view(np.uint8))
    assert np.array_equal(frames[1].alpha, still.raw_alpha) and np.array_equal(frames[1].labels, still.raw_labels)
    assert np.array_equal(seg(image, refine=False).labels, still.raw_labels)
    assert np.array_equal(np.asarray(still.matte(image)), refined)
    cut = still.cutout(image)
    assert cut.mode == "RGBA" and np.array_equal(np.asarray(cut)[..., 3], refined)
    assert np.array_equal(np.asarray(still.matte(image, refine=False)), still.raw_alpha)
    from edge_deeplab import effects
    assert np.array_equal(np.asarray(still.blur(image, refine=False, strength=0.05)),
                          effects.blur_background(image, still.raw_alpha, 0.05))


def test_refined_mask_follows_the_refined_alpha(tmp_path):
    source = photo(tmp_path / "in.png")
    image = np.asarray(Image.open(source).convert("RGB"))
    alpha = edge_deeplab.load(TWO_CLASS)(image, refine=False).alpha
    for flag in ("--refine", "--no-refine"):
        assert run("segment", TWO_CLASS, source, flag, "--out", tmp_path / flag).exit_code == 0
    refined = np.asarray(Image.open(tmp_path / "--refine" / "in.png"))
    plain = np.asarray(Image.open(tmp_path / "--no-refine" / "in.png"))
    assert np.array_equal(refined, (refine_alpha(image, alpha) >= 128).view(np.uint8))
    assert np.array_equal(plain, (alpha >= 128).view(np.uint8))


@pytest.mark.parametrize("command,option,make,words", [
    ("segment", "--out", lambda p: p.write_text("x") and p / "", ("is an existing file, not a folder",)),
    ("segment", "--out", lambda p: p.write_text("x") and p / "out.png", ("is a file, not a folder",)),
    ("evaluate", "--json", lambda p: p.write_text("x") and p / "e.json", ("is a file, not a folder",)),
    ("evaluate", "--json", lambda p: p.mkdir() or p, ("is a folder; name a file",)),
    ("benchmark", "--csv", lambda p: p.write_text("x") and p / "deeper" / "b.csv", ("is a file, not a folder",)),
    ("export", "--out", lambda p: p.write_text("x") and p, ("is an existing file, not a folder",)),
])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, command, option, make, words):
    target = make(tmp_path / "taken")
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    photo(data / "images" / "a.png")
    Image.fromarray(np.zeros((60, 90), np.uint8)).save(data / "masks" / "a.png")
    args = {"segment": [TWO_CLASS, data / "images" / "a.png"], "evaluate": [TWO_CLASS, "--data", data],
            "benchmark": [TWO_CLASS, "--runs", 1], "export": ["portrait", "--format", "tflite"]}[command]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run(command, *args, option, target)
    one_error_line(result, option, *words)
    assert "ms" not in result.stdout  # nothing was segmented, timed or exported first
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
