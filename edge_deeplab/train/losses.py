"""Segmentation loss: pixel cross-entropy, label 255 ignored, optional class weights, OHEM, a
Lovasz-softmax term (a convex surrogate of 1 - IoU, Berman et al., CVPR 2018) and distillation from a
teacher's logits."""
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
        self.lovasz_weight = config.lovasz_weight
        self.distill_weight = config.distill_weight if config.teacher else 0.0
        self.temperature = config.distill_temperature

    def __call__(self, labels, logits, teacher_logits=None):
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
            loss = tf.reduce_mean(tf.math.top_k(pixel, k=keep).values)  # invalid pixels are 0: last
        else:
            loss = tf.reduce_sum(pixel) / tf.maximum(count, 1.0)
        if self.lovasz_weight:
            loss += self.lovasz_weight * lovasz_softmax(tf.nn.softmax(logits), safe, valid, self.num_classes)
        if teacher_logits is not None and self.distill_weight:
            teacher_logits = tf.reshape(tf.cast(teacher_logits, tf.float32), [-1, self.num_classes])
            loss += self.distill_weight * distillation(logits, teacher_logits, valid, self.temperature)
        return loss


def distillation(logits, teacher_logits, valid, temperature: float):
    """Mean over valid pixels of KL(teacher || student) at ``temperature``, times temperature^2 (so its
    gradients keep their scale as the temperature changes, Hinton et al. 2015)."""
    teacher = tf.nn.softmax(tf.stop_gradient(teacher_logits) / temperature)
    kl = tf.reduce_sum(teacher * (tf.math.log(tf.maximum(teacher, 1e-12))
                                  - tf.nn.log_softmax(logits / temperature)), axis=-1)
    mask = tf.cast(valid, tf.float32)
    return temperature ** 2 * tf.reduce_sum(kl * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def lovasz_softmax(probs, labels, valid, num_classes: int):
    """Mean over the classes present in ``labels`` of the Lovasz extension of the Jaccard loss.

    ``probs`` (N, C) softmax, ``labels`` (N,) class ids, ``valid`` (N,) bool. For hard 0/1 probabilities
    a class' term is exactly 1 - IoU, so minimizing it optimizes the metric the model is judged by.
    """
    mask = tf.cast(valid, tf.float32)
    losses, present = [], []
    for c in range(num_classes):
        truth = tf.cast(tf.equal(labels, c), tf.float32) * mask
        # Ignored pixels get error 0 and truth 0: they sort last and add nothing to the dot product.
        errors = tf.abs(truth - probs[:, c]) * mask
        errors_sorted, order = tf.math.top_k(errors, k=tf.shape(errors)[0])
        truth_sorted = tf.gather(truth, order)
        total = tf.reduce_sum(truth_sorted)
        intersection = total - tf.cumsum(truth_sorted)
        union = total + tf.cumsum(1.0 - truth_sorted)
        jaccard = 1.0 - intersection / tf.maximum(union, 1e-6)
        gradient = tf.concat([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)
        losses.append(tf.tensordot(errors_sorted, gradient, 1))
        present.append(tf.cast(total > 0, tf.float32))
    losses, present = tf.stack(losses), tf.stack(present)
    return tf.reduce_sum(losses * present) / tf.maximum(tf.reduce_sum(present), 1.0)
