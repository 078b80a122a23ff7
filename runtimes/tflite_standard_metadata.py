"""The standard TFLite Model Metadata (TFLite Support, MediaPipe Model Maker): read and write the parts a
segmenter needs, the input normalization and the output's label file. No TensorFlow.

Layout, as those tools write it: a ``Model.metadata`` entry named ``TFLITE_METADATA`` holds a
``ModelMetadata`` flatbuffer (identifier ``M001``, schema :mod:`.tflite_metadata_schema`); the input
tensor's ``NormalizationOptions`` say ``tensor = (pixel - mean) / std`` per channel; associated files
(``labels.txt``, type ``TENSOR_AXIS_LABELS``: one class name per line) sit in a zip archive appended to
the model, so a ``.tflite`` with metadata is also a zip file::

    meta = read_standard_metadata("deeplabv3.tflite")  # StandardMetadata(mean=(127.5,), std=(127.5,), ...)
    write_standard_metadata("ours.tflite", mean=(0.0,), std=(255.0,), labels=["background", "person"])

Checked by hand against MediaPipe 1.2.3's ``ImageSegmenter`` (its C++ metadata reader) on our exported
``portrait_fp32.tflite``: it loads the labels, and at the model's input size its category mask equals
``segment``'s pixel for pixel (without metadata it refuses a float model). Not a test here: MediaPipe
needs absl-py 2, tensorflow-model-optimization absl-py 1. It cannot read a fused-argmax (class map)
output, which is its limit, not the metadata's.
"""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import flatbuffers

from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes import tflite_metadata_schema as fb
from edge_deeplab.runtimes.tflite_metadata import _map, read_metadata_bytes, write_metadata

STANDARD_KEY = "TFLITE_METADATA"
IDENTIFIER = b"M001"
# Normalization, image properties and TENSOR_AXIS_LABELS files are all schema 1.0.0 features (TFLite
# Support's version rule gives 1.0.0 for such a file; newer parsers read older files).
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"


@dataclass(frozen=True)
class StandardMetadata:
    """What a segmenter takes from a model's standard metadata (None: not declared)."""

    name: str | None = None
    mean: tuple[float, ...] | None = None  # per channel, or one value for all
    std: tuple[float, ...] | None = None
    labels: tuple[str, ...] | None = None


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def _normalization(tensor: "fb.TensorMetadataT", source: object) -> tuple[tuple[float, ...] | None, ...]:
    for unit in tensor.processUnits or []:
        if unit.optionsType != fb.ProcessUnitOptions.NormalizationOptions:
            continue
        mean = tuple(float(v) for v in (unit.options.mean if unit.options.mean is not None else ()))
        std = tuple(float(v) for v in (unit.options.std if unit.options.std is not None else ()))
        lengths_fit = len(mean) == len(std) or 1 in (len(mean), len(std))
        if not mean or not std or not lengths_fit or 0.0 in std:
            raise BadModelError(f"{source}: its TFLite metadata declares an unusable normalization "
                                f"(mean {list(mean)}, std {list(std)}); pass --input-range to override it")
        return mean, std
    return None, None


def _label_file(model: "fb.ModelMetadataT") -> str | None:
    """The TENSOR_AXIS_LABELS file of the first output tensor, else of the model."""
    graphs = model.subgraphMetadata or []
    outputs = (graphs[0].outputTensorMetadata or []) if graphs else []
    for files in ((outputs[0].associatedFiles or []) if outputs else [], model.associatedFiles or []):
        for file in files:
            if file.type == fb.AssociatedFileType.TENSOR_AXIS_LABELS and file.name:
                return file.name.decode("utf-8", "replace")
    return None


