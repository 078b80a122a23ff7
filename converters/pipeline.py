"""Export one source to several formats: convert in a staging folder, verify, then publish atomically."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_deeplab.calibration.synthetic import SOURCE as SYNTHETIC, synthetic_set
from edge_deeplab.converters import FORMATS
from edge_deeplab.converters.base import Artifact, Converter, ExportOptions, check_converters
from edge_deeplab.converters.manifest import build_manifest, embedded_metadata, manifest_path, write_manifest
from edge_deeplab.converters.native_log import native_stderr_held
from edge_deeplab.converters.parity import Parity, artifact_labels, compare, judge, reference_labels
from edge_deeplab.errors import DatasetError, EdgeDeeplabError, ParityError, UntrainedModelError

if TYPE_CHECKING:
    from edge_deeplab.calibration import CalibrationSet
    from edge_deeplab.sources import Source


# ok: written and verified against the source here; unverified: written, but nothing here can run it
# (the reason says why); skipped: verified, but a step could not run here (edgetpu_compiler); failed:
# nothing written (the reason says why).
STATUSES = ("ok", "unverified", "skipped", "failed")


@dataclass
class ExportResult:
    """One row of ``export --json``."""

    format: str
    status: str  # one of STATUSES
    path: Path | None
    size_mb: float | None
    reason: str | None = None
    parity: Parity | None = None
    manifest: Path | None = None
    summary: str | None = None  # extra line for the log, not part of the JSON contract
    error: EdgeDeeplabError | None = None  # why a failed row failed (ParityError, DatasetError, ...)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"format": self.format, "status": self.status,
                               "path": str(self.path) if self.path else None, "size_mb": self.size_mb}
        if self.reason:
            row["reason"] = self.reason
        if self.parity is not None:
            row["parity"] = self.parity.to_dict()
        return row


class ParityImages:
    """The images every artifact is compared on, and the source model's maps of them (computed once per
    output kind, late: a fused-argmax artifact is compared with the source's argmax, a logits one with
    the source's logits decoded as ``segment`` decodes logits)."""

    def __init__(self, images: "CalibrationSet", model: Any) -> None:
        self.images, self._model = images, model
        self._references: dict[str, np.ndarray] = {}

    def reference(self, output: str) -> np.ndarray:
        if output not in self._references:
            self._references[output] = reference_labels(self._model, self.images, output)
        return self._references[output]


def make_converters(formats: list[str], options: ExportOptions) -> list[Converter]:
    """Instantiate and check every format first, so a typo or missing extra fails before any work."""
    converters = [FORMATS.load(name)(options) for name in formats]
    check_converters(converters)
    return converters


def export(source: "Source", converters: list[Converter], out_dir: str | Path,
           calibration: "CalibrationSet | None", log: Callable[[str], None] = lambda _: None,
           allow_random_weights: bool = False) -> list[ExportResult]:
    """Export ``source`` with each converter into ``out_dir``; one :class:`ExportResult` per format.

    Formats are independent: one that fails (no calibration images for post-training quantization, an
    unsupported op, parity below its threshold) is a ``failed`` row and the others are still written.
    ``calibration`` feeds post-training quantization and, its first ``parity_images``, the parity check;
    without it parity runs on synthetic scenes against the source model. A QAT checkpoint's float
    formats export the float weights its QAT started from. A source without trained weights raises
    :class:`UntrainedModelError` unless ``allow_random_weights``.
    """
    if source.random_init and not allow_random_weights:
        raise UntrainedModelError(untrained_message(source))
    if not converters:
        return []
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = converters[0].options  # make_converters gives them all the same
    if calibration is not None:
        images = calibration.subset(options.parity_images)
    else:  # still compare with the source model, on seeded synthetic scenes; the manifest says so
        images = synthetic_set(source.config.input_size, min(options.parity_images, 8), options.seed)
    float_source = _float_source(source, converters, log)
    checks: dict[int, ParityImages] = {}
    results = []
    for converter in converters:
        chosen = float_source if float_source is not None and converter.precision != "int8" else source
        if id(chosen) not in checks:  # parity is always against the model the artifact came from
            checks[id(chosen)] = ParityImages(images, chosen.model)
        started = time.perf_counter()
        if converter.needs_calibration(chosen) and calibration is None:
            result = _failed(converter, DatasetError(
                f"{converter.name} post-training quantization needs representative images: pass "
                "--calibration DIR (an image folder or a dataset split)"))
        else:
            log(f"{converter.name}: converting {chosen.name}")
            try:
                result = export_one(converter, chosen, out_dir, calibration, checks[id(chosen)])
            except EdgeDeeplabError as exc:  # this format's own problem (e.g. an unsupported op)
                result = _failed(converter, exc)
        log(f"{_summary(result)} [{time.perf_counter() - started:.1f} s]")
        if result.summary:
            log(f"  {result.summary}")
        results.append(result)
    if created and not any(out_dir.iterdir()):
        out_dir.rmdir()  # every format failed: leave nothing behind
    return results


def untrained_message(source: "Source") -> str:
    """Why a source without trained weights is refused, and the two ways on."""
    what = (f"zoo model {source.name!r} ships no trained weights" if source.origin == "zoo"
            else f"{source.name!r} is a model config without trained weights")
    model = source.name if source.origin == "zoo" else "<that config>"
    return (f"{what}: its export would hold a randomly initialized model, fit for latency measurements "
            f"only. Pass --random-weights to export it anyway, or train it first (edge-deeplab train "
            f"--config <training config with model: {model}> --data DIR --out runs/{source.name}) and "
            f"export the run folder (edge-deeplab export runs/{source.name} ...)")


