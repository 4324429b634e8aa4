"""Counts (parameters) and byte sizes: parsed from the command line and formatted for tables and pages.

The formats, used by `harness show`, `harness models`, `harness pick` and the site:
- a count: 3 significant digits with an SI suffix, k / M / B (22.7M, 4.65M, 135M, 20k, 1.5B, 850): the site and
  `harness pick`; the terminal tables of `harness show` and `harness models` keep one decimal (0.8k, 38.6k,
  4.7M, 134.5M: `format_count_1dp`), as their golden output was recorded before the formatters were merged;
- a size in bytes (limits and memory in `harness pick`): decimal units, 3 significant digits (2.15 GB, 512 MB);
- a measured memory in MiB (the site's weights and peak-memory cells): whole numbers from 10 up (1,234 MB).
Each formatter takes the text to show for a missing value (None or NaN): "-" in terminal tables, an em dash on
the site, "unknown" in sentences.
"""

from __future__ import annotations

import math
import re

from harness.errors import HarnessError

_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}
_BYTE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_NUMBER_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def _missing(v: float | None) -> bool:
    return v is None or not math.isfinite(v)


def parse_count(text: str, option: str = "--max-params") -> int:
    """'50M' -> 50_000_000, '1.5B' -> 1_500_000_000, '500k', '22700000'."""
    m = _NUMBER_RE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _COUNT_UNITS or not math.isfinite(float(m.group(1)) * _COUNT_UNITS[unit]):
        hint = " That is a memory size; did you mean --max-memory?" if unit.endswith("b") and len(unit) > 1 else ""
        raise HarnessError(
            f'{option} "{text}" is not a parameter count: use a number with an optional K, M or B suffix, '
            f"e.g. 50M, 1.5B or 22700000.{hint}"
        )
    return int(round(float(m.group(1)) * _COUNT_UNITS[unit]))


def parse_bytes(text: str, option: str = "--max-memory") -> int:
    """'2GB' -> 2e9 bytes, '512MB', '1.5GiB' (binary). A bare number is refused: the unit is ambiguous."""
    m = _NUMBER_RE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _BYTE_UNITS or not math.isfinite(float(m.group(1)) * _BYTE_UNITS[unit]):
        raise HarnessError(
            f'{option} "{text}" is not a memory size: give a number with a unit, e.g. 512MB, 2GB or 1.5GiB '
            "(KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024)."
        )
    return int(round(float(m.group(1)) * _BYTE_UNITS[unit]))


def format_count(n: int | None, missing: str = "-") -> str:
    """22.7M, 4.65M, 135M, 20k, 1.5B, 850."""
    if n is None:
        return missing
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return str(n)


def format_count_1dp(n: int | None, missing: str = "-") -> str:
    """One decimal, thousands below 100k, else millions: 0.8k, 38.6k, 0.2M, 4.7M, 134.5M (`harness show`)."""
    if n is None:
        return missing
    if n == 0:
        return "0"
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def format_bytes(n: float | None, missing: str = "-") -> str:
    """Decimal units, 3 significant digits: 2.15 GB, 512 MB, 300 B."""
    if n is None or _missing(n):
        return missing
    for div, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if n >= div:
            return f"{n / div:.3g} {suffix}"
    return f"{n:.0f} B"


def format_mib(v: float | None, missing: str = "-") -> str:
    """A memory measured in MiB (2**20 bytes) as the site shows it: 1,234 MB; 3 MB; 0.52 MB."""
    if v is None or _missing(v):
        return missing
    return f"{v:,.0f} MB" if v >= 10 else f"{v:.2g} MB"
