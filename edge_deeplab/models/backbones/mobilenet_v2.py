"""MobileNetV2 (Sandler et al. 2018) as DeepLab uses it: no final 1x1/1280 conv, atrous tail."""
from __future__ import annotations

from edge_deeplab.models.layers import (AtrousSchedule, conv_bn, depthwise_bn, layers,
                                        make_divisible)

# (expansion, channels, repeats, stride)
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def inverted_residual(x, expansion: int, channels: int, stride: int, dilation: int, name: str):
    shortcut = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = conv_bn(x, in_channels * expansion, 1, f"{name}_expand", act="relu6")
    x = depthwise_bn(x, 3, f"{name}_depthwise", stride=stride, dilation=dilation, act="relu6")
    x = conv_bn(x, channels, 1, f"{name}_project", act=None)
    if stride == 1 and in_channels == channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def build(x, width: float = 1.0, output_stride: int = 16) -> dict:
    schedule = AtrousSchedule(output_stride)
    stride, _ = schedule.step(2)
    x = conv_bn(x, make_divisible(32 * width), 3, "stem", stride=stride, act="relu6")
    taps = {}
    block = 0
    for expansion, channels, repeats, first_stride in STAGES:
        out = make_divisible(channels * width)
        for i in range(repeats):
            stride, dilation = schedule.step(first_stride if i == 0 else 1)
            x = inverted_residual(x, expansion, out, stride, dilation, f"block{block}")
            block += 1
        taps[schedule.nominal] = x
    return taps
