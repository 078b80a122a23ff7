"""tf.data input pipeline: cached image/mask folders, deterministic per-sample augmentation.

Every random choice is a stateless op seeded by (seed, epoch, position in the epoch), and the epoch's
order is a seeded permutation, so the batches of any epoch, from any step, are reproducible: that is
what makes ``--resume`` give the same result as an uninterrupted run.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edge_deeplab._optional import tensorflow
from edge_deeplab.datasets import list_pairs, load_mask
from edge_deeplab.errors import DatasetError
from edge_deeplab.imaging import load_image
from edge_deeplab.processing import resize_rgb
from edge_deeplab.train.config import TrainConfig

tf = tensorflow("training")


@dataclass
class CachedSet:
    """A dataset folder decoded once: images stretched to one size (as inference does), masks beside."""

    images: np.ndarray  # (N, H, W, 3) uint8
    masks: list[np.ndarray]  # (H, W) uint8 each; at ``images``' size, or the original size for val
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)


def load_folder(folder, size: tuple[int, int], masks_at_size: bool = True) -> CachedSet:
    """Decode ``folder`` (images/ + masks/); ``masks_at_size=False`` keeps masks at their own size."""
    pairs = list_pairs(folder)
    height, width = size

    def one(pair):
        image = resize_rgb(load_image(pair.image), width, height)
        mask = load_mask(pair.mask)
        if masks_at_size:
            mask = np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))
        return image, mask

    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(one, pairs))
    return CachedSet(np.stack([im for im, _ in loaded]), [m for _, m in loaded],
                     [p.image.stem for p in pairs])


def epoch_order(seed: int, epoch: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's sample order and, per position, the sample used as a canvas for zoom-out pastes."""
    order = np.random.default_rng([seed, epoch, 0]).permutation(count)
    canvas = np.random.default_rng([seed, epoch, 1]).permutation(count)
    return order, canvas


class Augmenter:
    """Random scale + crop/pad, framing zoom-out (paste onto another sample), flip, colour jitter."""

    def __init__(self, config: TrainConfig, input_size: tuple[int, int]):
        self.config = config
        self.height, self.width = input_size

    def _uniform(self, seed, low, high):
        return tf.random.stateless_uniform([], seed, low, high)

    def _offset(self, seed, room):
        return tf.random.stateless_uniform([], seed, 0, room + 1, dtype=tf.int32)

    def __call__(self, image, mask, canvas_image, canvas_mask, seed):
        c = self.config
        seeds = tf.random.experimental.stateless_split(seed, 10)
        zoom_out = self._uniform(seeds[0], 0.0, 1.0) < c.zoom_out_prob
        scale = tf.where(zoom_out, self._uniform(seeds[1], *c.zoom_out_range),
                         self._uniform(seeds[1], *c.scale_range))
        new_h = tf.maximum(1, tf.cast(tf.round(self.height * scale), tf.int32))
        new_w = tf.maximum(1, tf.cast(tf.round(self.width * scale), tf.int32))
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [new_h, new_w])
        mask = tf.image.resize(tf.cast(mask[..., None], tf.float32), [new_h, new_w], method="nearest")
        # Place the sample on a canvas at least the input size, then crop the input size out of it.
        room_h, room_w = tf.maximum(self.height - new_h, 0), tf.maximum(self.width - new_w, 0)
        top, left = self._offset(seeds[2], room_h), self._offset(seeds[3], room_w)
        stack = tf.concat([image, mask, tf.ones_like(mask)], axis=-1)  # last channel: sample pixels
        stack = tf.image.pad_to_bounding_box(stack, top, left, new_h + room_h, new_w + room_w)
        stack = tf.image.stateless_random_crop(stack, [self.height, self.width, 5], seeds[4])
        image, mask, inside = stack[..., :3], stack[..., 3:4], stack[..., 4:5] > 0.5
        # Outside the sample: another sample's pixels and labels (zoom-out), else grey + pad_label.
        back_image = tf.image.resize(tf.cast(canvas_image, tf.float32) / 255.0, [self.height, self.width])
        back_mask = tf.image.resize(tf.cast(canvas_mask[..., None], tf.float32),
                                    [self.height, self.width], method="nearest")
        back_image = tf.where(zoom_out, back_image, tf.fill(tf.shape(back_image), 0.5))
        back_mask = tf.where(zoom_out, back_mask, tf.fill(tf.shape(back_mask), float(c.pad_label)))
        image = tf.where(inside, image, back_image)
        mask = tf.where(inside, mask, back_mask)
        if c.hflip:
            stack = tf.image.stateless_random_flip_left_right(tf.concat([image, mask], -1), seeds[5])
            image, mask = stack[..., :3], stack[..., 3:]
        if c.color_jitter:
            j = c.color_jitter
            image = tf.image.stateless_random_brightness(image, 0.5 * j, seeds[6])
            image = tf.image.stateless_random_contrast(image, 1 - j, 1 + j, seeds[7])
            image = tf.image.stateless_random_saturation(image, 1 - j, 1 + j, seeds[8])
            image = tf.clip_by_value(image, 0.0, 1.0)
        return image, tf.cast(mask[..., 0], tf.int32)


def train_dataset(data: CachedSet, config: TrainConfig, input_size: tuple[int, int], epoch: int,
                  start_step: int = 0):
    """Batches of epoch ``epoch`` from step ``start_step`` on: ((B, H, W, 3) float [0, 1], (B, H, W) int)."""
    batch = config.batch_size
    if len(data) < batch:
        raise DatasetError(f"the training set has {len(data)} images, fewer than batch_size {batch}; "
                           "lower batch_size in the training config")
    order, canvas = epoch_order(config.seed, epoch, len(data))
    positions = np.arange(len(data))
    first = start_step * batch
    masks = np.stack(data.masks)
    augment = Augmenter(config, input_size)
    cached_h, cached_w = data.images.shape[1:3]

    def fetch(index, canvas_index):
        return data.images[index], masks[index], data.images[canvas_index], masks[canvas_index]

    def load(index, canvas_index, position):
        image, mask, back_image, back_mask = tf.numpy_function(
            fetch, [index, canvas_index], [tf.uint8, tf.uint8, tf.uint8, tf.uint8], stateful=False)
        for t, channels in ((image, 3), (mask, None), (back_image, 3), (back_mask, None)):
            t.set_shape([cached_h, cached_w] + ([channels] if channels else []))
        seed = tf.stack([tf.constant(config.seed, tf.int64), epoch * (1 << 24) + position])
        return augment(image, mask, back_image, back_mask, seed)

    ds = tf.data.Dataset.from_tensor_slices((order[first:], canvas[first:], positions[first:]))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(2)


def steps_per_epoch(data: CachedSet, config: TrainConfig) -> int:
    return len(data) // config.batch_size
