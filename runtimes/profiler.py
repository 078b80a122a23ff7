"""Latency and memory of one model on one runtime: load time, warm-up, N timed invokes, percentiles,
peak RSS, and per-op times where the engine exposes them.

Timed region = ``Runtime.invoke()`` on an input set once beforehand, like a bare engine loop, so the
figures are the engine's own (see benchmarks/runtime_overhead.py).
"""
from __future__ import annotations

import resource
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes import load_runtime, resolve_model
from edge_deeplab.runtimes.integrity import check_artifact
from edge_deeplab.runtimes.base import OpTime, Runtime


@dataclass(frozen=True)
class LatencyStats:
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def from_samples(cls, samples_ms: list[float] | np.ndarray) -> LatencyStats:
        x = np.asarray(samples_ms, np.float64)
        p50, p90, p99 = np.percentile(x, [50, 90, 99])
        return cls(*(round(float(v), 4) for v in (x.mean(), x.std(), x.min(), p50, p90, p99, x.max())))


class PeakMemory:
    """Peak resident memory of this process. On Linux the high-water mark is reset per measurement
    (``/proc/self/clear_refs``), so several models benchmarked in one process each get their own peak."""

    def reset(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass  # not Linux or not permitted: the peak is then the process-wide one

    def peak_mb(self) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
        except OSError:
            pass
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return round(usage / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0), 1)


def sample_input(runtime: Runtime, seed: int = 0) -> np.ndarray:
    """A realistic input: a random RGB image through the model's own pre-processing."""
    from edge_deeplab.processing import InputSpec

    spec = InputSpec.from_tensor(runtime.inputs[0])
    image = np.random.default_rng(seed).integers(0, 256, (spec.height, spec.width, 3), dtype=np.uint8)
    return spec.prepare(image)


def time_invokes(runtime: Runtime, warmup: int, runs: int) -> list[float]:
    """Milliseconds of each of ``runs`` invokes after ``warmup`` untimed ones (input already set)."""
    for _ in range(warmup):
        runtime.invoke()
    invoke, clock = runtime.invoke, time.perf_counter_ns
    samples = [0] * runs
    for i in range(runs):
        start = clock()
        invoke()
        samples[i] = clock() - start
    return [s / 1e6 for s in samples]


def interleaved_latency(runtimes: dict[str, Runtime], rounds: int, runs: int, warmup: int) -> dict[str, dict]:
    """p50/p90 ms of several loaded models, timed in alternating rounds so that load from other
    processes hits them alike: compare them by ratios within one call."""
    samples: dict[str, list[float]] = {name: [] for name in runtimes}
    for runtime in runtimes.values():
        runtime.set_input(sample_input(runtime))
        time_invokes(runtime, warmup, 0)
    for _ in range(rounds):
        for name, runtime in runtimes.items():
            samples[name] += time_invokes(runtime, 2, runs)
    return {name: {"p50": float(np.median(s)), "p90": float(np.percentile(s, 90)), "runs": len(s)}
            for name, s in samples.items()}


def summarize_ops(ops: list[OpTime], top: int = 10) -> dict:
    by_type: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for op in ops:
        by_type[op.type][0] += op.ms
        by_type[op.type][1] += 1
    total = sum(op.ms for op in ops) or 1.0
    return {
        "available": True,
        "total_ms": round(total, 4),
        "by_type": [{"type": kind, "ms": round(ms, 4), "percent": round(100 * ms / total, 1), "count": count}
                    for kind, (ms, count) in sorted(by_type.items(), key=lambda kv: -kv[1][0])],
        "top": [{"name": op.name, "type": op.type, "ms": round(op.ms, 4)}
                for op in sorted(ops, key=lambda op: -op.ms)[:top]],
    }


@dataclass
class BenchmarkResult:
    model: str
    runtime: str
    threads: int | None
    warmup: int
    runs: int
    load_ms: float
    latency_ms: LatencyStats
    peak_rss_mb: float
    ops: dict | None = field(default=None)
    precision: str | None = None  # what the engine computed in, where it reports it (OpenVINO)
    labels: list[str] | None = None  # class names: --labels, else the model's metadata

    def to_dict(self) -> dict:
        row = asdict(self)
        for key in ("ops", "labels"):
            if row[key] is None:
                row.pop(key)
        return row


def failed_row(model: str | Path, runtime: str, threads: int | None, warmup: int, runs: int, error: str,
               precision: str | None = None) -> dict:
    """A benchmark row for a model that could not be loaded or run: the same keys, no figures."""
    return {"model": str(model), "runtime": runtime, "threads": threads, "warmup": warmup, "runs": runs,
            "load_ms": None, "latency_ms": None, "peak_rss_mb": None, "precision": precision, "error": error}


def class_names(engine: Runtime, labels: list[str] | None = None) -> list[str] | None:
    """The class names a segmenter would use; for a model that is no segmenter, ``labels`` or our metadata's."""
    from edge_deeplab.errors import ConfigError
    from edge_deeplab.processing import Segmenter
    try:
        return Segmenter(engine, labels=labels).labels
    except ConfigError:
        raise
    except BadModelError:  # e.g. a classifier: still worth timing
        return list(labels) if labels else (engine.metadata() or {}).get("labels")


def benchmark(model: str | Path, runtime: str = "auto", threads: int | None = None, warmup: int = 10,
              runs: int = 100, profile_ops: bool = False, precision: str | None = None,
              labels: list[str] | None = None) -> BenchmarkResult:
    """Load ``model`` on ``runtime`` and time it; with ``profile_ops`` a second, profiling instance
    reports per-op times (so the counters never slow the timed runs). ``precision``: see ``load_runtime``."""
    check_artifact(resolve_model(model))  # before the clock: hashing is not part of the engine's load
    memory = PeakMemory()
    memory.reset()
    start = time.perf_counter()
    engine = load_runtime(model, runtime, threads, verify=False, precision=precision)
    load_ms = (time.perf_counter() - start) * 1000.0
    engine.set_input(sample_input(engine))
    samples = time_invokes(engine, warmup, runs)
    peak = memory.peak_mb()
    ops = None
    if profile_ops:
        if engine.op_profiling_unavailable is not None:
            ops = {"available": False, "reason": engine.op_profiling_unavailable}
        else:
            profiler = load_runtime(model, engine.name, threads, profile_ops=True, verify=False,
                                    precision=precision)
            profiler.set_input(sample_input(profiler))
            time_invokes(profiler, warmup, 0)
            ops = summarize_ops(profiler.profile_ops(runs))
    return BenchmarkResult(str(model), engine.name, threads, warmup, runs, round(load_ms, 3),
                           LatencyStats.from_samples(samples), peak, ops, engine.precision,
                           class_names(engine, labels))
