"""Search outputs: ``search.json`` (the CLI contract), ``pareto.png``, and the best candidate exported."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_deeplab.atomic import atomic_write, atomic_write_text
from edge_deeplab.search.search import SearchState, Trial, pareto_front
from edge_deeplab.search.space import describe

if TYPE_CHECKING:
    from edge_deeplab.models.config import ModelConfig
    from edge_deeplab.train.config import TrainingSpec


def best_trial(state: SearchState) -> Trial | None:
    """The highest proxy score among trials measured within the budget."""
    return max(state.feasible(), key=lambda t: (t.score, -t.latency_ms), default=None)


def _entry(trial: Trial) -> dict[str, Any]:
    return {"config": trial.config.to_dict(), "latency_ms": trial.latency_ms,
            "latency_ms_predicted": trial.latency_ms_predicted, "score": trial.score}


def search_report(state: SearchState, export: dict[str, Any] | None = None,
                  latency_source: str = "measured") -> dict[str, Any]:
    settings = state.settings
    done = [t for t in state.trials if t.done]
    best = best_trial(state)
    report: dict[str, Any] = {
        "budget_ms": settings.budget_ms, "runtime": settings.runtime, "precision": settings.precision,
        "threads": settings.threads, "latency_source": latency_source, "score": "proxy val mIoU",
        "candidates": [_entry(t) for t in done], "pareto": [_entry(t) for t in pareto_front(done)],
        "best": None}
    if best is not None:
        report["best"] = {"config": best.config.to_dict(), "latency_ms": best.latency_ms, "score": best.score,
                          "artifact": (export or {}).get("path")}
        if export is not None:
            report["best"]["export"] = export
    return report


def write_report(out: Path, report: dict[str, Any]) -> None:
    atomic_write_text(out / "search.json", json.dumps(report, indent=2))
    plot_pareto(out / "pareto.png", report)


def plot_pareto(path: Path, report: dict[str, Any]) -> None:
    """Proxy mIoU vs measured latency: every candidate, the Pareto front, the budget, the best."""
    from edge_deeplab._optional import require
    matplotlib = require("matplotlib", "plot", "the Pareto plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = report["budget_ms"]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    points = report["candidates"]
    for inside, colour, label in ((True, "tab:blue", "within budget"), (False, "tab:gray", "over budget")):
        chosen = [p for p in points if (p["latency_ms"] <= budget) == inside]
        axes.scatter([p["latency_ms"] for p in chosen], [p["score"] for p in chosen], s=22, c=colour,
                     alpha=0.8, label=f"{label} ({len(chosen)})")
    front = report["pareto"]
    axes.step([p["latency_ms"] for p in front], [p["score"] for p in front], where="post", c="tab:orange",
              lw=1.5, label="Pareto front")
    axes.axvline(budget, c="tab:red", ls="--", lw=1, label=f"budget {budget:g} ms")
    best = report["best"]
    if best is not None:
        axes.scatter([best["latency_ms"]], [best["score"]], s=120, marker="*", c="tab:red", zorder=5,
                     label="best: " + describe(_config(best["config"])))
    axes.set_xlabel(f"latency p50 (ms), {report['runtime']} {report['precision']}"
                    + (f", threads={report['threads']}" if report["threads"] else ""))
    axes.set_ylabel("proxy mIoU")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    with atomic_write(path, "wb", suffix=".png") as file:
        figure.savefig(file, format="png")
    plt.close(figure)


def _config(data: dict[str, Any]):
    from edge_deeplab.models.config import ModelConfig
    return ModelConfig.from_dict(data)


def training_config(config: "ModelConfig", init_weights: str = "") -> "TrainingSpec":
    """The full training of a searched architecture: the trainer's defaults, its class names spelled
    out, and the ImageNet init the proxy gave a MobileNetV2 candidate (``init_weights``, if any)."""
    from edge_deeplab.train.config import TrainConfig, TrainingSpec

    pretrained = bool(init_weights) and config.backbone == "mobilenet_v2"
    train = TrainConfig(init="imagenet" if pretrained else "none",
                        init_weights=str(Path(init_weights).absolute()) if pretrained else "")
    return TrainingSpec(config.replace(labels=config.class_names), train)


def export_best(trial: Trial, fmt: str, data_dir: Path, out: Path, init_weights: str = "") -> dict[str, Any]:
    """Export the best candidate, with its proxy-trained weights, to ``out`` in format ``fmt``.

    Returns ``{"format", "status", "path", "reason"?}``. Also writes ``<out>/best.yaml``, a complete
    training config (model with labels, train block) that ``train --config`` takes as it is.
    """
    from edge_deeplab.calibration import load_calibration
    from edge_deeplab.converters.base import ExportOptions
    from edge_deeplab.converters.pipeline import export, make_converters
    from edge_deeplab.models import build_model
    from edge_deeplab.sources import Source

    training_config(trial.config, init_weights).save(out / "best.yaml")
    options = ExportOptions()
    converters = make_converters([fmt], options)
    model = build_model(trial.config)  # full resolution; the proxy's weights fit any input size
    model.load_weights(trial.weights)
    source = Source(f"search_best_{trial.key}", "search", trial.config, model, Path(trial.weights))
    images = next((d for d in (data_dir / "val", data_dir / "train") if d.is_dir()), data_dir)
    calibration = load_calibration(images, trial.config.input_size, options.calibration_size,
                                   num_classes=trial.config.num_classes)
    result = export(source, converters, out / "best", calibration)[0]
    row = result.to_dict()
    exported = {k: row[k] for k in ("format", "status", "path", "reason", "parity") if row.get(k) is not None}
    if result.manifest is not None:  # the Edge TPU's op report, as `export --format edgetpu` writes it
        from edge_deeplab.converters.edgetpu_report import headline
        details = json.loads(result.manifest.read_text()).get("details", {})
        if "edgetpu_report" in details:
            exported["edgetpu_report"] = headline(details["edgetpu_report"])
    return exported