def _failed(converter: Converter, error: EdgeDeeplabError) -> ExportResult:
    return ExportResult(converter.name, "failed", None, None, f"{error}; nothing written", error=error)


def _float_source(source: "Source", converters: list[Converter], log: Callable[[str], None]) -> "Source | None":
    """The float twin of a QAT checkpoint when some format is float, else None (all take ``source``)."""
    if all(c.precision == "int8" for c in converters):
        return None
    from edge_deeplab.sources import float_twin
    with native_stderr_held():
        twin = float_twin(source)
    if twin is not None:
        log(f"note: float formats export {twin.weights} (the float weights QAT started from); "
            f"int8 formats export the QAT weights {source.weights}")
    return twin


def export_one(converter: Converter, source: "Source", out_dir: Path, calibration: "CalibrationSet | None",
               checks: "ParityImages") -> ExportResult:
    """Convert into a private staging folder; publish artifact + manifest only if verification passes."""
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{converter.name}-"))
    try:
        with native_stderr_held():
            artifact = converter.convert(source, calibration, staging / converter.artifact_name(source.name))
            converter.embed_metadata(artifact, embedded_metadata(source, converter, artifact))
            parity, note, failed = _verify(converter, artifact, source, checks)
        if failed is not None:
            return ExportResult(converter.name, "failed", None, None, f"{failed}; nothing written", parity,
                                error=failed)
        notes = [n for n in (*_notes(source), artifact.skipped, note) if n]
        staged_manifest = manifest_path(artifact.path)
        write_manifest(staged_manifest, build_manifest(converter, source, artifact, parity, calibration, notes))
        for item in [*artifact.files, staged_manifest]:
            _publish(item, out_dir / item.name, staging)
        reason = "; ".join(r for r in (artifact.skipped, note) if r) or None
        status = "unverified" if parity is None else "skipped" if artifact.skipped else "ok"
        return ExportResult(converter.name, status, out_dir / artifact.path.name,
                            round(_size(out_dir, artifact) / 1e6, 3), reason, parity,
                            out_dir / staged_manifest.name, artifact.summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify(converter: Converter, artifact: Artifact, source: "Source",
            checks: "ParityImages") -> tuple[Parity | None, str | None, ParityError | None]:
    """(parity or None if it cannot run here, a note for the manifest, why the export fails or None)."""
    unverifiable = converter.verify(artifact)
    if unverifiable:
        return None, unverifiable, None
    parity, unavailable = _check_parity(converter, artifact, checks, source.config.num_classes)
    if parity is None:
        return None, unavailable, None
    bad, note = judge(parity, converter.precision, converter.options, qat=source.qat)
    if bad is not None and source.random_init:
        # Random weights give near-tie logits (activations shrink layer by layer), so float noise flips
        # classes; such an artifact is still right for latency work: report the figures, don't fail.
        return parity, f"{bad} (not enforced: the source model is randomly initialized)", None
    return parity, note, ParityError(bad) if bad is not None else None


def _check_parity(converter: Converter, artifact: Artifact, checks: "ParityImages",
                  num_classes: int) -> tuple[Parity | None, str | None]:
    from edge_deeplab.runtimes import RUNTIMES

    runtime_cls = RUNTIMES.load(converter.runtime)
    unavailable = runtime_cls.unavailable_reason()
    if unavailable:
        return None, f"parity not checked: the {converter.runtime} runtime is unavailable ({unavailable})"
    runtime = runtime_cls(artifact.verify_path or artifact.path)
    labels = artifact_labels(runtime, checks.images)
    return compare(checks.reference(artifact.output), labels, num_classes, checks.images.masks,
                   checks.images.source), None


def _notes(source: "Source") -> list[str]:
    if source.random_init:
        return [f"{source.name} has no trained weights available: this artifact holds a randomly "
                "initialized model (parity still verifies the conversion, not accuracy)"]
    return []


def _publish(staged: Path, final: Path, staging: Path) -> None:
    """``os.replace`` a staged file or folder onto ``final``; an old folder is swapped out, then removed."""
    if final.is_dir() and not final.is_symlink():
        old = staging / f".old-{final.name}"
        os.replace(final, old)
    os.replace(staged, final)


def _size(out_dir: Path, artifact: Artifact) -> int:
    total = 0
    for item in artifact.files:
        path = out_dir / item.name
        total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    return total


def parity_figures(parity: Parity) -> str:
    """``mIoU delta -0.09 pts (artifact - source) on 3 images``, saying when no masks scored it."""
    delta = round(parity.miou_delta, 2) + 0.0  # + 0.0: a rounded -0.0 prints as +0.00
    figures = f"mIoU delta {delta:+.2f} pts (artifact - source) on {parity.images}"
    if parity.data == SYNTHETIC:  # a figure from noise must not read as an accuracy change
        return f"{figures} synthetic images, scored against the source's own maps"
    if parity.against == "source":
        return f"{figures} images without masks, scored against the source's own maps"
    return f"{figures} images"


def _summary(result: ExportResult) -> str:
    where = f" -> {result.path} ({result.size_mb:.2f} MB)" if result.path else ""
    parity = ""
    if result.parity is not None:
        parity = f", parity {100 * result.parity.pixel_agreement:.2f}% pixels, {parity_figures(result.parity)}"
    reason = f" ({result.reason})" if result.reason else ""
    return f"{result.format}: {result.status}{where}{parity}{reason}"
