"""Architecture registries: backbones and heads. Importing this never imports TensorFlow."""
from __future__ import annotations

from edge_deeplab.registry import Registry

BACKBONES = Registry("backbone")
BACKBONES.register(
    "mobilenet_v2", "edge_deeplab.models.backbones.mobilenet_v2:build",
    "MobileNetV2 inverted residuals, ReLU6", widths=(0.35, 1.4), blocks=17)
BACKBONES.register(
    "mobilenet_v3_small", "edge_deeplab.models.backbones.mobilenet_v3:build_small",
    "MobileNetV3-Small: squeeze-excite, hard-swish (quantizable layers)", widths=(0.5, 1.25),
    blocks=11)
BACKBONES.register(
    "mobilenet_v3_large", "edge_deeplab.models.backbones.mobilenet_v3:build_large",
    "MobileNetV3-Large: squeeze-excite, hard-swish (quantizable layers)", widths=(0.5, 1.25),
    blocks=15)
BACKBONES.register(
    "mobilenet_edgetpu", "edge_deeplab.models.backbones.mobilenet_edgetpu:build",
    "MobileNet-EdgeTPU: fused/regular inverted residuals, ReLU, no SE", widths=(0.5, 1.5),
    blocks=22)

HEADS = Registry("head")
HEADS.register("aspp", "edge_deeplab.models.heads.aspp:build",
               "DeepLabv3 atrous spatial pyramid pooling (+ optional v3+ decoder)")
HEADS.register("lraspp", "edge_deeplab.models.heads.lraspp:build",
               "MobileNetV3's lite R-ASPP (+ optional stride-4 refinement)")
