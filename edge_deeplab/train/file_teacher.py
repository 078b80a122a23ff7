"""A distillation teacher from any person-segmentation model file the runtimes can run.

The teacher's per-pixel person probability comes through the same :class:`Segmenter` as
``segment`` (input size, normalization and output decoding from the model itself), computed once per
training image, at the image's own resolution; with several files (``teacher_ensemble``) their mean, and
with ``teacher_tiles`` the mean over overlapping tiles of a wide image. It serves two purposes:

- on labelled images, a soft target the student also learns (``distill_weight``);
- on unlabelled images, pseudo-labels: person where the probability is at least
  ``pseudo_label_band[1]``, background at most ``pseudo_label_band[0]``, ignored (255) between.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_deeplab.errors import BadModelError, ConfigError, EdgeDeeplabError

# Suffixes that name a model file rather than a Keras run/zoo teacher.
FILE_TEACHER_SUFFIXES = (".tflite", ".onnx", ".xml")
IGNORE = 255


def is_model_file(spec: str) -> bool:
    return str(spec).lower().endswith(FILE_TEACHER_SUFFIXES)


class FileTeacher:
    """Person probability (uint8 0-255) of a one-foreground segmentation model file."""

    def __init__(self, path: str | Path, threads: int | None = None):
        from edge_deeplab.processing import Segmenter
        from edge_deeplab.runtimes import load_runtime
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"teacher '{path}': no such file")
        try:
            self.segmenter = Segmenter(load_runtime(self.path, threads=threads))
        except EdgeDeeplabError as exc:
            raise ConfigError(f"teacher '{path}' cannot be used: {exc}") from None
        output = self.segmenter.output
        if output.kind == "labels" or (output.kind == "scores" and output.channels != 2):
            what = ("a class map" if output.kind == "labels"
                    else f"{output.channels}-class scores")
            raise ConfigError(f"teacher '{path}' outputs {what}; a model-file teacher must output one "
                              "person probability/logit channel or 2-class (background, person) scores")

    def probability(self, image: np.ndarray) -> np.ndarray:
        """(H, W) uint8 person probability x 255 at ``image``'s size; ``segment --no-refine``'s mask is
        this >= 128 (no guided-filter refinement: the model's own prediction)."""
        try:
            return self.segmenter(image, with_alpha=True).alpha
        except EdgeDeeplabError as exc:
            raise BadModelError(f"teacher '{self.path}' failed to run: {exc}") from None


class MeanTeacher:
    """The mean person probability of several :class:`FileTeacher` s (an ensemble teacher)."""

    def __init__(self, teachers: list[FileTeacher]):
        self.teachers = teachers
        self.path = " + ".join(str(t.path) for t in teachers)

    def probability(self, image: np.ndarray) -> np.ndarray:
        total = sum(t.probability(image).astype(np.uint16) for t in self.teachers)
        return ((total + len(self.teachers) // 2) // len(self.teachers)).astype(np.uint8)


class TiledTeacher:
    """A teacher run on overlapping tiles of a wide image, each tile's probability averaged where tiles
    overlap: a 16:9 frame squashed into a teacher's input leaves a distant person a few pixels wide;
    three 4:3 tiles give it 1.33x the width (the mean of MediaPipe's two models on DAVIS people/val:
    person IoU 0.686 on the frame, 0.799 over three 4:3 tiles)."""

    def __init__(self, teacher: FileTeacher | MeanTeacher, tiles: int, aspect: float):
        self.teacher, self.tiles, self.aspect = teacher, tiles, aspect
        self.path = f"{teacher.path} (on {tiles} tiles of {aspect:.3g}:1)"

    def windows(self, width: int, height: int) -> list[tuple[int, int]]:
        """(left, right) column ranges: evenly spaced, at least ``tiles`` and enough to cover the width;
        one (the whole image) when it is no wider than a tile."""
        tile = max(1, round(height * self.aspect))
        if tile >= width:
            return [(0, width)]
        count = max(self.tiles, -(-width // tile))
        return [(left, left + tile) for left in np.linspace(0, width - tile, count).round().astype(int)]

    def probability(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        windows = self.windows(width, height)
        if len(windows) == 1:
            return self.teacher.probability(image)
        total = np.zeros((height, width), np.uint32)
        count = np.zeros(width, np.uint32)
        for left, right in windows:
            total[:, left:right] += self.teacher.probability(np.ascontiguousarray(image[:, left:right]))
            count[left:right] += 1
        return ((total + count // 2) // count).astype(np.uint8)


def file_teacher(paths: list[str | Path], threads: int | None = None, tiles: int = 1,
                 tile_aspect: float = 4 / 3) -> FileTeacher | MeanTeacher | TiledTeacher:
    """One model-file teacher or the mean of several, on ``tiles`` tiles of wide images when > 1."""
    teachers = [FileTeacher(path, threads) for path in paths]
    teacher = teachers[0] if len(teachers) == 1 else MeanTeacher(teachers)
    return TiledTeacher(teacher, tiles, tile_aspect) if tiles > 1 else teacher


def ignore_disputed(mask: np.ndarray, probability: np.ndarray, threshold: float) -> np.ndarray:
    """``mask`` with background (0) pixels the teacher rates at least ``threshold`` person probability
    set to ignored: single-object video masks (DAVIS) label the one performer and leave the crowd
    behind as background, which would teach the student that bystanders are not people."""
    if probability.shape != mask.shape:
        from PIL import Image
        probability = np.asarray(Image.fromarray(probability).resize(mask.shape[::-1], Image.BILINEAR))
    disputed = (mask == 0) & (probability >= round(255 * threshold))
    if not disputed.any():
        return mask
    mask = mask.copy()
    mask[disputed] = IGNORE
    return mask


def pseudo_labels(probability: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """0/1 labels where the teacher is sure, 255 (ignored) where its probability is inside ``band``.

    A degenerate band (low == high) thresholds there: at 0.5 it gives ``segment --no-refine``'s mask.
    """
    low, high = (round(255 * b) for b in band)
    if low == high:
        return (probability >= high).astype(np.uint8)
    labels = np.full(probability.shape, IGNORE, np.uint8)
    labels[probability <= low] = 0
    labels[probability >= high] = 1
    return labels
