"""Latency and memory of one model on one runtime: load time, warm-up, N timed invokes, percentiles,
peak RSS, and per-op times where the engine exposes them.

Timed region = ``Runtime.invoke()`` on an input set once beforehand, like a bare engine loop, so the
figures are the engine's own (see benchmarks/runtime_overhead.py).

Load time and peak memory depend on what the process did before (the engine library's import, the
allocator's pages kept from an earlier model), so :func:`benchmark_isolated` measures each model in a
fresh Python process, one after another, as LiteRT's ``benchmark_model`` is run once per model; that is
what ``edge-deeplab benchmark`` does, and its figures do not depend on the order of the models.
Latency alone compares fairly on a busy machine when the models are timed together in alternating
bursts (:func:`latency_interleaved`, ``benchmark --interleave``).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge_deeplab.errors import BadModelError, EdgeDeeplabError
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
    """Peak resident memory of this process since :meth:`reset` (Linux: ``/proc/self/clear_refs`` resets
    the high-water mark to the current RSS; elsewhere the peak is the process-wide one). The current RSS
    includes whatever earlier work left resident, so a peak is only comparable between models measured
    each in a fresh process (:func:`benchmark_isolated`)."""

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


# What may go wrong while loading or running a model: ours, the engines' own (LiteRT's invoke raises
# RuntimeError/ValueError) and the file system's. Anything else is a bug and keeps its traceback.
ENGINE_ERRORS = (EdgeDeeplabError, RuntimeError, ValueError, MemoryError, OSError)


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


def time_interleaved(runtimes: Sequence[Runtime], runs: int, burst: int = 10,
                     settle: int = 2) -> list[list[float] | Exception]:
    """Milliseconds of ``runs`` invokes of each runtime (input set, warmed up), timed in alternating bursts
    of ``burst``, each after ``settle`` untimed invokes (another engine ran in between): load from other
    processes then hits every runtime alike, so their ratios hold on a busy machine. A runtime whose
    invoke fails (:data:`ENGINE_ERRORS`) gives its exception in its place; the others go on."""
    samples: list[list[float]] = [[] for _ in runtimes]
    failures: dict[int, Exception] = {}
    while any(i not in failures and len(timed) < runs for i, timed in enumerate(samples)):
        for i, runtime in enumerate(runtimes):
            if i in failures or len(samples[i]) >= runs:
                continue
            try:
                samples[i] += time_invokes(runtime, settle, min(burst, runs - len(samples[i])))
            except ENGINE_ERRORS as exc:
                failures[i] = exc
    return [failures.get(i, timed) for i, timed in enumerate(samples)]


def interleaved_latency(runtimes: dict[str, Runtime], rounds: int, runs: int, warmup: int) -> dict[str, dict]:
    """p50/p90 ms of several loaded models, timed in ``rounds`` alternating bursts of ``runs``
    (:func:`time_interleaved`; a model's failure is raised): compare them by ratios within one call."""
    for runtime in runtimes.values():
        runtime.set_input(sample_input(runtime))
        time_invokes(runtime, warmup, 0)
    samples = time_interleaved(list(runtimes.values()), rounds * runs, burst=runs)
    for failure in (s for s in samples if isinstance(s, Exception)):
        raise failure
    return {name: {"p50": float(np.median(s)), "p90": float(np.percentile(s, 90)), "runs": len(s)}
            for name, s in zip(runtimes, samples)}


def latency_interleaved(targets: Sequence[tuple[str | Path, str, int | None, str | None]], warmup: int,
                        runs: int) -> list[LatencyStats | Exception]:
    """Latency of several ``(model, runtime, threads, precision)``, loaded together in this process and
    timed by :func:`time_interleaved` after ``warmup`` invokes each; a target that fails to load or run
    gives its exception in its place, and the others are still timed."""
    engines: list[Runtime | Exception] = []
    for model, runtime, threads, precision in targets:
        try:
            engine = load_runtime(model, runtime, threads, verify=False, precision=precision)
            engine.set_input(sample_input(engine))
            time_invokes(engine, warmup, 0)
        except ENGINE_ERRORS as exc:
            engine = exc
        engines.append(engine)
    loaded = [engine for engine in engines if not isinstance(engine, Exception)]
    timed = iter(time_interleaved(loaded, runs))
    results: list[LatencyStats | Exception] = []
    for engine in engines:
        samples = engine if isinstance(engine, Exception) else next(timed)
        results.append(samples if isinstance(samples, Exception) else LatencyStats.from_samples(samples))
    return results


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
    """Load ``model`` on ``runtime`` in this process and time it; with ``profile_ops`` a second, profiling
    instance reports per-op times (so the counters never slow the timed runs). ``precision``: see
    ``load_runtime``. ``load_ms`` leaves out the engine library's import; ``peak_rss_mb`` includes what
    the process held before, so compare models with :func:`benchmark_isolated`."""
    from edge_deeplab.runtimes import runtime_for
    path = resolve_model(model)
    check_artifact(path)  # before the clock: hashing is not part of the engine's load
    if path.exists():  # else load_runtime says it is missing
        engine_class = runtime_for(path, runtime).load()
        if engine_class.unavailable_reason() is None:  # else load_runtime says why
            engine_class.import_engine()  # once per process: not this model's load time
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


# ---------------------------------------------------------------- one model per process
def benchmark_isolated(model: str | Path, runtime: str = "auto", threads: int | None = None, warmup: int = 10,
                       runs: int = 100, profile_ops: bool = False, precision: str | None = None,
                       labels: list[str] | None = None) -> BenchmarkResult:
    """:func:`benchmark` in a fresh Python process, so ``load_ms`` and ``peak_rss_mb`` are this model's
    alone, whichever models ran before. The child runs while this process waits (no two models compete
    for the CPU). Its errors are raised here with their type and message."""
    request = {"sys_path": sys.path, "model": str(model), "runtime": runtime, "threads": threads,
               "warmup": warmup, "runs": runs, "profile_ops": profile_ops, "precision": precision,
               "labels": labels}
    code = ("import json, sys; request = json.loads(sys.stdin.readline()); sys.path[:] = request['sys_path']; "
            "from edge_deeplab.runtimes.profiler import _worker; _worker(request)")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(request) + "\n",
                          capture_output=True, text=True)
    if done.stderr:  # the engines' own warnings, as an in-process run would have shown them
        sys.stderr.write(done.stderr)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise RuntimeError(f"the benchmark process for {model} ended without a result ({last[0]})")
    reply = json.loads(lines[-1])
    if "error" in reply:
        raise _rebuilt(reply["error"])
    row = reply["result"]
    row["latency_ms"] = LatencyStats(**row["latency_ms"])
    return BenchmarkResult(**row)


def _worker(request: dict) -> None:
    """The child of :func:`benchmark_isolated`: one JSON line on stdout, the result or the error."""
    reply_to = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything an engine prints goes to stderr, never into the reply
    arguments = {k: request[k] for k in ("model", "runtime", "threads", "warmup", "runs", "profile_ops",
                                         "precision", "labels")}
    try:
        reply = {"result": asdict(benchmark(**arguments))}
    except Exception as exc:  # every error goes back to the parent, which decides what it means
        if not isinstance(exc, ENGINE_ERRORS):
            traceback.print_exc()  # a bug: its traceback belongs on the user's screen
        reply = {"error": {"type": type(exc).__name__, "message": str(exc)}}
    reply_to.write(json.dumps(reply) + "\n")
    reply_to.flush()


def _rebuilt(error: dict) -> Exception:
    """The child's exception, as the same class where it is ours or built in (the message unchanged)."""
    import builtins

    from edge_deeplab import errors
    cls = getattr(errors, error["type"], None) or getattr(builtins, error["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return RuntimeError(f"{error['type']}: {error['message']}")
    exc = cls.__new__(cls)  # UnknownChoiceError's own __init__ would rebuild the message from its parts
    Exception.__init__(exc, error["message"])
    return exc
