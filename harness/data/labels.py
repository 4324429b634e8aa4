"""Raw label values (names or integer indices) -> int64 indices into a task's declared labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.errors import DataError

_SHOW = 5


def _as_int(value: Any) -> int | None:
    """An integer label value (bool excluded; integral floats accepted, as pandas makes them)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def encode_labels(
    values: Sequence[Any],
    declared: Sequence[str],
    *,
    where: str,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Map each raw value to its index in `declared`.

    A string is looked up by name. An integer is an index into `declared`, except when the source
    names its classes (`class_names`, e.g. a datasets ClassLabel) with exactly the declared set:
    then the integer is decoded through `class_names` first, so a different class order still maps
    correctly. Any other value raises DataError naming `where` (file/column) and the declared set.
    """
    index = {name: i for i, name in enumerate(declared)}
    decode = list(class_names) if class_names is not None and set(class_names) == set(declared) else None
    out = np.empty(len(values), dtype=np.int64)
    bad: dict[str, int] = {}
    for row, value in enumerate(values):
        if isinstance(value, str):
            code = index.get(value)
        else:
            as_int = _as_int(value)
            if as_int is None:
                code = None
            elif decode is not None:
                code = index[decode[as_int]] if 0 <= as_int < len(decode) else None
            else:
                code = as_int if 0 <= as_int < len(declared) else None
        if code is None:
            bad[repr(value)] = bad.get(repr(value), 0) + 1
            continue
        out[row] = code
    if bad:
        shown = ", ".join(f"{v} ({n} rows)" for v, n in list(bad.items())[:_SHOW])
        more = f" and {len(bad) - _SHOW} more distinct values" if len(bad) > _SHOW else ""
        hint = ""
        if "-1" in bad:
            hint = " A label of -1 usually marks an unlabelled split (e.g. GLUE test sets); use a labelled split as test."
        raise DataError(
            f"{where}: {sum(bad.values())} label values are outside the declared labels: {shown}{more}. "
            f"Declared labels: {list(declared)} (strings match by name, integers are indices 0.."
            f"{len(declared) - 1}). Fix the task's 'labels' list or the data.{hint}"
        )
    return out
