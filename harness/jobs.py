"""Jobs: one (model, task, protocol, seed). Planning computes keys; execution turns a job into a RunRecord.

Execution is pure (no store writes) so the local and Ray executors share it; only the driver writes.
"""

from __future__ import annotations

import dataclasses
import gc
import socket
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import RESULT_SCHEMA_VERSION
from harness.config import ModelEntry, ProtocolRef, SuiteConfig, TaskRef
from harness.data.signatures import package_version
from harness.deadline import JobTimedOut, job_deadline
from harness.digests import json_digest, plugin_code_digest
from harness.environment import run_environment
from harness.errors import HarnessError, ModelOutputError, NotApplicable
from harness.features import FeatureCache
from harness.metrics import MetricData, TaskMetrics, evaluate
from harness.models.base import Accelerator, Inference, ModelAdapter, ModelInfo
from harness.models.identity import ModelIdentity
from harness.protocols import get_protocol
from harness.protocols.base import ProtocolContext, checked_output
from harness.records import JobIdentity, MetricValue, Predictions, RunRecord, RunStatus, TaskRecord
from harness.seeding import seed_everything
from harness.tasks import Task, TaskData
from harness.timing import hardware_info, measure


@dataclass(frozen=True)
class Job:
    identity: JobIdentity
    model: ModelEntry
    task: TaskRef
    protocol: ProtocolRef
    model_identity: ModelIdentity
    inference: Inference | None = None  # as planned on the driver and keyed; None: a CPU-only family
    # The precision a training protocol runs in, keyed where the GPU's bf16 support changes it (planned_training).
    training: str | None = None

    @property
    def key(self) -> str:
        return self.identity.key


def job_key(config: Mapping[str, Any]) -> str:
    return json_digest(config, 24)


def job_config(
    suite: SuiteConfig,
    model: ModelEntry,
    model_identity: ModelIdentity,
    task: Task,
    fingerprint: str,
    protocol: ProtocolRef,
    seed: int,
    options: Mapping[str, Any],
    metrics: TaskMetrics,
    inference: Inference | None = None,
    training: str | None = None,
) -> dict[str, Any]:
    """Everything that shapes a result; its hash is the job key (resume skips a finished key)."""
    # The device kind and precision the model resolves to on the workers (device: auto is cuda or cpu, bf16 is
    # fp32 on the CPU), and a fine-tune's training precision where it depends on the GPU (bf16 or fp16): a store
    # filled on a CPU machine must not serve its results to a run on a GPU machine, nor a T4's to an A100's.
    trains_in = {} if training is None else {"training": training}
    runs_as = {} if inference is None else {"inference": {**dataclasses.asdict(inference), **trains_in}}
    return {
        "model": model.spec.as_dict(),
        **runs_as,
        "model_identity": model_identity.as_dict(),
        "task": {
            "name": task.spec.name,
            "version": task.spec.version,
            "fingerprint": fingerprint,
            "options": dict(options),
            "metrics": metrics.key(),
            # What the models are asked, beyond the data: the label set and order (zero-shot scores every
            # label), the zero-shot prompts and verbalizers, the causal-LM prompt. Editing any of them in a
            # task file without a version bump re-runs the jobs instead of serving the old scores.
            "prompting": {
                "labels": list(task.spec.labels),
                "prompt_templates": list(task.spec.prompt_templates),
                "label_verbalizers": dict(task.spec.label_verbalizers),
                "lm_prompt": task.spec.lm_prompt,
            },
        },
        "protocol": protocol_key(protocol),
        "seed": seed,
        "bootstrap": dataclasses.asdict(suite.bootstrap),
        "timing": dataclasses.asdict(suite.timing),
        "schema_version": RESULT_SCHEMA_VERSION,
    }


def protocol_key(protocol: ProtocolRef) -> dict[str, Any]:
    """The protocol's part of the job key: its name and options, the versions of the libraries it computes
    with, and the code of a protocol an installed package adds (an upgrade or edit re-runs its jobs)."""
    definition = get_protocol(protocol.protocol)
    key: dict[str, Any] = {"name": protocol.name, "protocol": protocol.protocol, "config": dataclasses.asdict(protocol.config)}
    if definition.packages:
        key["packages"] = {dist: package_version(dist) for dist in definition.packages}
    code = plugin_code_digest(definition.run)
    if code is not None:
        key["code"] = code
    return key


def make_job(
    suite: SuiteConfig,
    model: ModelEntry,
    model_identity: ModelIdentity,
    task: Task,
    ref: TaskRef,
    fingerprint: str,
    protocol: ProtocolRef,
    seed: int,
    metrics: TaskMetrics,
    inference: Inference | None,
    accelerator: Accelerator,
) -> Job:
    """`inference`: the model's, planned for workers like `accelerator` (models.Family.planned_inference)."""
    training = planned_training(protocol, inference, accelerator)
    config = job_config(
        suite, model, model_identity, task, fingerprint, protocol, seed, ref.options, metrics, inference, training
    )
    identity = JobIdentity(
        key=job_key(config),
        suite=suite.name,
        model=model.spec.name,
        task=task.spec.name,
        task_version=task.spec.version,
        data_fingerprint=fingerprint,
        protocol=protocol.name,
        seed=seed,
        config={**config, "suite_path": str(suite.path)},
        model_weights=model_identity.weights,
    )
    return Job(identity, model, ref, protocol, model_identity, inference, training)


