"""Suite -> jobs -> executor -> store. The driver alone writes SQLite, one transaction per job."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness.config import SuiteConfig, TaskRef
from harness.deadline import check_job_timeout
from harness.errors import ConfigError, HarnessError, unknown_name
from harness.executors import Executor, LocalExecutor, ProgressCallback, SweepContext
from harness.executors.base import ExecutionStats
from harness.jobs import Job, JobResult, digest_cache_path, feature_cache_dir, make_job
from harness.metrics import TaskMetrics
from harness.models.base import Accelerator
from harness.models.identity import DigestCache, model_identity
from harness.store import Store, StoreReader
from harness.store.claims import JobClaims, lease_seconds, new_owner
from harness.tasks import Task, TaskData

if TYPE_CHECKING:
    from harness.registry import TaskRegistry


@dataclass(frozen=True)
class Selection:
    """--only-model / --only-task / --only-protocol filters (empty = everything)."""

    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()

    def admits(self, job: Job) -> bool:
        return (
            (not self.models or job.identity.model in self.models)
            and (not self.tasks or job.identity.task in self.tasks)
            and (not self.protocols or job.identity.protocol in self.protocols)
        )


FailedJobs = Literal["rerun", "only", "skip"]


@dataclass(frozen=True)
class RunControl:
    """Which selected jobs run. By default: those not yet in the store and those that failed last time.

    force: also the finished ones (each new result replaces the stored one in one transaction; features
    are recomputed, not read from the on-disk cache). failed: "only" runs just the jobs that failed last
    time (--retry-failed), "skip" leaves them alone (--skip-failed). job_timeout_s: each job's time limit
    (--job-timeout); a job past it is stopped and recorded as failed, and the run goes on."""

    force: bool = False
    failed: FailedJobs = "rerun"
    job_timeout_s: float | None = None


@dataclass
class Plan:
    jobs: list[Job]
    tasks: dict[str, Task]
    metrics: dict[str, TaskMetrics]  # task name -> its resolved metrics
    # Weight-file digests computed for the plan (saved by plan_suite unless save_digests=False).
    digests: DigestCache = field(repr=False, compare=False)
    skipped_modality: list[tuple[str, str]] = field(default_factory=list)  # (model, task) pairs
    modalities: dict[str, tuple[str, str]] = field(default_factory=dict)  # "model/task" -> (model's, task's)


@dataclass(frozen=True)
class SweepPlan:
    """The selected jobs sorted by what a run would do with each; `harness run --dry-run` prints it."""

    plan: Plan
    selected: tuple[Job, ...]
    to_run: tuple[Job, ...]
    done: tuple[Job, ...]  # done last time and kept
    not_applicable: tuple[tuple[Job, str], ...]  # stored as not applicable and kept, with the stored reason
    failed_last: tuple[tuple[Job, str], ...]  # failed last time, with the error (in to_run unless skipped)
    new: tuple[Job, ...]  # never attempted (in to_run unless --retry-failed)

    @property
    def total(self) -> int:
        return len(self.selected)


@dataclass
class SweepSummary:
    total: int
    already_done: int  # finished (done or not applicable) and kept
    not_rerun: int = 0  # failed last time, left alone (--skip-failed), or new, left alone (--retry-failed)
    ran: int = 0
    done: int = 0
    failed: int = 0
    not_applicable: int = 0
    wall_s: float = 0.0
    models_loaded: int = 0
    forward_passes: int = 0
    recorded_elsewhere: int = 0  # jobs another harness process on this store ran meanwhile (not run here)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (job label, error)


class TaskLoader:
    """Loads each task's data once per process; resolves data fingerprints from the store when possible."""

    def __init__(self) -> None:
        self.loaded: dict[str, TaskData] = {}

    def data(self, task: Task) -> TaskData:
        sig = f"{task.spec.name}@{task.source_signature()}"
        if sig not in self.loaded:
            self.loaded[sig] = task.load()
        return self.loaded[sig]

    def fingerprint(self, task: Task, store: StoreReader) -> str:
        stored = store.stored_fingerprint(task.spec.name, task.spec.version, task.source_signature())
        return stored if stored is not None else self.data(task).fingerprint


