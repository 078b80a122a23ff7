"""Where every benchmark script writes its results: ``benchmarks/results/<script>.json`` by default,
the files ``benchmarks/render.py`` turns into the documents' tables."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def json_option(parser: argparse.ArgumentParser, script: str) -> None:
    """``--json FILE`` defaulting to benchmarks/results/<script's stem>.json (``--json ''``: none)."""
    default = RESULTS / f"{Path(script).stem}.json"
    parser.add_argument("--json", default=str(default),
                        help=f"write the results as JSON here (default: {default.relative_to(RESULTS.parent.parent)}; "
                             "'' for none)")


def write_json(path: str | Path | None, data: Any) -> None:
    """Write ``data`` atomically (nothing half-written if the run dies); no path, nothing written."""
    if not path:
        return
    from edge_deeplab.atomic import atomic_write_text
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")


def machine() -> dict:
    """The CPU a latency was measured on (``search.table.machine``, what the latency tables key on), and
    whether it has int8 dot-product instructions (x86 VNNI, Arm dotprod), which decide whether an int8
    model beats its fp32 twin."""
    from edge_deeplab.search.table import machine as cpu
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    except OSError:
        pass  # not Linux: unknown, reported as without
    return {**cpu(), "int8_dot_product": bool(flags & {"avx512_vnni", "avx_vnni", "asimddot"})}
