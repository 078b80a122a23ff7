"""Measured latency: convert a model for the runtime (float or int8), then time it through the runtime
wrapper with the profiler's timing loop. Whole candidates go through the export converters; one-kernel
models (see :func:`kernel_model`) through the same tools called directly, since the converters take a
3-channel image model and a kernel's input can have any channel count.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_deeplab._optional import require, tensorflow
from edge_deeplab.configs import Config, check_choice, check_range
from edge_deeplab.errors import BadModelError, ConfigError, ToolUnavailableError, UnknownChoiceError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.kernels import Kernel

PRECISIONS = ("int8", "float")
# (runtime, precision) -> the export format whose artifact that runtime runs.
EXPORT_FORMATS = {("litert", "int8"): "tflite-int8", ("litert", "float"): "tflite",
                  ("openvino", "int8"): "openvino-int8", ("openvino", "float"): "openvino",
                  ("onnxruntime", "float"): "onnx", ("edgetpu", "int8"): "edgetpu"}
CALIBRATION_IMAGES = 4  # timing artifacts only: int8 kernel speed does not depend on the ranges


def export_format(runtime: str, precision: str) -> str:
    """The format to convert to for timing on ``runtime`` at ``precision``."""
    check_choice("precision", precision, PRECISIONS)
    fmt = EXPORT_FORMATS.get((runtime, precision))
    if fmt is None:
        supported = [p for r, p in EXPORT_FORMATS if r == runtime]
        if not supported:
            raise UnknownChoiceError("search runtime", runtime, sorted({r for r, _ in EXPORT_FORMATS}))
        raise ConfigError(f"{runtime} runs no {precision} export of ours; use --precision {supported[0]}")
    return fmt


@dataclass(frozen=True)
class Timing(Config):
    """How each artifact is timed: ``rounds`` rounds of ``runs`` invokes after ``warmup``; the latency is
    the lowest round median. Other processes on a shared machine only ever add time, so the quietest
    round is the figure that repeats (timeit's reasoning); one median of one round varied by >10%.
    Bursts of load last seconds, so a whole candidate is timed like this twice, ``gap_s`` apart."""

    threads: int | None = None
    warmup: int = 5
    runs: int = 30
    kernel_runs: int = 50  # one kernel is fast and noisier: more samples
    rounds: int = 5
    gap_s: float = 5.0

    def validate(self) -> None:
        if self.threads is not None:
            check_range("threads", self.threads, 1, 256)
        check_range("warmup", self.warmup, 0, 10_000)
        check_range("runs", self.runs, 1, 100_000)
        check_range("kernel_runs", self.kernel_runs, 1, 100_000)
        check_range("rounds", self.rounds, 1, 1000)
        check_range("gap_s", self.gap_s, 0.0, 3600.0)


class Meter:
    """Converts and times models for one runtime and precision, in a private scratch folder."""

    def __init__(self, runtime: str, precision: str, timing: Timing | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runtime, self.precision = runtime, precision
        self.clock, self.sleep = clock, sleep  # injectable, so the gap logic is tested without waiting
        self.format = export_format(runtime, precision)
        self.timing = timing or Timing()
        from edge_deeplab.converters import FORMATS
        from edge_deeplab.converters.base import ExportOptions
        self.converter = FORMATS.load(self.format)(ExportOptions(int8_output="classmap"))
        self.converter.check_requirements()

    @property
    def classmap(self) -> bool:
        """Whether artifacts end in a fused argmax (int8 TFLite class maps), which the kernels must count."""
        return getattr(self.converter, "classmap", lambda: False)()

    def candidate(self, config: ModelConfig, model: Any = None, meanwhile: Callable[[], None] | None = None,
                  again_above: float | None = None) -> float:
        """Latency (ms) of the full candidate, converted as ``export`` would (random weights).

        The artifact is timed twice, at least ``timing.gap_s`` apart (``meanwhile`` runs in the gap), and
        the lower figure kept: load on a shared machine comes in bursts of seconds and only adds time.
        A result above ``again_above`` (the caller's expectation) gets a second such pair, the lower kept:
        a burst longer than the gap would otherwise be cached as the candidate's latency.
        """
        from edge_deeplab.calibration.synthetic import synthetic_set
        from edge_deeplab.converters.native_log import native_stderr_held
        from edge_deeplab.models import build_model
        from edge_deeplab.sources import Source

        model = model if model is not None else build_model(config)
        source = Source("candidate", "search", config, model, weights=None)
        calibration = synthetic_set(config.input_size, CALIBRATION_IMAGES)
        with tempfile.TemporaryDirectory(prefix="edge_deeplab_search_") as tmp:
            # stdout too: NNCF (openvino-int8) draws progress bars there, one per candidate.
            with native_stderr_held(), contextlib.redirect_stdout(io.StringIO()):
                artifact = self.converter.convert(source, calibration, Path(tmp) / self.converter.artifact_name("c"))
            if artifact.skipped:
                raise ToolUnavailableError(f"cannot time candidates on {self.runtime}: {artifact.skipped}")
            latency = self.time_artifact(artifact.path, meanwhile)
            if again_above is not None and latency > again_above:
                latency = min(latency, self.time_artifact(artifact.path))
            return latency

    def time_artifact(self, path: Path, meanwhile: Callable[[], None] | None = None) -> float:
        """Latency (ms) of a model file on this runtime, timed as candidates are (see :meth:`candidate`)."""
        first, started = self._time(path, self.timing.runs), self.clock()
        if meanwhile is not None:
            meanwhile()
        self.sleep(max(0.0, self.timing.gap_s - (self.clock() - started)))
        return min(first, self._time(path, self.timing.runs))

    def kernel(self, kernel: Kernel) -> float:
        """p50 latency (ms) of a model holding only ``kernel``."""
        from edge_deeplab.converters.native_log import native_stderr_held
        from edge_deeplab.search.micro import convert_kernel_model, kernel_model

        with tempfile.TemporaryDirectory(prefix="edge_deeplab_kernel_") as tmp:
            with native_stderr_held():
                path = convert_kernel_model(kernel_model(kernel), self.format, Path(tmp))
            return self._time(path, self.timing.kernel_runs)

    def _time(self, path: Path, runs: int) -> float:
        from edge_deeplab.runtimes import load_runtime
        from edge_deeplab.runtimes.profiler import time_invokes

        try:
            runtime = load_runtime(path, self.runtime, self.timing.threads)
        except BadModelError:
            # XNNPACK once failed to prepare a kernel model that loaded fine on the next try (a search
            # of hundreds of kernels died on it): one retry; a model that really cannot load fails again.
            runtime = load_runtime(path, self.runtime, self.timing.threads)
        runtime.set_input(random_input(runtime.inputs[0].shape, runtime.inputs[0].dtype))
        medians = [np.median(time_invokes(runtime, self.timing.warmup if r == 0 else 0, runs))
                   for r in range(self.timing.rounds)]
        return float(min(medians))


def random_input(shape: tuple[int, ...], dtype: np.dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = tuple(max(d, 1) for d in shape)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.random(shape, np.float32).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


def clear_session() -> None:
    """Drop Keras' global graph state: hundreds of candidates would otherwise pile up in memory."""
    tensorflow()
    require("tf_keras", "train", "building models").backend.clear_session()
