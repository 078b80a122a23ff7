"""Inference engines behind one :class:`Runtime` interface. Importing this imports no engine."""
from __future__ import annotations

from edge_deeplab.registry import Registry

RUNTIMES = Registry("runtime")
RUNTIMES.register("litert", "edge_deeplab.runtimes.litert:LiteRTRuntime",
                  "LiteRT (TFLite) interpreter, XNNPACK", suffixes=(".tflite",))
RUNTIMES.register("edgetpu", "edge_deeplab.runtimes.edgetpu:EdgeTPURuntime",
                  "LiteRT with the libedgetpu delegate on a Coral device", suffixes=("_edgetpu.tflite",))
RUNTIMES.register("openvino", "edge_deeplab.runtimes.openvino:OpenVINORuntime",
                  "OpenVINO on the CPU (.xml IR, also .onnx/.tflite)", suffixes=(".xml",))
RUNTIMES.register("onnxruntime", "edge_deeplab.runtimes.onnxruntime:ONNXRuntime",
                  "ONNX Runtime, CPU execution provider", suffixes=(".onnx",))
RUNTIMES.register("coreml", "edge_deeplab.runtimes.coreml:CoreMLRuntime",
                  "Core ML (macOS only)", suffixes=(".mlpackage", ".mlmodel"))
