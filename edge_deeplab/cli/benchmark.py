"""``edge-deeplab benchmark``: latency of one or more models on one or more runtimes."""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from edge_deeplab.cli import options
from edge_deeplab.errors import EdgeDeeplabError, first_line

CSV_FIELDS = ("model", "runtime", "threads", "warmup", "runs", "load_ms", "mean", "std", "min", "p50", "p90",
              "p99", "max", "peak_rss_mb", "precision", "error")


def format_table(rows: list[dict]) -> str:
    """Markdown table: one row per model x runtime (x precision), then the top op types of profiled rows.

    A row that failed keeps its place and says why instead of figures.
    """
    lines = ["| model | runtime | precision | threads | load ms | mean ms | p50 ms | p90 ms | p99 ms | peak RSS MB |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        head = f"| {row['model']} | {row['runtime']} | {row.get('precision') or '-'} | {row['threads'] or 'default'} "
        if row.get("error"):
            lines.append(head + f"| FAILED: {_cell(row['error'])} | | | | | |")
            continue
        lat = row["latency_ms"]
        lines.append(head + f"| {row['load_ms']:.1f} | {lat['mean']:.3f} | {lat['p50']:.3f} | {lat['p90']:.3f} "
                     f"| {lat['p99']:.3f} | {row['peak_rss_mb']:.1f} |")
    named = {}
    for row in rows:
        if row.get("labels"):
            named.setdefault(row["model"], row["labels"])
    for model, names in named.items():
        more = f", ... ({len(names)} classes)" if len(names) > 12 else ""
        lines.append(f"\nclasses of {model}: {', '.join(names[:12])}{more}")
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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**{k: row[k] for k in CSV_FIELDS if row.get(k) is not None}, **(row["latency_ms"] or {})})
    return buffer.getvalue()


def short_names(models: list[str]) -> list[str]:
    """Each model's file name, with as many parent folders as it takes to tell apart files of one name
    (``a/portrait_int8.tflite``, ``b/portrait_int8.tflite``)."""
    parts = [Path(model).parts or (model,) for model in models]
    depth = 1
    while depth < max(map(len, parts)) and len({"/".join(p[-depth:]) for p in parts}) < len(set(models)):
        depth += 1
    return ["/".join(p[-depth:]) for p in parts]


def plot(rows: list[dict], path: str) -> None:
    """Bar chart of p50 latency with a whisker up to p90, one bar per row; a failed row is a labelled gap."""
    from edge_deeplab._optional import require
    require("matplotlib", "plot", "--plot")
    import matplotlib
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from edge_deeplab.atomic import atomic_write

    labels = [f"{name}\n{row['runtime']}" + (f" {row['precision']}" if row.get("precision") else "")
              for name, row in zip(short_names([row["model"] for row in rows]), rows)]
    ok = [i for i, row in enumerate(rows) if not row.get("error")]
    p50 = [rows[i]["latency_ms"]["p50"] for i in ok]
    above = [rows[i]["latency_ms"]["p90"] - rows[i]["latency_ms"]["p50"] for i in ok]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 1.5), 4.0))
    axes.bar(ok, p50, yerr=[[0] * len(ok), above], capsize=4, color="#4c72b0")
    for i, row in enumerate(rows):
        if row.get("error"):
            axes.text(i, 0, "failed\n(see JSON)", ha="center", va="bottom", color="#c44e52", fontsize=8)
    axes.set_xticks(range(len(rows)), labels, fontsize=8)
    axes.set_xlim(-0.6, len(rows) - 0.4)
    axes.set_ylabel("latency (ms): p50, whisker to p90")
    axes.set_title("edge-deeplab benchmark")
    figure.tight_layout()
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ".png"
    with atomic_write(path, "wb", suffix=suffix) as file:
        figure.savefig(file, format=suffix[1:])
    plt.close(figure)


