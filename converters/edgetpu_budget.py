"""What makes a model that maps slow on a Coral in practice: parameters that do not fit the on-chip
cache, activations too large for the device's SRAM, resizes it keeps on the CPU, and an op that splits
the graph. Each is flagged with the op (and layer) and a fix. Estimates, not the compiler's figures:
where ``edgetpu_compiler`` runs, its log has the real memory split (``edgetpu_log``).
"""
from __future__ import annotations

from typing import Any

from edge_deeplab.converters.tflite_graph import Graph

MIB = 2 ** 20
SRAM_MIB = 8.0  # Coral: "roughly 8 MB of SRAM" on the Edge TPU
# Part of the SRAM holds the compiled executable; compiler logs show 7.0-8.05 MiB left for parameters
# ("On-chip memory used/remaining for caching model parameters"), larger models nearer 7.
CACHE_MIB = 7.0
NEAR_CACHE = 0.85  # above this share of the cache the executable's own size decides: flag it
LARGE_OUTPUT = MIB  # elements an op on the CPU side may handle before it is worth a flag

_SPLIT_FIXES = {
    "ARG_MAX": "leave the argmax to the application (our exports: --int8-output logits)",
    "CAST": "give the model 8-bit input/output so no CAST is needed",
    "DEQUANTIZE": "keep the tensor 8-bit up to the model's output; dequantize in the application",
}
_RESIZE_FIX = ("end the Edge TPU part at the low-resolution logits and upsample on the CPU side (for a class "
               "map: argmax first, then a nearest-neighbour upsample of the uint8 labels), or upsample in "
               "smaller steps")


def _flag(kind: str, row: dict[str, Any], detail: str, fix: str) -> dict[str, Any]:
    flag = {"kind": kind, "index": row["index"], "op": row["op"], "tensor": row["tensor"], "detail": detail,
            "fix": fix}
    if "layer" in row:
        flag["layer"] = row["layer"]
    return flag


def budget(graph: Graph, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"memory": {...}, "flags": [...]}`` for the placement ``rows`` of ``graph``'s ops."""
    from edge_deeplab.converters.edgetpu_report import supported_ops

    mapped = [op for op, row in zip(graph.ops, rows) if row["placement"] == "edgetpu"]
    parameters = {t.index: t.nbytes for op in mapped for t in op.inputs if t.constant}
    total = sum(parameters.values()) / MIB
    memory = {"parameters_mib": round(total, 3), "cache_mib": CACHE_MIB, "sram_mib": SRAM_MIB,
              "streamed_mib": round(max(0.0, total - CACHE_MIB), 3), "estimate": True}
    flags = []
    if mapped and total > NEAR_CACHE * CACHE_MIB:
        heaviest = max(mapped, key=lambda op: sum(t.nbytes for t in op.inputs if t.constant))
        detail = (f"{total:.2f} MiB of parameters against ~{CACHE_MIB:.0f} MiB of on-chip cache"
                  + (f": ~{memory['streamed_mib']:.2f} MiB stream from the host on every inference"
                     if memory["streamed_mib"] else ": near the limit, part may stream from the host"))
        flags.append(_flag("parameters", rows[heaviest.index], detail + " (largest here)",
                           "narrow the widest layers (fewer channels / lower expansion), or split the model "
                           "across several Edge TPUs (edgetpu_compiler --num_segments)"))
    for op in mapped:
        activations = [t for t in (*op.inputs, *op.outputs) if not t.constant and not t.variable]
        size = sum(t.elements for t in activations) / MIB  # 8-bit: one byte per value
        if size > SRAM_MIB:
            flags.append(_flag("activations", rows[op.index],
                               f"input + output activations of {size:.1f} MiB exceed the ~{SRAM_MIB:.0f} MiB "
                               "on-chip SRAM (compilation may fail with 'large activation tensors')",
                               "lower the input resolution or the channels at this stage, or downsample earlier"))
    for op, row in zip(graph.ops, rows):
        limit = supported_ops()["ops"].get(op.type, {}).get("max_output_elements")
        if limit and row["placement"] == "cpu" and op.outputs[0].elements > limit:
            out = op.outputs[0]
            flags.append(_flag("resize", row, f"{row['reason']}; the CPU resizes to "
                               f"{'x'.join(map(str, out.shape[1:]))}", _RESIZE_FIX))
        elif row.get("role") == "unsupported" and "after" not in row \
                and any(r.get("after") == row["index"] and r["role"] == "follows" for r in rows):
            follows = sum(r.get("after") == row["index"] and r["role"] == "follows" for r in rows)
            flags.append(_flag("split", row, f"{row['reason']}; {follows} op(s) that could map are on paths "
                               "from it and run on the CPU too (one Edge TPU subgraph only)",
                               _SPLIT_FIXES.get(op.type, "replace it with supported ops, or move it (and what "
                                                "depends on it) to the end of the model")))
        elif row.get("role") == "unsupported" and max((t.elements for t in op.inputs), default=0) > LARGE_OUTPUT:
            largest = max(op.inputs, key=lambda t: t.elements)
            flags.append(_flag("cpu_work", row, f"runs on the CPU over {largest.elements / 1e6:.1f} M values",
                               _SPLIT_FIXES.get(op.type, "do this at a lower resolution")))
    return {"memory": memory, "flags": flags}
