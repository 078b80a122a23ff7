"""MobileNetV3 Small/Large (Howard et al. 2019) from quantizable layers."""
from __future__ import annotations

from edge_deeplab.models.layers import (AtrousSchedule, conv_bn, inverted_residual, make_divisible,
                                        scale_expansion, tail_divisor)

# (kernel, expansion channels, out channels, squeeze-excite, activation, stride)
LARGE = ((3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
         (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
         (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1),
         (3, 184, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
         (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
         (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1),
         (5, 960, 160, True, "hswish", 1))
SMALL = ((3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
         (5, 96, 40, True, "hswish", 2), (5, 240, 40, True, "hswish", 1),
         (5, 240, 40, True, "hswish", 1), (5, 120, 48, True, "hswish", 1),
         (5, 144, 48, True, "hswish", 1), (5, 288, 96, True, "hswish", 2),
         (5, 576, 96, True, "hswish", 1), (5, 576, 96, True, "hswish", 1))


def _build(x, spec, last_channels: int, width: float, output_stride: int, reduced_tail: bool,
           expansion_scale: float, expansion_blocks: tuple[int, ...]) -> dict:
    schedule = AtrousSchedule(output_stride)
    stride, _ = schedule.step(2)
    x = conv_bn(x, 16, 3, "stem", stride=stride, act="hswish")
    taps = {}
    for i, (kernel, expanded, channels, use_se, act, nominal) in enumerate(spec):
        if nominal == 2 and schedule.nominal >= 2:
            taps[schedule.nominal] = x  # last feature before the resolution drops
        # torchvision keeps the expansion of the stage's first (strided) block; its input is not reduced
        divisor = tail_divisor(schedule.nominal * nominal, reduced_tail)
        stride, dilation = schedule.step(nominal)
        expanded = make_divisible(expanded * width / (divisor if nominal == 1 else 1))
        expanded = scale_expansion(expanded, x.shape[-1], expansion_scale, i, expansion_blocks)
        x = inverted_residual(x, expanded, make_divisible(channels * width / divisor), f"block{i}",
                              kernel=kernel, stride=stride, dilation=dilation, act=act,
                              se_channels=make_divisible(expanded / 4) if use_se else None)
    x = conv_bn(x, make_divisible(last_channels * width / tail_divisor(schedule.nominal, reduced_tail)),
                1, "head_conv", act="hswish")
    taps[schedule.nominal] = x
    return taps


def build_large(x, width: float = 1.0, output_stride: int = 16, reduced_tail: bool = False,
                expansion_scale: float = 1.0, expansion_blocks: tuple[int, ...] = ()) -> dict:
    return _build(x, LARGE, 960, width, output_stride, reduced_tail, expansion_scale, expansion_blocks)


def build_small(x, width: float = 1.0, output_stride: int = 16, reduced_tail: bool = False,
                expansion_scale: float = 1.0, expansion_blocks: tuple[int, ...] = ()) -> dict:
    return _build(x, SMALL, 576, width, output_stride, reduced_tail, expansion_scale, expansion_blocks)
