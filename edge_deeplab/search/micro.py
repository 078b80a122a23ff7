"""One-kernel models for the latency lookup table, and their conversion to each timing format."""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from edge_deeplab._optional import require, tensorflow
from edge_deeplab.errors import ToolUnavailableError, UnsupportedOpError
from edge_deeplab.models.layers import HardSwish, keras, layers
from edge_deeplab.search.kernels import Kernel, Shape

tf = tensorflow("measuring kernel latencies")
CALIBRATION_BATCHES = 4


class ConstantOperands(layers.Layer):
    """``x + c``, ``x * c`` or ``concat([x, c1, ...])`` with random constants of the given shapes.

    Second operands are constants held by the model, not inputs: every engine then runs the kernel
    from one input tensor, and the op still reads two tensors as in the full model.
    """

    def __init__(self, op: str, shapes: tuple[Shape, ...], **kwargs):
        super().__init__(**kwargs)
        self.op, self.shapes = op, shapes

    def build(self, input_shape):
        self.constants = [self.add_weight(f"c{i}", (1, *shape), trainable=False,
                                          initializer=keras.initializers.RandomUniform(0.0, 1.0))
                          for i, shape in enumerate(self.shapes)]

    def call(self, x):
        if self.op == "add":
            return x + self.constants[0]
        if self.op == "mul":
            return x * self.constants[0]
        return tf.concat([x, *self.constants], axis=-1)


class ArgMax(layers.Layer):
    """The class-map output of int8 artifacts: argmax over classes, as uint8."""

    def call(self, x):
        return tf.cast(tf.argmax(x, axis=-1, output_type=tf.int32), tf.uint8)


def kernel_model(kernel: Kernel) -> keras.Model:
    """A tf_keras model running only ``kernel``, from one (1, H, W, C) float input.

    Convolutions end in a ReLU because the full model's do (fused into the op, as there).
    """
    x = inputs = keras.Input(kernel.inputs[0], batch_size=1, name="x")
    op = kernel.op
    if op in ("conv", "depthwise"):
        common = dict(strides=kernel.stride, dilation_rate=kernel.dilation, padding="same")
        x = (layers.Conv2D(kernel.output[2], kernel.size, **common) if op == "conv"
             else layers.DepthwiseConv2D(kernel.size, **common))(x)
        x = layers.ReLU()(x)
    elif op in ("add", "mul", "concat"):
        x = ConstantOperands(op, kernel.inputs[1:])(x)
    elif op == "mean":
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    elif op.startswith("resize_"):
        factor = (kernel.output[0] // kernel.inputs[0][0], kernel.output[1] // kernel.inputs[0][1])
        x = layers.UpSampling2D(factor, interpolation=op[len("resize_"):])(x)
    elif op == "hswish":
        x = HardSwish()(x)
    elif op == "logistic":
        x = layers.Activation("sigmoid")(x)
    elif op == "argmax":
        x = ArgMax()(x)
    else:
        raise UnsupportedOpError(f"no one-kernel model for op {op!r}")
    return keras.Model(inputs, x, name=op)


def _samples(model, count: int = CALIBRATION_BATCHES) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((1, *model.input_shape[1:]), np.float32) for _ in range(count)]


def _tflite(model, folder: Path, int8: bool) -> Path:
    from edge_deeplab.models.serving import serving_module
    module = serving_module(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve], module)
    converter.experimental_lower_to_saved_model = False
    if int8:  # integer in and out, as inside a full-integer model: the artifact holds only the kernel
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        if model.output.dtype == tf.float32:
            converter.inference_output_type = tf.int8
        converter.representative_dataset = lambda: ([s] for s in _samples(model))
    with warnings.catch_warnings():  # int8 inputs take their range from calibration: nothing to act on
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        data = converter.convert()
    path = folder / "kernel.tflite"
    path.write_bytes(data)
    return path


def _tflite_float(model, folder: Path) -> Path:
    return _tflite(model, folder, int8=False)


def _tflite_int8(model, folder: Path) -> Path:
    return _tflite(model, folder, int8=True)


def _edgetpu(model, folder: Path) -> Path:
    from edge_deeplab.converters.edgetpu import compile_for_edgetpu
    compiled, log = compile_for_edgetpu(_tflite(model, folder, int8=True))
    if compiled is None:
        raise ToolUnavailableError(f"cannot time kernels on the Edge TPU: {log['reason']}")
    return compiled


def _onnx(model, folder: Path) -> Path:
    tf2onnx = require("tf2onnx", "onnx", "timing on onnxruntime")
    onnx = require("onnx", "onnx", "timing on onnxruntime")
    from edge_deeplab.converters.onnx import OPSET
    spec = [tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="x")]
    function = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    path = folder / "kernel.onnx"
    onnx.save(proto, str(path))
    return path


def _openvino(model, folder: Path, int8: bool = False) -> Path:
    ov = require("openvino", "openvino", "timing on OpenVINO")
    converted = ov.convert_model(model, input=[(1, *model.input_shape[1:])])
    if int8:
        nncf = require("nncf", "openvino", "timing int8 on OpenVINO")
        samples = _samples(model)
        with contextlib.redirect_stdout(io.StringIO()):  # NNCF's progress bars, one per kernel model
            converted = nncf.quantize(converted, nncf.Dataset(samples), subset_size=len(samples))
    path = folder / "kernel.xml"
    ov.save_model(converted, str(path), compress_to_fp16=True)
    return path


def _openvino_int8(model, folder: Path) -> Path:
    return _openvino(model, folder, int8=True)


CONVERTERS = {"tflite": _tflite_float, "tflite-int8": _tflite_int8, "edgetpu": _edgetpu, "onnx": _onnx,
              "openvino": _openvino, "openvino-int8": _openvino_int8}


def convert_kernel_model(model, fmt: str, folder: Path) -> Path:
    """Write ``model`` in export format ``fmt`` into ``folder``; the path the runtime loads."""
    return CONVERTERS[fmt](model, folder)
