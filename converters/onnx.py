"""ONNX through tf2onnx (opset 17), NHWC float32 in, float32 logits out."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab._optional import require, tensorflow
from edge_deeplab.converters.base import Artifact, Converter
from edge_deeplab.converters.keras_graph import INPUT_NAME, serving_module, unsupported_op_error
from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes.base import METADATA_KEY

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source

OPSET = 17


class ONNXConverter(Converter):
    name = "onnx"
    suffix = ".onnx"
    precision = "fp32"
    runtime = "onnxruntime"
    requires = (("tensorflow", "train"), ("tf2onnx", "onnx"), ("onnx", "onnx"))
    tools = ("tensorflow", "tf-keras", "tf2onnx", "onnx", "onnxruntime")

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {"precision": "fp32", "opset": OPSET}

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        tf = tensorflow("export to ONNX")
        tf2onnx = require("tf2onnx", "onnx", "export to ONNX")
        onnx = require("onnx", "onnx", "export to ONNX")
        module = serving_module(source)
        height, width = source.config.input_size
        signature = [tf.TensorSpec((1, height, width, 3), tf.float32, name=INPUT_NAME)]
        with _CapturedLog("tf2onnx") as log:
            try:
                proto, _ = tf2onnx.convert.from_function(module.function, input_signature=signature, opset=OPSET)
            except Exception as exc:  # tf2onnx raises bare ValueErrors/RuntimeErrors, details in its log
                error = unsupported_op_error(self.name, f"{log.text}\n{exc}", source.model, module.serve)
                if error is None:
                    raise
                raise error from None
        error = unsupported_op_error(self.name, log.text, source.model, module.serve)  # logged, not raised
        if error is not None:
            raise error
        onnx.save(proto, str(path))
        return Artifact(path, [path], details={"opset": OPSET})

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        onnx = require("onnx", "onnx", "export to ONNX")
        model = onnx.load(str(artifact.path))
        entries = [p for p in model.metadata_props if p.key != METADATA_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(entries)
        model.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
        onnx.save(model, str(artifact.path))

    def verify(self, artifact: Artifact) -> str | None:
        onnx = require("onnx", "onnx", "export to ONNX")
        try:
            onnx.checker.check_model(str(artifact.path))
        except onnx.checker.ValidationError as exc:
            raise BadModelError(f"tf2onnx wrote an invalid ONNX model: {str(exc).splitlines()[0]}") from None
        return None


class _CapturedLog:
    """Collect a library logger's messages (tf2onnx names unsupported ops only in its log)."""

    def __init__(self, name: str) -> None:
        import logging
        self.logger, self.records = logging.getLogger(name), []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.records.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.records)

    def __enter__(self) -> "_CapturedLog":
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
