"""Helpers of the Edge TPU tests: the compiler's partition read from a reference pair, the reconstructed
compiler log, and tiny ``.tflite`` graphs written with the flatbuffer schema alone (one rule at a time).

``Builder`` adds tensors and ops by name; activations are uint8 unless said otherwise, constants carry
their bytes. The graphs are not runnable (no real weights): they only need to read like a converter's.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edge_deeplab.converters.edgetpu import COMPILER
from edge_deeplab.converters.tflite_graph import read_ops

PAIRS_DIR = "models/edgetpu_pairs"  # under ../shared
LOG = Path(__file__).parent / "fixtures" / "edgetpu" / "deeplab_mobilenet_edgetpu_slim_cityscapes_quant_edgetpu.log"
COMPILER_MISSING = shutil.which(COMPILER) is None


def compiler_partition(model: Path, compiled: Path) -> list[str]:
    """Ground truth, read here independently of the library: an op of ``model`` that is still an ordinary
    TFLite op in ``compiled`` (same type, same output tensor names) ran on the CPU; the others went into
    the one ``edgetpu-custom-op``."""
    compiled_ops = read_ops(compiled)
    custom = [op for op in compiled_ops if op.type == "CUSTOM:edgetpu-custom-op"]
    left = {(op.type, tuple(t.name for t in op.outputs)) for op in compiled_ops if op not in custom}
    placement = ["cpu" if (op.type, tuple(t.name for t in op.outputs)) in left else "edgetpu"
                 for op in read_ops(model)]
    assert len(custom) == (1 if "edgetpu" in placement else 0)  # the compiler made one subgraph
    assert placement.count("cpu") == len(compiled_ops) - len(custom)  # every CPU op was found again
    return placement


class Builder:
    def __init__(self) -> None:
        self.tensors: list = []
        self.buffers: list = [schema.BufferT()]  # buffer 0: the empty one activations point at
        self.ops: list = []
        self.codes: list[tuple[int, str | None]] = []

    def tensor(self, name: str, shape, dtype: str = "UINT8", data: np.ndarray | None = None,
               variable: bool = False) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type = name.encode(), list(shape), getattr(schema.TensorType, dtype)
        t.isVariable = variable
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def weights(self, name: str, shape, dtype: str = "INT8") -> int:
        return self.tensor(name, shape, dtype, np.ones(shape, np.int8 if dtype == "INT8" else np.int32))

    def op(self, kind: str, inputs: list[int], outputs: list[int], options=None) -> None:
        custom = kind.removeprefix("CUSTOM:") if kind.startswith("CUSTOM:") else None
        code = (schema.BuiltinOperator.CUSTOM if custom else getattr(schema.BuiltinOperator, kind), custom)
        if code not in self.codes:
            self.codes.append(code)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(code), inputs, outputs
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            op.builtinOptions = options
        self.ops.append(op)

    def write(self, path: Path, inputs: list[int], outputs: list[int]) -> Path:
        import flatbuffers

        graph = schema.SubGraphT()
        graph.tensors, graph.operators, graph.inputs, graph.outputs = self.tensors, self.ops, inputs, outputs
        model = schema.ModelT()
        model.version, model.subgraphs, model.buffers = 3, [graph], self.buffers
        model.operatorCodes = []
        for builtin, custom in self.codes:
            code = schema.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
            code.customCode, code.version = custom.encode() if custom else None, 1
            model.operatorCodes.append(code)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
        return path


def depthwise(builder: Builder, x: int, name: str, channels: int, size: int, dilation=(1, 1)) -> int:
    """A 3x3 depthwise conv over a ``(1, size, size, channels)`` uint8 tensor."""
    options = schema.DepthwiseConv2DOptionsT()
    options.dilationHFactor, options.dilationWFactor = dilation
    options.strideH = options.strideW = options.depthMultiplier = 1
    out = builder.tensor(name, (1, size, size, channels))
    builder.op("DEPTHWISE_CONV_2D", [x, builder.weights(f"{name}/w", (1, 3, 3, channels)),
                                     builder.weights(f"{name}/b", (channels,), "INT32")], [out], options)
    return out


def conv(builder: Builder, x: int, name: str, cin: int, cout: int, size: int) -> int:
    """A 1x1 conv ``(1, size, size, cin)`` -> ``cout`` channels."""
    options = schema.Conv2DOptionsT()
    options.strideH = options.strideW = options.dilationHFactor = options.dilationWFactor = 1
    out = builder.tensor(name, (1, size, size, cout))
    builder.op("CONV_2D", [x, builder.weights(f"{name}/w", (cout, 1, 1, cin)),
                           builder.weights(f"{name}/b", (cout,), "INT32")], [out], options)
    return out


def unary(builder: Builder, kind: str, x: int, name: str, shape, dtype: str = "UINT8") -> int:
    out = builder.tensor(name, shape, dtype)
    builder.op(kind, [x], [out])
    return out


def resize(builder: Builder, x: int, name: str, channels: int, size: int) -> int:
    options = schema.ResizeBilinearOptionsT()
    target = builder.tensor(f"{name}/size", (2,), "INT32", np.array([size, size], np.int32))
    out = builder.tensor(name, (1, size, size, channels))
    builder.op("RESIZE_BILINEAR", [x, target], [out], options)
    return out
