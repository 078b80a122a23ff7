"""Segmentation loss: pixel cross-entropy, label 255 ignored, optional class weights and OHEM."""
from __future__ import annotations

from edge_deeplab._optional import tensorflow
from edge_deeplab.metrics import IGNORE_INDEX
from edge_deeplab.train.config import TrainConfig

tf = tensorflow("training")


class SegmentationLoss:
    """Mean cross-entropy over the valid pixels of one replica's batch.

    ``ohem_ratio < 1`` averages only the hardest fraction of valid pixels (online hard example mining);
    class weights scale each pixel's loss by its true class' weight.
    """

    def __init__(self, config: TrainConfig, num_classes: int):
        self.num_classes = num_classes
        self.ohem_ratio = config.ohem_ratio
        self.smoothing = config.label_smoothing
        weights = config.class_weights or (1.0,) * num_classes
        if len(weights) != num_classes:
            from edge_deeplab.errors import ConfigError
            raise ConfigError(f"class_weights has {len(weights)} values but the model has "
                              f"{num_classes} classes")
        self.class_weights = tf.constant(weights, tf.float32)

    def __call__(self, labels, logits):
        labels = tf.reshape(labels, [-1])
        logits = tf.reshape(tf.cast(logits, tf.float32), [-1, self.num_classes])
        valid = tf.not_equal(labels, IGNORE_INDEX) & (labels < self.num_classes)
        safe = tf.where(valid, labels, tf.zeros_like(labels))
        target = tf.one_hot(safe, self.num_classes)
        if self.smoothing:
            target = target * (1 - self.smoothing) + self.smoothing / self.num_classes
        pixel = tf.nn.softmax_cross_entropy_with_logits(target, logits)
        pixel *= tf.gather(self.class_weights, safe)
        pixel = tf.where(valid, pixel, tf.zeros_like(pixel))
        count = tf.reduce_sum(tf.cast(valid, tf.float32))
        if self.ohem_ratio < 1.0:
            keep = tf.maximum(1, tf.cast(count * self.ohem_ratio, tf.int32))
            hardest = tf.math.top_k(pixel, k=keep).values  # invalid pixels are 0, so they sort last
            return tf.reduce_mean(hardest)
        return tf.reduce_sum(pixel) / tf.maximum(count, 1.0)
