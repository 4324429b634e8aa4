"""The Ray executor: jobs run on a Ray cluster; the driver writes each result as it arrives.

Placement: the jobs of one model form a lane (several lanes per model with `workers_per_model > 1`,
split by task). Each lane runs on one Ray actor that keeps the model loaded between jobs; each job is
one actor call, and a lane has one call in flight, so when a worker dies the driver knows which job it
was running. The driver re-runs that job on a fresh actor up to `max_retries` times, then records it as
failed. A job that fails for its own reason (bad weights, NaN output, OOM at batch size 1) comes back
as a failed record from `execute_job` and is never retried.

Resources per actor: `num_cpus` (default 1; Ray sets OMP_NUM_THREADS to match) and one GPU for models
that can use one (every family but the CPU-only baselines, unless the model's device is "cpu") when the
cluster has GPUs. Ray assigns the GPU through CUDA_VISIBLE_DEVICES, so models should say
`device: auto` (or `cuda`), not `cuda:N`.

Planning: job keys hold the device kind and precisions the workers resolve, so the plan asks the cluster
(`RayExecutor.accelerator`: one task with a worker's GPU request reports torch's view of its GPU), not the
driver, which may have no GPU. The connection opened for it is kept for the run and closed by `close()`.

`import ray` happens only here, when a sweep is planned or starts.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.executors.base import (
    DiscoveredTasks,
    ExecutionStats,
    Executor,
    JobWorker,
    ProgressCallback,
    SweepContext,
    worker_lost_result,
)
from harness.jobs import Job, JobResult
from harness.models import family
from harness.models.base import Accelerator

if TYPE_CHECKING:
    from harness.config import SuiteConfig
    from harness.models.base import ModelSpec

INSTALL_HINT = "pip install 'harness[ray]'"


REACH_TIMEOUT_S = 5.0  # how long the head node may take to accept a TCP connection


@dataclass(frozen=True)
class RayOptions:
    # None: join the cluster named by RAY_ADDRESS, else start a local Ray instance for this run.
    # "auto": join the cluster running on this machine (`ray start --head` / a worker node).
    # "ray://host:10001": Ray Client to a remote head node.
    address: str | None = None
    max_retries: int = 3  # re-runs of a job whose worker process died (crash, node loss, OOM-killer)
    num_cpus: float = 1.0  # per worker (actor)
    num_gpus: float | None = None  # per worker of a GPU-capable model; None: 1 when the cluster has GPUs
    workers_per_model: int = 1  # >1 spreads one model's tasks over several workers, each loading the model

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise HarnessError(f"Ray executor: max_retries must be 0 or more, got {self.max_retries}.")
        if self.num_cpus < 0 or (self.num_gpus is not None and self.num_gpus < 0):
            raise HarnessError(
                f"Ray executor: num_cpus and num_gpus must be 0 or more, got {self.num_cpus} and {self.num_gpus}."
            )
        if self.workers_per_model < 1:
            raise HarnessError(f"Ray executor: workers_per_model must be 1 or more, got {self.workers_per_model}.")


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise HarnessError(
            f"--executor ray needs the Ray package, which is not installed ({exc}). Install it with "
            f"`{INSTALL_HINT}` (from a checkout: pip install -e '.[ray]'), or run with the default --executor local."
        ) from None
    return ray


def worker_resources(spec: ModelSpec, options: RayOptions, cluster_gpus: float) -> dict[str, float]:
    """The Ray resource request of a worker that runs `spec`'s jobs."""
    gpus = 0.0
    if family(spec.family).gpu_capable and spec.device.strip().lower() != "cpu":  # CPU-only: Ray gives no GPU
        gpus = options.num_gpus if options.num_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    return {"num_cpus": options.num_cpus, "num_gpus": gpus}


def gpu_worker_accelerator(ray: ModuleType, options: RayOptions) -> Accelerator:
    """What a worker given the GPU request of a GPU-capable model's worker (worker_resources) resolves."""
    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    request = options.num_gpus if options.num_gpus is not None else 1.0
    if gpus <= 0 or request <= 0 or request > gpus:  # workers get no GPU (or wait for none: refused when run)
        return Accelerator(cuda=False)
    probe = ray.remote(num_cpus=0, num_gpus=request, max_retries=0)(gpu_probe)
    try:
        accelerator: Accelerator = ray.get(probe.remote())
    except ray.exceptions.RayError as exc:
        raise HarnessError(
            f"Could not ask a Ray worker with a GPU what it runs models on (device: auto, bf16 support), which the "
            f"job keys record: {_last_line(exc)}. Every node needs harness and torch installed (see docs/ray.md)."
        ) from None
    return accelerator


