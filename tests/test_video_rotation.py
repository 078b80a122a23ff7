"""Rotation-tagged (phone) videos are segmented upright and written upright at their displayed size."""
from __future__ import annotations

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
from video_clips import make_clip, stream_info  # noqa: E402

TWO_CLASS = str(Path(__file__).resolve().parent / "fixtures" / "models" / "two_class_float.tflite")
HEIGHT, WIDTH = 64, 48  # displayed (upright) size: portrait, as a phone shows it
BLOCK = (slice(0, 28), slice(0, 24))  # bright (class 1) block in the upright frame's top-left corner
INSIDE = (slice(4, 22), slice(4, 18))  # the block away from its edges
FAR = (slice(40, 64), slice(30, 48))  # the opposite corner: dark, background


def upright_frame() -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 16, np.uint8)
    frame[BLOCK] = 232
    return frame


def tagged_clip(path: Path, degrees: int, count: int = 4, audio: str | None = None, mirror: bool = False) -> Path:
    """Frames stored turned back by ``degrees`` (and mirrored first with ``mirror``), tagged so that players
    show them upright again."""
    import av

    if not hasattr(av.VideoStream, "set_display_rotation"):
        pytest.skip(f"PyAV {av.__version__} cannot write a display-matrix tag (needs set_display_rotation)")
    # Players turn the stored frame, then mirror it (PyAV's set_display_rotation; FFmpeg's transpose and
    # flip filters read the matrix alike): so store the upright frame mirrored, then turned back.
    shown = upright_frame()[:, ::-1] if mirror else upright_frame()
    stored = np.ascontiguousarray(np.rot90(shown, -degrees // 90))
    make_clip(path, [stored] * count, fps=10, audio=audio, rotation=degrees, mirror=mirror)
    if not mirror:
        with av.open(str(path)) as container:  # the tag really is in the file, as a display matrix
            tag = next(container.decode(video=0)).rotation
        assert tag % 360 == degrees % 360
    stored_size = (HEIGHT, WIDTH) if degrees % 180 else (WIDTH, HEIGHT)  # a quarter turn: stored sideways
    assert stream_info(path)["size"] == stored_size
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_upright(picture: np.ndarray, bright: int, dark: int) -> None:
    assert picture.shape[:2] == (HEIGHT, WIDTH)
    assert picture[INSIDE].min() >= bright and picture[FAR].max() <= dark


@pytest.mark.parametrize("degrees", [90, 180, 270, -90])
def test_probe_and_frames_are_upright(tmp_path, degrees):
    from edge_deeplab import video
    clip = tagged_clip(tmp_path / "phone.mp4", degrees)
    info = video.probe(clip)
    assert (info.width, info.height, info.frames, info.rotation) == (WIDTH, HEIGHT, 4, degrees % 360)
    frames = list(video.frames(clip))
    assert len(frames) == 4
    for frame in frames:
        assert frame.flags.c_contiguous
        assert_upright(frame, bright=200, dark=50)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_mask_pngs_are_upright_at_the_displayed_size(tmp_path, degrees):
    clip = tagged_clip(tmp_path / "phone.mp4", degrees)
    result = run("segment", TWO_CLASS, clip, "--out", tmp_path / "out", "--no-smooth")
    assert result.exit_code == 0, result.output
    names = sorted((tmp_path / "out" / "phone").iterdir())
    assert len(names) == 4
    for name in names:
        assert_upright(np.asarray(Image.open(name)), bright=1, dark=0)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_mp4_is_upright_at_the_displayed_size_and_untagged(tmp_path, degrees):
    import av
    clip = tagged_clip(tmp_path / "phone.mp4", degrees, count=6, audio="aac")
    result = run("segment", TWO_CLASS, clip, "--mode", "blur", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    target = tmp_path / "out" / "phone.mp4"
    assert stream_info(target) == {"frames": 6, "size": (WIDTH, HEIGHT), "fps": 10, "audio": "aac",
                                   "codec": "h264"}
    with av.open(str(target)) as container:
        for frame in container.decode(video=0):
            assert frame.rotation == 0  # no tag: every player shows the stored, upright frames
            assert_upright(frame.to_ndarray(format="rgb24"), bright=200, dark=60)


class _Frame:
    def __init__(self, rotation):
        self.rotation = rotation


class _Stream:
    def __init__(self, rotate):
        self.metadata = {} if rotate is None else {"rotate": rotate}


@pytest.mark.parametrize("tag,turn", [(0, 0), (90, 90), (-90, 270), (180, 180), (-180, 180), (270, 270),
                                      (89.6, 90), (-270, 90)])
def test_orientation_reads_pyavs_rotation_angle(tag, turn):
    from edge_deeplab.video import Orientation, orientation
    assert orientation(_Frame(tag)) == Orientation(turn)


@pytest.mark.parametrize("rotate,turn", [(None, 0), ("90", 270), ("270", 90), ("180", 180), ("junk", 0)])
def test_orientation_falls_back_to_the_streams_clockwise_rotate_metadata(rotate, turn):
    from edge_deeplab.video import Orientation, orientation
    assert orientation(object(), _Stream(rotate)) == Orientation(turn)  # a PyAV without VideoFrame.rotation


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_upright_undoes_the_stored_turn(degrees):
    from edge_deeplab.video import upright
    picture = upright_frame()
    stored = np.rot90(picture, -degrees // 90)
    np.testing.assert_array_equal(upright(stored, degrees), picture)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_a_mirroring_tag_is_applied_with_its_turn(tmp_path, degrees):
    """A front camera's clip can be tagged to display mirrored; PyAV's angle alone reads 0 + mirror as a
    half turn (upside down), so the matrix itself is read."""
    from edge_deeplab import video
    clip = tagged_clip(tmp_path / "selfie.mp4", degrees, mirror=True)
    info = video.probe(clip)
    assert (info.width, info.height, info.rotation, info.mirrored) == (WIDTH, HEIGHT, degrees, True)
    for frame in video.frames(clip):
        assert_upright(frame, bright=200, dark=50)
    result = run("segment", TWO_CLASS, clip, "--out", tmp_path / "out", "--no-smooth")
    assert result.exit_code == 0, result.output
    for name in sorted((tmp_path / "out" / "selfie").iterdir()):
        assert_upright(np.asarray(Image.open(name)), bright=1, dark=0)


@pytest.mark.parametrize("matrix,expected", [
    ((1, 0, 0, 1), (0, False)), ((0, -1, 1, 0), (90, False)), ((-1, 0, 0, -1), (180, False)),
    ((0, 1, -1, 0), (270, False)), ((-1, 0, 0, 1), (0, True)), ((0, -1, -1, 0), (90, True)),
    ((1, 0, 0, -1), (180, True)), ((0, 1, 1, 0), (270, True))])
def test_orientation_of_each_display_matrix(matrix, expected):
    """The eight matrices FFmpeg writes (16.16 fixed point), as its autorotation reads them."""
    from edge_deeplab.video import Orientation, orientation
    a, b, c, d = (v << 16 for v in matrix)
    frame = _MatrixFrame(np.array([a, b, 0, c, d, 0, 0, 0, 1 << 30], "<i4").tobytes())
    assert orientation(frame) == Orientation(*expected)


class _Kind:
    name = "DISPLAYMATRIX"


class _MatrixFrame:
    rotation = 0  # what PyAV reports must not matter once the matrix is there

    def __init__(self, data: bytes):
        self.side_data = {_Kind(): data}
