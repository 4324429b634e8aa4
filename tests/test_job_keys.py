"""A job key holds everything that can change its result: an edit to a plugin's code (a metric's function,
a Python task's loading or splitting) re-runs the job on the next `harness run` instead of serving the old
result, and an edit that cannot change it (a comment) keeps the key.

Real runs: a TF-IDF linear probe on a small CSV, the real runner and store, each plugin imported afresh per
run as a new process would."""

from __future__ import annotations

import csv
import random
import sys
from contextlib import closing
from pathlib import Path

import pytest

from harness.config import load_suite
from harness.runner import TaskLoader, plan_sweep, run_suite
from harness.store import Store

METRIC = """
from harness.metrics import MetricData, MetricDef


def point(data: MetricData) -> float:
    return float((data.y == data.pred).mean())


MY_METRIC = MetricDef(name="my_metric", label="My metric", point=point)
"""

TASK_YAML = """
name: toy
version: "1"
modality: text
labels: [negative, positive]
source: {type: csv, path: data.csv}
text_column: text
label_column: label
split: {validation_size: 0.2, test_size: 0.2, seed: 0}
metrics: [accuracy, my_metric]
main_metric: accuracy
"""

SUITE = """
name: keys
plugins: [metric.py, task.yaml]
tasks: [toy]
models:
  - {name: tfidf, family: tfidf}
protocols: [linear_probe]
timing: {enabled: false}
bootstrap: {n_boot: 50, seed: 0}
"""


def _write_data(path: Path) -> None:
    rng = random.Random(0)
    words = {"positive": ["great", "loved", "wonderful", "fine"], "negative": ["awful", "hated", "boring", "poor"]}
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["text", "label"])
        for i in range(120):
            label = rng.choice(sorted(words))
            out.writerow([f"{rng.choice(words[label])} {rng.choice(words['positive'] + words['negative'])} film {i}", label])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write_data(tmp_path / "data.csv")
    (tmp_path / "metric.py").write_text(METRIC)
    (tmp_path / "task.yaml").write_text(TASK_YAML)
    (tmp_path / "suite.yaml").write_text(SUITE)
    return tmp_path


def _fresh_plugins() -> None:
    """Forget the imported plugin files, as a new `harness run` process would not have them."""
    for name in [m for m in sys.modules if m.startswith("_harness_plugin_")]:
        del sys.modules[name]


def _to_run(folder: Path) -> int:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        return len(plan_sweep(load_suite(folder / "suite.yaml"), store.reader, TaskLoader(), read_only=True).to_run)


def _run(folder: Path) -> None:
    _fresh_plugins()
    with closing(Store(folder / "r.db")) as store:
        summary = run_suite(load_suite(folder / "suite.yaml"), store)
    assert summary.failed == 0, summary.failures


def test_an_edited_plugin_metric_reruns_and_a_comment_in_the_task_file_does_not(folder: Path) -> None:
    _run(folder)
    assert _to_run(folder) == 0
    task = folder / "task.yaml"
    task.write_text("# a comment, and the keys in another order\n" + "\n".join(reversed(TASK_YAML.splitlines())))
    assert _to_run(folder) == 0
    (folder / "metric.py").write_text(METRIC.replace("float((data.y == data.pred).mean())", "0.25"))
    assert _to_run(folder) == 1
    _run(folder)
    with closing(Store(folder / "r.db")) as store:
        values = sorted(store.db.execute("SELECT value FROM metrics WHERE name = 'my_metric'").fetchall())
    assert values[0] == (0.25,)


PYTHON_TASK = """
import csv
from pathlib import Path

from harness.data.assemble import PooledTask
from harness.data.loaders import RawExamples
from harness.data.signatures import signature
from harness.tasks import TaskSpec

DATA = Path(__file__).parent / "data.csv"


class Toy(PooledTask):
    spec = TaskSpec(name="toy", version="1", modality="text", labels=("negative", "positive"), metrics=("accuracy",))
    split_seed = 0

    def read_pool(self) -> RawExamples:
        with DATA.open() as fh:
            rows = list(csv.DictReader(fh))
        ids = tuple(f"row-{i}" for i in range(len(rows)))
        return RawExamples(ids, [r["text"] for r in rows], [r["label"] for r in rows], where=str(DATA), label_column="label")

    def source_signature(self) -> str:
        return signature(self.spec.as_dict(), files=[DATA])
"""


def test_an_edited_python_task_reruns_when_its_data_changes_and_not_for_a_comment(folder: Path) -> None:
    (folder / "task.py").write_text(PYTHON_TASK)
    (folder / "suite.yaml").write_text(SUITE.replace("[metric.py, task.yaml]", "[task.py]"))
    _run(folder)
    assert _to_run(folder) == 0
    (folder / "task.py").write_text(PYTHON_TASK + "# a comment\n")
    assert _to_run(folder) == 0  # the data is loaded again, and is the same
    (folder / "task.py").write_text(PYTHON_TASK.replace("split_seed = 0", "split_seed = 7"))  # no version bump
    assert _to_run(folder) == 1


def test_the_probe_library_and_a_plugin_protocol_code_are_in_the_protocol_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scikit-learn upgrade can change a fitted probe, and an installed package's protocol can be edited or
    upgraded: either re-keys the jobs. Built-in protocols computed by the harness alone keep their keys."""
    import importlib.util

    from harness import jobs
    from harness.config import ProtocolRef
    from harness.protocols import ProtocolDef
    from harness.protocols.linear_probe import LinearProbeConfig
    from harness.protocols.zero_shot import ZeroShotConfig

    zero_shot = ProtocolRef("zero_shot", "zero_shot", ZeroShotConfig())
    assert set(jobs.protocol_key(zero_shot)) == {"name", "protocol", "config"}
    probe = ProtocolRef("linear_probe", "linear_probe", LinearProbeConfig())
    before = jobs.protocol_key(probe)
    monkeypatch.setattr(jobs, "package_version", lambda dist: "9.9.9")
    assert jobs.protocol_key(probe) != before

    module_file = tmp_path / "my_protocol.py"
    module_file.write_text("def run(adapter, data, config, ctx):\n    return None\n")
    spec = importlib.util.spec_from_file_location("my_protocol", module_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "my_protocol", module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(jobs, "get_protocol", lambda name: ProtocolDef("mine", ZeroShotConfig, module.run, "a plugin"))
    mine = ProtocolRef("mine", "mine", ZeroShotConfig())
    first = jobs.protocol_key(mine)
    module_file.write_text("def run(adapter, data, config, ctx):\n    return 1\n")
    assert jobs.protocol_key(mine) != first
