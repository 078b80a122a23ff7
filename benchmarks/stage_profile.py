"""Where a model's float TFLite time goes, stage by stage (LiteRT's Python API has no op profiler).

Cuts the Keras model after each backbone stage (consecutive blocks with one output shape), after the
head and at the output, converts each prefix to float32 TFLite, times all prefixes of all the given
models interleaved (LiteRT, N threads), so models compare within one run, and prints each stage's
share of the p50 next to the weights it adds.

    python benchmarks/stage_profile.py portrait_teacher portrait --threads 2
"""
from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np

from edge_deeplab.runtimes import load_runtime
from edge_deeplab.runtimes.profiler import sample_input, time_invokes
from edge_deeplab.sources import float_twin, resolve_source
from results_io import json_option, write_json

BLOCK_END = re.compile(r"block(\d+)_(add|project_bn)$")


def cut_points(model) -> list[tuple[str, str]]:
    """(stage label, layer name) at the end of each backbone stage, the head and the model."""
    ends = {}
    for layer in model.layers:  # a block's last layer: its residual add if it has one
        match = BLOCK_END.match(layer.name)
        if match:
            ends[int(match.group(1))] = layer
    cuts, first = [], None
    blocks = sorted(ends)
    for i, block in enumerate(blocks):
        first = block if first is None else first
        shape = ends[block].output.shape[1:]
        if i + 1 == len(blocks) or ends[blocks[i + 1]].output.shape[1:] != shape:
            label = f"blocks {first}-{block}" if first != block else f"block {block}"
            cuts.append((f"{label} ({'x'.join(map(str, shape))})", ends[block].name))
            first = None
    cuts[0] = ("stem + " + cuts[0][0], cuts[0][1])
    cuts.append(("head", model.get_layer("logits").input.node.layer.name))
    cuts.append(("upsample to input", model.layers[-1].name))
    return cuts


def to_tflite(model, layer_name: str, path: Path) -> int:
    """Convert the prefix of ``model`` ending at ``layer_name``; returns its parameter count."""
    import tensorflow as tf
    import tf_keras

    from edge_deeplab.models.serving import serving_module
    prefix = tf_keras.Model(model.input, model.get_layer(layer_name).output)
    module = serving_module(prefix)  # the converters' own starting graph (static batch)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve], module)
    converter.experimental_lower_to_saved_model = False
    path.write_bytes(converter.convert())
    return prefix.count_params()


def prefixes(source_spec: str, folder: Path, threads: int) -> list[tuple[str, int, object, list]]:
    """(stage label, cumulative parameters, loaded runtime, samples) for each prefix of one model."""
    source = resolve_source(source_spec)
    model = (float_twin(source) or source).model  # a run folder's float weights, not its QAT wrapper
    stages = []
    for i, (label, layer) in enumerate(cut_points(model)):
        path = folder / f"prefix{i}.tflite"
        params = to_tflite(model, layer, path)
        runtime = load_runtime(str(path), "litert", threads)
        runtime.set_input(sample_input(runtime))
        time_invokes(runtime, 20, 0)
        stages.append((label, params, runtime, []))
    return stages


def profile(source_specs: list[str], threads: int, rounds: int, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        models = {spec: prefixes(spec, Path(tempfile.mkdtemp(dir=folder)), threads) for spec in source_specs}
        for _ in range(rounds):  # interleaved over every prefix of every model: a load spike hits all alike
            for stages in models.values():
                for _, _, runtime, samples in stages:
                    samples += time_invokes(runtime, 2, runs)
    report = {"threads": threads, "invokes": rounds * runs, "models": {}}
    for spec, stages in models.items():
        print_table(spec, stages, threads, rounds * runs)
        report["models"][spec] = [{"stage": label, "params": params, "p50_ms": float(np.median(samples))}
                                  for label, params, _, samples in stages]
    return report


def print_table(source_spec: str, stages: list, threads: int, invokes: int) -> None:
    print(f"\n{source_spec}: {len(stages)} prefixes, LiteRT {threads} threads, {invokes} invokes each\n")
    print("| stage | params added (M) | p50 of prefix ms | stage ms | share of p50 |")
    print("|---|---:|---:|---:|---:|")
    total = float(np.median(stages[-1][3]))
    previous_ms, previous_params = 0.0, 0
    for label, params, _, samples in stages:
        p50 = float(np.median(samples))
        print(f"| {label} | {(params - previous_params) / 1e6:.3f} | {p50:.3f} | {p50 - previous_ms:.3f} | "
              f"{(p50 - previous_ms) / total:.0%} |")
        previous_ms, previous_params = p50, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=["portrait"],
                        help="export SOURCEs: zoo names, run folders, .h5 weights with a config beside them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    json_option(parser, __file__)
    args = parser.parse_args()
    write_json(args.json, profile(args.sources, args.threads, args.rounds, args.runs))


if __name__ == "__main__":
    main()
