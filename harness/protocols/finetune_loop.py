"""One fine-tuning run: backbone + new linear head, AdamW, warm-up then decay, early stopping on validation.

Every optimizer step consumes one "effective batch" of `batch_size * grad_accum` examples, split into
micro-batches. Each micro-batch's summed loss is divided by the effective batch's size, so the
accumulated gradient is the mean over the effective batch however it is split: a CUDA out-of-memory
back-off (half the micro-batch, twice the accumulation) retries the same step with the same gradient.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.devices import release_cuda_memory, synchronize, to_device
from harness.errors import HarnessError, ModelOutputError
from harness.models.base import TrainableBackbone
from harness.protocols.finetune_model import Classifier, Inputs, freeze_bottom, predict_logits, take
from harness.protocols.finetune_runtime import PeakMemory, TrainPrecision, grad_scaler, train_autocast
from harness.seeding import seed_everything
from harness.tasks import Split


@dataclass(frozen=True)
class TrainSettings:
    """The hyper-parameters of one run (one point of the lr x epochs grid)."""

    lr: float
    head_lr: float
    epochs: int
    max_steps: int | None  # when set, overrides epochs (as in transformers.Trainer)
    batch_size: int
    grad_accum: int
    weight_decay: float
    warmup_ratio: float
    schedule: str  # linear | cosine | constant (after warm-up)
    eval_every: int | None  # optimizer steps between evaluations; None: at the end of every epoch
    patience: int | None  # evaluations without improvement before stopping; None: no early stopping
    max_grad_norm: float | None
    freeze_layers: int
    head_dropout: float
    bn_momentum: float | None  # batch-norm running-statistics momentum while training; None: the model's own
    eval_batch_size: int
    seed: int

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum


@dataclass(frozen=True)
class EvalPoint:
    step: int
    epoch: float
    train_loss: float  # mean per-example training loss since the previous evaluation
    val_macro_f1: float
    val_accuracy: float


@dataclass(frozen=True)
class OomBackoff:
    step: int
    micro_batch_size: int  # after the back-off
    grad_accum: int


@dataclass(eq=False)
class TrainOutcome:
    """A finished run: the classifier holds the best validation checkpoint, in eval mode."""

    settings: TrainSettings
    classifier: Classifier
    collate: Callable[[Sequence[Any]], dict[str, torch.Tensor]]
    best: EvalPoint
    steps: int
    planned_steps: int
    steps_per_epoch: int
    stopped_early: bool
    curve: list[EvalPoint]
    train_wall_s: float
    eval_wall_s: float
    examples_seen: int
    peak_memory_mb: float | None
    peak_memory_kind: str
    micro_batch_size: int
    grad_accum: int
    oom_backoffs: list[OomBackoff] = field(default_factory=list)
    trainable_params: int = 0
    frozen_params: int = 0


def lr_factor(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """Multiplier of the base learning rate after `step` optimizer steps: linear warm-up, then decay."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    return factor


def _macro_f1_and_accuracy(y: np.ndarray, pred: np.ndarray, n_labels: int) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    f1 = f1_score(y, pred, labels=list(range(n_labels)), average="macro", zero_division=0)
    return float(f1), float(accuracy_score(y, pred))


