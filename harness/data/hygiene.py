"""Data hygiene: exact and near duplicates within and across the splits of a task.

Duplicates across splits ("leaks") inflate scores: a test example whose copy is in train measures
memorisation. `hygiene_report` is a pure function of the data; `cached_hygiene_report` stores its
result as JSON keyed by the data fingerprint; `apply_dedupe` drops duplicates; `format_report`
renders a report for `harness tasks --check`.

Exact duplicates compare text after NFKC, case folding and whitespace collapsing, and images by
pixel bytes (see content_hash). Near duplicates (text only) are pairs whose word-shingle sets have
an estimated Jaccard similarity >= threshold (MinHash + LSH from `datasketch`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.cache_dirs import harness_cache_root
from harness.data.content_hash import content_keys, normalise_text
from harness.errors import DataError
from harness.tasks import SPLIT_NAMES, TaskData

DedupeMode = Literal["drop-test-leaks", "drop-duplicates", "off"]
DEDUPE_MODES: tuple[str, ...] = ("drop-test-leaks", "drop-duplicates", "off")
DEFAULT_NEAR_THRESHOLD = 0.8
DEFAULT_SHINGLE_WORDS = 3
_NUM_PERM = 128
_REPORT_FORMAT = 1  # bump when the JSON layout or the computation changes (invalidates the cache)


class HygieneWarning(UserWarning):
    """Emitted when a task's given splits contain duplicates or cross-split leaks."""


@dataclass(frozen=True)
class DuplicateGroup:
    """Examples with the same (or, for near groups, similar) content, as (split, id) pairs."""

    members: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]  # the label of each member, same order

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(split for split, _ in self.members))

    @property
    def crosses_splits(self) -> bool:
        return len(self.splits) > 1

    @property
    def conflicting_labels(self) -> bool:
        return len(set(self.labels)) > 1


@dataclass(frozen=True)
class LeakCounts:
    """Examples of a later split whose content also occurs in an earlier split."""

    validation_in_train: int = 0
    test_in_train: int = 0
    test_in_validation: int = 0
    test_in_train_or_validation: int = 0

    @property
    def total(self) -> int:
        return self.validation_in_train + self.test_in_train_or_validation


@dataclass(frozen=True)
class HygieneReport:
    task: str
    modality: str
    fingerprint: str
    sizes: Mapping[str, int]
    # Per split: examples that repeat an earlier example of the same split (size - distinct contents).
    duplicates_within: Mapping[str, int]
    # Over the whole task: examples minus distinct contents (each extra copy counts once).
    duplicates_total: int
    exact_leaks: LeakCounts
    exact_groups: tuple[DuplicateGroup, ...]
    # None when near duplicates were not computed (image tasks, or not asked for).
    near_threshold: float | None = None
    near_leaks: LeakCounts | None = None
    # Groups of similar texts that are not all exact copies of one another.
    near_groups: tuple[DuplicateGroup, ...] = ()

    @property
    def has_leaks(self) -> bool:
        return self.exact_leaks.total > 0

    @property
    def label_conflicts(self) -> int:
        return sum(g.conflicting_labels for g in self.exact_groups)

    def to_json(self) -> str:
        return json.dumps({"format": _REPORT_FORMAT, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HygieneReport:
        d = json.loads(text)
        if d.pop("format", None) != _REPORT_FORMAT:
            raise ValueError("hygiene report written by another format version")

        def groups(items: list[dict[str, Any]]) -> tuple[DuplicateGroup, ...]:
            return tuple(
                DuplicateGroup(members=tuple((s, i) for s, i in g["members"]), labels=tuple(g["labels"]))
                for g in items
            )

        return cls(
            task=d["task"],
            modality=d["modality"],
            fingerprint=d["fingerprint"],
            sizes=d["sizes"],
            duplicates_within=d["duplicates_within"],
            duplicates_total=d["duplicates_total"],
            exact_leaks=LeakCounts(**d["exact_leaks"]),
            exact_groups=groups(d["exact_groups"]),
            near_threshold=d["near_threshold"],
            near_leaks=LeakCounts(**d["near_leaks"]) if d["near_leaks"] is not None else None,
            near_groups=groups(d["near_groups"]),
        )


def _leak_counts(cluster_of: Mapping[str, Sequence[Any]]) -> LeakCounts:
    train, validation = set(cluster_of["train"]), set(cluster_of["validation"])
    test = cluster_of["test"]
    return LeakCounts(
        validation_in_train=sum(c in train for c in cluster_of["validation"]),
        test_in_train=sum(c in train for c in test),
        test_in_validation=sum(c in validation for c in test),
        test_in_train_or_validation=sum(c in train or c in validation for c in test),
    )


def _groups(
    data: TaskData, cluster_of: Mapping[str, Sequence[Any]], keep: set[Any]
) -> tuple[DuplicateGroup, ...]:
    members: dict[Any, list[tuple[str, str, str]]] = defaultdict(list)
    for split in SPLIT_NAMES:
        s = data.splits[split]
        for example_id, label, cluster in zip(s.ids, s.labels, cluster_of[split], strict=True):
            if cluster in keep:
                members[cluster].append((split, example_id, data.spec.labels[int(label)]))
    return tuple(
        DuplicateGroup(members=tuple((sp, i) for sp, i, _ in m), labels=tuple(lab for _, _, lab in m))
        for m in members.values()
    )


def _shingles(text: str, words: int) -> set[bytes]:
    tokens = normalise_text(text).split()
    if len(tokens) <= words:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + words]).encode() for i in range(len(tokens) - words + 1)}


