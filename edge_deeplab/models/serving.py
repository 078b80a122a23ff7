"""The inference graph every converter starts from."""
from __future__ import annotations

from edge_deeplab._optional import tensorflow


def serving_module(model, batch: int = 1):
    """A ``tf.Module`` whose ``serve`` is ``model``'s inference function with a static batch size.

    Converters must start from this, not from the Keras model: with a dynamic batch, TFLite cannot fuse
    TF's SpaceToBatch/Conv/BatchToSpace form of atrous convolution, so batch norm is not folded and a
    QAT model's atrous layers stay float. Static shapes are also what the Edge TPU and CoreML need.
    The module tracks only the variables: saving it (as the TFLite converter does) then skips
    re-tracing every Keras layer, which is 3x faster for a QAT model.

    Use: ``m = serving_module(model); tf.lite.TFLiteConverter.from_concrete_functions([m.serve], m)``.
    """
    tf = tensorflow("exporting a model")
    height, width, channels = model.input_shape[1:]
    spec = tf.TensorSpec([batch, height, width, channels], tf.float32, name="image")
    module = tf.Module()
    module.weights = list(model.variables)
    module.serve = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    return module
