"""Latency of a candidate: measured, or predicted from the kernel lookup table.

Prediction has two stages (as nn-Meter and FBNet do, scaled down to what a laptop can measure):

1. Kernel costs: each kernel's latency from the table; a kernel not in it is interpolated from
   measured kernels of its family (least squares on MACs and memory traffic).
2. A least-squares correction per kernel group (1x1 convs, kxk convs, depthwise, element-wise,
   other) plus an intercept, fitted on the candidates measured whole. It starts from "sum of kernels"
   and learns what isolated kernels miss (fusion, caches, thread hand-offs, per-invoke overhead):
   first one common scale, then, as measurements accumulate, per-group weights.

Measuring a candidate also measures its most expensive kernels not yet in the table (within a time
budget, between the candidate's two timings), so the table grows where the search goes.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from edge_deeplab.configs import Config, check_range
from edge_deeplab.errors import ToolUnavailableError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.kernels import GROUPS, Kernel, kernels_of
from edge_deeplab.search.space import candidate_key
from edge_deeplab.search.table import LatencyTable

SCALE_RIDGE = 0.1  # the common scale's pull towards 1, relative to the per-group ridge
# A near-empty model: its invoke time is the engine's per-invoke overhead, paid once per kernel model.
OVERHEAD_KERNEL = Kernel("add", ((1, 1, 8), (1, 1, 8)), (1, 1, 8))


@dataclass(frozen=True)
class LatencySettings(Config):
    kernel_seconds: float = 15.0  # spent measuring new kernels per candidate measured whole
    ridge: float = 0.5  # pull of the group weights towards 1 (the plain sum of kernels)
    min_family_rows: int = 4  # measured kernels a family needs before it is interpolated by least squares
    # A candidate measured this much slower than predicted is timed again (Meter.candidate's
    # again_above), once the predictor has been fitted on ``recheck_after`` candidates.
    recheck_above: float = 0.25
    recheck_after: int = 5

    def validate(self) -> None:
        check_range("kernel_seconds", self.kernel_seconds, 0.0, 3600.0)
        check_range("ridge", self.ridge, 0.0, 1000.0)
        check_range("min_family_rows", self.min_family_rows, 2, 1000)
        check_range("recheck_above", self.recheck_above, 0.0, 1000.0)
        check_range("recheck_after", self.recheck_after, 0, 100_000)


def _nonnegative_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with x >= 0, by trying every subset of columns (a handful here)."""
    best, best_error = np.zeros(a.shape[1]), float(np.sum(b ** 2))
    for size in range(1, a.shape[1] + 1):
        for columns in combinations(range(a.shape[1]), size):
            x, *_ = np.linalg.lstsq(a[:, columns], b, rcond=None)
            if np.all(x >= 0):
                error = float(np.sum((a[:, columns] @ x - b) ** 2))
                if error < best_error:
                    best, best_error = np.zeros(a.shape[1]), error
                    best[list(columns)] = x
    return best


def _kernel_features(kernel: Kernel) -> np.ndarray:
    return np.array([kernel.macs, kernel.elements, 1.0])


