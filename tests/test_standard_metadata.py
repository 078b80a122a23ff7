"""The standard TFLite Model Metadata, both directions: models written by TFLite Support / MediaPipe tooling
are normalized and labelled as they declare; what we write reads back the same and keeps the model intact."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edge_deeplab.cli import main
from edge_deeplab.errors import BadModelError, ConfigError
from edge_deeplab.normalization import Normalization
from edge_deeplab.processing import InputSpec, Segmenter
from edge_deeplab.runtimes import RUNTIMES, load_runtime
from edge_deeplab.runtimes.base import TensorInfo
from edge_deeplab.runtimes.tflite_metadata import read_metadata, write_metadata
from edge_deeplab.runtimes.tflite_standard_metadata import (
    STANDARD_KEY, read_standard_metadata, write_standard_metadata)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
STANDARD = FIXTURES / "standard_metadata.tflite"  # mean = std = 127.5, labels dim/bright: class 1 iff m > 0.1
SELFIE = "models/mediapipe_selfie_segmentation.tflite"  # in ../shared; written by MediaPipe's tooling
CORAL = "weights/mobilenet_v2_1.0_224_quant.tflite"  # in ../shared; written by TFLite Support's populator
F32 = np.dtype(np.float32)


def stripes() -> np.ndarray:
    """The fixture's own 32x48 size (no resize): grey 32 / 128 / 224 -> m = -0.75 / 0.004 / 0.76 in [-1,1]."""
    image = np.zeros((32, 48, 3), np.uint8)
    for i, level in enumerate((32, 128, 224)):
        image[:, 16 * i:16 * (i + 1)] = level
    return image


def reference_mask(model: Path, image: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The model's own output under a given normalization, by hand with the bare interpreter."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           ((image.astype(np.float32) - mean) / std)[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].argmax(-1).astype(np.uint8)


def run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


# ---------------------------------------------------------------- reading
def test_fixture_declares_its_normalization_and_labels():
    meta = read_standard_metadata(STANDARD)
    assert (meta.name, meta.mean, meta.std, meta.labels) == ("ImageSegmenter", (127.5,), (127.5,), ("dim", "bright"))
    assert read_metadata(STANDARD) is None  # no edge_deeplab metadata: the standard one is all it has


# The engines that run a plain .tflite (edgetpu needs a compiled model and a device) read its metadata.
TFLITE_RUNTIMES = ["litert", "openvino"]


@pytest.mark.parametrize("runtime", TFLITE_RUNTIMES)
def test_segment_equals_the_reference_under_the_declared_normalization(tmp_path, runtime):
    reason = RUNTIMES.load(runtime).unavailable_reason()
    if reason:
        pytest.skip(reason)
    image = stripes()
    Image.fromarray(image).save(tmp_path / "s.png")
    result = run("segment", STANDARD, tmp_path / "s.png", "--out", tmp_path / "out", "--runtime", runtime)
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "out" / "s.png"))
    right, wrong = reference_mask(STANDARD, image, 127.5, 127.5), reference_mask(STANDARD, image, 0.0, 255.0)
    assert np.array_equal(mask, right)
    assert (mask != wrong).mean() > 0.3  # the old [0,1] assumption flips the middle stripe
    assert [int(mask[:, 16 * i:16 * (i + 1)].mean() > 0.5) for i in range(3)] == [0, 0, 1]


def test_models_written_by_the_maintained_tooling(shared):
    selfie, coral = read_standard_metadata(shared(SELFIE)), read_standard_metadata(shared(CORAL))
    assert (selfie.mean, selfie.std, selfie.labels) == ((0.0,), (255.0,), ("selfie",))
    assert (coral.mean, coral.std, len(coral.labels), coral.labels[0]) == ((127.5,), (127.5,), 1001, "background")
    segmenter = Segmenter(load_runtime(shared(SELFIE)))
    assert segmenter.normalization_source == "standard" and segmenter.input_range == "0,1"
    assert segmenter.labels == ["background", "selfie"]  # one probability channel: its class vs the rest


def test_precedence_flag_then_ours_then_standard_then_default(tmp_path):
    model = tmp_path / "both.tflite"
    shutil.copy(STANDARD, model)
    assert Segmenter(load_runtime(model)).normalization == Normalization((127.5,), (127.5,))
    write_metadata(model, model, json.dumps({"input_range": "0,255", "labels": ["a", "b"]}).encode())
    ours = Segmenter(load_runtime(model))
    assert (ours.input_range, ours.normalization_source, ours.labels) == ("0,255", "metadata", ["a", "b"])
    assert read_standard_metadata(model).labels == ("dim", "bright")  # still there, now outranked
    flagged = Segmenter(load_runtime(model), input_range="0,1", labels=["x", "y"])
    assert (flagged.input_range, flagged.normalization_source, flagged.labels) == ("0,1", "flag", ["x", "y"])
    plain = Segmenter(load_runtime(FIXTURES / "two_class_float.tflite"))
    assert (plain.normalization, plain.normalization_source, plain.labels) == (None, "default", None)


def test_segment_notes_when_the_flag_overrides_the_standard_metadata(tmp_path):
    Image.fromarray(stripes()).save(tmp_path / "s.png")
    result = run("segment", STANDARD, tmp_path / "s.png", "--out", tmp_path / "o", "--input-range", "0,1")
    assert result.exit_code == 0 and "overrides the model's own -1,1" in result.stderr


