"""Image I/O, input/output specs, decoding and effects: pure numpy/Pillow, no engine needed."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from edge_deeplab import effects
from edge_deeplab.atomic import atomic_write
from edge_deeplab.errors import BadImageError, BadModelError
from edge_deeplab.imaging import iter_image_files, load_image, save_png
from edge_deeplab.processing import InputSpec, OutputSpec, resize_rgb
from edge_deeplab.runtimes.base import TensorInfo

F32, U8, I8, I32 = (np.dtype(t) for t in (np.float32, np.uint8, np.int8, np.int32))


def gradient(height: int = 60, width: int = 80) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                     np.full((height, width), 128.0)], axis=-1).astype(np.uint8)


# ---------------------------------------------------------------- image I/O
def _save(tmp_path, name, image: Image.Image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("name,mode,fmt", [
    ("rgb.jpg", "RGB", "JPEG"), ("rgb.png", "RGB", "PNG"), ("rgb.webp", "RGB", "WEBP"),
    ("rgb.bmp", "RGB", "BMP"), ("gray.png", "L", "PNG"), ("palette.png", "P", "PNG"),
    ("cmyk.jpg", "CMYK", "JPEG"), ("rgba.png", "RGBA", "PNG")])
def test_load_image_formats_and_modes(tmp_path, name, mode, fmt):
    source = Image.fromarray(gradient())
    image = source.convert(mode) if mode != "P" else source.quantize(64)
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    array = load_image(_save(tmp_path, name, image, format=fmt, **kwargs))
    assert array.shape == (60, 80, 3) and array.dtype == np.uint8
    if mode == "L":
        assert np.array_equal(array[..., 0], array[..., 2])
    expected = np.asarray(image.convert("RGB")).astype(int)
    assert np.abs(array.astype(int) - expected).mean() < 3


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 5:, 3] = 255  # left half fully transparent
    array = load_image(_save(tmp_path, "a.png", Image.fromarray(rgba, "RGBA")))
    assert (array[:, :5] == 255).all()
    assert (array[:, 5:] == [200, 0, 0]).all()


def test_sixteen_bit_png_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 32768, 65535]], np.uint16).repeat(4, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    array = load_image(path)
    assert array[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # white strip on the left, landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(tmp_path, "rotated.jpg", Image.fromarray(pixels), exif=exif, quality=95)
    array = load_image(path)
    assert array.shape[:2] == (40, 20)  # shown as portrait
    assert array[:10].mean() > 200 and array[-10:].mean() < 50  # the strip ends up on top


@pytest.mark.parametrize("content,expected", [
    (b"", "empty"), (b"hello, not an image", "not an image"), ("truncated", "cannot decode")])
def test_bad_images_raise_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(gradient(300, 300)).save(buffer, format="JPEG")
        content = buffer.getvalue()[:2000]
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=expected) as info:
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_image_and_folder(tmp_path):
    with pytest.raises(BadImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(BadImageError, match="folder"):
        load_image(tmp_path)


def test_iter_image_files_expands_folders_in_order(tmp_path):
    for name in ("b.jpg", "a.PNG", "notes.txt", ".hidden.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    listed = list(iter_image_files([tmp_path, tmp_path / "notes.txt"]))
    assert [p.name for p in listed] == ["a.PNG", "b.jpg", "notes.txt"]


def test_save_png_is_atomic(tmp_path):
    target = tmp_path / "out.png"
    save_png(target, np.full((4, 4), 3, np.uint8))
    assert np.asarray(Image.open(target)).tolist() == [[3] * 4] * 4
    with pytest.raises(RuntimeError):
        with atomic_write(target, "wb") as file:
            file.write(b"half")
            raise RuntimeError("killed mid-write")
    assert np.asarray(Image.open(target))[0, 0] == 3  # the old file survives intact
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temp file left behind


# ---------------------------------------------------------------- input spec
@pytest.mark.parametrize("input_range,expected", [
    (None, [0.0, 128 / 255, 1.0]), ("0,1", [0.0, 128 / 255, 1.0]),
    ("-1,1", [-1.0, 2 * 128 / 255 - 1, 1.0]), ("0,255", [0.0, 128.0, 255.0])])
def test_float_input_normalization(input_range, expected):
    spec = InputSpec.from_tensor(TensorInfo("x", (1, 4, 3, 3), F32), input_range)
    image = np.array([0, 128, 255], np.uint8)[None, :, None].repeat(4, 0).repeat(3, 2)
    tensor = spec.prepare(image)
    assert tensor.shape == (1, 4, 3, 3) and tensor.dtype == np.float32 and tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor[0, 0, :, 0], expected, rtol=1e-6, atol=1e-6)


def test_nchw_layout_and_resize():
    spec = InputSpec.from_tensor(TensorInfo("x", (1, 3, 30, 40), F32))
    assert (spec.layout, spec.height, spec.width) == ("NCHW", 30, 40)
    image = gradient(60, 80)
    tensor = spec.prepare(image)
    assert tensor.shape == (1, 3, 30, 40) and tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor[0].transpose(1, 2, 0), resize_rgb(image, 40, 30) / 255.0, atol=1e-6)


@pytest.mark.parametrize("dtype,scale,zero_point,input_range,expected", [
    (U8, 1 / 255, 0, None, [0, 128, 255]),          # uint8 model: raw pixels
    (U8, None, None, None, [0, 128, 255]),           # uint8 without quantization: raw pixels too
    (I8, 1 / 255, -128, None, [-128, 0, 127]),       # int8 model: pixels shifted
    (I8, 1 / 255, -128, "0,1", [-128, 0, 127]),      # metadata range agreeing with the quantization
    (U8, 1 / 127.5, 128, "-1,1", [0, 128, 255]),     # Coral-style [-1,1] uint8
    (I8, 2 / 255, -128, "0,1", [-128, -64, -1]),     # range narrower than the quantization: real LUT
])
def test_integer_input_quantization(dtype, scale, zero_point, input_range, expected):
    spec = InputSpec.from_tensor(TensorInfo("x", (1, 2, 3, 3), dtype, scale, zero_point), input_range)
    image = np.array([0, 128, 255], np.uint8)[None, :, None].repeat(2, 0).repeat(3, 2)
    tensor = spec.prepare(image)
    assert tensor.dtype == dtype
    assert np.abs(tensor[0, 0, :, 0].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("shape,dtype,message", [
    ((1, 224, 224, 5), F32, "image tensor"), ((1, 1000), F32, "image tensor"),
    ((1, -1, -1, 3), F32, "dynamic size"), ((1, 8, 8, 3), np.dtype(np.int32), "int32")])
def test_unusable_inputs_are_bad_models(shape, dtype, message):
    with pytest.raises(BadModelError, match=message):
        InputSpec.from_tensor(TensorInfo("x", shape, dtype))


# ---------------------------------------------------------------- output decoding
def test_one_channel_probability_thresholds_at_half():
    raw = np.array([[0.2, 0.49], [0.5, 0.9]], np.float32)[None, :, :, None]
    spec = OutputSpec.from_tensor(TensorInfo("y", raw.shape, F32))
    seg = spec.decode(raw, 2, 2, with_alpha=True)
    assert spec.kind == "binary" and spec.num_classes == 2
    assert seg.labels.tolist() == [[0, 0], [1, 1]]
    assert seg.alpha.tolist() == [[51, 125], [128, 230]]


def test_one_channel_logit_is_passed_through_sigmoid():
    raw = np.array([[-3.0, -0.1], [0.1, 4.0]], np.float32)[None, :, :, None]
    seg = OutputSpec.from_tensor(TensorInfo("y", raw.shape, F32)).decode(raw, 2, 2, with_alpha=True)
    assert seg.labels.tolist() == [[0, 0], [1, 1]]
    assert seg.alpha[0, 0] < 20 and seg.alpha[1, 1] > 240


def test_declared_logits_win_over_the_value_heuristic():
    raw = np.full((1, 2, 2, 1), 0.3, np.float32)  # looks like a probability, but the model says logit
    as_logit = OutputSpec.from_tensor(TensorInfo("y", raw.shape, F32), declared="logits").decode(raw, 2, 2)
    as_prob = OutputSpec.from_tensor(TensorInfo("y", raw.shape, F32)).decode(raw, 2, 2)
    assert as_logit.labels.all() and not as_prob.labels.any()


def test_two_channel_logits_upsampled_from_a_strided_output():
    diff = np.where(np.arange(8) < 4, -5.0, 5.0).astype(np.float32)[None, :].repeat(6, 0)
    raw = np.stack([-diff / 2, diff / 2], axis=-1)[None]  # (1, 6, 8, 2)
    seg = OutputSpec.from_tensor(TensorInfo("y", raw.shape, F32)).decode(raw, 64, 48)
    assert seg.labels.shape == (48, 64)
    assert (seg.labels[:, :28] == 0).all() and (seg.labels[:, 36:] == 1).all()


def test_multiclass_nchw_scores_argmax_at_image_size():
    scores = np.zeros((1, 4, 5, 5), np.float32)
    for k in range(4):
        scores[0, k, :, k:k + 1] = 10.0  # column k belongs to class k; column 4 ties -> class 0
    spec = OutputSpec.from_tensor(TensorInfo("y", scores.shape, F32), input_layout="NCHW")
    seg = spec.decode(scores, 5, 5, with_alpha=True)
    assert spec.kind == "scores" and spec.num_classes == 4
    assert seg.labels[2].tolist() == [0, 1, 2, 3, 0]
    assert seg.alpha[2, 0] < 10 and seg.alpha[2, 2] > 245


def test_integer_label_map_nearest_upsampling():
    raw = np.array([[0, 7], [3, 0]], np.int32)[None]
    spec = OutputSpec.from_tensor(TensorInfo("y", raw.shape, I32))
    seg = spec.decode(raw, 4, 4)
    assert spec.kind == "labels" and spec.num_classes is None
    assert seg.labels.tolist() == [[0, 0, 7, 7], [0, 0, 7, 7], [3, 3, 0, 0], [3, 3, 0, 0]]


@pytest.mark.parametrize("dtype,zero_point", [(U8, 128), (I8, 0)])
def test_quantized_outputs_are_dequantized(dtype, zero_point):
    real = np.array([[[-2.0, 2.0], [1.0, -1.0]]], np.float32)[None]  # (1, 1, 2, 2): pixel0 class1, pixel1 class0
    scale = 0.05
    raw = np.round(real / scale + zero_point).astype(dtype)
    spec = OutputSpec.from_tensor(TensorInfo("y", raw.shape, dtype, scale, zero_point))
    seg = spec.decode(raw, 2, 1, with_alpha=True)
    assert spec.kind == "scores"
    assert seg.labels.tolist() == [[1, 0]]
    assert seg.alpha[0, 0] == 250 and seg.alpha[0, 1] == 30  # 255 * sigmoid(4), 255 * sigmoid(-2)


def test_integer_multichannel_output_is_rejected():
    with pytest.raises(BadModelError, match="one-channel class map"):
        OutputSpec.from_tensor(TensorInfo("y", (1, 8, 8, 3), I32))


# ---------------------------------------------------------------- effects
def test_palette_is_the_voc_colour_map():
    assert effects.palette(4).tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]


def test_overlay_tints_only_foreground():
    image = np.full((4, 4, 3), 100, np.uint8)
    labels = np.zeros((4, 4), np.uint8)
    labels[:, 2:] = 1
    out = effects.overlay(image, labels)
    assert (out[:, :2] == 100).all()
    assert out[0, 3].tolist() == [114, 50, 50]


def test_blur_keeps_subject_and_softens_background():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    alpha = np.zeros((64, 64), np.uint8)
    alpha[:, 32:] = 255
    out = effects.blur_background(image, alpha)
    assert out.shape == image.shape
    assert np.array_equal(out[:, 40:], image[:, 40:])  # subject untouched away from the edge
    assert out[:, :20].astype(float).std() < 0.5 * image[:, :20].astype(float).std()


def test_replace_uses_the_cover_fitted_background():
    image = np.full((20, 30, 3), 200, np.uint8)
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:15, 10:20] = 255
    backdrop = np.zeros((10, 10, 3), np.uint8)
    backdrop[..., 2] = 255  # blue, square: must be scaled and cropped, not stretched
    out = effects.replace_background(image, alpha, backdrop)
    assert out.shape == image.shape
    assert out[0, 0].tolist() == [0, 0, 255] and out[10, 15].tolist() == [200, 200, 200]
    assert effects.fit_cover(backdrop, 30, 20).shape == (20, 30, 3)


def test_centre_window_is_the_largest_centred_window_of_an_aspect():
    from edge_deeplab.imaging import centre_window
    assert centre_window(480, 854, 16 / 9) == (slice(0, 480), slice(0, 853))
    assert centre_window(480, 854, 1.0) == (slice(0, 480), slice(187, 667))
    assert centre_window(800, 600, 16 / 9) == (slice(231, 569), slice(0, 600))
    assert centre_window(480, 854, 9 / 16) == (slice(0, 480), slice(292, 562))
    assert centre_window(1, 1000, 0.001) == (slice(0, 1), slice(499, 500))  # never empty


def test_rgba_arrays_and_images_and_premultiplied_modes_give_the_same_pixels():
    from edge_deeplab.api import as_rgb
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    assert np.array_equal(as_rgb(rgba), as_rgb(Image.fromarray(rgba, "RGBA")))  # both over white
    assert np.array_equal(as_rgb(np.dstack([rgb, np.full_like(alpha, 255)])), rgb)  # opaque: as it is
    premultiplied = Image.fromarray(rgb).convert("LA").convert("La")
    assert as_rgb(premultiplied).shape == (20, 30, 3)  # Pillow converts "La" to LA only
