"""Static Edge TPU compatibility of an int8 ``.tflite``: each op against the supported-op table (data)."""
from __future__ import annotations

import functools
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from edge_deeplab.converters.tflite_graph import Op, Tensor, read_ops

QUANTIZED = ("INT8", "UINT8")


@functools.cache
def supported_ops() -> dict[str, Any]:
    """The table in ``edgetpu_ops.json``: source, compiler version, general rules and per-op limits."""
    text = resources.files("edge_deeplab.converters").joinpath("edgetpu_ops.json").read_text()
    return json.loads(text)


def _effective_rank(shape: tuple[int, ...]) -> int:
    dims = list(shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    return len(dims)


def _tensor_problem(tensor: Tensor) -> str | None:
    if tensor.constant:
        return None  # weights, biases (int32) and shape operands are the compiler's to fold
    if tensor.dtype not in QUANTIZED:
        return f"tensor {tensor.name!r} is {tensor.dtype}, not 8-bit quantized"
    if any(d < 0 for d in tensor.shape):
        return f"tensor {tensor.name!r} has a dynamic shape {list(tensor.shape)}"
    if _effective_rank(tensor.shape) > 3:
        return f"tensor {tensor.name!r} {list(tensor.shape)} has more than 3 dimensions larger than 1"
    return None


def check_op(op: Op) -> str | None:
    """Why ``op`` cannot run on the Edge TPU, or None if the table and its checkable limits allow it."""
    rule = supported_ops()["ops"].get(op.type)
    if rule is None:
        return f"{op.type} is not in the Edge TPU's supported-op table"
    for tensor in (*op.inputs, *op.outputs):
        problem = _tensor_problem(tensor)
        if problem:
            return problem
    options = op.options
    if rule.get("no_fused_activation") and options.get("fused_activation", 0):
        return f"{op.type} with a fused activation"
    if rule.get("same_dilation") and options.get("dilation_h", 1) != options.get("dilation_w", 1):
        return f"{op.type} with different x/y dilation"
    if rule.get("no_dilation") and max(options.get("dilation_h", 1), options.get("dilation_w", 1)) > 1:
        return f"dilated {op.type}"
    if rule.get("unit_strides"):
        strides = op.inputs[3].data if len(op.inputs) > 3 else None
        if strides is None or any(int(s) != 1 for s in strides) or options.get("ellipsis_mask") \
                or options.get("new_axis_mask"):
            return f"{op.type} with strides other than 1 or an ellipsis/new-axis mask"
    if "max_effective_rank" in rule and _effective_rank(op.inputs[0].shape) > rule["max_effective_rank"]:
        return f"{op.type} on a {_effective_rank(op.inputs[0].shape)}-D tensor"
    if "max_elements" in rule:
        elements = 1
        for d in op.inputs[0].shape:
            elements *= max(d, 1)
        if elements > rule["max_elements"]:
            return f"{op.type} over {elements} elements (limit {rule['max_elements']})"
    return None


def compatibility_report(path: str | Path, layer_of: Any = None) -> dict[str, Any]:
    """Per-op placement of the model at ``path`` on an Edge TPU, as the compiler would do it in one pass.

    ``layer_of(tensor_name) -> str | None`` names the source Keras layer of an op, when known.
    """
    table = supported_ops()
    rows, first_cpu = [], None
    for op in read_ops(path):
        reason = check_op(op)
        row: dict[str, Any] = {"index": op.index, "op": op.type, "tensor": op.name}
        layer = layer_of(op.name) if layer_of else None
        if layer:
            row["layer"] = layer
        if reason is not None:
            row["reason"] = reason
        if first_cpu is None and reason is not None:
            first_cpu = row
        row["placement"] = "edgetpu" if first_cpu is None else "cpu"
        if table["ops"].get(op.type, {}).get("conditional") and first_cpu is None:
            row["note"] = table["ops"][op.type]["limits"]
        rows.append(row)
    mapped = sum(r["placement"] == "edgetpu" for r in rows)
    return {
        "table": {"source": table["source"], "compiler": table["compiler"]},
        "ops_total": len(rows),
        "ops_on_edgetpu": mapped,
        "ops_on_cpu": len(rows) - mapped,
        "first_cpu_op": first_cpu,
        "unsupported": dict(Counter(r["op"] for r in rows if "reason" in r)),
        "summary": summarize(first_cpu, mapped, len(rows)),
        "ops": rows,
    }


def summarize(first_cpu: dict[str, Any] | None, mapped: int, total: int) -> str:
    if first_cpu is None:
        return f"all {total} ops map to the Edge TPU"
    where = f" (layer {first_cpu['layer']})" if "layer" in first_cpu else ""
    return (f"{mapped} of {total} ops map to the Edge TPU; op {first_cpu['index']} {first_cpu['op']}{where} "
            f"falls back to the CPU ({first_cpu['reason']}), and every op after it with it")
