"""ImageNet initialization from an int8 MobileNetV2 TFLite classifier (batch norm folded).

No float ImageNet checkpoint is reachable offline; the quantized classifier still carries the
learned filters. Each CONV_2D / DEPTHWISE_CONV_2D is dequantized (scale * (q - zero_point)) into our
conv, and its folded bias becomes the following batch norm's beta with an identity transform
(gamma 1, mean 0, variance 1 - epsilon). The classifier takes [-1, 1] inputs and ours [0, 1]: the
stem absorbs x' = 2x - 1 (w' = 2w, b' = b - sum(w)). Narrower backbones (width < 1, or a reduced
tail) take the first channels of every layer: a truncated, not an exact, ImageNet network, which
fine-tuning repairs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_deeplab.errors import BadModelError

BLOCKS = 17  # MobileNetV2 inverted residual blocks, expanded_conv .. expanded_conv_16


def our_conv_layers() -> list[str]:
    """Our layer names in the classifier's op order (its final 1x1 conv and logits are not used)."""
    names = ["stem", "block0_depthwise", "block0_project"]
    for block in range(1, BLOCKS):
        names += [f"block{block}_expand", f"block{block}_depthwise", f"block{block}_project"]
    return names


def read_tflite_convs(path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op kind, float kernel in TFLite layout, float bias) for each conv op, in graph order."""
    from edge_deeplab.runtimes.litert import interpreter_module
    path = Path(path)
    if not path.is_file():
        raise BadModelError(f"ImageNet weights not found: {path}")
    interpreter = interpreter_module().Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}

    def dequantize(index: int) -> np.ndarray:
        detail = tensors[index]
        quant = detail["quantization_parameters"]
        scale, zero = quant["scales"], quant["zero_points"]
        axis = quant["quantized_dimension"]
        raw = interpreter.get_tensor(index).astype(np.float32)
        if scale.size > 1:  # per-channel
            shape = [1] * raw.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (raw - zero) * scale

    convs = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, kernel, bias = op["inputs"]
            convs.append((op["op_name"], dequantize(kernel), dequantize(bias)))
    return convs


def import_mobilenet_v2(model, path: str | Path) -> int:
    """Load the classifier's weights into ``model``'s mobilenet_v2 backbone; returns layers loaded."""
    names = our_conv_layers()
    convs = read_tflite_convs(path)
    if len(convs) < len(names):
        raise BadModelError(f"{path}: {len(convs)} conv ops; a MobileNetV2 classifier has "
                            f"{len(names) + 2}")
    try:
        layers = [model.get_layer(name) for name in names]
    except ValueError:
        raise BadModelError(f"model {model.name} has no mobilenet_v2 backbone to import "
                            "ImageNet weights into (init: imagenet needs backbone: mobilenet_v2)") from None
    for layer, (kind, kernel, bias) in zip(layers, convs):
        if kind == "DEPTHWISE_CONV_2D":  # [1, kh, kw, C] -> [kh, kw, C, 1]
            kernel = kernel[0][..., None]
        else:  # [out, kh, kw, in] -> [kh, kw, in, out]
            kernel = kernel.transpose(1, 2, 3, 0)
        if layer.name == "stem":  # fold the classifier's [-1, 1] input range into the stem
            bias = bias - kernel.sum(axis=(0, 1, 2))
            kernel = 2.0 * kernel
        target = layer.get_weights()[0].shape
        if any(t > k for t, k in zip(target, kernel.shape)):
            raise BadModelError(f"layer {layer.name} {target} is wider than the ImageNet weights "
                                f"{kernel.shape}: width must be <= 1.0")
        kernel = kernel[tuple(slice(0, t) for t in target)]
        channels = target[-1] if kind == "CONV_2D" else target[2]
        layer.set_weights([kernel])
        bn = model.get_layer(f"{layer.name}_bn")
        ones = np.ones(channels, np.float32)
        bn.set_weights([ones, bias[:channels], np.zeros(channels, np.float32),
                        ones * (1.0 - bn.epsilon)])
    return len(layers)
