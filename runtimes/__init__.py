"""Inference engines behind one :class:`Runtime` interface. Importing this imports no engine."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_deeplab.errors import BadModelError, RuntimeUnavailableError
from edge_deeplab.registry import Entry, Registry

if TYPE_CHECKING:
    from edge_deeplab.runtimes.base import Runtime

RUNTIMES = Registry("runtime")
RUNTIMES.register("litert", "edge_deeplab.runtimes.litert:LiteRTRuntime",
                  "LiteRT (TFLite) interpreter, XNNPACK", suffixes=(".tflite",))
RUNTIMES.register("edgetpu", "edge_deeplab.runtimes.edgetpu:EdgeTPURuntime",
                  "LiteRT with the libedgetpu delegate on a Coral device", suffixes=("_edgetpu.tflite",))
RUNTIMES.register("openvino", "edge_deeplab.runtimes.openvino:OpenVINORuntime",
                  "OpenVINO on the CPU (.xml IR, also .onnx/.tflite)", suffixes=(".xml",))
RUNTIMES.register("onnxruntime", "edge_deeplab.runtimes.onnxruntime:ONNXRuntime",
                  "ONNX Runtime, CPU execution provider", suffixes=(".onnx",))
RUNTIMES.register("coreml", "edge_deeplab.runtimes.coreml:CoreMLRuntime",
                  "Core ML (macOS only)", suffixes=(".mlpackage", ".mlmodel"))


def resolve_model(model: str | Path) -> Path:
    """An artifact path, ``default`` (the packaged portrait model), a zoo name that ships an artifact
    (``portrait``), or either with ``_int8`` for its int8 file (``default_int8``, ``portrait_int8``). A
    path that exists wins over a zoo name of the same spelling (not over ``default``)."""
    name = str(model)
    if Path(name).suffix or "/" in name or "\\" in name:  # no zoo name looks like this: skip the zoo's import
        return Path(model)
    from edge_deeplab.zoo import DEFAULT, DEFAULT_VARIANTS, ZOO, asset_path, split_int8
    base, int8 = split_int8(name)
    if base != DEFAULT and (Path(name).exists() or base not in ZOO):
        return Path(model)  # a file, or not a zoo name: reported as a missing file by the caller
    entry = ZOO.get(DEFAULT_VARIANTS[0] if base == DEFAULT else base)
    artifact = entry.meta.get("int8_artifact" if int8 else "artifact")
    if artifact is None and int8:
        raise BadModelError(f"zoo model {base!r} ships no int8 file; export one (edge-deeplab export {base} "
                            "--format tflite-int8 --calibration DIR) and pass the .tflite")
    if artifact is None:
        if entry.meta.get("weights"):
            raise BadModelError(f"zoo model {name!r} ships no runnable artifact; export it first "
                                f"(edge-deeplab export {name} --format tflite) and pass the .tflite")
        raise BadModelError(f"zoo model {name!r} ships no runnable artifact and no trained weights; train it "
                            f"and export the run folder, or for latency alone export it first with random "
                            f"weights (edge-deeplab export {name} --format tflite --random-weights) and pass "
                            "the .tflite")
    path = asset_path(artifact)
    if path is None:
        what = f"the default portrait model{' (int8)' if int8 else ''}" if base == DEFAULT else f"zoo model {name!r}"
        raise BadModelError(f"{what} (edge_deeplab/assets/{artifact}) is not packaged in "
                            "this install; pass a model path, or reinstall edge-deeplab")
    return path


def runtime_for(path: str | Path, runtime: str = "auto") -> Entry:
    """The registry entry for ``runtime``; ``auto`` picks the longest registered suffix of ``path``."""
    if runtime != "auto":
        return RUNTIMES.get(runtime)
    name = str(path).lower()
    matches = [(len(suffix), entry) for entry in RUNTIMES for suffix in entry.meta.get("suffixes", ())
               if name.endswith(suffix)]
    if not matches:
        known = sorted({s for entry in RUNTIMES for s in entry.meta.get("suffixes", ())})
        raise BadModelError(f"cannot tell the model format of {path} from its name; expected one of "
                            f"{', '.join(known)}, or pass --runtime")
    return max(matches, key=lambda match: match[0])[1]


def precision_choices() -> list[str]:
    """Every precision some registered engine can be asked for (``--precision``'s valid values)."""
    return sorted({p for entry in RUNTIMES for p in entry.load().precisions})


def check_precision(precision: str) -> None:
    """An UnknownChoiceError unless some engine offers ``precision``."""
    if precision not in precision_choices():
        from edge_deeplab.errors import UnknownChoiceError
        raise UnknownChoiceError("precision", precision, precision_choices())


def check_threads(threads: object) -> int | None:
    """``threads`` as an int, or a ConfigError naming the argument unless it is None or >= 1."""
    import numbers
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        from edge_deeplab.errors import ConfigError
        raise ConfigError(f"threads={threads!r}: expected a whole number of CPU threads, 1 or more "
                          "(or None for the engine's own default)")
    return int(threads)


def check_suffix(path: Path, entry: Entry, model: str | Path | None = None) -> None:
    """A BadModelError if ``path``'s suffix belongs to other engines but not ``entry``'s: before the engine
    parses it, whose own error ("Protobuf parsing failed") would not say the file is simply the wrong kind.
    A suffix no engine claims is left to the engine (``--runtime`` names the format then)."""
    name = str(path).lower()
    if any(name.endswith(suffix) for suffix in entry.load().accepts):
        return
    takers = [other.name for other in RUNTIMES if other.name != entry.name
              and any(name.endswith(suffix) for suffix in other.load().accepts)]
    if not takers:
        return
    claimed = [s for other in RUNTIMES for s in (*other.meta.get("suffixes", ()), *other.load().accepts)
               if name.endswith(s)]
    kind = max(claimed, key=len)
    first = runtime_for(path).name
    first = first if first in takers else takers[0]  # what auto picks comes first
    others = f" (also {', '.join(t for t in takers if t != first)})" if len(takers) > 1 else ""
    source = "SOURCE"
    if model is not None and Path(str(model)) != path:  # a zoo name: say which one to export
        from edge_deeplab.zoo import DEFAULT, DEFAULT_VARIANTS, split_int8
        base = split_int8(str(model))[0]
        source = DEFAULT_VARIANTS[0] if base == DEFAULT else base
    cls = entry.load()
    raise BadModelError(
        f"{path}: {entry.name} loads {', '.join(cls.accepts)} models, not {kind}; {kind} files run on "
        f"{first}{others}: pass --runtime {first} or leave it auto. To run on {entry.name}, export one for it: "
        f"edge-deeplab export {source} --format {cls.export_format}")


def load_runtime(model: str | Path, runtime: str = "auto", threads: int | None = None,
                 profile_ops: bool = False, verify: bool = True, precision: str | None = None) -> Runtime:
    """Load ``model`` (a path or ``default``) on ``runtime``, with errors that say how to fix them.

    ``threads``: None (the engine's default) or >= 1 (else ConfigError). ``verify``: check the files
    against the sha256 of a manifest beside them (``ChecksumError``). ``precision``: inference precision
    for engines that offer a choice (OpenVINO: f32 unless asked); one no engine offers is an
    UnknownChoiceError, and asking an engine that computes in the model's own types is a ConfigError.
    A file whose suffix belongs to other engines (a ``.tflite`` on onnxruntime) is a BadModelError.
    """
    threads = check_threads(threads)
    path = resolve_model(model)
    if not path.exists():
        raise BadModelError(f"model file not found: {path}")
    entry = runtime_for(path, runtime)
    check_suffix(path, entry, model)
    if verify:
        from edge_deeplab.runtimes.integrity import check_artifact
        check_artifact(path)  # only when a manifest with digests sits beside it
    cls = entry.load()
    reason = cls.unavailable_reason()
    if reason is not None:
        raise RuntimeUnavailableError(f"runtime {entry.name!r} cannot run here: {reason}")
    if precision is not None:
        if not cls.precisions:
            check_precision(precision)  # a made-up value is named as such, not as one this engine lacks
            from edge_deeplab.errors import ConfigError
            takers = [e for e in RUNTIMES if e.load().precisions]
            offer = "; ".join(f"{e.name} ({', '.join(e.load().precisions)})" for e in takers)
            raise ConfigError(f"precision {precision!r}: {entry.name} has no precision choice (it computes in the "
                              f"model's own types); precision applies to {offer}: leave --precision unset, or "
                              f"pass --runtime {'/'.join(e.name for e in takers)}")
        if precision not in cls.precisions:
            from edge_deeplab.errors import UnknownChoiceError
            raise UnknownChoiceError(f"{entry.name} precision", precision, cls.precisions)
        return cls(path, threads=threads, profile_ops=profile_ops, precision=precision)
    return cls(path, threads=threads, profile_ops=profile_ops)
