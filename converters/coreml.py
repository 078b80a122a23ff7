"""Core ML ``mlprogram`` package (``.mlpackage``), fixed input shape, fp16 compute, float32 I/O."""
from __future__ import annotations

import json
import logging
import shutil
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_deeplab._optional import require
from edge_deeplab.converters.base import Artifact, Converter
from edge_deeplab.converters.keras_graph import INPUT_NAME, serving_module, unsupported_op_error
from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes.base import METADATA_KEY

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source

OUTPUT_NAME = "logits"
DEPLOYMENT_TARGET = "iOS16"  # mlprogram with fp16 compute and float32 I/O


def coremltools() -> ModuleType:
    # On Linux coremltools logs a warning per missing macOS-only proxy at import; they say nothing new.
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return require("coremltools", "coreml", "export to Core ML")
    finally:
        logger.setLevel(level)


class CoreMLConverter(Converter):
    name = "coreml"
    suffix = ".mlpackage"
    precision = "fp16"
    runtime = "coreml"
    requires = (("tensorflow", "train"), ("coremltools", "coreml"))
    tools = ("tensorflow", "tf-keras", "coremltools")

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {"precision": "fp16", "compute": "fp16", "io": "float32",
                "minimum_deployment_target": DEPLOYMENT_TARGET}

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        ct = coremltools()
        height, width = source.config.input_size
        # One concrete function: ct.convert reads its graph directly (no SavedModel, no Keras 3 export).
        function = serving_module(source).serve
        try:
            model = ct.convert([function], source="tensorflow", convert_to="mlprogram",
                               inputs=[ct.TensorType(name=INPUT_NAME, shape=(1, height, width, 3),
                                                     dtype=np.float32)],
                               outputs=[ct.TensorType(name=function.outputs[0].name.split(":")[0],
                                                      dtype=np.float32)],
                               compute_precision=ct.precision.FLOAT16,
                               minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET))
        except NotImplementedError as exc:  # coremltools' way of saying "no converter for this op"
            error = unsupported_op_error(self.name, str(exc), source.model, function)
            if error is None:
                raise
            raise error from None
        spec = model.get_spec()
        ct.utils.rename_feature(spec, spec.description.output[0].name, OUTPUT_NAME)
        spec.description.metadata.shortDescription = f"edge-deeplab {source.name}: DeepLab segmentation"
        model = ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)
        model.save(str(path))
        return Artifact(path, [path])

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        ct = coremltools()
        model = ct.models.MLModel(str(artifact.path), skip_model_load=True)
        model.user_defined_metadata[METADATA_KEY] = json.dumps(metadata)
        rewritten = artifact.path.with_name(f"meta-{artifact.path.name}")
        model.save(str(rewritten))
        shutil.rmtree(artifact.path)
        rewritten.replace(artifact.path)

    def verify(self, artifact: Artifact) -> str | None:
        """Check the package's spec: one float32 NHWC input, float32 logits out, an ML program."""
        ct = coremltools()
        spec = ct.models.MLModel(str(artifact.path), skip_model_load=True).get_spec()
        inputs, outputs = spec.description.input, spec.description.output
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or len(outputs) != 1:
            raise BadModelError(f"{artifact.path.name}: expected one input {INPUT_NAME!r} and one output, "
                                f"got {[i.name for i in inputs]} -> {[o.name for o in outputs]}")
        if spec.WhichOneof("Type") != "mlProgram":
            raise BadModelError(f"{artifact.path.name}: expected an ML program, got {spec.WhichOneof('Type')}")
        ops = Counter(op.type for function in spec.mlProgram.functions.values()
                      for block in function.block_specializations.values() for op in block.operations)
        artifact.details.update(
            spec_version=spec.specificationVersion,
            input={"name": inputs[0].name, "shape": list(inputs[0].type.multiArrayType.shape)},
            output={"name": outputs[0].name, "shape": list(outputs[0].type.multiArrayType.shape)},
            ops=dict(sorted(ops.items())))
        if sys.platform != "darwin":
            return ("not verified against the source: Core ML models run only on macOS (checked here: the "
                    "package's input, output and ops); verify it on a Mac")
        return None
