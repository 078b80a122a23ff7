"""ONNX Runtime with the CPU execution provider."""
from __future__ import annotations

import importlib.util
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edge_deeplab._optional import require
from edge_deeplab.errors import BadModelError, first_line
from edge_deeplab.runtimes.base import METADATA_KEY, OpTime, Runtime, TensorInfo, check_model_file, parse_metadata

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
           "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def read_onnx_metadata(path: str | Path) -> dict | None:
    """Our metadata from an ONNX file's ``metadata_props`` (needs the onnx package; None without it)."""
    if importlib.util.find_spec("onnx") is None:
        return None
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends from protobuf
        raise BadModelError(f"{path} is not a readable ONNX model ({exc})") from None
    props = {p.key: p.value for p in model.metadata_props}
    return parse_metadata(props.get(METADATA_KEY), str(path))


def _info(node) -> TensorInfo:
    if node.type not in _DTYPES:
        raise BadModelError(f"ONNX tensor {node.name!r} has unsupported type {node.type}")
    shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in node.shape)
    return TensorInfo(node.name, shape, np.dtype(_DTYPES[node.type]))


class ONNXRuntime(Runtime):
    name = "onnxruntime"
    accepts = (".onnx",)
    export_format = "onnx"
    op_profiling_unavailable = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "ONNX Runtime is not installed: pip install 'edge-deeplab[onnx]'"
        return None

    @classmethod
    def import_engine(cls) -> None:
        require("onnxruntime", "onnx", "the ONNX Runtime backend")

    def __init__(self, path: str | Path, threads: int | None = None, profile_ops: bool = False) -> None:
        ort = require("onnxruntime", "onnx", "the ONNX Runtime backend")
        self.path = check_model_file(path, ".onnx")
        self.threads = threads
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT's warnings are about its own graph rewrites
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._profile_dir = None
        if profile_ops:
            self._profile_dir = tempfile.TemporaryDirectory(prefix="edge_deeplab_ort_")
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(self._profile_dir.name) / "profile")
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's pybind errors (InvalidProtobuf, Fail, ...) share no useful base
            raise BadModelError(f"{self.path}: ONNX Runtime cannot load this model ({first_line(exc)})") from None
        self._inputs = [_info(node) for node in self._session.get_inputs()]
        self._outputs = [_info(node) for node in self._session.get_outputs()]
        self._feed: dict[str, np.ndarray] = {}
        self._results: list[np.ndarray] = []

    def set_input(self, array: np.ndarray) -> None:
        self._feed = {self._inputs[0].name: array}

    def invoke(self) -> None:
        self._results = self._session.run(None, self._feed)

    def output(self, index: int = 0) -> np.ndarray:
        return self._results[index]

    def metadata(self) -> dict | None:
        custom = self._session.get_modelmeta().custom_metadata_map
        return parse_metadata(custom.get(METADATA_KEY), str(self.path))

    def profile_ops(self, runs: int) -> list[OpTime]:
        """Mean per-node kernel times from ORT's built-in profiler over ``runs`` invokes."""
        if self._profile_dir is None:
            raise RuntimeError("load the model with profile_ops=True to profile its ops")
        for _ in range(runs):
            self.invoke()
        events = json.loads(Path(self._session.end_profiling()).read_text())
        # The profile holds every run since loading (warm-up included, the cold first run too): keep the
        # last ``runs``, the ones timed here, as the latency figures keep theirs.
        starts = sorted(e.get("ts", 0) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
        sessions = min(runs, len(starts))
        since = starts[-sessions] if sessions else 0
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for event in events:
            if event.get("ts", 0) < since:
                continue
            if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
                key = (event["name"][:-len("_kernel_time")], event.get("args", {}).get("op_name", "?"))
                totals[key] += event.get("dur", 0) / 1000.0
        return [OpTime(name, kind, total / max(sessions, 1)) for (name, kind), total in totals.items()]
