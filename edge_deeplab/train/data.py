"""tf.data input pipeline: cached image/mask folders, deterministic per-sample augmentation.

Every random choice is a stateless op seeded by (seed, epoch, position in the epoch), and the epoch's
order is a seeded permutation, so the batches of any epoch, from any step, are reproducible: that is
what makes ``--resume`` give the same result as an uninterrupted run.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge_deeplab._optional import tensorflow
from edge_deeplab.datasets import MaskValues, list_pairs, load_mask
from edge_deeplab.errors import DatasetError
from edge_deeplab.imaging import centre_window, load_image
from edge_deeplab.processing import resize_rgb
from edge_deeplab.train.config import TrainConfig

tf = tensorflow("training")


@dataclass
class CachedSet:
    """Dataset folders decoded once: images stretched to one size (as inference does), masks beside."""

    images: np.ndarray  # (N, H, W, 3) uint8
    masks: list[np.ndarray]  # (H, W) uint8 each; at ``images``' size, or the original size for val
    names: list[str]
    soft: np.ndarray | None = None  # (N, H, W) uint8 person probability of a model-file teacher
    labelled: np.ndarray | None = None  # (N,) bool; False: masks are a teacher's pseudo-labels

    def __len__(self) -> int:
        return len(self.names)

    @property
    def is_labelled(self) -> np.ndarray:
        return np.ones(len(self), bool) if self.labelled is None else self.labelled


def folder_sources(folder, has_teacher: bool, person_free=None) -> list[tuple[Path, Path | None]]:
    """(image, mask) of a dataset folder, or (image, None) of an unlabelled one, which needs a
    model-file teacher to label it unless ``person_free`` (a :class:`PersonFree`) covers every image;
    listing only, so a run checks its folders before decoding any."""
    from edge_deeplab.datasets import is_unlabelled, list_images
    if not is_unlabelled(folder):
        return [tuple(pair) for pair in list_pairs(folder)]
    images = list_images(folder)
    if not has_teacher and not (person_free and all(person_free.matches(path.stem) for path in images)):
        raise DatasetError(f"{folder} has images/ but no masks/; an unlabelled folder needs a model-file "
                           "teacher to label it (train.teacher: e.g. a person segmentation .tflite), or a "
                           "train.person_free entry covering its images")
    return [(path, None) for path in images]


def load_folder(folder, size: tuple[int, int], masks_at_size: bool = True, teacher=None,
                band: tuple[float, float] = (0.3, 0.7), relabel: np.ndarray | None = None,
                disputed: float = 0.0, crop: bool = False, person_free=None,
                num_classes: int | None = None) -> CachedSet:
    """Decode ``folder`` (images/ + masks/); ``masks_at_size=False`` keeps masks at their own size;
    ``relabel``: a 256-entry table applied to the masks (:meth:`ClassMap.lookup`); ``crop``: each image
    centre-cropped to ``size``'s aspect ratio first (with its mask and teacher probability).

    With ``teacher`` (a :class:`~edge_deeplab.train.file_teacher.FileTeacher`) its person probability
    is kept beside each image, and a folder without masks/ is labelled by it (pseudo-labels, ``band``);
    ``disputed`` > 0: background pixels it rates at least that person probability are ignored.
    ``person_free`` (a :class:`PersonFree`): the unlabelled images it matches are background
    everywhere, their teacher probability 0. Masks (after ``relabel``) must hold ``num_classes``' classes
    or 255 (:class:`~edge_deeplab.datasets.MaskValues`).
    """
    from edge_deeplab.train.file_teacher import ignore_disputed, pseudo_labels
    sources = folder_sources(folder, teacher is not None, person_free)
    unlabelled = sources[0][1] is None
    height, width = size
    values = MaskValues(folder, num_classes)

    def one(source):
        path, mask_path = source
        full = load_image(path)
        if mask_path is None and person_free is not None and person_free.matches(path.stem):
            mask = np.zeros(full.shape[:2], np.uint8)
            probability = mask if teacher is not None else None
        else:
            probability = teacher.probability(full) if teacher is not None else None
            mask = pseudo_labels(probability, band) if mask_path is None else load_mask(mask_path)
        if relabel is not None and mask_path is not None:
            mask = relabel[mask]
        if mask_path is not None:
            values.add(mask, mask_path)  # at full size: resizing could drop a stray value
        if disputed and mask_path is not None and probability is not None:
            mask = ignore_disputed(mask, probability, disputed)
        if crop:  # the teacher saw the whole photo, as it would at inference
            if mask.shape != full.shape[:2]:
                raise DatasetError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                                   f"{full.shape[1]}x{full.shape[0]}; crop_to_input_aspect needs them alike")
            rows, cols = centre_window(*full.shape[:2], width / height)
            full, mask = full[rows, cols], mask[rows, cols]
            probability = probability[rows, cols] if probability is not None else None
        if masks_at_size:
            mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
        if probability is not None:
            probability = np.asarray(Image.fromarray(probability).resize((width, height), Image.BILINEAR))
        return resize_rgb(full, width, height), mask, probability

    # The teacher's interpreter is not thread-safe: one worker when it runs.
    with ThreadPoolExecutor(1 if teacher is not None else 4) as pool:
        loaded = list(pool.map(one, sources))
    values.finish()
    return CachedSet(np.stack([im for im, _, _ in loaded]), [m for _, m, _ in loaded],
                     [path.stem for path, _ in sources],
                     np.stack([p for _, _, p in loaded]) if teacher is not None else None,
                     np.full(len(loaded), not unlabelled))


def load_folders(folders, size: tuple[int, int], teacher=None,
                 band: tuple[float, float] = (0.3, 0.7), relabel: dict | None = None,
                 disputed: float = 0.0, crop: bool = False, person_free: dict | None = None,
                 num_classes: int | None = None) -> CachedSet:
    """Several training folders as one set (labelled and unlabelled mixed); a folder given more than
    once weighs that many times but is decoded (and labelled by the teacher) once. ``relabel`` and
    ``person_free``: lookup tables and :class:`PersonFree` entries by resolved folder path."""
    relabel, person_free = relabel or {}, person_free or {}
    loaded: dict[Path, CachedSet] = {}
    for folder in folders:
        key = Path(folder).resolve()
        if key not in loaded:
            loaded[key] = load_folder(folder, size, teacher=teacher, band=band, relabel=relabel.get(key),
                                      disputed=disputed, crop=crop, person_free=person_free.get(key),
                                      num_classes=num_classes)
    sets = [loaded[Path(folder).resolve()] for folder in folders]
    if len(sets) == 1:
        return sets[0]
    return CachedSet(np.concatenate([s.images for s in sets]), [m for s in sets for m in s.masks],
                     [n for s in sets for n in s.names],
                     np.concatenate([s.soft for s in sets]) if teacher is not None else None,
                     np.concatenate([s.is_labelled for s in sets]))


def epoch_order(seed: int, epoch: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's sample order and, per position, the sample used as a canvas for zoom-out pastes."""
    order = np.random.default_rng([seed, epoch, 0]).permutation(count)
    canvas = np.random.default_rng([seed, epoch, 1]).permutation(count)
    return order, canvas


