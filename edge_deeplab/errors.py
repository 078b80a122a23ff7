"""Typed errors. Each says what was expected and how to fix it.

They subclass built-in exceptions so callers can catch them generically; the CLI turns any
:class:`EdgeDeeplabError` into one line on stderr and exit code 1.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeDeeplabError(Exception):
    """Base class of every error a user can cause or fix."""


class UnknownChoiceError(EdgeDeeplabError, ValueError):
    """A name (config key, backbone, format, runtime...) that is not one of the valid choices."""

    def __init__(self, kind: str, value: object, choices: Iterable[str]):
        self.kind, self.value, self.choices = kind, value, sorted(choices)
        close = difflib.get_close_matches(str(value), self.choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"unknown {kind} {value!r}.{hint} Valid: {', '.join(self.choices)}")


class ConfigError(EdgeDeeplabError, ValueError):
    """A config value out of range or inconsistent with another."""


class MissingExtraError(EdgeDeeplabError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        self.package, self.extra = package, extra
        super().__init__(
            f"{purpose} needs {package}, which is not installed: pip install 'edge-deeplab[{extra}]'")


class BadImageError(EdgeDeeplabError, ValueError):
    """A file that is not a readable image."""


class BadModelError(EdgeDeeplabError, ValueError):
    """A file that is not a loadable model of the expected format."""


class DatasetError(EdgeDeeplabError, ValueError):
    """A dataset folder that does not follow the images/ + masks/ layout or has no usable pairs."""


class UnsupportedOpError(EdgeDeeplabError, ValueError):
    """A layer or op that the export target cannot represent."""


class RuntimeUnavailableError(EdgeDeeplabError, RuntimeError):
    """An inference engine that cannot run on this machine (missing library, device or OS)."""


class ParityError(EdgeDeeplabError, RuntimeError):
    """An exported artifact whose outputs disagree with the source model beyond tolerance."""


class ToolUnavailableError(EdgeDeeplabError, RuntimeError):
    """An external tool (e.g. edgetpu_compiler) that is not on PATH."""
