"""OpenVINO on the CPU: IR (``.xml`` + ``.bin``), and also ``.onnx`` / ``.tflite`` through its frontends."""
from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_deeplab._optional import require
from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes.base import (
    METADATA_KEY, OpTime, Runtime, TensorInfo, check_model_file, parse_metadata)

_SUFFIXES = (".xml", ".onnx", ".tflite")


def _last_line(exc: BaseException) -> str:
    # OpenVINO prefixes the useful sentence with several "Exception from src/..." lines.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _dims(partial_shape) -> tuple[int, ...]:
    return tuple(d.get_length() if d.is_static else -1 for d in partial_shape)


# "default" leaves the choice to the plugin: bf16 on CPUs with AVX-512 BF16 / AMX, which moves ~0.4% of a
# portrait model's pixels against TFLite fp32 (f32: < 0.1%); so f32 unless the caller asks otherwise.
PRECISIONS = ("f32", "bf16", "f16", "default")


class OpenVINORuntime(Runtime):
    name = "openvino"
    accepts = _SUFFIXES
    export_format = "openvino"
    op_profiling_unavailable = None
    precisions = PRECISIONS

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "OpenVINO is not installed: pip install 'edge-deeplab[openvino]'"
        return None

    @classmethod
    def import_engine(cls) -> None:
        ov = require("openvino", "openvino", "the OpenVINO runtime")
        ov.Core().get_versions("CPU")  # loads the CPU plugin library (~50 ms), also once per process

    def __init__(self, path: str | Path, threads: int | None = None, profile_ops: bool = False,
                 precision: str = "f32") -> None:
        self._ov = ov = require("openvino", "openvino", "the OpenVINO runtime")
        self.path = check_model_file(path, "OpenVINO .xml")
        if self.path.suffix.lower() not in _SUFFIXES:
            raise BadModelError(f"{self.path}: OpenVINO reads {', '.join(_SUFFIXES)} models "
                                "(for IR pass the .xml, with its .bin beside it)")
        if self.path.suffix.lower() == ".xml" and not self.path.with_suffix(".bin").is_file():
            raise BadModelError(f"{self.path}: the weights file {self.path.with_suffix('.bin').name} is missing")
        self.threads = threads
        core = ov.Core()
        try:
            self._model = core.read_model(str(self.path))
            self._static_batch()
            config = {"PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": bool(profile_ops)}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            if precision != "default":
                config["INFERENCE_PRECISION_HINT"] = precision
            self._compiled = core.compile_model(self._model, "CPU", config)
        except RuntimeError as exc:
            raise BadModelError(f"{self.path}: OpenVINO cannot load this model ({_last_line(exc)})") from None
        # What the plugin chose, which may differ from the hint (f16 on a CPU without it runs bf16 or f32).
        self.precision = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._request = self._compiled.create_infer_request()
        self._inputs = self._infos(self._compiled.inputs, 0)
        self._outputs = self._infos(self._compiled.outputs, 1)

    def _static_batch(self) -> None:
        shapes = {}
        for port in self._model.inputs:
            shape = port.get_partial_shape()
            if shape.rank.is_static and shape.rank.get_length() > 0 and shape[0].is_dynamic:
                shape[0] = 1
                shapes[port] = shape
        if shapes:
            self._model.reshape(shapes)

    def _infos(self, ports, side: int) -> list[TensorInfo]:
        quantization = [None] * len(ports)
        if self.path.suffix.lower() == ".tflite":  # the TFLite frontend keeps (u)int8 but drops scale/zero-point
            from edge_deeplab.runtimes.tflite_metadata import tensor_quantization
            quantization = tensor_quantization(self.path)[side]
        infos = []
        for port, quant in zip(ports, quantization):
            scale, zero_point = quant if quant else (None, None)
            infos.append(TensorInfo(port.get_any_name() if port.get_names() else f"{side}:{len(infos)}",
                                    _dims(port.get_partial_shape()),
                                    np.dtype(port.get_element_type().to_dtype()), scale, zero_point))
        return infos

    def set_input(self, array: np.ndarray) -> None:
        # The Tensor shares this memory (keep it alive); OpenVINO refuses read-only arrays.
        self._input = array if array.flags.c_contiguous and array.flags.writeable else np.array(array, order="C")
        self._request.set_input_tensor(self._ov.Tensor(self._input, shared_memory=True))

    def invoke(self) -> None:
        self._request.infer()

    def output(self, index: int = 0) -> np.ndarray:
        return self._request.get_output_tensor(index).data.copy()

    def metadata(self) -> dict | None:
        suffix = self.path.suffix.lower()
        if suffix == ".tflite":
            from edge_deeplab.runtimes.tflite_metadata import read_metadata
            return parse_metadata(read_metadata(self.path), str(self.path))
        if suffix == ".onnx":
            from edge_deeplab.runtimes.onnxruntime import read_onnx_metadata
            return read_onnx_metadata(self.path)
        if self._model.has_rt_info(METADATA_KEY):
            return parse_metadata(self._model.get_rt_info(METADATA_KEY).astype(str), str(self.path))
        return None

    def standard_metadata(self):
        if self.path.suffix.lower() != ".tflite":
            return None
        from edge_deeplab.runtimes.tflite_standard_metadata import read_standard_metadata
        return read_standard_metadata(self.path)

    def profile_ops(self, runs: int) -> list[OpTime]:
        """Mean per-layer times from the engine's PERF_COUNT counters over ``runs`` invokes."""
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for _ in range(runs):
            self._request.infer()
            for info in self._request.get_profiling_info():
                if info.status == info.Status.EXECUTED:
                    totals[(info.node_name, info.node_type)] += info.real_time.total_seconds() * 1000.0
        return [OpTime(name, kind, total / runs) for (name, kind), total in totals.items()]
