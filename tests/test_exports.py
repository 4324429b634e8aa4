"""The site's downloads are written column by column (harness.sitegen.exports); every cell must read exactly as
csv.writer and json.dumps write it, and every rounded number exactly as Python's round gives it."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from typing import Any

import numpy as np
import pytest

from harness.sitegen.exports import Table, encode_column, encode_floats, round_floats

AWKWARD_STRINGS = [
    "plain", "", "with,comma", 'with "quotes"', "line\nbreak", "carriage\rreturn", "crlf\r\n", " lead space",
    "trail space ", "ünïcödé ✓", "tab\there", "back\\slash", "<i>x</i> [bold]nb[/bold]", "\x00nul", "'single'",
]  # fmt: skip
AWKWARD_FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.5, 0.1234565, 0.1234575, 2.675, 1e-5, -1e-5, 1e-7, 5e-7, -5e-7, 0.00015, 1e-4, 123456.7890125,
    1e9, 4.5e9, 1e15, 1e16, 1e17, 1e300, -1e300, 5e-324, 0.000123456789, 99.99995, math.inf, -math.inf, math.nan,
]  # fmt: skip


def reference_csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def reference_round(v: Any, digits: int | None) -> Any:
    if digits is None or v is None:
        return v
    return None if not math.isfinite(v) else round(v, digits)


def check_columns(columns: list[list[Any]], digits: list[int | None]) -> None:
    """A table of these columns (rounded as given) reads as csv.writer and json.dumps write its rows."""
    table = Table(tuple(f"c{i}" for i in range(len(columns))), tuple(map(encode_column, columns, digits)))
    rows = [
        [reference_round(v, d) for v, d in zip(row, digits, strict=True)]
        for row in zip(*columns, strict=True)
    ]
    assert table.csv() == reference_csv([list(table.names), *rows])
    assert table.json_rows() == json.dumps(rows, separators=(",", ":"), allow_nan=False)
    assert table.json() == json.dumps({"columns": list(table.names), "rows": rows}, separators=(",", ":"))


def test_strings_ints_bools_and_missing_values_read_as_csv_and_json_write_them() -> None:
    n = len(AWKWARD_STRINGS)
    check_columns(
        [
            AWKWARD_STRINGS,
            [s if i % 3 else None for i, s in enumerate(AWKWARD_STRINGS)],
            ["same"] * n,
            [f"k{i}" for i in range(n)],
            list(range(-3, n - 3)),
            [None if i % 4 == 0 else i % 2 for i in range(n)],
            [i % 2 == 0 for i in range(n)],
            [None if i % 5 == 0 else i % 3 == 0 for i in range(n)],
            [None] * n,
        ],
        [None] * 9,
    )


@pytest.mark.parametrize("digits", [2, 3, 4, 6])
def test_rounded_floats_read_as_round_then_csv_and_json_write_them(digits: int) -> None:
    values = AWKWARD_FLOATS + [-v for v in AWKWARD_FLOATS]
    with_missing = [None if i % 7 == 3 else v for i, v in enumerate(values)]
    repeated = [values[i % 5] for i in range(len(values))]
    check_columns([values, with_missing, repeated, [None] * len(values)], [digits] * 4)


def test_mixed_and_unrounded_columns_read_as_csv_and_json_write_them() -> None:
    check_columns(
        [
            [1, 2.5, None, True, 3],
            [1.25, -0.0, 7, None, 2.0],
            ["a", 1, None, "b,c", 2],
            [0.5, 1.5, 2.0, 1e-9, 3.25],
        ],
        [None, 2, None, None],
    )


def test_unrounded_non_finite_floats_are_refused_as_json_refuses_them() -> None:
    with pytest.raises(ValueError):
        encode_column([1.0, math.nan, None])


def test_an_empty_table_is_its_header() -> None:
    table = Table(("a", "b"), (encode_column([]), encode_column([], 6)))
    assert table.csv() == "a,b\n"
    assert table.json_rows() == "[]"


@pytest.mark.parametrize("digits", [0, 2, 3, 4, 6, 9, 15, 16])
def test_round_floats_is_pythons_round(digits: int) -> None:
    rng = random.Random(digits)
    values = [rng.uniform(-1, 1) * 10 ** rng.uniform(-12, 18) for _ in range(20_000)]
    # exact ties and near-ties in decimal: k + 0.5 units of the last kept digit, and their float neighbours
    ties = [(rng.randrange(-(10**8), 10**8) + 0.5) / 10**digits for _ in range(5_000)]
    values += (
        ties + [math.nextafter(t, math.inf) for t in ties] + [math.nextafter(t, -math.inf) for t in ties]
    )
    values += [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308]
    got = round_floats(np.array(values), digits)
    expected = [round(v, digits) for v in values]
    assert [repr(g) for g in got] == [repr(e) for e in expected]


@pytest.mark.parametrize("digits", [0, 1, 2, 3, 4, 6, 9, 15, 16])
def test_floats_are_written_as_repr_of_round(digits: int) -> None:
    rng = random.Random(100 + digits)
    values: list[float | None] = [rng.uniform(-1, 1) * 10 ** rng.uniform(-12, 18) for _ in range(20_000)]
    values += [(rng.randrange(-(10**8), 10**8) + 0.5) / 10**digits for _ in range(3_000)]  # ties
    short = [rng.randrange(-(10**6), 10**6) / 10 ** rng.randrange(0, 8) for _ in range(3_000)]
    edges = [0.0, -0.0, 1e-4, -1e-4, 9.9999e-5, 1e15, 1e16, -1e16, 5e-324, None, math.nan, math.inf]
    values += short + edges
    column = encode_floats([values, values[::-1]], [digits, 2])
    expected = [reference_round(v, digits) for v in values]
    assert column.csv == [
        f"{'' if a is None else repr(a)},{'' if b is None else repr(b)}"
        for a, b in zip(expected, [reference_round(v, 2) for v in values[::-1]], strict=True)
    ]
    assert column.json == [
        json.dumps([a, b], separators=(",", ":"))[1:-1]
        for a, b in zip(expected, [reference_round(v, 2) for v in values[::-1]], strict=True)
    ]
