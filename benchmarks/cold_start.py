"""Cold start of ``edge-deeplab segment default one.jpg``: process start to mask written (target < 1 s),
and proof that no TensorFlow (or other heavy extra) is imported on the way.

    python benchmarks/cold_start.py [--model default] [--image IMG] [--repeats 7]

If the packaged default model is not there yet, the MediaPipe selfie model (same input size, float) stands
in and the table says so. The import list comes from Python's own ``-X importtime`` log of the same
command, so the check covers exactly what the timed runs load.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from results_io import json_option, write_json

SHARED = Path(__file__).resolve().parents[2] / "shared"
STAND_IN = SHARED / "models" / "mediapipe_selfie_segmentation.tflite"
IMAGE = SHARED / "data" / "portrait" / "val" / "images" / "00020.jpg"
HEAVY = ("tensorflow", "tf_keras", "keras", "openvino", "onnxruntime", "onnx", "coremltools", "matplotlib", "torch")


def cli() -> list[str]:
    script = shutil.which("edge-deeplab") or str(Path(sys.executable).with_name("edge-deeplab"))
    return [script] if Path(script).exists() else [sys.executable, "-m", "edge_deeplab.cli"]


def default_available() -> bool:
    from edge_deeplab.zoo import ZOO, asset_path
    return asset_path(ZOO.get("portrait").meta["artifact"]) is not None


def run_once(model: str, image: Path, out: Path, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([*cli(), "segment", model, str(image), "--out", str(out)],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or not (out / f"{image.stem}.png").is_file():
        raise SystemExit(f"segment failed: {done.stderr.strip()}")
    return elapsed, done


def imported_modules(model: str, image: Path, out: Path) -> set[str]:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    _, done = run_once(model, image, out, env)
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--repeats", type=int, default=7)
    json_option(parser, __file__)
    args = parser.parse_args()

    model, note = args.model, ""
    if model == "default" and not default_available():
        model, note = str(STAND_IN), " (default model not packaged yet: MediaPipe selfie stands in)"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        run_once(model, args.image, out)  # page cache warm, like a second launch on a device
        times = [run_once(model, args.image, out)[0] for _ in range(args.repeats)]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare_python = time.perf_counter() - start
        modules = imported_modules(model, args.image, out)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    print(f"command: edge-deeplab segment {args.model} {args.image.name}{note}\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| cold start, median of {args.repeats} (s) | {statistics.median(times):.3f} |")
    print(f"| cold start, min / max (s) | {min(times):.3f} / {max(times):.3f} |")
    print(f"| bare `python -c pass` (s) | {bare_python:.3f} |")
    print(f"| modules imported | {len(modules)} |")
    print(f"| heavy modules imported ({', '.join(HEAVY[:3])}, ...) | {', '.join(heavy) or 'none'} |")
    print(f"| target < 1 s | {'met' if statistics.median(times) < 1.0 else 'MISSED'} |")
    write_json(args.json, {"command": f"edge-deeplab segment {args.model} {args.image.name}", "model": model,
                           "seconds": times, "median_s": statistics.median(times), "bare_python_s": bare_python,
                           "modules_imported": len(modules), "heavy_modules": heavy})


if __name__ == "__main__":
    main()
