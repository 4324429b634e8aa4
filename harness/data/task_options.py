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
import inspect
import math
import re
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from harness.data.splits import subsample_task_data
from harness.digests import plugin_code_digest
from harness.errors import ConfigError, DataError, HarnessError
from harness.seeding import check_seed
from harness.tasks import SPLIT_NAMES, Task, TaskData
from harness.typed_config import build, shown

LIMIT_SEED = 0


@dataclass(frozen=True)
class Subsample:
    """At most this many examples of each named split (a stratified random subset, seeded)."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, n in self.sizes.items():
            if n < 1:
                raise ValueError(f"{name} must be at least 1, got {n}.")
        if not self.sizes:
            raise ValueError(f"must name at least one split ({', '.join(SPLIT_NAMES)}) with its maximum size.")
        check_seed(self.seed)

    @property
    def sizes(self) -> dict[str, int]:
        return {name: n for name in SPLIT_NAMES if (n := getattr(self, name)) is not None}

    def tag(self) -> str:
        sizes = ",".join(f"{name}={n}" for name, n in self.sizes.items())
        return f"subsample({sizes},seed={self.seed})"


@dataclass(frozen=True)
class Limit:
    """A cap on the test split: `count` examples, or `fraction` of them (rounded up), stratified by label."""

    count: int | None = None
    fraction: float | None = None

    EXPECTED: ClassVar[str] = (
        "a positive whole number of test examples (e.g. 200) or a fraction between 0 and 1 (e.g. 0.1 or 10%)"
    )

    @classmethod
    def from_yaml(cls, value: Any) -> Limit:
        """200 -> at most 200 test examples; 0.1 (or "10%") -> a tenth of them; ValueError(EXPECTED) otherwise."""
        if isinstance(value, str):
            text = value.strip()
            try:
                value = float(text[:-1]) / 100 if text.endswith("%") else (int(text) if text.isdigit() else float(text))
            except ValueError:
                raise ValueError(cls.EXPECTED) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(cls.EXPECTED)
        if isinstance(value, int):
            if value < 1:
                raise ValueError(cls.EXPECTED)
            return cls(count=value)
        if not 0.0 < value < 1.0 or not math.isfinite(value):
            raise ValueError(cls.EXPECTED)
        return cls(fraction=float(value))

    def size(self, n_test: int) -> int:
        if self.count is not None:
            return min(self.count, n_test)
        assert self.fraction is not None
        return max(1, min(n_test, math.ceil(self.fraction * n_test)))

    def covers(self, n_test: int) -> bool:
        """Whether the cap keeps every one of `n_test` examples (e.g. 500 of 360): then it limits nothing."""
        return self.size(n_test) >= n_test

    def value(self) -> int | float:
        return self.count if self.count is not None else float(self.fraction or 0.0)

    def tag(self) -> str:
        return f"limit(test={self.value()},seed={LIMIT_SEED})"


def parse_limit(value: Any, where: str) -> Limit:
    """A limit given outside a file (e.g. `harness run --limit`); `where` names the option."""
    try:
        return Limit.from_yaml(value)
    except ValueError as exc:
        raise ConfigError(f"{where} must be {exc}, got {shown(value)}.") from None


_LIMIT_TAG = re.compile(r"\+limit\(test=([0-9.eE+-]+),seed=(\d+)\)")  # a fraction may print as 1e-05


def limited_run_note(task_version: str) -> str | None:
    """'test split capped at 200 examples (seed 0)' for a task version with a limit tag, else None."""
    match = _LIMIT_TAG.search(task_version or "")
    if not match:
        return None
    value, seed = match.groups()
    cap = f"{value} examples" if value.isdigit() else f"{float(value) * 100:.3g}% of its examples"
    return f"test split capped at {cap} (seed {seed})"


@dataclass(frozen=True)
class TaskOptions:
    """The options a suite may give a task (`tasks: [{name: digits, subsample: {...}, limit: 200}]`)."""

    subsample: Subsample | None = None
    limit: Limit | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None, *, file: str, at: str = "") -> TaskOptions:
        """Options checked by the schema engine; errors read `FILE: key 'AT.subsample.train' must be ...`."""
        return build(cls, options or {}, file=file, at=at)

    def tag(self) -> str:
        """'' without options, else '+'-prefixed suffixes for the task version."""
        return "".join(f"+{option.tag()}" for option in (self.subsample, self.limit) if option is not None)


def _in_task_file(exc: BaseException, task: Task) -> str | None:
    """'file:line' of the last frame of `exc`'s traceback in the file that defines a plugin task's class."""
    try:
        source = inspect.getsourcefile(type(task))
    except TypeError:
        return None
    if source is None or Path(source).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        return None  # the harness's own task classes (YAML tasks) name their files themselves
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


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
        return self._inner_data()

    def _inner_data(self) -> TaskData:
        data = self.inner.load()
        if not isinstance(data, TaskData):  # a plugin's load() that forgot its return
            raise HarnessError(
                f"Task {self.spec.name!r}: load() returned {type(data).__name__}, expected a harness.tasks.TaskData."
            )
        return data

    def load(self) -> TaskData:
        with self._lock:
            if self._data is None:
                try:
                    self._data = self._load_uncached()
                except DataError as exc:  # e.g. the Split a plugin task's load() built: say which line built it
                    at = _in_task_file(exc, self.inner)
                    if at is None:
                        raise
                    task = "" if str(exc).startswith(f"Task {self.spec.name!r}") else f"task {self.spec.name!r}, "
                    raise DataError(f"{str(exc).rstrip('.')} ({task}load() at {at}).") from exc
                except HarnessError:
                    raise
                except Exception as exc:  # a plugin task's own code: one paragraph naming the task and the line
                    frames = traceback.extract_tb(exc.__traceback__)
                    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
                    detail = " ".join(str(exc).split())
                    raise HarnessError(
                        f"Task {self.spec.name!r} could not load its data{where}: {type(exc).__name__}"
                        + (f": {detail}." if detail else ".")
                    ) from exc
            return self._data

    def source_signature(self) -> str:
        """The task's own signature, and for a task written in Python outside the harness (a plugin) the digest
        of its source file: an edit to how it loads or splits its data (e.g. its `split_seed`) is then seen
        without a version bump, the data is loaded and fingerprinted again, and jobs re-run if it changed."""
        inner = self.inner.source_signature()
        code = plugin_code_digest(self.inner)
        return inner if code is None else hashlib.sha256(f"{inner}{code}".encode()).hexdigest()[:16]

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
        data = self._inner_data()
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
