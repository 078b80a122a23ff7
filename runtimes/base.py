"""The one interface every inference engine implements, and the metadata convention they share.

Embedded metadata (written by ``edge_deeplab.converters``, read here)
---------------------------------------------------------------------
Our exported models carry one UTF-8 JSON object under the key ``"edge_deeplab"`` (:data:`METADATA_KEY`):

* TFLite: a ``Model.metadata`` entry named ``edge_deeplab`` whose buffer holds the JSON bytes
  (:func:`edge_deeplab.runtimes.tflite_metadata.write_metadata`; flatbuffers only, no TensorFlow).
* ONNX: ``model.metadata_props`` entry with key ``edge_deeplab`` and the JSON string as value.
* OpenVINO IR: ``model.set_rt_info(json_string, "edge_deeplab")`` before ``ov.save_model``.
* Core ML: ``model.user_defined_metadata["edge_deeplab"] = json_string``.

Keys (all optional; readers ignore unknown keys so the format can grow):

* ``"input_range"``: ``"0,1"``, ``"-1,1"`` or ``"0,255"``: the real-valued range the model expects for
  RGB pixels 0..255. For a quantized input it is the range *before* quantization (the tensor's
  scale/zero-point then map it to integers). Our models take ``"0,1"``.
* ``"labels"``: list of class names, index = class id.
* ``"output"``: ``"logits"``, ``"probabilities"`` or ``"labels"`` (an integer class map).
* ``"config"``: the ``ModelConfig`` as a dict; ``"format"``, ``"quantization"``: free-form strings.

A ``.tflite`` may also carry the standard TFLite Model Metadata (``TFLITE_METADATA``, as TFLite Support and
MediaPipe Model Maker write it; :mod:`edge_deeplab.runtimes.tflite_standard_metadata`): its mean/std and
label file are used where ours says nothing (:meth:`Runtime.standard_metadata`). Our TFLite exports
carry both.
"""
from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge_deeplab.errors import BadModelError

METADATA_KEY = "edge_deeplab"
INPUT_RANGES = ("0,1", "-1,1", "0,255")
OUTPUT_KINDS = ("logits", "probabilities", "labels")


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as the engine sees it. Dynamic dimensions are -1."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None  # affine quantization, when the tensor is (u)int8
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return bool(self.scale) and np.dtype(self.dtype).kind in "iu"


@dataclass(frozen=True)
class OpTime:
    """Time spent in one op/layer during one inference."""

    name: str
    type: str
    ms: float


def parse_metadata(text: str | bytes | None, source: str) -> dict[str, Any] | None:
    """Decode and check an embedded metadata JSON string (see the module docstring)."""
    if text is None or text == b"" or text == "":
        return None
    try:
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadModelError(f"{source}: its {METADATA_KEY!r} metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise BadModelError(f"{source}: its {METADATA_KEY!r} metadata must be a JSON object")
    if meta.get("input_range") not in (None, *INPUT_RANGES):
        raise BadModelError(f"{source}: metadata input_range {meta['input_range']!r} is not one of "
                            f"{', '.join(INPUT_RANGES)}")
    if meta.get("output") not in (None, *OUTPUT_KINDS):
        raise BadModelError(f"{source}: metadata output {meta['output']!r} is not one of "
                            f"{', '.join(OUTPUT_KINDS)}")
    return meta


def check_model_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is an existing non-empty file, else a BadModelError saying what was expected."""
    path = Path(path)
    if not path.exists():
        raise BadModelError(f"model file not found: {path}")
    if not path.is_file() and not path.suffix == ".mlpackage":
        raise BadModelError(f"{path} is a folder, expected a {what} file")
    if path.is_file() and path.stat().st_size == 0:
        raise BadModelError(f"{path} is empty, expected a {what} file")
    return path


class Runtime(abc.ABC):
    """Loads one model file and runs it on ready-made input arrays.

    ``run`` = ``set_input`` + ``invoke`` + ``output``; the profiler times ``invoke`` alone, like a bare
    engine loop does.
    """

    name: ClassVar[str]
    # Why per-op timing is not available from this engine, or None if ``profile_ops`` works.
    op_profiling_unavailable: ClassVar[str | None] = "this engine exposes no per-op timing"
    # Inference precisions the engine can be asked for (its __init__ then takes ``precision=``); an empty
    # tuple: it computes in the model's own types.
    precisions: ClassVar[tuple[str, ...]] = ()
    # The precision this instance actually computes in, when the engine reports one (e.g. "f32", "bf16").
    precision: str | None = None
    # File suffixes this engine can load (the registry's ``suffixes`` are only those ``auto`` picks it for);
    # ``load_runtime`` refuses a file whose suffix other engines claim, before the engine parses it.
    accepts: ClassVar[tuple[str, ...]] = ()
    # The ``export --format`` that writes a file for this engine (named in the mismatch error).
    export_format: ClassVar[str] = ""

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this engine cannot run on this machine, or None if it can. Must be cheap: no model load."""
        return None

    @classmethod
    def import_engine(cls) -> None:
        """Import the engine's library: a one-time cost of the process, which ``benchmark`` keeps out of
        a model's ``load_ms`` (else the first model of a run would pay it)."""

    @abc.abstractmethod
    def __init__(self, path: str | Path, threads: int | None = None, profile_ops: bool = False) -> None: ...

    # Each engine's __init__ fills these from the loaded model.
    _inputs: list[TensorInfo]
    _outputs: list[TensorInfo]

    @property
    def inputs(self) -> list[TensorInfo]:
        return self._inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        return self._outputs

    @abc.abstractmethod
    def set_input(self, array: np.ndarray) -> None:
        """Give the first input (already in the model's dtype, layout and shape)."""

    @abc.abstractmethod
    def invoke(self) -> None:
        """Run the model once on the current input."""

    @abc.abstractmethod
    def output(self, index: int = 0) -> np.ndarray:
        """One output of the last ``invoke``, as an array the caller owns."""

    def run(self, array: np.ndarray) -> np.ndarray:
        """Run one input tensor; return the first output."""
        self.set_input(array)
        self.invoke()
        return self.output(0)

    def metadata(self) -> dict[str, Any] | None:
        """edge-deeplab metadata embedded in the model (normalization, labels...), if any."""
        return None

    def standard_metadata(self) -> Any:
        """The format's own standard metadata (TFLite Model Metadata: a ``StandardMetadata`` with
        mean/std and labels), or None. Our :meth:`metadata` takes precedence over it."""
        return None

    def profile_ops(self, runs: int) -> list[OpTime]:
        """Invoke ``runs`` times on the current input; each op's mean time (load with ``profile_ops=True``)."""
        raise NotImplementedError(self.op_profiling_unavailable)
