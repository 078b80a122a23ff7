"""MobileNetV2 (Sandler et al. 2018) as DeepLab uses it: no final 1x1/1280 conv, atrous tail."""
from __future__ import annotations

from edge_deeplab.models.layers import (AtrousSchedule, conv_bn, inverted_residual, make_divisible,
                                        scale_expansion, tail_divisor)

# (expansion, channels, repeats, stride)
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def build(x, width: float = 1.0, output_stride: int = 16, reduced_tail: bool = False,
          expansion_scale: float = 1.0, expansion_blocks: tuple[int, ...] = ()) -> dict:
    schedule = AtrousSchedule(output_stride)
    stride, _ = schedule.step(2)
    x = conv_bn(x, make_divisible(32 * width), 3, "stem", stride=stride, act="relu6")
    taps = {}
    block = 0
    for expansion, channels, repeats, first_stride in STAGES:
        divisor = tail_divisor(schedule.nominal * first_stride, reduced_tail)
        out = make_divisible(channels * width / divisor)
        for i in range(repeats):
            stride, dilation = schedule.step(first_stride if i == 0 else 1)
            expanded = scale_expansion(x.shape[-1] * expansion, x.shape[-1], expansion_scale, block,
                                       expansion_blocks)
            x = inverted_residual(x, expanded, out, f"block{block}", stride=stride,
                                  dilation=dilation)
            block += 1
        taps[schedule.nominal] = x
    return taps
