"""Composition at reduced resolution, matte/cut-out, blur strength and the guided-filter refinement."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from edge_deeplab import effects
from edge_deeplab.errors import ConfigError
from edge_deeplab.refine import box_mean, guided_filter, refine_alpha


def photo(height: int = 360, width: int = 480, seed: int = 0) -> np.ndarray:
    """Texture at several scales (noise blurred by a few radii), like a photo's background."""
    rng = np.random.default_rng(seed)
    layers = [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).filter(
        ImageFilter.GaussianBlur(radius)) for radius in (0, 2, 8)]
    return np.mean([np.asarray(layer, np.float32) for layer in layers], axis=0).astype(np.uint8)


def person(height: int = 360, width: int = 480) -> np.ndarray:
    """A soft ellipse alpha (255 inside), like an upsampled model output."""
    yy, xx = np.mgrid[:height, :width]
    inside = ((yy - height * 0.6) / (height * 0.45)) ** 2 + ((xx - width / 2) / (width * 0.2)) ** 2 < 1
    return np.asarray(Image.fromarray((inside * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3)))


@pytest.mark.parametrize("strength", [0.01, 0.02, 0.08])
def test_reduced_resolution_blur_is_close_to_the_full_resolution_one(strength):
    image, alpha = photo(), person()
    fast = effects.blur_background(image, alpha, strength)
    reference = effects.blur_background(image, alpha, strength, factor=1)
    difference = np.abs(fast.astype(np.int16) - reference)
    assert difference.mean() < 1.0, difference.mean()
    assert np.percentile(difference, 99) <= 6, np.percentile(difference, 99)
    # The subject, away from its feathered edge, is untouched.
    core = np.asarray(Image.fromarray(alpha).filter(ImageFilter.MinFilter(41))) == 255
    assert core.sum() > 10000 and np.array_equal(fast[core], image[core])


def test_reduced_resolution_feathering_is_close_to_the_full_resolution_one():
    alpha = person(400, 300)
    fast, reference = effects.feather(alpha, 12.0), effects.feather(alpha, 12.0, factor=1)
    assert np.abs(fast.astype(np.int16) - reference).mean() < 0.5


@pytest.mark.parametrize("shape", [(1, 1), (3, 500), (257, 131), (129, 2)])
def test_effects_keep_any_image_size(shape):
    image = photo(*shape)
    alpha = np.full(shape, 255, np.uint8)
    alpha[:, : shape[1] // 2] = 0
    backdrop = np.zeros((7, 9, 3), np.uint8)
    for out in (effects.blur_background(image, alpha), effects.blur_background(image, alpha, refine=True),
                effects.replace_background(image, alpha, backdrop),
                effects.overlay(image, (alpha > 0).view(np.uint8))):
        assert out.shape == image.shape and out.dtype == np.uint8


def test_replace_fills_the_background_with_the_backdrop_and_keeps_the_subject():
    image, alpha = photo(), person()
    backdrop = np.zeros((50, 50, 3), np.uint8)
    backdrop[..., 1] = 200
    out = effects.replace_background(image, alpha, backdrop)
    core = np.asarray(Image.fromarray(alpha).filter(ImageFilter.MinFilter(9))) == 255  # beyond the feathering
    outside = np.asarray(Image.fromarray(alpha).filter(ImageFilter.MaxFilter(9))) == 0
    assert (out[outside] == [0, 200, 0]).all()
    assert np.array_equal(out[core], image[core])


def test_matte_and_cutout_carry_the_alpha():
    image, alpha = photo(60, 80), person(60, 80)
    assert np.array_equal(effects.matte(image, alpha), alpha)
    cut = effects.cutout(image, alpha)
    assert cut.shape == (60, 80, 4) and np.array_equal(cut[..., 3], alpha) and np.array_equal(cut[..., :3], image)
    assert np.array_equal(effects.cutout(image, alpha, refine=True)[..., 3], refine_alpha(image, alpha))


@pytest.mark.parametrize("strength", [0, -0.01, 0.26, 2, float("nan"), "0.02", True])
def test_blur_strength_out_of_range_is_a_config_error(strength):
    with pytest.raises(ConfigError, match="fraction of the image's longer side"):
        effects.blur_background(photo(20, 20), person(20, 20), strength)


def test_blur_strength_sets_the_radius():
    image, alpha = photo(), np.zeros((360, 480), np.uint8)  # all background
    spread = [effects.blur_background(image, alpha, s).astype(np.float32).std() for s in (0.005, 0.02, 0.1)]
    assert spread[0] > spread[1] > spread[2]  # stronger blur, flatter image


# ---------------------------------------------------------------- guided filter
def test_box_mean_matches_a_direct_window_average():
    x = np.random.default_rng(0).random((23, 31, 2))
    radius = 3
    direct = np.array([[x[max(0, i - radius):i + radius + 1, max(0, j - radius):j + radius + 1].mean(axis=(0, 1))
                        for j in range(31)] for i in range(23)])
    assert np.allclose(box_mean(x, radius), direct, atol=1e-6)
    assert np.allclose(box_mean(x, 100), x.mean(axis=(0, 1)), atol=1e-6)  # radius beyond the image


def test_guided_filter_keeps_a_constant_source_and_smooths_on_a_flat_guide():
    rng = np.random.default_rng(1)
    guide = rng.random((40, 50, 3)).astype(np.float32)
    assert np.allclose(guided_filter(guide, np.full((40, 50), 0.7, np.float32), 4, 1e-3), 0.7, atol=1e-4)
    source = rng.random((40, 50)).astype(np.float32)
    flat = guided_filter(np.full((40, 50, 3), 0.5, np.float32), source, 4, 1e-3)
    # A flat guide carries no edges: the filter is a plain (double) box mean of the source.
    assert np.allclose(flat, box_mean(box_mean(source, 4), 4), atol=1e-4)


def test_refined_alpha_stays_in_range_and_shape():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (90, 70), dtype=np.uint8)
    out = refine_alpha(image, alpha)
    assert out.shape == alpha.shape and out.dtype == np.uint8  # uint8: [0, 255] by construction, clipped


def test_refinement_snaps_a_blurry_alpha_onto_the_image_edge_and_keeps_an_aligned_one():
    image = np.full((120, 160, 3), 40, np.uint8)
    image[:, 80:] = 210  # a vertical edge at column 80
    step = np.zeros((120, 160), np.uint8)
    step[:, 80:] = 255
    kept = refine_alpha(image, step)
    assert (kept[:, :78] < 20).all() and (kept[:, 82:] > 235).all()  # an aligned edge stays sharp
    assert np.array_equal(kept >= 128, step >= 128)
    shifted = np.zeros_like(step)
    shifted[:, 82:] = 255  # the model's edge 2 px off and blurred, as an upsampled low-res output is
    blurry = np.asarray(Image.fromarray(shifted).filter(ImageFilter.GaussianBlur(2)))
    snapped = refine_alpha(image, blurry).astype(np.int16)
    jumps = np.diff(snapped, axis=1)
    assert (jumps.argmax(axis=1) == 79).all() and (jumps.max(axis=1) > 100).all()  # one sharp step, at 79|80
    assert np.diff(blurry.astype(np.int16), axis=1).max() < 60  # which the blurry input did not have
    assert ((snapped >= 128).argmax(axis=1) == 80).all()  # the 0.5 crossing moved onto the image's edge
