"""Task discovery (built-ins, entry points, plugin paths), options and in-process caching."""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.errors import ConfigError, HarnessError
from harness.registry import ENTRY_POINT_GROUP, METRIC_ENTRY_POINT_GROUP, TaskRegistry, discover_metrics
from harness.tasks import TaskSpec

BUILTIN_NAMES = {"bbc-news", "tweet-sentiment", "digits", "sst2", "ag_news", "cifar10"}

PLUGIN_SOURCE = textwrap.dedent(
    """
    import numpy as np

    from harness.tasks import Split, Task, TaskData, TaskSpec


    class ParityBase(Task):
        '''Abstract: must not be collected.'''


    class Parity(Task):
        spec = TaskSpec(name="{name}", version="1", modality="text", labels=("even", "odd"))

        def load(self):
            def split(name, numbers):
                return Split(name, tuple(f"n{{i}}" for i in numbers), [str(i) for i in numbers],
                             np.array([i % 2 for i in numbers]))
            return TaskData(self.spec, {{"train": split("train", range(0, 60)),
                                         "validation": split("validation", range(60, 80)),
                                         "test": split("test", range(80, 100))}})


    def make_tasks():
        class Other(Parity):
            spec = TaskSpec(name="{name}-2", version="1", modality="text", labels=("even", "odd"))
        return [Other()]
    """
)


def _plugin(tmp_path: Path, name: str = "parity", module: str = "parity_plugin") -> Path:
    path = tmp_path / f"{module}.py"
    path.write_text(PLUGIN_SOURCE.format(name=name), encoding="utf-8")
    return path


def _yaml_task(path: Path, name: str) -> Path:
    doc = {
        "name": name,
        "version": "2",
        "modality": "text",
        "labels": ["a", "b"],
        "source": {"type": "csv", "path": "rows.csv"},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (path.parent / "rows.csv").write_text(
        "text,label\n" + "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(30)), encoding="utf-8"
    )
    return path


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    return TaskRegistry.discover()


def test_builtins_are_listed_with_specs(registry):
    assert set(registry.names()) >= BUILTIN_NAMES
    specs = registry.specs()
    assert [s.name for s in specs] == sorted(s.name for s in specs)
    assert all(isinstance(s, TaskSpec) and s.license and s.citation for s in specs)
    assert registry.origin("sst2") == "built-in sst2.yaml"
    assert registry.origin("digits") == "built-in harness.builtin_tasks.digits"


def test_unknown_task_name_suggests_a_close_one(registry):
    with pytest.raises(HarnessError, match=r'Unknown task "bbc-nwes"\. Did you mean "bbc-news"\?'):
        registry.get("bbc-nwes")


def test_loaded_data_is_cached_per_name_and_options(registry):
    task = registry.get("digits")
    assert registry.get("digits") is task
    assert task.load() is task.load()
    small = registry.get("digits", {"subsample": {"train": 100, "test": 50}})
    assert registry.get("digits", {"subsample": {"test": 50, "train": 100, "seed": 0}}) is small
    assert small.load() is small.load()


def test_subsample_option_changes_version_signature_and_sizes(registry):
    base = registry.get("digits")
    small = registry.get("digits", {"subsample": {"train": 100, "test": 50, "seed": 1}})
    assert small.spec.version == "1+subsample(train=100,test=50,seed=1)"
    assert small.source_signature() != base.source_signature()
    data = small.load()
    assert data.sizes() == {"train": 100, "validation": 359, "test": 50}
    assert data.spec.version == small.spec.version
    assert set(data.test.ids) <= set(base.load().test.ids)
    assert np.bincount(data.test.labels, minlength=10).min() >= 4  # stratified: every digit present


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"subsampel": {"train": 5}}, r"Task 'digits': unknown key 'subsampel'\. Did you mean \"subsample\"\?"),
        ({"subsample": {"trian": 5}}, r"unknown key 'subsample\.trian'\. Did you mean \"train\"\?"),
        ({"subsample": {"train": "all"}}, r"'subsample\.train' must be an integer"),
        ({"subsample": 100}, r"'subsample' must be a mapping"),
    ],
)
def test_bad_task_options(registry, options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        registry.get("digits", options)


def test_python_plugin_by_path(tmp_path):
    registry = TaskRegistry.discover([_plugin(tmp_path)])
    assert "parity" in registry.names() and "ParityBase" not in registry.names()
    assert registry.origin("parity").startswith("plugin file ")
    data = registry.get("parity").load()
    assert data.sizes() == {"train": 60, "validation": 20, "test": 20}


def test_python_plugin_errors_are_config_errors(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.py failed to import \(line 1\): ModuleNotFoundError"):
        TaskRegistry.discover([broken])
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"defines no concrete harness\.tasks\.Task subclass"):
        TaskRegistry.discover([empty])
    notes = tmp_path / "notes.txt"
    notes.write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"expected a \.py file, a \.yaml/\.yml task file"):
        TaskRegistry.discover([notes])
    with pytest.raises(ConfigError, match=r"Plugin path not found: .*missing\.py"):
        TaskRegistry.discover([tmp_path / "missing.py"])


