"""Resumable training state: weights, optimizer slots, dropout RNG, epoch/step and history."""
from __future__ import annotations

import json
from pathlib import Path

from edge_deeplab._optional import tensorflow

tf = tensorflow("training")


def dropout_generators(model) -> list:
    """The ``tf.random.Generator`` of every random layer (dropout): Keras leaves them out of
    checkpoints, but an exact resume needs their state."""
    generators = []
    for layer in model.submodules:
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if isinstance(generator, tf.random.Generator):
            generators.append(generator)
    return generators


class TrainState:
    """Everything a killed run needs to continue exactly where its last save left off.

    Data order and augmentation are pure functions of (seed, epoch, position) (see ``data.py``), so the
    epoch and step counters are all the input pipeline needs. The dropout layers'
    ``tf.random.Generator`` states (``enable_tf_random_generator``) are saved too, so dropout masks
    continue as they would have.
    """

    def __init__(self, folder: Path, model, optimizer, restore_from: Path | None = None):
        """Saves go to ``folder``; resuming reads ``restore_from`` (default: ``folder``). They differ on
        a multi-worker run's other workers, which save privately but resume from the chief's saves."""
        self.folder = Path(folder)
        self.restore_from = Path(restore_from or folder)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)  # step inside the current epoch
        self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)  # current epoch's running loss
        self.best = tf.Variable(float("-inf"), dtype=tf.float64, trainable=False)
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch,
                                              step=self.step, loss_sum=self.loss_sum, best=self.best,
                                              history=self._history, dropout_rngs=dropout_generators(model))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.folder), max_to_keep=2)

    @property
    def history(self) -> list[dict]:
        return json.loads(self._history.numpy().decode())

    def append_history(self, record: dict) -> None:
        self._history.assign(json.dumps(self.history + [record]))

    def exists(self) -> bool:
        return self.manager.latest_checkpoint is not None

    def restore(self) -> bool:
        """Load the latest save; False if there is none."""
        latest = tf.train.latest_checkpoint(str(self.restore_from))
        if latest is None:
            return False
        self.checkpoint.restore(latest).expect_partial()
        return True

    def save(self) -> None:
        # CheckpointManager writes the data files first and the index ("checkpoint") last, so a kill
        # mid-save leaves the previous save as the latest.
        self.manager.save()
