"""The Python API (edge_deeplab.load): images in, results out; streams with temporal smoothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import edge_deeplab
from edge_deeplab.errors import BadImageError, BadModelError, ConfigError, DatasetError
from edge_deeplab.temporal import Smoothing, TemporalSmoother

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
README = Path(__file__).resolve().parents[1] / "README.md"
# Fixture models (tests/fixtures/make_fixtures.py) by output kind: 2-class logits, one logit channel,
# 3-class int8 logits, fused argmax labels.
SCORING = ["two_class_float.tflite", "metadata_logit.tflite", "int8_logits.tflite"]
ALL = [*SCORING, "argmax_uint8.tflite"]


def stripes(height: int = 61, width: int = 93) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 2:] = 224  # left dark (class 0), right bright (class 1)
    return image


def flicker(labels: list[np.ndarray]) -> float:
    return float(np.mean([(a != b).mean() for a, b in zip(labels, labels[1:])]))


@pytest.fixture(scope="module")
def seg():
    return edge_deeplab.load(FIXTURES / "two_class_float.tflite")


def test_import_is_cheap_and_load_never_imports_tensorflow():
    code = ("import sys, numpy as np, edge_deeplab\n"
            "assert 'edge_deeplab.api' not in sys.modules and 'PIL' not in sys.modules\n"
            "seg = edge_deeplab.load('default')\n"
            "r = seg(np.zeros((40, 30, 3), np.uint8))\n"
            "r.blur(np.zeros((40, 30, 3), np.uint8))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'av')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names():
    assert {"load", "evaluate", "ImageSegmenter", "Result", "Smoothing"} <= set(dir(edge_deeplab))
    with pytest.raises(AttributeError):
        edge_deeplab.not_a_name


def test_bad_input_raises_the_package_error_an_app_can_catch(seg):
    assert edge_deeplab.DatasetError is DatasetError and issubclass(BadImageError, edge_deeplab.EdgeDeeplabError)
    photo = stripes()
    result = seg(photo)
    for bad in (lambda: edge_deeplab.load("absent.tflite"), lambda: seg(b"not a photo"),
                lambda: edge_deeplab.evaluate(seg, "absent-folder", show_progress=False),
                lambda: edge_deeplab.load("portrait", input_range="0,2"),
                lambda: result.overlay(photo, opacity=2), lambda: seg.frame_step(smooth="yes"),
                lambda: edge_deeplab.load("default").variant_for(0, 10)):
        with pytest.raises(edge_deeplab.EdgeDeeplabError):
            bad()


def test_overlay_takes_refine_as_the_other_effects_do(seg):
    photo = stripes()
    result = seg(photo)
    assert np.array_equal(np.asarray(result.overlay(photo, refine=False)),
                          np.asarray(seg(photo, refine=False).overlay(photo)))
    assert np.array_equal(np.asarray(result.overlay(photo)), np.asarray(result.overlay(photo, refine=True)))


def test_pil_and_array_give_the_same_labels_at_the_image_size(seg):
    image = stripes()
    from_array, from_pil = seg(image), seg(Image.fromarray(image))
    assert from_array.labels.shape == (61, 93) and from_array.labels.dtype == np.uint8
    assert (from_array.labels[:, :40] == 0).all() and (from_array.labels[:, 50:] == 1).all()
    np.testing.assert_array_equal(from_array.labels, from_pil.labels)
    # A grey or RGBA PIL image is converted like a file would be.
    assert seg(Image.fromarray(image).convert("L")).labels.shape == (61, 93)
    assert seg(Image.fromarray(image).convert("RGBA")).labels.shape == (61, 93)
    assert from_array.model_ms > 0


@pytest.mark.parametrize("name", ALL)
def test_alpha_is_the_soft_foreground_of_the_labels(name):
    result = edge_deeplab.load(FIXTURES / name)(stripes())
    assert result.alpha.shape == (61, 93) and result.alpha.dtype == np.uint8
    # Where the model is sure (far from the stripe edge), alpha says foreground exactly where labels do.
    inside = np.zeros((61, 93), bool)
    inside[:, :30] = inside[:, 63:] = True
    np.testing.assert_array_equal((result.alpha >= 128)[inside], (result.labels != 0)[inside])


@pytest.mark.parametrize("as_pil", [False, True])
def test_effects_return_pil_images_of_the_image_size(seg, as_pil):
    image = stripes()
    given = Image.fromarray(image) if as_pil else image
    result = seg(given)
    backdrop = np.full((20, 300, 3), (0, 128, 255), np.uint8)  # any size: cover-fitted
    for picture in (result.blur(given), result.replace(given, backdrop), result.overlay(given)):
        assert isinstance(picture, Image.Image) and picture.size == (93, 61) and picture.mode == "RGB"
    replaced = np.asarray(result.replace(given, backdrop))
    assert np.abs(replaced[30, 5].astype(int) - (0, 128, 255)).max() <= 2  # background replaced
    np.testing.assert_array_equal(replaced[30, 88], image[30, 88])  # foreground kept
    assert result.mask().size == (93, 61)


def test_a_wrong_image_is_one_clear_error(seg):
    result = seg(stripes())
    with pytest.raises(BadImageError, match="93x61 image"):
        result.blur(stripes(30, 30))
    with pytest.raises(BadImageError, match="uint8"):
        seg(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(BadImageError, match="shape"):
        seg(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(BadImageError, match="PIL image or a numpy array"):
        seg("photo.jpg")


def test_load_takes_zoo_names_and_says_what_is_wrong():
    assert edge_deeplab.load("portrait").class_names == ["background", "person"]
    with pytest.raises(BadModelError, match="export it first"):
        edge_deeplab.load("camvid")
    with pytest.raises(BadModelError, match="not found"):
        edge_deeplab.load("absent.tflite")


def noisy_frames(count: int = 12, seed: int = 0) -> list[np.ndarray]:
    """A still scene whose brightness ramps across the decision thresholds, with fresh sensor noise per frame."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 64)[None, :, None]
    return [np.clip(ramp + rng.normal(0, 60, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(count)]


@pytest.mark.parametrize("name", ALL)
def test_stream_yields_one_result_per_frame(name):
    seg = edge_deeplab.load(FIXTURES / name)
    frames = noisy_frames(5)
    for smooth in (True, False):
        results = list(seg.stream(iter(frames), smooth=smooth))  # any iterable, consumed lazily
        assert len(results) == 5 and all(r.labels.shape == (48, 64) for r in results)
    plain = list(seg.stream(frames, smooth=False))
    for frame, result in zip(frames, plain):  # no smoothing = each frame on its own, unrefined
        np.testing.assert_array_equal(result.labels, seg(frame, refine=False).labels)


@pytest.mark.parametrize("name", SCORING)
def test_smoothing_reduces_flicker_on_a_noisy_sequence(name):
    seg = edge_deeplab.load(FIXTURES / name)
    frames = noisy_frames()
    plain = flicker([r.labels for r in seg.stream(frames, smooth=False)])
    smooth = flicker([r.labels for r in seg.stream(frames)])
    assert plain > 0.02, plain  # the sequence does flicker
    assert smooth < 0.6 * plain, (plain, smooth)


def test_smoothing_follows_a_real_change_at_once():
    """A step from sure background to sure foreground is followed in the same frame (no lag)."""
    smoother = TemporalSmoother()
    background, person = np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), np.float32)
    background[0], person[1] = 0.95, 0.95
    background[1], person[0] = 0.05, 0.05
    assert (smoother.update(background, 8, 8).labels == 0).all()
    assert (smoother.update(person, 8, 8).labels == 1).all()
    # A frame of another size starts afresh instead of failing.
    assert smoother.update(np.stack([np.ones((2, 2)), np.zeros((2, 2))]), 5, 3).labels.shape == (3, 5)