def test_yaml_file_and_folder_plugins(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    _yaml_task(folder / "one.yaml", "one")
    _yaml_task(folder / "two.yml", "two")
    registry = TaskRegistry.discover([folder])
    assert {"one", "two"} <= set(registry.names())
    assert registry.get("two").load().sizes() == {"train": 21, "validation": 3, "test": 6}
    single = TaskRegistry.discover([folder / "one.yaml"])
    assert "one" in single.names() and "two" not in single.names()


def test_duplicate_names_name_both_origins(tmp_path):
    path = _yaml_task(tmp_path / "digits.yaml", "digits")
    with pytest.raises(ConfigError) as err:
        TaskRegistry.discover([path])
    message = str(err.value)
    assert 'Two tasks are named "digits"' in message
    assert "built-in harness.builtin_tasks.digits" in message and str(path) in message


def test_entry_point_discovery(tmp_path, monkeypatch):
    _plugin(tmp_path, name="ep-parity", module="ep_parity_module")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        importlib.metadata.EntryPoint(
            name="parity", value="ep_parity_module:Parity", group=ENTRY_POINT_GROUP
        ),
        importlib.metadata.EntryPoint(
            name="more", value="ep_parity_module:make_tasks", group=ENTRY_POINT_GROUP
        ),
    ]
    calls = []

    def fake_entry_points(**kwargs):
        calls.append(kwargs)
        return points if kwargs.get("group") == ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    registry = TaskRegistry.discover()
    assert calls == [{"group": ENTRY_POINT_GROUP}, {"group": METRIC_ENTRY_POINT_GROUP}]
    assert {"ep-parity", "ep-parity-2"} <= set(registry.names())
    assert registry.origin("ep-parity") == "entry point 'parity = ep_parity_module:Parity'"
    assert len(registry.get("ep-parity-2").load().test) == 20

    points[:] = [
        importlib.metadata.EntryPoint(name="bad", value="no_such_module_xyz:Task", group=ENTRY_POINT_GROUP)
    ]
    with pytest.raises(ConfigError, match=r"entry point 'bad = no_such_module_xyz:Task'.*failed to import"):
        TaskRegistry.discover()


def test_cached_task_pickles_without_its_data(registry):
    task = registry.get("digits")
    task.load()
    clone = pickle.loads(pickle.dumps(task))
    assert clone.__dict__["_data"] is None
    assert clone.load().fingerprint == task.load().fingerprint


EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_plugin_metric_from_an_entry_point_and_from_a_plugin_file(tmp_path, monkeypatch):
    """The cost-weighted error of docs/examples/cost_metric.py, found through the harness.metrics entry
    point group and through --plugin; a task declares it with a cost matrix."""
    (tmp_path / "data.csv").write_text("text,label\na,x\nb,y\n")
    task = tmp_path / "t.yaml"
    task.write_text(
        "name: t\nversion: '1'\nmodality: text\nlabels: [x, y]\nsource: {type: csv, path: data.csv}\n"
        "metrics: [accuracy, {name: cost_weighted_error, params: {cost: [[0, 1], [10, 0]]}}]\n"
        "main_metric: cost_weighted_error\n"
    )
    with pytest.raises(ConfigError, match=r"unknown metric \"cost_weighted_error\""):
        TaskRegistry.discover([task])  # not loaded: a clear error at load, never a silent fallback
    monkeypatch.syspath_prepend(str(EXAMPLES))
    point = importlib.metadata.EntryPoint(
        name="cost", value="cost_metric:COST_WEIGHTED_ERROR", group=METRIC_ENTRY_POINT_GROUP
    )
    real = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        lambda **kw: [point] if kw.get("group") == METRIC_ENTRY_POINT_GROUP else real(**kw),
    )
    via_entry_point = TaskRegistry.discover([task]).task_metrics("t")
    assert via_entry_point.main == "cost_weighted_error" and not via_entry_point.main_metric.higher_is_better
    monkeypatch.setattr(importlib.metadata, "entry_points", real)
    via_file = TaskRegistry.discover([EXAMPLES / "cost_metric.py", task]).task_metrics("t")
    assert via_file.main_metric.params == {"cost": [[0, 1], [10, 0]]}
    bad = task.read_text().replace("[[0, 1], [10, 0]]", "[[0, 1]]")
    task.write_text(bad)
    with pytest.raises(ConfigError, match=r"metrics\[1\]': metric \"cost_weighted_error\": params.cost must be a 2 x 2"):
        TaskRegistry.discover([EXAMPLES / "cost_metric.py", task])


