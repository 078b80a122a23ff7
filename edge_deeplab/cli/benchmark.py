"""``edge-deeplab benchmark``: latency of one or more models on one or more runtimes."""
from __future__ import annotations

import csv
import io
import json
import sys

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError

CSV_FIELDS = ("model", "runtime", "threads", "warmup", "runs", "load_ms", "mean", "std", "min", "p50", "p90",
              "p99", "max", "peak_rss_mb")


def format_table(rows: list[dict]) -> str:
    """Markdown table: one row per model x runtime, then the top op types of profiled rows."""
    lines = ["| model | runtime | threads | load ms | mean ms | p50 ms | p90 ms | p99 ms | peak RSS MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lat = row["latency_ms"]
        lines.append(f"| {row['model']} | {row['runtime']} | {row['threads'] or 'default'} | {row['load_ms']:.1f} "
                     f"| {lat['mean']:.3f} | {lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} "
                     f"| {row['peak_rss_mb']:.1f} |")
    for row in rows:
        ops = row.get("ops")
        if ops is None:
            continue
        lines.append(f"\nops of {row['model']} on {row['runtime']}: "
                     + (f"{ops['total_ms']:.3f} ms in {sum(t['count'] for t in ops['by_type'])} layers"
                        if ops["available"] else f"not available ({ops['reason']})"))
        for kind in ops.get("by_type", [])[:8]:
            lines.append(f"  {kind['type']:<24} {kind['ms']:8.3f} ms  {kind['percent']:5.1f}%  x{kind['count']}")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**{k: row[k] for k in CSV_FIELDS if k in row}, **row["latency_ms"]})
    return buffer.getvalue()


def plot(rows: list[dict], path: str) -> None:
    """Bar chart of p50 latency with a whisker up to p90, one bar per model x runtime."""
    from edge_deeplab._optional import require
    require("matplotlib", "plot", "--plot")
    import matplotlib
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from edge_deeplab.atomic import atomic_write

    labels = [f"{row['model'].rsplit('/', 1)[-1]}\n{row['runtime']}" for row in rows]
    p50 = [row["latency_ms"]["p50"] for row in rows]
    above = [row["latency_ms"]["p90"] - row["latency_ms"]["p50"] for row in rows]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 1.5), 4.0))
    axes.bar(range(len(rows)), p50, yerr=[[0] * len(rows), above], capsize=4, color="#4c72b0")
    axes.set_xticks(range(len(rows)), labels, fontsize=8)
    axes.set_ylabel("latency (ms): p50, whisker to p90")
    axes.set_title("edge-deeplab benchmark")
    figure.tight_layout()
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ".png"
    with atomic_write(path, "wb", suffix=suffix) as file:
        figure.savefig(file, format=suffix[1:])
    plt.close(figure)


@click.command("benchmark")
@click.argument("models", nargs=-1, required=True)
@click.option("--runtime", default="auto", show_default=True,
              help="Engine(s), comma-separated, e.g. litert,openvino; auto picks by file suffix.")
@options.threads
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--profile-ops", is_flag=True, help="Per-op timing where the engine exposes it.")
@options.json_out
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Bar chart of p50 (whisker to p90); needs matplotlib (edge-deeplab[plot]).")
def command(models, runtime, threads, warmup, runs, profile_ops, json_path, csv_path, plot_path) -> None:
    """Time MODELS (artifact paths or `default`): load, warm-up, percentiles, peak memory.

    One row per model x runtime, all measured in this one process. A row that fails is reported and
    the others still run (exit code 1).
    """
    from edge_deeplab.runtimes.profiler import benchmark

    if plot_path:  # fail before minutes of timing, not after
        from edge_deeplab._optional import require
        require("matplotlib", "plot", "--plot")
    runtimes = [name.strip() for name in runtime.split(",") if name.strip()] or ["auto"]
    rows, failures = [], []
    for model in models:
        for name in runtimes:
            try:
                rows.append(benchmark(model, name, threads, warmup, runs, profile_ops).to_dict())
            except EdgeDeeplabError as exc:
                if len(models) * len(runtimes) == 1:
                    raise
                failures.append(f"{model} on {name}: {exc}")
                click.echo(f"error: {model} on {name}: {exc}", err=True)
    if rows:
        click.echo(format_table(rows))
    from edge_deeplab.atomic import atomic_write_text
    if json_path:
        atomic_write_text(json_path, json.dumps(rows, indent=2) + "\n")
    if csv_path:
        atomic_write_text(csv_path, to_csv(rows))
    if plot_path and rows:
        plot(rows, plot_path)
    if failures:
        sys.exit(1)
