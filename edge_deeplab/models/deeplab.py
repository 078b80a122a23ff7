"""Assemble backbone + head into a DeepLab model for a :class:`ModelConfig`."""
from __future__ import annotations

from edge_deeplab.models.config import ModelConfig
from edge_deeplab.models.layers import keras, upsample
from edge_deeplab.models.registry import BACKBONES, HEADS


def model_name(config: ModelConfig) -> str:
    tail = "_rt" if config.reduced_tail else ""
    tail += f"_{config.expansion_tag}" if config.expansion_tag else ""
    decoder = f"_fusion{config.fusion_channels}" if config.fusion_channels else ""
    decoder += "_decoder" if config.decoder else ""
    decoder += "_s2" if config.decoder_stride == 2 else ""
    return (f"deeplab_{config.backbone}_{config.width:g}{tail}_os{config.output_stride}_{config.head}"
            f"{decoder}")


def build_deeplab(config: ModelConfig) -> keras.Model:
    height, width = config.input_size
    inputs = keras.Input((height, width, 3), batch_size=None, name="image")
    # Inputs are RGB in [0, 1] and go straight into the stem conv + BN, which absorb any affine
    # normalization: a separate Rescaling op would stay float in a QAT model, and a uint8-input
    # int8 model now takes raw pixels (scale 1/255).
    taps = BACKBONES.load(config.backbone)(inputs, width=config.width, output_stride=config.output_stride,
                                           reduced_tail=config.reduced_tail,
                                           expansion_scale=config.expansion_scale,
                                           expansion_blocks=config.expansion_blocks)
    logits = HEADS.load(config.head)(taps, config)
    factor = (height // logits.shape[1], width // logits.shape[2])
    logits = upsample(logits, factor, "logits")  # heads end at stride >= 4, so factor > 1
    return keras.Model(inputs, logits, name=model_name(config))
