"""Lazy imports of the heavy optional dependencies, with errors that name the extra to install."""
from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

from edge_deeplab.errors import MissingExtraError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install edge-deeplab[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but broken: show the real error
        raise MissingExtraError(top, extra, purpose) from None


def is_installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tensorflow(purpose: str = "this command") -> ModuleType:
    """Import TensorFlow configured for the Keras 2 API (tf_keras), as tensorflow-model-optimization needs."""
    # Must be set before TensorFlow is first imported, or tf.keras resolves to Keras 3.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return require("tensorflow", "train", purpose)


def keras(purpose: str = "building models") -> ModuleType:
    tensorflow(purpose)
    return require("tf_keras", "train", purpose)
