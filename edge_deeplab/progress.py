"""Progress on stderr, only when stderr is a terminal: tqdm if installed, else a plain counter."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator


class _BarStream:
    """``sys.stderr`` for progress bars, remembering whether their last write left a line open.

    A bar redraws its line with ``\r`` and ends it with ``\n`` when closed; a signal can land between
    the two (seen in CI), and whatever is printed next would be glued to the bar.
    """

    line_open = False

    def write(self, text: str) -> int:
        written = sys.stderr.write(text)
        if text:
            self.line_open = not text.endswith(("\n", "\r"))  # "\r": a cleared bar, at column 0
        return written

    def __getattr__(self, name: str):  # flush, fileno, encoding, isatty: what tqdm asks of its file
        return getattr(sys.stderr, name)


BAR_STREAM = _BarStream()


def end_bar_lines() -> None:
    """Close the bars still open and end a line one left open, so what is printed next starts its own."""
    tqdm = sys.modules.get("tqdm")  # not imported: no bar was made
    if tqdm is not None:
        for bar in list(getattr(tqdm.tqdm, "_instances", ())):  # tqdm's registry of live bars (a WeakSet)
            bar.close()
    if BAR_STREAM.line_open:
        BAR_STREAM.write("\n")
        BAR_STREAM.flush()


class Bar:
    """A progress bar for ``total`` items (None: unknown); silent when stderr is not a terminal."""

    def __init__(self, label: str, total: int | None = None, unit: str = "img"):
        self.label, self.total, self.count = label, total, 0
        self._tqdm = None
        self._on = sys.stderr.isatty()
        if self._on:
            try:
                from tqdm import tqdm
                self._tqdm = tqdm(desc=label, unit=unit, total=total or None, file=BAR_STREAM, leave=False,
                                  dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._on and (self.count % max(1, (self.total or 0) // 10) == 0 or self.count == self.total):
            BAR_STREAM.write(f"\r{self.label}: {self.count}/{self.total or '?'}")
            BAR_STREAM.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._on and self.count:
            BAR_STREAM.write("\n")

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(items: Iterable, label: str, total: int | None = None, unit: str = "img") -> Iterator:
    """``items``, with a :class:`Bar` advancing as they are consumed."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    with Bar(label, total, unit) as bar:
        for item in items:
            yield item
            bar.update()