def _precisions(model: str, runtime: str, asked: list[str]) -> list[str | None]:
    """The precisions to time ``model`` at on ``runtime``: each asked one where the engine offers a
    choice, else one run in the model's own types (None)."""
    if not asked:
        return [None]
    from edge_deeplab.runtimes import resolve_model, runtime_for
    try:
        cls = runtime_for(resolve_model(model), runtime).load()
    except EdgeDeeplabError:
        return [None]  # the row fails with this error when it runs
    return list(asked) if cls.precisions else [None]


def _engine(model: str, runtime: str) -> str:
    """The engine name a failed row is filed under (``auto`` resolved where the model's name allows)."""
    from edge_deeplab.runtimes import resolve_model, runtime_for
    try:
        return runtime_for(resolve_model(model), runtime).name
    except EdgeDeeplabError:
        return runtime


def _mismatch(model: str, runtime: str) -> str | None:
    """Why ``runtime`` cannot read ``model``'s kind of file (a .tflite on onnxruntime), or None."""
    from edge_deeplab.runtimes import RUNTIMES, check_suffix, resolve_model
    if runtime == "auto":
        return None
    try:
        check_suffix(resolve_model(model), RUNTIMES.get(runtime), model)
    except EdgeDeeplabError as exc:
        return str(exc)
    return None


def _time_interleaved(rows: list[dict], timed: list[tuple[int, str, str | None]], threads: int | None, warmup: int,
                      runs: int) -> int:
    """Replace the latency of the rows that ran with an interleaved timing of each engine's rows (engines
    one after another); returns how many rows failed to load or run again here (each keeps its load time
    and peak memory, and says why it has no latency).

    One engine at a time because engines slow each other in one process: OpenVINO's bursts took 1.3-1.7x
    their time alone when alternated with LiteRT's and ONNX Runtime's (2 threads, 2 cores).
    """
    from edge_deeplab.runtimes.profiler import latency_interleaved
    by_engine: dict[str, list[tuple[int, str, str | None]]] = {}
    for row in timed:
        by_engine.setdefault(rows[row[0]]["runtime"], []).append(row)
    click.echo(f"note: timing {len(timed)} row(s) interleaved, {runs} invokes each in bursts of 10"
               + (", one engine at a time" if len(by_engine) > 1 else ""), err=True)
    failed = 0
    for engine, group in by_engine.items():
        targets = [(model, engine, threads, chosen) for _, model, chosen in group]
        for (i, model, _), stats in zip(group, latency_interleaved(targets, warmup, runs)):
            if isinstance(stats, Exception):
                message = first_line(stats)
                rows[i].update(runs=runs, latency_ms=None, error=f"interleaved timing: {message}")
                click.echo(f"error: {model} on {engine}, interleaved timing: {message}", err=True)
                failed += 1
            else:
                rows[i].update(runs=runs, latency_ms=asdict(stats))
    return failed


@click.command("benchmark")
@click.argument("models", nargs=-1, required=True)
@click.option("--runtime", default="auto", show_default=True,
              help="Engine(s), comma-separated, e.g. litert,openvino; auto picks by file suffix.")
@options.threads
@click.option("--warmup", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--precision", default=None,
              help="Inference precision(s), comma-separated, for engines that offer a choice (OpenVINO: f32, "
                   "bf16, f16, default = the plugin's own); e.g. f32,bf16 gives one row each. Default: f32. "
                   "Engines without a choice run once, in the model's own types.")
@click.option("--profile-ops", is_flag=True, help="Per-op timing where the engine exposes it.")
@click.option("--interleave", is_flag=True,
              help="Time the rows' invokes together, in alternating bursts of 10 in this process (one engine "
                   "at a time), so load from other processes hits every row alike (fair ratios on a busy "
                   "machine); load ms and peak RSS still come from each row's own process.")
@options.labels
@options.json_out
@click.option("--csv", "csv_path", type=click.Path(), default=None, callback=options.output_file)
@click.option("--plot", "plot_path", type=click.Path(), default=None, callback=options.output_file,
              help="Bar chart of p50 (whisker to p90); needs matplotlib (edge-deeplab[plot]).")
