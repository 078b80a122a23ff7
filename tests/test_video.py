"""Video in `segment`: mask PNG sequences, H.264 outputs matching the input, audio, bad files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import needs
from edge_deeplab.cli import main

pytestmark = needs("av")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_clips import audio_only, make_clip, stream_info  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"
TWO_CLASS = str(FIXTURES / "two_class_float.tflite")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def moving_stripe(count: int = 7, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """A bright band (class 1 for the fixture model) sliding right over a dark frame."""
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 16, np.uint8)
        frame[:, 4 * index:4 * index + 24] = 232
        frames.append(frame)
    return frames


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mp4", moving_stripe(), fps=12, audio="aac")


def only_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("smooth", ["--smooth", "--no-smooth"])
def test_mask_mode_writes_one_png_per_frame(clip, tmp_path, smooth):
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, clip, "--out", out, smooth)
    assert result.exit_code == 0, result.output
    assert "7 frames" in result.stdout
    assert sorted(os.listdir(out)) == ["clip"]  # nothing else: no temp folder left behind
    names = sorted(os.listdir(out / "clip"))
    assert names == [f"{i:06d}.png" for i in range(7)]
    for index, name in enumerate(names):
        mask = np.asarray(Image.open(out / "clip" / name))
        assert mask.shape == (48, 64) and mask.dtype == np.uint8
        band = slice(4 * index + 6, 4 * index + 18)  # the band's inside, away from its (smoothed) edges
        assert (mask[:, band] == 1).all() and (mask[:, 4 * index + 34:] == 0).all()


def test_no_smooth_masks_are_the_per_frame_segmentation(clip, tmp_path):
    import edge_deeplab
    from edge_deeplab import video
    run("segment", TWO_CLASS, clip, "--out", tmp_path, "--no-smooth")
    seg = edge_deeplab.load(TWO_CLASS)
    for index, frame in enumerate(video.frames(clip)):
        expected = seg(frame, refine=False).labels  # video frames are not refined unless --refine
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "clip" / f"{index:06d}.png")), expected)


def test_refine_masks_are_each_frames_refined_mask(clip, tmp_path):
    """--refine on a video's masks: without smoothing, frame by frame what a photo's mask is."""
    import edge_deeplab
    from edge_deeplab import video
    run("segment", TWO_CLASS, clip, "--out", tmp_path, "--no-smooth", "--refine")
    seg = edge_deeplab.load(TWO_CLASS)
    changed = 0
    for index, frame in enumerate(video.frames(clip)):
        got = np.asarray(Image.open(tmp_path / "clip" / f"{index:06d}.png"))
        np.testing.assert_array_equal(got, seg(frame).labels)
        changed += int((got != seg(frame, refine=False).labels).sum())
    assert changed  # the refinement moved some edge on this clip: the flag was not ignored


@pytest.mark.parametrize("mode", ["blur", "overlay", "replace"])
def test_other_modes_write_h264_with_the_inputs_size_frames_rate_and_audio(clip, tmp_path, mode):
    backdrop = tmp_path / "beach.png"
    Image.fromarray(np.full((30, 30, 3), (0, 90, 200), np.uint8)).save(backdrop)
    extra = ["--background", backdrop] if mode == "replace" else []
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, clip, "--mode", mode, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["clip.mp4"]
    info = stream_info(out / "clip.mp4")
    assert info == {"frames": 7, "size": (64, 48), "fps": 12, "audio": "aac", "codec": "h264"}


def test_out_naming_an_mp4_writes_exactly_that_file(clip, tmp_path):
    result = run("segment", TWO_CLASS, clip, "--mode", "blur", "--out", tmp_path / "blurred.mp4")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ["blurred.mp4", "clip.mp4"]  # a file, not a folder named .mp4
    assert stream_info(tmp_path / "blurred.mp4") == {"frames": 7, "size": (64, 48), "fps": 12, "audio": "aac",
                                                     "codec": "h264"}


@pytest.mark.parametrize("mode,out,words", [("mask", "m.mp4", "writes a video's frames as PNG files"),
                                            ("blur", "b.jpg", "name an .mp4 file")])
def test_out_file_that_cannot_hold_a_videos_output_is_one_error_line(clip, tmp_path, mode, out, words):
    result = run("segment", TWO_CLASS, clip, "--mode", mode, "--out", tmp_path / out)
    assert result.exit_code == 1 and words in only_line(result)
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


def test_a_folder_of_videos_and_photos_is_segmented_whole(clip, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    clip.rename(folder / "clip.mp4")
    Image.fromarray(moving_stripe(1)[0]).save(folder / "still.png")
    result = run("segment", TWO_CLASS, folder, "--mode", "blur", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "out")) == ["clip.mp4", "still.png"]
    assert stream_info(tmp_path / "out" / "clip.mp4")["frames"] == 7


@pytest.mark.parametrize("suffix,codec,audio,copied", [
    (".mkv", "libx264", None, None),
    (".mov", "libx264", "aac", "aac"),
    (".avi", "mpeg4", None, None),
    (".webm", "libvpx", "libopus", "opus"),
    (".avi", "mpeg4", "pcm_s16le", "aac"),  # raw PCM: re-encoded to AAC for the .mp4
])
def test_containers_and_audio_codecs(tmp_path, suffix, codec, audio, copied):
    source = make_clip(tmp_path / f"clip{suffix}", moving_stripe(5), fps=10, audio=audio, codec=codec)
    result = run("segment", TWO_CLASS, source, "--mode", "overlay", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    info = stream_info(tmp_path / "out" / "clip.mp4")
    assert (info["frames"], info["size"], info["fps"], info["audio"]) == (5, (64, 48), 10, copied)


def test_odd_sizes_are_kept(tmp_path):
    source = make_clip(tmp_path / "odd.mp4", [f[:47, :63] for f in moving_stripe(3)], fps=8)
    result = run("segment", TWO_CLASS, source, "--mode", "blur", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert stream_info(tmp_path / "out" / "odd.mp4")["size"] == (63, 47)


@pytest.mark.parametrize("mode", ["mask", "blur"])
@pytest.mark.parametrize("make,words", [
    (lambda p: p.write_bytes(b"not a video at all" * 50) and p, "not a readable video"),
    (lambda p: p.write_bytes(b"") and p, "not a readable video"),
    (audio_only, "no video stream"),
])
def test_a_bad_video_is_one_error_line_and_leaves_no_output(tmp_path, mode, make, words):
    source = tmp_path / "bad.mp4"
    make(source)
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, source, "--mode", mode, "--out", out)
    assert result.exit_code == 1
    assert words in only_line(result)
    assert not out.exists() or os.listdir(out) == []


def test_a_truncated_video_leaves_no_partial_file(tmp_path):
    source = make_clip(tmp_path / "cut.mp4", moving_stripe(7), fps=12)
    data = source.read_bytes()
    source.write_bytes(data[:len(data) // 2])  # the moov atom (index) at the end is gone
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, source, "--mode", "blur", "--out", out)
    assert result.exit_code == 1 and "cut.mp4" in only_line(result)
    assert not out.exists() or os.listdir(out) == []


def test_a_bad_video_among_images_is_skipped(clip, tmp_path):
    bad = tmp_path / "bad.mov"
    bad.write_text("nope")
    image = tmp_path / "still.png"
    Image.fromarray(moving_stripe(1)[0]).save(image)
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, clip, bad, image, "--mode", "blur", "--out", out)
    assert result.exit_code == 1 and "bad.mov" in result.stderr and "skipped" in result.stderr
    assert sorted(os.listdir(out)) == ["clip.mp4", "still.png"]


def test_missing_pyav_names_the_extra(clip, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    result = run("segment", TWO_CLASS, clip, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "edge-deeplab[video]" in only_line(result)


def test_portrait_zoo_name_runs_on_video(clip, tmp_path):
    result = run("segment", "portrait", clip, "--mode", "blur", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert stream_info(tmp_path / "out" / "clip.mp4")["frames"] == 7


def test_cutout_frames_are_rgba_pngs_and_matte_is_a_grey_video(clip, tmp_path):
    out = tmp_path / "out"
    result = run("segment", TWO_CLASS, clip, "--mode", "cutout", "--out", out)
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(out / "clip"))  # H.264 has no alpha: one RGBA PNG per frame instead
    assert names == [f"{i:06d}.png" for i in range(7)]
    first = Image.open(out / "clip" / names[0])
    assert first.mode == "RGBA" and first.size == (64, 48)
    alpha = np.asarray(first)[..., 3]
    assert (alpha[:, 6:18] > 200).all() and (alpha[:, 34:] < 55).all()  # the band is opaque, the rest not
    result = run("segment", TWO_CLASS, clip, "--mode", "matte", "--out", out)
    assert result.exit_code == 0, result.output
    assert stream_info(out / "clip.mp4")["frames"] == 7


def test_sigterm_mid_video_leaves_no_partial_file(tmp_path):
    import signal
    import subprocess
    import time

    frames = [np.full((360, 640, 3), 40 + index % 200, np.uint8) for index in range(240)]
    source, out = make_clip(tmp_path / "long.mp4", frames, fps=24), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", "from edge_deeplab.cli import main; main()", "segment",
                                TWO_CLASS, str(source), "--mode", "blur", "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out.is_dir() and any(out.iterdir())) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the clip was done before it could be interrupted"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and b"Traceback" not in stderr
    assert list(out.iterdir()) == []  # the temporary .mp4 went with the run


def test_smooth_steadies_a_labels_only_models_masks(tmp_path):
    """A fused-argmax model (as the shipped int8 files are): --smooth is not silently --no-smooth."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 64)[None, :, None]
    frames = [np.clip(ramp + rng.normal(0, 60, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(8)]
    noisy = make_clip(tmp_path / "noisy.mp4", frames, fps=12)
    masks = {}
    for flag in ("--smooth", "--no-smooth"):
        result = run("segment", FIXTURES / "argmax_uint8.tflite", noisy, "--out", tmp_path / flag, flag)
        assert result.exit_code == 0, result.output
        masks[flag] = [np.asarray(Image.open(path)) for path in sorted((tmp_path / flag / "noisy").iterdir())]

    def flicker(labels):
        return np.mean([(a != b).mean() for a, b in zip(labels, labels[1:])])
    assert flicker(masks["--smooth"]) < 0.8 * flicker(masks["--no-smooth"])
