"""Read and write named metadata buffers of a ``.tflite`` file with flatbuffers alone (no TensorFlow).

The TFLite schema has ``Model.metadata: [Metadata{name, buffer}]``; TFLite Support's ``TFLITE_METADATA``
uses the same slot. We store our JSON under ``edge_deeplab`` (see :mod:`edge_deeplab.runtimes.base`)::

    write_metadata("model.tflite", "model.tflite", json.dumps(meta).encode())
    read_metadata("model.tflite")  # -> the bytes, or None
"""
from __future__ import annotations

import io
import mmap
import zipfile
from pathlib import Path

import numpy as np

from edge_deeplab.atomic import atomic_write_bytes
from edge_deeplab.errors import BadModelError
from edge_deeplab.runtimes.base import METADATA_KEY, check_model_file

TFLITE_IDENTIFIER = b"TFL3"


def _schema():
    # The generated schema ships with ai-edge-litert (a base dependency), as does flatbuffers.
    from ai_edge_litert import schema_py_generated
    return schema_py_generated


def _check_identifier(data, source: object) -> None:
    if len(data) < 8 or bytes(data[4:8]) != TFLITE_IDENTIFIER:
        raise BadModelError(f"{source} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
                            "expected a .tflite file written by a TFLite converter")


def _map(path: str | Path) -> mmap.mmap:
    path = check_model_file(path, ".tflite")
    with open(path, "rb") as file:
        return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)


def _root(data, source: object):
    _check_identifier(data, source)
    try:
        return _schema().Model.GetRootAs(data, 0)
    except Exception as exc:  # flatbuffers raises bare struct/index errors on garbage
        raise BadModelError(f"{source} is not a valid TFLite flatbuffer ({exc})") from None


def _buffer_bytes(model, data, index: int) -> bytes:
    buffer = model.Buffers(index)
    if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer, addressed by offset
        return bytes(data[buffer.Offset():buffer.Offset() + buffer.Size()])
    if buffer.DataIsNone():
        return b""
    return buffer.DataAsNumpy().tobytes()


def read_metadata_bytes(data, name: str = METADATA_KEY, source: object = "model") -> bytes | None:
    """The metadata buffer called ``name`` in the TFLite flatbuffer ``data``, or None."""
    model = _root(data, source)
    try:
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() is not None and entry.Name().decode("utf-8", "replace") == name:
                return _buffer_bytes(model, data, entry.Buffer())
    except Exception as exc:  # a truncated file fails here rather than at GetRootAs
        raise BadModelError(f"{source} is a damaged TFLite flatbuffer ({exc})") from None
    return None


def read_metadata(path: str | Path, name: str = METADATA_KEY) -> bytes | None:
    """The metadata buffer called ``name`` in the ``.tflite`` file at ``path``, or None."""
    with _map(path) as data:
        return read_metadata_bytes(data, name, source=path)


def tensor_quantization(path: str | Path) -> tuple[list[tuple[float, int] | None], list[tuple[float, int] | None]]:
    """(scale, zero_point) of the main subgraph's inputs and outputs (None where not quantized).

    Engines that import ``.tflite`` (OpenVINO) keep integer tensors but drop these parameters.
    """
    with _map(path) as data:
        model = _root(data, path)
        graph = model.Subgraphs(0)

        def quant(tensor_index: int):
            params = graph.Tensors(tensor_index).Quantization()
            if params is None or params.ScaleLength() == 0:
                return None
            return float(params.Scale(0)), int(params.ZeroPoint(0)) if params.ZeroPointLength() else 0

        return ([quant(graph.Inputs(i)) for i in range(graph.InputsLength())],
                [quant(graph.Outputs(i)) for i in range(graph.OutputsLength())])


def tensor_types(path: str | Path) -> tuple[list[str], list[str]]:
    """numpy dtype names (``uint8``, ``int8``, ``float32``...) of the main subgraph's inputs and outputs."""
    names = {value: name.lower() for name, value in vars(_schema().TensorType).items() if not name.startswith("_")}
    with _map(path) as data:
        graph = _root(data, path).Subgraphs(0)
        return ([names[graph.Tensors(graph.Inputs(i)).Type()] for i in range(graph.InputsLength())],
                [names[graph.Tensors(graph.Outputs(i)).Type()] for i in range(graph.OutputsLength())])


def associated_files(data: bytes) -> dict[str, bytes]:
    """The files of the zip archive appended to a model (TFLite Support's associated files), by name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return {}  # no archive (or bytes that only look like one): nothing to carry over


def write_metadata(src: str | Path, dst: str | Path, payload: bytes, name: str = METADATA_KEY,
                   files: dict[str, bytes] | None = None) -> None:
    """Copy ``src`` to ``dst`` (may be the same file) with ``payload`` as metadata ``name``, atomically.

    The zip of associated files that standard metadata appends survives the re-packing; ``files`` adds
    to it (or replaces entries of the same name).
    """
    schema = _schema()
    import flatbuffers

    data = Path(src).read_bytes()
    attached = {**associated_files(data), **(files or {})}
    model = schema.ModelT.InitFromObj(_root(data, src))
    for buffer in model.buffers or []:
        if buffer.offset:  # inline offset-addressed buffers so the re-packed file is self-contained
            buffer.data = np.frombuffer(data[buffer.offset:buffer.offset + buffer.size], np.uint8)
            buffer.offset = buffer.size = 0
    entries = model.metadata or []
    existing = [m for m in entries if m.name is not None and m.name.decode() == name]
    if existing:
        model.buffers[existing[0].buffer].data = np.frombuffer(payload, np.uint8)
    else:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name.encode(), len(model.buffers) - 1
        model.metadata = [*entries, entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    output = io.BytesIO(bytes(builder.Output()))
    if attached:
        # Appended as TFLite Support's MetadataPopulator does (zipfile "a" on the model bytes).
        with zipfile.ZipFile(output, "a") as archive:
            for entry, content in attached.items():
                archive.writestr(entry, content)
    atomic_write_bytes(Path(dst), output.getvalue())

