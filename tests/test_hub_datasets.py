"""A task on a hub dataset is keyed by the commit its revision resolves to: when the dataset is updated upstream
and the local cache follows, the next run re-reads the data instead of serving the results of the old data.

No hub is reachable in tests: a fake local cache stands for one, laid out as the real libraries leave it after
an online load: the hub cache's datasets--<owner>--<name>/refs/main names the commit, and the datasets cache
holds the prepared copy under <owner>___<name>/default/0.0.0/<commit>/, which datasets loads offline."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from contextlib import closing
from pathlib import Path

import datasets.config
import huggingface_hub.constants
import pytest
from datasets.packaged_modules.csv.csv import Csv

from harness.config import load_suite
from harness.data import yaml_task
from harness.data.yaml_task import YamlTask
from harness.errors import DataError
from harness.hub import hub_commit
from harness.runner import TaskLoader, plan_sweep, run_suite
from harness.store import Store

A, B, C = "a" * 40, "b" * 40, "c" * 40

TASK = """
name: hubtoy
version: "1"
modality: text
labels: [negative, positive]
source: {type: hf, id: org/reviews%s}
split: {validation_size: 0.2, test_size: 0.2, seed: 0}
metrics: [accuracy]
"""

SUITE = """
name: hub
plugins: [task.yaml]
tasks: [hubtoy]
models:
  - {name: tfidf, family: tfidf}
protocols: [linear_probe]
timing: {enabled: false}
bootstrap: {n_boot: 50, seed: 0}
"""


class FakeHub:
    """The local caches a hub dataset leaves behind, for `org/reviews`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hub = root / "hub" / "datasets--org--reviews"
        self.prepared = root / "datasets" / "org___reviews" / "default" / "0.0.0"

    def publish(self, commit: str, texts: list[tuple[str, str]], ref: str = "main") -> None:
        """`commit` as datasets leaves it after an online load at `ref`: refs/<ref> names it, its copy is prepared."""
        source = self.root / f"{commit[:6]}.csv"
        source.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in texts))
        builder = Csv(cache_dir=str(self.root / "build"), dataset_name="reviews", hash=commit, data_files={"train": [str(source)]})
        builder.download_and_prepare()
        self.prepared.mkdir(parents=True, exist_ok=True)
        shutil.move(builder.cache_dir, self.prepared / commit)
        assert json.loads((self.prepared / commit / "dataset_info.json").read_text())["config_name"] == "default"
        time.sleep(0.02)  # datasets takes the newest copy by modification time
        (self.hub / "refs").mkdir(parents=True, exist_ok=True)
        (self.hub / "refs" / ref).write_text(commit)
        (self.hub / "snapshots" / commit).mkdir(parents=True, exist_ok=True)


def _texts(n: int, start: int = 0) -> list[tuple[str, str]]:
    good, bad = ["great", "loved", "wonderful"], ["awful", "hated", "boring"]
    return [
        (f"{(good if i % 2 else bad)[i % 3]} film {i}", "positive" if i % 2 else "negative") for i in range(start, start + n)
    ]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return FakeHub(tmp_path)


def _task(folder: Path, revision: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "task.yaml").write_text(TASK % (f", revision: {revision!r}" if revision else ""))
    (folder / "suite.yaml").write_text(SUITE)
    return folder / "task.yaml"


def _to_run(folder: Path) -> int:
    with closing(Store(folder / "r.db")) as store:
        return len(plan_sweep(load_suite(folder / "suite.yaml"), store.reader, TaskLoader(), read_only=True).to_run)


def _run(folder: Path) -> None:
    with closing(Store(folder / "r.db")) as store:
        summary = run_suite(load_suite(folder / "suite.yaml"), store)
    assert summary.failed == 0, summary.failures


def test_an_updated_hub_dataset_reruns_its_jobs_and_a_new_commit_of_the_same_data_does_not(hub: FakeHub, tmp_path: Path) -> None:
    """Before: the signature of an hf source without a revision held no commit, so after the dataset moved to
    new data the stored fingerprint of the old data was reused and its result served (0 jobs to run)."""
    folder = tmp_path / "suite"
    path = _task(folder)
    hub.publish(A, _texts(60))
    _run(folder)
    assert _to_run(folder) == 0
    first = YamlTask(path).source_signature()
    assert YamlTask(path).source_signature() == first  # the same commit: the same signature, nothing loaded
    hub.publish(B, _texts(80))  # upstream added rows; the cache followed
    assert _to_run(folder) == 1
    assert YamlTask(path).source_signature() != first
    assert len(YamlTask(path).load().test) == 16  # 80 rows, test_size 0.2
    _run(folder)
    assert _to_run(folder) == 0
    hub.publish(C, _texts(80))  # a new commit with the same data: read again, fingerprinted the same, not re-run
    assert _to_run(folder) == 0


