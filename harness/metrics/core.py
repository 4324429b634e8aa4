"""What a metric is (MetricDef), what it is computed on (MetricData) and how a task uses it (TaskMetric).

A metric definition is data: a name, a display label, a direction, what it needs (predicted labels or
class scores of accepted kinds), default parameters, a point function (sklearn does the arithmetic) and,
where it pays, a vectorised resampled form. Everything else (bootstrap CIs, paired tests, tie groups,
the leaderboard and the CI gate) works for any metric from this definition alone.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from harness.digests import plugin_code_digest
from harness.errors import DataError, HarnessError, close_match
from harness.records import ScoreKind

Needs = Literal["labels", "scores"]
Shape = Literal["scalar", "per_class", "matrix"]
REQUIRED: Any = object()  # a parameter default meaning "the task must give it"

SCORE_KIND_TEXT: dict[str, str] = {
    "probability": "probabilities",
    "logit": "logits",
    "similarity": "cosine similarities (zero-shot text encoder)",
    "log_likelihood": "label log-likelihoods (language model)",
    "lexicon": "lexicon scores (rule-based model)",
}


@dataclass(frozen=True, eq=False)
class MetricData:
    """One run's test-set outcome: true labels, predicted labels and (optionally) class scores."""

    y: np.ndarray  # (N,) int64 label indices
    pred: np.ndarray  # (N,) int64 predicted label indices
    n_labels: int
    scores: np.ndarray | None = None  # (N, n_labels) float64, see score_kind
    score_kind: ScoreKind | None = None

    @classmethod
    def of(
        cls,
        y: Any,
        pred: Any,
        n_labels: int,
        scores: Any = None,
        score_kind: ScoreKind | None = None,
    ) -> MetricData:
        # Own, read-only copies: a metric's code that writes into them (a plugin's `data.pred[:] = 0`) fails its
        # job, naming the line, instead of changing the next metric's input and the labels the run stores.
        s = None if scores is None else _frozen(scores, np.float64)
        y, pred = _frozen(y, np.int64), _frozen(pred, np.int64)
        for what, a in (("label", y), ("prediction", pred)):
            if a.size and (a.min() < 0 or a.max() >= n_labels):
                raise DataError(f"a {what} is outside the {n_labels} label indices 0..{n_labels - 1}.")
        if s is not None and s.shape != (len(y), n_labels):
            raise DataError(f"class scores have shape {s.shape}, expected ({len(y)}, {n_labels}).")
        return cls(y, pred, n_labels, s, score_kind)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> MetricData:
        """The examples at `idx` (a bootstrap resample)."""
        scores = None if self.scores is None else self.scores[idx]
        return MetricData(self.y[idx], self.pred[idx], self.n_labels, scores, self.score_kind)

    @property
    def labels(self) -> list[int]:
        return list(range(self.n_labels))


def _frozen(values: Any, dtype: type) -> np.ndarray:
    a: np.ndarray = np.array(values, dtype=dtype)
    a.setflags(write=False)
    return a


class ClassCounts(NamedTuple):
    """What the confusion-matrix metrics are made of, per resample (row) and label (column): true
    positives, support (examples of the label) and predictions of the label, as float64 (small integers,
    exact); `total`: examples per resample."""

    tp: np.ndarray  # (m, L)
    support: np.ndarray  # (m, L): confusion-matrix row sums
    predicted: np.ndarray  # (m, L): column sums
    total: np.ndarray  # (m,)

    @classmethod
    def of_confusions(cls, cms: np.ndarray) -> ClassCounts:
        """Of a (m, L, L) stack of confusion matrices, rows = true label."""
        tp = np.diagonal(cms, axis1=1, axis2=2).astype(np.float64)
        support = cms.sum(axis=2).astype(np.float64)
        predicted = cms.sum(axis=1).astype(np.float64)
        return cls(tp, support, predicted, support.sum(axis=1))


PointFn = Callable[..., float]  # point(data: MetricData, **params) -> float
ResampledFn = Callable[..., np.ndarray]  # resampled(data, idx (m, N), **params) -> (m,) values
ConfusionFn = Callable[..., np.ndarray]  # from_confusions(cms (m, L, L) rows = true, **params) -> (m,)
CountsFn = Callable[..., np.ndarray]  # from_counts(counts: ClassCounts, **params) -> (m,)


