"""Static Edge TPU placement of an int8 ``.tflite``, as ``edgetpu_compiler`` would partition it.

Two steps: each op against the supported-op table (``edgetpu_ops.json``, data) and the checkable limits
of its tensors; then the compiler's single partition. The compiler makes one Edge TPU subgraph: ops
that cannot map at the very start (a CAST or a float QUANTIZE of the input) run on the CPU before it
without splitting anything; an op that cannot map once the subgraph has begun runs on the CPU, and so
does every op on a path from it (a second Edge TPU subgraph is not made), while ops on other paths stay
on the Edge TPU. Unsupported ops at the end cost only themselves.
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edge_deeplab.converters.tflite_graph import Graph, Op, Tensor, read_graph

# Why an op is on the CPU: "start" (unsupported, before the Edge TPU subgraph: nothing is split),
# "unsupported" (cannot map, after the subgraph began), "follows" (could map, but is on a path from a
# CPU op: the compiler makes one Edge TPU subgraph only).
ROLES = ("start", "unsupported", "follows")


@functools.cache
def supported_ops() -> dict[str, Any]:
    """The table in ``edgetpu_ops.json``: source, compiler version, general rules and per-op limits."""
    text = resources.files("edge_deeplab.converters").joinpath("edgetpu_ops.json").read_text()
    return json.loads(text)


def effective_rank(shape: tuple[int, ...]) -> int:
    """Dimensions left once leading 1s are dropped: the Edge TPU takes at most 3."""
    dims = list(shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    return len(dims)


def _tensor_problem(tensor: Tensor) -> str | None:
    if tensor.constant or tensor.variable:
        return None  # weights, int32 biases, shape operands and int16 LSTM state are the compiler's to fold
    if not tensor.quantized:
        return f"tensor {tensor.name!r} is {tensor.dtype}, not 8-bit quantized"
    if any(d < 0 for d in tensor.shape):
        return f"tensor {tensor.name!r} has a dynamic shape {list(tensor.shape)}"
    if effective_rank(tensor.shape) > 3:
        return f"tensor {tensor.name!r} {list(tensor.shape)} has more than 3 dimensions larger than 1"
    return None


def _axes(op: Op) -> list[int]:
    """Axes an op works along: a constant axes operand (reductions: 2nd input, SPLIT: 1st) or its option."""
    if op.type == "SPLIT" and op.inputs and op.inputs[0].data is not None:
        return [int(a) for a in op.inputs[0].data]
    if len(op.inputs) > 1 and op.inputs[1].constant and op.inputs[1].data is not None:
        return [int(a) for a in op.inputs[1].data]
    return [op.options["axis"]] if "axis" in op.options else []


def _activation(op: Op) -> Tensor | None:
    return next((t for t in op.inputs if not t.constant and not t.variable), None)


def _limit_problem(op: Op, rule: dict[str, Any]) -> str | None:
    """The first per-op limit of the table that ``op`` breaks (only limits a static reading can check)."""
    options, data = op.options, _activation(op)
    rank = len(data.shape) if data is not None else 0
    if rule.get("no_fused_activation") and options.get("fused_activation", 0):
        return f"{op.type} with a fused activation"
    if rule.get("default_weights_format") and options.get("weights_format", 0):
        return f"{op.type} with shuffled (non-default) weights"
    if rule.get("same_dilation") and options.get("dilation_h", 1) != options.get("dilation_w", 1):
        return f"{op.type} with different x/y dilation"
    if rule.get("unit_strides"):
        strides = op.inputs[3].data if len(op.inputs) > 3 else None
        if strides is None or any(int(s) != 1 for s in strides) or options.get("ellipsis_mask") \
                or options.get("new_axis_mask"):
            return f"{op.type} with strides other than 1 or an ellipsis/new-axis mask"
    if rule.get("no_batch_axis") and rank == 4 and any(a in (0, -4) for a in _axes(op)):
        return f"{op.type} along the batch dimension"
    if rule.get("no_batch_padding") and len(op.inputs) > 1 and op.inputs[1].data is not None \
            and rank == 4 and any(int(p) for p in op.inputs[1].data[:2]):
        return f"{op.type} pads the batch dimension"
    if "z_multiple_of" in rule and rank and any(a in (rank - 1, -1) for a in _axes(op)) \
            and data.shape[-1] % rule["z_multiple_of"]:
        return f"{op.type} over {data.shape[-1]} channels (a multiple of {rule['z_multiple_of']} maps)"
    if rule.get("keep_last_dim") and data is not None and op.outputs \
            and op.outputs[0].shape[-1:] != data.shape[-1:]:
        return f"{op.type} changes the last dimension"
    if "alpha_rank" in rule and len(op.inputs) > 1 and effective_rank(op.inputs[1].shape) > rule["alpha_rank"]:
        return f"{op.type} with a {effective_rank(op.inputs[1].shape)}-D alpha"
    if "max_output_rank" in rule and op.outputs and effective_rank(op.outputs[0].shape) > rule["max_output_rank"]:
        return f"{op.type} with a {effective_rank(op.outputs[0].shape)}-D output"
    if "max_effective_rank" in rule and data is not None and effective_rank(data.shape) > rule["max_effective_rank"]:
        return f"{op.type} on a {effective_rank(data.shape)}-D tensor"
    if "max_elements" in rule and data is not None and data.elements > rule["max_elements"]:
        return f"{op.type} over {data.elements} elements (limit {rule['max_elements']})"
    if "max_output_elements" in rule and op.outputs and op.outputs[0].elements > rule["max_output_elements"]:
        out = op.outputs[0]
        return (f"{op.type} to {'x'.join(map(str, out.shape[1:]))} ({out.elements / 1e6:.1f} M values): "
                f"above the ~{rule['max_output_elements'] / 2 ** 20:.0f} M the compiler maps without precision loss")
    return None


def check_op(op: Op) -> str | None:
    """Why ``op`` cannot run on the Edge TPU, or None if the table and its checkable limits allow it."""
    rule = supported_ops()["ops"].get(op.type)
    if rule is None:
        kind = "custom op" if op.type.startswith("CUSTOM:") else "op"
        return f"{kind} {op.type.removeprefix('CUSTOM:')} is not in the Edge TPU's supported-op table"
    for tensor in (*op.inputs, *op.outputs):
        problem = _tensor_problem(tensor)
        if problem:
            return problem
    return _limit_problem(op, rule)


@dataclass(frozen=True)
class Placement:
    edgetpu: bool
    role: str | None = None  # one of ROLES for a CPU op
    reason: str | None = None  # why it cannot map (role "start"/"unsupported")
    after: int | None = None  # past the start: the unsupported op that split off the path it is on


def partition(graph: Graph) -> list[Placement]:
    """Each op's placement under the compiler's single Edge TPU subgraph (see the module docstring)."""
    producer: dict[int, int] = {}
    placements: list[Placement] = []
    for op in graph.ops:
        sources = sorted({producer[t.index] for t in op.inputs if t.index in producer})
        # A CPU op past the start splits the graph: what consumes it cannot rejoin the one subgraph.
        blocking = [i for i in sources if not placements[i].edgetpu and placements[i].role != "start"]
        root = None
        if blocking:  # every CPU op past the start traces back to the op that first left the subgraph
            cause = placements[blocking[0]]
            root = cause.after if cause.after is not None else blocking[0]
        reason = check_op(op)
        if reason is not None:
            started = any(placements[i].role != "start" for i in sources)
            placements.append(Placement(False, "unsupported" if started else "start", reason, root))
        elif blocking:
            placements.append(Placement(False, "follows", after=root))
        else:
            placements.append(Placement(True))
        for tensor in op.outputs:
            producer[tensor.index] = op.index
    return placements


def compatibility_report(path: str | Path, layer_of: Any = None) -> dict[str, Any]:
    """Per-op placement of the model at ``path`` on an Edge TPU, plus what slows a mapped model down.

    ``layer_of(tensor_name) -> str | None`` names the source Keras layer of an op, when known.
    """
    from edge_deeplab.converters.edgetpu_budget import budget

    graph = read_graph(path)
    table = supported_ops()
    rows = []
    for op, placement in zip(graph.ops, partition(graph)):
        row: dict[str, Any] = {"index": op.index, "op": op.type, "tensor": op.name,
                               "placement": "edgetpu" if placement.edgetpu else "cpu"}
        layer = layer_of(op.name) if layer_of else None
        if layer:
            row["layer"] = layer
        if not placement.edgetpu:
            row["role"] = placement.role
            row["reason"] = placement.reason or f"on a path from CPU op {placement.after} (one Edge TPU subgraph only)"
        if placement.after is not None:
            row["after"] = placement.after
        rows.append(row)
    mapped = sum(r["placement"] == "edgetpu" for r in rows)
    first = next((r for r in rows if r["placement"] == "cpu"), None)
    report = {
        "table": {"source": table["source"], "compiler": table["compiler"]},
        "ops_total": len(rows),
        "ops_on_edgetpu": mapped,
        "ops_on_cpu": len(rows) - mapped,
        "edgetpu_subgraphs": int(mapped > 0),
        "first_cpu_op": None if first is None else {k: first[k] for k in
                                                    ("index", "op", "role", "reason", "layer") if k in first},
        "cpu_roles": {role: sum(r.get("role") == role for r in rows) for role in ROLES},
        "unsupported": dict(Counter(r["op"] for r in rows if r.get("role") in ("start", "unsupported"))),
        **budget(graph, rows),
        "ops": rows,
    }
    report["summary"] = summarize(report)
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The report's contract keys (what search.json and the pairs benchmark carry), without the per-op rows."""
    keys = ("ops_total", "ops_on_edgetpu", "ops_on_cpu", "first_cpu_op", "memory", "flags", "summary")
    return {key: report[key] for key in keys}


