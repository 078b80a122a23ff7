"""Optimizers, learning-rate schedules and tf.distribute strategies chosen by TrainConfig."""
from __future__ import annotations

import contextlib
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
    # The moving average lives in the optimizer (checkpointed with its slots); it only replaces the
    # weights for what is validated and saved (``averaged_weights``), never in the update itself.
    ema = {"use_ema": bool(config.ema_decay), "ema_momentum": config.ema_decay or 0.99}
    if config.optimizer == "adam":
        return tf_keras.optimizers.Adam(schedule, **ema)
    if config.optimizer == "adamw":
        return tf_keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay, **ema)
    return tf_keras.optimizers.SGD(schedule, momentum=config.momentum,
                                   weight_decay=config.weight_decay or None, **ema)


@contextlib.contextmanager
def averaged_weights(model, optimizer):
    """Inside: the model's trainable weights are the optimizer's exponential moving average of them
    (``ema_decay``); on exit the training weights come back. Without an average, the model as it is."""
    averages = getattr(optimizer, "_model_variables_moving_average", None) if optimizer.use_ema else None
    if not averages:  # no average kept, or no step taken yet
        yield
        return
    variables = model.trainable_variables
    training = [tf.identity(v) for v in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, training):
            variable.assign(value)


def make_strategy(name: str):
    """``default``: one device; ``mirrored``: every GPU, else every logical CPU device, of this host;
    ``multi_worker``: the cluster described by TF_CONFIG."""
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