class KernelCosts:
    """Kernel latency (ms, per-invoke overhead removed): measured if in the table, else interpolated."""

    def __init__(self, measured: dict[str, float], defs: dict[str, Kernel], overhead_ms: float = 0.0,
                 min_family_rows: int = 4) -> None:
        self.measured = {k: max(ms - overhead_ms, 0.0) for k, ms in measured.items()}
        by_family: dict[str, list[Kernel]] = defaultdict(list)
        for key in self.measured:
            by_family[defs[key].family].append(defs[key])
        self.by_op: dict[str, list[Kernel]] = defaultdict(list)
        for kernel in (defs[k] for k in self.measured):
            self.by_op[kernel.op].append(kernel)
        self.fits = {}
        for family, kernels in by_family.items():
            if len(kernels) >= min_family_rows:
                y = np.array([self.measured[k.key] for k in kernels])
                weight = 1.0 / np.maximum(y, 1e-3)  # relative errors: small kernels count as much as big ones
                a = np.stack([_kernel_features(k) for k in kernels]) * weight[:, None]
                self.fits[family] = _nonnegative_lstsq(a, y * weight)
        work = [(self.measured[k], _work(d)) for k, d in ((k, defs[k]) for k in self.measured) if _work(d)]
        self.ms_per_work = float(np.median([ms / w for ms, w in work])) if work else 0.0

    def __call__(self, kernel: Kernel) -> float:
        if kernel.key in self.measured:
            return self.measured[kernel.key]
        fit = self.fits.get(kernel.family)
        if fit is not None:
            return float(max(_kernel_features(kernel) @ fit, 0.0))
        similar = self.by_op.get(kernel.op)
        if similar:  # scale the measured kernel of this op closest in size
            nearest = min(similar, key=lambda k: (abs(np.log(_work(k) + 1) - np.log(_work(kernel) + 1)), k.key))
            return self.measured[nearest.key] * _work(kernel) / max(_work(nearest), 1)
        return self.ms_per_work * _work(kernel)


def _work(kernel: Kernel) -> int:
    return kernel.macs or kernel.elements


def group_features(kernels: list[Kernel], costs: Callable[[Kernel], float]) -> np.ndarray:
    """Summed kernel cost per group (ms): the predictor's inputs."""
    features = np.zeros(len(GROUPS))
    for kernel in kernels:
        features[GROUPS.index(kernel.group)] += costs(kernel)
    return features


class Predictor:
    """latency = features . weights + intercept, fitted on relative errors.

    weight_g = scale + offset_g: the common scale (how this machine's whole models compare with its
    isolated kernels: threads, load, caches) and the intercept are free; the ridge pulls only the
    per-group offsets to 0, so a handful of candidates suffices to calibrate, and many to specialize.
    """

    def __init__(self, ridge: float = 0.5) -> None:
        self.ridge = ridge
        self.weights, self.intercept = np.ones(len(GROUPS)), 0.0

    def fit(self, features: np.ndarray, latencies: np.ndarray) -> Predictor:
        self.weights, self.intercept = np.ones(len(GROUPS)), 0.0
        if len(latencies) == 0:
            return self
        features, y = np.asarray(features, float), np.asarray(latencies, float)
        active, intercept = np.ones(len(GROUPS), bool), True
        for _ in range(len(GROUPS) + 1):  # drop terms that would go negative, refit
            f = features[:, active]
            k = f.shape[1]
            rows = np.hstack([f.sum(1, keepdims=True), f, np.ones((len(y), 1)) * intercept]) / y[:, None]
            prior = np.zeros((k + 2, k + 2))
            prior[0, 0] = np.sqrt(SCALE_RIDGE * self.ridge)  # weak: the data sets the scale
            prior[1:-1, 1:-1] = np.sqrt(self.ridge) * np.eye(k)
            prior[-1, -1] = 1e-3 / np.median(y)
            target = np.concatenate([np.ones(len(y)), [prior[0, 0]], np.zeros(k + 1)])
            x, *_ = np.linalg.lstsq(np.vstack([rows, prior]), target, rcond=None)
            weights = x[0] + x[1:-1]
            if np.all(weights >= 0) and x[-1] * intercept >= 0:
                break
            if x[-1] * intercept < 0:
                intercept = False  # a negative intercept only trades off against the scale: pin it at 0
            active[np.flatnonzero(active)[weights < 0]] = False
        self.weights = np.zeros(len(GROUPS))
        self.weights[active], self.intercept = weights, float(x[-1]) * intercept
        return self

    def predict(self, features: np.ndarray) -> float:
        return float(np.asarray(features) @ self.weights + self.intercept)


