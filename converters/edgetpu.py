"""Edge TPU: a full-int8 TFLite built for the Edge TPU's rules, its op report, then ``edgetpu_compiler``."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab.converters.base import Artifact
from edge_deeplab.converters.edgetpu_report import compatibility_report
from edge_deeplab.converters.keras_graph import layer_of
from edge_deeplab.converters.tflite import TFLiteInt8

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source

COMPILER = "edgetpu_compiler"
COMPILER_TIMEOUT_S = 600
NOT_ON_PATH = (f"{COMPILER} is not on PATH (it runs on x86-64 Linux: https://coral.ai/docs/edgetpu/compiler/); "
               "kept the Edge TPU-ready int8 model and its op report, compile it there with "
               f"`{COMPILER} -s <model>.tflite`")


class EdgeTPUConverter(TFLiteInt8):
    """Batch 1, static shapes, every op int8; the argmax (if fused) is the last op so only it runs on the CPU."""

    name = "edgetpu"
    tag = "tpu_int8"

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {**super().quantization(source), "target": "edgetpu"}

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        artifact = super().convert(source, calibration, path)
        report = compatibility_report(path, lambda name: layer_of(name, source.model))
        artifact.details["edgetpu_report"] = report
        artifact.summary = f"Edge TPU op report: {report['summary']}"
        compiled, log = compile_for_edgetpu(path)
        artifact.details["compiler"] = log
        artifact.verify_path = path  # parity runs on the CPU int8 model: no Edge TPU here to run the other
        if compiled is None:
            artifact.skipped = log["reason"]
            return artifact
        artifact.files = [path, compiled.with_suffix(".log"), compiled]
        artifact.files = [f for f in artifact.files if f.exists()]
        artifact.path = compiled
        return artifact

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        from edge_deeplab.runtimes.tflite_metadata import write_metadata
        for path in {artifact.path, artifact.verify_path or artifact.path}:
            write_metadata(path, path, json.dumps(metadata).encode())


def compile_for_edgetpu(path: Path) -> tuple[Path | None, dict[str, Any]]:
    """Run ``edgetpu_compiler`` next to ``path``; (compiled file or None, parsed log or why it was skipped)."""
    executable = shutil.which(COMPILER)
    if executable is None:
        return None, {"status": "skipped", "reason": NOT_ON_PATH}
    try:
        done = subprocess.run([executable, "-s", "-o", str(path.parent), str(path)], capture_output=True,
                              text=True, timeout=COMPILER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, {"status": "failed", "reason": f"{COMPILER} did not finish in {COMPILER_TIMEOUT_S} s"}
    compiled = path.with_name(f"{path.stem}_edgetpu.tflite")
    if done.returncode != 0 or not compiled.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, {"status": "failed", "reason": f"{COMPILER} failed: {last[0]}"}
    return compiled, {"status": "ok", **parse_compiler_log(done.stdout)}


_NUMBERS = {"subgraphs": r"Number of Edge TPU subgraphs: (\d+)",
            "ops_total": r"Total number of operations: (\d+)",
            "ops_on_edgetpu": r"Number of operations that will run on Edge TPU: (\d+)",
            "ops_on_cpu": r"Number of operations that will run on CPU: (\d+)"}
_OPERATOR_ROW = re.compile(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_compiler_log(text: str) -> dict[str, Any]:
    """The summary and the per-operator table that ``edgetpu_compiler -s`` prints."""
    version = re.search(r"Edge TPU Compiler version (\S+)", text)
    parsed: dict[str, Any] = {"version": version.group(1) if version else None}
    for key, pattern in _NUMBERS.items():
        match = re.search(pattern, text)
        parsed[key] = int(match.group(1)) if match else None
    table = text.split("Operator", 1)[1] if re.search(r"^Operator\s+Count\s+Status", text, re.M) else ""
    operators = [{"op": m.group(1), "count": int(m.group(2)), "status": m.group(3)}
                 for m in map(_OPERATOR_ROW.match, table.splitlines()) if m]
    parsed["operators"] = operators
    mapped = sum(row["count"] for row in operators if row["status"] == "Mapped to Edge TPU")
    if parsed["ops_on_edgetpu"] is None and operators:  # fully mapped models print no split
        parsed["ops_on_edgetpu"] = mapped
        parsed["ops_on_cpu"] = sum(row["count"] for row in operators) - mapped
    return parsed
