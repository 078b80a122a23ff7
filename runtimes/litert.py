"""LiteRT (TFLite) interpreter with XNNPACK: ai-edge-litert, else tflite-runtime, else TensorFlow's tf.lite.

ai-edge-litert is a base dependency, so the TensorFlow fallback only serves installs where it was
removed; the base install never imports TensorFlow.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_deeplab.errors import BadModelError, RuntimeUnavailableError
from edge_deeplab.runtimes.base import Runtime, TensorInfo, check_model_file, parse_metadata

_INSTALL = "pip install ai-edge-litert (or tflite-runtime)"


def _installed(module: str) -> bool:
    return module in sys.modules or importlib.util.find_spec(module) is not None


def interpreter_module() -> ModuleType:
    """The module holding ``Interpreter`` and ``load_delegate``."""
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        if _installed(name.split(".")[0]):
            return importlib.import_module(name)
    if _installed("tensorflow"):
        return _tf_lite()
    raise RuntimeUnavailableError(f"no LiteRT interpreter is installed: {_INSTALL}")


def _tf_lite() -> ModuleType:
    from edge_deeplab._optional import tensorflow
    tf = tensorflow("the LiteRT runtime (fallback: neither ai-edge-litert nor tflite-runtime is installed)")
    module = ModuleType("tf_lite_interpreter")
    module.Interpreter, module.load_delegate = tf.lite.Interpreter, tf.lite.experimental.load_delegate
    return module


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    shape = tuple(int(d) for d in detail.get("shape_signature", detail["shape"]))
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quantized = bool(scale) and np.dtype(detail["dtype"]).kind in "iu"
    return TensorInfo(detail["name"], shape, np.dtype(detail["dtype"]),
                      float(scale) if quantized else None, int(zero_point) if quantized else None)


@contextlib.contextmanager
def _native_info_filtered():
    """Drop the C++ runtime's "INFO: Created ... XNNPACK delegate" lines from fd 2, keep everything else.

    LiteRT's logger has no Python switch; its INFO lines would break "one line per error" on stderr.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. an embedded interpreter): leave stderr alone
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith("INFO: ")]
            if kept:
                sys.stderr.write("".join(kept))


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class LiteRTRuntime(Runtime):
    name = "litert"
    accepts = (".tflite",)
    export_format = "tflite"
    op_profiling_unavailable = ("not exposed by the LiteRT Python Interpreter; use LiteRT's benchmark_model "
                                "tool with --enable_op_profiling=true")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if any(_installed(m) for m in ("ai_edge_litert", "tflite_runtime", "tensorflow")):
            return None
        return f"no LiteRT interpreter is installed: {_INSTALL}"

    @classmethod
    def import_engine(cls) -> None:
        interpreter_module()

    def __init__(self, path: str | Path, threads: int | None = None, profile_ops: bool = False) -> None:
        self.path = check_model_file(path, ".tflite")
        with open(self.path, "rb") as file:
            header = file.read(8)
        if len(header) < 8 or header[4:8] != b"TFL3":
            raise BadModelError(f"{self.path} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
                                "expected a .tflite file")
        self.threads = threads
        module = interpreter_module()
        delegates = self._delegates(module)
        try:
            with _native_info_filtered():
                self._interpreter = module.Interpreter(model_path=str(self.path), num_threads=threads,
                                                       experimental_delegates=delegates or None)
                self._fix_dynamic_batch()
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise self._load_error(exc) from None
        self._inputs = [_tensor_info(d) for d in self._interpreter.get_input_details()]
        self._outputs = [_tensor_info(d) for d in self._interpreter.get_output_details()]
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_indices = [d["index"] for d in self._interpreter.get_output_details()]
        self._metadata: dict | None | bool = False
        self._standard: object = False

    def _delegates(self, module: ModuleType) -> list:
        return []  # XNNPACK is applied by the interpreter itself

    def _fix_dynamic_batch(self) -> None:
        for detail in self._interpreter.get_input_details():
            signature = list(detail.get("shape_signature", detail["shape"]))
            if signature and signature[0] == -1:
                self._interpreter.resize_tensor_input(detail["index"], [1, *signature[1:]], strict=False)

    def _load_error(self, exc: BaseException) -> BadModelError:
        message = _first_line(exc)
        if "edgetpu-custom-op" in str(exc):
            return BadModelError(f"{self.path} is compiled for the Edge TPU; run it with --runtime edgetpu "
                                 "on a Coral device, or use the CPU .tflite it was compiled from")
        return BadModelError(f"{self.path}: LiteRT cannot load this model ({message})")

    def set_input(self, array: np.ndarray) -> None:
        self._interpreter.set_tensor(self._input_index, array)

    def invoke(self) -> None:
        self._interpreter.invoke()

    def output(self, index: int = 0) -> np.ndarray:
        return self._interpreter.get_tensor(self._output_indices[index])

    def metadata(self) -> dict | None:
        if self._metadata is False:  # read lazily: benchmark never needs it
            from edge_deeplab.runtimes.tflite_metadata import read_metadata
            self._metadata = parse_metadata(read_metadata(self.path), str(self.path))
        return self._metadata

    def standard_metadata(self):
        if self._standard is False:
            from edge_deeplab.runtimes.tflite_standard_metadata import read_standard_metadata
            self._standard = read_standard_metadata(self.path)
        return self._standard
