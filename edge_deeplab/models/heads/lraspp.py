"""Lite R-ASPP (Howard et al. 2019): a gated 1x1 branch on the deep features plus a low-level branch.

With ``fusion_channels`` a separable conv over the upsampled deep features and the stride-8 features
corrects the logits at stride 8 (ours too: the paper's stride-8 branch is linear).
With ``decoder: true`` a light stride-4 refinement follows (our addition, not in the paper): the
stride-8 logits, upsampled, and the stride-4 features predict a correction that is added to them;
``decoder_stride: 2`` repeats that step with the stride-2 features.
"""
from __future__ import annotations

from edge_deeplab.models.layers import conv_bn, layers, separable_conv_bn, upsample


def refine(logits, low_level, config, prefix="refine", out="refined"):
    """Residual correction of ``logits`` at ``low_level``'s stride (depthwise-separable, so it stays cheap).

    Its classifier starts at zero, so a model fine-tuned from plain LR-ASPP weights (``init:
    weights_by_name``) starts from their predictions (up to upsampling in two steps, 2x then to size).
    """
    factor = (low_level.shape[1] // logits.shape[1], low_level.shape[2] // logits.shape[2])
    logits = upsample(logits, factor, f"{prefix}_upsample")
    low = conv_bn(low_level, config.decoder_channels, 1, f"{prefix}_low")
    x = layers.Concatenate(name=f"{prefix}_concat")([logits, low])
    x = separable_conv_bn(x, config.decoder_channels, f"{prefix}_conv")
    correction = layers.Conv2D(config.num_classes, 1, kernel_initializer="zeros",
                               name=f"{prefix}_classifier")(x)
    return layers.Add(name=out)([logits, correction])


def fuse(logits, deep, low, config):
    """Residual stride-8 correction from the upsampled deep features and the stride-8 features."""
    x = layers.Concatenate(name="fusion_concat")([deep, low])
    x = separable_conv_bn(x, config.fusion_channels, "fusion_conv")
    correction = layers.Conv2D(config.num_classes, 1, kernel_initializer="zeros",
                               name="fusion_classifier")(x)
    return layers.Add(name="fused")([logits, correction])


def build(taps: dict, config):
    high, low = taps[32], taps[8]
    x = conv_bn(high, config.head_channels, 1, "lraspp_conv")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_pool")(high)
    gate = layers.Conv2D(config.head_channels, 1, name="lraspp_gate_conv")(gate)
    gate = layers.Activation("sigmoid", name="lraspp_gate")(gate)
    x = layers.Multiply(name="lraspp_scale")([x, gate])
    x = upsample(x, (low.shape[1] // x.shape[1], low.shape[2] // x.shape[2]), "lraspp_upsample")
    deep = x
    if config.dropout:
        x = layers.Dropout(config.dropout, name="lraspp_dropout")(x)
    x = layers.Conv2D(config.num_classes, 1, name="lraspp_high_classifier")(x)
    low_logits = layers.Conv2D(config.num_classes, 1, name="lraspp_low_classifier")(low)
    logits = layers.Add(name="classifier")([x, low_logits])
    if config.fusion_channels:
        logits = fuse(logits, deep, low, config)
    if not config.decoder:
        return logits
    logits = refine(logits, taps[4], config)
    if config.decoder_stride == 2:
        logits = refine(logits, taps[2], config, "refine_s2", "refined_s2")
    return logits