def _probe_here() -> Accelerator:
    return Accelerator.here()


gpu_probe: Callable[[], Accelerator] = _probe_here  # run in a GPU worker by gpu_worker_accelerator


def plan_lanes(jobs: Sequence[Job], workers_per_model: int = 1) -> list[list[Job]]:
    """Jobs grouped by model, in first-seen order; a model's tasks split over up to `workers_per_model`
    lanes (a task's jobs stay together: its data and cached features are then loaded once)."""
    by_model: dict[str, dict[str, list[Job]]] = {}
    for job in jobs:
        by_model.setdefault(job.model.spec.key, {}).setdefault(job.task.name, []).append(job)
    lanes: list[list[Job]] = []
    for by_task in by_model.values():
        model_lanes: list[list[Job]] = [[] for _ in range(min(workers_per_model, len(by_task)))]
        for chunk in sorted(by_task.values(), key=len, reverse=True):
            min(model_lanes, key=len).extend(chunk)
        lanes += model_lanes
    return lanes


@dataclass(frozen=True)
class WorkerReply:
    result: JobResult
    stats: ExecutionStats  # the worker's totals so far


class ModelWorker:
    """The body of a Ray actor: a JobWorker whose tasks are re-discovered from plugin paths."""

    def __init__(
        self,
        suite: SuiteConfig,
        plugins: tuple[Path, ...],
        feature_dir: Path,
        cpus: float | None = None,
        refresh_features: bool = False,
        job_timeout_s: float | None = None,
    ) -> None:
        from harness.timing import configure_threads

        # Several workers share a node: each runs torch with its own CPU share of threads (recorded in
        # the hardware fingerprint and each timing row), not one thread per core each.
        configure_threads(cpus if cpus else None)
        self.tasks = DiscoveredTasks((*suite.plugins, *plugins))
        self.worker = JobWorker(suite, self.tasks, feature_dir, refresh_features, job_timeout_s)

    def execute(self, job: Job) -> WorkerReply:
        data = self.tasks.data(self.tasks.task(job.task))
        if data.fingerprint != job.identity.data_fingerprint:
            raise HarnessError(
                f'Task "{job.task.name}" loads different data on worker node {socket.gethostname()} '
                f"(fingerprint {data.fingerprint}) than the driver planned with ({job.identity.data_fingerprint}). "
                "Every node must see the same data files and package versions (see docs/ray.md)."
            )
        result = self.worker.execute(job)
        return WorkerReply(result, self.worker.stats())


