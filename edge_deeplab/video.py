"""Video files in and out with PyAV (``pip install "edge-deeplab[video]"``), imported only when used.

Reading yields upright RGB frames (a phone clip's rotation tag applied, as players do) and, for
copying, the audio packets in file order; writing encodes H.264 ``.mp4`` with the input's displayed size,
frame count and frame rate, untagged, and copies the audio track.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from edge_deeplab._optional import require
from edge_deeplab.errors import BadImageError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
# Audio codecs an .mp4 can hold as they are; others are re-encoded to AAC.
_MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "alac", "flac", "opus")
# x264's fastest preset: real time at 480p on two cores beside the model (veryfast costs ~2x the CPU
# per frame for ~1/3 of the size); crf 23 is x264's default quality.
ENCODER_OPTIONS = {"preset": "ultrafast", "crf": "23"}


class BadVideoError(BadImageError):
    """A file that is not a readable video, or holds no video stream."""


def av_module():
    return require("av", "video", "video input/output")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What the output must match: displayed (upright) size, frame rate, the frame count if the file
    says, and audio. ``rotation``: the counter-clockwise quarter turns, in degrees, that the file's
    rotation tag applies to its stored frames, and ``mirrored`` if it then flips them left to right (both
    already applied to the size and to the frames read)."""

    width: int
    height: int
    fps: Fraction
    frames: int | None
    audio_codec: str | None
    rotation: int = 0
    mirrored: bool = False

    @property
    def seconds(self) -> float | None:
        return None if self.frames is None else float(self.frames / self.fps)


