"""The ``<artifact>.json`` manifest beside every export, and the metadata embedded in the artifact."""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab.atomic import atomic_write_text
from edge_deeplab.runtimes.integrity import manifest_beside, sha256

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.converters.base import Artifact, Converter
    from edge_deeplab.converters.parity import Parity
    from edge_deeplab.sources import Source

# The built models rescale [0, 1] to [-1, 1] themselves (see edge_deeplab.models.deeplab).
INPUT_RANGE = "0,1"


def manifest_path(artifact: Path) -> Path:
    """``model_int8.tflite`` -> ``model_int8.tflite.json`` (also for ``.xml`` IRs and ``.mlpackage`` folders)."""
    return manifest_beside(artifact)


def embedded_metadata(source: "Source", converter: "Converter", artifact: "Artifact") -> dict[str, Any]:
    """The JSON stored under ``edge_deeplab`` inside the artifact (convention: runtimes/base.py)."""
    return {"input_range": INPUT_RANGE, "labels": list(source.config.class_names),
            "output": artifact.output, "config": source.config.to_dict(),
            "format": converter.name, "quantization": converter.precision}


def input_spec(source: "Source", artifact: "Artifact") -> dict[str, Any]:
    height, width = source.config.input_size
    spec = {"shape": [1, height, width, 3], "layout": "NHWC", "color": "RGB", "range": INPUT_RANGE,
            "dtype": "float32"}
    quant = artifact.details.get("input_quantization")
    if quant:
        spec["dtype"] = artifact.details.get("input_dtype", "uint8")
        spec["quantization"] = quant
    return spec


def output_spec(source: "Source", artifact: "Artifact") -> dict[str, Any]:
    height, width = source.config.input_size
    if artifact.output == "labels":
        return {"kind": "labels", "shape": [1, height, width], "dtype": "uint8"}
    spec = {"kind": "logits", "shape": [1, height, width, source.config.num_classes]}
    quant = artifact.details.get("output_quantization")
    spec["dtype"] = artifact.details.get("output_dtype", "int8" if quant else "float32")
    if quant:
        spec["quantization"] = quant
    return spec


def build_manifest(converter: "Converter", source: "Source", artifact: "Artifact",
                   parity: "Parity | None", calibration: "CalibrationSet | None",
                   notes: list[str]) -> dict[str, Any]:
    return {
        "format": converter.name,
        "artifact": artifact.path.name,
        "files": [f.name for f in artifact.files],
        "sha256": {f.name: sha256(f) for f in artifact.files},  # checked by runtimes.load_runtime
        "source": source.describe(),
        "config": source.config.to_dict(),
        "quantization": converter.quantization(source),
        "input": input_spec(source, artifact),
        "output": output_spec(source, artifact),
        "normalization": {"input_range": INPUT_RANGE, **_mean_std(INPUT_RANGE),
                          "note": "RGB scaled to [0, 1]; the model maps it to [-1, 1] itself"},
        "labels": list(source.config.class_names),
        "calibration": calibration.describe() if calibration is not None else None,
        "parity": parity.to_dict(full=True) if parity is not None else None,
        "details": artifact.details,
        "notes": notes,
        "tools": converter.tool_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _mean_std(input_range: str) -> dict[str, list[float]]:
    """The range as TFLite Model Metadata states it, (pixel - mean) / std (also embedded in .tflite files)."""
    from edge_deeplab.normalization import Normalization
    normalization = Normalization.named(input_range)
    return {"mean": list(normalization.mean), "std": list(normalization.std)}


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