@dataclass
class _Lane:
    """One worker's queue of jobs, run one at a time on one actor."""

    jobs: deque[Job]
    resources: dict[str, float]
    actor: Any = None
    losses: int = 0  # times a worker died running the job at the head of the queue
    finished: ExecutionStats = field(default_factory=ExecutionStats)  # counted by this lane's dead actors
    current: ExecutionStats = field(default_factory=ExecutionStats)  # last reported by the live actor


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, options: RayOptions = RayOptions()) -> None:
        super().__init__()
        self.options = options
        self._owns_connection = False  # this executor called ray.init (and calls ray.shutdown)

    def accelerator(self) -> Accelerator:
        """Asked of the cluster, whose workers may have GPUs the driver lacks (or lack the driver's): one task
        given a worker's GPU request reports what it sees. No GPU in the cluster: the workers get none."""
        ray = import_ray()
        self._connect(ray)
        return gpu_worker_accelerator(ray, self.options)

    def close(self) -> None:
        if self._owns_connection:
            import_ray().shutdown()
            self._owns_connection = False

    def run(
        self, jobs: Iterable[Job], context: SweepContext, progress: ProgressCallback
    ) -> Generator[JobResult, None, None]:
        claimed = list(jobs)  # every lane starts at once: claim them all now
        if not claimed:
            return
        ray = import_ray()
        self._connect(ray)
        lanes: list[_Lane] = []
        try:
            cluster = ray.cluster_resources()
            lanes = [
                _Lane(deque(lane), self._resources(lane[0].model.spec, cluster))
                for lane in plan_lanes(claimed, self.options.workers_per_model)
            ]
            actor_class = ray.remote(ModelWorker)
            pending: dict[Any, _Lane] = {}

            def submit(lane: _Lane) -> None:
                if lane.actor is None:
                    lane.actor = actor_class.options(max_restarts=0, **lane.resources).remote(
                        context.suite, context.plugins, context.feature_dir, lane.resources["num_cpus"],
                        context.refresh_features, context.job_timeout_s,
                    )
                job = lane.jobs[0]
                progress(job, None)
                pending[lane.actor.execute.remote(job)] = lane

            for lane in lanes:
                submit(lane)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                lane = pending.pop(ref)
                job = lane.jobs[0]
                result = self._collect(ray, ref, lane, job)
                if result is None:  # worker lost; the job goes again on a fresh actor
                    submit(lane)
                    continue
                lane.jobs.popleft()
                lane.losses = 0
                if lane.jobs:  # before yielding: the worker goes on while the driver writes the result
                    submit(lane)
                else:
                    self._retire(ray, lane)
                self.stats = sum((ln.finished + ln.current for ln in lanes), ExecutionStats())
                progress(job, result)
                yield result
        finally:
            for lane in lanes:
                self._retire(ray, lane)
            self.close()

    def _connect(self, ray: ModuleType) -> None:
        """Connect unless this process already is (then the connection is not this executor's to close)."""
        if ray.is_initialized():
            return
        address = self.options.address
        _check_reachable(address or os.environ.get("RAY_ADDRESS") or None)
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {address!r}" if address else "(RAY_ADDRESS or a new local instance)"
            raise HarnessError(
                f"Could not connect to a Ray cluster {where}: {str(exc).strip().rstrip('.')}. Start one with `ray start --head` and pass "
                "--address auto (see docs/ray.md), fix --address, or leave --address out to start a local Ray."
            ) from None
        self._owns_connection = True

    def _resources(self, spec: ModelSpec, cluster: dict[str, float]) -> dict[str, float]:
        wanted = worker_resources(spec, self.options, float(cluster.get("GPU", 0.0)))
        for key, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            have = float(cluster.get(resource, 0.0))
            if wanted[key] > have:
                raise HarnessError(
                    f'Model "{spec.name}": a Ray worker needs {wanted[key]:g} {resource}(s) but the whole cluster has '
                    f"{have:g}; lower the per-worker request or add nodes (see docs/ray.md)."
                )
        return wanted

    def _collect(self, ray: ModuleType, ref: Any, lane: _Lane, job: Job) -> JobResult | None:
        """The job's result; a failed record once its worker died more than max_retries times; None: retry."""
        try:
            reply: WorkerReply = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the worker raised outside the job (bad task data)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, HarnessError):
                raise HarnessError(str(cause)) from None
            raise
        except (
            ray.exceptions.RayActorError,
            ray.exceptions.WorkerCrashedError,
            ray.exceptions.NodeDiedError,
            ray.exceptions.ObjectLostError,
        ) as exc:
            if isinstance(exc, ray.exceptions.RayActorError) and exc.actor_init_failed:
                raise HarnessError(
                    f'A Ray worker for model "{job.identity.model}" failed to start: {_last_line(exc)}. '
                    "Every node needs harness and the model's packages installed (see docs/ray.md)."
                ) from None
            lane.finished, lane.current = lane.finished + lane.current, ExecutionStats()
            self._retire(ray, lane)
            lane.losses += 1
            if lane.losses <= self.options.max_retries:
                warnings.warn(
                    f"worker died running {_label(job)} ({_first_line(exc)}); "
                    f"retrying ({lane.losses} of {self.options.max_retries})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return None
            return worker_lost_result(job, lane.losses, _first_line(exc))
        lane.current = reply.stats
        return reply.result

    @staticmethod
    def _retire(ray: ModuleType, lane: _Lane) -> None:
        if lane.actor is not None:
            ray.kill(lane.actor)  # frees its GPU/CPU for the lanes still waiting
            lane.actor = None


def _label(job: Job) -> str:
    i = job.identity
    return f"{i.model} / {i.task} / {i.protocol} / seed {i.seed}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _check_reachable(address: str | None) -> None:
    """Refuse at once a HOST:PORT (or ray://HOST:PORT) where nothing listens: ray.init retried such an address for
    minutes and then called sys.exit, leaving the run hung. "auto" and a new local instance are Ray's to find."""
    if not address or address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # Ray explains a malformed address itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HarnessError(
            f"Could not connect to a Ray cluster at {address!r}: nothing answers at {host}:{port} ({reason}, within "
            f"{REACH_TIMEOUT_S:g} s). Check that the head node runs (`ray status` there), fix --address (or "
            "RAY_ADDRESS), or leave --address out to start a local Ray."
        ) from None


def _last_line(exc: BaseException) -> str:
    """The exception line at the end of a remote traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else type(exc).__name__
