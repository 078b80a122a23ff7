"""Video: flicker with and without temporal smoothing, and end-to-end speed of `segment` on a clip.

    python benchmarks/video.py [--model default --model MODEL ...] [--data ../shared/data/people]
    python benchmarks/video.py --tune          # also search the smoothing parameters on people/train

1. Flicker on the people/val sequences (hike, rollerblade): the share of pixels whose predicted label
   changes between consecutive frames where the ground truth does not, with and without smoothing,
   and the person IoU each way. The smoothing parameters are chosen on people/train (--tune), not on
   the sequences reported.
2. Real time: a 480p 24 fps clip built from the val frames, run through
   `edge-deeplab segment MODEL clip.mp4 --mode blur` in a fresh process (start-up included), against
   the clip's duration; the model-only fps of the same model beside it.

Writes benchmarks/results/video.json and prints markdown tables.
"""
from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import edge_deeplab
from edge_deeplab.datasets import Pair, check_masks, load_mask
from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.imaging import load_image
from edge_deeplab.temporal import Smoothing, TemporalSmoother
from results_io import json_option, write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "people"
MEDIAPIPE = ROOT.parent / "shared" / "models" / "mediapipe_selfie_segmentation.tflite"
PERSON = 1


def sequences(split: Path) -> dict[str, list[tuple[Path, Path]]]:
    """Frames per sequence (``<sequence>_<frame>.jpg``), in frame order, with their masks."""
    found: dict[str, list[tuple[Path, Path]]] = {}
    for image in sorted((split / "images").glob("*.jpg")):
        name = image.stem.rsplit("_", 1)[0]
        found.setdefault(name, []).append((image, split / "masks" / f"{image.stem}.png"))
    if not found:
        raise EdgeDeeplabError(f"{split}: no <sequence>_<frame>.jpg frames under images/")
    check_masks(split, 2, [Pair(*frame) for frames in found.values() for frame in frames])
    return found