def command(models, runtime, threads, warmup, runs, precision, profile_ops, interleave, labels, json_path,
            csv_path, plot_path) -> None:
    """Time MODELS (artifact paths, `default` or zoo names; `default_int8` for the int8 files): load,
    warm-up, percentiles, peak memory.

    One row per model x runtime (x precision), each measured in a fresh process, one after another, so
    no row's load time or peak memory depends on the rows before it. A model that fails to
    load or run stays in the table, JSON, CSV and plot as a row with its "error"; the others still run,
    every output is written, and the exit code is 1 if any row failed (0 if all ran). With --interleave
    the rows' latency is timed afterwards in this process, each engine's rows together in alternating
    bursts, engines one after another.
    """
    from edge_deeplab.runtimes import RUNTIMES, check_precision
    from edge_deeplab.runtimes.profiler import ENGINE_ERRORS, benchmark_isolated, failed_row

    if plot_path:  # fail before minutes of timing, not after
        from edge_deeplab._optional import require
        require("matplotlib", "plot", "--plot")
    runtimes = [name.strip() for name in runtime.split(",") if name.strip()] or ["auto"]
    asked = [p.strip() for p in (precision or "").split(",") if p.strip()]
    for value in asked:  # a typo fails the command before any timing, not each row
        check_precision(value)
    rows, failed, noted = [], 0, set()
    timed = []  # (row index, model, asked precision) of the rows that ran, for --interleave
    # --interleave replaces each row's latency, so its own process times one invoke (--profile-ops: all).
    isolated_runs = runs if profile_ops or not interleave else 1
    for model in models:
        readable = [name for name in runtimes if _mismatch(model, name) is None]
        # Comparing formats over several engines: the pairs of a file and an engine that cannot read its
        # kind are left out, not failed; a model no engine asked for can read still fails its row.
        skipped = [name for name in runtimes if name not in readable] if len(runtimes) > 1 and readable else []
        if skipped:
            click.echo(f"note: {model}: not run on {', '.join(skipped)} (not its file format)", err=True)
        for name in runtimes:
            if name in skipped:
                continue
            chosen_list = _precisions(model, name, asked)
            engine = _engine(model, name)
            if asked and chosen_list == [None] and engine not in noted and engine in RUNTIMES:
                noted.add(engine)  # said once per engine: its rows show precision "-"
                click.echo(f"note: {engine} has no precision choice: its rows ran once, in the model's own "
                           f"types (precision -), not at --precision {','.join(asked)}", err=True)
            for chosen in chosen_list:
                try:
                    rows.append(benchmark_isolated(model, name, threads, warmup, isolated_runs, profile_ops,
                                                   chosen, labels).to_dict())
                    timed.append((len(rows) - 1, model, chosen))
                    ran = rows[-1].get("precision")
                    if chosen not in (None, "default") and ran and ran != chosen:  # e.g. no f16 on this CPU
                        click.echo(f"note: {model} on {rows[-1]['runtime']}: --precision {chosen} ran as {ran} "
                                   "(the engine's substitute on this machine)", err=True)
                except ENGINE_ERRORS as exc:  # the row fails; anything else is a bug, with its traceback
                    message = first_line(exc)
                    rows.append(failed_row(model, _engine(model, name), threads, warmup, runs, message, chosen))
                    failed += 1
                    click.echo(f"error: {model} on {name}: {message}", err=True)
    if interleave and timed:
        failed += _time_interleaved(rows, timed, threads, warmup, runs)
    engines = {row["runtime"] for row in rows if not row.get("error")}
    if threads is None and len(engines) > 1:
        click.echo("note: no --threads: each engine ran with its own default (LiteRT: one thread; ONNX Runtime "
                   "and OpenVINO: one per core); pass --threads N to compare engines at the same count", err=True)
    click.echo(format_table(rows))
    from edge_deeplab.atomic import atomic_write_text
    if json_path:
        atomic_write_text(json_path, json.dumps(rows, indent=2) + "\n")
    if csv_path:
        atomic_write_text(csv_path, to_csv(rows))
    if plot_path:
        plot(rows, plot_path)
    if failed:
        sys.exit(1)