def plan_suite(
    suite: SuiteConfig,
    store: StoreReader,
    loader: TaskLoader,
    plugins: Sequence[Path] = (),
    *,
    save_digests: bool = True,
    accelerator: Callable[[], Accelerator] | None = None,
) -> Plan:
    """Expand the suite into keyed jobs. save_digests=False: write no cache file (the weight digests);
    the caller saves Plan.digests once the plan is checked, or never (dry runs). accelerator: what the workers
    that get a GPU resolve (Executor.accelerator; default: this machine), asked only when a model may use one."""
    from harness.models import check_spec, family
    from harness.registry import TaskRegistry

    registry = TaskRegistry.discover([*suite.plugins, *plugins])
    tasks: dict[str, Task] = {}
    metrics: dict[str, TaskMetrics] = {}
    refs: list[TaskRef] = []
    for ref in suite.tasks:
        if ref.name not in registry.names():
            raise HarnessError(f"{suite.path}: tasks: {unknown_name('task', ref.name, registry.names())}")
        try:
            task = registry.get(ref.name, ref.options or None)
        except ConfigError as exc:  # task options: name the suite file too
            raise ConfigError(f"{suite.path}: tasks: {exc}") from None
        ref, tasks[ref.name] = _without_a_limit_that_covers_the_test_split(ref, task, registry, loader, store)
        refs.append(ref)
        metrics[ref.name] = registry.task_metrics(ref.name)
    jobs: list[Job] = []
    skipped: list[tuple[str, str]] = []
    for model in suite.models:  # cheap checks first: a spec refused here hashes no weights, writes no cache
        check_spec(model.spec)
    for i, model in enumerate(suite.models):  # options an inference rule reads (onnx: its providers) checked first
        if not family(model.spec.family).cpu_only:
            family(model.spec.family).check_options(model.spec, str(suite.path), f"models[{i}]")
    workers = _workers_accelerator(suite, accelerator)
    inferences = {m.spec.name: family(m.spec.family).planned_inference(m.spec, workers) for m in suite.models}
    digests = DigestCache(digest_cache_path(store.path.resolve()))
    identities = {model.spec.name: model_identity(model.spec, digests) for model in suite.models}
    if save_digests:
        digests.save()
    modalities: dict[str, tuple[str, str]] = {}
    for model in suite.models:
        for ref in refs:
            if model.tasks is not None and ref.name not in model.tasks:
                continue
            task = tasks[ref.name]
            modality = family(model.spec.family).modality
            if modality != task.spec.modality:
                skipped.append((model.spec.name, ref.name))
                modalities[f"{model.spec.name}/{ref.name}"] = (modality, task.spec.modality)
                continue
            fingerprint = loader.fingerprint(task, store)
            for protocol in suite.protocols:
                if model.protocols is not None and protocol.name not in model.protocols:
                    continue
                for seed in suite.seeds:
                    jobs.append(
                        make_job(
                            suite, model, identities[model.spec.name], task, ref, fingerprint, protocol, seed,
                            metrics[ref.name], inferences[model.spec.name], workers,
                        )  # fmt: skip
                    )
    if not jobs and modalities:  # a suite of text models and image tasks (or the reverse) plans nothing
        pairs = "; ".join(f"{pair}: model {m}, task {t}" for pair, (m, t) in list(modalities.items())[:4])
        raise HarnessError(
            f"{suite.path}: no job to run: every model's modality differs from its tasks' ({pairs}"
            f"{'; ...' if len(modalities) > 4 else ''}). Add a model of the tasks' modality (harness models lists "
            "the families) or a task of the models'."
        )
    return Plan(jobs, tasks, metrics, digests, skipped, modalities)


def _workers_accelerator(suite: SuiteConfig, accelerator: Callable[[], Accelerator] | None) -> Accelerator:
    """Asked only when a model may use a GPU: a suite of CPU models plans without torch (or a Ray probe)."""
    from harness.models import family

    if not any(family(m.spec.family).gpu_capable and m.spec.device.strip().lower() != "cpu" for m in suite.models):
        return Accelerator(cuda=False)
    if accelerator is None:
        return Accelerator.here()
    return accelerator()