def test_integer_inputs_take_raw_pixels_as_the_maintained_readers_do(shared):
    coral = shared(CORAL)
    segmenter_input = load_runtime(coral).inputs[0]
    spec = InputSpec.from_tensor(segmenter_input, None)
    from edge_deeplab.normalization import resolve
    normalization, source = resolve(None, {}, read_standard_metadata(coral), integer_input=True)
    assert normalization is None and source == "default" and spec.lut is None


def test_damaged_standard_metadata_is_a_bad_model(tmp_path):
    model = tmp_path / "bad.tflite"
    write_metadata(FIXTURES / "two_class_float.tflite", model, b"not a flatbuffer", name=STANDARD_KEY)
    with pytest.raises(BadModelError, match="not a TFLite ModelMetadata"):
        read_standard_metadata(model)


# ---------------------------------------------------------------- writing
def test_written_metadata_reads_back_and_leaves_the_model_intact(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(FIXTURES / "two_class_float.tflite", model)
    before = load_runtime(model).run(np.full((1, 32, 48, 3), 0.6, np.float32))
    write_standard_metadata(model, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4), labels=["bg", "fg"])
    write_metadata(model, model, b'{"output": "logits"}')  # a later re-pack keeps the appended label file
    meta = read_standard_metadata(model)
    assert meta.mean == pytest.approx((123.7, 116.3, 103.5)) and meta.std == pytest.approx((58.4, 57.1, 57.4))
    assert meta.labels == ("bg", "fg") and zipfile.ZipFile(model).read("labels.txt") == b"bg\nfg\n"
    assert json.loads(read_metadata(model)) == {"output": "logits"}
    np.testing.assert_array_equal(load_runtime(model).run(np.full((1, 32, 48, 3), 0.6, np.float32)), before)


@pytest.mark.parametrize("shape,layout", [((1, 2, 2, 3), "NHWC"), ((1, 3, 2, 2), "NCHW")])
def test_per_channel_mean_and_std(shape, layout):
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 5.0)
    spec = InputSpec.from_tensor(TensorInfo("x", shape, F32), Normalization(mean, std))
    image = np.full((2, 2, 3), 50, np.uint8)
    tensor = spec.prepare(image)
    channels = tensor[0, 0, 0] if layout == "NHWC" else tensor[0, :, 0, 0]
    np.testing.assert_allclose(channels, [(50 - m) / s for m, s in zip(mean, std)], rtol=1e-6)


def test_per_channel_normalization_of_a_quantized_input():
    info = TensorInfo("x", (1, 1, 2, 3), np.dtype(np.uint8), scale=1 / 128, zero_point=128)
    spec = InputSpec.from_tensor(info, Normalization((127.5, 0.0, 255.0), (127.5, 255.0, 255.0)))
    tensor = spec.prepare(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))
    # real values: [1, 1, 0] and [-1, 0, -1] -> q = real * 128 + 128, clipped to 0..255
    assert tensor[0, 0].tolist() == [[255, 255, 128], [0, 128, 0]]


# ---------------------------------------------------------------- --labels and where names show
def make_dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = stripes()
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(reference_mask(STANDARD, image, 127.5, 127.5)).save(root / "masks" / "a.png")
    return root


def test_evaluate_and_benchmark_show_the_model_class_names(tmp_path):
    data = make_dataset(tmp_path / "d")
    result = run("evaluate", STANDARD, "--data", data, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["labels"] == ["dim", "bright"] and report["miou"] == 1.0 and "IoU bright" in result.stdout
    result = run("benchmark", STANDARD, "--runs", 2, "--warmup", 0, "--json", tmp_path / "b.json")
    assert result.exit_code == 0 and "classes of" in result.stdout and "dim, bright" in result.stdout
    assert json.loads((tmp_path / "b.json").read_text())[0]["labels"] == ["dim", "bright"]


def test_labels_file_names_the_classes_of_a_model_without_any(tmp_path):
    data = make_dataset(tmp_path / "d")
    (tmp_path / "names.txt").write_text("sky\nground\n")
    model = FIXTURES / "two_class_float.tflite"
    result = run("evaluate", model, "--data", data, "--labels", tmp_path / "names.txt", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())["labels"] == ["sky", "ground"]
    result = run("benchmark", model, "--runs", 2, "--warmup", 0, "--labels", tmp_path / "names.txt")
    assert result.exit_code == 0 and "sky, ground" in result.stdout
    Image.fromarray(stripes()).save(tmp_path / "s.png")
    result = run("segment", model, tmp_path / "s.png", "--out", tmp_path / "o", "--labels", tmp_path / "names.txt")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("content,message", [
    (None, "cannot read it"), ("", "holds no class names"), ("a\nb\nc\n", "gives 3 class names, the model outputs 2")])
def test_bad_labels_file_is_one_line_and_exit_1(tmp_path, content, message):
    names = tmp_path / "names.txt"
    if content is not None:
        names.write_text(content)
    Image.fromarray(stripes()).save(tmp_path / "s.png")
    result = run("segment", STANDARD, tmp_path / "s.png", "--out", tmp_path / "o", "--labels", names)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "o").exists()
    if content is not None and content.strip():
        with pytest.raises(ConfigError):
            Segmenter(load_runtime(STANDARD), labels=content.split())
