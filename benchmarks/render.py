"""Render the documents' tables from benchmarks/results/*.json and the registries: one source of truth.

A table lives between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` in README.md,
benchmarks/README.md (and any file in DOCUMENTS); everything between the markers is generated.

    python benchmarks/render.py           # rewrite the marked blocks in place
    python benchmarks/render.py --check   # exit 1 naming every stale block (tests/test_docs.py does this)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DOCUMENTS = ("README.md", "benchmarks/README.md", "edge_deeplab/assets/MODEL_CARD.md")
MARKER = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)

# Static platform facts per runtime (the registries say which runtime runs which format; these say where
# that runtime was run). ok = exported and verified against the source in CI (Linux x86-64);
# unverified = expected to work, never run by this project; needs ... = cannot run without it.
PLATFORMS = ("Linux x86-64", "macOS", "Coral board")
RUNTIME_PLATFORMS = {
    "litert": ("ok", "unverified", "unverified"),
    "onnxruntime": ("ok", "unverified", "-"),
    "openvino": ("ok", "unverified", "-"),
    "edgetpu": ("needs device", "needs device", "needs device"),
    "coreml": ("needs macOS", "unverified", "-"),
}
# The runtime a format is deployed on, where it is not the one its converter verifies with: the edgetpu
# converter verifies its int8 twin on LiteRT; the compiled `_edgetpu.tflite` needs the Edge TPU.
DEPLOYED_ON = {"edgetpu": "edgetpu"}
# The data each zoo entry's weights were trained on, and its licence (the weights inherit it).
ZOO_DATA = {
    "portrait": "portrait (EG1800): research only; DAVIS, CamVid: CC BY-NC; teachers: MediaPipe (Apache-2.0)",
    "portrait_landscape": "as `portrait`",
    "portrait_tall": "as `portrait` (its weights)",
    "portrait_selfie": "portrait (EG1800): research only",
    "portrait_teacher": "portrait: research only; not shipped",
    "portrait_edgetpu": "architecture only",
    "camvid": "CamVid: CC BY-NC; not shipped",
    "deeplabv3plus_mnv2_voc": "architecture only",
    "lraspp_mnv3_large_voc": "architecture only",
}


def table(header: list[str], rows: list[list[object]], align: str = "") -> str:
    """A markdown table; ``align`` holds one character per column, ``r`` for right-aligned."""
    align = align.ljust(len(header), "l")
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def model_name(path: str) -> str:
    """A results row's model as a reader knows it: `default`, a repo-relative path, or a foreign file's stem."""
    if path == "default":
        return "default (fp32, aspect-matched)"
    if path == "default_int8":
        return "`default_int8` (aspect-matched)"
    return Path(path).stem if Path(path).is_absolute() or " " in path else f"`{path}`"


def people(data: dict) -> str:
    models = data["models"]
    sets = list(models[0]["sets"])
    rows = [[model_name(m["model"]), m["input"], *(f"{m['sets'][s]['person_iou']:.4f}" for s in sets),
             *(f"{m['refined'][s]['person_iou']:.4f}" for s in sets), f"{m['latency_ms']['p50']:.2f}",
             f"{m['p50_ratio_to_mediapipe_selfie']:.2f}", f"{m['size_mb']:.2f}"] for m in models]
    header = ["model", "input (HxW)", *(f"{s} person IoU" for s in sets), *(f"{s} refined" for s in sets), "p50 ms",
              "p50 / MediaPipe selfie", "size MB"]
    text = table(header, rows, "ll" + "r" * (len(header) - 2))
    for s in sets:  # video frames: per-sequence scores show when one clip carries a pooled figure
        sequences = list(models[0]["sets"][s].get("sequences", {}))
        if sequences:
            text += f"\n{s} person IoU per sequence (the models' own masks):\n\n" + table(
                ["model", *sequences], [[model_name(m["model"]), *(f"{m['sets'][s]['sequences'][q]:.4f}"
                                                                   for q in sequences)] for m in models],
                "l" + "r" * len(sequences))
    return text + (f"\nLiteRT, {data['threads']} threads, interleaved timing; person IoU of the models' own masks "
                   "(`evaluate --no-refine`) and refined as `segment` and `evaluate` give a photo's (guided "
                   "filter, every model alike): `python benchmarks/people.py`.\n")


def aspect(data: dict) -> str:
    names = list(data["models"])
    rows = [[r["set"], r["crop"], *(f"{r['person_iou'][n]:.4f}" for n in names)] for r in data["rows"]]
    header = ["set", "centre crop", *(model_name(n) if n == "default" else n for n in names)]
    return table(header, rows, "ll" + "r" * len(names)) + (
        "\nPerson IoU, LiteRT; `default` runs each photo on the variant of nearest aspect (4:3 and wider on "
        "`portrait_landscape`): `python benchmarks/aspect.py`.\n")


def people_summary(data: dict) -> str:
    models = data["models"]
    sets = list(models[0]["sets"])
    rows = [[model_name(m["model"]), *(f"{m['sets'][s]['person_iou']:.3f}" for s in sets),
             *(f"{m['refined'][s]['person_iou']:.3f}" for s in sets),
             f"{m['p50_ratio_to_mediapipe_selfie']:.2f}"] for m in models]
    return table(["model", *(f"{s} person IoU" for s in sets), *(f"{s} refined" for s in sets),
                  "p50 / MediaPipe selfie"], rows, "l" + "r" * (2 * len(sets) + 1))


def zoo(data: dict | None) -> str:
    from edge_deeplab.zoo import DEFAULT, DEFAULT_VARIANTS, INT8_SUFFIX, ZOO, split_int8
    measured = {}
    for m in (data or {}).get("models", []):  # our shipped files and their int8 twins, by zoo name
        base, int8 = split_int8(Path(m["model"]).stem if m["model"].endswith(".tflite") else m["model"])
        if base == DEFAULT:  # the family: its square file's row stands in until one is measured
            measured.setdefault(DEFAULT_VARIANTS[0] + INT8_SUFFIX * int8, m)
        elif base in ZOO:
            measured[base + INT8_SUFFIX * int8] = m
    rows = []
    for entry in ZOO:
        for name in (entry.name, entry.name + INT8_SUFFIX):
            m = measured.get(name)
            if name != entry.name and m is None:
                continue
            ious = " / ".join(f"{s['person_iou']:.3f}" for s in m["sets"].values()) if m else "-"
            rows.append([f"`{name}`", "x".join(map(str, entry.target.input_size)),
                         f"{m['size_mb']:.2f}" if m else "-", ious,
                         f"{m['p50_ratio_to_mediapipe_selfie']:.2f}" if m else "-",
                         ZOO_DATA[entry.name] if name == entry.name else f"as `{entry.name}`"])
    sets = " / ".join(next(iter(measured.values()))["sets"]) if measured else "portrait/val / people/val"
    return table(["name", "input (HxW)", "size MB", f"person IoU ({sets})", "p50 / MediaPipe", "data"], rows, "llrrrl")


def support(_: None) -> str:
    from edge_deeplab.converters import FORMATS
    formats: dict[str, list[str]] = {}
    suffixes: dict[str, set[str]] = {}
    for entry in FORMATS:
        converter = entry.load()
        runtime = DEPLOYED_ON.get(entry.name, converter.runtime)
        formats.setdefault(runtime, []).append(f"`{entry.name}`")
        suffixes.setdefault(runtime, set()).add("_edgetpu.tflite" if runtime == "edgetpu" else converter.suffix)
    rows = [[", ".join(names), ", ".join(f"`{s}`" for s in sorted(suffixes[runtime])), f"`{runtime}`",
             *RUNTIME_PLATFORMS[runtime]] for runtime, names in formats.items()]
    return table(["formats", "file", "runtime", *PLATFORMS], rows)


def compose(data: dict) -> str:
    rows = {(r["revision"], r["case"]): r for r in data["rows"]}
    cases = list(dict.fromkeys(r["case"] for r in data["rows"]))
    out = []
    for case in cases:
        before, after = rows.get(("before", case)), rows.get(("after", case))
        out.append([f"`--mode {case}`", *(f"{r['cpu_s']:.2f}" if r else "-" for r in (before, after)),
                    *(f"{r['peak_rss_mb']}" if r else "-" for r in (before, after)), after["output"]])
    return table(["case", f"CPU s ({data['baseline']})", "CPU s (now)", f"peak MB ({data['baseline']})",
                  "peak MB (now)", "output"], out, "lrrrrl") + (
        f"\n`segment` on a {data['photo']} JPEG, median of {data['runs']} runs: `python benchmarks/compose.py`.\n")


def compose_summary(data: dict) -> str:
    """The cases measured before and after, CPU time and peak memory only."""
    before = {r["case"]: r for r in data["rows"] if r["revision"] == "before"}
    rows = [[f"`--mode {r['case']}`", f"{before[r['case']]['cpu_s']:.2f} -> {r['cpu_s']:.2f}",
             f"{before[r['case']]['peak_rss_mb']} -> {r['peak_rss_mb']}"]
            for r in data["rows"] if r["revision"] == "after" and r["case"] in before]
    return table(["12 MP JPEG", f"CPU s ({data['baseline']} -> now)", "peak MB"], rows, "lrr")


def refine(data: dict) -> str:
    rows = [[name, f"{r['person_iou']:.4f}", f"{r['boundary_iou']:.4f}", f"{r['ms_per_image']:.1f}"]
            for name, r in (("`--no-refine`", data["refine"]["off"]), ("`--refine`", data["refine"]["on"]))]
    return table(["edges", "person IoU", "boundary IoU", "CPU ms per image"], rows, "lrrr") + (
        f"\n`{data['model']}` on {Path(data['data']).parent.name}/{Path(data['data']).name} "
        f"({data['images']} images): `python benchmarks/refine.py`.\n")


def video(data: dict) -> str:
    rows = []
    for model, sequences in data["smoothing"]["models"].items():
        a = sequences["all"]
        refined = a.get("refined", {})
        rows.append([model_name(model), a["plain"]["frames"], f"{a['plain']['flicker']:.4f}",
                     f"{a['smooth']['flicker']:.4f}", f"{a['plain']['person_iou']:.4f}",
                     f"{a['smooth']['person_iou']:.4f}",
                     *(f"{refined[k]:.4f}" if refined else "-" for k in ("flicker", "person_iou"))])
    p = data["smoothing"]["parameters"]
    speed = ""
    if "realtime" in data:
        rt, clip = data["realtime"], data["realtime"]["clip"]
        speed = (f"\n`segment {rt['model']} clip.mp4 --mode blur` on a {clip['width']}x{clip['height']} {clip['fps']} fps "
                 f"clip of {clip['frames']} frames ({clip['seconds']:.2f} s): {rt['wall_s_median']:.2f} s wall, "
                 f"{rt['cpu_s_median']:.2f} CPU s, {rt['end_to_end_fps']:.1f} fps end to end; in-process pipeline "
                 f"{rt['pipeline_fps']:.1f} fps vs {rt['sequential_fps']:.1f} in one thread; model alone "
                 f"{rt['model_only_fps']:.0f} fps"
                 + (f"; with `--refine` {rt['refine_end_to_end_fps']:.1f} fps end to end" if "refine_end_to_end_fps" in rt
                    else "") + ".\n")
    return table(["model", "frames", "flicker, `--no-smooth`", "flicker, `--smooth`", "person IoU, `--no-smooth`",
                  "person IoU, `--smooth`", "flicker, `--smooth --refine`", "person IoU, `--smooth --refine`"],
                 rows, "lrrrrrrr") + (
        f"\nOn {', '.join(data['smoothing']['sequences'])} (people/val); smoothing rate {p['rate']}, motion "
        f"{p['motion']}, hysteresis {p['hysteresis']} (tuned on people/train): `python benchmarks/video.py`.\n") + speed


def edgetpu_pairs(data: dict) -> str:
    def first(side: dict) -> str:
        op = side.get("first_cpu_op")
        return f"#{op['index']} {op['op']}" if op else "-"
    rows = [[p["pair"], p["ops_total"], p["report"]["ops_on_edgetpu"], p["compiler"]["ops_on_edgetpu"],
             first(p["report"]), ", ".join(p["flags"]) or "-", "yes" if p["agrees"] else "no"]
            for p in data["pairs"]]
    return table(["model", "ops", "report: on Edge TPU", "compiler: on Edge TPU", "first CPU op (report)",
                  "flags", "every op placed alike"], rows, "lrrrlll") + (
        "\nAgainst `edgetpu_compiler`'s own logs for the reference pairs: `python benchmarks/edgetpu_pairs.py`.\n")


def precision_parity(data: dict) -> str:
    rows = [[r["candidate"], f"`{r['runtime']}`", r["precision"], f"{100 * r['pixel_agreement']:.2f}%",
             r["images"]] for r in data["rows"]]
    return table(["engine", "runtime", "precision", "pixels agree with TFLite fp32", "images"], rows, "lllrr") + (
        f"\n`{data['source']}` on {Path(data['data']).parent.name}/{Path(data['data']).name}: "
        "`python benchmarks/precision_parity.py`.\n")


def machine_name(machine: dict) -> str:
    """``results_io.machine()`` as a reader reads it."""
    return (f"{machine['cpu']}, {machine['cores']} cores, "
            f"{'with' if machine['int8_dot_product'] else 'no'} int8 dot-product instructions")


def interleave(data: dict) -> str:
    rows = [[f"`{mode}`" if mode.startswith("--") else mode, f"{r['median']:.3f}", f"{r['min']:.3f}",
             f"{r['max']:.3f}", f"{r['spread']:.2f}"] for mode, r in data["modes"].items()]
    a, b = (model_name(m) for m in data["models"])
    return table(["rows timed", "median", "min", "max", "max / min"], rows, "lrrrr") + (
        f"\np50 of {b} over p50 of {a}, {data['repeats']} `benchmark` runs each, alternating ({data['runs']} runs, "
        f"{data['threads']} threads), "
        + (f"every core loaded half of each {data['load_period_s']:g} s" if data["load_period_s"] else "no added load")
        + (f", on {machine_name(data['machine'])}" if "machine" in data else "")
        + ": `python benchmarks/interleave.py`.\n")


def edgetpu_summary(data: dict) -> str:
    rows = [[p["pair"], p["ops_total"], p["report"]["ops_on_edgetpu"], p["compiler"]["ops_on_edgetpu"],
             "yes" if p["agrees"] else "no"] for p in data["pairs"]]
    return table(["model", "ops", "report: on Edge TPU", "compiler: on Edge TPU", "every op placed alike"],
                 rows, "lrrrl")


# name -> (results file or None for a registry-only table, renderer)
BLOCKS: dict[str, tuple[str | None, Callable]] = {
    "people": ("people.json", people),
    "people_summary": ("people.json", people_summary),
    "aspect": ("aspect.json", aspect),
    "zoo": ("people.json", zoo),
    "support": (None, support),
    "compose": ("compose.json", compose),
    "compose_summary": ("compose.json", compose_summary),
    "refine": ("refine.json", refine),
    "video": ("video.json", video),
    "edgetpu_pairs": ("edgetpu_pairs.json", edgetpu_pairs),
    "edgetpu_summary": ("edgetpu_pairs.json", edgetpu_summary),
    "precision_parity": ("precision_parity.json", precision_parity),
    "interleave": ("interleave.json", interleave),
}
OPTIONAL = {"zoo"}  # renders (without figures) before its results exist


def render_block(name: str, results: Path = RESULTS) -> str:
    if name not in BLOCKS:
        raise ValueError(f"unknown results block {name!r}; known: {', '.join(BLOCKS)}")
    file, render = BLOCKS[name]
    if file is None:
        return render(None)
    path = results / file
    if not path.is_file():
        if name in OPTIONAL:
            return render(None)
        script = f"benchmarks/{Path(file).stem}.py"
        return f"_Not measured yet: `python {script}` writes `benchmarks/results/{file}`._\n"
    return render(json.loads(path.read_text()))


def render_text(text: str, results: Path = RESULTS) -> str:
    """``text`` with every marked block regenerated."""
    return MARKER.sub(lambda m: m.group(1) + render_block(m.group("name"), results) + m.group(4), text)


def stale(root: Path = ROOT, results: Path = RESULTS) -> dict[Path, str]:
    """Each document whose marked blocks differ from what the results give, with its rendered text."""
    out = {}
    for document in DOCUMENTS:
        path = root / document
        text = path.read_text()
        rendered = render_text(text, results)
        if rendered != text:
            out[path] = rendered
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale documents (exit 1 if any)")
    args = parser.parse_args()
    try:
        changed = stale()
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        sys.exit(f"error: {exc}")
    for path, text in changed.items():
        if args.check:
            print(f"stale: {path.relative_to(ROOT)} (run python benchmarks/render.py)")
        else:
            from edge_deeplab.atomic import atomic_write_text
            atomic_write_text(path, text)
            print(f"rendered {path.relative_to(ROOT)}")
    sys.exit(1 if args.check and changed else 0)


if __name__ == "__main__":
    main()
