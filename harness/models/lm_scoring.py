"""Log-likelihood of label continuations under a causal LM: the fast path and the naive reference.

Every example is scored against the same L continuations (the label words), so the expensive part, the
context, is shared by all labels:

1. an optional shared prefix (in-context demonstrations, identical for every example) is encoded once and
   its key/value cache reused by every batch;
2. contexts are encoded in batches (longest first, left-padded, explicit position ids), one forward per
   batch of examples, keeping only the last position's logits: that next-token distribution already gives
   log p(first token of every continuation | context) for all labels at once;
3. only continuations longer than one token need more: their remaining tokens run from the context's
   cached keys/values, all labels of one example in one small batch.

So the cost is one context forward per example, not one per (example, label). `score_naive` is the
per-pair loop (prefix + context + continuation through the whole model, once per label) that the fast
path must agree with; scripts/bench_lm_scoring.py measures one against the other.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.nn.functional import log_softmax

from harness.models.language_model import ScoringStats

Ids = Sequence[int]


def _check(contexts: Sequence[Ids], continuations: Sequence[Ids]) -> None:
    if any(len(c) == 0 for c in contexts):
        raise ValueError("every context needs at least one token")
    if not continuations or any(len(c) == 0 for c in continuations):
        raise ValueError("every continuation needs at least one token")


def _cache_kw(model: Any) -> str:
    """transformers >= 5.24 names the key/value cache argument `cache` (`past_key_values` is deprecated)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _repeat_cache(cache: Any, n: int) -> Any:
    out = copy.deepcopy(cache)
    if n > 1:
        out.batch_repeat_interleave(n)
    return out


@torch.inference_mode()
def encode_prefix(model: Any, prefix: Ids) -> Any:
    """The key/value cache of a shared prefix (batch 1), for score_cached(prefix_cache=...)."""
    device = next(model.parameters()).device
    return _cache_of(model(torch.tensor([list(prefix)], device=device), use_cache=True, logits_to_keep=1))


@torch.inference_mode()
def score_cached(
    model: Any,
    prefix: Ids,
    contexts: Sequence[Ids],
    continuations: Sequence[Ids],
    *,
    batch_size: int,
    pad_id: int,
    prefix_cache: Any = None,
) -> tuple[np.ndarray, ScoringStats]:
    """(N, L) float64: sum of log p(continuation tokens | prefix + context), for every context x continuation.

    `prefix_cache`: encode_prefix(model, prefix) computed earlier (a caller scoring many calls with one
    prefix keeps it); None: the prefix is encoded here (its tokens then count in the stats).
    """
    _check(contexts, continuations)
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    n, n_labels = len(contexts), len(continuations)
    out = np.zeros((n, n_labels), dtype=np.float64)
    tokens = 0
    if prefix and prefix_cache is None:
        prefix_cache = encode_prefix(model, prefix)
        tokens += len(prefix)
    if not prefix:
        prefix_cache = None
    p = len(prefix)
    firsts = torch.tensor([c[0] for c in continuations], device=device)
    longest = max(len(c) for c in continuations)
    order = np.argsort([-len(c) for c in contexts], kind="stable")
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        batch = [list(contexts[i]) for i in rows]
        width = max(len(c) for c in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(batch), width), dtype=torch.long, device=device)
        for r, ctx in enumerate(batch):  # left padding: every row's last position is its last real token
            ids[r, width - len(ctx) :] = torch.tensor(ctx, device=device)
            mask[r, width - len(ctx) :] = 1
        positions = (p + mask.cumsum(dim=1) - 1).clamp(min=p)
        full_mask = torch.cat([torch.ones((len(batch), p), dtype=torch.long, device=device), mask], dim=1)
        past = _repeat_cache(prefix_cache, len(batch)) if prefix_cache is not None else None
        result = model(
            input_ids=ids,
            attention_mask=full_mask,
            position_ids=positions,
            use_cache=longest > 1,
            logits_to_keep=1,
            **{_cache_kw(model): past},
        )
        tokens += sum(len(c) for c in batch)
        first_logp = log_softmax(result.logits[:, -1].float(), dim=-1)[:, firsts]  # (B, L)
        out[rows] = first_logp.double().cpu().numpy()
        if longest > 1:
            tokens += _score_rest(model, _cache_of(result), full_mask, batch, p, continuations, out, rows, pad_id)
    stats = ScoringStats(examples=n, tokens=tokens, seconds=time.perf_counter() - t0)
    return out, stats


def _score_rest(
    model: Any,
    cache: Any,
    full_mask: torch.Tensor,
    batch: list[list[int]],
    p: int,
    continuations: Sequence[Ids],
    out: np.ndarray,
    rows: np.ndarray,
    pad_id: int,
) -> int:
    """Add log p(tokens 2..m of each continuation) for one batch of contexts, from their cached keys/values."""
    device = full_mask.device
    multi = [j for j, c in enumerate(continuations) if len(c) > 1]
    width = max(len(continuations[j]) for j in multi) - 1
    inputs = torch.full((len(multi), width), pad_id, dtype=torch.long, device=device)
    cont_mask = torch.zeros((len(multi), width), dtype=torch.long, device=device)
    for r, j in enumerate(multi):  # right padding: the pads come after every real token, masked
        feed = list(continuations[j][:-1])
        inputs[r, : len(feed)] = torch.tensor(feed, device=device)
        cont_mask[r, : len(feed)] = 1
    tokens = 0
    for b, ctx in enumerate(batch):
        one = copy.deepcopy(cache)
        one.batch_select_indices(torch.tensor([b], device=device))
        if len(multi) > 1:
            one.batch_repeat_interleave(len(multi))
        mask = torch.cat([full_mask[b : b + 1].expand(len(multi), -1), cont_mask], dim=1)
        positions = (p + len(ctx) + torch.arange(width, device=device)).expand(len(multi), -1)
        logits = model(
            input_ids=inputs, attention_mask=mask, position_ids=positions, **{_cache_kw(model): one}
        ).logits
        logp = log_softmax(logits.float(), dim=-1)
        for r, j in enumerate(multi):
            targets = torch.tensor(list(continuations[j][1:]), device=device)
            steps = torch.arange(len(targets), device=device)
            out[rows[b], j] += float(logp[r, steps, targets].double().sum())
        tokens += int(cont_mask.sum())
    return tokens


@torch.inference_mode()
def score_naive(
    model: Any, prefix: Ids, contexts: Sequence[Ids], continuations: Sequence[Ids]
) -> tuple[np.ndarray, ScoringStats]:
    """The per-pair loop: one full forward of prefix + context + continuation per (example, label)."""
    _check(contexts, continuations)
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    out = np.zeros((len(contexts), len(continuations)), dtype=np.float64)
    tokens = 0
    for i, ctx in enumerate(contexts):
        for j, cont in enumerate(continuations):
            seq = [*prefix, *ctx, *cont]
            logits = model(torch.tensor([seq], device=device)).logits[0].float()
            logp = log_softmax(logits, dim=-1)
            start = len(seq) - len(cont)
            steps = torch.arange(start - 1, len(seq) - 1, device=device)
            out[i, j] = float(logp[steps, torch.tensor(list(cont), device=device)].double().sum())
            tokens += len(seq)
    stats = ScoringStats(examples=len(contexts), tokens=tokens, seconds=time.perf_counter() - t0)
    return out, stats
