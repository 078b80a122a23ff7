"""Progress on stderr, only when stderr is a terminal: tqdm if installed, else a plain counter."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator


class Bar:
    """A progress bar for ``total`` items (None: unknown); silent when stderr is not a terminal."""

    def __init__(self, label: str, total: int | None = None, unit: str = "img"):
        self.label, self.total, self.count = label, total, 0
        self._tqdm = None
        self._on = sys.stderr.isatty()
        if self._on:
            try:
                from tqdm import tqdm
                self._tqdm = tqdm(desc=label, unit=unit, total=total or None, file=sys.stderr, leave=False,
                                  dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._on and (self.count % max(1, (self.total or 0) // 10) == 0 or self.count == self.total):
            sys.stderr.write(f"\r{self.label}: {self.count}/{self.total or '?'}")
            sys.stderr.flush()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
        elif self._on and self.count:
            sys.stderr.write("\n")

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