def _read_labels(path: Path, name: str) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(name).decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BadModelError(f"{path}: its TFLite metadata names the label file {name!r}, which the model "
                            f"does not carry ({exc}); pass --labels FILE") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def parse_standard_metadata(raw: bytes, source: object = "model") -> "fb.ModelMetadataT":
    """The ``ModelMetadata`` object tree of a ``TFLITE_METADATA`` buffer."""
    if len(raw) < 8 or not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
        raise BadModelError(f"{source}: its {STANDARD_KEY} metadata is not a TFLite ModelMetadata "
                            "flatbuffer (no 'M001' identifier)")
    try:
        return fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAs(raw, 0))
    except Exception as exc:  # flatbuffers raises bare struct/index errors on garbage
        raise BadModelError(f"{source}: its {STANDARD_KEY} metadata is damaged ({exc})") from None


def read_standard_metadata(path: str | Path) -> StandardMetadata | None:
    """Normalization and labels from the standard metadata of the ``.tflite`` at ``path``; None without it."""
    path = Path(path)
    with _map(path) as data:
        raw = read_metadata_bytes(data, STANDARD_KEY, source=path)
    if not raw:
        return None
    model = parse_standard_metadata(raw, path)
    mean = std = None
    inputs = model.subgraphMetadata[0].inputTensorMetadata if model.subgraphMetadata else None
    if inputs:
        mean, std = _normalization(inputs[0], path)
    label_file = _label_file(model)
    labels = _read_labels(path, label_file) if label_file else None
    return StandardMetadata(_text(model.name), mean, std, labels or None)


def _tensor(name: str, description: str, color: int) -> "fb.TensorMetadataT":
    tensor = fb.TensorMetadataT()
    tensor.name, tensor.description = name.encode(), description.encode()
    tensor.content = fb.ContentT()
    tensor.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    tensor.content.contentProperties = fb.ImagePropertiesT()
    tensor.content.contentProperties.colorSpace = color
    return tensor


def build_standard_metadata(name: str, description: str, mean: Sequence[float], std: Sequence[float],
                            labels: Sequence[str] | None, version: str | None = None) -> bytes:
    """A ``TFLITE_METADATA`` buffer for an RGB image segmenter (labels go in :data:`LABELS_FILE`)."""
    image = _tensor("image", "RGB image; normalized as (pixel - mean) / std per channel.", fb.ColorSpaceType.RGB)
    unit = fb.ProcessUnitT()
    unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    unit.options = fb.NormalizationOptionsT()
    unit.options.mean, unit.options.std = [float(v) for v in mean], [float(v) for v in std]
    image.processUnits = [unit]
    image.stats = fb.StatsT()  # the tensor's value range, as the maintained writers fill it
    image.stats.min = [(0.0 - m) / s for m, s in zip(mean, std)]
    image.stats.max = [(255.0 - m) / s for m, s in zip(mean, std)]
    masks = _tensor("segmentation_masks", "Per-pixel class scores or class indices.", fb.ColorSpaceType.GRAYSCALE)
    if labels:
        file = fb.AssociatedFileT()
        file.name, file.type = LABELS_FILE.encode(), fb.AssociatedFileType.TENSOR_AXIS_LABELS
        file.description = b"Class names, one per line; line i is class i."
        masks.associatedFiles = [file]
    graph = fb.SubGraphMetadataT()
    graph.inputTensorMetadata, graph.outputTensorMetadata = [image], [masks]
    model = fb.ModelMetadataT()
    model.name, model.description = name.encode(), description.encode()
    model.author = b"edge-deeplab"
    if version:
        model.version = version.encode()
    model.minParserVersion = MIN_PARSER_VERSION.encode()
    model.subgraphMetadata = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def write_standard_metadata(path: str | Path, *, mean: Sequence[float], std: Sequence[float],
                            labels: Sequence[str] | None = None, name: str = "ImageSegmenter",
                            description: str = "Semantic segmentation", version: str | None = None) -> None:
    """Embed standard metadata (and ``labels.txt``) into the ``.tflite`` at ``path``, in place, atomically."""
    payload = build_standard_metadata(name, description, mean, std, labels, version)
    files = {LABELS_FILE: ("\n".join(labels) + "\n").encode()} if labels else {}
    write_metadata(path, path, payload, name=STANDARD_KEY, files=files)