def test_protocol_entry_points(monkeypatch):
    """harness.protocols: installed protocols join the built-ins; bad ones are one clear error each."""
    import functools

    import harness.protocols as protocols
    from harness.protocols import PROTOCOL_ENTRY_POINT_GROUP, get_protocol, protocol_defs
    from harness.protocols.linear_probe import LinearProbeConfig
    from harness.protocols.linear_probe import run as probe_run

    fake = types.ModuleType("fake_protocols_module")
    fake.GOOD = protocols.ProtocolDef("probe-copy", LinearProbeConfig, probe_run, "a copy")  # type: ignore[attr-defined]
    fake.CLASH = protocols.ProtocolDef("zero_shot", LinearProbeConfig, probe_run, "x")  # type: ignore[attr-defined]
    fake.NOT_A_DEF = 42  # type: ignore[attr-defined]
    fake.NO_DATACLASS = protocols.ProtocolDef("p", dict, probe_run, "x")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_protocols_module", fake)
    points: list[importlib.metadata.EntryPoint] = []
    real = importlib.metadata.entry_points
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda **kw: points if kw.get("group") == PROTOCOL_ENTRY_POINT_GROUP else real(**kw)
    )

    def discover(value: str) -> dict[str, protocols.ProtocolDef]:
        points[:] = [importlib.metadata.EntryPoint(name="mine", value=value, group=PROTOCOL_ENTRY_POINT_GROUP)]
        monkeypatch.setattr(protocols, "_table", functools.cache(protocols._table.__wrapped__))
        return protocol_defs()

    defs = discover("fake_protocols_module:GOOD")
    assert list(defs)[-1] == "probe-copy" and {"zero_shot", "linear_probe"} <= set(defs)
    assert get_protocol("probe-copy").run is probe_run
    with pytest.raises(ConfigError, match=r'Two protocols are named "zero_shot": one from built-in, one from entry point'):
        discover("fake_protocols_module:CLASH")
    with pytest.raises(ConfigError, match=r"entry point 'mine = fake_protocols_module:NOT_A_DEF'.*expected a harness\.protocols\.ProtocolDef, got int"):
        discover("fake_protocols_module:NOT_A_DEF")
    with pytest.raises(ConfigError, match=r"protocol 'p': config_cls must be a dataclass"):
        discover("fake_protocols_module:NO_DATACLASS")
    with pytest.raises(ConfigError, match=r"\(group harness\.protocols\) failed to import: ModuleNotFoundError"):
        discover("no_such_protocols_xyz:P")


def test_a_plugin_file_may_import_a_builtin_metric_and_alias_its_own(tmp_path):
    """`from harness.metrics.builtin import ACCURACY` (to derive from it) and `M2 = M` were refused as two
    metrics of one name."""
    plugin = tmp_path / "m.py"
    plugin.write_text(
        "import dataclasses\nfrom harness.metrics.builtin import ACCURACY\n"
        "M = dataclasses.replace(ACCURACY, name='weird', label='Weird')\nM2 = M\n"
    )
    registry = discover_metrics([plugin])
    assert registry.get("weird").label == "Weird" and registry.get("accuracy") is not None


def test_a_plugin_import_error_ending_in_a_question_gets_no_second_period(tmp_path):
    """'... Did you mean "probability"?.' was printed."""
    plugin = tmp_path / "m.py"
    plugin.write_text(
        "from harness.metrics import MetricDef\n"
        "M = MetricDef(name='m', label='M', point=lambda d: 0.0, needs='scores', score_kinds=('probabilty',))\n"
    )
    with pytest.raises(ConfigError) as caught:
        discover_metrics([plugin])
    assert str(caught.value).endswith('Did you mean "probability"?') and "(line 2)" in str(caught.value)
