"""YAML run configurations, checked against a dataclass schema.

Each training run reads one YAML file under ``configs/``. The file's keys must be fields of
the run's schema (a dataclass): an unknown or misspelled key is rejected with one line that
names the key, the file and the keys allowed, instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """Raised when a configuration file does not match its schema."""


def config_path(run: str, size: str) -> Path:
    """Return the path of the config of `run` (a notebook name) at `size` (smoke, full, gpu)."""
    return CONFIG_DIR / run / f"{size}.yaml"


def load_config(path: str | Path, schema: type[T]) -> T:
    """Read the YAML file at `path` into an instance of the dataclass `schema`.

    Missing keys take the schema's defaults; a key without a default must be present.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")

    with path.open(encoding="utf-8") as stream:
        try:
            data = yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: invalid YAML: {error}") from None
    return from_dict(data if data is not None else {}, schema, source=str(path))


def from_dict(data: Any, schema: type[T], source: str, prefix: str = "") -> T:
    """Build `schema` from a mapping, checking every key and value type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'the file'} must be a mapping of keys to values")

    fields = {field.name: field for field in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in data:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"{source}: unknown key '{prefix}{key}'{hint}; allowed keys: {allowed}"
            )

    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _convert(data[name], hints[name], source, f"{prefix}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{prefix}{name}'")
    return schema(**values)


def _convert(value: Any, hint: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)

    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, source, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]

    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_convert(item, item_hint, source, f"{key}[{i}]") for i, item in enumerate(value)]
        return items if origin is list else tuple(items)

    if dataclasses.is_dataclass(hint):
        return from_dict(value, hint, source, prefix=f"{key}.")

    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(
            f"{source}: '{key}' must be of type {hint.__name__}, got {value!r} "
            f"({type(value).__name__})"
        )
    return value
