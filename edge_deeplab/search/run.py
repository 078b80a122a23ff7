"""``edge-deeplab search`` end to end: data, latency model, evolution, report, export of the best."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_deeplab.errors import EdgeDeeplabError, RuntimeUnavailableError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.latency import LatencyModel, LatencySettings
from edge_deeplab.search.measure import Meter, Timing, export_format
from edge_deeplab.search.proxy import ProxySettings, prepare_data, proxy_score
from edge_deeplab.search.report import best_trial, export_best, search_report, write_report
from edge_deeplab.search.search import Search, SearchSettings, SearchState
from edge_deeplab.search.space import SearchSpace
from edge_deeplab.search.table import LatencyTable, default_path

CACHE_SCALE = 1.25  # the trainer caches images at 1.25x input size for its zoom augmentation
SEED_CANDIDATES = 3  # measured whole before the first prediction (skipped once the table holds as many)
SEED_STREAM = 1_000_003  # random stream of the seeds, apart from the trials' streams


def latency_model(settings: SearchSettings, table_path: str | Path | None = None,
                  timing: Timing | None = None, latency: LatencySettings | None = None) -> LatencyModel:
    """A measuring latency model, or with a runtime this machine cannot run, one that only reads the
    table the user measured on the device."""
    from edge_deeplab.runtimes import RUNTIMES

    fmt = export_format(settings.runtime, settings.precision)  # also rejects unknown runtimes
    unavailable = RUNTIMES.load(settings.runtime).unavailable_reason()
    if unavailable is not None and table_path is None:
        raise RuntimeUnavailableError(
            f"search --runtime {settings.runtime} times candidates on that engine, which cannot run here "
            f"({unavailable}); run the search where it can, or pass --latency-table FILE measured there")
    meter = None
    if unavailable is None:
        meter = Meter(settings.runtime, settings.precision, timing or Timing(threads=settings.threads))
    from edge_deeplab.converters import FORMATS
    converter = FORMATS.load(fmt)()
    path = table_path or default_path(settings.runtime, settings.precision, settings.threads,
                                      converter.tool_versions())
    table = LatencyTable.open(path, settings.runtime, settings.precision, settings.threads,
                              must_exist=meter is None)
    classmap = getattr(converter, "classmap", lambda: False)()
    return LatencyModel(table, meter, latency, classmap=classmap)


def check_extras(settings: SearchSettings) -> None:
    """One MissingExtraError naming every extra a search with ``settings`` imports, before any work."""
    from edge_deeplab._optional import TRAIN, check_installed
    from edge_deeplab.converters import FORMATS

    fmt = export_format(settings.runtime, settings.precision)  # also rejects unknown runtimes
    needs = [("matplotlib", "plot"), *TRAIN, *FORMATS.load(fmt).requires]
    if settings.runtime == "onnxruntime":  # the runtime candidates are timed on (the format's tools convert)
        needs.append(("onnxruntime", "onnx"))
    check_installed(needs, "search")


def zoo_in_space(space: SearchSpace) -> dict[str, ModelConfig]:
    """The zoo's architectures that lie in ``space`` by zoo name, in the space's form (its classes and
    labels): the search's warm start."""
    from edge_deeplab.zoo import ZOO
    configs = {name: space.canonical(ZOO.get(name).target) for name in ZOO.names()}
    return {name: config for name, config in configs.items() if config is not None}


class _TableOnly:
    """Latency for a search without a device: the table's measurement, else the prediction."""

    def __init__(self, model: LatencyModel) -> None:
        self.model, self.table = model, model.table

    def predict(self, config):
        return self.model.predict(config)

    def measure(self, config):
        measured = self.model.measured(config)
        return round(self.model.predict(config), 4) if measured is None else measured


def run_search(data_dir: str | Path, out: str | Path, settings: SearchSettings, space: SearchSpace | None = None,
               proxy: ProxySettings | None = None, latency_table: str | Path | None = None,
               resume: bool = False, progress: bool = True, export: bool = True,
               log: Callable[[str], None] = lambda _: None, verbose: bool = False) -> dict[str, Any]:
    """Search, write ``<out>/search.json`` + ``pareto.png`` after every trial, export the best; the report.

    ``progress``: ``log`` one line per trial; ``verbose``: keep TensorFlow's own log output."""
    data_dir, out = Path(data_dir), Path(out)
    space, proxy = space or SearchSpace(), proxy or ProxySettings()
    SearchState.check_out(out, resume)
    check_extras(settings)  # all of them now, in one line: not [plot] at the first pareto.png, then [train]
    latency = latency_model(settings, latency_table)
    from edge_deeplab._optional import quiet_tensorflow
    quiet_tensorflow("searching architectures", verbose)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    largest = max(proxy.input_size(size) for size in space.input_sizes)
    try:
        data = prepare_data(data_dir, out / "proxy_data", proxy,
                            tuple(int(round(side * CACHE_SCALE)) for side in largest))
    except BaseException:
        if created:  # bad data: leave no empty run folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    space = space.replace(num_classes=data.num_classes)  # the classes come from the data
    state = SearchState.start(out, settings, space, resume)
    rng = np.random.default_rng([settings.seed, SEED_STREAM])
    latency.seed([space.sample(rng) for _ in range(SEED_CANDIDATES)])
    measured = latency.meter is not None
    source = "measured" if measured else f"predicted from {latency.table.path} (no device here)"
    log(f"search: {settings.trials} trials, budget {settings.budget_ms} ms on {settings.runtime} "
        f"{settings.precision}; latency table {latency.table.path}")

    def score(config, folder):
        result = proxy_score(config, data, proxy, folder)
        return result.score, result.weights

    warm_start = list(zoo_in_space(space).values()) if settings.warm_start else []
    try:
        Search(state, out, latency if measured else _TableOnly(latency), score, progress, warm_start, log=log).run(
            on_trial=lambda s: write_report(out, search_report(s, latency_source=source)))
    except EdgeDeeplabError:
        # A user error before any trial finished (no candidate under the budget...): nothing to resume, so
        # no run folder either. An interrupt keeps it: --resume picks up the trial it stopped.
        if created and not any(t.done for t in state.trials):
            shutil.rmtree(out, ignore_errors=True)
        raise
    best = best_trial(state)
    exported = None
    if best is not None and export:
        log(f"exporting the best candidate ({export_format(settings.runtime, settings.precision)})")
        exported = export_best(best, export_format(settings.runtime, settings.precision), data_dir, out,
                               proxy.init_weights)
    if exported is not None and "edgetpu_report" in exported:  # as `export --format edgetpu` prints it
        log(f"Edge TPU report: {exported['edgetpu_report']['summary']}")
    report = search_report(state, exported, source)
    write_report(out, report)
    return report
