import os

import pytest

# Before any test imports TensorFlow: tfmot needs the Keras 2 API.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


def needs(module: str):
    """Skip unless an optional package is installed (the test names the extra)."""
    import importlib.util
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed")
