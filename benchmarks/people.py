"""The default model beside MediaPipe's selfie and landscape segmenters on portraits and on people.

Person IoU on each val folder (at each mask's resolution, through the same pre/post-processing as
``edge-deeplab evaluate``): the model's own masks (``evaluate --no-refine``) and the masks with their
edges refined as ``segment`` and ``evaluate`` give a photo's (guided filter, applied to every model
alike), and LiteRT latency at N threads, interleaved between the models so load from other processes
hits them alike (medians, ratio to MediaPipe selfie). Prints markdown tables and writes
benchmarks/results/people.json.

    python benchmarks/people.py [MODEL ...]      # default: `default` and the shipped files (fp32, int8, landscape, selfie)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.runtimes import resolve_model
from edge_deeplab.runtimes.profiler import interleaved_latency
from results_io import json_option, machine, write_json

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
DEFAULT_SETS = [str(SHARED / "data" / "portrait" / "val"), str(SHARED / "data" / "people" / "val")]
SELFIE = str(SHARED / "models" / "mediapipe_selfie_segmentation.tflite")
LANDSCAPE = str(HERE / "models" / "mediapipe_selfie_segmentation_landscape.tflite")


def person_iou(segmenter, folder: str) -> tuple[dict, dict]:
    """Person IoU, mIoU and boundary IoU of ``segmenter`` on ``folder``: of the model's own masks and of
    the refined ones, from one run of the model per photo."""
    from edge_deeplab.datasets import check_masks, list_pairs, load_mask
    from edge_deeplab.imaging import load_image
    from edge_deeplab.metrics import SegmentationMetrics
    check_masks(folder, 2)  # person masks as class indices (0/1, 255 ignored), or a clear error
    kinds = ("own", "refined")
    metrics = {kind: SegmentationMetrics(2) for kind in kinds}
    per_sequence: dict[str, dict[str, SegmentationMetrics]] = {kind: {} for kind in kinds}
    for pair in list_pairs(folder):
        image, mask = load_image(pair.image), load_mask(pair.mask)
        result = segmenter(image)
        sequence = sequence_name(pair.image)
        for kind, labels in zip(kinds, (result.raw_labels, result.labels)):
            prediction = (labels != 0).astype(np.uint8)
            metrics[kind].update(prediction, mask)
            if sequence:
                per_sequence[kind].setdefault(sequence, SegmentationMetrics(2)).update(prediction, mask)
    return tuple(_scores(metrics[kind], per_sequence[kind]) for kind in kinds)


def _scores(metrics, per_sequence: dict) -> dict:
    summary = metrics.summary()
    scores = {"person_iou": summary["iou"][1], "miou": summary["miou"],
              "boundary_iou": summary["boundary_iou"], "images": metrics.images}
    if len(per_sequence) > 1:  # video frames: one clip can dominate a pooled score
        scores["sequences"] = {name: m.summary()["iou"][1] for name, m in sorted(per_sequence.items())}
    return scores


def val_name(folder: str | Path) -> str:
    """``people/val`` for ``.../people/val``: how the tables and JSON name a val folder."""
    return Path(folder).parent.name + "/" + Path(folder).name


def add_model_options(parser: argparse.ArgumentParser, models: list[str]) -> None:
    """Our models (positional), the val folders, MediaPipe's two reference files and the thread count."""
    parser.add_argument("models", nargs="*", default=models, help="our models (.tflite paths, `default` or zoo names)")
    parser.add_argument("--sets", nargs="+", default=DEFAULT_SETS, help="val folders (images/ + masks/)")
    parser.add_argument("--selfie", default=SELFIE)
    parser.add_argument("--landscape", default=LANDSCAPE)
    parser.add_argument("--threads", type=int, default=2)


def load_models(args: argparse.Namespace) -> tuple[dict[str, str], dict]:
    """(name -> path, name -> loaded segmenter) for our models and MediaPipe's two, all on LiteRT."""
    import edge_deeplab
    entries = {m: m for m in args.models}
    entries.update({"mediapipe selfie": args.selfie, "mediapipe landscape": args.landscape})
    return entries, {name: edge_deeplab.load(path, "litert", args.threads) for name, path in entries.items()}


def input_shape(runtime) -> str:
    info = runtime.inputs[0]
    return "x".join(str(s) for s in info.shape[1:3]) + f" {np.dtype(info.dtype).name}"


def sequence_name(image: Path) -> str | None:
    """``hike`` for a video frame named ``hike_00042``; None for a photo."""
    stem, _, frame = Path(image).stem.rpartition("_")
    return stem if stem and frame.isdigit() else None


def main() -> None:
    try:
        run()
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_options(parser, ["default", "default_int8", "portrait", "portrait_int8", "portrait_landscape",
                               "portrait_landscape_int8", "portrait_selfie"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=20)
    json_option(parser, __file__)
    args = parser.parse_args()

    # Everything loads before any output: a bad model or folder is one error line, not half a table.
    entries, segmenters = load_models(args)
    from edge_deeplab.datasets import list_pairs
    for folder in args.sets:
        list_pairs(folder)
    set_names = [val_name(folder) for folder in args.sets]
    both = {name: {set_name: person_iou(seg, folder) for set_name, folder in zip(set_names, args.sets)}
            for name, seg in segmenters.items()}
    scores, refined = ({name: {s: pair[index] for s, pair in sets.items()} for name, sets in both.items()}
                       for index in (0, 1))
    runtimes = {name: segmenter.engine for name, segmenter in segmenters.items()}  # loaded once
    times = interleaved_latency(runtimes, args.rounds, args.runs, args.warmup)
    reference = times["mediapipe selfie"]["p50"]

    print(f"LiteRT, {args.threads} threads, {args.rounds * args.runs} timed invokes per model (interleaved)\n")
    print("| model | input | " + " | ".join(f"{s} person IoU" for s in set_names)
          + " | " + " | ".join(f"{s} refined" for s in set_names) + " | p50 ms | p50 / MediaPipe selfie | size MB |")
    print("|---|---|" + "---|" * 2 * len(set_names) + "---|---|---|")
    report = []
    for name, runtime in runtimes.items():
        # `default` runs each photo on one of its variants (edge_deeplab.AspectMatchedSegmenter).
        shape = " or ".join(input_shape(v.engine) for v in segmenters[name].variants)
        size_mb = resolve_model(entries[name]).stat().st_size / 1e6
        t = times[name]
        print(f"| {name} | {shape} | " + " | ".join(f"{scores[name][s]['person_iou']:.4f}" for s in set_names)
              + " | " + " | ".join(f"{refined[name][s]['person_iou']:.4f}" for s in set_names)
              + f" | {t['p50']:.3f} | {t['p50'] / reference:.2f} | "
              f"{size_mb:.2f} |")
        report.append({"model": name, "path": str(entries[name]), "input": shape, "sets": scores[name],
                       "refined": refined[name], "latency_ms": t,
                       "p50_ratio_to_mediapipe_selfie": t["p50"] / reference, "size_mb": size_mb})
    for set_name in set_names:
        sequences = list(scores[next(iter(scores))][set_name].get("sequences", {}))
        if sequences:
            print(f"\n{set_name} person IoU per sequence\n\n| model | " + " | ".join(sequences) + " |")
            print("|---|" + "---|" * len(sequences))
            for name in runtimes:
                print(f"| {name} | " + " | ".join(f"{scores[name][set_name]['sequences'][q]:.4f}"
                                                  for q in sequences) + " |")
    write_json(args.json, {"threads": args.threads, "machine": machine(), "models": report})


if __name__ == "__main__":
    main()
