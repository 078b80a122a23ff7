"""Image files in and out: any Pillow-readable photo to an upright RGB uint8 array; atomic PNG writes."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edge_deeplab.atomic import atomic_write
from edge_deeplab.errors import BadImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def open_image(path: str | Path) -> Image.Image:
    """Decode ``path`` fully (so a truncated file fails here) with its EXIF orientation applied."""
    path = Path(path)
    if not path.is_file():
        raise BadImageError(f"{path}: {'is a folder' if path.is_dir() else 'no such file'}, expected an image")
    try:
        image = Image.open(path)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of an upright photo
        return image
    except UnidentifiedImageError:
        kind = "an empty file" if path.stat().st_size == 0 else "not an image Pillow can read"
        raise BadImageError(f"{path}: {kind} (expected JPEG, PNG, WebP or BMP)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImageError(f"{path}: cannot decode the image ({exc})") from None


def to_rgb(image: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB from any mode: grayscale, palette, RGBA/LA (over white), CMYK, 16-bit, float."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        peak = 255.0 if values.max(initial=0) <= 255 else 65535.0  # 8-bit data stored wide, or true 16-bit
        gray = np.clip(values * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode == "La":  # premultiplied: Pillow converts it to LA only
        image = image.convert("LA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an upright HxWx3 uint8 RGB array, or raise :class:`BadImageError`."""
    image = open_image(path)
    try:
        return to_rgb(image)
    except (OSError, ValueError) as exc:
        raise BadImageError(f"{path}: unsupported image mode {image.mode!r} ({exc})") from None


def centre_window(height: int, width: int, aspect: float) -> tuple[slice, slice]:
    """(rows, cols) of the largest centred window of width/height ``aspect`` in a ``height`` x ``width`` image."""
    if width / height > aspect:
        cropped = max(1, round(height * aspect))
        left = (width - cropped) // 2
        return slice(0, height), slice(left, left + cropped)
    cropped = max(1, round(width / aspect))
    top = (height - cropped) // 2
    return slice(top, top + cropped), slice(0, width)


def iter_image_files(inputs: Iterable[str | Path], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Iterator[Path]:
    """Expand files and folders (files with one of ``suffixes``, sorted, not recursive) into paths, in
    order.

    A named file is yielded whatever its suffix, so a bad one gets reported rather than ignored.
    """
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir()
                              if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))
        else:
            yield path


# Formats an output may be written in, by suffix; what Pillow's writer needs besides the format.
WRITERS = {".png": ("PNG", {"compress_level": 1}),  # masks compress well even at the fast level
           ".jpg": ("JPEG", {"quality": 92}), ".jpeg": ("JPEG", {"quality": 92}),
           ".webp": ("WEBP", {"quality": 90})}


def save_image(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array (HxW, HxWx3 or HxWx4) atomically, in the format its suffix names (PNG, JPEG,
    WebP; see ``WRITERS``)."""
    path = Path(path)
    fmt, options = WRITERS[path.suffix.lower()]
    image = Image.fromarray(np.ascontiguousarray(array))
    with atomic_write(path, "wb") as file:
        image.save(file, format=fmt, **options)


def save_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array (HxW or HxWx3) as PNG atomically."""
    image = Image.fromarray(np.ascontiguousarray(array))
    with atomic_write(path, "wb") as file:
        image.save(file, format="PNG", compress_level=1)  # masks compress well even at the fast level
