"""The latency lookup table: kernel and candidate latencies measured on one machine, runtime, precision
and thread count, kept in one JSON file and reused across searches.

Default location: ``$EDGE_DEEPLAB_CACHE/latency/`` (else ``~/.cache/edge-deeplab/latency/``), one file
per machine (CPU model, architecture, core count) x runtime x precision x threads x tool versions. ``--latency-table``
points at another file, e.g. one measured on a device this machine does not have.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from edge_deeplab.atomic import atomic_write_text
from edge_deeplab.errors import ConfigError
from edge_deeplab.models.config import ModelConfig
from edge_deeplab.search.kernels import Kernel

VERSION = 1


# Bump when measure.Meter times differently: tables of the old protocol are not comparable.
TIMING_PROTOCOL = "lowest median of rounds; candidates timed twice, seconds apart; slow surprises again"


def machine() -> dict[str, Any]:
    """What makes latencies comparable between runs: same CPU, same core count."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "arch": platform.machine(), "cores": os.cpu_count(), "system": platform.system()}


def default_path(runtime: str, precision: str, threads: int | None, versions: dict[str, str] | None = None) -> Path:
    """The per-machine cache file; ``versions`` (converter and runtime packages) start a new file when
    they change, since kernels may convert or run differently."""
    base = os.environ.get("EDGE_DEEPLAB_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "edge-deeplab"
    identity = {"machine": machine(), "versions": versions or {}, "timing": TIMING_PROTOCOL}
    fingerprint = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return root / "latency" / f"{runtime}-{precision}-threads{threads or 'default'}-{fingerprint}.json"


class LatencyTable:
    """Measured latencies (ms): ``kernels`` by kernel key, ``candidates`` by candidate key, plus the
    kernel lists of candidates already built (``structures``), so pricing them again needs no build."""

    def __init__(self, path: Path, runtime: str, precision: str, threads: int | None) -> None:
        self.path = Path(path)
        self.header = {"version": VERSION, "runtime": runtime, "precision": precision, "threads": threads,
                       "machine": machine()}
        self.overhead_ms: float | None = None  # one invoke of a near-empty model
        self.kernels: dict[str, float] = {}
        self.kernel_defs: dict[str, Kernel] = {}
        self.candidates: dict[str, dict[str, Any]] = {}  # key -> {"config": dict, "latency_ms": float}
        self.structures: dict[str, list[str]] = {}  # candidate key -> kernel keys, in order

    @classmethod
    def open(cls, path: str | Path, runtime: str, precision: str, threads: int | None,
             must_exist: bool = False) -> LatencyTable:
        """Load ``path`` if it exists (checking it was measured for this runtime/precision/threads)."""
        table = cls(Path(path), runtime, precision, threads)
        if not table.path.is_file():
            if must_exist:
                raise ConfigError(f"latency table not found: {table.path}")
            return table
        try:
            data = json.loads(table.path.read_text())
            header = data["header"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{table.path} is not a latency table ({type(exc).__name__}: {exc}); "
                              "delete it or point --latency-table elsewhere") from None
        for key in ("runtime", "precision", "threads"):
            if header.get(key) != table.header[key]:
                raise ConfigError(f"latency table {table.path} was measured with {key} "
                                  f"{header.get(key)!r}, not {table.header[key]!r}; use a table measured "
                                  "for this setting, or another --latency-table path")
        table.header["machine"] = header.get("machine", table.header["machine"])
        table.overhead_ms = data.get("overhead_ms")
        table.kernels = {k: float(v) for k, v in data.get("kernels", {}).items()}
        table.kernel_defs = {k: Kernel.from_dict(v) for k, v in data.get("kernel_defs", {}).items()}
        table.candidates = data.get("candidates", {})
        table.structures = data.get("structures", {})
        return table

    def save(self) -> None:
        data = {"header": self.header, "overhead_ms": self.overhead_ms, "kernels": self.kernels,
                "kernel_defs": {k: v.to_dict() for k, v in self.kernel_defs.items()},
                "candidates": self.candidates, "structures": self.structures}
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True))

    def structure(self, key: str) -> list[Kernel] | None:
        keys = self.structures.get(key)
        return None if keys is None else [self.kernel_defs[k] for k in keys]

    def add_structure(self, key: str, kernels: list[Kernel]) -> None:
        for kernel in kernels:
            self.kernel_defs.setdefault(kernel.key, kernel)
        self.structures[key] = [k.key for k in kernels]

    def add_candidate(self, key: str, config: ModelConfig, latency_ms: float) -> None:
        self.candidates[key] = {"config": config.to_dict(), "latency_ms": round(latency_ms, 4)}
