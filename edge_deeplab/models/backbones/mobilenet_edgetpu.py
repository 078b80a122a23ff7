"""MobileNet-EdgeTPU (Gupta & Akin 2019): fused inverted residuals early, regular ones late, ReLU only.

No squeeze-excite and no hard-swish: every op maps to the Edge TPU.
"""
from __future__ import annotations

from edge_deeplab.models.layers import (AtrousSchedule, conv_bn, inverted_residual, layers,
                                        make_divisible, scale_expansion, tail_divisor)

# (fused, kernel, expansion, channels, repeats, stride)
STAGES = ((True, 3, 1, 16, 1, 1), (True, 3, 8, 32, 1, 2), (True, 3, 4, 32, 3, 1),
          (True, 3, 8, 48, 1, 2), (True, 3, 4, 48, 3, 1), (False, 3, 8, 96, 1, 2),
          (False, 3, 4, 96, 3, 1), (False, 3, 8, 96, 1, 1), (False, 3, 4, 96, 3, 1),
          (False, 5, 8, 160, 1, 2), (False, 5, 4, 160, 3, 1), (False, 3, 8, 192, 1, 1))


def fused_inverted_residual(x, kernel, expanded, channels, stride, dilation, name):
    """A full kxk conv does the expansion (fast on the Edge TPU's systolic array), then a 1x1 projects."""
    shortcut = x
    in_channels = x.shape[-1]
    x = conv_bn(x, expanded, kernel, f"{name}_fused", stride=stride, dilation=dilation)
    x = conv_bn(x, channels, 1, f"{name}_project", act=None)
    if stride == 1 and in_channels == channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def build(x, width: float = 1.0, output_stride: int = 16, reduced_tail: bool = False,
          expansion_scale: float = 1.0, expansion_blocks: tuple[int, ...] = ()) -> dict:
    schedule = AtrousSchedule(output_stride)
    stride, _ = schedule.step(2)
    x = conv_bn(x, make_divisible(32 * width), 3, "stem", stride=stride)
    taps = {}
    block = 0
    for fused, kernel, expansion, channels, repeats, first_stride in STAGES:
        divisor = tail_divisor(schedule.nominal * first_stride, reduced_tail)
        out = make_divisible(channels * width / divisor)
        for i in range(repeats):
            if first_stride == 2 and i == 0:
                taps[schedule.nominal] = x
            stride, dilation = schedule.step(first_stride if i == 0 else 1)
            expanded = scale_expansion(x.shape[-1] * expansion, x.shape[-1], expansion_scale, block,
                                       expansion_blocks)
            if fused:
                x = fused_inverted_residual(x, kernel, expanded, out, stride, dilation, f"block{block}")
            else:
                x = inverted_residual(x, expanded, out, f"block{block}", kernel=kernel,
                                      stride=stride, dilation=dilation, act="relu")
            block += 1
    taps[schedule.nominal] = x
    return taps
