"""Typed family options: `ModelSpec.options` (a free mapping in the suite file) -> a frozen dataclass.

A typo or a wrong type in an option is a ConfigError naming the model, the option and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from harness.errors import ConfigError, close_match
from harness.models.base import ModelSpec

OptionsT = TypeVar("OptionsT")


def parse_options(spec: ModelSpec, options_cls: type[OptionsT]) -> OptionsT:
    """Build `options_cls` (a dataclass whose fields all have defaults) from `spec.options`."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(options_cls)
    for key, value in spec.options.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "(none)"
            raise ConfigError(
                f'Model "{spec.name}" ({spec.family}): unknown option "{key}".{close_match(key, fields)} '
                f"Options of this family: {known}."
            )
        if not _matches(value, hints[key]):
            raise ConfigError(
                f'Model "{spec.name}" ({spec.family}): option "{key}" must be {_describe(hints[key])}, '
                f"got {value!r}."
            )
    return options_cls(**dict(spec.options))


def option_error(spec: ModelSpec, key: str, message: str) -> ConfigError:
    return ConfigError(f'Model "{spec.name}" ({spec.family}): option "{key}" {message}')


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        if origin in (Mapping, dict, typing.Mapping):
            return isinstance(value, Mapping)
        if origin in (tuple, list):
            return isinstance(value, list | tuple)
        if origin is typing.Literal:
            return value in typing.get_args(hint)
        return isinstance(value, origin)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (Mapping, dict, typing.Mapping):
        return "a mapping"
    if origin in (tuple, list):
        return "a list"
    return f"a {getattr(hint, '__name__', str(hint))}"
