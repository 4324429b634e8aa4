"""Geometry for the inline SVG plots and the heatmap colours; templates only place what is computed here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# Sequential palette (light -> dark blue); heatmap cells also print their number, colour is a second cue.
_PALETTE = ((0xF7, 0xFB, 0xFF), (0x9E, 0xCA, 0xE1), (0x42, 0x92, 0xC6), (0x08, 0x45, 0x94))


def heat_colour(t: float) -> tuple[str, str]:
    """(background, text colour) for a position 0..1 on the palette (256 steps)."""
    return _heat_colour(round(min(1.0, max(0.0, t)) * 255))


def heat_class(t: float) -> str:
    """The CSS class (see heat_css) of a position 0..1 on the palette: a few bytes per heatmap cell
    instead of an inline style, on tables of thousands of cells."""
    return f"h{round(min(1.0, max(0.0, t)) * 255)}"


def heat_css() -> str:
    """Rules for every heat_class."""
    return "".join(
        f"td.h{step}{{background:{bg};color:{fg}}}\n" for step in range(256) for bg, fg in [_heat_colour(step)]
    )


@lru_cache(maxsize=256)
def _heat_colour(step: int) -> tuple[str, str]:
    t = step / 255
    seg = min(int(t * (len(_PALETTE) - 1)), len(_PALETTE) - 2)
    local = t * (len(_PALETTE) - 1) - seg
    a, b = _PALETTE[seg], _PALETTE[seg + 1]
    rgb = tuple(round(x + (y - x) * local) for x, y in zip(a, b, strict=True))
    luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
    return "#{:02x}{:02x}{:02x}".format(*rgb), "#ffffff" if luminance < 0.5 else "#111111"


class PlotPoint(NamedTuple):  # a NamedTuple: a task page at 1,000 models makes ~1,500 (3.4x cheaper to make)
    model: str
    href: str
    latency_ms: float
    accuracy: float
    frontier: bool
    x: float
    y: float


@dataclass(frozen=True)
class ParetoPlot:
    title: str
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    points: tuple[PlotPoint, ...]
    frontier_path: str
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    y_label: str = ""

    @property
    def frontier(self) -> tuple[PlotPoint, ...]:
        return tuple(sorted((p for p in self.points if p.frontier), key=lambda p: p.latency_ms))


def pareto_frontier(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of (latency, accuracy) points no other point beats on both (lower latency, higher accuracy)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    best = -math.inf
    front = set()
    for i in order:
        if points[i][1] > best:
            front.add(i)
            best = points[i][1]
    return front


def pareto_plot(
    title: str,
    data: Sequence[tuple[str, str, float, float]],
    width: int = 640,
    height: int = 360,
    y_label: str = "",
) -> ParetoPlot:
    """data: (model, href, p50 latency ms, quality: higher is better, e.g. accuracy). Latency on a log
    axis (models span decades)."""
    left, top, right, bottom = 64, 16, width - 16, height - 48
    lat = [max(d[2], 1e-6) for d in data]
    acc = [d[3] for d in data]
    lo_x, hi_x = math.log10(min(lat)), math.log10(max(lat))
    if hi_x - lo_x < 0.3:  # widen a near-constant range so points do not sit on the frame
        mid = (lo_x + hi_x) / 2
        lo_x, hi_x = mid - 0.15, mid + 0.15
    pad_x = (hi_x - lo_x) * 0.06
    lo_x, hi_x = lo_x - pad_x, hi_x + pad_x
    lo_y, hi_y = _accuracy_range(acc)

    def sx(v: float) -> float:
        return round(left + (math.log10(max(v, 1e-6)) - lo_x) / (hi_x - lo_x) * (right - left), 1)

    def sy(v: float) -> float:
        return round(bottom - (v - lo_y) / (hi_y - lo_y) * (bottom - top), 1)

    front = pareto_frontier(list(zip(lat, acc, strict=True)))
    points = tuple(
        PlotPoint(model, href, latency, accuracy, i in front, sx(latency), sy(accuracy))
        for i, (model, href, latency, accuracy) in enumerate(data)
    )
    frontier_pts = sorted((p for p in points if p.frontier), key=lambda p: p.x)
    # Step line: from each frontier point, accuracy holds until the next (slower, better) point.
    path = ""
    for i, p in enumerate(frontier_pts):
        path += f"{'M' if i == 0 else 'L'}{p.x},{p.y} "
        if i + 1 < len(frontier_pts):
            path += f"L{frontier_pts[i + 1].x},{p.y} "
    x_ticks = tuple((sx(v), _fmt_ms(v)) for v in log_ticks(10**lo_x, 10**hi_x))
    y_ticks = tuple((sy(v), f"{v:.2f}") for v in linear_ticks(lo_y, hi_y))
    return ParetoPlot(
        title, width, height, left, top, right, bottom, points, path.strip(), x_ticks, y_ticks, y_label
    )


def _accuracy_range(acc: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(acc), max(acc)
    span = max(hi - lo, 0.05)
    floor = 0.0 if lo >= 0 else -1.0  # MCC and kappa go down to -1
    lo, hi = max(floor, lo - span * 0.1), min(1.0, hi + span * 0.1)
    if hi - lo < 0.05:
        lo, hi = max(0.0, hi - 0.05), max(hi, 0.05)
    return lo, hi


def log_ticks(lo: float, hi: float) -> list[float]:
    exps = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    fine = [m * 10.0**e for e in exps for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
    if len(fine) <= 8:
        return fine or [lo, hi]
    return [10.0**e for e in exps if lo <= 10.0**e <= hi]


def linear_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 6) for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt_ms(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:g} s"
    return f"{v:g} ms"
