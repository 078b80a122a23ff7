"""Composite augmentation: people cut out with their masks, pasted onto other scenes.

One to ``paste_max`` people, each from a random labelled sample, scaled to a random share of the
canvas height (with a little aspect jitter), at a random place, onto a background: preferably an
unlabelled scene frame (keeping its pseudo-labels), else another sample (keeping its labels). So the
model sees whole people at many sizes, several at a time, in streets, fields and kitchens, not only
the framing of the sets it was labelled on.

Targets travel as (H, W, K) uint8 planes: labels (255 = ignore) and, with a model-file teacher, the
teacher's person probability. Pasted pixels are person (label 1, probability 255).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

PERSON = 1


def person_box(labels: np.ndarray, min_pixels: int = 64) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of the person pixels, or None when there are too few to cut out."""
    person = labels == PERSON
    if int(person.sum()) < min_pixels:
        return None
    rows, cols = np.flatnonzero(person.any(axis=1)), np.flatnonzero(person.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def paste_person(rng: np.random.Generator, image: np.ndarray, targets: np.ndarray,
                 donor_image: np.ndarray, donor_labels: np.ndarray, box: tuple[int, int, int, int],
                 height_range: tuple[float, float]) -> None:
    """Paste the donor's person (inside ``box``) into ``image``/``targets`` in place."""
    canvas_h, canvas_w = image.shape[:2]
    top, left, bottom, right = box
    crop = donor_image[top:bottom, left:right]
    alpha = (donor_labels[top:bottom, left:right] == PERSON).astype(np.uint8) * 255
    new_h = max(4, int(round(rng.uniform(*height_range) * canvas_h)))
    aspect = float(np.exp(rng.uniform(-0.25, 0.25)))
    new_w = max(2, min(canvas_w, int(round(new_h * crop.shape[1] / crop.shape[0] * aspect))))
    crop = np.asarray(Image.fromarray(crop).resize((new_w, new_h), Image.BILINEAR))
    # A slightly soft edge for the pixels, a hard one for the labels: no cut-out seam to learn from.
    alpha_img = Image.fromarray(alpha).resize((new_w, new_h), Image.BILINEAR)
    labels_in = np.asarray(alpha_img) >= 128
    soft = np.asarray(alpha_img.filter(ImageFilter.GaussianBlur(0.6)), np.uint16)
    # Anywhere from partly off the left edge to partly off the right. A person the donor frame cuts
    # at the bottom (a portrait's torso) stands on the bottom edge, as someone close to the camera
    # does; a whole person anywhere from the top to partly below the bottom edge.
    if bottom >= donor_labels.shape[0]:
        y = canvas_h - new_h + int(rng.integers(0, new_h // 4 + 1))
    else:
        y = int(rng.integers(-new_h // 5, max(canvas_h - new_h // 2, 1)))
    x = int(rng.integers(-new_w // 3, max(canvas_w - 2 * new_w // 3, 1)))
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + new_h, canvas_h), min(x + new_w, canvas_w)
    if y1 <= y0 or x1 <= x0:
        return
    sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
    a = soft[sy, sx, None]
    region = image[y0:y1, x0:x1].astype(np.uint16)
    image[y0:y1, x0:x1] = ((crop[sy, sx] * a + region * (255 - a) + 127) // 255).astype(np.uint8)
    inside = labels_in[sy, sx]
    targets[y0:y1, x0:x1, 0][inside] = PERSON
    if targets.shape[2] > 1:
        targets[y0:y1, x0:x1, 1][inside] = 255


class Compositor:
    """Builds composites from a cached set's arrays; every draw comes from the given generator."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, labelled: np.ndarray,
                 paste_max: int, height_range: tuple[float, float]):
        self.images, self.targets = images, targets
        self.paste_max, self.height_range = paste_max, height_range
        boxes = [person_box(targets[i, ..., 0]) if labelled[i] else None for i in range(len(images))]
        self.donors = [i for i, box in enumerate(boxes) if box is not None]
        self.boxes = boxes
        scenes = np.flatnonzero(~labelled)
        self.backgrounds = scenes if len(scenes) else np.arange(len(images))

    @property
    def usable(self) -> bool:
        return bool(self.donors)

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        background = int(rng.choice(self.backgrounds))
        image, targets = self.images[background].copy(), self.targets[background].copy()
        for _ in range(int(rng.integers(1, self.paste_max + 1))):
            donor = self.donors[int(rng.integers(len(self.donors)))]
            paste_person(rng, image, targets, self.images[donor], self.targets[donor, ..., 0],
                         self.boxes[donor], self.height_range)
        return image, targets
