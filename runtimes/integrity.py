"""SHA-256 of exported artifacts, recorded in their manifest and checked when they are loaded.

``<artifact>.json`` (written by :mod:`edge_deeplab.converters.manifest`) holds
``"sha256": {file name: hex digest}`` for every file the artifact consists of (an OpenVINO ``.xml``
and its ``.bin``; a Core ML ``.mlpackage`` folder is digested as a tree). Loading a model whose
manifest sits beside it re-hashes those files: a copy that was truncated, re-exported without its
manifest, or edited by hand is an error instead of silently wrong masks.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edge_deeplab.errors import ChecksumError

_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file; of a folder, over its files' relative paths and digests (sorted)."""
    path = Path(path)
    if not path.is_dir():
        return _file_digest(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\0{_file_digest(item)}\n".encode())
    return digest.hexdigest()


def manifest_beside(artifact: str | Path) -> Path:
    """``model.tflite`` -> ``model.tflite.json`` (the name every converter writes)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def recorded_digests(artifact: str | Path) -> dict[str, str] | None:
    """The ``sha256`` map of the manifest beside ``artifact``, or None if there is none (foreign models,
    manifests from before digests were recorded, or a JSON file that is not one of our manifests)."""
    manifest = manifest_beside(artifact)
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not ours to judge: the model itself is what gets loaded
    digests = data.get("sha256") if isinstance(data, dict) else None
    if not isinstance(digests, dict) or data.get("artifact") != Path(artifact).name:
        return None
    return {str(name): str(value) for name, value in digests.items()}


def check_artifact(artifact: str | Path) -> None:
    """Raise :class:`ChecksumError` if a file of ``artifact`` differs from its manifest's digest."""
    artifact = Path(artifact)
    digests = recorded_digests(artifact)
    if not digests:
        return
    for name, expected in digests.items():
        path = artifact.with_name(name)
        if not path.exists():
            raise ChecksumError(f"{path} is missing; its manifest {manifest_beside(artifact).name} lists it: "
                                "copy every file of the export together")
        actual = sha256(path)
        if actual != expected.lower():
            raise ChecksumError(
                f"{path} does not match its manifest {manifest_beside(artifact).name} (sha256 "
                f"{actual[:12]}... instead of {expected[:12]}...): the file was changed or replaced; "
                "re-export it, or remove the stale manifest")