def test_moving_hysteresis_lets_a_moving_edge_through_sooner():
    """A pixel moving from p=0.3 to 0.8: the smoothed 0.65 stays background under the full 0.2 margin,
    and turns person when the margin shrinks with the motion (0.5 of 0.8: 3/8 of the margin left)."""
    def second_frame_labels(moving: bool) -> np.ndarray:
        smoother = TemporalSmoother(Smoothing(rate=0.2, motion=0.8, hysteresis=0.2, moving_hysteresis=moving))
        for person in (0.3, 0.8):
            planes = np.stack([np.full((4, 4), 1 - person), np.full((4, 4), person)]).astype(np.float32)
            labels = smoother.update(planes, 4, 4).labels
        return labels
    assert (second_frame_labels(False) == 0).all()
    assert (second_frame_labels(True) == 1).all()


@pytest.mark.parametrize("field,value", [("rate", 0.0), ("rate", 1.5), ("motion", -1), ("hysteresis", 0.7),
                                         ("rate", True), ("moving_hysteresis", 1), ("hysteresis", -0.1),
                                         ("motion", float("nan"))])
def test_bad_smoothing_parameters_say_the_range(field, value):
    with pytest.raises(ConfigError, match=field):
        Smoothing(**{field: value})


def test_smoothing_takes_numpy_numbers_and_names_a_wrong_type():
    assert Smoothing(rate=np.float32(0.3), motion=np.float64(0.5), hysteresis=np.int64(0)).rate == np.float32(0.3)
    with pytest.raises(ConfigError, match="expected a number, got str"):
        Smoothing(rate="0.2")
    with pytest.raises(ConfigError, match="expected a number, got NoneType"):
        Smoothing(motion=None)


