#!/usr/bin/env python
"""Fine-tuning throughput in bf16 autocast (and optionally fp16 + GradScaler) versus fp32.

Runs the fine-tune protocol's own optimizer step (harness.protocols.finetune_loop.Trainer: forward,
loss, backward, gradient clipping, AdamW) on synthetic batches for a randomly initialised BERT-base
(text) and EfficientNet-Lite0 (image), same model and batch in every precision. Warm-up steps are
excluded; the timed region is bracketed by CUDA synchronisation. Prints examples/s per precision and
the speed-up over fp32.

    python scripts/bench_finetune_precision.py                # GPU sizes: BERT-base seq 128, Lite0 224px
    python scripts/bench_finetune_precision.py --small        # CPU smoke sizes (bf16 autocast on CPU)
    python scripts/bench_finetune_precision.py --precisions fp32,bf16,fp16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from harness.devices import resolve_device, synchronize
from harness.models.base import TrainableBackbone
from harness.protocols.finetune import FinetuneConfig
from harness.protocols.finetune_loop import Trainer
from harness.protocols.finetune_run import train_settings
from harness.protocols.finetune_runtime import PeakMemory, backend_settings, training_precision
from harness.seeding import seed_everything

N_LABELS = 10


@dataclass(frozen=True)
class Workload:
    name: str
    make_backbone: Callable[[], TrainableBackbone]
    inputs: np.ndarray  # one row per example; collate turns a slice into the model's batch
    shape: str


@dataclass(frozen=True)
class Result:
    model: str
    shape: str
    batch_size: int
    precision: str
    examples_per_s: float
    step_ms_mean: float
    step_ms_std: float
    peak_memory_mb: float | None
    peak_memory_kind: str
    final_loss: float


def bert_workload(small: bool, seq_len: int, n_examples: int) -> Workload:
    from transformers import BertConfig, BertModel

    from harness.models.hf_common import PooledEncoder, transformer_layers

    config = (
        BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
        if small
        else BertConfig()  # BERT-base: 12 layers, hidden 768, 110M parameters
    )

    def make() -> TrainableBackbone:
        module = PooledEncoder(BertModel(config), "mean")
        return TrainableBackbone(module, _token_batch, config.hidden_size, transformer_layers(module.encoder))

    ids = np.random.default_rng(0).integers(1000, config.vocab_size, size=(n_examples, seq_len))
    return Workload(
        "bert-base (random init)" if not small else "bert-small (random init)", make, ids, f"seq {seq_len}"
    )


def _token_batch(rows: Sequence[Any]) -> dict[str, torch.Tensor]:
    ids = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def efficientnet_workload(image_size: int, n_examples: int) -> Workload:
    from efficientnet_lite_pytorch import EfficientNet

    from harness.models.efficientnet_lite import EfficientNetFeatures

    def make() -> TrainableBackbone:
        network = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        network._fc = torch.nn.Identity()
        module = EfficientNetFeatures(network)
        layers = [torch.nn.ModuleList([network._conv_stem, network._bn0]), *network._blocks]
        return TrainableBackbone(module, _pixel_batch, 1280, layers)

    pixels = np.random.default_rng(0).standard_normal(
        (n_examples, 3, image_size, image_size), dtype=np.float32
    )
    return Workload("efficientnet-lite0 (random init)", make, pixels, f"{image_size}px")


def resnet50_workload(image_size: int, n_examples: int) -> Workload:
    """torchvision ResNet-50 (random init; needs the vision environment, scripts/vision_env.sh)."""
    import torchvision

    from harness.models.image_encoder import PixelFeatures, ordered_blocks

    def make() -> TrainableBackbone:
        network = torchvision.models.resnet50(weights=None)
        network.fc = torch.nn.Identity()
        module = PixelFeatures(network)
        return TrainableBackbone(module, _pixel_batch, 2048, ordered_blocks(module))

    pixels = np.random.default_rng(0).standard_normal(
        (n_examples, 3, image_size, image_size), dtype=np.float32
    )
    return Workload("resnet-50 (random init)", make, pixels, f"{image_size}px")


def _pixel_batch(rows: Sequence[Any]) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.as_tensor(np.asarray(rows))}


def bench(
    workload: Workload, requested: str, device: torch.device, batch_size: int, warmup: int, steps: int
) -> Result:
    precision = training_precision(device, requested)
    config = FinetuneConfig(lr=1e-4, batch_size=batch_size, head_dropout=0.0)
    settings = train_settings(config, config.lr, config.epochs, seed=0, eval_batch_size=batch_size)
    seed_everything(0)
    trainer = Trainer(workload.make_backbone(), N_LABELS, settings, device, precision)
    labels = torch.as_tensor(np.arange(len(workload.inputs)) % N_LABELS)
    batches = [
        np.arange(i * batch_size, (i + 1) * batch_size) % len(workload.inputs) for i in range(warmup + steps)
    ]
    loss = float("nan")
    for idx in batches[:warmup]:  # kernel selection, allocator growth, optimizer state creation
        trainer.optimizer_step(workload.inputs, labels, idx)
    synchronize(device)
    times = []
    with PeakMemory(device) as peak:
        for idx in batches[warmup:]:
            synchronize(device)
            t0 = time.perf_counter()
            loss = trainer.optimizer_step(workload.inputs, labels, idx) / len(idx)
            synchronize(device)
            times.append(time.perf_counter() - t0)
    total = sum(times)
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Result(
        model=workload.name,
        shape=workload.shape,
        batch_size=batch_size,
        precision=precision.name,
        examples_per_s=batch_size * len(times) / total,
        step_ms_mean=1000 * statistics.fmean(times),
        step_ms_std=1000 * statistics.stdev(times) if len(times) > 1 else 0.0,
        peak_memory_mb=peak.mb,
        peak_memory_kind=peak.kind,
        final_loss=loss,
    )


def print_table(results: Sequence[Result]) -> None:
    kinds = sorted({r.peak_memory_kind for r in results})
    print(f"peak MB: {', '.join(kinds)}; vs fp32: examples/s ratio for the same model and batch")
    header = f"{'model':34} {'shape':9} {'batch':>5} {'precision':9} {'examples/s':>11} {'step ms':>16} {'peak MB':>9} {'vs fp32':>8}"
    print(header)
    print("-" * len(header))
    baseline = {(r.model, r.batch_size): r.examples_per_s for r in results if r.precision == "fp32"}
    for r in results:
        base = baseline.get((r.model, r.batch_size))
        ratio = f"{r.examples_per_s / base:7.2f}x" if base else "      -"
        peak = f"{r.peak_memory_mb:9.0f}" if r.peak_memory_mb is not None else f"{'-':>9}"
        step = f"{r.step_ms_mean:8.1f} ± {r.step_ms_std:5.1f}"
        print(
            f"{r.model:34} {r.shape:9} {r.batch_size:5d} {r.precision:9} {r.examples_per_s:11.1f} {step:>16} {peak} {ratio}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--models", default="bert,efficientnet", help="comma-separated: bert, efficientnet, resnet50")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16")
    parser.add_argument(
        "--small", action="store_true", help="CPU smoke sizes: 2-layer BERT, seq 32, 64px, batch 8"
    )
    parser.add_argument("--batch-size", type=int, help="default 32 (GPU) / 8 (--small)")
    parser.add_argument("--seq-len", type=int, help="default 128 (GPU) / 32 (--small)")
    parser.add_argument("--image-size", type=int, help="default 224 (GPU) / 64 (--small)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--steps", type=int, help="timed steps (default 20 GPU / 4 --small)")
    parser.add_argument(
        "--no-tf32", action="store_true", help="fp32 baseline without TF32 matmuls/convolutions"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    small = args.small
    batch_size = args.batch_size or (8 if small else 32)
    seq_len = args.seq_len or (32 if small else 128)
    image_size = args.image_size or (64 if small else 224)
    steps = args.steps or (4 if small else 20)
    if min(batch_size, seq_len, steps) < 1 or image_size < 32 or args.warmup < 0:
        parser.error("batch size, sequence length and steps must be positive, image size at least 32")
    n_examples = batch_size * 4
    builders = {
        "bert": lambda: bert_workload(small, seq_len, n_examples),
        "efficientnet": lambda: efficientnet_workload(image_size, n_examples),
        "resnet50": lambda: resnet50_workload(image_size, n_examples),
    }
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [m for m in names if m not in builders] + [
        p for p in precisions if p not in ("fp32", "bf16", "fp16")
    ]
    if unknown:
        parser.error(f"unknown model or precision: {', '.join(unknown)}")

    results: list[Result] = []
    with backend_settings(deterministic=False, tf32=not args.no_tf32) as backend:
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
        print(
            f"device {device} ({gpu}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"tf32 {backend['cuda_matmul_allow_tf32']}, cudnn.benchmark {backend['cudnn_benchmark']}, "
            f"warm-up {args.warmup}, timed steps {steps}"
        )
        for name in names:
            workload = builders[name]()
            for requested in precisions:
                used = training_precision(device, requested)
                if used.name != requested:  # e.g. fp16 on CPU: it would just repeat the fp32 row
                    print(f"skipping {requested} on {device}: {used.note or f'runs as {used.name}'}")
                    continue
                results.append(bench(workload, requested, device, batch_size, args.warmup, steps))
    print_table(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"device": str(device), "backend": backend, "results": [asdict(r) for r in results]},
                fh,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
