"""Turn raw examples into a TaskData: split a single pool group-aware, or carve missing splits."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Sequence

from harness.data.content_hash import content_keys
from harness.data.hygiene import similarity_groups
from harness.data.loaders import RawExamples
from harness.data.splits import SplitIndices, stratified_split
from harness.tasks import Split, Task, TaskData, TaskSpec


def group_aware_split(
    pool: Split,
    *,
    validation_size: float,
    test_size: float,
    seed: int,
    near_threshold: float | None = None,
) -> dict[str, Split]:
    """Stratified split of `pool` in which identical examples (content_hash) never straddle splits.

    With `near_threshold` (text only), near-duplicate texts (MinHash Jaccard >= threshold) are kept
    together as well.
    """
    groups: Sequence[Hashable]
    if near_threshold is not None and pool.inputs and isinstance(pool.inputs[0], str):
        groups = similarity_groups(list(pool.inputs), threshold=near_threshold)
    else:
        groups = content_keys(pool.inputs)
    indices: SplitIndices = stratified_split(
        pool.labels, validation_size=validation_size, test_size=test_size, seed=seed, groups=groups
    )
    return {name: pool.subset(idx, name=name) for name, idx in indices.as_dict().items() if len(idx)}


def split_pool(
    spec: TaskSpec,
    pool: RawExamples,
    *,
    validation_size: float,
    test_size: float,
    seed: int,
    near_threshold: float | None = None,
) -> TaskData:
    splits = group_aware_split(
        pool.to_split("pool", spec.labels),
        validation_size=validation_size,
        test_size=test_size,
        seed=seed,
        near_threshold=near_threshold,
    )
    return TaskData(spec=spec, splits=splits)


class PooledTask(Task):
    """A task read as one labelled pool and split group-aware and stratified with a fixed seed.

    The split parameters are part of the task version: change them and bump `spec.version`.
    """

    validation_size: float = 0.2
    test_size: float = 0.2
    split_seed: int = 0
    # Text tasks: also keep near duplicates (estimated Jaccard >= this) in one split; None: exact only.
    near_duplicate_threshold: float | None = None

    @abstractmethod
    def read_pool(self) -> RawExamples: ...

    def load(self) -> TaskData:
        return split_pool(
            self.spec,
            self.read_pool(),
            validation_size=self.validation_size,
            test_size=self.test_size,
            seed=self.split_seed,
            near_threshold=self.near_duplicate_threshold,
        )


def split_summary(
    validation_size: float, test_size: float, seed: int, near_threshold: float | None = None
) -> str:
    train = round(100 * (1 - validation_size - test_size))
    kept = (
        "exact duplicates"
        if near_threshold is None
        else (f"exact and near duplicates (word-shingle Jaccard >= {near_threshold:g})")
    )
    return (
        f"Splits: stratified {train}/{round(100 * validation_size)}/{round(100 * test_size)} "
        f"train/validation/test (seed {seed}); {kept} are kept in one split, so no validation or test "
        "example has a copy in an earlier split."
    )
