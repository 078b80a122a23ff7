"""Per-epoch validation with the same metrics (and resolution) as ``edge-deeplab evaluate``."""
from __future__ import annotations

import numpy as np

from edge_deeplab._optional import tensorflow
from edge_deeplab.metrics import SegmentationMetrics
from edge_deeplab.train.data import CachedSet

tf = tensorflow("training")


def validate(model, data: CachedSet, num_classes: int, batch_size: int = 8) -> dict:
    """mIoU, per-class IoU, pixel accuracy and boundary IoU at each mask's own resolution.

    Images are stretched to the model's input size and logits resized back to the mask, as the
    runtime path does for any model.
    """
    metrics = SegmentationMetrics(num_classes)
    predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for start in range(0, len(data), batch_size):
        images = tf.convert_to_tensor(data.images[start:start + batch_size], tf.float32) / 255.0
        logits = predict(images)
        for i, mask in enumerate(data.masks[start:start + batch_size]):
            full = tf.image.resize(logits[i], mask.shape[:2])
            metrics.update(np.argmax(full.numpy(), axis=-1).astype(np.uint8), mask)
    return metrics.summary()
