"""The one interface every export format implements, and the options they share."""
from __future__ import annotations

import abc
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edge_deeplab._optional import is_installed
from edge_deeplab.configs import Config, check_choice, check_range
from edge_deeplab.errors import MissingExtraError

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source

INT8_INPUTS = ("uint8", "int8")
# classmap: argmax fused into the model, uint8 (1, H, W) class indices out (smallest output, one
#           CPU op after the last quantized layer). logits: int8 (1, H, W, C), argmax left to the caller.
INT8_OUTPUTS = ("classmap", "logits")


@dataclass(frozen=True)
class ExportOptions(Config):
    """Knobs shared by every format. Quantization I/O only applies to the full-integer formats."""

    int8_input: str = "uint8"
    int8_output: str = "classmap"
    openvino_weights: str = "fp16"  # IR weight storage; the CPU plugin computes in fp32 either way
    calibration_size: int = 100  # images drawn for calibration (and parity)
    parity_images: int = 16  # of those, images re-run through the exported artifact
    seed: int = 0
    min_agreement: float = 0.999  # float32 formats: share of pixels whose class must match
    max_miou_drop: float = 1.0  # reduced-precision formats: mIoU points they may lose

    def validate(self) -> None:
        check_choice("int8 input type", self.int8_input, INT8_INPUTS)
        check_choice("int8 output", self.int8_output, INT8_OUTPUTS)
        check_choice("OpenVINO weight precision", self.openvino_weights, ("fp16", "fp32"))
        check_range("calibration_size", self.calibration_size, 1, 100_000)
        check_range("parity_images", self.parity_images, 1, 100_000)
        check_range("min_agreement", self.min_agreement, 0.0, 1.0)
        check_range("max_miou_drop", self.max_miou_drop, 0.0, 100.0)


@dataclass
class Artifact:
    """What a converter wrote into the staging folder."""

    path: Path  # the file (or .mlpackage folder) users load
    files: list[Path]  # everything to publish, ``path`` last
    details: dict[str, Any] = field(default_factory=dict)  # format-specific manifest section
    output: str = "logits"  # "logits" or "labels" (a fused-argmax class map), as in the metadata
    verify_path: Path | None = None  # the file parity runs on, if not ``path``
    skipped: str | None = None  # a step that could not run here (e.g. edgetpu_compiler missing)
    summary: str | None = None  # one line worth showing the user (e.g. the Edge TPU op placement)


class Converter(abc.ABC):
    """Turns a source Keras model into one deployable artifact and knows how to check it.

    Subclasses set the class attributes and implement :meth:`convert` and :meth:`embed_metadata`;
    staging, parity, manifests and atomic publishing are the pipeline's job (``converters.export``).
    """

    name: ClassVar[str]  # the FORMATS registry name
    suffix: ClassVar[str]  # artifact file suffix, e.g. ".tflite"
    tag: ClassVar[str] = ""  # file-name tag after the source name, e.g. "int8"
    precision: ClassVar[str]  # "fp32", "fp16" or "int8": which parity rule applies
    runtime: ClassVar[str | None]  # RUNTIMES entry that runs the artifact here; None: none can
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()  # (module, extra) this format imports
    tools: ClassVar[tuple[str, ...]] = ()  # distributions whose versions go into the manifest

    def __init__(self, options: ExportOptions | None = None) -> None:
        self.options = options or ExportOptions()

    def missing(self) -> dict[str, str]:
        """``{module: extra}`` this format needs and this environment lacks."""
        # find_spec only: importing TF/coremltools here costs seconds
        return {module: extra for module, extra in self.requires if not is_installed(module)}

    def check_requirements(self) -> None:
        """Raise MissingExtraError, naming the pip extra, before any work is done."""
        check_converters([self])

    def needs_calibration(self, source: "Source") -> bool:
        """Whether conversion itself (not just parity) needs representative images."""
        return False

    def artifact_name(self, stem: str) -> str:
        return f"{stem}_{self.tag}{self.suffix}" if self.tag else f"{stem}{self.suffix}"

    def quantization(self, source: "Source") -> dict[str, Any]:
        """The manifest's ``quantization`` section."""
        return {"precision": self.precision}

    def tool_versions(self) -> dict[str, str]:
        versions = {}
        for dist in ("edge-deeplab", *self.tools):
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return versions

    @abc.abstractmethod
    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        """Write the artifact at ``path`` (inside a private staging folder)."""

    @abc.abstractmethod
    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        """Store the edge-deeplab metadata (normalization, labels, config) inside the artifact."""

    def verify(self, artifact: Artifact) -> str | None:
        """Static checks of the written artifact; return why numeric parity cannot run here, or None."""
        return None


def check_converters(converters: "list[Converter]") -> None:
    """One MissingExtraError naming every extra these formats lack (one pip line), or nothing."""
    missing = {converter.name: converter.missing() for converter in converters}
    lacking = [name for name, modules in missing.items() if modules]
    if lacking:
        needs = {module: extra for modules in missing.values() for module, extra in modules.items()}
        raise MissingExtraError(needs, needs.values(), f"export to {', '.join(lacking)}")
