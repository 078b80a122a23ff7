"""Typed errors. Each says what was expected and how to fix it.

They subclass built-in exceptions so callers can catch them generically; the CLI turns any
:class:`EdgeDeeplabError` into one line on stderr and exit code 1.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeDeeplabError(Exception):
    """Base class of every error a user can cause or fix."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (an engine's may run to a page), else its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
    """Optional dependencies that are not installed: all of them in one ``pip install`` line."""

    def __init__(self, package: str | Iterable[str], extra: str | Iterable[str], purpose: str):
        packages = [package] if isinstance(package, str) else list(dict.fromkeys(package))
        extras = sorted({extra} if isinstance(extra, str) else set(extra))
        self.package, self.extra = ", ".join(packages), ",".join(extras)
        self.packages, self.extras = packages, extras
        which = "which is" if len(packages) == 1 else "which are"
        super().__init__(f"{purpose} needs {self.package}, {which} not installed: "
                         f"pip install 'edge-deeplab[{self.extra}]'")


class BadImageError(EdgeDeeplabError, ValueError):
    """A file that is not a readable image."""


class BadModelError(EdgeDeeplabError, ValueError):
    """A file that is not a loadable model of the expected format."""


class ChecksumError(BadModelError):
    """A model file whose SHA-256 differs from the one its manifest recorded."""


class DatasetError(EdgeDeeplabError, ValueError):
    """A dataset folder that does not follow the images/ + masks/ layout or has no usable pairs."""


class UnsupportedOpError(EdgeDeeplabError, ValueError):
    """A layer or op that the export target cannot represent."""


class RuntimeUnavailableError(EdgeDeeplabError, RuntimeError):
    """An inference engine that cannot run on this machine (missing library, device or OS)."""


class UntrainedModelError(EdgeDeeplabError, ValueError):
    """A model without trained weights where an export must not pass one off as a result."""


class ParityError(EdgeDeeplabError, RuntimeError):
    """An exported artifact whose outputs disagree with the source model beyond tolerance."""


class ToolUnavailableError(EdgeDeeplabError, RuntimeError):
    """An external tool (e.g. edgetpu_compiler) that is not on PATH."""
