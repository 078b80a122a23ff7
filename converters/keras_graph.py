"""The source model as a static, batch-1 TensorFlow function, the form every converter starts from."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from edge_deeplab._optional import tensorflow
from edge_deeplab.errors import UnsupportedOpError

if TYPE_CHECKING:
    from edge_deeplab.sources import Source

INPUT_NAME = "image"


def serving_module(source: "Source", *, classmap: bool = False) -> Any:
    """A ``tf.Module`` holding the inference function, float32 (1, H, W, 3) RGB in [0, 1] -> a dict.

    ``module.function`` is the ``tf.function``, ``module.serve`` its concrete function. Outputs are
    ``{"logits": (1, H, W, C)}``, or with ``classmap`` ``{"classmap": uint8 (1, H, W)}`` with the argmax
    fused in after the last resize (on an accelerator, the one trailing CPU op). Like
    :func:`edge_deeplab.models.serving.serving_module`: a static batch (atrous convs fold, QAT layers
    quantize) and a module that tracks only the variables (converters that save it skip re-tracing
    every Keras layer, ~20x faster than handing them the model).
    """
    tf = tensorflow("exporting a model")
    height, width = source.config.input_size
    model = source.model
    spec = tf.TensorSpec((1, height, width, 3), tf.float32, name=INPUT_NAME)

    def serve(image):
        logits = model(image, training=False)
        if classmap:
            return {"classmap": fused_classmap(logits)}
        return {"logits": logits}

    module = tf.Module()
    module.weights = list(model.variables)
    module.function = tf.function(serve, input_signature=[spec])
    module.serve = module.function.get_concrete_function()
    return module


def fused_classmap(logits: Any) -> Any:
    """The argmax a ``classmap`` export fuses in: (N, H, W, C) logits -> uint8 (N, H, W) class ids.

    An exact tie goes to the lowest class (``tf.argmax``, and TFLite's ARG_MAX after it). Parity decodes
    the source model through this same function, so a tie cannot count as a disagreement.
    """
    tf = tensorflow("exporting a model")
    return tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)


# How each converter names an op it cannot handle (TFLite, its int8 quantizer, tf2onnx, OpenVINO, coremltools).
_UNSUPPORTED = (re.compile(r"'(?:tf|tfl)\.(\w+)' op is neither"),
                re.compile(r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(\w+)'?"),
                re.compile(r"Tensorflow op \[[^\]]*?: (\w+)\] is not supported"),
                re.compile(r"No conversion rule found for operations: (\w+)"),
                re.compile(r"Conversion for TF op '(\w+)' not implemented"))
_SCOPED_NAME = re.compile(r"[\w.-]+(?:/[\w.-]+)+")


def unsupported_op_error(fmt: str, message: str, model: Any, function: Any = None) -> UnsupportedOpError | None:
    """Turn a converter's failure into an error naming the op and its Keras layer, if it is one.

    ``function`` (the concrete function converted) finds the op's scoped name when the message lacks it.
    """
    match = next((m for m in (p.search(message) for p in _UNSUPPORTED) if m), None)
    if match is None:
        return None
    op = match.group(1)
    names = _SCOPED_NAME.findall(message)
    if function is not None:
        names += [node.name for node in function.graph.get_operations() if node.type == op]
    layer = next((found for found in (layer_of(name, model) for name in names) if found), None)
    where = f" in layer {layer!r}" if layer else ""
    return UnsupportedOpError(f"{fmt} cannot represent op {op}{where}; rebuild that layer from ops the "
                              "format supports (convolutions, element-wise ops, resizes) or export to "
                              "another format")


def layer_of(tensor_name: str, model: Any) -> str | None:
    """The Keras layer whose scope a TF/TFLite tensor or op name falls in, e.g. ``model/conv1/Relu``."""
    names = {layer.name for layer in model.layers}
    # Fused TFLite names join the ops' names with ";", activation first: the op's own layer comes last.
    for alternative in reversed(tensor_name.split(";")):
        for part in re.split(r"[/:]", alternative):
            if part in names:
                return part
    return None
