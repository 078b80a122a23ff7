"""Frozen dataclass configs, round-trippable to/from JSON and YAML.

Unknown keys and values are errors that list the valid choices; values are validated on construction,
so an invalid config cannot exist.
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from edge_deeplab.errors import ConfigError, UnknownChoiceError

C = TypeVar("C", bound="Config")


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Turn a JSON/YAML value into the field's declared type (lists into tuples, ints into floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, args[0], value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(name, item, v) for v in value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return hint.from_dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{name} must be {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{name} must be int, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every config: validation hook plus dict/JSON/YAML round trip."""

    # Fields holding file paths: relative ones in a config file resolve against the file's folder.
    path_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError/UnknownChoiceError for a bad value. Subclasses extend."""

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(fields)
        if unknown:
            raise UnknownChoiceError(f"{cls.__name__} key", sorted(unknown)[0], fields)
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(f"{cls.__name__}.{k}", hints[k], v) for k, v in data.items()}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Any) -> Any:
            if isinstance(v, Config):
                return v.to_dict()
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            return v
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(parse_mapping(text, yaml_syntax=False))

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls: type[C], text: str) -> C:
        return cls.from_dict(parse_mapping(text, yaml_syntax=True))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = self.to_yaml() if path.suffix in (".yaml", ".yml") else self.to_json()
        path.write_text(text)

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        return cls.from_dict(resolve_paths(read_mapping(path), cls.path_fields, Path(path).parent))


def parse_mapping(text: str, yaml_syntax: bool, source: str = "config") -> Any:
    """JSON or YAML text to data; a syntax error becomes one ConfigError line."""
    if yaml_syntax:
        import yaml
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc}") from None


def read_mapping(path: str | Path, what: str = "config file") -> Any:
    """The data of a ``.json``/``.yaml``/``.yml`` file, with one-line errors for a missing or bad file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    return parse_mapping(path.read_text(), path.suffix in (".yaml", ".yml"), source=str(path))


def resolve_paths(data: Any, fields: typing.Iterable[str], base: Path) -> Any:
    """``data`` with each relative path in ``fields`` made absolute against ``base`` (a config file's folder).

    So a config means the same files from any working directory. A value naming a zoo model
    (``teacher: portrait``) is a name, not a path, and stays as it is.
    """
    if not isinstance(data, dict):
        return data
    resolved = dict(data)
    for field in fields:
        value = data.get(field)
        if isinstance(value, list):  # a list of paths (e.g. teacher_ensemble)
            resolved[field] = [_resolve_path(v, base) if isinstance(v, str) and v else v for v in value]
        elif isinstance(value, str) and value:
            resolved[field] = _resolve_path(value, base)
    return resolved


def _resolve_path(value: str, base: Path) -> str:
    from edge_deeplab.zoo import ZOO  # not at the top: the zoo's configs import this module
    return value if value in ZOO else absolute_path(value, base)


def absolute_path(value: str, base: Path) -> str:
    """``value`` (``~`` expanded) as an absolute path, relative ones against the folder ``base``."""
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        path = os.path.normpath(os.path.join(os.path.abspath(base), path))
    return path


def check_choice(kind: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise UnknownChoiceError(kind, value, [str(c) for c in choices])


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be in [{low}, {high}], got {value}")
