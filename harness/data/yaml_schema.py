"""Build frozen dataclasses from parsed YAML with errors that name the file, the key and the fix.

Supported field types: str (YAML integers are accepted and turned into strings), int, float, bool,
Literal[...], X | None, unions, tuple[X, ...] (a YAML list), Mapping[str, X] (a YAML mapping) and
nested dataclasses (a YAML mapping with the dataclass's keys).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from harness.errors import ConfigError, close_match
from harness.yaml_io import as_bool

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false (yes/no, on/off)"
    if tp is type(None):
        return "empty (null)"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {describe(get_args(tp)[0]).split(' ', 1)[-1]}s"
    if origin is Mapping:
        return f"a mapping of names to {describe(get_args(tp)[1]).split(' ', 1)[-1]}s"
    if dataclasses.is_dataclass(tp):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(tp))
    return str(tp)


def _fail(file: Path, key: str, tp: Any, value: Any, hint: str = "") -> ConfigError:
    shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
    return ConfigError(
        f"{file}: key '{key}' must be {describe(tp)}, got {type(value).__name__} {shown}.{hint}"
    )


def convert(value: Any, tp: Any, *, file: Path, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, file=file, at=key)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, file=file, key=key)
            except ConfigError:
                continue
        raise _fail(file, key, tp, value)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        hint = close_match(str(value), [str(c) for c in choices]) if isinstance(value, str) else ""
        raise _fail(file, key, tp, value, hint)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        hint = ' Quote it, e.g. "1.0".' if isinstance(value, float) else ""
        raise _fail(file, key, tp, value, hint)
    if tp is bool:
        flag = as_bool(value)  # YAML 1.2 reads yes/no/on/off as words; a boolean setting takes them too
        if flag is None:
            raise _fail(file, key, tp, value)
        return flag
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(file, key, tp, value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
            return float(value)  # NaN passes every range check silently
        raise _fail(file, key, tp, value)
    if origin is tuple:
        if not isinstance(value, list):
            raise _fail(file, key, tp, value)
        (item_tp, _ellipsis) = get_args(tp)
        return tuple(convert(v, item_tp, file=file, key=f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise _fail(file, key, tp, value)
        key_tp, value_tp = get_args(tp)
        return {
            convert(k, key_tp, file=file, key=f"{key} (a key)"): convert(
                v, value_tp, file=file, key=f"{key}.{k}"
            )
            for k, v in value.items()
        }
    raise TypeError(f"unsupported schema type {tp!r}")


def build(cls: type[T], data: Any, *, file: Path, at: str = "") -> T:
    """`cls(**data)` with every key checked: unknown keys, missing required keys and wrong types."""
    where = f"section '{at}'" if at else "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: {where} must be {describe(cls)}, got {type(data).__name__} {data!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{file}: unknown key '{f'{at}.' if at else ''}{key}' at {where}.{close_match(str(key), fields)} "
                f"Allowed keys: {', '.join(fields)}."
            )
    kwargs = {}
    for name, f in fields.items():
        key = f"{at}.{name}" if at else name
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                raise ConfigError(f"{file}: missing required key '{key}' ({describe(hints[name])}).")
            continue
        kwargs[name] = convert(data[name], hints[name], file=file, key=key)
    return cls(**kwargs)
