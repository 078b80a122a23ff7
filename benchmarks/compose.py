"""What a 12 MP photo costs through ``edge-deeplab segment``, per mode: wall time of the whole command
(process start included), CPU time and peak memory, now and at a baseline revision, in one run.

The photo is a portrait/val image upscaled to 4000x3000 (JPEG, quality 92), as phones take them. The
baseline is the same command from a git revision's source tree (extracted to a temporary folder and
put first on PYTHONPATH, so it runs that revision's code against this environment's packages).

    python benchmarks/compose.py [--baseline a94700f|none] [--runs 3] [--json benchmarks/results/compose.json]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from results_io import json_option, write_json


ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
VAL = REPO.parent / "shared" / "data" / "portrait" / "val" / "images"
BASELINE = "a94700f"  # the last revision before composition was reworked (issue 18, item 5)
# (label, arguments after `segment default PHOTO`); the baseline has no matte, cutout, --refine.
CASES = [("mask", ["--mode", "mask"]), ("overlay", ["--mode", "overlay"]), ("blur", ["--mode", "blur"]),
         ("blur --no-refine", ["--mode", "blur", "--no-refine"]), ("replace", ["--mode", "replace"]),
         ("matte", ["--mode", "matte"]), ("cutout", ["--mode", "cutout"])]
BASELINE_CASES = ("mask", "overlay", "blur", "replace")
# The child names the package it imported on stderr's first line, so a baseline run is checked to be one.
CLI = "import sys, edge_deeplab.cli as cli; print(cli.__file__, file=sys.stderr); cli.main()"
REPORTED = re.compile(r"->\s+(\S+)\s+([\d.]+) ms \(model ([\d.]+) ms\)")


def make_photo(folder: Path, size: tuple[int, int] = (3000, 4000)) -> tuple[Path, Path]:
    """A 12 MP portrait JPEG and a backdrop for replace, from the val images."""
    images = sorted(VAL.iterdir())
    photo, backdrop = folder / "photo.jpg", folder / "backdrop.jpg"
    Image.open(images[0]).convert("RGB").resize(size, Image.BICUBIC).save(photo, quality=92)
    Image.open(images[1]).convert("RGB").save(backdrop, quality=92)
    return photo, backdrop


def baseline_tree(revision: str, folder: Path) -> Path:
    """``revision``'s package laid out as installed (runtimes, converters, calibration inside it)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "edge_deeplab", "runtimes",
                              "converters", "calibration"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for sub in ("runtimes", "converters", "calibration"):
        (folder / sub).rename(folder / "edge_deeplab" / sub)
    return folder


def run_once(args: list[str], env: dict, folder: Path) -> dict:
    """One child process: wall seconds, its own peak RSS (MB, from wait4) and what it printed."""
    with open(folder / "stdout", "w+") as out, open(folder / "stderr", "w+") as err:
        start = time.perf_counter()
        # cwd: `python -c` puts the working folder first on sys.path, ahead of PYTHONPATH's baseline tree.
        child = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=out, stderr=err, env=env, text=True,
                                 cwd=folder)
        _, status, usage = os.wait4(child.pid, 0)  # not child.wait(): wait4 also returns the child's rusage
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"error: segment {' '.join(args)} failed: {stderr.strip().splitlines()[-1:]}")
    match = REPORTED.search(stdout)
    if match is None:
        raise SystemExit(f"error: segment {' '.join(args)} printed no timing line: {stdout!r}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "in_process_ms": float(match.group(2)), "output": match.group(1), "package": stderr.splitlines()[0]}


def measure(label: str, args: list[str], env: dict, runs: int, folder: Path) -> dict:
    samples = [run_once(args, env, folder) for _ in range(runs)]
    tree = env.get("PYTHONPATH")
    if tree and not samples[0]["package"].startswith(tree):
        raise SystemExit(f"error: the baseline run imported {samples[0]['package']}, not the tree in {tree}")
    output = Path(samples[0]["output"])
    return {"case": label, "wall_s": round(statistics.median(s["wall_s"] for s in samples), 2),
            "cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 2),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in samples)),
            "in_process_ms": round(statistics.median(s["in_process_ms"] for s in samples)),
            "output": output.suffix, "output_mb": round(output.stat().st_size / 1e6, 2)}


def table(result: dict) -> str:
    rows = {(r["revision"], r["case"]): r for r in result["rows"]}
    lines = [f"`segment default` on a {result['photo']} JPEG (median of {result['runs']} runs; peak RSS: "
             "the most of any run)", "",
             "| mode | before: wall s | CPU s | peak MB | after: wall s | CPU s | peak MB | in-process ms | output |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, _ in CASES:
        after, before = rows.get(("after", label)), rows.get(("before", label))
        old = f"{before['wall_s']} | {before['cpu_s']} | {before['peak_rss_mb']}" if before else "- | - | -"
        lines.append(f"| {label} | {old} | {after['wall_s']} | {after['cpu_s']} | {after['peak_rss_mb']} | "
                     f"{after['in_process_ms']} | {after['output']} ({after['output_mb']} MB) |")
    lines += ["", f"before = git {result['baseline']}; after = this tree. CPU s = the process's user + system "
              "time (steadier than wall time on a busy machine). In-process ms = what segment prints for "
              "the image (model + decode of its output + composition), without reading and writing files."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with, or `none`")
    parser.add_argument("--runs", type=int, default=3)
    json_option(parser, __file__)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo, backdrop = make_photo(folder)
        trees = [("after", dict(os.environ))]
        if args.baseline != "none":
            (folder / "baseline").mkdir()
            old = baseline_tree(args.baseline, folder / "baseline")
            trees.append(("before", {**os.environ, "PYTHONPATH": str(old)}))
        rows = []
        for revision, env in trees:
            for label, extra in CASES:
                if revision == "before" and label not in BASELINE_CASES:
                    continue
                extra = [*extra, "--background", str(backdrop)] if "replace" in extra else extra
                out = folder / f"{revision}_{label.replace(' ', '_')}"
                row = measure(label, ["segment", "default", str(photo), *extra, "--out", str(out)], env,
                              args.runs, folder)
                rows.append({"revision": revision, **row})
                print(f"{revision} {label}: {row['wall_s']} s, {row['peak_rss_mb']} MB", file=sys.stderr)
        with Image.open(photo) as image:
            size = f"{image.width}x{image.height} ({image.width * image.height / 1e6:.0f} MP)"
    result = {"photo": size, "runs": args.runs, "baseline": args.baseline, "rows": rows}
    write_json(args.json, result)
    print(table(result))


if __name__ == "__main__":
    main()
