"""What ``edgetpu_compiler`` actually did, read back from its log and its ``_edgetpu.tflite``, and compared
with the static report's prediction (a disagreement is reported, never smoothed over)."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from edge_deeplab.converters.tflite_graph import read_ops

CUSTOM_OP = "CUSTOM:edgetpu-custom-op"
MAPPED = "Mapped to Edge TPU"
_NUMBERS = {"subgraphs": r"Number of Edge TPU subgraphs: (\d+)",
            "ops_total": r"Total number of operations: (\d+)",
            "ops_on_edgetpu": r"Number of operations that will run on Edge TPU: (\d+)",
            "ops_on_cpu": r"Number of operations that will run on CPU: (\d+)"}
_MEMORY = {"on_chip_mib": r"On-chip memory used for caching model parameters: ([\d.]+)\s*([KMG]i)?B",
           "on_chip_remaining_mib": r"On-chip memory remaining for caching model parameters: ([\d.]+)\s*([KMG]i)?B",
           "off_chip_mib": r"Off-chip memory used for streaming uncached model parameters: ([\d.]+)\s*([KMG]i)?B"}
_UNITS = {None: 2 ** -20, "Ki": 2 ** -10, "Mi": 1.0, "Gi": 2 ** 10}
_OPERATOR_ROW = re.compile(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_compiler_log(text: str) -> dict[str, Any]:
    """The summary, parameter memory and per-operator table that ``edgetpu_compiler -s`` prints."""
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    parsed: dict[str, Any] = {"version": version.group(1) if version else None}
    for key, pattern in _NUMBERS.items():
        match = re.search(pattern, text)
        parsed[key] = int(match.group(1)) if match else None
    for key, pattern in _MEMORY.items():
        match = re.search(pattern, text)
        parsed[key] = round(float(match.group(1)) * _UNITS[match.group(2)], 4) if match else None
    table = re.split(r"^Operator\s+Count\s+Status\s*$", text, maxsplit=1, flags=re.M)
    operators = [{"op": m.group(1), "count": int(m.group(2)), "status": m.group(3)}
                 for m in map(_OPERATOR_ROW.match, table[1].splitlines() if len(table) > 1 else []) if m]
    parsed["operators"] = operators
    if parsed["ops_on_edgetpu"] is None and operators:  # fully mapped models print no split
        mapped = sum(row["count"] for row in operators if row["status"] == MAPPED)
        parsed["ops_on_edgetpu"] = mapped
        parsed["ops_on_cpu"] = sum(row["count"] for row in operators) - mapped
    return parsed


def compiled_placement(original: str | Path, compiled: str | Path) -> list[str]:
    """``"edgetpu"``/``"cpu"`` per op of ``original``: an op left as a TFLite op in the compiled file (same
    type, same output tensors) ran on the CPU; the rest went into the ``edgetpu-custom-op``."""
    left = Counter((op.type, tuple(t.name for t in op.outputs)) for op in read_ops(compiled) if op.type != CUSTOM_OP)
    placement = []
    for op in read_ops(original):
        key = (op.type, tuple(t.name for t in op.outputs))
        placement.append("cpu" if left[key] > 0 else "edgetpu")
        if left[key] > 0:  # each op left in the compiled file accounts for one op of the original
            left[key] -= 1
    return placement


def compare(report: dict[str, Any], log: dict[str, Any] | None = None,
            placement: list[str] | None = None) -> dict[str, Any]:
    """Where the compiler (its parsed ``log``, and/or the per-op ``placement`` read from its output file)
    disagrees with the static ``report``: ``{"agrees", "differences": [lines]}``."""
    differences = []
    rows = report["ops"]
    if placement is not None:
        for row, actual in zip(rows, placement):
            if row["placement"] != actual:
                differences.append(f"op {row['index']} {row['op']}: predicted {row['placement']}, compiled {actual}")
        if len(placement) != len(rows):
            differences.append(f"{len(rows)} ops predicted, {len(placement)} in the compiled model's source")
    if log is not None:
        for key in ("ops_total", "ops_on_edgetpu"):
            if log.get(key) is not None and log[key] != report[key]:
                differences.append(f"{key}: predicted {report[key]}, compiler {log[key]}")
        predicted = Counter(r["op"] for r in rows if r["placement"] == "edgetpu")
        compiled = Counter()
        for row in log.get("operators", []):
            if row["status"] == MAPPED:
                compiled[row["op"]] += row["count"]
        for op in sorted(set(predicted) | set(compiled)):
            if log.get("operators") and predicted[op] != compiled[op]:
                differences.append(f"{op} on the Edge TPU: predicted {predicted[op]}, compiler {compiled[op]}")
        if (log.get("subgraphs") or 0) > 1:
            differences.append(f"the compiler made {log['subgraphs']} Edge TPU subgraphs; the report assumes one")
    result: dict[str, Any] = {"agrees": not differences, "differences": differences}
    if log is not None and log.get("on_chip_mib") is not None:
        result["memory"] = {"predicted_parameters_mib": report["memory"]["parameters_mib"],
                            "compiler_on_chip_mib": log["on_chip_mib"], "compiler_off_chip_mib": log["off_chip_mib"]}
    return result
