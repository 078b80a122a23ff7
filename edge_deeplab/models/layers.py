"""Quantization-safe building blocks (tf_keras).

Every block is made of layers tensorflow-model-optimization can wrap for QAT. Hard-swish is a custom
layer with an output QuantizeConfig (see ``quantize.py``): Keras' own is a ``TFOpLambda`` op, which
tfmot cannot quantize. Hard-sigmoid is reparametrized instead (see :func:`squeeze_excite`).
"""
from __future__ import annotations

from edge_deeplab._optional import keras as _keras

keras = _keras()
layers = keras.layers


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@keras.utils.register_keras_serializable(package="edge_deeplab")
class HardSwish(layers.Layer):
    """x * relu6(x + 3) / 6; converts to TFLite's HARD_SWISH."""

    def call(self, inputs):
        return inputs * keras.backend.relu(inputs + 3.0, max_value=6.0) * (1.0 / 6.0)


def activation(x, kind: str | None, name: str):
    if kind is None:
        return x
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "relu6":
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)
    if kind == "hswish":
        return HardSwish(name=f"{name}_hswish")(x)
    raise ValueError(f"unknown activation {kind!r}")


def conv_bn(x, filters: int, kernel: int, name: str, stride: int = 1, dilation: int = 1,
            act: str | None = "relu"):
    """Conv -> BatchNorm -> activation, the pattern tfmot folds for QAT."""
    x = layers.Conv2D(filters, kernel, strides=stride, dilation_rate=dilation, padding="same",
                      use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{name}_bn")(x)
    return activation(x, act, name)


def depthwise_bn(x, kernel: int, name: str, stride: int = 1, dilation: int = 1,
                 act: str | None = "relu"):
    x = layers.DepthwiseConv2D(kernel, strides=stride, dilation_rate=dilation, padding="same",
                               use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"{name}_bn")(x)
    return activation(x, act, name)


def separable_conv_bn(x, filters: int, name: str, dilation: int = 1, act: str | None = "relu"):
    """Depthwise 3x3 (atrous) + pointwise 1x1, each with BN and activation, as in DeepLabv3+."""
    x = depthwise_bn(x, 3, f"{name}_dw", dilation=dilation, act=act)
    return conv_bn(x, filters, 1, f"{name}_pw", act=act)


def squeeze_excite(x, squeeze: int, name: str):
    """Squeeze-excite gate with MobileNetV3's hard-sigmoid, scaled by 6.

    hard_sigmoid(z) = relu6(z + 3) / 6. The +3 is the conv bias's initial value and the 1/6 is left to
    the projection conv + batch norm that always follow this block (a constant scale on their input is
    absorbed). What remains is a Conv+ReLU6 pair, which tfmot quantizes whole: Keras' hard-sigmoid or
    a ReLU(max_value=1) leaves float islands in a QAT model.
    """
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(squeeze, 1, name=f"{name}_reduce")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Conv2D(channels, 1, bias_initializer=keras.initializers.Constant(3.0),
                      name=f"{name}_expand")(s)
    s = layers.ReLU(6.0, name=f"{name}_gate")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def inverted_residual(x, expanded: int, channels: int, name: str, kernel: int = 3, stride: int = 1,
                      dilation: int = 1, act: str = "relu6", se_channels: int | None = None):
    """MobileNet's inverted residual: 1x1 expand, depthwise (atrous), optional SE, linear 1x1 project."""
    shortcut = x
    in_channels = x.shape[-1]
    if expanded != in_channels:
        x = conv_bn(x, expanded, 1, f"{name}_expand", act=act)
    x = depthwise_bn(x, kernel, f"{name}_depthwise", stride=stride, dilation=dilation, act=act)
    if se_channels:
        x = squeeze_excite(x, se_channels, f"{name}_se")
    x = conv_bn(x, channels, 1, f"{name}_project", act=None)
    if stride == 1 and in_channels == channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def scale_expansion(expanded: int, in_channels: int, scale: float, block: int = 0,
                    blocks: tuple[int, ...] = ()) -> int:
    """Block ``block``'s expanded channels under ``ModelConfig.expansion_scale``, which narrows the blocks
    listed in ``blocks`` (all if empty); blocks that do not expand keep theirs."""
    if scale == 1.0 or expanded <= in_channels or (blocks and block not in blocks):
        return expanded
    # An expanding block keeps expanding: at its input's width the builders would drop the expand conv,
    # changing the layers (and what init: weights_by_name can match) rather than narrowing them.
    return max(make_divisible(expanded * scale), in_channels + 8)


def tail_divisor(nominal_stride: int, reduced_tail: bool) -> int:
    """Channel divisor for a block at ``nominal_stride``: 2 in a reduced tail's stride-32 stage."""
    return 2 if reduced_tail and nominal_stride >= 32 else 1


def upsample(x, factor: tuple[int, int], name: str, interpolation: str = "bilinear"):
    if factor == (1, 1):
        return x
    return layers.UpSampling2D(factor, interpolation=interpolation, name=name)(x)


class AtrousSchedule:
    """Turns strides past the output stride into dilation rates (DeepLab's atrous backbone)."""

    def __init__(self, output_stride: int):
        self.output_stride = output_stride
        self.current = 1   # stride reached so far
        self.nominal = 1   # stride the unmodified network would have reached
        self.rate = 1

    def step(self, stride: int) -> tuple[int, int]:
        """Return (stride, dilation) for a layer whose nominal stride is ``stride``."""
        self.nominal *= stride
        if self.current * stride > self.output_stride:
            rate, self.rate = self.rate, self.rate * stride
            return 1, rate
        self.current *= stride
        return stride, self.rate
