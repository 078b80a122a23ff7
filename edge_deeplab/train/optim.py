"""Optimizers, learning-rate schedules and tf.distribute strategies chosen by TrainConfig."""
from __future__ import annotations

import math

from edge_deeplab._optional import keras, tensorflow
from edge_deeplab.train.config import TrainConfig

tf = tensorflow("training")
tf_keras = keras()


class WarmupSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine / poly(0.9) decay to zero at ``total_steps``, or constant."""

    def __init__(self, base: float, total_steps: int, warmup_steps: int = 0, kind: str = "cosine"):
        self.base, self.total, self.warmup, self.kind = base, max(total_steps, 1), warmup_steps, kind

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = max(self.warmup, 1)
        progress = tf.clip_by_value((step - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0)
        if self.kind == "cosine":
            decayed = 0.5 * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "poly":
            decayed = (1.0 - progress) ** 0.9
        else:
            decayed = tf.ones_like(progress)
        warmup = tf.minimum(1.0, (step + 1.0) / warm) if self.warmup else 1.0
        return self.base * warmup * decayed

    def get_config(self):
        return {"base": self.base, "total_steps": self.total, "warmup_steps": self.warmup,
                "kind": self.kind}


def make_optimizer(config: TrainConfig, learning_rate: float, total_steps: int, steps_per_epoch: int,
                   warmup: bool = True):
    schedule = WarmupSchedule(learning_rate, total_steps,
                              int(config.warmup_epochs * steps_per_epoch) if warmup else 0,
                              config.lr_schedule)
    if config.optimizer == "adam":
        return tf_keras.optimizers.Adam(schedule)
    if config.optimizer == "adamw":
        return tf_keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    return tf_keras.optimizers.SGD(schedule, momentum=config.momentum,
                                   weight_decay=config.weight_decay or None)


def make_strategy(name: str):
    """``default``: one device; ``mirrored``: every GPU, else every logical CPU device, of this host;
    ``multi_worker``: the cluster described by TF_CONFIG."""
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
