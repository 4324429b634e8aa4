"""The fine-tune protocol's body: few-shot draws, the lr x epochs grid, repeats, and what is recorded.

See harness/protocols/finetune.py for the configuration and what the protocol does.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score

from harness.data.splits import apportion
from harness.devices import release_cuda_memory, resolve_device
from harness.models.base import ModelAdapter
from harness.protocols.base import (
    ProtocolContext,
    ProtocolOutput,
    macro_f1,
    repeat_metrics,
    require_two_labels,
    softmax,
)
from harness.protocols.finetune import FinetuneConfig
from harness.protocols.finetune_loop import EvalPoint, TrainOutcome, TrainSettings, train_classifier
from harness.protocols.finetune_model import predict_logits
from harness.protocols.finetune_runtime import TrainPrecision, backend_settings, training_precision
from harness.protocols.linear_probe import k_shot_indices
from harness.tasks import Split, TaskData


@dataclass(frozen=True, eq=False)
class _Repeat:
    """What is kept of one few-shot draw once its model is gone."""

    seed: int
    settings: TrainSettings
    best: EvalPoint
    train_wall_s: float
    grid: list[dict[str, Any]]
    n_train: int
    n_val: int
    preds: np.ndarray
    proba: np.ndarray  # (N_test, n_labels) softmax of the head's logits


def stratified_budget(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` indices (all when there are fewer), class shares kept (largest remainder), sorted."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    chosen = [
        rng.choice(np.flatnonzero(labels == cls), size=int(k), replace=False)
        for cls, k in zip(classes, apportion(n, counts), strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _draw(data: TaskData, config: FinetuneConfig, rng: np.random.Generator) -> tuple[Split, Split]:
    train, val = data.train, data.validation
    y_train = np.asarray(train.labels)
    if config.k_shot is not None:
        train = train.subset(k_shot_indices(y_train, config.k_shot, rng, data.spec.labels))
    elif config.train_examples is not None:
        train = train.subset(stratified_budget(y_train, config.train_examples, rng))
    if config.val_examples is not None:
        val = val.subset(stratified_budget(np.asarray(val.labels), config.val_examples, rng))
    return train, val


def train_settings(
    config: FinetuneConfig, lr: float, epochs: int, seed: int, eval_batch_size: int
) -> TrainSettings:
    return TrainSettings(
        lr=lr,
        head_lr=config.head_lr if config.head_lr is not None else lr,
        epochs=epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        grad_accum=config.grad_accum,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        schedule=config.schedule,
        eval_every=config.eval_every,
        patience=config.patience,
        max_grad_norm=config.max_grad_norm,
        freeze_layers=config.freeze_layers,
        head_dropout=config.head_dropout,
        bn_momentum=config.bn_momentum,
        eval_batch_size=eval_batch_size,
        seed=seed,
    )


def _grid_row(outcome: TrainOutcome) -> dict[str, Any]:
    s = outcome.settings
    return {
        "lr": s.lr,
        "epochs": s.epochs,
        "validation_macro_f1": outcome.best.val_macro_f1,
        "selected_step": outcome.best.step,
        "steps": outcome.steps,
        "train_wall_s": round(outcome.train_wall_s, 3),
    }


def _train_selected(
    adapter: ModelAdapter,
    train: Split,
    val: Split,
    n_labels: int,
    config: FinetuneConfig,
    seed: int,
    device: torch.device,
    precision: TrainPrecision,
    eval_batch_size: int,
) -> tuple[TrainOutcome, list[dict[str, Any]]]:
    """Train every lr x epochs grid point (same seed: same head init and data order); keep the best on
    validation macro-F1 (ties: the earlier point). Only the incumbent is kept, parked on the CPU."""
    best: TrainOutcome | None = None
    grid: list[dict[str, Any]] = []
    for lr, epochs in itertools.product(
        config.sweep_lr or (config.lr,), config.sweep_epochs or (config.epochs,)
    ):
        if best is not None:
            best.classifier.to("cpu")  # park the incumbent while the next grid point trains
        settings = train_settings(config, lr, epochs, seed, eval_batch_size)
        outcome = train_classifier(
            adapter.trainable_backbone, train, val, n_labels, settings, device, precision
        )
        grid.append(_grid_row(outcome))
        if best is None or outcome.best.val_macro_f1 > best.best.val_macro_f1:
            best = outcome
        del outcome
        release_cuda_memory()
    assert best is not None
    best.classifier.to(device)
    return best, grid


def _selected(
    o: TrainOutcome,
    repeats: Sequence[_Repeat],
    y_test: np.ndarray,
    n_labels: int,
    device: torch.device,
    precision: TrainPrecision,
    backend: dict[str, Any],
    wall_s: float,
) -> dict[str, Any]:
    """Hyper-parameters chosen and training cost of repeat 0 (the model whose predictions are stored)."""
    first = repeats[0]
    selected: dict[str, Any] = {
        "hyperparameters": dataclasses.asdict(o.settings),
        "lr": o.settings.lr,
        "epochs": o.settings.epochs,
        "selected_step": o.best.step,
        "selected_epoch": round(o.best.epoch, 3),
        "validation_macro_f1": o.best.val_macro_f1,
        "steps": o.steps,
        "planned_steps": o.planned_steps,
        "steps_per_epoch": o.steps_per_epoch,
        "stopped_early": o.stopped_early,
        "train_wall_s": round(o.train_wall_s, 3),
        "eval_wall_s": round(o.eval_wall_s, 3),
        "examples_per_s": round(o.examples_seen / o.train_wall_s, 2) if o.train_wall_s > 0 else None,
        "peak_memory_mb": round(o.peak_memory_mb, 1) if o.peak_memory_mb is not None else None,
        "peak_memory_kind": o.peak_memory_kind,
        "loss_curve_columns": ["step", "train_loss", "val_macro_f1"],
        "loss_curve": [[p.step, round(p.train_loss, 4), round(p.val_macro_f1, 4)] for p in o.curve],
        "micro_batch_size": o.micro_batch_size,
        "grad_accum_used": o.grad_accum,
        "oom_backoffs": [dataclasses.asdict(b) for b in o.oom_backoffs],
        "trainable_params": o.trainable_params,
        "frozen_params": o.frozen_params,
        "n_train_examples": first.n_train,
        "n_validation_examples": first.n_val,
        "grid": first.grid,
        "device": str(device),
        "precision": precision.name,
        "precision_requested": precision.requested,
        "precision_note": precision.note,
        "backend": backend,
        # Cost of the whole protocol: every grid point of every repeat, evaluations and test passes.
        "total_wall_s": round(wall_s, 3),
        "total_steps": sum(row["steps"] for r in repeats for row in r.grid),
    }
    if len(repeats) > 1:
        selected["repeats"] = [
            {
                "seed": r.seed,
                "n_train_examples": r.n_train,
                "lr": r.settings.lr,
                "epochs": r.settings.epochs,
                "selected_step": r.best.step,
                "validation_macro_f1": r.best.val_macro_f1,
                "test_macro_f1": macro_f1(y_test, r.preds, n_labels),
                "test_accuracy": float(accuracy_score(y_test, r.preds)),
                "train_wall_s": round(r.train_wall_s, 3),
            }
            for r in repeats
        ]
    return selected


def run_finetune(
    adapter: ModelAdapter, data: TaskData, config: FinetuneConfig, ctx: ProtocolContext
) -> ProtocolOutput:
    adapter.check_modality(data.spec)
    t0 = time.perf_counter()
    n_labels = len(data.spec.labels)
    device = resolve_device(adapter.device)
    precision = training_precision(device, config.precision)
    eval_batch_size = config.eval_batch_size or adapter.spec.batch_size
    n_repeats = config.repeats if config.few_shot else 1
    rng = np.random.default_rng(ctx.seed)
    y_test = np.asarray(data.test.labels)
    repeats: list[_Repeat] = []
    first: TrainOutcome | None = None
    with backend_settings(deterministic=config.deterministic, tf32=config.tf32) as backend:
        for r in range(n_repeats):
            train, val = _draw(data, config, rng)
            if len(np.unique(train.labels)) < 2:
                adapter.trainable_backbone()  # a model that cannot be fine-tuned is not applicable, whatever the data
                require_two_labels(train.labels, data.spec.labels, "finetune")
            seed = ctx.seed + r
            outcome, grid = _train_selected(
                adapter, train, val, n_labels, config, seed, device, precision, eval_batch_size
            )
            logits = predict_logits(
                outcome.classifier,
                outcome.collate,
                data.test.inputs,
                eval_batch_size,
                device,
                precision.inference,
            )
            proba = softmax(logits)
            preds = proba.argmax(axis=1)
            repeats.append(
                _Repeat(
                    seed,
                    outcome.settings,
                    outcome.best,
                    outcome.train_wall_s,
                    grid,
                    len(train),
                    len(val),
                    preds,
                    proba,
                )
            )
            if r == 0:  # repeat 0's model serves the stored predictions and the latency timing
                first = outcome
                if n_repeats > 1:
                    outcome.classifier.to("cpu")
            del outcome
            release_cuda_memory()
    assert first is not None
    classifier, collate = first.classifier.to(device).eval(), first.collate

    def predict(inputs: Sequence[Any]) -> np.ndarray:
        logits = predict_logits(classifier, collate, inputs, eval_batch_size, device, precision.inference)
        return np.asarray(logits.argmax(axis=1), dtype=np.int64)

    return ProtocolOutput(
        preds=np.asarray(repeats[0].preds, dtype=np.int64),
        scores=repeats[0].proba[np.arange(len(y_test)), repeats[0].preds],
        predict=predict,
        selected=_selected(
            first, repeats, y_test, n_labels, device, precision, backend, time.perf_counter() - t0
        ),
        extra_metrics=repeat_metrics(y_test, [r.preds for r in repeats], n_labels) if n_repeats > 1 else (),
        class_scores=repeats[0].proba,
        score_kind="probability",
    )
