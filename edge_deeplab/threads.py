"""Pipelining: run each stage of an ordered stream in its own thread.

Video decode, the model, compositing and encoding spend most of their time in C code that releases the
GIL (FFmpeg, LiteRT, Pillow, numpy), so on two cores they overlap: a frame is encoded while the next is
composited and the one after that is segmented.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def threaded(items: Iterable, depth: int = 4, name: str = "stage") -> Iterator:
    """``items`` consumed in a background thread, ``depth`` ahead of the reader; same order.

    An exception in the producer is re-raised in the reader; a reader that stops early (closes the
    generator, or raises) makes the producer stop at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the reader, which raises it in its own thread
            put(_Failure(exc))

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def stage(function: Callable, items: Iterable, depth: int = 4, name: str = "stage") -> Iterator:
    """``map(function, items)`` computed in its own thread (see :func:`threaded`)."""
    return threaded(map(function, items), depth, name)
