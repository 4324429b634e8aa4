"""Deterministic stratified splitting and subsampling.

All randomness comes from `numpy.random.RandomState(seed)`, whose stream numpy keeps stable across
releases (unlike `default_rng`), so a seed gives the same split on every machine and version.

Why not `sklearn.model_selection.train_test_split(stratify=...)`: it rejects classes with a single
member and cannot keep duplicate groups together. Here per-class counts are apportioned with the
largest-remainder method (the same idea as sklearn's internal `_approximate_mode`), so totals are
exact, every class keeps its share, and tiny classes simply stay in train.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import DataError
from harness.tasks import SPLIT_NAMES, Split, TaskData


@dataclass(frozen=True, eq=False)
class SplitIndices:
    """Sorted row indices into a pool, one array per split; the three are disjoint."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def apportion(total: int, weights: Sequence[int] | np.ndarray) -> np.ndarray:
    """Split `total` into integers proportional to `weights` (largest remainder); each <= its weight."""
    w = np.asarray(weights, dtype=np.int64)
    if total < 0 or total > int(w.sum()):
        raise ValueError(f"cannot apportion {total} over weights summing to {int(w.sum())}")
    if total == 0 or w.sum() == 0:
        return np.zeros_like(w)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    # Stable sort on the negated remainder: ties go to the earlier class, so results are deterministic.
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise DataError(f"{name} must be a fraction in [0, 1), got {value!r}.")


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    *,
    validation_size: float,
    test_size: float,
    seed: int,
    groups: Sequence[Hashable] | np.ndarray | None = None,
) -> SplitIndices:
    """Split a pool into train/validation/test, stratified by label, deterministic by `seed`.

    `validation_size` and `test_size` are fractions of the pool (either may be 0 for an empty part).
    With `groups` (e.g. content hashes of duplicate examples), all members of a group land in the
    same split, so no example has a copy in another split. Validation and test are filled with whole
    groups up to their per-class example targets; a group that does not fit the room left (for any of
    the labels its members carry) goes to train. Without groups the per-class counts are exact.
    """
    _check_fraction("validation_size", validation_size)
    _check_fraction("test_size", test_size)
    if validation_size + test_size >= 1.0:
        raise DataError(
            f"validation_size + test_size must be below 1 (got {validation_size} + {test_size}); "
            "nothing would be left for train."
        )
    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if groups is None:
        group_of = np.arange(n)
    else:
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} labels")
        first_seen: dict[Hashable, int] = {}
        group_of = np.fromiter((first_seen.setdefault(g, len(first_seen)) for g in groups), np.int64, n)
    n_groups = int(group_of.max()) + 1 if n else 0
    classes, y_index = np.unique(y, return_inverse=True)
    n_classes = len(classes)
    # Label make-up of each group as (group, class, count) runs, sorted by group.
    pair, pair_count = np.unique(group_of * n_classes + y_index, return_counts=True)
    pair_group, pair_class = np.divmod(pair, n_classes)
    starts = np.searchsorted(pair_group, np.arange(n_groups + 1))
    # A group belongs to its majority class (ties: the first class), which decides its walk order.
    home = np.empty(n_groups, dtype=np.int64)
    for g in range(n_groups):
        lo, hi = starts[g], starts[g + 1]
        home[g] = pair_class[lo + int(np.argmax(pair_count[lo:hi]))]

    per_class_examples = np.bincount(y_index, minlength=n_classes)
    want_test = apportion(round(test_size * n), per_class_examples)
    want_val = apportion(round(validation_size * n), per_class_examples - want_test)
    have_test = np.zeros(n_classes, dtype=np.int64)
    have_val = np.zeros(n_classes, dtype=np.int64)

    rng = np.random.RandomState(seed)
    part_of_group = np.zeros(n_groups, dtype=np.int8)  # 0 train, 1 validation, 2 test
    for c in range(n_classes):
        members = np.flatnonzero(home == c)
        # Walk the class's groups in random order, filling test then validation up to their
        # per-class example targets; a group that does not fit (for any of its labels) stays in train.
        for g in members[rng.permutation(len(members))]:
            lo, hi = starts[g], starts[g + 1]
            g_classes, g_counts = pair_class[lo:hi], pair_count[lo:hi]
            if np.all(have_test[g_classes] + g_counts <= want_test[g_classes]):
                part_of_group[g] = 2
                have_test[g_classes] += g_counts
            elif np.all(have_val[g_classes] + g_counts <= want_val[g_classes]):
                part_of_group[g] = 1
                have_val[g_classes] += g_counts
    part = part_of_group[group_of]
    return SplitIndices(
        train=np.flatnonzero(part == 0),
        validation=np.flatnonzero(part == 1),
        test=np.flatnonzero(part == 2),
    )


def stratified_subsample_indices(labels: Sequence[int] | np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of a stratified random subset of `size` rows (all rows when size >= len)."""
    y = np.asarray(labels, dtype=np.int64)
    if size >= len(y):
        return np.arange(len(y))
    if size < 1:
        raise DataError(f"subsample size must be at least 1, got {size}.")
    classes = np.unique(y)
    members = [np.flatnonzero(y == c) for c in classes]
    counts = apportion(size, [len(m) for m in members])
    rng = np.random.RandomState(seed)
    chosen = [m[rng.permutation(len(m))[:k]] for m, k in zip(members, counts, strict=True)]
    return np.sort(np.concatenate(chosen))


def subsample_split(split: Split, size: int, seed: int) -> Split:
    if size >= len(split):
        return split
    return split.subset(stratified_subsample_indices(split.labels, size, seed))


def subsample_task_data(data: TaskData, sizes: Mapping[str, int], seed: int) -> TaskData:
    """Stratified subsample of the named splits to at most `sizes[split]` examples each."""
    splits = {
        name: subsample_split(data.splits[name], sizes[name], seed) if name in sizes else data.splits[name]
        for name in SPLIT_NAMES
    }
    return TaskData(spec=data.spec, splits=splits)