def near_duplicate_clusters(texts: Sequence[str], *, threshold: float, shingle_words: int) -> np.ndarray:
    """Cluster id per text: connected components of pairs with estimated Jaccard >= threshold."""
    from datasketch import MinHash, MinHashLSH
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    shingles = [_shingles(t, shingle_words) for t in texts]
    usable = [i for i, s in enumerate(shingles) if s]
    hashes = MinHash.bulk([list(shingles[i]) for i in usable], num_perm=_NUM_PERM, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=_NUM_PERM)
    for pos, m in enumerate(hashes):
        lsh.insert(pos, m)
    rows: list[int] = []
    cols: list[int] = []
    for pos, m in enumerate(hashes):
        for other in lsh.query(m):
            if other > pos and m.jaccard(hashes[other]) >= threshold:
                rows.append(usable[pos])
                cols.append(usable[other])
    n = len(texts)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def similarity_groups(
    texts: Sequence[str],
    *,
    threshold: float = DEFAULT_NEAR_THRESHOLD,
    shingle_words: int = DEFAULT_SHINGLE_WORDS,
    keys: Sequence[str] | None = None,
) -> list[int]:
    """Group id per text: exact copies and near duplicates (transitively) share an id.

    MinHash runs once per distinct content, so large groups of identical texts cost nothing extra.
    """
    keys = list(keys) if keys is not None else content_keys(texts)
    first_text: dict[str, str] = {}
    for k, text in zip(keys, texts, strict=True):
        first_text.setdefault(k, text)
    distinct = list(first_text)
    cluster_ids = near_duplicate_clusters(
        [first_text[k] for k in distinct], threshold=threshold, shingle_words=shingle_words
    )
    cluster_of_key = dict(zip(distinct, cluster_ids.tolist(), strict=True))
    return [cluster_of_key[k] for k in keys]


