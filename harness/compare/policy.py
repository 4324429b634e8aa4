"""Regression policy: what counts as a failure in `harness compare`. From a YAML file and/or CLI flags."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError, close_match
from harness.metrics.evaluate import MAX_N_BOOT
from harness.typed_config import build, describe, schema_error
from harness.yaml_io import load_yaml

Percentile = Literal["p50", "p95", "p99"]
PERCENTILES = ("p50", "p95", "p99")
Correction = Literal["holm", "none"]
CORRECTIONS = ("holm", "none")


@dataclass(frozen=True)
class Policy:
    metric: str | None = None  # the gated metric; None: each task's main metric
    max_drop: float = 0.0  # a significant drop no larger than this (absolute, e.g. 0.01) is tolerated
    alpha: float = 0.05  # significance level of the paired tests
    # Multiple-testing correction across the gate tests of one compare: "holm" (Holm-Bonferroni step-down:
    # the chance of any false regression among all pairs stays <= alpha) or "none" (each pair at alpha alone).
    correction: Correction = "holm"
    # e.g. 1.2: fail when the candidate is >20% slower beyond noise; None: report latency only
    max_latency_ratio: float | None = None
    latency_at: Percentile = "p50"
    required_models: tuple[str, ...] = ()  # each must have a finished run in the candidate
    required_tasks: tuple[str, ...] = ()
    fail_on_not_comparable: bool = False  # e.g. the data fingerprint changed between baseline and candidate
    # No pair compared at all (the two sides share no finished run) fails unless this is set: a CI gate
    # must not pass on nothing.
    allow_nothing_comparable: bool = False
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {self.alpha}.")
        # An infinite limit is a gate that can never fail: a CI check that always passes, so it is refused
        # (leave max_latency_ratio out to report latency only).
        if not 0 <= self.max_drop < math.inf:
            raise ValueError(f"max_drop is an allowed drop, a finite number >= 0 (e.g. 0.01), got {self.max_drop}.")
        if self.max_latency_ratio is not None and not 1 <= self.max_latency_ratio < math.inf:
            raise ValueError(
                "max_latency_ratio must be a finite number >= 1 (1.2 = 20% slower allowed; leave it out to report "
                f"latency only), got {self.max_latency_ratio}."
            )
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}.")
        if self.latency_at not in PERCENTILES:
            raise ValueError(f"latency_at must be one of {', '.join(PERCENTILES)}, got {self.latency_at!r}.")
        for key in ("required_models", "required_tasks"):
            if "" in getattr(self, key):  # no run has an empty name: the gate would fail on an unset variable
                raise ValueError(f"{key} holds an empty name: {list(getattr(self, key))!r}; give names, or leave it out.")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be >= 100 for a usable p-value, got {self.n_boot}.")
        if self.n_boot > MAX_N_BOOT:
            raise ValueError(f"n_boot must be at most {MAX_N_BOOT:,} resamples (1000 is usual), got {self.n_boot}.")


def load_policy(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> Policy:
    """Policy from a YAML mapping of Policy fields, then CLI overrides (None values mean "not given")."""
    data: dict[str, Any] = {}
    where = "compare options"
    if path is not None:
        p = Path(path)
        where = str(p)
        loaded = load_yaml(p, "Policy file")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise schema_error(p, "", describe(Policy), loaded)
        data.update(loaded)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    return build(Policy, data, file=where)


def parse_correction(value: str, option: str) -> Correction:
    if value not in CORRECTIONS:
        raise HarnessError(
            f'{option} must be one of {", ".join(CORRECTIONS)}, got "{value}".{close_match(value, CORRECTIONS)} '
            "holm (the default) corrects for testing many pairs at once; none tests each pair at alpha alone."
        )
    return value  # type: ignore[return-value]


def parse_percentile(value: str, option: str) -> Percentile:
    if value not in PERCENTILES:
        raise HarnessError(
            f'{option} must be one of {", ".join(PERCENTILES)}, got "{value}".{close_match(value, PERCENTILES)}'
        )
    return value  # type: ignore[return-value]
