"""The ops of a ``.tflite`` file in execution order, read with flatbuffers alone (no TensorFlow)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_deeplab.errors import BadModelError

QUANTIZED = ("INT8", "UINT8")


def _schema():
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


def _enum_names(enum: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum).items() if not name.startswith("_")}


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]  # -1 where the signature is dynamic
    dtype: str  # TFLite type name: "INT8", "UINT8", "INT32", "FLOAT32", ...
    constant: bool
    data: np.ndarray | None = None  # constant int32/int64 payloads (axes, strides, sizes), else None
    index: int = -1  # position in the subgraph's tensor list: how ops connect
    variable: bool = False  # state carried between invocations (an LSTM's cell), not an activation
    nbytes: int = 0  # bytes of a constant's buffer (weights, biases), 0 for activations

    @property
    def elements(self) -> int:
        count = 1
        for d in self.shape:
            count *= max(d, 1)
        return count

    @property
    def quantized(self) -> bool:
        return self.dtype in QUANTIZED


@dataclass(frozen=True, eq=False)
class Op:
    index: int
    type: str  # builtin operator name, e.g. "CONV_2D"; custom ops as "CUSTOM:<code>"
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    options: dict[str, Any] = field(default_factory=dict)  # e.g. fused_activation, dilation_h

    @property
    def name(self) -> str:
        """The op's first output tensor name: carries the TF scope (``model/layer/...``)."""
        return self.outputs[0].name if self.outputs else self.type


@dataclass(frozen=True, eq=False)
class Graph:
    """The first subgraph: ops in execution order plus the indices of the graph's input/output tensors."""

    ops: list[Op]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""


def read_ops(path: str | Path) -> list[Op]:
    return read_graph(path).ops


def read_graph(path: str | Path) -> Graph:
    schema = _schema()
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadModelError(f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    model = schema.Model.GetRootAs(data, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    option_names = _enum_names(schema.BuiltinOptions)
    type_names = _enum_names(schema.TensorType)
    graph = model.Subgraphs(0)
    cache: dict[int, Tensor] = {}

    def tensor(index: int) -> Tensor | None:
        if index < 0:  # optional input left out
            return None
        if index in cache:
            return cache[index]
        t = graph.Tensors(index)
        signature = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        shape = tuple(int(d) for d in signature) if isinstance(signature, np.ndarray) else ()
        buffer = model.Buffers(t.Buffer())
        # Buffers past 2 GB live outside the flatbuffer (Offset/Size); both count as constant data.
        size = buffer.DataLength() or (buffer.Size() if buffer.Offset() > 1 and hasattr(buffer, "Size") else 0)
        constant = t.Buffer() > 0 and size > 0
        dtype = type_names.get(t.Type(), str(t.Type()))
        payload = None
        if constant and dtype in ("INT32", "INT64") and buffer.DataLength() > 0:
            payload = buffer.DataAsNumpy().view(np.int32 if dtype == "INT32" else np.int64)
        cache[index] = Tensor(t.Name().decode("utf-8", "replace"), shape, dtype, constant, payload, index,
                              bool(t.IsVariable()), int(size) if constant else 0)
        return cache[index]

    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{code.CustomCode().decode()}"
        inputs = tuple(t for t in (tensor(op.Inputs(j)) for j in range(op.InputsLength())) if t is not None)
        outputs = tuple(t for t in (tensor(op.Outputs(j)) for j in range(op.OutputsLength())) if t is not None)
        ops.append(Op(i, name, inputs, outputs, _options(schema, op, option_names)))
    description = model.Description().decode("utf-8", "replace") if model.Description() else ""
    return Graph(ops, tuple(int(i) for i in graph.InputsAsNumpy()), tuple(int(i) for i in graph.OutputsAsNumpy()),
                 description)


# Option fields the compatibility checks read, by their flatbuffer accessor names.
_OPTION_FIELDS = {"FusedActivationFunction": "fused_activation", "DilationHFactor": "dilation_h",
                  "DilationWFactor": "dilation_w", "EllipsisMask": "ellipsis_mask", "NewAxisMask": "new_axis_mask",
                  "AlignCorners": "align_corners", "HalfPixelCenters": "half_pixel_centers", "Axis": "axis",
                  "WeightsFormat": "weights_format"}


def _options(schema: Any, op: Any, option_names: dict[int, str]) -> dict[str, Any]:
    kind = option_names.get(op.BuiltinOptionsType(), "NONE")
    table = op.BuiltinOptions()
    if kind == "NONE" or table is None or not hasattr(schema, kind):
        return {}
    options = getattr(schema, kind)()
    options.Init(table.Bytes, table.Pos)
    return {key: int(getattr(options, accessor)()) for accessor, key in _OPTION_FIELDS.items()
            if hasattr(options, accessor)}