def hygiene_report(
    data: TaskData,
    *,
    near_duplicates: bool = True,
    near_threshold: float = DEFAULT_NEAR_THRESHOLD,
    shingle_words: int = DEFAULT_SHINGLE_WORDS,
) -> HygieneReport:
    """Exact (and, for text tasks, near) duplicates within and across the splits of `data`."""
    keys = {split: content_keys(data.splits[split].inputs) for split in SPLIT_NAMES}
    all_keys = [k for split in SPLIT_NAMES for k in keys[split]]
    counts: dict[str, int] = defaultdict(int)
    for k in all_keys:
        counts[k] += 1
    repeated = {k for k, c in counts.items() if c > 1}

    near_leaks: LeakCounts | None = None
    near_groups: tuple[DuplicateGroup, ...] = ()
    threshold: float | None = None
    if near_duplicates and data.spec.modality == "text":
        threshold = near_threshold
        texts = [x for split in SPLIT_NAMES for x in data.splits[split].inputs]
        clusters = similarity_groups(
            texts, threshold=near_threshold, shingle_words=shingle_words, keys=all_keys
        )
        near_of: dict[str, list[int]] = {}
        start = 0
        for split in SPLIT_NAMES:
            near_of[split] = clusters[start : start + len(keys[split])]
            start += len(keys[split])
        contents_per_cluster: dict[int, set[str]] = defaultdict(set)
        for k, c in zip(all_keys, clusters, strict=True):
            contents_per_cluster[c].add(k)
        near_leaks = _leak_counts(near_of)
        near_groups = _groups(data, near_of, {c for c, ks in contents_per_cluster.items() if len(ks) > 1})

    return HygieneReport(
        task=data.spec.name,
        modality=data.spec.modality,
        fingerprint=data.fingerprint,
        sizes=data.sizes(),
        duplicates_within={split: len(keys[split]) - len(set(keys[split])) for split in SPLIT_NAMES},
        duplicates_total=len(all_keys) - len(counts),
        exact_leaks=_leak_counts(keys),
        exact_groups=_groups(data, keys, repeated),
        near_threshold=threshold,
        near_leaks=near_leaks,
        near_groups=near_groups,
    )


def leak_summary(report_json: str | None) -> str | None:
    """One line for results on a task whose splits leak (from the report JSON the store keeps); None if clean."""
    if not report_json:
        return None
    try:
        report = HygieneReport.from_json(report_json)
    except (ValueError, KeyError, TypeError):
        return None
    exact = report.exact_leaks
    near = report.near_leaks
    if exact.total == 0 and (near is None or near.total == 0):
        return None
    parts = [
        f"{exact.test_in_train_or_validation} test and {exact.validation_in_train} validation examples "
        "have an exact copy in an earlier split"
    ]
    if near is not None and near.total > exact.total:
        parts.append(f"{near.test_in_train_or_validation} test examples have an exact or near copy (Jaccard >= {report.near_threshold})")
    return "; ".join(parts) + f": scores may be inflated (harness tasks --check {report.task})."


def default_cache_dir() -> Path:
    """$HARNESS_CACHE_DIR/hygiene, else the user's harness cache folder's (it ignored $XDG_CACHE_HOME)."""
    explicit = os.environ.get("HARNESS_CACHE_DIR")
    return (Path(explicit) if explicit else harness_cache_root()) / "hygiene"


