"""CamVid float vs int8 (post-training and QAT) of a trained `camvid` run, through the CLI a user runs.

    edge-deeplab train --config configs/camvid.yaml --data ../shared/data/camvid/train \
        --val ../shared/data/camvid/val --qat --out runs/camvid
    python benchmarks/camvid.py [--run runs/camvid] [--threads 2]

Exports the run's float weights to fp32 TFLite and post-training int8 (calibrated on train), and its
QAT weights to int8, each with `--max-miou-drop 100` so a lossy artifact is still measured; then
`edge-deeplab evaluate` on val. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from results_io import json_option, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared"
CLI = [sys.executable, "-c", "from edge_deeplab.cli import main; main()"]


def cli(*args) -> None:
    subprocess.run([*CLI, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/camvid"))
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "camvid")
    parser.add_argument("--threads", type=int, default=2)
    json_option(parser, __file__)
    args = parser.parse_args()

    calibration = ["--calibration", args.data / "train", "--max-miou-drop", "100"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cli("export", args.run / "best.weights.h5", "--format", "tflite,tflite-int8", *calibration,
            "--out", out / "float")
        cli("export", args.run, "--format", "tflite-int8", *calibration, "--out", out / "qat")
        models = {"float (fp32 TFLite)": out / "float" / "best_fp32.tflite",
                  "int8, post-training": out / "float" / "best_int8.tflite",
                  "int8, QAT (`--qat`)": out / "qat" / f"{args.run.name}_int8.tflite"}
        for name, model in models.items():
            report = out / f"{model.stem}.json"
            cli("evaluate", model, "--data", args.data / "val", "--threads", args.threads, "--json", report)
            rows.append((name, json.loads(report.read_text()), model.stat().st_size / 1e6))
    print("| model | mIoU | pixel accuracy | boundary IoU | p50 ms (LiteRT) | size MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r, size in rows:
        print(f"| {name} | {r['miou']:.3f} | {r['pixel_accuracy']:.3f} | {r['boundary_iou']:.3f} | "
              f"{r['latency_ms']['p50']:.1f} | {size:.2f} |")
    write_json(args.json, {"run": str(args.run), "threads": args.threads,
                           "rows": [{"model": name, "size_mb": size, "evaluate": r} for name, r, size in rows]})


if __name__ == "__main__":
    main()
