"""DeepLab models. Configs and registries import without TensorFlow; building needs the ``train`` extra."""
from __future__ import annotations

from typing import TYPE_CHECKING

from edge_deeplab.models.config import ModelConfig
from edge_deeplab.models.registry import BACKBONES, HEADS

if TYPE_CHECKING:
    import tf_keras

__all__ = ["BACKBONES", "HEADS", "ModelConfig", "build_model"]


def build_model(config: ModelConfig) -> "tf_keras.Model":
    """Build the Keras (tf_keras) model for ``config``."""
    from edge_deeplab.models.deeplab import build_deeplab
    return build_deeplab(config)
