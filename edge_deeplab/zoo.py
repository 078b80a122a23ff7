"""Named model configs. ``portrait`` is the trained default behind ``segment default``."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from edge_deeplab.models.config import ModelConfig
from edge_deeplab.registry import Registry

ZOO = Registry("zoo model")

VOC_LABELS = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor")
CAMVID_LABELS = ("sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car",
                 "pedestrian", "bicyclist")
PORTRAIT_LABELS = ("background", "person")

PORTRAIT_TEACHER = ModelConfig(
    backbone="mobilenet_v2", width=1.0, output_stride=32, head="lraspp", head_channels=128,
    decoder=True, decoder_channels=24, input_size=(192, 192), num_classes=2, labels=PORTRAIT_LABELS)
# The default: the teacher at output stride 16 (a 12x12 deep grid finds people a few dozen pixels
# tall, which the 6x6 grid at stride 32 misses) with a reduced tail, half the expanded channels in every
# block (which pays for the stride), and a fusion conv over the deep and stride-8 features; trained at
# 192x192, then at 208x208 (1.17x the pixels: +3 to +6 points on full-body crops, portraits level),
# then with MediaPipe's two models on tiles of wide frames as the teacher (train.teacher_tiles).
ZOO.register("portrait", PORTRAIT_TEACHER.replace(output_stride=16, reduced_tail=True, expansion_scale=0.5,
                                                  fusion_channels=64, input_size=(208, 208)),
             "person vs background for portraits, full-body people and video; the embedded default model",
             weights="portrait.weights.h5", artifact="portrait_fp32.tflite",
             int8_artifact="portrait_int8.tflite")
# The default at a 16:9 input, fine-tuned there: a square input squashes a landscape frame's people to 56%
# of their width. 288x160 (1.25x the pixels of 192x192 or of MediaPipe's 256x144) keeps thin limbs of
# people framed small that 256x144 lost (+3.5 points on people/val), at 0.65-1.11x MediaPipe selfie's
# p50 between runs on a shared VM; finished with the square model's tiled teacher, aspect jitter and the
# scene sequences with people seen twice (stages 11-15 of configs/train_default.sh, weight soups).
ZOO.register("portrait_landscape", ZOO.load("portrait").replace(input_size=(160, 288)),
             "the default for 16:9 video frames and landscape photos (288x160 input)",
             weights="portrait_landscape.weights.h5", artifact="portrait_landscape_fp32.tflite",
             int8_artifact="portrait_landscape_int8.tflite")
# The default's weights at a 9:16 input (144x256, WxH), untrained there: a square input squashes a tall
# photo's people to 56% of their height (benchmarks/aspect.py, 9:16 crops: people +9.8 points over the
# square model, portraits -0.3). Its int8 file is the square model's QAT weights at this input.
ZOO.register("portrait_tall", ZOO.load("portrait").replace(input_size=(256, 144)),
             "the default for 9:16 (phone-upright) photos and video (144x256 input, untrained there)",
             weights="portrait.weights.h5", artifact="portrait_tall_fp32.tflite",
             int8_artifact="portrait_tall_int8.tflite")
# What `default` runs (edge_deeplab.load): each image on the one whose input aspect is nearest its own,
# 4:3 and wider on the 16:9 model, narrower than 3:4 on the 9:16 one (benchmarks/aspect.py).
# `benchmark default` times the first. `default_int8` is the same family over the variants' int8 files (QAT).
DEFAULT = "default"
DEFAULT_VARIANTS = ("portrait", "portrait_landscape", "portrait_tall")
INT8_SUFFIX = "_int8"
# The teacher with a reduced tail and half the expanded channels in blocks 10-13 (the 12x12x96 stage
# and the stride-32 stage's first block), the two places its fp32 time concentrated after the tail.
# Trained on upper-body portraits only (stage 3 of the default's recipe): the best on selfies, blind
# to people framed small.
ZOO.register("portrait_selfie", PORTRAIT_TEACHER.replace(reduced_tail=True, expansion_scale=0.5,
                                                         expansion_blocks=(10, 11, 12, 13)),
             "upper-body selfie segmentation (the previous default; misses people framed small)",
             weights="portrait_selfie.weights.h5", artifact="portrait_selfie_fp32.tflite")
# Trained by the recipe's stage 2; `portrait_selfie` is narrowed from and distilled from it (configs/).
ZOO.register("portrait_teacher", PORTRAIT_TEACHER,
             "the portrait models' full-width teacher (stage 2 of the default's recipe; no weights shipped)")
ZOO.register("portrait_edgetpu", ModelConfig(
    backbone="mobilenet_edgetpu", width=0.5, output_stride=32, head="aspp", aspp_rates=(),
    head_channels=64, input_size=(256, 256), num_classes=2, labels=PORTRAIT_LABELS),
    # Output stride 32: no atrous layer, small activations (dilated convs would map too: same x/y rate).
    "portrait segmentation built for the Coral Edge TPU (ReLU only, no SE, no atrous)")
ZOO.register("camvid", ModelConfig(
    backbone="mobilenet_v2", width=1.0, output_stride=16, head="aspp", aspp_rates=(6, 12, 18),
    separable=True, head_channels=128, decoder=True, input_size=(288, 384), num_classes=11,
    labels=CAMVID_LABELS),
    "CamVid street scenes, 11 classes: DeepLabv3+ (separable ASPP + decoder)")
ZOO.register("deeplabv3plus_mnv2_voc", ModelConfig(
    backbone="mobilenet_v2", width=1.0, output_stride=16, head="aspp", aspp_rates=(6, 12, 18),
    decoder=True, input_size=(512, 512), num_classes=21, labels=VOC_LABELS),
    "the DeepLab zoo's DeepLabv3+ MobileNetV2 for PASCAL VOC (architecture; no weights shipped)")
ZOO.register("lraspp_mnv3_large_voc", ModelConfig(
    backbone="mobilenet_v3_large", width=1.0, output_stride=16, head="lraspp", head_channels=128,
    input_size=(512, 512), num_classes=21, labels=VOC_LABELS),
    "MobileNetV3-Large + LR-ASPP for PASCAL VOC (architecture; no weights shipped)")


# Training-only files (Keras weights) are not in the wheel: `segment`/`benchmark`/`evaluate` never need
# them, and they would double every install. `train`/`export` find them here, in this order.
WEIGHTS_ENV = "EDGE_DEEPLAB_WEIGHTS"


def split_int8(name: str) -> tuple[str, bool]:
    """``portrait_int8`` -> (``portrait``, True): a zoo name (or ``default``) + ``_int8`` names its
    shipped int8 file; any other name -> (name, False)."""
    base = name[:-len(INT8_SUFFIX)]
    if name.endswith(INT8_SUFFIX) and name not in ZOO and (base == DEFAULT or base in ZOO):
        return base, True
    return name, False


def default_variants(int8: bool = False) -> tuple[str, ...]:
    """The zoo names ``default`` (or with ``int8``, ``default_int8``) runs, each by its fp32 or int8 file."""
    if not int8:
        return DEFAULT_VARIANTS
    return tuple(name for name in DEFAULT_VARIANTS if ZOO.get(name).meta.get("int8_artifact"))


def asset_path(name: str) -> Path | None:
    """The packaged file ``name`` under edge_deeplab/assets, or None if it is not shipped."""
    path = Path(str(resources.files("edge_deeplab") / "assets" / name))
    return path if path.is_file() else None


def weights_path(name: str) -> Path | None:
    """Training weights ``name``: in a folder listed in $EDGE_DEEPLAB_WEIGHTS (os.pathsep-separated), else
    in edge_deeplab/assets of a source checkout or editable install; None if neither holds it."""
    for folder in filter(None, os.environ.get(WEIGHTS_ENV, "").split(os.pathsep)):
        path = Path(folder).expanduser() / name
        if path.is_file():
            return path
    return asset_path(name)


def missing_weights_hint(name: str) -> str:
    """How to make the training weights ``name`` findable (the wheel does not carry them)."""
    return (f"its trained weights {name} are not in an installed wheel (training-only file): install "
            f"edge-deeplab from a source checkout with `pip install -e .` (they live in "
            f"edge_deeplab/assets/), or set {WEIGHTS_ENV} to a folder holding {name}")