def planned_training(protocol: ProtocolRef, inference: Inference | None, accelerator: Accelerator) -> str | None:
    """The precision the protocol trains in on workers like `accelerator`, where their GPU's bf16 support changes
    it (fine-tune's auto and bf16 on CUDA); None where the config and the device kind, both keyed, fix it (every
    CPU run: their keys stay as they were before this was keyed) or the protocol trains nothing."""
    rule = get_protocol(protocol.protocol).training_precision
    if rule is None or inference is None:
        return None
    if rule(protocol.config, inference.device, True) == rule(protocol.config, inference.device, False):
        return None
    # cuda planned as asked where no GPU is known (planned_inference): its precision as asked, bf16 supported.
    return rule(protocol.config, inference.device, accelerator.bf16 or not accelerator.cuda)


@dataclass(frozen=True)
class JobResult:
    """What a worker sends back to the driver: records only (the driver's store writer builds the rows)."""

    record: RunRecord
    model: ModelInfo | None  # what the loaded adapter reports; None when the model did not load
    task: TaskRecord | None
    hardware: Mapping[str, Any] | None  # timing.hardware_info()


_HYGIENE_JSON: dict[str, str] = {}  # data fingerprint -> report JSON (one computation per process)


def hygiene_json(data: TaskData, cache_dir: Path | None) -> str:
    from harness.data.hygiene import cached_hygiene_report

    if data.fingerprint not in _HYGIENE_JSON:
        _HYGIENE_JSON[data.fingerprint] = cached_hygiene_report(data, cache_dir=cache_dir).to_json()
    return _HYGIENE_JSON[data.fingerprint]


def task_record(task: Task, data: TaskData, metrics: TaskMetrics, hygiene_cache: Path | None = None) -> TaskRecord:
    spec = data.spec
    sizes = data.sizes()
    return TaskRecord(
        name=spec.name,
        version=spec.version,
        modality=spec.modality,
        labels=tuple(spec.labels),
        fingerprint=data.fingerprint,
        n_train=sizes["train"],
        n_validation=sizes["validation"],
        n_test=sizes["test"],
        source_signature=task.source_signature(),
        source=spec.source,
        license=spec.license,
        citation=spec.citation,
        # The resolved metrics (ids, labels, directions): readers of the store need no plugin code.
        spec={**spec.as_dict(), **metrics.describe()},
        hygiene_json=hygiene_json(data, hygiene_cache),
    )


@dataclass
class WorkerState:
    """Per-process caches: one loaded model at a time (jobs arrive grouped by model), loaded task data."""

    features: FeatureCache
    tasks: dict[str, tuple[Task, TaskData]] = field(default_factory=dict)
    adapter: ModelAdapter | None = None
    adapter_key: str | None = None
    models_loaded: int = 0
    load_s: float | None = None  # seconds the loaded adapter took to build and load its weights

    def get_adapter(self, model: ModelEntry, identity: ModelIdentity) -> ModelAdapter:
        """The model's adapter, loaded (weights included: `info()` forces them) and timed on first use."""
        from harness.models import load_adapter

        key = f"{model.spec.key}-{identity.token}"
        if self.adapter_key != key:
            self.release_model()
            t0 = time.perf_counter()
            adapter = load_adapter(model.spec)
            adapter.info()  # builds the network and reads the weights of lazily loading adapters
            self.load_s = time.perf_counter() - t0
            self.adapter, self.adapter_key = adapter, key
            self.models_loaded += 1
        assert self.adapter is not None
        return self.adapter

    def release_model(self) -> None:
        self.adapter, self.adapter_key, self.load_s = None, None, None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (HarnessError, ModelOutputError, NotApplicable)):
        return str(exc)
    tail = "".join(traceback.format_exception(exc)[-3:]).strip()
    return f"{type(exc).__name__}: {exc}\n{tail}"


def _timed_out_text(exc: JobTimedOut) -> str:
    return (
        f"The job ran past its time limit of {exc.seconds:g} s (--job-timeout) and was stopped{exc.where()}. It is "
        "recorded as failed: the next `harness run` tries it again (give it more time with a larger --job-timeout, "
        "or leave it alone with --skip-failed)."
    )


def check_inference(job: Job, adapter: ModelAdapter) -> None:
    """The job key says where and in what precision the model runs, as planned on the driver: a worker that
    resolves otherwise (no GPU where the driver has one, a GPU without bf16) must not store its result under it."""
    if job.inference is None or adapter.inference == job.inference:
        return
    raise HarnessError(
        f"Model {job.model.spec.name!r} (device: {job.model.spec.device}, precision: {job.model.spec.precision}) was "
        f"planned to run on {job.inference.describe()}, which its job key records, but on this worker "
        f"({socket.gethostname()}) it runs on {adapter.device} in {adapter.precision}; the result is not stored under "
        "that key. Run the workers on machines like the one that plans the run (a GPU, and bf16 support, on both or "
        "neither), or name the device and precision in the suite (e.g. device: cuda, precision: fp32)."
    )


