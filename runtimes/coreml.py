"""Core ML (``.mlpackage``/``.mlmodel``) through coremltools. Prediction needs macOS."""
from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

import numpy as np

from edge_deeplab._optional import require
from edge_deeplab.errors import BadModelError, RuntimeUnavailableError
from edge_deeplab.runtimes.base import METADATA_KEY, Runtime, TensorInfo, check_model_file, parse_metadata

# Core ML's ArrayFeatureType.ArrayDataType enum values.
_ARRAY_DTYPES = {65568: np.float32, 65600: np.float64, 65552: np.float16, 131104: np.int32}


def _feature_info(feature) -> TensorInfo:
    kind = feature.type.WhichOneof("Type")
    if kind == "multiArrayType":
        array = feature.type.multiArrayType
        return TensorInfo(feature.name, tuple(int(d) for d in array.shape),
                          np.dtype(_ARRAY_DTYPES.get(array.dataType, np.float32)))
    if kind == "imageType":  # RGB image input: raw pixels go in, the model normalizes (our uint8 convention)
        image = feature.type.imageType
        return TensorInfo(feature.name, (1, int(image.height), int(image.width), 3), np.dtype(np.uint8))
    raise BadModelError(f"Core ML feature {feature.name!r} is of type {kind}; expected an array or image")


class CoreMLRuntime(Runtime):
    name = "coreml"
    accepts = (".mlpackage", ".mlmodel")
    export_format = "coreml"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if platform.system() != "Darwin":
            return (f"Core ML runs only on macOS (this is {platform.system()}); export the .mlpackage here "
                    "and run it on a Mac or an iOS device")
        if importlib.util.find_spec("coremltools") is None:
            return "coremltools is not installed: pip install 'edge-deeplab[coreml]'"
        return None

    @classmethod
    def import_engine(cls) -> None:
        require("coremltools", "coreml", "the Core ML runtime")

    def __init__(self, path: str | Path, threads: int | None = None, profile_ops: bool = False) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeUnavailableError(f"cannot run {path}: {reason}")
        ct = require("coremltools", "coreml", "the Core ML runtime")
        self.path = check_model_file(path, ".mlpackage")
        self.threads = threads
        try:
            self._model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit.ALL)
        except Exception as exc:  # coremltools raises bare Exception/RuntimeError on bad packages
            raise BadModelError(f"{self.path}: Core ML cannot load this model ({exc})") from None
        description = self._model.get_spec().description
        self._inputs = [_feature_info(f) for f in description.input]
        self._outputs = [_feature_info(f) for f in description.output]
        self._image_input = description.input[0].type.WhichOneof("Type") == "imageType"
        self._feed: dict = {}
        self._results: dict = {}

    def set_input(self, array: np.ndarray) -> None:
        if self._image_input:
            from PIL import Image
            self._feed = {self._inputs[0].name: Image.fromarray(array[0])}
        else:
            self._feed = {self._inputs[0].name: array}

    def invoke(self) -> None:
        self._results = self._model.predict(self._feed)

    def output(self, index: int = 0) -> np.ndarray:
        return np.asarray(self._results[self._outputs[index].name])

    def metadata(self) -> dict | None:
        return parse_metadata(self._model.user_defined_metadata.get(METADATA_KEY), str(self.path))
