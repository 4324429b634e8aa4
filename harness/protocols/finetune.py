"""Fine-tune protocol configuration (torch-free, so parsing a suite stays cheap) and its entry point.

The adapter's backbone + a new linear head, all weights trained (optionally the bottom N blocks
frozen), selected on validation macro-F1 (early stopping, optional lr x epochs grid), evaluated on test
with the best checkpoint. Few-shot (VTAB-1k style): `train_examples`/`val_examples` budgets (e.g.
800/200) or `k_shot` per class, `repeats` seeded draws; as with linear_probe's k-shot, the stored
predictions and headline metrics are those of repeat 0 and the spread over repeats is recorded as extra
metrics.

Two registered names share this code: `finetune` (whole train split) and `few_shot_finetune`
(FewShotFinetuneConfig: 800 train / 200 validation examples, 3 repeats). The work happens in
finetune_run (draws, grid, repeats), finetune_loop (one training run) and finetune_runtime (precision,
torch.backends settings, peak memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.protocols.limits import MAX_EPOCHS, MAX_REPEATS, MAX_STEPS

if TYPE_CHECKING:
    from harness.models.base import ModelAdapter
    from harness.protocols.base import ProtocolContext, ProtocolOutput
    from harness.tasks import TaskData


@dataclass(frozen=True)
class FinetuneConfig:
    lr: float = 5e-5  # backbone learning rate (AdamW)
    # A randomly initialised head needs larger steps than pretrained weights; None: same as lr.
    head_lr: float | None = 1e-3
    epochs: int = 3
    max_steps: int | None = None  # optimizer steps; when set, overrides epochs
    batch_size: int = 16  # examples per forward pass (halved on CUDA OOM, accumulation doubled)
    grad_accum: int = 1  # forward passes per optimizer step
    eval_batch_size: int | None = None  # None: the model's batch_size
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # fraction of the optimizer steps spent in linear warm-up
    schedule: Literal["linear", "cosine", "constant"] = "linear"  # decay after warm-up
    eval_every: int | None = None  # optimizer steps between validation evaluations; None: every epoch
    patience: int | None = 3  # evaluations without improvement before stopping; None: never stop early
    max_grad_norm: float | None = 1.0
    freeze_layers: int = 0  # bottom blocks (embeddings/stem first) kept frozen
    head_dropout: float = 0.1
    # Batch-norm running-statistics momentum while training (None: keep the model's). TF-ported weights
    # (EfficientNet-Lite) use 0.01, too slow for the statistics to follow a new domain in a short run.
    bn_momentum: float | None = 0.1
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"  # auto: bf16 (or fp16) on CUDA, fp32 on CPU
    deterministic: bool = True  # deterministic cuDNN kernels; False: cudnn.benchmark
    tf32: bool = True  # TF32 matmuls/convolutions on Ampere+ GPUs
    sweep_lr: tuple[float, ...] = ()  # grid of backbone learning rates (empty: just lr)
    sweep_epochs: tuple[int, ...] = ()  # grid of epoch counts (empty: just epochs)
    k_shot: int | None = None  # few-shot: examples per class drawn from train
    train_examples: int | None = None  # few-shot: stratified budget drawn from train
    val_examples: int | None = None  # stratified budget drawn from validation
    repeats: int = 1  # few-shot draws, each with its own seed (k_shot / train_examples only)

    def __post_init__(self) -> None:
        positive = {
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "repeats": self.repeats,
            "head_lr": self.head_lr,
            "max_steps": self.max_steps,
            "eval_every": self.eval_every,
            "patience": self.patience,
            "eval_batch_size": self.eval_batch_size,
            "max_grad_norm": self.max_grad_norm,
            "bn_momentum": self.bn_momentum,
            "k_shot": self.k_shot,
            "train_examples": self.train_examples,
            "val_examples": self.val_examples,
        }
        for name, value in positive.items():
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.repeats > MAX_REPEATS:
            raise ValueError(f"repeats must be at most {MAX_REPEATS:,}, got {self.repeats}")
        if self.epochs > MAX_EPOCHS:
            raise ValueError(f"epochs must be at most {MAX_EPOCHS:,}, got {self.epochs}")
        if any(v > MAX_EPOCHS for v in self.sweep_epochs):
            raise ValueError(f"sweep_epochs must hold epoch counts of at most {MAX_EPOCHS:,}, got {list(self.sweep_epochs)}")
        if self.max_steps is not None and self.max_steps > MAX_STEPS:
            raise ValueError(f"max_steps must be at most {MAX_STEPS:,}, got {self.max_steps}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if any(v <= 0 for v in self.sweep_lr):
            raise ValueError(f"sweep_lr must hold positive learning rates, got {list(self.sweep_lr)}")
        if any(v <= 0 for v in self.sweep_epochs):
            raise ValueError(f"sweep_epochs must hold positive epoch counts, got {list(self.sweep_epochs)}")
        if self.sweep_epochs and self.max_steps is not None:
            raise ValueError("sweep_epochs has no effect when max_steps is set (max_steps overrides epochs)")
        if self.k_shot is not None and self.train_examples is not None:
            raise ValueError("give either k_shot (per class) or train_examples (a total), not both")
        if self.repeats > 1 and not self.few_shot:  # one training run would be stored as several draws
            raise ValueError(
                f"repeats must be 1 without k_shot or train_examples, got {self.repeats}: repeats are few-shot "
                "draws, and the whole train split is drawn only one way (set k_shot or train_examples, or use "
                "the suite's seeds for runs with other seeds)"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.bn_momentum is not None and not 0.0 < self.bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1], got {self.bn_momentum}")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if self.freeze_layers < 0:
            raise ValueError(f"freeze_layers must be >= 0, got {self.freeze_layers}")

    @property
    def few_shot(self) -> bool:
        return self.k_shot is not None or self.train_examples is not None


@dataclass(frozen=True)
class FewShotFinetuneConfig(FinetuneConfig):
    """VTAB-1k style defaults: 800 training and 200 validation examples, 3 draws.

    Giving k_shot replaces the 800-example budget (k examples per class instead).
    """

    epochs: int = 5
    train_examples: int | None = 800
    val_examples: int | None = 200
    repeats: int = 3

    def __post_init__(self) -> None:
        if self.k_shot is not None:
            object.__setattr__(self, "train_examples", None)
        super().__post_init__()


def run(
    adapter: ModelAdapter, data: TaskData, config: FinetuneConfig, ctx: ProtocolContext
) -> ProtocolOutput:
    from harness.protocols.finetune_run import run_finetune

    return run_finetune(adapter, data, config, ctx)


def training_precision(config: FinetuneConfig, device: str, bf16_supported: bool) -> str:
    """The protocol's ProtocolDef.training_precision: the rule a run applies (finetune_runtime)."""
    from harness.protocols.train_precision import train_precision_rule

    return train_precision_rule(device, config.precision, bf16_supported).name