def model_outputs(segmenter, pairs) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(probabilities at model resolution, per-frame labels, ground truth) per frame; the model runs once.
    The frames are re-read for refinement (`smoothed`) rather than kept: a sequence of 480p frames per
    model would hold hundreds of MB."""
    outputs = []
    for image_path, mask_path in pairs:
        image = load_image(image_path)
        runner = segmenter.variant_for(image.shape[1], image.shape[0])  # `default`: the variant stream() runs
        raw, _ = runner._run(image)
        output = runner.core.output
        probabilities = output.probabilities(raw)
        if probabilities is None:  # labels only (int8 fused argmax): one-hot, as stream() smooths them
            probabilities = output.hard_probabilities(raw, max(runner.num_classes or 2, output.label_count(raw)))
        outputs.append((probabilities, runner.core.postprocess(raw, image).labels, load_mask(mask_path)))
    return outputs


def score(labels: list[np.ndarray], truths: list[np.ndarray]) -> dict:
    """Flicker (share of GT-stable pixels whose label changes) and person IoU over a sequence."""
    changed = stable = inter = union = 0
    for index, (label, truth) in enumerate(zip(labels, truths)):
        valid = truth != 255
        person, predicted = (truth == PERSON) & valid, (label == PERSON) & valid
        inter += int((person & predicted).sum())
        union += int((person | predicted).sum())
        if index:
            keep = (truths[index - 1] == truth) & valid & (truths[index - 1] != 255)
            stable += int(keep.sum())
            changed += int(((labels[index - 1] != label) & keep).sum())
    return {"flicker": changed / max(stable, 1), "person_iou": inter / max(union, 1), "frames": len(labels),
            "changed": changed, "stable": stable, "inter": inter, "union": union}


def smoothed(outputs, smoothing: Smoothing, images: list[Path] | None = None) -> tuple[list, list | None]:
    """The smoothed labels per frame and, with ``images`` (the frames' files), what `segment clip --refine`
    writes: each smoothed alpha snapped to its frame's edges (None without them)."""
    smoother = TemporalSmoother(smoothing)
    segmentations = [smoother.update(p, truth.shape[1], truth.shape[0]) for p, _, truth in outputs]
    if not images:
        return [s.labels for s in segmentations], None
    from edge_deeplab.refine import refine_alpha
    return [s.labels for s in segmentations], [
        (refine_alpha(load_image(image), s.alpha) >= 128).view(np.uint8) for s, image in zip(segmentations, images)]


def pooled(parts: list[dict]) -> dict:
    changed, stable = sum(p["changed"] for p in parts), sum(p["stable"] for p in parts)
    inter, union = sum(p["inter"] for p in parts), sum(p["union"] for p in parts)
    return {"flicker": changed / max(stable, 1), "person_iou": inter / max(union, 1),
            "frames": sum(p["frames"] for p in parts)}


def compare(outputs_by_sequence: dict, smoothing: Smoothing, images: dict | None = None) -> dict:
    """Per sequence and pooled: flicker and person IoU without and with smoothing, and their ratios;
    with ``images`` (frame paths by sequence) also smoothed and then refined (``refined``)."""
    rows = {}
    kinds = ("plain", "smooth") + (("refined",) if images else ())
    for name, outputs in outputs_by_sequence.items():
        truths = [truth for _, _, truth in outputs]
        smooth, refined = smoothed(outputs, smoothing, images[name] if images else None)
        rows[name] = {"plain": score([labels for _, labels, _ in outputs], truths), "smooth": score(smooth, truths)}
        if refined is not None:
            rows[name]["refined"] = score(refined, truths)
    rows["all"] = {kind: pooled([rows[n][kind] for n in outputs_by_sequence]) for kind in kinds}
    for row in rows.values():
        for kind in kinds:
            row[kind] = {k: row[kind][k] for k in ("flicker", "person_iou", "frames")}
        row["flicker_ratio"] = row["smooth"]["flicker"] / max(row["plain"]["flicker"], 1e-12)
        row["iou_change"] = row["smooth"]["person_iou"] - row["plain"]["person_iou"]
    return rows


GRID = {"rate": (0.2, 0.3, 0.5), "motion": (0.5, 0.8, 1.0), "hysteresis": (0.1, 0.2, 0.3),
        "moving_hysteresis": (False, True)}


def tune(outputs_per_model: list[dict]) -> tuple[Smoothing, list[dict]]:
    """The grid point whose worst pooled flicker ratio over the models is lowest among those that cost
    no model any pooled person IoU. (Asking the same of every single sequence leaves almost nothing: a
    fast tennis racket, part of that sequence's mask, loses 0.03+ under any smoothing tried.)"""
    trials = []
    for values in itertools.product(*GRID.values()):
        smoothing = Smoothing(*values)
        rows = [compare(outputs, smoothing) for outputs in outputs_per_model]
        trials.append({**dict(zip(GRID, values)),
                       "flicker_ratio": max(r["all"]["flicker_ratio"] for r in rows),
                       "iou_change": min(r["all"]["iou_change"] for r in rows),
                       "worst_sequence_iou_change": min(row["iou_change"] for r in rows for row in r.values())})
    fine = [t for t in trials if t["iou_change"] >= 0.0] or trials
    best = min(fine, key=lambda t: t["flicker_ratio"])
    return Smoothing(*(best[name] for name in GRID)), trials


def build_clip(path: Path, frames: list[Path], fps: int = 24) -> dict:
    """An H.264 clip of the val frames (854x480) at ``fps``, as a phone app would get it."""
    from edge_deeplab.video import ENCODER_OPTIONS, VideoInfo, Writer

    first = load_image(frames[0])
    info = VideoInfo(first.shape[1], first.shape[0], fps, len(frames), None)
    writer = Writer(path, info, options={**ENCODER_OPTIONS, "crf": "18"})
    for frame in frames:
        writer.write(load_image(frame))
    writer.close()
    return {"frames": len(frames), "width": info.width, "height": info.height, "fps": fps,
            "seconds": len(frames) / fps}


def command_line() -> list[str]:
    import shutil
    script = shutil.which("edge-deeplab", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from edge_deeplab.cli import main; main()"]


def sequential_seconds(seg, clip: Path, target: Path, render) -> float:
    """The same decode / model / compose / encode work in one thread, for what the pipeline gains."""
    from edge_deeplab import video
    start = time.perf_counter()
    step, writer = seg.frame_step(True), video.Writer(target, video.probe(clip))
    for frame in video.frames(clip):
        writer.write(render(frame, step(frame)))
    writer.close()
    return time.perf_counter() - start


def _child_cpu() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def realtime(model: str, frames: list[Path], repeats: int, threads: int | None) -> dict:
    """`segment MODEL clip.mp4 --mode blur` in a fresh process per run, against the clip's duration."""
    from edge_deeplab import video
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        facts = build_clip(clip, frames)
        walls, cpus, refine_walls = [], [], []
        extra = ["--threads", str(threads)] if threads else []
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run([*command_line(), "segment", model, str(clip), "--mode", "blur", "--refine",
                                   "--out", str(Path(folder) / "refined"), *extra], capture_output=True, text=True)
            refine_walls.append(time.perf_counter() - start)
            if done.returncode:
                raise EdgeDeeplabError(f"segment failed: {done.stderr.strip()}")
            before, start = _child_cpu(), time.perf_counter()
            done = subprocess.run([*command_line(), "segment", model, str(clip), "--mode", "blur",
                                   "--out", str(Path(folder) / "out"), *extra], capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            cpus.append(_child_cpu() - before)
            if done.returncode:
                raise EdgeDeeplabError(f"segment failed: {done.stderr.strip()}")
        written = video.probe(Path(folder) / "out" / "clip.mp4")
        seg = edge_deeplab.load(model, threads=threads)
        decoded = list(video.frames(clip))
        for frame in decoded[:5]:
            seg(frame)  # warm-up
        model_ms = [seg(frame).model_ms for frame in decoded]
        start = time.perf_counter()
        for frame in decoded:
            seg(frame)
        segment_ms = (time.perf_counter() - start) * 1000 / len(decoded)
        from edge_deeplab.video_pipeline import segment_video
        blur = lambda frame, result: np.asarray(result.blur(frame))  # noqa: E731
        report = segment_video(seg, clip, Path(folder) / "again.mp4", blur, show_progress=False)
        sequential = sequential_seconds(seg, clip, Path(folder) / "sequential.mp4", blur)
    wall = float(np.median(walls))
    return {"model": model, "clip": facts, "output": {"frames": written.frames, "width": written.width,
                                                      "height": written.height, "fps": float(written.fps)},
            "wall_s": walls, "wall_s_median": wall, "faster_than_clip": wall < facts["seconds"],
            # CPU seconds (all threads) of the whole process: what the run costs whatever else the
            # machine is doing; below 2x the clip's length it fits two free cores.
            "cpu_s": cpus, "cpu_s_median": float(np.median(cpus)),
            "realtime_factor": facts["seconds"] / wall, "end_to_end_fps": facts["frames"] / wall,
            "pipeline_fps": report.fps, "sequential_fps": facts["frames"] / sequential,
            "model_only_fps": 1000.0 / float(np.mean(model_ms)),
            "segment_only_fps": 1000.0 / segment_ms,
            "refine_wall_s": refine_walls, "refine_end_to_end_fps": facts["frames"] / float(np.median(refine_walls))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="repeatable; default: default (its 16:9 variant on these frames), default_int8, portrait (the square file) and MediaPipe's selfie model")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tune", action="store_true", help="search the smoothing parameters on people/train")
    parser.add_argument("--realtime", choices=("yes", "no", "only"), default="yes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    json_option(parser, __file__)
    args = parser.parse_args()
    models = args.model or ["default", "default_int8", "portrait", *([str(MEDIAPIPE)] if MEDIAPIPE.is_file() else [])]
    try:
        val = sequences(args.data / "val")
        segmenters = {model: edge_deeplab.load(model, threads=args.threads) for model in models}
    except EdgeDeeplabError as exc:
        sys.exit(f"error: {exc}")
    report = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else {}
    if args.realtime != "only":
        smoothing = Smoothing()
        if args.tune:
            train = sequences(args.data / "train")
            smoothing, trials = tune([{name: model_outputs(seg, pairs) for name, pairs in train.items()}
                                      for seg in segmenters.values()])
            report["tuning"] = {"sequences": sorted(train), "grid": GRID, "trials": trials,
                                "best": vars(smoothing)}
        frames_of = {name: [image for image, _ in pairs] for name, pairs in val.items()}
        rows = {model: compare({name: model_outputs(seg, pairs) for name, pairs in val.items()}, smoothing, frames_of)
                for model, seg in segmenters.items()}
        report["smoothing"] = {"parameters": vars(smoothing), "sequences": sorted(val), "models": rows}
        print_smoothing(report["smoothing"])
    if args.realtime != "no":
        frames = [image for name in sorted(val) for image, _ in val[name]]
        report["realtime"] = realtime(models[0], frames, args.repeats, args.threads)
        print_realtime(report["realtime"])
    write_json(args.json, report)


def print_smoothing(section: dict) -> None:
    print(f"\nTemporal smoothing {section['parameters']} on people/val\n")
    print("| model | sequence | flicker, per frame | flicker, smoothed | ratio | person IoU | smoothed | change "
          "| flicker, smoothed + refined | person IoU, smoothed + refined |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model, rows in section["models"].items():
        for name, row in rows.items():
            done = row.get("refined", {})
            print(f"| {Path(model).stem} | {name} | {row['plain']['flicker']:.4f} | {row['smooth']['flicker']:.4f} "
                  f"| {row['flicker_ratio']:.2f} | {row['plain']['person_iou']:.4f} | "
                  f"{row['smooth']['person_iou']:.4f} | {row['iou_change']:+.4f} | "
                  f"{done.get('flicker', float('nan')):.4f} | {done.get('person_iou', float('nan')):.4f} |")


def print_realtime(row: dict) -> None:
    clip = row["clip"]
    print(f"\n`segment {Path(row['model']).stem} clip.mp4 --mode blur`, {clip['width']}x{clip['height']} "
          f"{clip['fps']} fps, {clip['frames']} frames ({clip['seconds']:.2f} s)\n")
    print("| wall s (process start included) | CPU s | x real time | end-to-end fps | pipeline fps (threads) "
          "| same, one thread | segment fps | model fps |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {row['wall_s_median']:.2f} ({', '.join(f'{w:.2f}' for w in row['wall_s'])}) | {row['cpu_s_median']:.2f} | "
          f"{row['realtime_factor']:.2f} | {row['end_to_end_fps']:.1f} | {row['pipeline_fps']:.1f} | "
          f"{row['sequential_fps']:.1f} | {row['segment_only_fps']:.1f} | {row['model_only_fps']:.1f} |")
    print(f"\nWith --refine: {row['refine_end_to_end_fps']:.1f} fps end to end "
          f"({', '.join(f'{w:.2f}' for w in row['refine_wall_s'])} s wall)")


if __name__ == "__main__":
    main()
