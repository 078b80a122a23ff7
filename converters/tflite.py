"""TFLite: float32, float16 weights, and full-integer int8 (calibrated, or from QAT ranges)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab._optional import tensorflow
from edge_deeplab.converters.base import Artifact, Converter
from edge_deeplab.converters.keras_graph import serving_module, unsupported_op_error
from edge_deeplab.errors import DatasetError

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source


class _TFLite(Converter):
    suffix = ".tflite"
    runtime = "litert"
    requires = (("tensorflow", "train"), ("tf_keras", "train"))
    tools = ("tensorflow", "tf-keras", "ai-edge-litert")

    def classmap(self) -> bool:
        """Whether the argmax is fused into the model (uint8 class-map output)."""
        return False

    def configure(self, converter: Any, source: "Source", calibration: "CalibrationSet | None") -> None:
        """Set optimization options on a ``tf.lite.TFLiteConverter``."""

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        tf = tensorflow(f"export to {self.name}")
        module = serving_module(source, classmap=self.classmap())
        converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve], module)
        # Convert the frozen function directly: same ops and outputs as the SavedModel detour, 4x faster.
        converter.experimental_lower_to_saved_model = False
        self.configure(converter, source, calibration)
        try:
            with warnings.catch_warnings():
                # Raised for uint8/int8 inputs, whose ranges come from calibration: nothing to act on.
                warnings.filterwarnings("ignore", "Statistics for quantized inputs")
                data = converter.convert()
        except Exception as exc:  # the converter raises its own error types, with the op in the text
            error = unsupported_op_error(self.name, str(exc), source.model, module.serve)
            if error is None:
                raise
            raise error from None
        path.write_bytes(data)
        return Artifact(path, [path], details=self.io_details(path),
                        output="labels" if self.classmap() else "logits")

    def io_details(self, path: Path) -> dict[str, Any]:
        from edge_deeplab.runtimes.tflite_metadata import tensor_quantization, tensor_types
        inputs, outputs = tensor_quantization(path)
        input_types, output_types = tensor_types(path)  # read from the file: the manifest tells apps what to feed
        return {"input_quantization": _scale_zero(inputs[0]), "output_quantization": _scale_zero(outputs[0]),
                "input_dtype": input_types[0], "output_dtype": output_types[0]}

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        embed_tflite_metadata(artifact.path, metadata)


class TFLiteFP32(_TFLite):
    name = "tflite"
    tag = "fp32"
    precision = "fp32"


class TFLiteFP16(_TFLite):
    name = "tflite-fp16"
    tag = "fp16"
    precision = "fp16"

    def configure(self, converter, source, calibration) -> None:
        tf = tensorflow()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]


class TFLiteInt8(_TFLite):
    """Full-integer TFLite: every op int8, uint8 or int8 input, uint8 class map or int8 logits output."""

    name = "tflite-int8"
    tag = "int8"
    precision = "int8"

    def needs_calibration(self, source: "Source") -> bool:
        return not source.qat  # a QAT model carries its learned ranges

    def classmap(self) -> bool:
        return self.options.int8_output == "classmap"

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {"precision": "int8", "method": "qat" if source.qat else "post-training",
                "input_type": self.options.int8_input, "output": self.options.int8_output}

    def configure(self, converter, source, calibration) -> None:
        tf = tensorflow()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = getattr(tf, self.options.int8_input)
        if not self.classmap():
            converter.inference_output_type = tf.int8
        if source.qat:
            # The ranges come from the QAT fake-quant nodes and the converter never reads this dataset;
            # but TF 2.21 checks one is set before it inspects the graph (its metrics hook sees none).
            converter.representative_dataset = _no_images
        elif calibration is None:
            raise DatasetError(f"{self.name} post-training quantization needs representative "
                               "images: pass --calibration DIR (an image folder or dataset split)")
        else:
            converter.representative_dataset = calibration.representative_dataset


def embed_tflite_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Our ``edge_deeplab`` JSON, and the standard TFLite Model Metadata (normalization as mean/std, the
    labels as ``labels.txt``) that TFLite Support, the Task Library and MediaPipe read."""
    from edge_deeplab.normalization import Normalization
    from edge_deeplab.runtimes.tflite_metadata import write_metadata
    from edge_deeplab.runtimes.tflite_standard_metadata import write_standard_metadata

    write_metadata(path, path, json.dumps(metadata).encode())
    normalization = Normalization.named(metadata["input_range"])
    config = metadata.get("config") or {}
    architecture = " + ".join(str(config[k]) for k in ("backbone", "head") if config.get(k)) or "DeepLab"
    write_standard_metadata(path, mean=normalization.mean, std=normalization.std, labels=metadata.get("labels"),
                            description=f"edge-deeplab {architecture} semantic segmentation")


def _no_images():
    return iter(())


def _scale_zero(quant: tuple[float, int] | None) -> dict[str, float] | None:
    return None if quant is None else {"scale": quant[0], "zero_point": quant[1]}
