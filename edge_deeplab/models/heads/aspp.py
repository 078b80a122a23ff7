"""DeepLabv3 ASPP (Chen et al. 2017) and the optional DeepLabv3+ decoder (Chen et al. 2018)."""
from __future__ import annotations

from edge_deeplab.models.layers import conv_bn, layers, separable_conv_bn, upsample


def aspp(x, channels: int, rates: tuple[int, ...], separable: bool, dropout: float):
    branches = [conv_bn(x, channels, 1, "aspp_1x1")]
    for rate in rates:
        name = f"aspp_rate{rate}"
        branches.append(separable_conv_bn(x, channels, name, dilation=rate) if separable
                        else conv_bn(x, channels, 3, name, dilation=rate))
    height, width = x.shape[1], x.shape[2]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
    pooled = conv_bn(pooled, channels, 1, "aspp_pool_conv")
    # Nearest upsampling of a 1x1 map is a broadcast: quantizes exactly and maps to every target.
    branches.append(upsample(pooled, (height, width), "aspp_pool_upsample", interpolation="nearest"))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = conv_bn(x, channels, 1, "aspp_project")
    return layers.Dropout(dropout, name="aspp_dropout")(x) if dropout else x


def decoder(x, low_level, low_channels: int, channels: int, separable: bool):
    factor = (low_level.shape[1] // x.shape[1], low_level.shape[2] // x.shape[2])
    x = upsample(x, factor, "decoder_upsample")
    low = conv_bn(low_level, low_channels, 1, "decoder_low_level")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    for i in range(2):
        name = f"decoder_conv{i}"
        x = separable_conv_bn(x, channels, name) if separable else conv_bn(x, channels, 3, name)
    return x


def build(taps: dict, config):
    x = aspp(taps[32], config.head_channels, config.aspp_rates, config.separable, config.dropout)
    if config.decoder:
        x = decoder(x, taps[4], config.decoder_channels, config.head_channels, config.separable)
    return layers.Conv2D(config.num_classes, 1, name="classifier")(x)
