"""Small video files for the tests, written with PyAV (the `video` extra)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

RATE = 16000  # audio sample rate


def make_clip(path: Path, frames: list[np.ndarray], fps: int = 12, audio: str | None = None,
              codec: str = "libx264", rotation: int | None = None, mirror: bool = False) -> Path:
    """A clip of ``frames`` (HxWx3 uint8) at ``fps``; ``audio``: an audio codec (``aac``, ``libopus``,
    ``pcm_s16le``...) for a mono sine track as long as the video; ``rotation``: a display-matrix tag
    turning the frames that many degrees counter-clockwise for display, as a phone writes one, then with
    ``mirror`` flipping them left to right."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        if rotation is not None:
            stream.set_display_rotation(rotation, hflip=mirror)
        sound = None
        if audio is not None:
            sound = container.add_stream(audio, rate=48000 if audio == "libopus" else RATE, layout="mono")
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            rate = sound.rate
            samples = int(rate * len(frames) / fps)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
            for start in range(0, samples, 960):
                chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 960], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, start, Fraction(1, rate)
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An .mp4 that holds an AAC track and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=RATE, layout="mono")
        wave = np.zeros(int(RATE * seconds), np.float32)
        for start in range(0, len(wave), 1024):
            chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = RATE, start, Fraction(1, RATE)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    return path


def stream_info(path: Path) -> dict:
    """Frame count (decoded), size, frame rate and audio codec of a video file."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        count = sum(1 for _ in container.decode(video))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return {"frames": count, "size": (video.codec_context.width, video.codec_context.height),
                "fps": video.average_rate, "audio": audio, "codec": video.codec_context.name}