def rotate(image, angle, interpolation: str):
    """``image`` (H, W, C) rotated by ``angle`` radians about its centre; uncovered corners mirror it."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    cx, cy = (tf.cast(width, tf.float32) - 1) / 2, (tf.cast(height, tf.float32) - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Maps each output pixel (x, y) to where it is read from in the input.
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None], output_shape=tf.stack([height, width]),
        fill_value=0.0, interpolation=interpolation, fill_mode="REFLECT")[0]


class Augmenter:
    """Random scale (optionally anisotropic) + crop/pad, framing zoom-out (paste onto another sample), rotation, flip, colour
    and hue jitter.

    ``targets`` is (H, W, K): labels, then (with a model-file teacher) its person probability; every
    geometric change applies to all K planes alike.
    """

    def __init__(self, config: TrainConfig, input_size: tuple[int, int]):
        self.config = config
        self.height, self.width = input_size

    def _uniform(self, seed, low, high):
        return tf.random.stateless_uniform([], seed, low, high)

    def _offset(self, seed, room):
        return tf.random.stateless_uniform([], seed, 0, room + 1, dtype=tf.int32)

    def __call__(self, image, targets, canvas_image, canvas_targets, seed):
        c = self.config
        planes = targets.shape[-1]
        seeds = tf.random.experimental.stateless_split(seed, 10)
        zoom_out = self._uniform(seeds[0], 0.0, 1.0) < c.zoom_out_prob
        scale = tf.where(zoom_out, self._uniform(seeds[1], *c.zoom_out_range),
                         self._uniform(seeds[1], *c.scale_range))
        scale_h = scale_w = scale
        if c.aspect_jitter > 1:  # its own seed: configs without it keep their samples
            limit = float(np.log(c.aspect_jitter))
            stretch = tf.exp(self._uniform(tf.random.experimental.stateless_fold_in(seed, 11), -limit, limit) / 2)
            scale_h, scale_w = scale * stretch, scale / stretch
        new_h = tf.maximum(1, tf.cast(tf.round(self.height * scale_h), tf.int32))
        new_w = tf.maximum(1, tf.cast(tf.round(self.width * scale_w), tf.int32))
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [new_h, new_w])
        targets = tf.image.resize(tf.cast(targets, tf.float32), [new_h, new_w], method="nearest")
        # Place the sample on a canvas at least the input size, then crop the input size out of it.
        room_h, room_w = tf.maximum(self.height - new_h, 0), tf.maximum(self.width - new_w, 0)
        top, left = self._offset(seeds[2], room_h), self._offset(seeds[3], room_w)
        stack = tf.concat([image, targets, tf.ones_like(targets[..., :1])], axis=-1)  # last: inside
        depth = 3 + planes + 1
        stack = tf.image.pad_to_bounding_box(stack, top, left, new_h + room_h, new_w + room_w)
        stack = tf.image.stateless_random_crop(stack, [self.height, self.width, depth], seeds[4])
        image, targets, inside = stack[..., :3], stack[..., 3:3 + planes], stack[..., -1:] > 0.5
        # Outside the sample: another sample's pixels and targets (zoom-out), else grey + pad_label
        # (teacher probability 0 there).
        back_image = tf.image.resize(tf.cast(canvas_image, tf.float32) / 255.0, [self.height, self.width])
        back_targets = tf.image.resize(tf.cast(canvas_targets, tf.float32),
                                       [self.height, self.width], method="nearest")
        pad = tf.constant([float(c.pad_label)] + [0.0] * (planes - 1))
        back_image = tf.where(zoom_out, back_image, tf.fill(tf.shape(back_image), 0.5))
        back_targets = tf.where(zoom_out, back_targets, tf.zeros_like(back_targets) + pad)
        image = tf.where(inside, image, back_image)
        targets = tf.where(inside, targets, back_targets)
        more = tf.random.experimental.stateless_split(seeds[9], 2)
        if c.rotation_degrees:
            limit = c.rotation_degrees * np.pi / 180
            angle = self._uniform(more[0], -limit, limit)
            image = rotate(image, angle, "BILINEAR")
            targets = rotate(targets, angle, "NEAREST")
        if c.hflip:
            stack = tf.image.stateless_random_flip_left_right(tf.concat([image, targets], -1), seeds[5])
            image, targets = stack[..., :3], stack[..., 3:]
        if c.color_jitter:
            j = c.color_jitter
            image = tf.image.stateless_random_brightness(image, 0.5 * j, seeds[6])
            image = tf.image.stateless_random_contrast(image, 1 - j, 1 + j, seeds[7])
            image = tf.image.stateless_random_saturation(image, 1 - j, 1 + j, seeds[8])
        if c.hue_jitter:
            image = tf.image.stateless_random_hue(image, c.hue_jitter, more[1])
        if c.color_jitter or c.hue_jitter:
            image = tf.clip_by_value(image, 0.0, 1.0)
        labels = tf.cast(targets[..., 0], tf.int32)
        if planes == 1:
            return image, labels
        return image, labels, targets[..., 1] / 255.0


def train_dataset(data: CachedSet, config: TrainConfig, input_size: tuple[int, int], epoch: int,
                  start_step: int = 0):
    """Batches of epoch ``epoch`` from step ``start_step`` on: ((B, H, W, 3) float [0, 1], (B, H, W) int),
    plus (B, H, W) float teacher probabilities when ``data`` carries them."""
    from edge_deeplab.train.composite import Compositor
    batch = config.batch_size
    if len(data) < batch:
        raise DatasetError(f"the training set has {len(data)} images, fewer than batch_size {batch}; "
                           "lower batch_size in the training config")
    order, canvas = epoch_order(config.seed, epoch, len(data))
    positions = np.arange(len(data))
    first = start_step * batch
    targets = np.stack(data.masks)[..., None]
    if data.soft is not None:
        targets = np.concatenate([targets, data.soft[..., None]], axis=-1)
    planes = targets.shape[-1]
    compose = Compositor(data.images, targets, data.is_labelled, config.paste_max,
                         config.paste_height_range)
    pasting = config.paste_prob > 0 and compose.usable
    augment = Augmenter(config, input_size)
    cached_h, cached_w = data.images.shape[1:3]

    def fetch(index, canvas_index, position):
        image, target = data.images[index], targets[index]
        if pasting:
            rng = np.random.default_rng([config.seed, epoch, 2, int(position)])
            if rng.random() < config.paste_prob:
                image, target = compose(rng)
        return image, target, data.images[canvas_index], targets[canvas_index]

    def load(index, canvas_index, position):
        image, target, back_image, back_target = tf.numpy_function(
            fetch, [index, canvas_index, position], [tf.uint8] * 4, stateful=False)
        for t, channels in ((image, 3), (target, planes), (back_image, 3), (back_target, planes)):
            t.set_shape([cached_h, cached_w, channels])
        seed = tf.stack([tf.constant(config.seed, tf.int64), epoch * (1 << 24) + position])
        return augment(image, target, back_image, back_target, seed)

    ds = tf.data.Dataset.from_tensor_slices((order[first:], canvas[first:], positions[first:]))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(2)


def steps_per_epoch(data: CachedSet, config: TrainConfig) -> int:
    return len(data) // config.batch_size
