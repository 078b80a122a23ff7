"""OpenVINO IR (``.xml`` + ``.bin``): float (fp16 or fp32 weights) and NNCF post-training int8."""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab._optional import require
from edge_deeplab.converters.base import Artifact, Converter
from edge_deeplab.converters.keras_graph import INPUT_NAME, serving_module, unsupported_op_error
from edge_deeplab.errors import DatasetError
from edge_deeplab.runtimes.base import METADATA_KEY

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source


FLOAT_OPS = ("GroupConvolution",)  # depthwise convolutions stay float in openvino-int8 (see optimize)


class OpenVINOConverter(Converter):
    """IR from ``openvino.convert_model`` on the Keras model; the CPU plugin computes in fp32."""

    name = "openvino"
    suffix = ".xml"
    runtime = "openvino"
    requires = (("tensorflow", "train"), ("openvino", "openvino"))
    tools = ("tensorflow", "tf-keras", "openvino")

    @property
    def tag(self) -> str:  # type: ignore[override]
        return f"openvino_{self.options.openvino_weights}"

    @property
    def precision(self) -> str:  # type: ignore[override]
        return self.options.openvino_weights

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {"precision": self.precision, "weights": self.options.openvino_weights, "compute": "fp32 (CPU)"}

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        ov = require("openvino", "openvino", f"export to {self.name}")
        model = self.optimize(self.read_keras(source), source, calibration)
        ov.save_model(model, str(path), compress_to_fp16=self.options.openvino_weights == "fp16")
        return Artifact(path, [path.with_suffix(".bin"), path], details={"device": "CPU"})

    def read_keras(self, source: "Source") -> Any:
        ov = require("openvino", "openvino", f"export to {self.name}")
        height, width = source.config.input_size
        try:
            model = ov.convert_model(source.model, input=[(1, height, width, 3)])
        except Exception as exc:  # OpConversionFailure and friends; the op is named in the text
            error = unsupported_op_error(self.name, str(exc), source.model, serving_module(source).serve)
            if error is None:
                raise
            raise error from None
        model.inputs[0].get_tensor().set_names({INPUT_NAME})
        model.outputs[0].get_tensor().set_names({"logits"})
        return model

    def optimize(self, model: Any, source: "Source", calibration: "CalibrationSet | None") -> Any:
        return model

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        ov = require("openvino", "openvino", f"export to {self.name}")
        model = ov.Core().read_model(str(artifact.path))
        model.set_rt_info(json.dumps(metadata), METADATA_KEY)
        # Re-serialize next to the staged IR, then swap both files in (still inside the staging folder).
        rewritten = artifact.path.with_name(f"meta-{artifact.path.name}")
        ov.save_model(model, str(rewritten), compress_to_fp16=False)  # weights are already stored as chosen
        rewritten.with_suffix(".bin").replace(artifact.path.with_suffix(".bin"))
        rewritten.replace(artifact.path)


class OpenVINOInt8Converter(OpenVINOConverter):
    """NNCF post-training quantization on the same calibration images as TFLite int8."""

    name = "openvino-int8"
    tools = ("tensorflow", "tf-keras", "openvino", "nncf")
    requires = (("tensorflow", "train"), ("openvino", "openvino"), ("nncf", "openvino"))

    @property
    def tag(self) -> str:  # type: ignore[override]
        return "openvino_int8"

    @property
    def precision(self) -> str:  # type: ignore[override]
        return "int8"

    def needs_calibration(self, source: "Source") -> bool:
        return not source.qat

    def quantization(self, source: "Source") -> dict[str, Any]:
        if source.qat:
            return {"precision": "int8", "method": "qat (FakeQuantize from the QAT graph)", "compute": "int8 (CPU)"}
        return {"precision": "int8", "method": "nncf post-training", "compute": "int8 (CPU)",
                "weights": "7-bit (NNCF overflow fix)", "float_ops": list(FLOAT_OPS)}

    def optimize(self, model: Any, source: "Source", calibration: "CalibrationSet | None") -> Any:
        if source.qat:
            return model  # convert_model kept the QAT fake-quant nodes as FakeQuantize: already int8
        if calibration is None:
            raise DatasetError(f"{self.name} post-training quantization needs representative images: "
                               "pass --calibration DIR (an image folder or dataset split)")
        nncf = require("nncf", "openvino", f"export to {self.name}")
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

        inputs = calibration.float_inputs()
        dataset = nncf.Dataset([inputs[i:i + 1] for i in range(len(inputs))])
        # Measured on the portrait model, 16 val images, this machine (AVX2, no VNNI): NNCF's defaults
        # agree with the float model on 37% of pixels. 8-bit weights saturate the int16 pair sums of
        # AVX2's u8 x s8 kernels (7-bit weights everywhere: 84%), and int8 depthwise convs lose the rest
        # (kept float: 98.6%, and still faster than fp32: 2.51 vs 2.75 ms, where all-int8 is 2.73 ms).
        # NNCF logs and draws progress bars on stdout, which belongs to the CLI's own summary.
        with _nncf_log_on_stderr(), contextlib.redirect_stdout(sys.stderr):
            return nncf.quantize(model, dataset, subset_size=len(inputs),
                                 ignored_scope=nncf.IgnoredScope(types=list(FLOAT_OPS)),
                                 advanced_parameters=AdvancedQuantizationParameters(
                                     overflow_fix=OverflowFix.ENABLE))


@contextlib.contextmanager
def _nncf_log_on_stderr():
    """Point NNCF's stdout logging handlers at stderr for the duration (they hold the stream itself)."""
    stdouts = (sys.stdout, sys.__stdout__)
    moved = [(h, h.stream) for h in logging.getLogger("nncf").handlers
             if isinstance(h, logging.StreamHandler) and h.stream in stdouts]
    for handler, _ in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)