@dataclass(frozen=True, eq=False)
class MetricDef:
    """A metric, defined once. `label` may use parameters, e.g. "Top-{k} accuracy"."""

    name: str
    label: str
    point: PointFn
    higher_is_better: bool = True
    needs: Needs = "labels"
    score_kinds: tuple[ScoreKind, ...] = ()  # needs == "scores": the kinds it accepts; () = any kind
    params: Mapping[str, Any] = field(default_factory=dict)  # defaults (REQUIRED: the task must give it)
    from_confusions: ConfusionFn | None = None  # vectorised form over confusion matrices
    # Vectorised form over per-class counts (a metric of tp, support and predictions per label): the
    # cheapest, no confusion matrices are built. Preferred to from_confusions when both are given.
    from_counts: CountsFn | None = None
    resampled: ResampledFn | None = None  # vectorised form over resample indices
    shape: Shape = "scalar"  # per_class: point returns one value per label; matrix: the confusion matrix
    # Per-example correctness is the whole metric (accuracy): paired tests use McNemar's exact/chi2 test.
    mcnemar: bool = False
    check_params: Callable[[Mapping[str, Any], int], str | None] | None = None  # -> error text or None
    description: str = ""
    origin: str = "built-in"
    # (lowest, highest) value the metric can take by its definition, e.g. (0, 1) for a share, math.inf for an
    # open end; None: not declared. Readers of the store refuse a stored value (or CI end) outside it.
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        # A plugin's typo (needs="score") was read as "labels": the metric ran without the scores it needs.
        for key, value, allowed in (("needs", self.needs, ("labels", "scores")), ("shape", self.shape, ("scalar", "per_class", "matrix"))):
            if value not in allowed:
                raise ValueError(f"metric {self.name!r}: {key} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        # higher_is_better="lower" was read as True: the metric ranked and gated the wrong way round. A score kind
        # misspelt ("probabilty") made the metric "not applicable" on every run.
        for key in ("higher_is_better", "mcnemar"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"metric {self.name!r}: {key} must be True or False, got {getattr(self, key)!r}")
        for key in ("point", "from_counts", "from_confusions", "resampled", "check_params"):
            fn = getattr(self, key)
            if not callable(fn) and (key == "point" or fn is not None):
                raise ValueError(f"metric {self.name!r}: {key} must be a function, got {fn!r}")
        if not isinstance(self.params, Mapping):
            raise ValueError(f"metric {self.name!r}: params must be a mapping of parameter -> default, got {self.params!r}")
        kinds = get_args(ScoreKind)
        listed = isinstance(self.score_kinds, (tuple, list))
        wrong = [k for k in self.score_kinds if k not in kinds] if listed else [self.score_kinds]
        if wrong:
            hint = close_match(str(wrong[0]), kinds) if listed else ""
            raise ValueError(
                f"metric {self.name!r}: score_kinds must be a tuple of {', '.join(map(repr, kinds))} (empty: any kind), "
                f"got {self.score_kinds!r}.{hint}".rstrip(".")
            )
        b = self.bounds
        if b is not None and not (
            isinstance(b, tuple) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b) and b[0] < b[1]
        ):
            raise ValueError(f"metric {self.name!r}: bounds must be (lowest, highest) numbers, lowest first, got {b!r}")

    def not_applicable(self, data: MetricData) -> str | None:
        """Why this metric cannot be computed on `data` (None: it can)."""
        if self.needs != "scores":
            return None
        if data.scores is None:
            return (
                f"{self.name} needs class scores, and this run has none stored "
                "(stored before class scores were kept); re-run the job to compute it."
            )
        if self.score_kinds and data.score_kind not in self.score_kinds:
            wanted = " or ".join(SCORE_KIND_TEXT.get(k, k) for k in self.score_kinds)
            got = SCORE_KIND_TEXT.get(str(data.score_kind), str(data.score_kind))
            return f"{self.name} needs {wanted}; this run's class scores are {got}."
        return None