def test_hysteresis_zero_turns_it_off():
    """A pixel at p=0.45 after p=0.55 (no motion to speak of): kept as person under the default margin,
    background with hysteresis 0, as the smoothed probability says."""
    def second_frame_labels(smoothing: Smoothing) -> np.ndarray:
        smoother = TemporalSmoother(smoothing)
        for person in (0.55, 0.45):
            planes = np.stack([np.full((4, 4), 1 - person), np.full((4, 4), person)]).astype(np.float32)
            labels = smoother.update(planes, 4, 4).labels
        return labels
    assert (second_frame_labels(Smoothing(rate=1.0)) == 1).all()
    assert (second_frame_labels(Smoothing(rate=1.0, hysteresis=0)) == 0).all()


def test_a_frame_of_another_size_starts_afresh_even_at_the_same_model_resolution():
    """One model, a rotated camera: the probability map keeps its shape, the frame does not."""
    def planes(person: float) -> np.ndarray:
        return np.stack([np.full((4, 4), 1 - person), np.full((4, 4), person)]).astype(np.float32)
    smoother = TemporalSmoother()
    smoother.update(planes(0.9), 100, 50)
    rotated = smoother.update(planes(0.4), 50, 100)
    fresh = TemporalSmoother().update(planes(0.4), 50, 100)
    np.testing.assert_array_equal(rotated.labels, fresh.labels)
    np.testing.assert_array_equal(rotated.alpha, fresh.alpha)
    assert (rotated.labels == 0).all()
    # The same size again keeps smoothing: p=0.9 after 0.4 is not taken whole.
    fresh_high = TemporalSmoother().update(planes(0.9), 50, 100)
    assert smoother.update(planes(0.9), 50, 100).alpha.mean() < fresh_high.alpha.mean()


def test_a_labels_only_model_is_smoothed_too():
    """A fused-argmax model (the shipped int8 files): its labels go to the smoother as hard probabilities,
    so the hysteresis steadies them; smooth=False and the Smoothing given still matter."""
    seg = edge_deeplab.load(FIXTURES / "argmax_uint8.tflite")
    assert seg.core.output.kind == "labels"
    frames = noisy_frames()
    plain = [r.labels for r in seg.stream(frames, smooth=False)]
    smooth = [r.labels for r in seg.stream(frames)]
    assert flicker(smooth) < 0.8 * flicker(plain), (flicker(plain), flicker(smooth))
    off = [r.labels for r in seg.stream(frames, smooth=Smoothing(hysteresis=0))]
    assert any((a != b).any() for a, b in zip(smooth, off))
    assert all(set(np.unique(labels)) <= {0, 1, 2} for labels in smooth)  # the classes stay


def test_refining_a_smoothed_multiclass_frame_keeps_its_classes():
    seg = edge_deeplab.load(FIXTURES / "int8_logits.tflite")
    image = noisy_frames(1)[0]
    for smooth in (True, False):
        result = next(seg.stream([image], smooth=smooth))
        assert set(np.unique(result.labels)) == {0, 1, 2}
        np.testing.assert_array_equal(result.refined(image).labels, result.labels)
        assert result.refined(image).alpha.shape == (48, 64)


