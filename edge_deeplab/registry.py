"""One registry per axis of variation (backbones, heads, formats, runtimes, zoo).

Entries point to their implementation by ``"module:attribute"`` and are imported on first use,
so listing a registry never imports TensorFlow or an inference engine.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edge_deeplab.errors import UnknownChoiceError


@dataclass(frozen=True)
class Entry:
    name: str
    target: Any  # "module:attribute" to import on first use, or the object itself
    summary: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        return getattr(obj, attr) if attr else obj


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: Any, summary: str = "", **meta: Any) -> Entry:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        entry = Entry(name, target, summary, meta)
        self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(self.kind, name, self._entries) from None

    def load(self, name: str) -> Any:
        return self.get(name).load()

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
