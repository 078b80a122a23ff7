"""The ``edge-deeplab`` command line. One module per command; errors become one line and exit 1."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

import click

from edge_deeplab import __version__
from edge_deeplab.errors import EdgeDeeplabError
from edge_deeplab.progress import end_bar_lines


_SIGTERM_RECEIVED = threading.Event()


def _terminated(signum, frame):
    # SIGTERM (kill, a container stopping, a CI timeout) unwinds like Ctrl-C: the cleanup that removes
    # half-written temporary outputs runs, where the default action would end the process on the spot.
    _SIGTERM_RECEIVED.set()
    raise SystemExit(128 + signum)


def terminated() -> bool:
    """Whether SIGTERM arrived during this command. Whatever exception follows it is the interruption's:
    code that catches and re-raises errors (an engine calling back into Python) can turn the handler's
    SystemExit into an error of its own."""
    return _SIGTERM_RECEIVED.is_set()


@contextlib.contextmanager
def _terminate_cleanly():
    _SIGTERM_RECEIVED.clear()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            with _terminate_cleanly():
                return super().invoke(ctx)
        except Exception as exc:
            if terminated():  # the interruption, surfacing as another error: end as SIGTERM asked
                sys.exit(128 + signal.SIGTERM)
            if not isinstance(exc, (EdgeDeeplabError, OSError)):  # OSError: disk full, permission denied, ...
                raise  # a bug (or click's own exit): its traceback belongs on the user's screen
            end_bar_lines()  # a bar's open line would swallow the start of the message
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-deeplab")
def main() -> None:
    """DeepLab segmentation from architecture search to the device: search, train, export, run."""


def _register() -> None:
    from edge_deeplab.cli import benchmark, evaluate, export, models, search, segment, train
    for module in (segment, benchmark, evaluate, export, train, search, models):
        main.add_command(module.command)


_register()
