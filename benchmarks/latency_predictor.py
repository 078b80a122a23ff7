"""Latency predictor accuracy on held-out candidates: share predicted within +-10% of measured (target >= 90%).

    python benchmarks/latency_predictor.py [--runtime litert] [--precision int8] [--threads 2]
        [--train 20] [--test 20] [--work runs/latency_predictor]

The search's own procedure, on a fresh table: seed it (3 candidates), then measure ``--train`` random
candidates of the default search space whole (each adds its most expensive new kernels to the table
and refits the predictor; one measured >25% slower than predicted is timed again, as in the search).
Then every ``--test`` candidate (never measured before) is predicted, then measured as the search
measures (timed twice, seconds apart, the lower kept), in ``--repeats`` passes over all of them,
minutes apart. The predictor is scored against each pass; baselines, fitted on the same training
candidates (the plain sum of table kernels, a MACs-only linear fit), against the first. The
noise-floor row compares the first two passes: on a loaded machine two measurements of one model
disagree by >10% now and then.

Measurements are kept in ``--work`` (a killed run continues where it stopped). Cost on an idle 2-core
machine, litert int8: ~10-25 s per candidate (build, convert, time, kernels): ~15 min for 20 + 20.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from results_io import json_option, write_json


def errors(predicted, measured) -> np.ndarray:
    return np.asarray(predicted) / np.asarray(measured) - 1.0


def row(name: str, err: np.ndarray) -> str:
    within = np.mean(np.abs(err) <= 0.10)
    return (f"| {name} | {len(err)} | {100 * within:.0f}% | {100 * np.median(np.abs(err)):.1f}% | "
            f"{100 * np.percentile(np.abs(err), 90):.1f}% | {100 * np.max(np.abs(err)):.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="litert")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", type=int, default=20)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="measurement passes over the test candidates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="", help="input sides to search, e.g. 64,96 (default: the space's)")
    parser.add_argument("--work", default="runs/latency_predictor")
    json_option(parser, __file__)
    args = parser.parse_args()

    from edge_deeplab.search.latency import LatencyModel, group_features
    from edge_deeplab.search.measure import Meter, Timing
    from edge_deeplab.search.run import SEED_CANDIDATES, SEED_STREAM
    from edge_deeplab.search.space import SearchSpace, candidate_key, describe
    from edge_deeplab.search.table import LatencyTable

    space = SearchSpace()
    if args.sizes:
        space = space.replace(input_sizes=tuple((int(s), int(s)) for s in args.sizes.split(",")))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    started = time.time()
    meter = Meter(args.runtime, args.precision, Timing(threads=args.threads))
    table = LatencyTable.open(work / "table.json", args.runtime, args.precision, args.threads)
    latency = LatencyModel(table, meter)
    rng = np.random.default_rng([args.seed, SEED_STREAM])
    seeds = [space.sample(rng) for _ in range(SEED_CANDIDATES)]
    latency.seed(seeds)

    rng = np.random.default_rng(args.seed)
    seen = {candidate_key(c) for c in seeds}  # (not the table's keys: a resumed run must draw the same)
    candidates = []
    while len(candidates) < args.train + args.test:
        config = space.sample(rng)
        if candidate_key(config) not in seen:
            seen.add(candidate_key(config))
            candidates.append(config)
    train, test = candidates[:args.train], candidates[args.train:]
    for i, config in enumerate(train):
        ms = latency.measure(config)
        print(f"train {i + 1}/{len(train)}: {describe(config):55s} {ms:8.2f} ms", flush=True)

    held_path = work / "held_out.json"  # held-out measurements stay out of the predictor's table
    held = json.loads(held_path.read_text()) if held_path.is_file() else {}
    predicted, plain, macs = [], [], []
    for config in test:
        kernels = latency.kernels(config)
        features = group_features(kernels, latency.costs)
        predicted.append(latency.predictor.predict(features))
        plain.append(features.sum() + (table.overhead_ms or 0.0))
        macs.append(sum(k.macs for k in kernels))
    for repeat in range(args.repeats):
        for i, config in enumerate(test):
            figures = held.setdefault(candidate_key(config), [])
            if len(figures) <= repeat:
                figures.append(meter.candidate(config))
                held_path.write_text(json.dumps(held))
            print(f"test {i + 1}/{len(test)} pass {repeat + 1}: {describe(config):55s} measured "
                  f"{figures[repeat]:8.2f} ms, predicted {predicted[i]:8.2f} ms", flush=True)
    passes = [held[candidate_key(c)][:args.repeats] for c in test]
    measured = [p[0] for p in passes]
    table.save()

    train_macs = np.array([[sum(k.macs for k in latency.kernels(c)), 1.0] for c in train])
    train_ms = np.array([latency.measured(c) for c in train])
    coef, *_ = np.linalg.lstsq(train_macs / train_ms[:, None], np.ones(len(train)), rcond=None)
    macs_fit = np.array(macs) * coef[0] + coef[1]

    print(f"\nruntime {args.runtime} {args.precision}, {args.threads} threads; {len(train)} training + "
          f"{SEED_CANDIDATES} seed candidates, {len(table.kernels)} kernels in the table; "
          f"{(time.time() - started) / 60:.1f} min; load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print("| predictor | held-out candidates | within +-10% | median abs error | p90 abs error | max abs error |")
    print("|---|---:|---:|---:|---:|---:|")
    rows = [(f"kernel table + group least squares (the search's), pass {repeat + 1}",
             errors(predicted, [p[repeat] for p in passes])) for repeat in range(args.repeats)]
    rows += [("kernel table, plain sum", errors(plain, measured)), ("MACs, linear fit", errors(macs_fit, measured))]
    if args.repeats > 1:
        rows.append(("noise floor: 2nd measurement vs 1st", errors([p[1] for p in passes], [p[0] for p in passes])))
    for name, errs in rows:
        print(row(name, errs))
    write_json(args.json, {"runtime": args.runtime, "precision": args.precision, "threads": args.threads,
                           "train": len(train), "kernels": len(table.kernels),
                           "minutes": (time.time() - started) / 60, "measured_ms": passes,
                           "predicted_ms": [float(p) for p in predicted],
                           "rows": [{"predictor": name, "relative_errors": [float(e) for e in errs]} for name, errs in rows]})
    print(f"\ngroup weights {np.round(latency.predictor.weights, 3).tolist()} (groups conv1x1, conv, depthwise, "
          f"elementwise, other), intercept {latency.predictor.intercept:.3f} ms")


if __name__ == "__main__":
    main()