def _optimizer(model: Classifier, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases and norm weights (1-D tensors); the head may have its own lr."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((name.startswith("head."), param.ndim > 1), []).append(param)
    param_groups = [
        {
            "params": params,
            "lr": settings.head_lr if is_head else settings.lr,
            "weight_decay": settings.weight_decay if decays else 0.0,
        }
        for (is_head, decays), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=settings.lr)


class Trainer:
    """Runs `train` for one TrainSettings on one device; see the module docstring for batching."""

    def __init__(
        self,
        backbone: TrainableBackbone,
        n_labels: int,
        settings: TrainSettings,
        device: torch.device,
        precision: TrainPrecision,
    ) -> None:
        self.settings = settings
        self.device = device
        self.precision = precision
        self.n_labels = n_labels
        self.collate = backbone.collate
        self.model = Classifier(backbone.module, backbone.feature_dim, n_labels, settings.head_dropout).to(
            device
        )
        self.frozen = freeze_bottom(backbone, settings.freeze_layers)
        if settings.bn_momentum is not None:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.momentum = settings.bn_momentum
        self.optimizer = _optimizer(self.model, settings)
        self.scaler = grad_scaler(device, precision)
        self.micro_batch = settings.batch_size
        self.oom_backoffs: list[OomBackoff] = []
        self.step = 0

    def train(self, train: Split, validation: Split) -> TrainOutcome:
        s = self.settings
        y_train = torch.as_tensor(np.asarray(train.labels), dtype=torch.long)
        y_val = np.asarray(validation.labels)
        steps_per_epoch = math.ceil(len(train) / s.effective_batch)
        # max_steps, when set, overrides epochs
        planned = s.epochs * steps_per_epoch if s.max_steps is None else s.max_steps
        warmup = round(s.warmup_ratio * planned)
        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(s.schedule, warmup, planned))
        generator = torch.Generator().manual_seed(s.seed)

        curve: list[EvalPoint] = []
        best: EvalPoint | None = None
        best_state: dict[str, torch.Tensor] | None = None
        since_best = 0
        loss_sum, loss_n, examples_seen = 0.0, 0, 0
        train_s = eval_s = 0.0
        stopped_early = False
        with PeakMemory(self.device) as peak:
            for idx in self._effective_batches(len(train), generator):
                t0 = time.perf_counter()
                loss_sum += self.optimizer_step(train.inputs, y_train, idx)
                scheduler.step()
                synchronize(self.device)  # the optimizer update is queued asynchronously on CUDA
                self.step += 1
                loss_n += len(idx)
                examples_seen += len(idx)
                train_s += time.perf_counter() - t0
                end_of_epoch = self.step % steps_per_epoch == 0
                due = (self.step % s.eval_every == 0) if s.eval_every else end_of_epoch
                if not (due or self.step == planned):
                    continue
                t0 = time.perf_counter()
                f1, acc = _macro_f1_and_accuracy(
                    y_val, self._predict(validation.inputs).argmax(axis=1), self.n_labels
                )
                point = EvalPoint(self.step, self.step / steps_per_epoch, loss_sum / max(1, loss_n), f1, acc)
                curve.append(point)
                loss_sum, loss_n = 0.0, 0
                if best is None or point.val_macro_f1 > best.val_macro_f1:
                    best, since_best = point, 0
                    best_state = {
                        k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                    }
                else:
                    since_best += 1
                eval_s += time.perf_counter() - t0
                if self.step >= planned:
                    break
                if s.patience is not None and since_best >= s.patience:
                    stopped_early = True
                    break
        assert best is not None and best_state is not None  # the final step always evaluates
        self.model.load_state_dict(best_state)
        self.model.eval()
        n_frozen = sum(p.numel() for layer in self.frozen for p in layer.parameters())
        return TrainOutcome(
            settings=s,
            classifier=self.model,
            collate=self.collate,
            best=best,
            steps=self.step,
            planned_steps=planned,
            steps_per_epoch=steps_per_epoch,
            stopped_early=stopped_early,
            curve=curve,
            train_wall_s=train_s,
            eval_wall_s=eval_s,
            examples_seen=examples_seen,
            peak_memory_mb=peak.mb,
            peak_memory_kind=peak.kind,
            micro_batch_size=self.micro_batch,
            grad_accum=math.ceil(s.effective_batch / self.micro_batch),
            oom_backoffs=self.oom_backoffs,
            trainable_params=sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            frozen_params=n_frozen,
        )

    def _effective_batches(self, n: int, generator: torch.Generator) -> Iterator[np.ndarray]:
        """Example indices per optimizer step, reshuffled every epoch by the seeded generator."""
        size = self.settings.effective_batch
        epochs = range(self.settings.epochs) if self.settings.max_steps is None else itertools.count()
        for _ in epochs:
            order = torch.randperm(n, generator=generator).numpy()
            for start in range(0, n, size):
                yield order[start : start + size]

    def _predict(self, inputs: Sequence[Any]) -> np.ndarray:
        self.model.eval()
        return predict_logits(
            self.model,
            self.collate,
            inputs,
            self.settings.eval_batch_size,
            self.device,
            self.precision.inference,
        )

    def optimizer_step(self, inputs: Inputs, y: torch.Tensor, idx: np.ndarray) -> float:
        """One optimizer step on the examples `idx`; returns their summed loss. Retries after a CUDA OOM."""
        while True:
            try:
                loss_sum = self._accumulate(inputs, y, idx)
                break
            except torch.cuda.OutOfMemoryError as exc:
                if self.micro_batch == 1:
                    raise HarnessError(
                        f"finetune: CUDA out of memory at micro-batch size 1 (step {self.step + 1}): the model "
                        "does not fit for training on this GPU. Lower max_length / image_size, freeze layers "
                        "(freeze_layers), use precision bf16/fp16, or a GPU with more memory."
                    ) from exc
            # Outside the except block, so the exception's frames (holding activations) are released.
            self.optimizer.zero_grad(set_to_none=True)
            release_cuda_memory()
            self.micro_batch = max(1, self.micro_batch // 2)
            accum = math.ceil(self.settings.effective_batch / self.micro_batch)
            self.oom_backoffs.append(OomBackoff(self.step + 1, self.micro_batch, accum))
        self._apply_update()
        return loss_sum

    def _accumulate(self, inputs: Inputs, y: torch.Tensor, idx: np.ndarray) -> float:
        self.model.train()
        for layer in self.frozen:  # frozen blocks keep their dropout off and batch-norm statistics fixed
            layer.eval()
        total = torch.zeros((), device=self.device)
        for start in range(0, len(idx), self.micro_batch):
            part = idx[start : start + self.micro_batch]
            batch = to_device(self.collate(take(inputs, part)), self.device)
            target = y[torch.as_tensor(part)].to(self.device, non_blocking=True)
            with train_autocast(self.device, self.precision):
                logits = self.model(**batch)
            loss = F.cross_entropy(logits.float(), target, reduction="sum") / len(idx)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
            total += loss.detach()
        mean_loss = float(total)  # one host sync per optimizer step
        if not math.isfinite(mean_loss):
            kind = "NaN" if math.isnan(mean_loss) else "inf"
            advice = "lower the learning rate" + (
                " or train in fp32" if self.precision.name != "fp32" else ""
            )
            s = self.settings
            raise ModelOutputError(
                f"loss diverged ({kind}) at step {self.step + 1} (lr {s.lr:g}, head_lr {s.head_lr:g}, weight_decay "
                f"{s.weight_decay:g}, precision {self.precision.name}): {advice}."
            )
        return mean_loss * len(idx)

    def _apply_update(self) -> None:
        s = self.settings
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if s.max_grad_norm is not None:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def train_classifier(
    make_backbone: Callable[[], TrainableBackbone],
    train: Split,
    validation: Split,
    n_labels: int,
    settings: TrainSettings,
    device: torch.device,
    precision: TrainPrecision,
) -> TrainOutcome:
    """Seed everything, build a fresh backbone + head on `device`, train, keep the best checkpoint."""
    backbone = make_backbone()
    # Seeded after the backbone exists: a first call may load weights, and model construction draws
    # from the global RNG. The head's initialisation and dropout masks then follow the run seed alone.
    seed_everything(settings.seed)
    return Trainer(backbone, n_labels, settings, device, precision).train(train, validation)
