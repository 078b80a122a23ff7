"""The search space: a set of choices per :class:`ModelConfig` field. Every candidate is a ModelConfig.

    space = SearchSpace(num_classes=2)
    config = space.sample(rng)            # a random valid ModelConfig
    child = space.mutate(config, rng)     # one field changed (fields it makes relevant re-drawn)
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_deeplab.configs import Config, check_choice
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.config import OUTPUT_STRIDES, ModelConfig
from edge_deeplab.models.registry import BACKBONES, HEADS

# ModelConfig field -> SearchSpace field holding its choices.
DIMENSIONS = {
    "backbone": "backbones", "width": "widths", "reduced_tail": "reduced_tail",
    "expansion_scale": "expansion_scales", "output_stride": "output_strides", "head": "heads",
    "aspp_rates": "aspp_rates", "decoder": "decoder", "separable": "separable",
    "head_channels": "head_channels", "decoder_channels": "decoder_channels", "input_size": "input_sizes",
}
# Values a field takes when the rest of the config makes it meaningless (one canonical form per model).
UNUSED = {"aspp_rates": (), "separable": False, "decoder": False, "decoder_channels": 48}
MAX_DRAWS = 1000


@dataclass(frozen=True)
class SearchSpace(Config):
    """Choices for each architecture field; ASPP rates are absolute, as in ModelConfig.

    Combinations that make no valid model (a width outside a backbone's range, an input size that is
    not a multiple of the output stride) are never drawn.
    """

    backbones: tuple[str, ...] = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                                  "mobilenet_edgetpu")
    widths: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0)
    reduced_tail: tuple[bool, ...] = (False, True)
    expansion_scales: tuple[float, ...] = (1.0,)  # e.g. (0.5, 0.67, 1.0): narrower expansions, less compute
    output_strides: tuple[int, ...] = (16, 32)
    heads: tuple[str, ...] = ("aspp", "lraspp")
    aspp_rates: tuple[tuple[int, ...], ...] = ((), (2, 4, 6), (6, 12, 18))
    separable: tuple[bool, ...] = (False, True)
    decoder: tuple[bool, ...] = (False, True)
    head_channels: tuple[int, ...] = (32, 64, 128)
    decoder_channels: tuple[int, ...] = (24, 32, 48)
    input_sizes: tuple[tuple[int, int], ...] = ((160, 160), (192, 192), (224, 224), (256, 256))
    num_classes: int = 2
    labels: tuple[str, ...] = ()

    def validate(self) -> None:
        for field in DIMENSIONS.values():
            if not getattr(self, field):
                raise ConfigError(f"search space {field} needs at least one choice")
        for name in self.backbones:
            BACKBONES.get(name)
        for name in self.heads:
            HEADS.get(name)
        for stride in self.output_strides:
            check_choice("output stride", stride, OUTPUT_STRIDES)
        usable = [w for w in self.widths for b in self.backbones
                  if BACKBONES.get(b).meta["widths"][0] <= w <= BACKBONES.get(b).meta["widths"][1]]
        if not usable:
            raise ConfigError(f"no width in {list(self.widths)} fits any of the backbones "
                              f"{list(self.backbones)}; see `edge-deeplab models` for their ranges")
        for size in self.input_sizes:
            if len(size) != 2 or not any(all(side >= 32 and side % stride == 0 for side in size)
                                         for stride in self.output_strides):
                raise ConfigError(f"input size {list(size)} must be [height, width], sides >= 32 and "
                                  f"multiples of an output stride in {list(self.output_strides)}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {self.num_classes}")

    # -- candidates ----------------------------------------------------------------------------
    def relevant(self, choices: dict[str, Any]) -> list[str]:
        """The fields that change the model, given the head and decoder choices."""
        # decoder: aspp's DeepLabv3+ decoder, lraspp's stride-4 refinement
        fields = ["backbone", "width", "reduced_tail", "expansion_scale", "output_stride", "head",
                  "head_channels", "input_size", "decoder"]
        if choices.get("head") == "aspp":
            fields.append("aspp_rates")
            if choices.get("aspp_rates") or choices.get("decoder"):
                fields.append("separable")  # separable applies to the atrous and decoder 3x3 convs
        if choices.get("decoder"):
            fields.append("decoder_channels")
        return fields

    def _options(self, field: str) -> tuple:
        return getattr(self, DIMENSIONS[field])

    def _complete(self, choices: dict[str, Any], rng: np.random.Generator) -> ModelConfig | None:
        """Draw every relevant field whose value is not one of its choices, neutralize the others,
        and return the ModelConfig, or None if the combination is not a valid model."""
        choices = dict(choices)
        for field in DIMENSIONS:  # head and decoder first decide which fields matter
            if field in self.relevant({**UNUSED, **choices}) and choices.get(field) not in self._options(field):
                options = self._options(field)
                choices[field] = options[rng.integers(len(options))]
        relevant = self.relevant(choices)
        for field, unused in UNUSED.items():
            if field not in relevant:
                choices[field] = unused
        try:
            return ModelConfig(**{f: choices[f] for f in DIMENSIONS}, num_classes=self.num_classes,
                               labels=self.labels)
        except ConfigError:
            return None

    def sample(self, rng: np.random.Generator) -> ModelConfig:
        """A uniformly drawn valid candidate."""
        for _ in range(MAX_DRAWS):
            config = self._complete({}, rng)
            if config is not None:
                return config
        raise ConfigError("the search space holds no valid model: check that widths fit the backbones "
                          "and input sizes are multiples of the output strides")

    def mutate(self, config: ModelConfig, rng: np.random.Generator) -> ModelConfig:
        """``config`` with one relevant field set to another of its choices (a different model)."""
        parent = {f: getattr(config, f) for f in DIMENSIONS}
        fields = [f for f in self.relevant(parent) if len(self._options(f)) > 1]
        for _ in range(MAX_DRAWS if fields else 0):
            field = fields[rng.integers(len(fields))]
            options = [o for o in self._options(field) if o != parent[field]]
            child = self._complete({**parent, field: options[rng.integers(len(options))]}, rng)
            if child is not None and child != config:
                return child
        raise ConfigError(f"no valid mutation of {candidate_key(config)} in this search space")

    def canonical(self, config: ModelConfig) -> ModelConfig | None:
        """``config`` as this space writes it (fields its head makes meaningless neutralized, the space's
        classes), or None if the space does not hold that architecture."""
        if not self.contains(config):
            return None
        choices = {f: getattr(config, f) for f in DIMENSIONS}
        return self._complete(choices, np.random.default_rng(0))  # every relevant field is set: nothing is drawn

    def contains(self, config: ModelConfig) -> bool:
        if config.expansion_blocks:  # the space narrows every block or none
            return False
        choices = {f: getattr(config, f) for f in DIMENSIONS}
        return all(choices[f] in self._options(f) for f in self.relevant(choices))


def candidate_key(config: ModelConfig) -> str:
    """A short stable id of an architecture (labels excluded: they do not change the model)."""
    data = {k: v for k, v in config.to_dict().items() if k != "labels"}
    # keys of latency tables measured before these fields existed stay valid
    if not data["reduced_tail"]:
        del data["reduced_tail"]
    if data["expansion_scale"] == 1.0:
        del data["expansion_scale"]
    if not data["expansion_blocks"]:
        del data["expansion_blocks"]
    if not data["fusion_channels"]:
        del data["fusion_channels"]
    if data["decoder_stride"] == 4:
        del data["decoder_stride"]
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def describe(config: ModelConfig) -> str:
    """A one-line human summary, e.g. ``mobilenet_v2 x0.5 rt e0.5 os16 lraspp64 224x224`` (rt: reduced tail,
    e: expansion scale, b: the blocks it narrows if not all)."""
    head = f"{config.head}{config.head_channels}"
    head += f" fuse{config.fusion_channels}" if config.fusion_channels else ""
    if config.head == "aspp":
        head += f" r{'-'.join(map(str, config.aspp_rates)) or 'none'}" + (" sep" if config.separable else "")
        head += f" dec{config.decoder_channels}" if config.decoder else ""
    head += " s2" if config.decoder_stride == 2 else ""
    tail = " rt" if config.reduced_tail else ""
    tail += f" {config.expansion_tag}" if config.expansion_tag else ""
    return (f"{config.backbone} x{config.width:g}{tail} os{config.output_stride} {head} "
            f"{config.input_size[0]}x{config.input_size[1]}")
