"""Learning curves: main metric against the number of labelled training examples, per model.

A suite that runs one protocol at several k (linear-probe or fine-tune variants that differ only in
k_shot / train_examples, e.g. k = 1, 2, 4, 8, 16 and the full train split) forms a series. Each point
is a stored result; the band is its 95% interval (bootstrap CI, or the min-max over seeds). Labelled
examples: k x the number of classes for k-shot, train_examples for a budget, the train split size for
the full protocol (validation examples, used for model selection, are not counted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.sitegen.charts import linear_ticks, log_ticks
from harness.sitegen.links import Links
from harness.sitegen.results import Board

MAX_MODELS = 8  # curves per plot: the best at the largest budget (the table below lists the rest)
COLOURS = ("#0550ae", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#116329", "#953800", "#57606a")
SHOT_KEYS = ("k_shot", "train_examples", "repeats", "val_examples")


@dataclass(frozen=True, slots=True)
class CurvePoint:
    protocol: str
    examples: int
    value: float
    low: float | None
    high: float | None
    x: float
    y: float
    y_low: float
    y_high: float


@dataclass(frozen=True)
class Curve:
    model: str
    href: str
    colour: str
    points: tuple[CurvePoint, ...]
    path: str  # the line
    band: str  # the CI band polygon


@dataclass(frozen=True)
class CurvePlot:
    title: str
    base: str  # the protocol implementation (linear_probe, finetune)
    protocols: tuple[tuple[str, int], ...]  # (protocol name, labelled examples), fewest first
    curves: tuple[Curve, ...]
    n_models: int  # models with a curve (the plot draws the MAX_MODELS best)
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]


def series(board: Board, task: str) -> list[tuple[str, list[tuple[str, int]]]]:
    """(protocol implementation, [(protocol name, labelled examples), ...]) for each set of this task's
    protocols that differ only in how many labelled examples they train on (at least 3 sizes)."""
    meta = board.task(task)
    groups: dict[tuple[str, str], dict[int, str]] = {}
    for protocol in board.protocols:
        if (task, protocol) not in board.by_task_protocol:
            continue
        cfg = board.snapshot.protocol_configs.get(protocol) or {}
        base, options = cfg.get("protocol"), cfg.get("config")
        if not isinstance(base, str) or not isinstance(options, Mapping):
            continue
        n = _examples(options, len(meta.labels), meta.n_train)
        if n is None:
            continue
        rest = repr(sorted((k, repr(v)) for k, v in options.items() if k not in SHOT_KEYS))
        groups.setdefault((base, rest), {}).setdefault(n, protocol)
    out = []
    for (base, _), by_n in sorted(groups.items()):
        if len(by_n) >= 3:
            out.append((base, sorted(((p, n) for n, p in by_n.items()), key=lambda pn: pn[1])))
    return out


def _examples(options: Mapping[str, Any], n_labels: int, n_train: int | None) -> int | None:
    k, budget = options.get("k_shot"), options.get("train_examples")
    if isinstance(k, int) and k > 0:
        return k * max(n_labels, 1)
    if isinstance(budget, int) and budget > 0:
        return budget if n_train is None else min(budget, n_train)
    return n_train


def curve_plots(board: Board, task: str, links: Links) -> list[CurvePlot]:
    plots = []
    metric, sign = board.main_metric(task), board.sign(task)
    for base, points in series(board, task):
        by_model: dict[str, list[tuple[str, int, float, float | None, float | None]]] = {}
        for protocol, n in points:
            for r in board.by_task_protocol.get((task, protocol), ()):
                m = r.metric(metric)
                if r.status == "done" and m is not None and m.value == m.value:
                    by_model.setdefault(r.model, []).append((protocol, n, m.value, m.ci_low, m.ci_high))
        curves = {m: pts for m, pts in by_model.items() if len(pts) >= 2}
        if not curves:
            continue
        # The best at their largest budget first.
        ranked = sorted(curves, key=lambda m: (-max(p[1] for p in curves[m]), -sign * max(curves[m], key=lambda p: p[1])[2], m))
        plots.append(_plot(board, task, base, points, {m: curves[m] for m in ranked[:MAX_MODELS]}, len(curves), links))
    return plots


def _plot(
    board: Board,
    task: str,
    base: str,
    protocols: Sequence[tuple[str, int]],
    curves: Mapping[str, list[tuple[str, int, float, float | None, float | None]]],
    n_models: int,
    links: Links,
    width: int = 640,
    height: int = 360,
) -> CurvePlot:
    left, top, right, bottom = 64, 16, width - 170, height - 48  # legend on the right
    xs = [n for _, n in protocols]
    lo_x, hi_x = math.log10(max(min(xs), 1)), math.log10(max(max(xs), 2))
    pad = (hi_x - lo_x) * 0.05 or 0.1
    lo_x, hi_x = lo_x - pad, hi_x + pad
    values = [v for pts in curves.values() for p in pts for v in (p[2], p[3], p[4]) if v is not None and v == v]
    lo_y, hi_y = max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.02)
    if hi_y - lo_y < 0.05:
        lo_y, hi_y = max(0.0, hi_y - 0.05), max(hi_y, 0.05)

    def sx(n: int) -> float:
        return round(left + (math.log10(max(n, 1)) - lo_x) / (hi_x - lo_x) * (right - left), 1)

    def sy(v: float) -> float:
        return round(bottom - (min(max(v, lo_y), hi_y) - lo_y) / (hi_y - lo_y) * (bottom - top), 1)

    out = []
    for i, (model, pts) in enumerate(curves.items()):
        pts = sorted(pts, key=lambda p: p[1])
        cps = tuple(
            CurvePoint(
                protocol, n, v, lo, hi, sx(n), sy(v),
                sy(lo if lo is not None else v), sy(hi if hi is not None else v),
            )  # fmt: skip
            for protocol, n, v, lo, hi in pts
        )
        path = " ".join(f"{'M' if j == 0 else 'L'}{p.x},{p.y}" for j, p in enumerate(cps))
        upper = [f"{p.x},{p.y_high}" for p in cps]
        lower = [f"{p.x},{p.y_low}" for p in reversed(cps)]
        band = "M" + " L".join(upper + lower) + " Z"
        out.append(Curve(model, links.model(model, "../"), COLOURS[i % len(COLOURS)], cps, path, band))
    ticks = [t for t in log_ticks(10**lo_x, 10**hi_x) if t >= 1]
    return CurvePlot(
        title=f"{base} on {task}",
        base=base,
        protocols=tuple(protocols),
        curves=tuple(out),
        n_models=n_models,
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        x_ticks=tuple((sx(int(t)), f"{t:g}") for t in ticks),
        y_ticks=tuple((sy(v), f"{v:.2f}") for v in linear_ticks(lo_y, hi_y)),
    )
