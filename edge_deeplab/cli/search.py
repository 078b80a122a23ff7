"""``edge-deeplab search``: NAS-lite under a latency budget."""
from __future__ import annotations

import click

from edge_deeplab.cli import options

PRECISIONS = ("int8", "float")  # as edge_deeplab.search.measure.PRECISIONS (not imported: keep --help light)


@click.command("search")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="Dataset folder: train/ and val/ splits, or one images/ + masks/ folder.")
@click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Latency budget (p50, ms) on --runtime.")
@click.option("--runtime", required=True, help="Runtime to measure latency on: litert, openvino, onnxruntime, edgetpu.")
@click.option("--trials", type=click.IntRange(min=1), default=30, show_default=True,
              help="Candidates trained by the accuracy proxy.")
@click.option("--out", "out_dir", type=click.Path(), callback=options.output_folder,
              default="runs/search", show_default=True)
@click.option("--resume", is_flag=True, help="Continue the search in --out after an interruption.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="int8", show_default=True,
              help="Convert candidates to full-integer or float artifacts for timing and export.")
@click.option("--latency-table", type=click.Path(dir_okay=False), default=None,
              help="Latency table JSON to use and extend (default: a per-machine cache). For a runtime this "
                   "machine cannot run (edgetpu), a table measured on the device.")
@click.option("--space", "space_file", type=click.Path(dir_okay=False), default=None,
              help="Search space YAML/JSON (SearchSpace fields; default: the built-in space).")
@click.option("--proxy", "proxy_file", type=click.Path(dir_okay=False), default=None,
              help="Accuracy-proxy YAML/JSON (ProxySettings fields: images, scale, epochs...).")
@click.option("--warm-start/--no-warm-start", default=True, show_default=True,
              help="Start the population from the zoo's models that lie in the space and fit the budget.")
@options.threads
@click.option("--seed", type=int, default=0, show_default=True)
@options.verbose
def command(data_dir, budget_ms, runtime, trials, out_dir, resume, precision, latency_table, space_file,
            proxy_file, warm_start, threads, seed, verbose) -> None:
    """Search backbone, width, stride, head and input size for the best model under a latency budget.

    Prints one line per trial (candidate, latency, proxy score, elapsed, ETA) on stderr. Writes
    <out>/search.json, <out>/pareto.png, <out>/best.yaml (a complete training config for the winner:
    `train --config <out>/best.yaml` takes it) and the winner exported for --runtime under <out>/best/.
    """
    from edge_deeplab.search.proxy import ProxySettings
    from edge_deeplab.search.run import run_search
    from edge_deeplab.search.search import SearchSettings
    from edge_deeplab.search.space import SearchSpace, describe

    settings = SearchSettings(budget_ms=budget_ms, runtime=runtime, precision=precision, threads=threads,
                              trials=trials, seed=seed, warm_start=warm_start)
    space = SearchSpace.load(space_file) if space_file else None
    proxy = ProxySettings.load(proxy_file) if proxy_file else None
    report = run_search(data_dir, out_dir, settings, space, proxy, latency_table, resume,
                        log=lambda m: click.echo(m, err=True), verbose=verbose)
    click.echo(f"{len(report['candidates'])} candidates, {len(report['pareto'])} on the Pareto front "
               f"-> {out_dir}/search.json, {out_dir}/pareto.png")
    best = report["best"]
    if best is None:
        click.echo(f"no candidate was measured within {budget_ms} ms: raise --budget-ms or search smaller models")
        return
    from edge_deeplab.models.config import ModelConfig
    click.echo(f"best: {describe(ModelConfig.from_dict(best['config']))}  "
               f"{best['latency_ms']:.2f} ms, proxy mIoU {best['score']:.4f}")
    export = best.get("export") or {}
    status = f"{export.get('status')}: {best['artifact']}" if best["artifact"] else export.get("status", "not exported")
    reason = f" ({export['reason']})" if export.get("reason") else ""
    click.echo(f"artifact ({export.get('format', '-')}) {status}{reason}")
    click.echo(f"train it fully: edge-deeplab train --config {out_dir}/best.yaml --data <train dir> "
               "--val <val dir>")