def test_a_labels_only_model_of_unnamed_classes_is_not_refined_into_two():
    """A fused-argmax model that names no classes may have more than two: refining would merge them."""
    seg = edge_deeplab.load(FIXTURES / "argmax_uint8.tflite")
    image = noisy_frames(1)[0]
    refined, own = seg(image), seg(image, refine=False)
    assert set(np.unique(own.labels)) == {0, 1, 2}
    np.testing.assert_array_equal(refined.labels, own.labels)
    # Declared two-class (``labels=``, ``--labels`` on the CLI), its alpha's edges are refined again.
    two = edge_deeplab.load(FIXTURES / "argmax_uint8.tflite", labels=["background", "person"])
    assert two.one_foreground and set(np.unique(two(image).labels)) <= {0, 1}


def test_readme_python_example_runs(tmp_path, shared):
    """The README's "Python API" block, run as written on a val photo."""
    text = README.read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    photo = shared("data/portrait/val/images")
    image = sorted(photo.iterdir())[0]
    (tmp_path / "photo.jpg").write_bytes(image.read_bytes())
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "blurred.jpg").size == Image.open(image).size


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    image = stripes()
    Image.fromarray(image).save(tmp_path / "data" / "images" / "a.png")
    Image.fromarray((image[..., 0] > 100).astype(np.uint8)).save(tmp_path / "data" / "masks" / "a.png")
    return tmp_path / "data"


