"""Build frozen dataclasses from YAML mappings with errors that name the file, the key and the expectation."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union, get_args, get_origin

from harness.errors import ConfigError, close_match
from harness.yaml_io import as_bool

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(tp, "__name__", str(tp))


def _check(value: Any, tp: Any) -> Any:
    """Return value coerced to tp where harmless (int -> float, list -> tuple), or raise TypeError."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _check(value, arg)
            except TypeError:
                continue
        raise TypeError
    if tp is type(None):
        if value is None:
            return None
        raise TypeError
    if origin is typing.Literal:
        if value in get_args(tp):
            return value
        raise TypeError
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_check(v, item_tp) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError
        return dict(value)
    if tp is bool:
        flag = as_bool(value)  # YAML 1.2 reads yes/no/on/off as words; a boolean setting takes them too
        if flag is None:
            raise TypeError
        return flag
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise TypeError  # NaN passes every range check silently
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise TypeError
    return value


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """cls(**data) with every key checked: unknown key (with close match), missing key, wrong type."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f'{where}: unknown key "{key}".{close_match(str(key), fields)} Allowed keys: {", ".join(fields)}.'
            )
        try:
            kwargs[key] = _check(value, hints[key])
        except TypeError:
            raise ConfigError(
                f'{where}.{key}: expected {_type_name(hints[key])}, got {value!r} ({type(value).__name__}).'
            ) from None
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f'{where}: missing required key(s): {", ".join(missing)}.')
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
