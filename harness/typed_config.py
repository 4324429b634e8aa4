"""The one schema engine: parsed YAML (suite, task file, model and protocol options, compare policy) ->
frozen dataclasses, with one error format.

    FILE: key 'a.b' must be X, got Y. Did you mean Z?

`FILE` is the file the mapping came from (or, for settings that reach us without one, what they belong to,
e.g. ``Model "m" (pixels)``); `'a.b'` is the full key path (``models[0].batch_size``). Every error is one
ConfigError paragraph; the CLI escapes it for rich when it prints it.

Field types: str (YAML integers are accepted and turned into strings, as errors.FromInteger: a message about
one, e.g. an unknown name in ``protocols: [3]``, says the integer 3 was written, not a string '3'), int,
float (NaN and infinities refused), bool (also yes/no/on/off), Literal[...] (a closed value set; a close match is
suggested), X | None, unions, tuple[X, ...] / list[X] (a YAML list), Mapping[K, V] / dict (a YAML mapping),
Any, nested dataclasses (a YAML mapping with the dataclass's keys) and classes with their own syntax: a
``from_yaml(value)`` classmethod that raises ValueError, and an ``EXPECTED`` text (e.g.
harness.data.task_options.Limit).

Keys that cannot be written together (a setting that makes others meaningless) are declared on the dataclass
as ``EXCLUSIVE: ClassVar[tuple[Exclusive, ...]]`` and refused as written, naming both keys: a value compared
with its default in ``__post_init__`` could not tell ``min_samples: 20`` written from the default 20.

Range checks stay in each dataclass's ``__post_init__``: a ``FieldError(owner, "FIELD", "must be ...")``, or a
``ValueError("FIELD must be ..., got ...")`` whose message starts with a field's name, is reported as
``FILE: key 'prefix.FIELD' must be ..., got ...``; any other ValueError/ConfigError under the mapping's key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from harness.console import REORDERING
from harness.errors import ConfigError, FieldError, FromInteger, close_match
from harness.yaml_io import as_bool

T = TypeVar("T")
_MISSING = dataclasses.MISSING
_YAML_TYPE = {str: "string", FromInteger: "integer", int: "integer", float: "number", bool: "boolean", list: "list",
              tuple: "list", dict: "mapping", type(None): "null"}  # fmt: skip


def describe(tp: Any) -> str:
    """What a value of type `tp` looks like in YAML, for 'must be X'."""
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
    if isinstance(tp, type) and hasattr(tp, "from_yaml"):
        return str(getattr(tp, "EXPECTED", tp.__name__))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if origin in (tuple, list) or tp in (tuple, list):
        items = [a for a in get_args(tp) if a is not Ellipsis]
        return f"a list of {_plural(items[0])}" if items else "a list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        pair = get_args(tp)
        return f"a mapping of names to {_plural(pair[1])}" if pair and pair[1] is not Any else "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(tp))
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    """describe() for several values: 'integers', 'lists of strings', 'strings or mappings'."""
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_plural(a) for a in get_args(tp) if a is not type(None))
    if tp is Any:
        return "values"
    text = describe(tp)
    for article in ("a ", "an "):
        if text.startswith(article) and tp is not bool:
            head, _, tail = text[len(article) :].partition(" ")
            return f"{head}s {tail}".rstrip()
    return text  # "one of 'a', 'b'", "true or false ..."


def shown(value: Any) -> str:
    """'got Y' text: the YAML kind and the value, cut to one line."""
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "nan (not a number)"
    if isinstance(value, float) and math.isinf(value):
        return f"{value} (not a finite number)"
    text = str(value) if isinstance(value, FromInteger) else repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{_YAML_TYPE.get(type(value), type(value).__name__)} {text}"


# Lone surrogates too: how Python passes on bytes of a command-line argument that are not UTF-8 (\udcff)
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{REORDERING}\\ud800-\\udfff]")
NAME_RULE = (
    "a non-empty name without control characters (newline, tab, escape codes, NUL, "
    "bidirectional overrides such as \\u202e) or bytes that are not UTF-8"
)


def bad_name(name: str) -> bool:
    """True for a name that cannot be shown on one line as written: empty, blank, or holding a control
    character (a newline splits a table row and an error paragraph; ESC sequences drive the terminal)."""
    return not name.strip() or _CONTROL.search(name) is not None


def schema_error(file: str | Path, key: str, must: str, value: Any = _MISSING, hint: str = "") -> ConfigError:
    """`FILE: key 'KEY' must be MUST, got VALUE.HINT` (the one format; `must` without the leading 'must be')."""
    got = "" if value is _MISSING else f", got {shown(value)}"
    where = f"key '{key}'" if key else "the top level"
    return ConfigError(f"{file}: {where} must be {must}{got}.{hint}")


def unknown_key_error(file: str | Path, key: str, allowed: Iterable[str]) -> ConfigError:
    """`FILE: unknown key 'a.b'. Did you mean "c"? Allowed keys: ...`."""
    names = list(allowed)
    leaf = key.rsplit(".", 1)[-1]
    return ConfigError(
        f"{file}: unknown key '{key}'.{close_match(leaf, names)} Allowed keys: {', '.join(names) or '(none)'}."
    )


def join_key(at: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{at}[{name}]"
    return f"{at}.{name}" if at else str(name)


def convert(value: Any, tp: Any, *, file: str | Path, key: str) -> Any:
    """`value` checked against (and, where harmless, converted to) `tp`; a ConfigError otherwise."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if isinstance(tp, type) and hasattr(tp, "from_yaml"):  # own syntax, e.g. limit: 200, 0.1 or "10%"
        try:
            return tp.from_yaml(value)
        except ValueError as exc:
            raise schema_error(file, key, str(exc), value) from None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return build(tp, value, file=file, at=key)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: dict[Any, ConfigError] = {}
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, file=file, key=key)
            except ConfigError as exc:
                errors[arg] = exc
        shaped = [exc for arg, exc in errors.items() if isinstance(value, _kind(arg))]
        if len(shaped) == 1:  # a mapping given for the one mapping-shaped option: its own error says more
            raise shaped[0]
        raise schema_error(file, key, describe(tp), value)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices and not isinstance(value, bool):
            return value
        hint = close_match(str(value), [str(c) for c in choices]) if isinstance(value, str) else ""
        raise schema_error(file, key, describe(tp), value, hint)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return FromInteger(value)
        hint = f' Quote it: "{value}".' if isinstance(value, float) else ""
        raise schema_error(file, key, describe(tp), value, hint)
    if tp is bool:
        flag = as_bool(value)  # YAML 1.2 reads yes/no/on/off as words; a boolean setting takes them too
        if flag is None:
            raise schema_error(file, key, describe(tp), value)
        return flag
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise schema_error(file, key, describe(tp), value)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer past the float range
                number = math.inf
            # NaN passes every range check silently, inf every check without an upper bound; and a stored
            # setting must be JSON (a run's config and choices: export and export-baseline write them).
            if math.isfinite(number):
                return number
        raise schema_error(file, key, describe(tp), value)
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, list | tuple):
            raise schema_error(file, key, describe(tp), value)
        item_args = [a for a in get_args(tp) if a is not Ellipsis]
        item_tp = item_args[0] if item_args else Any
        items = [convert(v, item_tp, file=file, key=join_key(key, i)) for i, v in enumerate(value)]
        return list(items) if origin is list or tp is list else tuple(items)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise schema_error(file, key, describe(tp), value)
        key_tp, value_tp = get_args(tp) or (Any, Any)
        return {
            convert(k, key_tp, file=file, key=f"{key} (a key)"): convert(v, value_tp, file=file, key=join_key(key, k))
            for k, v in value.items()
        }
    raise TypeError(f"unsupported schema type {tp!r}")