def _without_a_limit_that_covers_the_test_split(
    ref: TaskRef, task: Task, registry: TaskRegistry, loader: TaskLoader, store: StoreReader
) -> tuple[TaskRef, Task]:
    """A limit at least the test split's size (`--limit 500` of 360 examples) uses every test example: the job
    is the full run, so it is keyed, stored and labelled as one (kept, it was stored apart from the full run
    with the same scores and marked LIMITED). Finding the size loads the task's data, as working out the
    limited task's fingerprint would; a limited task the store holds already stays limited, so a finished
    limited suite still plans without loading anything."""
    from harness.data.task_options import ConfiguredTask

    limit = task.options.limit if isinstance(task, ConfiguredTask) else None
    if limit is None or store.stored_fingerprint(task.spec.name, task.spec.version, task.source_signature()):
        return ref, task
    options = {key: value for key, value in ref.options.items() if key != "limit"}
    full = registry.get(ref.name, options or None)
    n_test = len(loader.data(full).test)
    if not limit.covers(n_test):
        return ref, task
    warnings.warn(
        f"task {ref.name!r}: the limit {limit.value()} covers all {n_test:,} of its test examples, so this is a "
        "full run, stored as one (not as a limited run).",
        stacklevel=2,
    )
    return replace(ref, options=options), full


def plan_sweep(
    suite: SuiteConfig,
    store: StoreReader,
    loader: TaskLoader,
    *,
    selection: Selection = Selection(),
    control: RunControl = RunControl(),
    plugins: Sequence[Path] = (),
    read_only: bool = False,
    accelerator: Callable[[], Accelerator] | None = None,
) -> SweepPlan:
    """What `run_suite` would run, given the store. read_only (dry runs): writes nothing at all. accelerator: as
    plan_suite's (the executor's, for a plan that shows what its run would run)."""
    plan = plan_suite(suite, store, loader, plugins, save_digests=False, accelerator=accelerator)
    selected = [j for j in plan.jobs if selection.admits(j)]
    states = store.run_states(j.key for j in selected)
    to_run: list[Job] = []
    done: list[Job] = []
    not_applicable: list[tuple[Job, str]] = []
    failed: list[tuple[Job, str]] = []
    new: list[Job] = []
    for job in selected:
        state = states.get(job.key)
        status, error = (state.status, state.error) if state else (None, None)
        if status == "failed":
            failed.append((job, error or ""))
            run = control.force or control.failed != "skip"
        elif status is None:
            new.append(job)
            run = control.force or control.failed != "only"
        else:
            run = control.force
            if not run and status == "not_applicable":
                not_applicable.append((job, error or ""))
            elif not run:
                done.append(job)
        if run:
            to_run.append(job)
    check_model_options(suite, {job.model.spec.name for job in to_run})
    if not read_only:  # saved only now: a refused option leaves no cache file behind
        plan.digests.save()
    return SweepPlan(plan, tuple(selected), tuple(to_run), tuple(done), tuple(not_applicable), tuple(failed), tuple(new))


def check_model_options(suite: SuiteConfig, models: set[str]) -> None:
    """Each model that will run: its family options checked now, so a typo is exit 2 before any job, not a
    failed run (the adapter's module is imported for the job anyway)."""
    from harness.models import family

    for i, model in enumerate(suite.models):
        if model.spec.name in models:
            family(model.spec.family).check_options(model.spec, str(suite.path), f"models[{i}]")


@dataclass
class PlannedTasks:
    """The driver's tasks for the local executor: the plan's task objects and the loader's cached data."""

    plan: Plan
    loader: TaskLoader

    def task(self, ref: TaskRef) -> Task:
        return self.plan.tasks[ref.name]

    def data(self, task: Task) -> TaskData:
        return self.loader.data(task)

    def metrics(self, ref: TaskRef) -> TaskMetrics:
        return self.plan.metrics[ref.name]


