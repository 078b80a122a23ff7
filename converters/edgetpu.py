"""Edge TPU: a full-int8 TFLite built for the Edge TPU's rules, its op report, then ``edgetpu_compiler``.

Our models go through :class:`EdgeTPUConverter` (the export pipeline); any existing full-integer
``.tflite`` goes through :func:`export_tflite`, which reports and compiles it as it is.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab.converters.base import Artifact
from edge_deeplab.converters.edgetpu_log import CUSTOM_OP, compare, compiled_placement, parse_compiler_log
from edge_deeplab.converters.edgetpu_report import compatibility_report, describe
from edge_deeplab.converters.keras_graph import layer_of
from edge_deeplab.converters.tflite import TFLiteInt8, embed_tflite_metadata
from edge_deeplab.errors import BadModelError

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.converters.pipeline import ExportResult
    from edge_deeplab.sources import Source

COMPILER = "edgetpu_compiler"
COMPILER_TIMEOUT_S = 600
NOT_ON_PATH = (f"{COMPILER} is not on PATH (it runs on x86-64 Linux: https://coral.ai/docs/edgetpu/compiler/), "
               "so no _edgetpu.tflite was produced; kept the Edge TPU-ready int8 model and its predicted op "
               f"report: compile it there with `{COMPILER} -s <model>.tflite`")


class EdgeTPUConverter(TFLiteInt8):
    """Batch 1, static shapes, every op int8; the argmax (if fused) is the last op so only it runs on the CPU."""

    name = "edgetpu"
    tag = "tpu_int8"

    def quantization(self, source: "Source") -> dict[str, Any]:
        return {**super().quantization(source), "target": "edgetpu"}

    def convert(self, source: "Source", calibration: "CalibrationSet | None", path: Path) -> Artifact:
        artifact = super().convert(source, calibration, path)
        compiled, details = report_and_compile(path, lambda name: layer_of(name, source.model))
        artifact.details.update(details)
        artifact.summary = "\n  ".join(summary_lines(details))
        artifact.verify_path = path  # parity runs on the CPU int8 model: no Edge TPU here to run the other
        if compiled is None:
            artifact.skipped = details["compiler"]["reason"]
            return artifact
        artifact.files = [f for f in (path, compiled.with_suffix(".log"), compiled) if f.exists()]
        artifact.path = compiled
        return artifact

    def embed_metadata(self, artifact: Artifact, metadata: dict[str, Any]) -> None:
        for path in {artifact.path, artifact.verify_path or artifact.path}:
            embed_tflite_metadata(path, metadata)


def report_and_compile(path: Path, layer_of: Any = None) -> tuple[Path | None, dict[str, Any]]:
    """The static report of ``path``; where the compiler runs, its output compared with that prediction.

    Returns (the compiled file or None, ``{"edgetpu_report", "compiler", "compiler_vs_report"?}``).
    """
    report = compatibility_report(path, layer_of)
    compiled, log = compile_for_edgetpu(path)
    details: dict[str, Any] = {"edgetpu_report": report, "compiler": log}
    if compiled is not None:
        details["compiler_vs_report"] = compare(report, log, compiled_placement(path, compiled))
    return compiled, details


def summary_lines(details: dict[str, Any]) -> list[str]:
    """The report for the terminal, then what the compiler said where it disagrees (or that it could not run)."""
    report, log = details["edgetpu_report"], details["compiler"]
    lines = describe(report)
    if log["status"] != "ok":
        lines[0] = lines[0].replace("Edge TPU report:", f"Edge TPU report (predicted; {COMPILER} {log['status']}):")
        return lines
    check = details["compiler_vs_report"]
    if check["agrees"]:
        lines.append(f"  {COMPILER} {log.get('version')}: agrees with the report")
    else:
        lines.append(f"  {COMPILER} {log.get('version')} DISAGREES with the report:")
        lines.extend(f"    {line}" for line in check["differences"])
    return lines


def compiled_path(path: Path) -> Path:
    """Where ``edgetpu_compiler`` writes the compiled ``path``: ``x.tflite`` -> ``x_edgetpu.tflite``."""
    return path.with_name(f"{path.stem}_edgetpu.tflite")


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
    compiled = compiled_path(path)
    if done.returncode != 0 or not compiled.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, {"status": "failed", "reason": f"{COMPILER} failed: {last[0]}"}
    return compiled, {"status": "ok", **parse_compiler_log(done.stdout)}


def check_full_integer(path: Path) -> None:
    """A BadModelError unless some op of ``path`` computes in 8 bits (naming the int8 export path) and
    it is not compiled already."""
    from edge_deeplab.converters.tflite_graph import read_graph

    ops = read_graph(path).ops
    if any(op.type == CUSTOM_OP for op in ops):
        raise BadModelError(f"{path} is already compiled for the Edge TPU (it holds an {CUSTOM_OP.split(':')[1]}); "
                            "pass the full-integer .tflite it was compiled from")
    edges = ("CAST", "QUANTIZE", "DEQUANTIZE")
    for op in ops:
        tensors = [t for t in (*op.inputs, *op.outputs) if not t.constant and not t.variable]
        if op.type not in edges and tensors and all(t.quantized for t in tensors):
            return
    example = next((op for op in ops if op.type not in edges and op.outputs), None)
    what = f" (op {example.index} {example.type} is {example.outputs[0].dtype})" if example else ""
    raise BadModelError(f"{path} is not a full-integer model{what}: the Edge TPU runs only 8-bit quantized "
                        "models. Quantize it first: `edge-deeplab export SOURCE --format tflite-int8 "
                        "--calibration DIR` for our models (or TFLiteConverter full-integer quantization), "
                        "then pass that .tflite")


def export_tflite(model: str | Path, out_dir: str | Path) -> "ExportResult":
    """Report on (and, where the compiler runs, compile) an existing full-integer ``.tflite`` as it is.

    Writes ``<out>/<stem>.tflite`` (a copy), ``<stem>_edgetpu.tflite`` + ``.log`` if compiled, and the
    manifest ``<artifact>.json`` with ``details.edgetpu_report``; all or nothing.
    """
    from edge_deeplab.converters.manifest import manifest_path, write_manifest
    from edge_deeplab.converters.pipeline import ExportResult
    from edge_deeplab.runtimes.base import check_model_file

    model = check_model_file(model, ".tflite")
    check_full_integer(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".edgetpu-"))
    try:
        copy = staging / model.name
        shutil.copyfile(model, copy)
        compiled, details = report_and_compile(copy)
        files = [f for f in (copy, *([compiled.with_suffix(".log"), compiled] if compiled else [])) if f.exists()]
        artifact = files[-1]
        if compiled is None:
            status, reason = "skipped", details["compiler"]["reason"]
        else:  # compiled as is: there is no source model to check it against, and no Edge TPU here to run it
            status, reason = "unverified", "compiled from a .tflite SOURCE: no reference model to compare against"
        write_manifest(manifest_path(artifact), _manifest(model, files, details, reason))
        for item in [*files, manifest_path(artifact)]:
            os.replace(item, out_dir / item.name)
        size = sum((out_dir / f.name).stat().st_size for f in files)
        return ExportResult("edgetpu", status, out_dir / artifact.name, round(size / 1e6, 3), reason,
                            manifest=out_dir / manifest_path(artifact).name,
                            summary="\n  ".join(summary_lines(details)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _manifest(model: Path, files: list[Path], details: dict[str, Any], reason: str) -> dict[str, Any]:
    from edge_deeplab.runtimes.integrity import sha256
    from edge_deeplab.runtimes.tflite_metadata import read_metadata, tensor_quantization

    inputs, outputs = tensor_quantization(files[0])
    try:
        embedded = json.loads(read_metadata(files[0]) or b"null")
    except ValueError:  # someone else's payload under our key: leave it out
        embedded = None
    return {
        "format": "edgetpu",
        "artifact": files[-1].name,
        "files": [f.name for f in files],
        "sha256": {f.name: sha256(f) for f in files},
        "source": {"name": model.stem, "origin": "tflite", "path": str(model)},
        "quantization": {"precision": "int8", "method": "as given", "target": "edgetpu",
                         "input_quantization": inputs, "output_quantization": outputs},
        "embedded_metadata": embedded,
        "details": details,
        "notes": [reason],
        "tools": EdgeTPUConverter().tool_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
