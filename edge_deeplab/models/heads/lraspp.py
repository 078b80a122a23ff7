"""Lite R-ASPP (Howard et al. 2019): a gated 1x1 branch on the deep features plus a low-level branch."""
from __future__ import annotations

from edge_deeplab.models.layers import conv_bn, layers, upsample


def build(taps: dict, config):
    high, low = taps[32], taps[8]
    x = conv_bn(high, config.head_channels, 1, "lraspp_conv")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_pool")(high)
    gate = layers.Conv2D(config.head_channels, 1, name="lraspp_gate_conv")(gate)
    gate = layers.Activation("sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply(name="lraspp_scale")([x, gate])
    x = upsample(x, (low.shape[1] // x.shape[1], low.shape[2] // x.shape[2]), "lraspp_upsample")
    if config.dropout:
        x = layers.Dropout(config.dropout, name="lraspp_dropout")(x)
    x = layers.Conv2D(config.num_classes, 1, name="lraspp_high_classifier")(x)
    low = layers.Conv2D(config.num_classes, 1, name="lraspp_low_classifier")(low)
    return layers.Add(name="classifier")([x, low])