def _open(path: Path):
    av = av_module()
    if not path.is_file():
        raise BadVideoError(f"{path}: {'is a folder' if path.is_dir() else 'no such file'}, expected a video")
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise BadVideoError(f"{path}: not a readable video ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__


@dataclass(frozen=True)
class Orientation:
    """How a stored frame is displayed: turned ``degrees`` (0, 90, 180 or 270) counter-clockwise, then,
    if ``mirrored``, flipped left to right (a display matrix can express all eight EXIF orientations)."""

    degrees: int = 0
    mirrored: bool = False

    def upright(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` (HxW...) as displayed."""
        turned = upright(pixels, self.degrees)
        return np.ascontiguousarray(turned[:, ::-1]) if self.mirrored else turned


def _display_matrix(frame) -> np.ndarray | None:
    """The frame's display matrix (FFmpeg's 3x3 of int32, row-major), if PyAV exposes it."""
    side_data = getattr(frame, "side_data", None)
    if side_data is None or not hasattr(side_data, "keys"):
        return None
    for kind in side_data.keys():
        if getattr(kind, "name", "") == "DISPLAYMATRIX":
            matrix = np.frombuffer(bytes(side_data[kind]), "<i4")
            return matrix if matrix.size == 9 else None
    return None


def orientation(frame, stream=None) -> Orientation:
    """The :class:`Orientation` that displays a decoded ``frame`` upright, as players do.

    Read from the frame's display matrix (a negative determinant mirrors; FFmpeg's own autorotation
    reads it the same way). Without one: PyAV's ``VideoFrame.rotation`` (signed, counter-clockwise),
    or on older PyAV the stream's ``rotate`` metadata (clockwise). Other angles snap to the nearest
    quarter turn."""
    matrix = _display_matrix(frame)
    if matrix is not None:
        a, b, c, d = (float(v) for v in matrix[[0, 1, 3, 4]])
        mirrored = a * d - b * c < 0
        degrees = math.degrees(math.atan2(-b, -a if mirrored else a))
        return Orientation(_quarter_turn(degrees), mirrored)
    degrees = getattr(frame, "rotation", None)
    if degrees is None and stream is not None:
        try:
            degrees = -float(stream.metadata.get("rotate", 0))
        except ValueError:  # a malformed tag: show the frames as stored
            degrees = 0
    return Orientation(_quarter_turn(degrees or 0))


def _quarter_turn(degrees: float) -> int:
    return int(round(degrees / 90)) % 4 * 90


def upright(pixels: np.ndarray, degrees: int) -> np.ndarray:
    """``pixels`` (HxW...) turned ``degrees`` counter-clockwise, a multiple of 90."""
    turns = degrees // 90 % 4
    return pixels if turns == 0 else np.ascontiguousarray(np.rot90(pixels, turns))


def probe(path: str | Path) -> VideoInfo:
    """The video's :class:`VideoInfo`, or a :class:`BadVideoError` if it cannot be segmented."""
    av = av_module()
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise BadVideoError(f"{path}: holds no video stream (expected a video file)")
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps or stream.codec_context.width <= 0:
            raise BadVideoError(f"{path}: video stream without a frame rate or size; re-mux it "
                                "(ffmpeg -i in -c copy out.mp4)")
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        # The rotation tag reaches PyAV on decoded frames, so the displayed size needs the first one.
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError) as exc:
            raise BadVideoError(f"{path}: cannot decode frame 0 ({_reason(exc)})") from None
        if first is None:
            raise BadVideoError(f"{path}: no decodable video frame")
        shown = orientation(first, stream)
        width, height = first.width, first.height
        if shown.degrees in (90, 270):
            width, height = height, width
        return VideoInfo(width, height, Fraction(fps), stream.frames or None, audio, shown.degrees, shown.mirrored)


def read(path: str | Path, audio: bool = False) -> Iterator[tuple[str, object]]:
    """``("video", HxWx3 uint8 RGB)`` per frame in order, upright (the rotation tag applied); with
    ``audio``, also ``("audio", packet)`` for the first audio track's packets, interleaved as they are
    in the file."""
    av = av_module()
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise BadVideoError(f"{path}: holds no video stream (expected a video file)")
        video = container.streams.video[0]
        video.thread_type = "AUTO"  # frame-threaded decoding
        streams = [video, *container.streams.audio[:1]] if audio else [video]
        index = 0
        try:
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:  # not the empty flush packet
                        yield "audio", packet
                    continue
                for frame in packet.decode():
                    yield "video", orientation(frame, video).upright(frame.to_ndarray(format="rgb24"))
                    index += 1
        except (av.FFmpegError, OSError) as exc:
            raise BadVideoError(f"{path}: cannot decode frame {index} ({_reason(exc)})") from None
        if index == 0:
            raise BadVideoError(f"{path}: no decodable video frame")


def frames(path: str | Path) -> Iterator[np.ndarray]:
    """The video's frames as upright HxWx3 uint8 RGB arrays, in order."""
    for _, frame in read(path):
        yield frame


class Writer:
    """H.264 ``.mp4`` writer: frames via :meth:`write`, audio packets via :meth:`mux_audio`.

    Frames are stored as given (upright, ``info``'s size) with no rotation tag, so every player shows
    them alike.

    Writes to a temporary name beside ``path`` and renames it on :meth:`close`, so a failed run leaves
    no partial file under the final name (:meth:`abort` removes the temporary file).
    """

    def __init__(self, path: str | Path, info: VideoInfo, audio_template=None,
                 options: dict[str, str] | None = None):
        av = av_module()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.mp4")
        self._container = av.open(str(self._tmp), "w", format="mp4")
        try:
            self._video = self._container.add_stream("libx264", rate=info.fps)
            self._video.width, self._video.height = info.width, info.height
            # 4:2:0 (what every player takes) needs even sizes; odd ones keep full chroma instead.
            even = info.width % 2 == 0 and info.height % 2 == 0
            self._video.pix_fmt = "yuv420p" if even else "yuv444p"
            self._video.options = dict(options or ENCODER_OPTIONS)
            self._audio, self._transcode = None, False
            if audio_template is not None:
                if audio_template.codec_context.name in _MP4_AUDIO:
                    self._audio = self._container.add_stream_from_template(audio_template)
                else:  # e.g. Vorbis from a .webm: mp4 cannot hold it
                    self._audio = self._container.add_stream("aac", rate=audio_template.rate)
                    self._transcode = True
            self._index = 0
        except BaseException:
            self.abort()
            raise

    def write(self, rgb: np.ndarray) -> None:
        av = av_module()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._index
        self._index += 1
        self._container.mux(self._video.encode(frame))

    def mux_audio(self, packet) -> None:
        if self._audio is None:
            return
        if not self._transcode:
            packet.stream = self._audio
            self._container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers its own samples
            self._container.mux(self._audio.encode(frame))

    @property
    def frames(self) -> int:
        return self._index

    def close(self) -> None:
        """Flush the encoders and move the file to its final name."""
        try:
            self._container.mux(self._video.encode(None))
            if self._transcode:
                self._container.mux(self._audio.encode(None))
            self._container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # already failing: the temporary file goes either way
            pass
        self._tmp.unlink(missing_ok=True)