def cached_hygiene_report(
    data: TaskData,
    *,
    cache_dir: Path | None = None,
    near_duplicates: bool = True,
    near_threshold: float = DEFAULT_NEAR_THRESHOLD,
    shingle_words: int = DEFAULT_SHINGLE_WORDS,
) -> HygieneReport:
    """`hygiene_report`, stored as JSON under `cache_dir` keyed by data fingerprint and parameters."""
    params = f"{_REPORT_FORMAT}:{data.spec.name}:{near_duplicates}:{near_threshold}:{shingle_words}"
    digest = hashlib.sha256(params.encode()).hexdigest()[:12]
    directory = cache_dir or default_cache_dir()
    path = directory / f"{data.fingerprint}-{digest}.json"
    if path.exists():
        try:
            return HygieneReport.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError):
            pass  # stale or damaged cache entry: recompute and overwrite
    report = hygiene_report(
        data, near_duplicates=near_duplicates, near_threshold=near_threshold, shingle_words=shingle_words
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp", encoding="utf-8") as f:
            f.write(report.to_json())
        os.replace(f.name, path)
    except OSError as exc:
        variable = next((v for v in ("HARNESS_CACHE_DIR", "XDG_CACHE_HOME") if os.environ.get(v)), None)
        if cache_dir is not None or variable is None:
            raise
        raise DataError(
            f"The data hygiene report cannot be cached in {directory} (${variable} is {os.environ[variable]!r}): "
            f"{exc.strerror or exc}. Set ${variable} to a writable folder, or unset it."
        ) from None
    return report


@dataclass(frozen=True, eq=False)
class DedupeOutcome:
    data: TaskData
    removed: Mapping[str, int]  # examples dropped per split


def apply_dedupe(data: TaskData, mode: DedupeMode) -> DedupeOutcome:
    """Drop duplicates by exact content key.

    drop-test-leaks: validation loses examples also in train; test loses examples also in train or
    validation (so evaluation never scores a copy of something trained or tuned on).
    drop-duplicates: the same, and within each split only the first of identical examples is kept.
    off: unchanged.
    """
    if mode not in DEDUPE_MODES:
        raise DataError(f"Unknown dedupe mode {mode!r}; expected one of {', '.join(DEDUPE_MODES)}.")
    if mode == "off":
        return DedupeOutcome(data, dict.fromkeys(SPLIT_NAMES, 0))
    seen_before: set[str] = set()
    splits = {}
    removed = {}
    for name in SPLIT_NAMES:
        split = data.splits[name]
        keys = content_keys(split.inputs)
        keep = []
        kept_here: set[str] = set()
        for i, k in enumerate(keys):
            if k in seen_before or (mode == "drop-duplicates" and k in kept_here):
                continue
            kept_here.add(k)
            keep.append(i)
        if not keep:
            raise DataError(
                f"Task {data.spec.name!r}: dedupe {mode!r} would remove every example of the {name!r} split "
                "(all of them also occur in an earlier split). Check the split files, or set dedupe: off."
            )
        seen_before |= set(keys)
        splits[name] = split if len(keep) == len(split) else split.subset(keep)
        removed[name] = len(split) - len(keep)
    return DedupeOutcome(TaskData(spec=data.spec, splits=splits), removed)


def summarise_problems(report: HygieneReport) -> str:
    """One sentence of numbers: duplicates within splits and exact leaks across them ('' if clean)."""
    parts = []
    within = {s: n for s, n in report.duplicates_within.items() if n}
    if within:
        parts.append(
            f"{sum(within.values())} examples repeat an earlier one of the same split ("
            + ", ".join(f"{s} {n}" for s, n in within.items())
            + ")"
        )
    leaks = report.exact_leaks
    if leaks.total:
        parts.append(
            f"{leaks.test_in_train_or_validation} test examples also occur in train or validation "
            f"({leaks.test_in_train} in train, {leaks.test_in_validation} in validation) and "
            f"{leaks.validation_in_train} validation examples also occur in train"
        )
    return "; ".join(parts)


def enforce_hygiene(data: TaskData, mode: DedupeMode, *, origin: str) -> TaskData:
    """Check exact duplicates, warn with the numbers (HygieneWarning) and apply `mode`."""
    report = hygiene_report(data, near_duplicates=False)
    problems = summarise_problems(report)
    if not problems:
        return data
    outcome = apply_dedupe(data, mode)
    if mode == "off":
        action = "kept them (dedupe: off); set dedupe: drop-test-leaks to score only unseen test examples"
    else:
        dropped = ", ".join(f"{s} {n}" for s, n in outcome.removed.items() if n) or "nothing"
        action = f"dropped {dropped} (dedupe: {mode})"
        if mode == "drop-test-leaks" and not report.has_leaks:
            action = "kept them: dedupe drop-test-leaks only removes cross-split copies (drop-duplicates removes these too)"
    warnings.warn(
        f"Task {data.spec.name!r} ({origin}): {problems} (exact match after case/whitespace "
        f"normalisation); {action}.",
        HygieneWarning,
        stacklevel=2,
    )
    return outcome.data


def _format_leaks(leaks: LeakCounts) -> str:
    return (
        f"validation in train {leaks.validation_in_train}, test in train {leaks.test_in_train}, "
        f"test in validation {leaks.test_in_validation}"
    )


def _format_groups(groups: Sequence[DuplicateGroup], limit: int) -> list[str]:
    ordered = sorted(groups, key=lambda g: (not g.crosses_splits, g.members))
    lines = [
        "    "
        + ", ".join(f"{s}:{i}" for s, i in g.members[:6])
        + (f" (+{len(g.members) - 6} more)" if len(g.members) > 6 else "")
        + (" (labels differ)" if g.conflicting_labels else "")
        for g in ordered[:limit]
    ]
    if len(groups) > limit:
        lines.append(f"    ... {len(groups) - limit} more groups")
    return lines


def format_report(report: HygieneReport, *, max_groups: int = 10) -> str:
    """Plain-text rendering for the terminal."""
    lines = [f"Data hygiene for task {report.task!r} (data fingerprint {report.fingerprint})"]
    lines.append(f"  {'split':<12}{'examples':>10}{'repeats within split':>24}")
    for split in SPLIT_NAMES:
        lines.append(f"  {split:<12}{report.sizes[split]:>10}{report.duplicates_within[split]:>24}")
    same = "identical pixels" if report.modality == "image" else "same text ignoring case and whitespace"
    lines.append(
        f"Exact duplicates ({same}): "
        f"{report.duplicates_total} extra copies in {len(report.exact_groups)} groups"
        f" ({report.label_conflicts} groups with conflicting labels)."
    )
    lines.append(f"Exact cross-split leaks: {_format_leaks(report.exact_leaks)}.")
    lines.extend(_format_groups(report.exact_groups, max_groups))
    if report.near_threshold is None or report.near_leaks is None:
        lines.append(
            "Near duplicates: not computed (images are compared by exact pixels only)."
            if report.modality == "image"
            else "Near duplicates: not computed."
        )
    else:
        n_examples = sum(len(g.members) for g in report.near_groups)
        lines.append(
            f"Near duplicates (estimated Jaccard >= {report.near_threshold:g} on word shingles): "
            f"{len(report.near_groups)} groups covering {n_examples} examples."
        )
        lines.append(f"Near or exact cross-split leaks: {_format_leaks(report.near_leaks)}.")
        lines.extend(_format_groups(report.near_groups, max_groups))
    verdict = (
        "no exact cross-split leaks" if not report.has_leaks else "LEAKS: scores on this split are inflated"
    )
    lines.append(f"Verdict: {verdict}.")
    return "\n".join(lines)


MAX_BALANCE_ROWS = 30  # labels listed one per line; a split missing a label is named whatever the count


def format_class_balance(data: TaskData, *, max_rows: int = MAX_BALANCE_ROWS) -> str:
    """Examples per label and split, for the terminal, and each split that has no example of a label: a
    test split without one leaves that label's recall and F1 undefined and shifts every macro average."""
    labels = data.spec.labels
    counts = {s: np.bincount(np.asarray(data.splits[s].labels), minlength=len(labels)) for s in SPLIT_NAMES}
    width = min(24, max(5, *(len(repr(label)) for label in labels)))
    lines = ["Class balance (examples per label):"]
    lines.append(f"  {'label':<{width}}" + "".join(f"{s:>12}" for s in SPLIT_NAMES))
    for i, label in enumerate(labels[:max_rows]):
        name = repr(label)
        name = name if len(name) <= width else name[: width - 3] + "..."
        lines.append(f"  {name:<{width}}" + "".join(f"{int(counts[s][i]):>12}" for s in SPLIT_NAMES))
    if len(labels) > max_rows:
        lines.append(f"  ... {len(labels) - max_rows} more labels")
    for split in SPLIT_NAMES:
        absent = [repr(labels[i]) for i in np.flatnonzero(counts[split] == 0)]
        if absent:
            shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
            them, their = ("it", "its") if len(absent) == 1 else ("them", "their")
            effect = {
                "train": f"a probe or fine-tune never learns {them}",
                "validation": f"model selection on it never sees {them}",
                "test": f"{their} recall and F1 are undefined and the macro averages leave {them} out or count 0",
            }[split]
            lines.append(f"Warning: the {split} split has no example of {shown}: {effect}.")
    return "\n".join(lines)