def _kind(tp: Any) -> tuple[type, ...]:
    """The containers a YAML value of type `tp` may be (a mapping or a list); () for scalars."""
    origin = get_origin(tp)
    if (dataclasses.is_dataclass(tp) and isinstance(tp, type)) or origin in (dict, Mapping) or tp in (dict, Mapping):
        return (Mapping,)
    if origin in (tuple, list) or tp in (tuple, list):
        return (list, tuple)
    return ()


@dataclasses.dataclass(frozen=True)
class Exclusive:
    """`key` cannot be written beside any of `others`; `why` says why and what to write instead ({name}: the
    value written for a key)."""

    key: str
    others: tuple[str, ...]
    why: str


def build(cls: type[T], data: Any, *, file: str | Path, at: str = "") -> T:
    """`cls(**data)` with every key checked: unknown keys, missing required keys, wrong types, ranges."""
    if not isinstance(data, Mapping):
        raise schema_error(file, at, describe(cls), data)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    for name in data:
        if name not in fields:
            raise unknown_key_error(file, join_key(at, str(name)), fields)
    kwargs = {}
    for name, f in fields.items():
        key = join_key(at, name)
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                raise ConfigError(f"{file}: missing required key '{key}' ({describe(hints[name])}).")
            continue
        kwargs[name] = convert(data[name], hints[name], file=file, key=key)
    for rule in getattr(cls, "EXCLUSIVE", ()):
        clash = [other for other in rule.others if other in kwargs]
        if kwargs.get(rule.key) is not None and clash:  # `key: null` is the key left out
            why = rule.why.format_map(kwargs)
            raise ConfigError(f"{file}: key '{join_key(at, rule.key)}' cannot be given with '{join_key(at, clash[0])}': {why}")
    try:
        return cls(**kwargs)
    except FieldError as exc:
        raise ConfigError(f"{file}: key '{join_key(at, exc.field)}' {exc.message}") from None
    except (ValueError, ConfigError) as exc:
        raise _range_error(file, at, fields, str(exc)) from None


def _range_error(file: str | Path, at: str, fields: Iterable[str], message: str) -> ConfigError:
    """`FIELD must be ...` from __post_init__ -> `FILE: key 'at.FIELD' must be ...`; other text under `at`."""
    if not message.endswith((".", "?", "!")):
        message += "."
    first, _, rest = message.partition(" ")
    if first in fields and rest:
        return ConfigError(f"{file}: key '{join_key(at, first)}' {rest}")
    if first == "must" and at:
        return ConfigError(f"{file}: key '{at}' {message}")
    return ConfigError(f"{file}: {f'key {at!r}: ' if at else ''}{message}")

