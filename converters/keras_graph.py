"""The source model as a static, batch-1 TensorFlow function, the form every converter starts from."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from edge_deeplab._optional import tensorflow
from edge_deeplab.errors import UnsupportedOpError

if TYPE_CHECKING:
    from edge_deeplab.sources import Source

INPUT_NAME = "image"


def serving_function(source: "Source", *, classmap: bool = False) -> Any:
    """A ``tf.function`` taking float32 (1, H, W, 3) RGB in [0, 1].

    Returns ``{"logits": (1, H, W, C)}``, or with ``classmap`` ``{"classmap": uint8 (1, H, W)}`` with the
    argmax fused in (it follows the last resize, so on an accelerator it is the one trailing CPU op).
    """
    tf = tensorflow("exporting a model")
    height, width = source.config.input_size
    model = source.model
    spec = tf.TensorSpec((1, height, width, 3), tf.float32, name=INPUT_NAME)

    if classmap:
        @tf.function(input_signature=[spec])
        def serve(image):
            logits = model(image, training=False)
            return {"classmap": tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)}
    else:
        @tf.function(input_signature=[spec])
        def serve(image):
            return {"logits": model(image, training=False)}
    return serve


_OP = re.compile(r"'(tf\.\w+|tfl\.\w+)' op")
_LOC = re.compile(r'loc\((?:callsite\()?(?:fused\[)?"([^"@]+)')
_QUANT_OP = re.compile(r"[Qq]uantization (?:is )?not (?:yet )?supported for op:? '?(\w+)'?")


def unsupported_op_error(fmt: str, message: str, model: Any) -> UnsupportedOpError | None:
    """Turn a converter's failure into an error naming the op and the Keras layer, if it is one."""
    op = _OP.search(message) or _QUANT_OP.search(message)
    if op is None:
        return None
    layer = None
    for loc in _LOC.findall(message):
        layer = layer_of(loc, model)
        if layer:
            break
    where = f" in layer {layer!r}" if layer else ""
    return UnsupportedOpError(
        f"{fmt} cannot represent op {op.group(1)}{where}; replace that layer with one built from "
        "convolutions, element-wise ops and resizes, or export to another format")


def layer_of(tensor_name: str, model: Any) -> str | None:
    """The Keras layer whose scope a TF/TFLite tensor or op name falls in, e.g. ``model/conv1/Relu``."""
    names = {layer.name for layer in model.layers}
    # Fused TFLite names join the ops' names with ";", activation first: the op's own layer comes last.
    for alternative in reversed(tensor_name.split(";")):
        for part in re.split(r"[/:]", alternative):
            if part in names:
                return part
    return None