def summarize(report: dict[str, Any]) -> str:
    """One line: how much maps and where the CPU takes over."""
    mapped, total, first = report["ops_on_edgetpu"], report["ops_total"], report["first_cpu_op"]
    if first is None:
        return f"all {total} ops map to the Edge TPU"
    text = f"{mapped} of {total} ops map to the Edge TPU"
    roles = report["cpu_roles"]
    if roles["start"]:
        text += f"; {roles['start']} input op(s) run on the CPU first"
    roots = [r for r in report["ops"] if r.get("role") == "unsupported" and "after" not in r]
    if roots:
        cut = roots[0]
        where = f" (layer {cut['layer']})" if "layer" in cut else ""
        follows = sum(r.get("after") == cut["index"] for r in report["ops"])
        text += (f"; op {cut['index']} {cut['op']}{where} runs on the CPU ({cut['reason']})"
                 + (f" with the {follows} op(s) on paths from it" if follows else ""))
        if len(roots) > 1:
            text += f"; {len(roots) - 1} more op(s) split off to the CPU likewise"
    return text


def describe(report: dict[str, Any]) -> list[str]:
    """The terminal summary: placement, memory, and each flag with its fix."""
    lines = [f"Edge TPU report: {report['summary']}"]
    if report["first_cpu_op"] is not None:
        first = report["first_cpu_op"]
        lines.append(f"  first CPU op: #{first['index']} {first['op']} ({first['role']}: {first['reason']})")
        cpu = Counter(r["op"] for r in report["ops"] if r["placement"] == "cpu")
        lines.append("  on the CPU: " + ", ".join(f"{op} x{n}" for op, n in cpu.most_common()))
    memory = report["memory"]
    lines.append(f"  parameters on the Edge TPU: {memory['parameters_mib']:.2f} MiB of "
                 f"~{memory['cache_mib']:.1f} MiB on-chip cache"
                 + (f", ~{memory['streamed_mib']:.2f} MiB stream from the host per inference"
                    if memory["streamed_mib"] else ""))
    for flag in report["flags"]:
        where = f" (layer {flag['layer']})" if flag.get("layer") else ""
        lines.append(f"  ! {flag['kind']}: op {flag['index']} {flag['op']}{where}: {flag['detail']}; "
                     f"fix: {flag['fix']}")
    return lines
