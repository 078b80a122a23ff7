"""ModelConfig: everything that defines a DeepLab architecture."""
from __future__ import annotations

from dataclasses import dataclass

from edge_deeplab.configs import Config, check_choice, check_range
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.registry import BACKBONES, HEADS

OUTPUT_STRIDES = (8, 16, 32)
DECODER_STRIDES = (4, 2)


@dataclass(frozen=True)
class ModelConfig(Config):
    """A DeepLab model. The built model takes float RGB in [0, 1] (NHWC) and returns logits at input size."""

    backbone: str = "mobilenet_v2"
    width: float = 1.0
    output_stride: int = 16
    # Halve the channels of the backbone's stride-32 stage, as torchvision's segmentation MobileNetV3
    # (reduced_tail): its weights are most of the model and, at 1/32 of the input, mostly memory traffic.
    reduced_tail: bool = False
    # Scales every inverted residual's expanded channels (MobileNetV2's x6 becomes x3 at 0.5): the
    # expanded tensors carry most of a mobile backbone's compute, while block outputs (and with them the
    # weights a narrower model inherits by name) stay as they are.
    expansion_scale: float = 1.0
    # The blocks (0-based, as layer names count them: block3_expand) that expansion_scale narrows; empty:
    # all. Time concentrates in a few stages (benchmarks/stage_profile.py), so narrowing only those
    # keeps the others' capacity.
    expansion_blocks: tuple[int, ...] = ()
    head: str = "aspp"
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    separable: bool = False
    head_channels: int = 256
    # LR-ASPP only: > 0 adds a depthwise-separable 3x3 conv of this width over the upsampled deep
    # features and the stride-8 features, predicting a correction to the head's logits (the paper's
    # stride-8 branch is a linear 1x1 classifier, too weak for thin limbs of far-away people). Its last
    # conv starts at zero, so weights of the plain head load by name and keep their predictions.
    fusion_channels: int = 0
    decoder: bool = False
    decoder_channels: int = 48
    # LR-ASPP with decoder only: 2 adds a second residual refinement over the stride-2 features after the
    # stride-4 one (limbs of people framed small are 1-3 pixels wide at stride 4). It also starts at zero.
    decoder_stride: int = 4
    input_size: tuple[int, int] = (256, 256)  # (height, width)
    num_classes: int = 21
    labels: tuple[str, ...] = ()
    dropout: float = 0.1

    def validate(self) -> None:
        backbone = BACKBONES.get(self.backbone)
        HEADS.get(self.head)
        low, high = backbone.meta["widths"]
        check_range(f"width of {self.backbone}", self.width, low, high)
        check_range("expansion_scale", self.expansion_scale, 0.25, 1.0)
        blocks = backbone.meta["blocks"]
        if any(not 0 <= b < blocks for b in self.expansion_blocks):
            raise ConfigError(f"expansion_blocks must be block indices 0-{blocks - 1} of {self.backbone}, "
                              f"got {list(self.expansion_blocks)}")
        if len(set(self.expansion_blocks)) != len(self.expansion_blocks):
            raise ConfigError(f"expansion_blocks lists a block twice: {list(self.expansion_blocks)}")
        if self.expansion_blocks and self.expansion_scale == 1.0:
            raise ConfigError("expansion_blocks has no effect at expansion_scale 1.0; set expansion_scale "
                              "below 1 (e.g. 0.5) or drop expansion_blocks")
        check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        if any(r < 1 for r in self.aspp_rates) or len(self.aspp_rates) > 4:
            raise ConfigError(f"aspp_rates must be 0 to 4 positive integers, got {list(self.aspp_rates)}")
        check_range("head_channels", self.head_channels, 8, 1024)
        check_range("decoder_channels", self.decoder_channels, 8, 256)
        if self.fusion_channels:
            check_range("fusion_channels", self.fusion_channels, 8, 256)
            if self.head != "lraspp":
                raise ConfigError(f"fusion_channels is an LR-ASPP option; head {self.head!r} has no "
                                  "stride-8 branch (set fusion_channels: 0 or head: lraspp)")
        check_choice("decoder_stride", self.decoder_stride, DECODER_STRIDES)
        if self.decoder_stride != 4 and (self.head != "lraspp" or not self.decoder):
            raise ConfigError(f"decoder_stride {self.decoder_stride} refines the LR-ASPP decoder's output; set "
                              "head: lraspp and decoder: true, or decoder_stride: 4")
        check_range("dropout", self.dropout, 0.0, 0.9)
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2 (background counts), got {self.num_classes}")
        if self.labels and len(self.labels) != self.num_classes:
            raise ConfigError(
                f"labels has {len(self.labels)} names but num_classes is {self.num_classes}")
        if len(self.input_size) != 2:
            raise ConfigError(f"input_size must be [height, width], got {list(self.input_size)}")
        for side in self.input_size:
            if side < 32 or side % self.output_stride:
                raise ConfigError(
                    f"input_size sides must be >= 32 and multiples of output_stride "
                    f"{self.output_stride}, got {list(self.input_size)}")

    @property
    def expansion_tag(self) -> str:
        """``e0.5``, or ``e0.5b10-11`` when only some blocks are narrowed; empty at scale 1.0 (names, summaries)."""
        if self.expansion_scale == 1.0:
            return ""
        blocks = "b" + "-".join(map(str, self.expansion_blocks)) if self.expansion_blocks else ""
        return f"e{self.expansion_scale:g}{blocks}"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.labels or tuple(f"class_{i}" for i in range(self.num_classes))
