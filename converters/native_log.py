"""Hold back what converters' C++ cores print on fd 2, unless the conversion fails unexpectedly."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

from edge_deeplab.errors import EdgeDeeplabError


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """TensorFlow's MLIR converter, XNNPACK and friends log straight to fd 2 (no Python switch).

    A user error (an :class:`EdgeDeeplabError`) already says what went wrong in one line, so their logs
    are dropped; any other exception is a bug, and the logs are replayed to help debug it.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedded interpreter): leave stderr alone
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        replay = False
        try:
            yield
        except EdgeDeeplabError:
            raise
        except BaseException:
            replay = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if replay:
                capture.seek(0)
                sys.stderr.write(capture.read().decode(errors="replace"))
