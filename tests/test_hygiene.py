"""Duplicate and leak detection on the real BBC / tweet / digits data and on planted examples."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import train_test_split

import harness.data.hygiene as hygiene
from harness.builtin_tasks.digits import Digits
from harness.data.assemble import group_aware_split
from harness.data.content_hash import content_key
from harness.data.hygiene import (
    HygieneReport,
    HygieneWarning,
    apply_dedupe,
    cached_hygiene_report,
    format_class_balance,
    format_report,
    hygiene_report,
)
from harness.data.yaml_task import YamlTask
from harness.package_data import data_folder
from harness.tasks import Split, TaskData, TaskSpec

BBC = YamlTask(data_folder("builtin_tasks") / "bbc_news.yaml")


@pytest.fixture(scope="module")
def bbc_pool() -> Split:
    return BBC.read_raw().to_split("pool", BBC.spec.labels)


@pytest.fixture(scope="module")
def bbc_data() -> TaskData:
    return BBC.load()


@pytest.fixture(scope="module")
def bbc_report(bbc_data) -> HygieneReport:
    return hygiene_report(bbc_data)


def test_bbc_corpus_duplicates_match_the_issue(bbc_pool):
    byte_identical = sum(n - 1 for n in Counter(bbc_pool.inputs).values())
    assert byte_identical == 98
    normalised = sum(n - 1 for n in Counter(map(content_key, bbc_pool.inputs)).values())
    assert normalised == 101  # 3 more pairs differ only in line breaks


def test_plain_70_30_split_of_bbc_leaks_test_texts_into_train(bbc_pool):
    train, test = train_test_split(
        np.arange(len(bbc_pool)), test_size=0.3, stratify=bbc_pool.labels, random_state=0
    )
    train_texts = {bbc_pool.inputs[i] for i in train}
    assert sum(bbc_pool.inputs[i] in train_texts for i in test) == 41  # the issue's figure
    spec = BBC.spec
    data = TaskData(
        spec,
        {
            "train": bbc_pool.subset(np.sort(train), "train"),
            "validation": bbc_pool.subset(np.sort(test)[:50], "validation"),
            "test": bbc_pool.subset(np.sort(test), "test"),
        },
    )
    report = hygiene_report(data, near_duplicates=False)
    assert report.exact_leaks.test_in_train == 43  # 41 verbatim + 2 differing only in whitespace
    assert report.has_leaks
    assert "LEAKS" in format_report(report)


def test_builtin_bbc_split_has_no_exact_or_near_leaks(bbc_report):
    assert bbc_report.duplicates_total == 101
    assert len(bbc_report.exact_groups) == 101
    assert all(not g.crosses_splits for g in bbc_report.exact_groups)
    assert bbc_report.exact_leaks.total == 0
    assert bbc_report.near_leaks is not None and bbc_report.near_leaks.total == 0
    assert len(bbc_report.near_groups) == 55
    whitespace_pair = next(g for g in bbc_report.exact_groups if any(i == "sports/181" for _, i in g.members))
    assert sorted(i for _, i in whitespace_pair.members) == ["sports/181", "sports/182"]


def test_builtin_tweets_and_digits_have_no_leaks():
    tweets = hygiene_report(YamlTask(data_folder("builtin_tasks") / "tweet_sentiment.yaml").load(), near_duplicates=False)
    assert tweets.duplicates_total == 955
    assert tweets.label_conflicts == 49
    assert tweets.exact_leaks.total == 0
    digits = hygiene_report(Digits().load())
    assert digits.duplicates_total == 0 and digits.exact_leaks.total == 0
    assert digits.near_threshold is None  # images: exact pixel duplicates only


def test_group_aware_split_keeps_duplicates_together():
    rng = np.random.RandomState(1)
    base = [f"document number {i} about topic {i % 3}" for i in range(300)]
    texts = [base[i] if rng.rand() < 0.7 else base[i].upper() for i in rng.randint(0, 300, size=900)]
    labels = np.array([int(t.split()[-1]) for t in texts])
    pool = Split("pool", tuple(f"d{i}" for i in range(900)), texts, labels)
    parts = group_aware_split(pool, validation_size=0.2, test_size=0.2, seed=0)
    spec = TaskSpec(name="synthetic", version="1", modality="text", labels=("0", "1", "2"))
    report = hygiene_report(TaskData(spec, parts), near_duplicates=False)
    assert report.duplicates_total > 500
    assert report.exact_leaks.total == 0


# -- YAML tasks with given splits -------------------------------------------------------------------


LONG = " ".join(f"word{i}" for i in range(60))


def _planted(tmp_path: Path, dedupe: str) -> Path:
    train = [
        {"text": f"train review {i} {'good' if i % 2 else 'bad'}", "label": "ab"[i % 2]} for i in range(40)
    ]
    train.append({"text": "train review 0 bad", "label": "a"})  # a duplicate inside train
    train.append({"text": LONG, "label": "a"})
    test = [{"text": f"test review {i}", "label": "ab"[i % 2]} for i in range(20)]
    test += [
        {"text": "train review 1 good", "label": "b"},  # verbatim leak
        {"text": "TRAIN review 2\n bad", "label": "a"},  # leak after case/whitespace normalisation
        {"text": "train review 3 good", "label": "b"},  # verbatim leak
        {"text": LONG.replace("word30", "changed"), "label": "a"},  # near duplicate only
    ]
    validation = [{"text": f"validation review {i}", "label": "ab"[i % 2]} for i in range(10)]
    for name, rows in (("train", train), ("validation", validation), ("test", test)):
        pd.DataFrame(rows).to_csv(tmp_path / f"{name}.csv", index=False)
    doc = {
        "name": "planted",
        "version": "3",
        "modality": "text",
        "labels": ["a", "b"],
        "source": {"type": "csv", "data_files": {s: f"{s}.csv" for s in ("train", "validation", "test")}},
        "dedupe": dedupe,
    }
    path = tmp_path / f"planted-{dedupe}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def _load_with_warnings(path: Path) -> tuple[YamlTask, TaskData, list[str]]:
    task = YamlTask(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = task.load()
    return task, data, [str(w.message) for w in caught if issubclass(w.category, HygieneWarning)]


def test_planted_leaks_are_reported(tmp_path):
    task, data, messages = _load_with_warnings(_planted(tmp_path, "off"))
    assert task.spec.version == "3+dedupe-off"
    assert data.sizes() == {"train": 42, "validation": 10, "test": 24}
    assert len(messages) == 1
    assert "3 test examples also occur in train or validation" in messages[0]
    assert "1 examples repeat an earlier one of the same split (train 1)" in messages[0]
    report = hygiene_report(data, near_threshold=0.8)
    assert report.exact_leaks.test_in_train == 3 and report.exact_leaks.validation_in_train == 0
    assert report.near_leaks is not None and report.near_leaks.test_in_train == 4
    text = format_report(report)
    assert "test in train 3" in text and "test in train 4" in text


def test_drop_test_leaks(tmp_path):
    task, data, messages = _load_with_warnings(_planted(tmp_path, "drop-test-leaks"))
    assert task.spec.version == "3"
    assert data.sizes() == {"train": 42, "validation": 10, "test": 21}
    assert "dropped test 3 (dedupe: drop-test-leaks)" in messages[0]
    assert hygiene_report(data, near_duplicates=False).exact_leaks.total == 0
    assert "TRAIN review 2\n bad" not in data.test.inputs


def test_drop_duplicates(tmp_path):
    task, data, messages = _load_with_warnings(_planted(tmp_path, "drop-duplicates"))
    assert task.spec.version == "3+dedupe-drop-duplicates"
    assert data.sizes() == {"train": 41, "validation": 10, "test": 21}
    assert "dropped train 1, test 3" in messages[0]
    report = hygiene_report(data, near_duplicates=False)
    assert report.duplicates_total == 0
    # Dedupe is recorded in the version and the source signature, so results say which was used.
    signatures = {YamlTask(_planted(tmp_path, m)).source_signature() for m in ("off", "drop-duplicates")}
    assert len(signatures) == 2


def test_apply_dedupe_keeps_first_occurrence(bbc_pool):
    spec = BBC.spec
    half = len(bbc_pool) // 2
    data = TaskData(
        spec,
        {
            "train": bbc_pool.subset(range(half), "train"),
            "validation": bbc_pool.subset(range(half, half + 200), "validation"),
            "test": bbc_pool.subset(range(half + 200, len(bbc_pool)), "test"),
        },
    )
    outcome = apply_dedupe(data, "drop-duplicates")
    assert sum(outcome.removed.values()) == 101
    assert hygiene_report(outcome.data, near_duplicates=False).duplicates_total == 0


def test_report_cache_round_trips(tmp_path, monkeypatch):
    _, data, _ = _load_with_warnings(_planted(tmp_path, "off"))
    cache = tmp_path / "cache"
    first = cached_hygiene_report(data, cache_dir=cache)
    assert first == hygiene_report(data) and first.near_groups and first.exact_groups
    files = list(cache.glob(f"{data.fingerprint}-*.json"))
    assert len(files) == 1
    monkeypatch.setattr(hygiene, "hygiene_report", lambda *a, **k: pytest.fail("cache not used"))
    assert cached_hygiene_report(data, cache_dir=cache) == first
    files[0].write_text("{broken", encoding="utf-8")
    monkeypatch.undo()
    assert cached_hygiene_report(data, cache_dir=cache) == first
    other = cached_hygiene_report(data, cache_dir=cache, near_threshold=0.5)
    assert other.near_threshold == 0.5 and len(list(cache.glob("*.json"))) == 2


def test_class_balance_names_a_label_a_split_lacks():
    spec = TaskSpec(name="t", version="1", modality="text", labels=("a\x1b[31m", "b", "c"), description="d")
    splits = {
        "train": Split("train", ("0", "1", "2"), ["x", "y", "z"], np.array([0, 1, 2])),
        "validation": Split("validation", ("3", "4"), ["x", "y"], np.array([0, 1])),
        "test": Split("test", ("5", "6", "7"), ["x", "y", "w"], np.array([0, 0, 1])),
    }
    text = format_class_balance(TaskData(spec, splits))
    assert re.search(r"'b'\s+1\s+1\s+1\n", text) and re.search(r"'c'\s+1\s+0\s+0", text)
    assert "Warning: the validation split has no example of 'c'" in text
    assert "Warning: the test split has no example of 'c': its recall and F1 are undefined" in text
    assert "train split has no" not in text
    assert "\x1b" not in text and "'a\\x1b[31m'" in text  # the label's ESC shown as repr shows it, never sent


def test_every_user_cache_lives_under_xdg_cache_home_unless_its_own_variable_names_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hygiene cache ignored $XDG_CACHE_HOME (it wrote to ~/.cache where the others did not)."""
    from harness.data.hygiene import default_cache_dir
    from harness.models.gguf import cache_root
    from harness.store.run_cache import cache_folder

    for name in ("HARNESS_CACHE_DIR", "HARNESS_MODEL_CACHE", "HARNESS_SITE_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert {default_cache_dir(), cache_root(), cache_folder()} == {
        tmp_path / "xdg" / "harness" / kind for kind in ("hygiene", "gguf", "site-runs")
    }
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "hygiene"