def test_a_pinned_revision_is_used_as_given_and_another_cached_commit_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    """Before: offline, datasets loaded its newest cached copy (commit B) for a task pinned to commit A, and the
    data of B was stored as that of A."""
    hub.publish(A, _texts(60))
    hub.publish(B, _texts(80))
    pinned = YamlTask(_task(tmp_path / "pinned", revision=A))
    with pytest.raises(DataError, match=f"the task pins commit {A}, but datasets loaded commit {B}"):
        pinned.load()
    assert pinned.hub_pin == (A, None)
    on_b = _task(tmp_path / "on_b", revision=B)
    assert len(YamlTask(on_b).load().test) == 16
    signature = YamlTask(on_b).source_signature()
    hub.publish(C, _texts(80))  # main moves; a task pinned to B keeps its signature
    assert YamlTask(on_b).source_signature() == signature
    hub.publish(C, _texts(80), ref="v2")  # a tag resolves through the cache's refs/v2 too
    assert YamlTask(_task(tmp_path / "tag", revision="v2")).hub_pin == (C, None)


def test_offline_with_only_the_datasets_cache_the_prepared_copys_commit_pins_the_task(hub: FakeHub, tmp_path: Path) -> None:
    """A datasets cache copied to an offline machine (the hub cache left behind): pinned by the commit of the
    copy datasets loads, not read again on every run."""
    hub.publish(A, _texts(60))
    shutil.rmtree(hub.hub)
    path = _task(tmp_path / "suite")
    assert YamlTask(path).hub_pin == (A, None)
    hub.publish(B, _texts(80))
    shutil.rmtree(hub.hub)
    assert YamlTask(path).hub_pin == (B, None)
    assert len(YamlTask(path).load().test) == 16


def test_an_unresolved_hub_dataset_is_read_on_every_run_and_says_so(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _task(tmp_path / "suite")
    task = YamlTask(path)
    with pytest.warns(UserWarning, match="not resolved.*loaded and fingerprinted by content on every run"):
        signature = task.source_signature()
    assert task.hub_pin is not None and task.hub_pin[0] is None
    monkeypatch.setattr(yaml_task, "_UNPINNED", "another process")  # a new `harness run`
    with pytest.warns(UserWarning):
        assert YamlTask(path).source_signature() != signature


@pytest.mark.parametrize(
    ("source", "readers"),
    [
        ("{type: csv, path: d.csv}", ("datasets", "pyarrow", "pandas")),
        ("{type: hf, id: csv, data_files: d.csv}", ("datasets", "pyarrow", "pandas", "pillow")),
    ],
)
def test_the_versions_of_the_libraries_that_parse_a_source_are_part_of_its_signature(
    source: str, readers: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade of the library that parses a source (datasets' readers, pandas for CSV, pyarrow, Pillow
    decoding images) can change what is read: the data is read again (jobs re-run only if it changed)."""
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in _texts(30)))
    path = tmp_path / "task.yaml"
    path.write_text(TASK.replace("{type: hf, id: org/reviews%s}", source))
    before = YamlTask(path).source_signature()
    real = yaml_task.package_version
    for upgraded in readers:
        monkeypatch.setattr(yaml_task, "package_version", lambda dist, up=upgraded: "0.0-other" if dist == up else real(dist))
        assert YamlTask(path).source_signature() != before, upgraded
    monkeypatch.setattr(yaml_task, "package_version", lambda dist: "0.0-other" if dist == "torch" else real(dist))
    assert YamlTask(path).source_signature() == before  # a library that does not read it


def test_a_damaged_ref_in_the_hub_cache_is_unresolved_not_a_traceback_or_a_hang(hub: FakeHub) -> None:
    """Before: a ref holding bytes that are not UTF-8 raised UnicodeDecodeError out of the plan, and a named
    pipe in its place blocked the plan forever."""
    refs = hub.hub / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_bytes(b"\xff\xfe\x00garbage")
    commit, why = hub_commit("org/reviews", None, offline=True, repo_type="dataset")
    assert commit is None and why and "not resolved" in why
    os.mkfifo(refs / "v2")
    done: list[tuple[str | None, str | None]] = []
    reader = threading.Thread(target=lambda: done.append(hub_commit("org/reviews", "v2", offline=True, repo_type="dataset")), daemon=True)
    reader.start()
    reader.join(10)
    assert done and done[0][0] is None