class LatencyModel:
    """Prices candidates on one runtime from a :class:`LatencyTable`; measures them with a ``Meter``.

    Without a meter (e.g. ``--runtime edgetpu`` with a table measured on a Coral device) the table is
    used as is: predictions only.
    """

    def __init__(self, table: LatencyTable, meter=None, settings: LatencySettings | None = None,
                 classmap: bool | None = None) -> None:
        self.table, self.meter = table, meter
        self.settings = settings or LatencySettings()
        self.classmap = meter.classmap if classmap is None and meter is not None else bool(classmap)
        self.refit()

    # -- structure --------------------------------------------------------------------------------
    def kernels(self, config: ModelConfig, model=None) -> list[Kernel]:
        key = candidate_key(config)
        kernels = self.table.structure(key)
        if kernels is None:
            from edge_deeplab.models import build_model
            from edge_deeplab.search.measure import clear_session
            kernels = kernels_of(model if model is not None else build_model(config), self.classmap)
            if model is None:
                clear_session()
            self.table.add_structure(key, kernels)
        return kernels

    # -- prediction -------------------------------------------------------------------------------
    def refit(self) -> None:
        t = self.table
        self.costs = KernelCosts(t.kernels, t.kernel_defs, t.overhead_ms or 0.0, self.settings.min_family_rows)
        measured = [(key, row["latency_ms"]) for key, row in t.candidates.items() if key in t.structures]
        features = [group_features(t.structure(key), self.costs) for key, _ in measured]
        self.predictor = Predictor(self.settings.ridge).fit(
            np.array(features).reshape(-1, len(GROUPS)), np.array([ms for _, ms in measured]))
        self.fitted_on = len(measured)

    def predict(self, config: ModelConfig) -> float:
        return self.predictor.predict(group_features(self.kernels(config), self.costs))

    # -- measurement ------------------------------------------------------------------------------
    def measured(self, config: ModelConfig) -> float | None:
        row = self.table.candidates.get(candidate_key(config))
        return None if row is None else float(row["latency_ms"])

    def measure(self, config: ModelConfig) -> float:
        """The candidate's measured latency (cached in the table), refitting the predictor on it."""
        cached = self.measured(config)
        if cached is not None:
            return cached
        if self.meter is None:
            raise ToolUnavailableError(
                f"no {self.table.header['runtime']} device to measure on here; the latency table "
                f"{self.table.path} has no measurement for this candidate")
        from edge_deeplab.models import build_model
        from edge_deeplab.search.measure import clear_session
        model = build_model(config)
        kernels = self.kernels(config, model)

        def measure_kernels():  # between the candidate's two timings (see Meter.candidate)
            self.measure_kernels(kernels, self.settings.kernel_seconds)
            self.table.save()

        latency = self.meter.candidate(config, model, meanwhile=measure_kernels,
                                       again_above=self._recheck_threshold(config))
        del model
        clear_session()
        self.table.add_candidate(candidate_key(config), config, latency)
        self.table.save()
        self.refit()
        return latency

    def _recheck_threshold(self, config: ModelConfig) -> float | None:
        if self.fitted_on < self.settings.recheck_after:
            return None
        return self.predict(config) * (1 + self.settings.recheck_above)

    def seed(self, configs: list[ModelConfig]) -> None:
        """Measure ``configs`` whole unless the table already holds as many measured candidates, so the
        very first predictions are calibrated (an empty table predicts 0 ms for everything)."""
        if self.meter is None or len(self.table.candidates) >= len(configs):
            return
        for config in configs:
            self.measure(config)

    def measure_kernels(self, kernels: list[Kernel], seconds: float | None = None) -> int:
        """Measure kernels missing from the table, most expensive first, for at most ``seconds``."""
        if self.meter is None:
            return 0
        if self.table.overhead_ms is None:
            self.table.overhead_ms = self.meter.kernel(OVERHEAD_KERNEL)
        missing = {k.key: k for k in kernels if k.key not in self.table.kernels}
        ordered = sorted(missing.values(), key=lambda k: (-self.costs(k), -_work(k)))
        started, count = time.monotonic(), 0
        for kernel in ordered:
            if seconds is not None and time.monotonic() - started > seconds:
                break
            self.table.kernels[kernel.key] = round(self.meter.kernel(kernel), 5)
            self.table.kernel_defs[kernel.key] = kernel
            count += 1
        from edge_deeplab.search.measure import clear_session
        clear_session()
        return count
