"""The executor interface and the in-process job worker every executor runs jobs with.

An executor takes planned jobs and yields one JobResult per job as each finishes; it never writes the
store (the driver does, one transaction per result). The local and Ray executors differ only in where
a `JobWorker` lives: in the driver process, or in one Ray actor per model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from harness.features import FeatureCache
from harness.jobs import Job, JobResult, WorkerState, execute_job
from harness.models.base import Accelerator

if TYPE_CHECKING:
    from harness.config import SuiteConfig, TaskRef
    from harness.metrics import TaskMetrics
    from harness.registry import TaskRegistry
    from harness.tasks import Task, TaskData

ProgressCallback = Callable[[Job, JobResult | None], None]  # (job, None) when it starts; (job, result) when done


class TaskSource(Protocol):
    """Where a worker gets a job's task object and its loaded data."""

    def task(self, ref: TaskRef) -> Task: ...

    def data(self, task: Task) -> TaskData: ...

    def metrics(self, ref: TaskRef) -> TaskMetrics: ...


@dataclass(frozen=True)
class SweepContext:
    """What an executor needs besides the jobs."""

    suite: SuiteConfig
    plugins: tuple[Path, ...]  # --plugin paths (absolute); the suite's own plugins are in suite.plugins
    feature_dir: Path  # on-disk feature cache (absolute)
    tasks: TaskSource  # the driver's planned tasks and their cached data
    refresh_features: bool = False  # --force: recompute features instead of reading the on-disk cache
    job_timeout_s: float | None = None  # --job-timeout: each job's time limit (None: none)


@dataclass
class ExecutionStats:
    """Work counted by the workers (a fully cached re-run reports zero of both)."""

    models_loaded: int = 0
    forward_passes: int = 0

    def __add__(self, other: ExecutionStats) -> ExecutionStats:
        return ExecutionStats(
            self.models_loaded + other.models_loaded, self.forward_passes + other.forward_passes
        )


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self) -> None:
        self.stats = ExecutionStats()  # updated as results arrive

    @abstractmethod
    def run(
        self, jobs: Iterable[Job], context: SweepContext, progress: ProgressCallback
    ) -> Generator[JobResult, None, None]:
        """Yield one result per job, in completion order, as soon as each is known. Closing the
        generator early stops the workers. `jobs` may be lazy (the runner claims each job as it is
        taken): iterate it once, as late as the executor can."""

    def accelerator(self) -> Accelerator:
        """What a worker of this executor that gets a GPU resolves `device: auto` and the precisions with: the
        plan keys jobs by it (runner.plan_suite). Default: this process, where in-process workers run."""
        return Accelerator.here()

    def close(self) -> None:  # noqa: B027 - most executors hold nothing between runs
        """Release what planning or a run left open (the Ray executor's connection)."""


class JobWorker:
    """Runs jobs in this process. Jobs should arrive grouped by model: one model is kept loaded at a time;
    task data and features are cached for the life of the worker."""

    def __init__(
        self,
        suite: SuiteConfig,
        tasks: TaskSource,
        feature_dir: Path,
        refresh_features: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        self.suite = suite
        self.tasks = tasks
        self.timeout_s = timeout_s
        self.state = WorkerState(features=FeatureCache(feature_dir, refresh=refresh_features))

    def execute(self, job: Job) -> JobResult:
        task = self.tasks.task(job.task)
        data, metrics = self.tasks.data(task), self.tasks.metrics(job.task)
        return execute_job(job, self.state, self.suite, task, data, metrics, self.timeout_s)

    def stats(self) -> ExecutionStats:
        return ExecutionStats(self.state.models_loaded, self.state.features.forward_passes)

    def close(self) -> None:
        if self.state.models_loaded:  # release_model imports torch: 2 s a fully cached re-run need not pay
            self.state.release_model()


@dataclass
class DiscoveredTasks:
    """Tasks found again in a worker process from plugin paths.

    Task classes from a --plugin .py file live in a synthetic module that another process cannot
    unpickle, so workers get the paths and run discovery themselves (same registry, same options)."""

    plugins: tuple[Path, ...]
    _registry: TaskRegistry | None = field(default=None, init=False, repr=False)

    def registry(self) -> TaskRegistry:
        if self._registry is None:
            from harness.registry import TaskRegistry

            self._registry = TaskRegistry.discover(self.plugins)
        return self._registry

    def task(self, ref: TaskRef) -> Task:
        return self.registry().get(ref.name, ref.options or None)

    def metrics(self, ref: TaskRef) -> TaskMetrics:
        return self.registry().task_metrics(ref.name)

    def data(self, task: Task) -> TaskData:
        return task.load()  # the registry's tasks load once per process


def worker_lost_result(job: Job, attempts: int, reason: str) -> JobResult:
    """A failed record for a job whose worker process died on every attempt (crash, node loss, OOM-killer)."""
    from harness.environment import run_environment
    from harness.records import RunRecord

    now = datetime.now(UTC).isoformat(timespec="seconds")
    record = RunRecord(
        job=job.identity,
        status="failed",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        error=f"the worker process running this job died {attempts} time(s); last: {reason}",
        env=run_environment(None),
    )
    return JobResult(record, None, None, None)