@pytest.mark.parametrize("command", ["segment", "benchmark", "evaluate"])
def test_zoo_names_work_wherever_model_is_accepted(command, tiny_dataset, tmp_path):
    from click.testing import CliRunner
    from edge_deeplab.cli import main
    args = {"segment": [str(tiny_dataset / "images" / "a.png"), "--out", str(tmp_path / "out")],
            "benchmark": ["--warmup", "1", "--runs", "2", "--json", str(tmp_path / "b.json")],
            "evaluate": ["--data", str(tiny_dataset), "--json", str(tmp_path / "e.json")]}[command]
    result = CliRunner().invoke(main, [command, "portrait", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    if command == "segment":
        assert Image.open(tmp_path / "out" / "a.png").size == (93, 61)
    else:
        report = json.loads((tmp_path / f"{command[0]}.json").read_text())
        assert (report[0] if command == "benchmark" else report)["model"] == "portrait"
    failed = CliRunner().invoke(main, [command, "camvid", *args], catch_exceptions=False)
    assert failed.exit_code == 1 and "export it first" in failed.stderr + failed.stdout


def test_evaluate_is_a_library_function(tiny_dataset):
    report = edge_deeplab.evaluate(FIXTURES / "two_class_float.tflite", tiny_dataset, show_progress=False)
    assert report["images"] == 1 and report["iou"][1] > 0.9 and report["runtime"] == "litert"
    loaded = edge_deeplab.load(FIXTURES / "two_class_float.tflite")  # a loaded segmenter works too
    assert edge_deeplab.evaluate(loaded, tiny_dataset, show_progress=False)["iou"] == report["iou"]


@pytest.mark.parametrize("refine", [True, False])
def test_evaluate_scores_the_masks_segment_writes(shared, tmp_path, refine):
    """Refined (the default, as `segment` writes a photo's mask) or the model's own (--no-refine)."""
    from click.testing import CliRunner
    from edge_deeplab.cli import main
    from edge_deeplab.datasets import list_pairs, load_mask
    from edge_deeplab.metrics import SegmentationMetrics
    data = tmp_path / "val"
    for pair in list_pairs(shared("data/people/val"))[::40]:
        for kind, path in (("images", pair.image), ("masks", pair.mask)):
            (data / kind).mkdir(parents=True, exist_ok=True)
            (data / kind / path.name).write_bytes(path.read_bytes())
    flag = "--refine" if refine else "--no-refine"
    out = CliRunner().invoke(main, ["segment", "portrait", str(data / "images"), flag, "--out", str(tmp_path / "m")])
    assert out.exit_code == 0, out.output
    metrics = SegmentationMetrics(num_classes=2)
    for pair in list_pairs(data):
        metrics.update(np.asarray(Image.open(tmp_path / "m" / f"{pair.image.stem}.png")), load_mask(pair.mask))
    report = edge_deeplab.evaluate("portrait", data, show_progress=False, refine=refine)
    assert report["refine"] is refine and report["images"] == 3
    assert report["iou"] == metrics.summary()["iou"]


@pytest.fixture(scope="module")
def default_family():
    return edge_deeplab.load("default"), {name: edge_deeplab.load(name)
                                           for name in ("portrait", "portrait_landscape", "portrait_tall")}


@pytest.mark.parametrize("size, variant", [
    ((854, 480), "portrait_landscape"), ((640, 480), "portrait_landscape"), ((1000, 700), "portrait_landscape"),
    ((480, 480), "portrait"), ((600, 800), "portrait"), ((480, 640), "portrait"), ((700, 600), "portrait"),
    ((270, 480), "portrait_tall"), ((1080, 1920), "portrait_tall"), ((500, 700), "portrait_tall")])
def test_default_runs_each_photo_on_the_variant_of_nearest_aspect(default_family, size, variant):
    default, single = default_family
    assert isinstance(default, edge_deeplab.AspectMatchedSegmenter) and default.model == "default"
    assert default.variant_for(*size).model == variant
    image = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image[size[1] // 4:, size[0] // 3: 2 * size[0] // 3] = (200, 150, 120)  # a flat block: not all noise
    expected = single[variant](image).labels
    np.testing.assert_array_equal(default(image).labels, expected)


def test_a_default_stream_keeps_its_variant_while_the_frame_size_stays(default_family):
    default, single = default_family
    frames = [np.full((360, 640, 3), 40 * i, np.uint8) for i in range(1, 4)]
    got = [r.labels for r in default.stream(frames)]
    expected = [r.labels for r in single["portrait_landscape"].stream(frames)]
    assert all(g.shape == (360, 640) for g in got)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    # The family reports its first (square) variant's engine: what `benchmark default` times.
    assert tuple(default.engine.inputs[0].shape[1:3]) == (208, 208) and default.core.input.width == 208


@pytest.mark.parametrize("size, variant", [((854, 480), "portrait_landscape_int8"), ((600, 800), "portrait_int8"),
                                           ((1080, 1920), "portrait_tall_int8")])
def test_default_int8_runs_each_photo_on_the_int8_file_of_nearest_aspect(size, variant):
    default = edge_deeplab.load("default_int8")
    assert [v.model for v in default.variants] == ["portrait_tall_int8", "portrait_int8", "portrait_landscape_int8"]
    assert all(v.engine.inputs[0].dtype == np.uint8 for v in default.variants)
    chosen = default.variant_for(*size)
    assert chosen.model == variant
    image = np.random.default_rng(sum(size)).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    np.testing.assert_array_equal(default(image).labels, edge_deeplab.load(variant)(image).labels)


@pytest.mark.parametrize("name", ["portrait_int8", "portrait_landscape_int8", "portrait_tall_int8"])
def test_an_int8_zoo_name_loads_its_packaged_int8_file(name):
    from edge_deeplab.zoo import ZOO
    seg = edge_deeplab.load(name)
    assert Path(seg.engine.path).name == ZOO.get(name.removesuffix("_int8")).meta["int8_artifact"]
    assert seg.engine.inputs[0].dtype == np.uint8


@pytest.mark.parametrize("name", ["portrait_selfie_int8"])
def test_a_zoo_model_without_an_int8_file_says_how_to_export_one(name):
    with pytest.raises(BadModelError, match="ships no int8 file; export one .*--format tflite-int8"):
        edge_deeplab.load(name)


def test_a_default_stream_repicks_the_variant_when_the_frame_size_changes(default_family, shared):
    """A phone turned from portrait to landscape: the landscape frames run on the 16:9 file, smoothed afresh."""
    default, single = default_family
    from edge_deeplab.imaging import load_image
    wide = [load_image(path) for path in sorted(shared("data/people/val/images").glob("hike_*.jpg"))[:2]]
    tall = [np.ascontiguousarray(np.rot90(wide[0]))]
    got = [r.labels for r in default.stream(tall + wide)]
    expected = [r.labels for r in single["portrait_landscape"].stream(wide)]  # smoothed from the turn on
    np.testing.assert_array_equal(got[0], next(single["portrait_tall"].stream(tall)).labels)
    for g, e in zip(got[1:], expected):
        np.testing.assert_array_equal(g, e)
    # The 9:16 file on the landscape frame would differ: the test does tell the variants apart.
    assert (next(single["portrait_tall"].stream(wide[:1])).labels != expected[0]).mean() > 0.01