def run_suite(
    suite: SuiteConfig,
    store: Store,
    *,
    selection: Selection = Selection(),
    label: str = "",
    plugins: Sequence[Path] = (),
    progress: ProgressCallback | None = None,
    on_plan: Callable[[Plan, int], None] | None = None,
    executor: Executor | None = None,
    control: RunControl = RunControl(),
) -> SweepSummary:
    """Plan, skip what the store already has (see RunControl), run the rest on `executor` (default:
    in-process) and write each result as it arrives."""
    t0 = time.perf_counter()
    loader = TaskLoader()
    check_job_timeout(control.job_timeout_s, executor.name if executor else LocalExecutor.name)
    executor = executor or LocalExecutor()
    with contextlib.closing(executor):  # a Ray connection opened to plan is closed however the run ends
        lease = lease_seconds()  # a bad $HARNESS_CLAIM_LEASE_S is refused before anything is planned or written
        sweep = plan_sweep(
            suite, store.reader, loader, selection=selection, control=control, plugins=plugins, accelerator=executor.accelerator
        )
        plan, todo = sweep.plan, list(sweep.to_run)
        store.record_task_groups(suite.name, suite.task_groups)
        summary = SweepSummary(total=sweep.total, already_done=len(sweep.done) + len(sweep.not_applicable))
        summary.not_rerun = sweep.total - len(todo) - summary.already_done
        if on_plan:
            on_plan(plan, len(todo))
        if isinstance(executor, LocalExecutor):
            check_local_devices(suite, todo)
        context = SweepContext(
            suite=suite,
            plugins=tuple(Path(p).expanduser().resolve() for p in plugins),
            feature_dir=feature_cache_dir(store.path.resolve()),
            tasks=PlannedTasks(plan, loader),
            refresh_features=control.force,
            job_timeout_s=control.job_timeout_s,
        )
        stats = ExecutionStats()
        if todo:
            claims = JobClaims(store, new_owner(), lease, store.reader.run_states([j.key for j in todo]))
            with claims.heartbeat():
                pending: list[Job] = todo
                while pending:
                    queue = ClaimQueue(pending, claims)
                    results = executor.run(queue, context, progress or (lambda j, r: None))
                    with contextlib.closing(results):  # on an error here, the executor stops its workers at once
                        for result in results:
                            _record(store, result, label, summary, replace=control.force)
                    stats = stats + executor.stats
                    summary.recorded_elsewhere += queue.recorded
                    pending = queue.busy
                    if pending and not queue.claimed:
                        time.sleep(CLAIM_POLL_S)  # every job left is another live process's: wait for it
        summary.models_loaded = stats.models_loaded
        summary.forward_passes = stats.forward_passes
        summary.wall_s = time.perf_counter() - t0
        return summary


def check_local_devices(suite: SuiteConfig, jobs: Sequence[Job]) -> None:
    """A CUDA device this machine lacks is refused before any job runs, naming the suite key (in-process runs;
    a Ray cluster's workers check their own devices)."""
    from harness.models import family

    wanted = {j.model.spec.name for j in jobs}
    for i, entry in enumerate(suite.models):
        spec = entry.spec
        if spec.name in wanted and family(spec.family).gpu_capable and spec.device.strip().lower().startswith("cuda"):
            from harness.devices import resolve_device

            try:
                resolve_device(spec.device)
            except HarnessError as exc:
                raise HarnessError(f"{suite.path}: models[{i}].device ({spec.name}): {exc}") from None


CLAIM_POLL_S = 0.5


class ClaimQueue:
    """The jobs of one round, each claimed just before the executor takes it (the local executor takes
    one at a time, Ray all at once). Jobs another live process holds are kept for the next round; jobs it
    recorded meanwhile are dropped."""

    def __init__(self, jobs: Sequence[Job], claims: JobClaims) -> None:
        self.jobs, self.claims = jobs, claims
        self.busy: list[Job] = []
        self.claimed = self.recorded = 0

    def __iter__(self) -> Iterator[Job]:
        for job in self.jobs:
            outcome = self.claims.claim(job.key)
            if outcome == "busy":
                self.busy.append(job)
            elif outcome == "recorded":
                self.recorded += 1
            else:
                self.claimed += 1
                yield job


def _record(store: Store, result: JobResult, label: str, summary: SweepSummary, replace: bool = False) -> None:
    written = store.write_run(
        result.record,
        label=label,
        model=result.model,
        task=result.task,
        hardware=result.hardware,
        replace=replace,
    )
    if not written:  # another process recorded it first (its claim outlived our lease): keep theirs
        summary.recorded_elsewhere += 1
        return
    summary.ran += 1
    status = result.record.status
    if status == "done":
        summary.done += 1
    elif status == "not_applicable":
        summary.not_applicable += 1
    else:
        summary.failed += 1
        ident = result.record.job
        summary.failures.append((f"{ident.model} / {ident.task} / {ident.protocol} / seed {ident.seed}", result.record.error or ""))
