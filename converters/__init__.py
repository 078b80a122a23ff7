"""Export targets behind one :class:`Converter` interface. Importing this imports no converter backend."""
from __future__ import annotations

from edge_deeplab.registry import Registry

FORMATS = Registry("format")
FORMATS.register("tflite", "edge_deeplab.converters.tflite:TFLiteFP32", "TFLite float32")
FORMATS.register("tflite-fp16", "edge_deeplab.converters.tflite:TFLiteFP16", "TFLite float16 weights")
FORMATS.register("tflite-int8", "edge_deeplab.converters.tflite:TFLiteInt8",
                 "TFLite full-integer (calibrated or QAT ranges)")
FORMATS.register("edgetpu", "edge_deeplab.converters.edgetpu:EdgeTPUConverter",
                 "Edge TPU: full-int8 TFLite + compatibility report + edgetpu_compiler")
FORMATS.register("onnx", "edge_deeplab.converters.onnx:ONNXConverter", "ONNX (tf2onnx, opset 17)")
FORMATS.register("openvino", "edge_deeplab.converters.openvino:OpenVINOConverter",
                 "OpenVINO IR, fp16 weights")
FORMATS.register("openvino-int8", "edge_deeplab.converters.openvino:OpenVINOInt8Converter",
                 "OpenVINO IR, NNCF post-training int8")
FORMATS.register("coreml", "edge_deeplab.converters.coreml:CoreMLConverter",
                 "Core ML mlprogram .mlpackage, fp16")
