"""Checks every adapter applies to what it returns, and small array helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.errors import DataError, ModelOutputError
from harness.models.base import ModelSpec


def checked_features(
    features: np.ndarray, spec: ModelSpec, what: str = "features", n_inputs: int | None = None
) -> np.ndarray:
    """float32, C-contiguous, 2-D (`n_inputs` rows when given) and finite, or ModelOutputError naming the model."""
    try:
        out = np.ascontiguousarray(features, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ModelOutputError(
            f"model {spec.name!r} ({spec.family}) produced {what} that are not numbers ({type(features).__name__}"
            f"{f' of dtype {features.dtype}' if isinstance(features, np.ndarray) else ''}: {exc}); expected a float32 "
            "array (N, D)."
        ) from None
    if np.ndim(features) != 2 or (n_inputs is not None and len(out) != n_inputs) or out.shape[1] == 0:
        rows = "N" if n_inputs is None else str(n_inputs)
        got = f"of shape {out.shape}" if np.ndim(features) else f"{type(features).__name__} {repr(features)[:40]}"
        raise ModelOutputError(
            f"model {spec.name!r} ({spec.family}) produced {what} {got}, expected ({rows}, D) with D >= 1"
            + (": one row per input, in input order." if n_inputs is not None else ".")
        )
    finite = np.isfinite(out)
    if not finite.all():
        bad_rows = int((~finite).any(axis=1).sum())
        raise ModelOutputError(
            f"model {spec.name!r} ({spec.family}) produced NaN/inf {what} for {bad_rows} of {len(out)} inputs "
            + ("(check the weights)." if spec.precision == "fp32" else f"(precision {spec.precision!r}; try fp32 or check the weights).")
        )
    return out


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def as_texts(inputs: Sequence[Any], spec: ModelSpec) -> list[str]:
    texts = list(inputs)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(
                f"model {spec.name!r} ({spec.family}) takes text, but input {i} is a {type(text).__name__}."
            )
    return texts


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices that sort texts longest first: batches pad less, and an OOM shows up on the first batch."""
    return np.argsort([-len(t) for t in texts], kind="stable")


def unsort(sorted_rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Inverse of `sorted_rows = rows[order]`."""
    rows = np.empty_like(sorted_rows)
    rows[order] = sorted_rows
    return rows
