"""The static Edge TPU report against Coral's compiler on the reference pairs: each full-integer model
in ``../shared/models/edgetpu_pairs`` beside ``edgetpu_compiler``'s ``_edgetpu.tflite`` of it.

    python benchmarks/edgetpu_pairs.py [--pairs DIR] [--json benchmarks/results/edgetpu_pairs.json]

The compiler's partition is read from the compiled file (ops it left to the CPU are still ordinary
TFLite ops; the rest became one ``edgetpu-custom-op``). Prints a markdown table and writes the JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from results_io import json_option, write_json

ROOT = Path(__file__).resolve().parent
PAIRS = ROOT.parents[1] / "shared" / "models" / "edgetpu_pairs"


def first_cpu(placement: list[str], ops: list) -> dict | None:
    index = next((i for i, p in enumerate(placement) if p == "cpu"), None)
    return None if index is None else {"index": index, "op": ops[index].type}


def compare_pair(model: Path) -> dict:
    from edge_deeplab.converters.edgetpu_log import compiled_placement
    from edge_deeplab.converters.edgetpu_report import compatibility_report
    from edge_deeplab.converters.tflite_graph import read_ops

    compiled = model.with_name(f"{model.stem}_edgetpu.tflite")
    report = compatibility_report(model)
    truth = compiled_placement(model, compiled)
    predicted = [row["placement"] for row in report["ops"]]
    ops = read_ops(model)
    first = report["first_cpu_op"]
    return {
        "pair": model.stem,
        "ops_total": report["ops_total"],
        "report": {"ops_on_edgetpu": report["ops_on_edgetpu"],
                   "first_cpu_op": None if first is None else {"index": first["index"], "op": first["op"]}},
        "compiler": {"ops_on_edgetpu": truth.count("edgetpu"), "first_cpu_op": first_cpu(truth, ops)},
        "ops_placed_differently": [i for i, (p, t) in enumerate(zip(predicted, truth)) if p != t],
        "agrees": predicted == truth,
        "parameters_mib": report["memory"]["parameters_mib"],
        "flags": [f"{f['kind']} @{f['index']} {f['op']}" for f in report["flags"]],
        "summary": report["summary"],
    }


def markdown(rows: list[dict]) -> str:
    def first(entry):
        return "-" if entry is None else f"#{entry['index']} {entry['op']}"

    lines = ["| pair | ops | report: on Edge TPU | compiler: on Edge TPU | report: first CPU op | "
             "compiler: first CPU op | same placement of every op | flags |",
             "|---|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['ops_total']} | {r['report']['ops_on_edgetpu']} | "
                     f"{r['compiler']['ops_on_edgetpu']} | {first(r['report']['first_cpu_op'])} | "
                     f"{first(r['compiler']['first_cpu_op'])} | "
                     f"{'yes' if r['agrees'] else 'no: ops ' + str(r['ops_placed_differently'])} | "
                     f"{'; '.join(r['flags']) or '-'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    json_option(parser, __file__)
    args = parser.parse_args()
    models = sorted(p for p in args.pairs.glob("*.tflite") if not p.stem.endswith("_edgetpu")
                    and p.with_name(f"{p.stem}_edgetpu.tflite").is_file())
    if not models:
        print(f"error: no model with its _edgetpu.tflite in {args.pairs}", file=sys.stderr)
        return 1
    rows = [compare_pair(model) for model in models]
    write_json(args.json, {"pairs_dir": os.path.relpath(args.pairs, ROOT.parent), "pairs": rows})
    print(markdown(rows))
    print(f"\n{sum(r['agrees'] for r in rows)} of {len(rows)} pairs placed exactly as the compiler did")
    return 0 if all(r["agrees"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
