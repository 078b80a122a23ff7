import os
from pathlib import Path

import pytest

# Before any test imports TensorFlow: tfmot needs the Keras 2 API.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The data, reference models and weights staged beside the project (see ../shared/data/README.md).
SHARED = Path(__file__).resolve().parents[2] / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def shared():
    """``shared("data/portrait/val")`` is that path under ../shared. If it is missing the test skips
    with the reason locally, and fails in CI (``CI=true``), where a silently skipped suite would pass."""
    def locate(relative: str) -> Path:
        path = SHARED / relative
        if not path.exists():
            message = f"{path} not found: stage the shared data and models beside the project (../shared)"
            if in_ci():
                pytest.fail(f"CI=true: {message}", pytrace=False)
            pytest.skip(message)
        return path
    return locate


def needs(module: str):
    """Skip unless an optional package is installed (the test names the extra)."""
    import importlib.util
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed")


def sigterm_turned_into_an_error(by: str) -> None:
    """What SIGTERM looks like when it lands in Python code an engine (``by``) called: the CLI's handler
    raises SystemExit there, and the engine turns it into an error of its own on the way out."""
    import signal

    from edge_deeplab.cli import _terminated
    try:
        _terminated(signal.SIGTERM, None)
    except SystemExit as exc:
        raise RuntimeError(f"{by} failed: SystemExit: {exc.code}") from None
