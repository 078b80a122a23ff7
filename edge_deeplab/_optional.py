"""Lazy imports of the heavy optional dependencies, with errors that name the extra to install."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Iterable
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


def check_installed(needs: Iterable[tuple[str, str]], purpose: str) -> None:
    """Raise one :class:`MissingExtraError` naming every ``(module, extra)`` of ``needs`` not installed.

    A command checks all it will import before any work, so a user installs once, not extra by extra.
    """
    missing = {module.split(".")[0]: extra for module, extra in needs if not is_installed(module)}
    if missing:
        raise MissingExtraError(missing, missing.values(), purpose)


TRAIN = (("tensorflow", "train"), ("tf_keras", "train"), ("tensorflow_model_optimization", "train"),
         ("tqdm", "train"))  # what building and training models imports


def tensorflow(purpose: str = "this command") -> ModuleType:
    """Import TensorFlow configured for the Keras 2 API (tf_keras), as tensorflow-model-optimization needs."""
    # Must be set before TensorFlow is first imported, or tf.keras resolves to Keras 3.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return require("tensorflow", "train", purpose)


def keras(purpose: str = "building models") -> ModuleType:
    tensorflow(purpose)
    return require("tf_keras", "train", purpose)


def quiet_tensorflow(purpose: str = "this command", verbose: bool = False) -> ModuleType:
    """TensorFlow, loaded now; unless ``verbose`` with its start-up output dropped and its loggers at ERROR.

    On a machine without a GPU TensorFlow reports ``failed call to cuInit`` and a page of C++ log lines
    on fd 2 at import and at first device use, and warns about tf.function retracing during training:
    none of it is the user's to act on. A user's own TF_CPP_MIN_LOG_LEVEL is respected. ``verbose``
    loads it unheld, so code that later holds fd 2 around an import cannot hide that output.
    """
    if verbose:
        tf = tensorflow(purpose)
        tf.config.list_physical_devices()
        return tf
    from edge_deeplab.converters.native_log import native_stderr_held
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_held():
        tf = tensorflow(purpose)
        tf.config.list_physical_devices()  # where CUDA is probed (cuInit)
        from absl import logging as absl_logging  # a TensorFlow dependency
    tf.get_logger().setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    return tf
