"""Raw label values -> int64 indices into a task's declared labels.

One rule, whatever type a reader gave a value (a CSV cell is text, JSON has numbers, parquet and datasets
have ints, floats and bools), so the same value maps to the same class in every file and split:

1. A value stands for a label text (`label_text`): a string as written; an integer, or a number whose
   fraction is zero (1, "1", 1.0, "1.0", "1e0"), as its integer digits ("1"); any other number in its
   shortest decimal form ("0.5"); True/False as "True"/"False". Declared labels that are numbers compare
   in the same form, so `labels: ["1.0", "2.0"]` match 1, "1" and 1.0.
2. That text matches the declared label of the same text.
3. Otherwise an integer text is a position in the declared labels (0 = the first), but only when no
   declared label is itself an integer: with `labels: ["1", "0"]` the value 1 is the label "1", never
   position 1.

Anything else (an unknown name, a position out of range, a missing value) is an error naming the values,
the rows they are on and the declared label they are close to.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from harness.errors import DataError, closest

_SHOW = 5
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")


def _number_text(number: Decimal) -> str:
    """'1' for 1, 1.0 and 1e0; '0.5' for 0.50. Exponents too large to write out keep their E form."""
    if number.is_finite() and abs(number.adjusted()) <= 40 and number == number.to_integral_value():
        return str(int(number))
    return str(number.normalize())


def label_text(value: Any) -> str | None:
    """The label text a raw value stands for (see the module docstring); None for a missing value or a
    value that is not a label at all (a list, a mapping)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _number_text(Decimal(value)) if _NUMBER.fullmatch(value) else value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _number_text(Decimal(repr(float(value)))) if math.isfinite(value) else None
    return None


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "(missing)"
    return repr(value.item() if isinstance(value, np.generic) else value)


def encode_labels(
    values: Sequence[Any],
    declared: Sequence[str],
    *,
    where: str,
    class_names: Sequence[str] | None = None,
    rows: Callable[[Sequence[int]], Sequence[str]] | None = None,
) -> np.ndarray:
    """Map each raw value to its index in `declared` by the module's rule.

    `class_names` name the integer codes of the values (a datasets ClassLabel column): a code is decoded to
    its name, and the name follows the rule (so the names must be the declared labels, in any order; a code
    with no name is an error). DataError names `where` (file/column), the values
    that match no declared label with the rows they are on (`rows` says where row indices are, e.g.
    ["line 22"]; default "row 23", 1-based), the declared label each one nearly is, and the declared set.
    """
    index: dict[str, int] = {}
    for i, name in enumerate(declared):
        text = label_text(name)
        assert text is not None
        if text in index:
            raise DataError(
                f"{where}: the declared labels {declared[index[text]]!r} and {name!r} are the same number; "
                "a data value could match either. Keep one of them."
            )
        index[text] = i
    positions = not any(_INTEGER.fullmatch(text) for text in index)
    out = np.empty(len(values), dtype=np.int64)
    bad: dict[str, _Unmatched] = {}
    for row, value in enumerate(values):
        named = False
        if class_names is not None and (code := _code(value)) is not None and 0 <= code < len(class_names):
            value, named = class_names[code], True
        text = label_text(value)
        found = index.get(text) if text is not None else None
        if found is None and positions and text is not None and _INTEGER.fullmatch(text) and (named or class_names is None):
            found = int(text) if 0 <= int(text) < len(declared) else None
        if found is None:
            shown = _shown(value)
            if shown not in bad:
                bad[shown] = _Unmatched(text if isinstance(value, str) else None)
            bad[shown].add(row)
            continue
        out[row] = found
    if bad:
        describe = rows or (lambda found: [f"row {i + 1}" for i in found])
        shown = ", ".join(f"{v} ({u.describe(describe, declared)})" for v, u in list(bad.items())[:_SHOW])
        more = f" and {len(bad) - _SHOW} more distinct values" if len(bad) > _SHOW else ""
        hint = ""
        if "-1" in bad:
            hint = " A label of -1 usually marks an unlabelled split (e.g. GLUE test sets); use a labelled split as test."
        rule = (
            f"values match a label by name, and integers are positions 0..{len(declared) - 1}"
            if positions
            else "values match a label by name; the labels include integers, so an integer is a name, not a position"
        )
        if class_names is not None:
            rule = f"the data stores its classes as codes of the names {list(class_names)}, matched by name"
        raise DataError(
            f"{where}: {sum(u.count for u in bad.values())} label values are outside the declared labels: "
            f"{shown}{more}. Declared labels: {list(declared)} ({rule}). Fix the task's 'labels' list or the "
            f"data.{hint}"
        )
    return out


@dataclass
class _Unmatched:
    """One distinct value that matches no declared label: how often, and its first rows."""

    name: str | None  # a string value, for the declared label it nearly is
    count: int = 0
    first: list[int] = field(default_factory=list)

    def add(self, row: int) -> None:
        self.count += 1
        if len(self.first) < _SHOW:
            self.first.append(row)

    def describe(self, rows: Callable[[Sequence[int]], Sequence[str]], declared: Sequence[str]) -> str:
        where = ", ".join(rows(self.first)) + (", ..." if self.count > len(self.first) else "")
        match = closest(self.name, declared) if self.name is not None else None
        rows_word = "row" if self.count == 1 else "rows"
        return f"{self.count} {rows_word}: {where}" + (f"; did you mean {match!r}?" if match is not None else "")


def _code(value: Any) -> int | None:
    """An integer code of a ClassLabel value (bools are not codes)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return int(value)
    return None