@dataclass(frozen=True, eq=False)
class TaskMetric:
    """A metric as a task declares it: its definition, its parameters and its stored name (`id`)."""

    id: str
    metric: MetricDef
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        try:
            return self.metric.label.format(**self.params)
        except (KeyError, IndexError, ValueError):
            return self.metric.label

    @property
    def higher_is_better(self) -> bool:
        return self.metric.higher_is_better

    @property
    def scalar(self) -> bool:
        return self.metric.shape == "scalar"

    def point(self, data: MetricData) -> float:
        value = self.values(data)
        number = isinstance(value, (int, float, np.integer, np.floating)) or (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf"
        )
        # A plugin's point() returning True or "0.5" was stored as 1.0 or 0.5; one returning 10**400 failed
        # its job with a bare "int too large to convert to float", naming no metric.
        if not number or isinstance(value, bool):
            raise MetricCodeError(
                f'metric "{self.id}" returned {type(value).__name__} {repr(value)[:60]}, not a number (a metric\'s '
                "point() returns a float)."
            )
        try:
            return float(value)
        except OverflowError:
            raise MetricCodeError(
                f'metric "{self.id}" returned {type(value).__name__} {repr(value)[:60]}, too large for a float.'
            ) from None

    def values(self, data: MetricData) -> Any:
        """What the metric's point function returns; an exception it raises fails the job naming the metric
        and the line of its code that raised."""
        return self.call("point", self.metric.point, data)

    def call(self, form: str, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args, **params)`, one of the metric's functions (`form`: point, from_counts, ...); an exception it
        raises is a MetricCodeError naming the metric, the function and the line of its code that raised."""
        try:
            return fn(*args, **self.params)
        except Exception as exc:
            raise MetricCodeError(_code_failure(self.id, form, fn, exc)) from exc

    def describe(self) -> dict[str, Any]:
        """What the store keeps about a task's metric (tasks.spec_json), so readers need no plugin code."""
        return {
            "id": self.id,
            "name": self.metric.name,
            "params": dict(self.params),
            "label": self.label,
            "higher_is_better": self.higher_is_better,
            "needs": self.metric.needs,
            "score_kinds": list(self.metric.score_kinds),
            "shape": self.metric.shape,
            **({"bounds": bounds_json(self.metric.bounds)} if self.metric.bounds else {}),
        }

    def key(self) -> str:
        """Stable text of what shapes the metric's numbers (goes into the job key): for a plugin's metric, its
        code too (an edited point function recomputes the stored values instead of serving the old ones)."""
        m = self.metric
        code = plugin_code_digest(m.point, m.from_counts, m.from_confusions, m.resampled, m.check_params)
        return json.dumps([self.id, m.name, dict(self.params), *([code] if code else [])], sort_keys=True, default=str)


@dataclass(frozen=True)
class MetricInfo:
    """A metric as readers of the store know it (show, site, compare, pick): no code, just metadata."""

    id: str
    label: str
    higher_is_better: bool = True
    scalar: bool = True

    def better(self, a: float, b: float) -> bool:
        """a is strictly better than b."""
        return a > b if self.higher_is_better else a < b

    def sort_key(self, value: float | None) -> float:
        """Ascending sort key: best first, missing / NaN last."""
        if value is None or math.isnan(value):
            return math.inf
        return -value if self.higher_is_better else value

    @classmethod
    def from_description(cls, d: Mapping[str, Any]) -> MetricInfo:
        return cls(
            id=str(d["id"]),
            label=str(d.get("label") or d["id"]),
            higher_is_better=bool(d.get("higher_is_better", True)),
            scalar=d.get("shape", "scalar") == "scalar",
        )

    @classmethod
    def of(cls, tm: TaskMetric) -> MetricInfo:
        return cls(tm.id, tm.label, tm.higher_is_better, tm.scalar)


class MetricCodeError(HarnessError):
    """A metric's code raised, or returned what no metric can: its job fails with this one paragraph."""


def _code_failure(metric_id: str, form: str, fn: Callable[..., Any], exc: Exception) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if code is None or f.filename == code.co_filename]
    at = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    detail = " ".join(str(exc).split())
    whose = "" if form == "point" else f" (its {form}())"
    text = f'metric "{metric_id}"{whose} raised {type(exc).__name__}' + (f": {detail}" if detail else "") + at
    if isinstance(exc, ValueError) and "read-only" in detail:
        text += " (a metric must not change its input: MetricData's arrays are read-only)"
    return text + "."


def bounds_json(bounds: tuple[float, float]) -> list[float | None]:
    """MetricDef.bounds as a stored description holds them: JSON has no infinity, an open end is null."""
    return [v if math.isfinite(v) else None for v in bounds]


BOUNDS_SLACK = 1e-9  # floating-point sums may pass a bound by an ulp (the weighted F1 of a perfect run)


def within_bounds(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - BOUNDS_SLACK <= value <= bounds[1] + BOUNDS_SLACK


def bounds_text(bounds: tuple[float, float]) -> str:
    lo, hi = bounds
    if lo == -math.inf:
        return f"at most {hi:g}"
    return f"at least {lo:g}" if hi == math.inf else f"from {lo:g} to {hi:g}"


def described_bounds(d: Mapping[str, Any]) -> tuple[float, float] | None:
    """The bounds a stored metric description declares (TaskMetric.describe); for a description written
    before descriptions held them, those of the built-in metric it names; None when neither is known."""
    raw = d.get("bounds")
    if isinstance(raw, list) and len(raw) == 2:
        ends = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in raw]
        if all(v is None or math.isfinite(v) for v in ends):
            return (-math.inf if ends[0] is None else float(ends[0]), math.inf if ends[1] is None else float(ends[1]))
        return None
    from harness.metrics.builtin import BUILTIN_METRICS

    name = d.get("name")
    return next((m.bounds for m in BUILTIN_METRICS if m.name == name), None)
