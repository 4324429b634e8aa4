"""Per-use task options (from a suite file) and in-process caching of loaded task data.

Options apply to every task through a wrapper whose spec version and source signature carry them,
so job keys and the stored task rows differ between, say, the full and a subsampled task.

Supported options:
    subsample: {train: 2000, validation: 500, test: 1000, seed: 0}
        stratified random subset of at most that many examples per named split (seed default 0).
    limit: 200 | 0.1
        a quick look: a stratified, seeded (seed 0) cap on the TEST split only, as a count or a fraction
        of it (`harness run --limit`). Its version tag "+limit(...)" marks every result as a limited run.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.data.splits import subsample_task_data
from harness.errors import ConfigError, close_match
from harness.tasks import SPLIT_NAMES, Task, TaskData

OPTION_NAMES = ("subsample", "limit")
LIMIT_SEED = 0


@dataclass(frozen=True)
class Subsample:
    sizes: Mapping[str, int]
    seed: int = 0

    def tag(self) -> str:
        sizes = ",".join(f"{name}={self.sizes[name]}" for name in SPLIT_NAMES if name in self.sizes)
        return f"subsample({sizes},seed={self.seed})"


@dataclass(frozen=True)
class Limit:
    """A cap on the test split: `count` examples, or `fraction` of them (rounded up), stratified by label."""

    count: int | None = None
    fraction: float | None = None

    def size(self, n_test: int) -> int:
        if self.count is not None:
            return min(self.count, n_test)
        assert self.fraction is not None
        return max(1, min(n_test, math.ceil(self.fraction * n_test)))

    def value(self) -> int | float:
        return self.count if self.count is not None else float(self.fraction or 0.0)

    def tag(self) -> str:
        return f"limit(test={self.value()},seed={LIMIT_SEED})"


def parse_limit(value: Any, where: str) -> Limit:
    """200 -> at most 200 test examples; 0.1 (or "10%") -> a tenth of them. `where` names the option."""
    expected = "a positive whole number of test examples (e.g. 200) or a fraction between 0 and 1 (e.g. 0.1 or 10%)"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text[:-1]) / 100 if text.endswith("%") else (int(text) if text.isdigit() else float(text))
        except ValueError:
            raise ConfigError(f"{where}: expected {expected}; got {text!r}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected {expected}; got {value!r}.")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{where}: expected {expected}; got {value}.")
        return Limit(count=value)
    if not 0.0 < value < 1.0 or not math.isfinite(value):
        raise ConfigError(f"{where}: expected {expected}; got {value}.")
    return Limit(fraction=float(value))


_LIMIT_TAG = re.compile(r"\+limit\(test=([0-9.]+),seed=(\d+)\)")


def limited_run_note(task_version: str) -> str | None:
    """'test split capped at 200 examples (seed 0)' for a task version with a limit tag, else None."""
    match = _LIMIT_TAG.search(task_version or "")
    if not match:
        return None
    value, seed = match.groups()
    cap = f"{value} examples" if value.isdigit() else f"{float(value):.0%} of its examples"
    return f"test split capped at {cap} (seed {seed})"


@dataclass(frozen=True)
class TaskOptions:
    subsample: Subsample | None = None
    limit: Limit | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None, *, task: str) -> TaskOptions:
        if not options:
            return cls()
        for key in options:
            if key not in OPTION_NAMES:
                raise ConfigError(
                    f"Task {task!r}: unknown task option {key!r}.{close_match(str(key), OPTION_NAMES)} "
                    f"Supported options: {', '.join(OPTION_NAMES)}."
                )
        subsample = None
        if "subsample" in options:
            subsample = _parse_subsample(options["subsample"], task=task)
        limit = parse_limit(options["limit"], f"Task {task!r}: option 'limit'") if "limit" in options else None
        return cls(subsample=subsample, limit=limit)

    def tag(self) -> str:
        """'' without options, else '+'-prefixed suffixes for the task version."""
        return "".join(f"+{option.tag()}" for option in (self.subsample, self.limit) if option is not None)


def _parse_subsample(value: Any, *, task: str) -> Subsample:
    expected = "a mapping of split names (train, validation, test) to maximum sizes, plus an optional seed"
    if not isinstance(value, Mapping):
        raise ConfigError(f"Task {task!r}: option 'subsample' must be {expected}; got {value!r}.")
    sizes: dict[str, int] = {}
    seed = 0
    for key, n in value.items():
        if not isinstance(n, int) or isinstance(n, bool):
            raise ConfigError(f"Task {task!r}: option 'subsample.{key}' must be an integer, got {n!r}.")
        if key == "seed":
            seed = n
        elif key in SPLIT_NAMES:
            if n < 1:
                raise ConfigError(f"Task {task!r}: option 'subsample.{key}' must be at least 1, got {n}.")
            sizes[key] = n
        else:
            raise ConfigError(
                f"Task {task!r}: option 'subsample' has unknown key {key!r}."
                f"{close_match(str(key), (*SPLIT_NAMES, 'seed'))} Expected {expected}."
            )
    if not sizes:
        raise ConfigError(f"Task {task!r}: option 'subsample' names no split; expected {expected}.")
    return Subsample(sizes=sizes, seed=seed)


class CachedTask(Task):
    """Loads the wrapped task once per process (thread-safe); pickles without the loaded data."""

    def __init__(self, inner: Task) -> None:
        self.inner = inner
        self.spec = inner.spec
        self._data: TaskData | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedTask({self.inner!r})"

    def _load_uncached(self) -> TaskData:
        return self.inner.load()

    def load(self) -> TaskData:
        with self._lock:
            if self._data is None:
                self._data = self._load_uncached()
            return self._data

    def source_signature(self) -> str:
        return self.inner.source_signature()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_data"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class ConfiguredTask(CachedTask):
    """A task with options applied; its version and source signature include the options."""

    def __init__(self, inner: Task, options: TaskOptions) -> None:
        super().__init__(inner)
        self.options = options
        self.spec = replace(inner.spec, version=inner.spec.version + options.tag())

    def __repr__(self) -> str:
        return f"ConfiguredTask({self.inner!r}, {self.options!r})"

    def _load_uncached(self) -> TaskData:
        data = self.inner.load()
        if self.options.subsample is not None:
            data = subsample_task_data(data, self.options.subsample.sizes, self.options.subsample.seed)
        if self.options.limit is not None:
            data = subsample_task_data(data, {"test": self.options.limit.size(len(data.test))}, LIMIT_SEED)
        if data.spec is not self.spec:
            data = TaskData(spec=self.spec, splits=data.splits)
        return data

    def source_signature(self) -> str:
        inner = self.inner.source_signature()
        if not self.options.tag():
            return inner
        return hashlib.sha256(f"{inner}{self.options.tag()}".encode()).hexdigest()[:16]