def check_training(job: Job, adapter: ModelAdapter) -> None:
    """A training precision planned for GPUs with (or without) bf16 support, and a worker whose GPU differs."""
    rule = get_protocol(job.protocol.protocol).training_precision
    if job.training is None or rule is None:
        return
    here = rule(job.protocol.config, adapter.inference.device, Accelerator.here().bf16)
    if here == job.training:
        return
    raise HarnessError(
        f"Protocol {job.protocol.name!r} was planned to train model {job.model.spec.name!r} in {job.training}, "
        f"which its job key records, but on this worker "
        f"({socket.gethostname()}) it trains in {here} (its GPU {'supports' if here == 'bf16' else 'lacks'} bf16); the "
        "result is not stored under that key. Run the workers on GPUs like the ones the plan was made for (bf16 "
        "support on all or none), or name the precision in the protocol (e.g. precision: fp16)."
    )


def execute_job(
    job: Job,
    state: WorkerState,
    suite: SuiteConfig,
    task: Task,
    data: TaskData,
    task_metrics: TaskMetrics,
    timeout_s: float | None = None,
) -> JobResult:
    """Run one job to a record. Never raises for the job's own failure: it is recorded as failed. timeout_s:
    the job's time limit (model load, protocol, metrics, timing; the task data is loaded before)."""
    started, t0 = _now(), time.perf_counter()
    hw = hardware_info()["fingerprint"]
    env = run_environment(hw)
    status: RunStatus = "done"
    error: str | None = None
    metrics: tuple[MetricValue, ...] = ()
    confusion, predictions, timing, selected = None, None, None, {}
    notes: dict[str, str] = {}
    info: ModelInfo | None = None
    try:
        with job_deadline(timeout_s):
            seed_everything(job.identity.seed)
            adapter = state.get_adapter(job.model, job.model_identity)
            info = adapter.info()
            check_inference(job, adapter)
            check_training(job, adapter)
            inference = {"device": adapter.device, "precision": adapter.precision}
            protocol = get_protocol(job.protocol.protocol)
            ctx = ProtocolContext(
                features=state.features,
                seed=job.identity.seed,
                model_identity=job.model_identity.token,
                inference="" if job.inference is None else job.inference.tag,
            )
            out = checked_output(
                protocol.run(adapter, data, job.protocol.config, ctx), protocol.name, len(data.test), len(data.spec.labels)
            )
            y = np.asarray(data.test.labels)
            # Metrics are computed from the float32 scores the store keeps, so they can be recomputed from it.
            class_scores = None if out.class_scores is None else np.asarray(out.class_scores, dtype=np.float32)
            evaluation = evaluate(
                task_metrics,
                MetricData.of(y, out.preds, len(data.spec.labels), class_scores, out.score_kind),
                data.spec.labels,
                suite.bootstrap,
            )
            metrics, confusion, notes = evaluation.values + tuple(out.extra_metrics), evaluation.confusion, dict(evaluation.not_applicable)
            predictions = Predictions(
                data.test.ids, y, np.asarray(out.preds), np.asarray(out.scores), class_scores, out.score_kind
            )
            selected = {"inference": inference, **out.selected}
            if notes:
                selected["metrics_not_applicable"] = notes
            if suite.timing.enabled:
                timing = measure(
                    out.predict,
                    data.test.inputs,
                    batch_size=job.model.spec.batch_size,
                    device=adapter.device,
                    params=info.params,
                    cfg=suite.timing,
                    weight_bytes=info.weight_bytes,
                    load_s=state.load_s,
                )
    except NotApplicable as exc:
        status, error = "not_applicable", str(exc)
    except JobTimedOut as exc:
        status, error = "failed", _timed_out_text(exc)
    except Exception as exc:  # the sweep goes on; the failure is recorded with its reason
        status, error = "failed", _error_text(exc)
    except SystemExit as exc:  # model or task code calling sys.exit fails this job, not the whole sweep
        status, error = "failed", f"SystemExit: the job's code called sys.exit({exc.code!r})\n{_error_text(exc)}"
    if status != "done":
        metrics, confusion, predictions, timing = (), None, None, None
    record = RunRecord(
        job=job.identity,
        status=status,
        started_at=started,
        finished_at=_now(),
        duration_s=time.perf_counter() - t0,
        error=error,
        selected=selected,
        metrics=metrics,
        confusion=confusion,
        predictions=predictions,
        timing=timing,
        env=env,
    )
    hygiene_cache = state.features.root.parent / "hygiene" if state.features.root else None
    return JobResult(record, info, task_record(task, data, task_metrics, hygiene_cache), hardware_info())


def feature_cache_dir(db_path: Path) -> Path:
    return db_path.parent / ".cache" / "features"


def digest_cache_path(db_path: Path) -> Path:
    """Weight-file digests (see models.identity.DigestCache), next to the feature cache."""
    return db_path.parent / ".cache" / "weight-digests.json"
