"""Task and metric discovery: built-ins, installed plugins (entry point groups "harness.tasks" and
"harness.metrics") and paths the user names (a .py file, a .yaml/.yml file, or a folder of YAML files).
Code is imported only from installed packages and from .py paths the user named.

A task entry point may load a Task subclass (instantiated without arguments), a Task instance, or a
factory callable returning a Task or an iterable of Tasks. A metric entry point loads a MetricDef or an
iterable of them; a .py plugin contributes its module-level Task subclasses and MetricDef objects.
Each task's declared metrics are resolved against the discovered metrics when the registry is built,
so a bad `metrics:` / `main_metric:` is a ConfigError at load naming the file and the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import stat
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from harness.data.task_options import CachedTask, ConfiguredTask, TaskOptions
from harness.data.yaml_task import YamlTask
from harness.entry_points import items, load_group
from harness.errors import ConfigError, HarnessError, unknown_name
from harness.metrics import MetricDef, MetricRegistry, TaskMetrics
from harness.metrics.builtin import BUILTIN_METRICS
from harness.outfile import is_symlink_loop
from harness.package_data import BUILTIN_TASKS_MODULE, data_folder
from harness.tasks import Task, TaskSpec

ENTRY_POINT_GROUP = "harness.tasks"
METRIC_ENTRY_POINT_GROUP = "harness.metrics"
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class TaskEntry:
    name: str
    origin: str  # where the task came from, for listings and error messages
    task: Task


def _checked(obj: Any, origin: str) -> Task:
    if not isinstance(obj, Task) or not isinstance(getattr(obj, "spec", None), TaskSpec):
        raise ConfigError(
            f"{origin}: expected a harness.tasks.Task with a TaskSpec `spec`, got {type(obj).__name__}."
        )
    return obj


def _instantiate(cls: type[Task], origin: str) -> Task:
    try:
        return _checked(cls(), origin)
    except HarnessError:
        raise
    except (Exception, SystemExit) as exc:
        raise ConfigError(
            f"{origin}: could not create task class {cls.__name__}: {type(exc).__name__}: {exc}"
        ) from exc


def _tasks_from_object(obj: Any, origin: str) -> list[Task]:
    if inspect.isclass(obj) and issubclass(obj, Task):
        return [_instantiate(obj, origin)]
    if isinstance(obj, Task):
        return [_checked(obj, origin)]
    if callable(obj):
        try:
            made = obj()
        except HarnessError:
            raise
        except (Exception, SystemExit) as exc:
            raise ConfigError(f"{origin}: task factory failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(made, Task):
            return [_checked(made, origin)]
        if isinstance(made, Iterable):
            return [_checked(t, origin) for t in made]
    raise ConfigError(
        f"{origin}: loads {type(obj).__name__}, expected a Task subclass, a Task, or a factory returning Tasks."
    )


def _entry_point_tasks() -> list[tuple[Task, str]]:
    return [(task, origin) for obj, origin in load_group(ENTRY_POINT_GROUP) for task in _tasks_from_object(obj, origin)]


def _import_path(path: Path) -> ModuleType:
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:8]  # a file name may hold bytes that are not UTF-8
    module_name = f"_harness_plugin_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Plugin {path}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    real_exit = os._exit
    os._exit = _refuse_os_exit  # it ended the command at once with the plugin's status, 0 included
    try:
        with contextlib.redirect_stdout(sys.stderr):  # its print() went into `tasks --json` and the like
            spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from a plugin must not end the run
        del sys.modules[module_name]
        raise ConfigError(_import_failure(path, exc)) from None
    finally:
        os._exit = real_exit
    return module


class _OsExit(BaseException):
    """os._exit called by a plugin being imported."""


def _refuse_os_exit(status: int) -> NoReturn:
    raise _OsExit(status)


def _import_failure(path: Path, exc: BaseException) -> str:
    """One paragraph: what the plugin raised while being imported and the line of the plugin that did it."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    at = f" (line {lines[-1]})" if lines else ""
    if isinstance(exc, (SystemExit, _OsExit)):
        call = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"os._exit({exc.args[0]!r})"
        what = f"it called {call} (a plugin must define tasks, not end the program)"
    else:
        detail = " ".join(str(exc).split())
        what = type(exc).__name__ + (f": {detail}" if detail else "")
    return f"Plugin {path} failed to import{at}: {what}" + ("" if what.endswith((".", "?")) else ".")


def _task_classes(module: ModuleType) -> list[type[Task]]:
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Task)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]


def _module_metrics(module: ModuleType) -> list[MetricDef]:
    """The MetricDefs a plugin module defines: each object once (M2 = M is one metric), and none of the
    built-in ones it imported (from harness.metrics.builtin import ACCURACY: refused as a second "accuracy")."""
    builtin = {id(m) for m in BUILTIN_METRICS}
    found: dict[int, MetricDef] = {}
    for obj in vars(module).values():
        if isinstance(obj, MetricDef) and id(obj) not in builtin:
            found.setdefault(id(obj), obj)
    return list(found.values())


def _python_plugin_tasks(path: Path) -> list[tuple[Task, str]]:
    module = _import_path(path)
    classes = _task_classes(module)
    if not classes and not _module_metrics(module):
        raise ConfigError(
            f"Plugin {path} defines no concrete harness.tasks.Task subclass and no harness.metrics.MetricDef."
        )
    origin = f"plugin file {path}"
    return [(_instantiate(cls, f"{origin} ({cls.__name__})"), origin) for cls in classes]


def _entry_point_metrics() -> list[tuple[MetricDef, str]]:
    return [(m, origin) for obj, origin in load_group(METRIC_ENTRY_POINT_GROUP) for m in items(obj, MetricDef)]


def discover_metrics(plugins: Sequence[Path | str] = ()) -> MetricRegistry:
    """Built-in metrics + the harness.metrics entry point group + MetricDefs of the .py plugins named (task
    files and folders among them are TaskRegistry's; a path that does not exist is an error, not ignored)."""
    found = _entry_point_metrics()
    for path in _plugin_paths(plugins):
        if path.suffix == ".py" and not path.is_dir():
            found.extend((m, f"plugin file {path}") for m in _module_metrics(_import_path(path)))
    return MetricRegistry(found)


def _builtin_tasks() -> list[tuple[Task, str]]:
    """The task files of the top-level tasks/ folder (harness.builtin_tasks once installed): each
    .yaml file, and the Task subclasses of each .py module whose name does not start with "_"."""
    folder = data_folder("builtin_tasks")
    found: list[tuple[Task, str]] = []
    for path in sorted(folder.glob("*.py")):
        if not path.name.startswith("_"):
            module = importlib.import_module(f"{BUILTIN_TASKS_MODULE}.{path.stem}")
            origin = f"built-in {module.__name__}"
            found += [(_instantiate(task_cls, origin), origin) for task_cls in _task_classes(module)]
    found += [(YamlTask(f), f"built-in {f.name}") for f in sorted(folder.glob("*.yaml"))]
    return found


_PLUGIN_KINDS = "a .py file, a .yaml/.yml task file, or a folder of task files"


def _plugin_path(raw: Path | str) -> Path:
    """A --plugin / plugins: path, resolved and checked to be a folder, or a regular .py or task file: any other
    file was ignored by some commands, and a pipe named like one (x.py) hung the command reading it."""
    path = Path(raw).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"Plugin path not found: {raw}.")
    if path.is_dir():
        return path
    if not path.is_file():
        raise ConfigError(f"Plugin {path} is not a regular file (a device or a pipe); expected {_PLUGIN_KINDS}.")
    if path.suffix not in (*_YAML_SUFFIXES, ".py"):
        raise ConfigError(f"Plugin {path}: expected {_PLUGIN_KINDS}.")
    return path


def _plugin_paths(plugins: Sequence[Path | str]) -> list[Path]:
    """Each plugin path once: a file named twice (in a suite's plugins: and by --plugin) was loaded twice, and
    refused as defining every one of its tasks and metrics twice."""
    return list(dict.fromkeys(_plugin_path(raw) for raw in plugins))


def _not_a_task_file(path: Path) -> str | None:
    """Why a folder's entry named like a task file is not one to read (None: a regular file, or a link to one)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if path.is_symlink():
            return f"a symbolic link that {'leads back to itself (a loop)' if is_symlink_loop(path) else 'leads to no file'}"
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a named pipe" if stat.S_ISFIFO(mode) else "not a regular file (a device or a socket)"


def _path_tasks(path: Path) -> list[tuple[Task, str]]:
    if path.is_dir():
        named = sorted(p for p in path.iterdir() if p.suffix in _YAML_SUFFIXES)
        if bad := [f"{p.name} is {why}" for p in named if (why := _not_a_task_file(p))]:
            # skipped, a task file the user put there would be missing (or the folder said to have none)
            raise ConfigError(
                f"Plugin folder {path} holds {'entries' if len(bad) > 1 else 'an entry'} named like task files "
                f"that cannot be read as one: {'; '.join(bad)}. Replace each with the task file it should be, or "
                "remove it from the folder."
            )
        files = named
        if not files:
            raise ConfigError(
                f"Plugin folder {path} has no .yaml/.yml task files (Python plugins must be named one by one)."
            )
        return [(YamlTask(f), f"task file {f}") for f in files]
    if path.suffix in _YAML_SUFFIXES:
        return [(YamlTask(path), f"task file {path}")]
    return _python_plugin_tasks(path)


class TaskRegistry:
    """Task name -> Task. Loaded data is cached per (name, options) for the life of the registry."""

    def __init__(self, entries: Iterable[tuple[Task, str]], metrics: MetricRegistry | None = None) -> None:
        self.metric_registry = metrics or MetricRegistry()
        self._metrics: dict[str, TaskMetrics] = {}
        self._entries: dict[str, TaskEntry] = {}
        for task, origin in entries:
            name = task.spec.name
            if name in self._entries:
                raise ConfigError(
                    f'Two tasks are named "{name}": one from {self._entries[name].origin}, one from {origin}. '
                    "Rename one of them (task names must be unique)."
                )
            self._entries[name] = TaskEntry(name=name, origin=origin, task=task)
            spec = task.spec
            self._metrics[name] = self.metric_registry.resolve(
                spec.metrics, spec.main_metric, len(spec.labels), where=_task_where(task, origin)
            )
        self._base: dict[str, CachedTask] = {}
        self._configured: dict[tuple[str, str], Task] = {}

    @classmethod
    def discover(cls, plugins: Sequence[Path | str] = ()) -> TaskRegistry:
        entries = _builtin_tasks()
        entries += _entry_point_tasks()
        for path in _plugin_paths(plugins):
            entries += _path_tasks(path)
        return cls(entries, discover_metrics(plugins))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def specs(self) -> list[TaskSpec]:
        return [self._entries[name].task.spec for name in self.names()]

    def entries(self) -> list[TaskEntry]:
        return [self._entries[name] for name in self.names()]

    def task_metrics(self, name: str) -> TaskMetrics:
        """The task's resolved metrics (declared or default) and main metric."""
        self._entry(name)
        return self._metrics[name]

    def origin(self, name: str) -> str:
        return self._entry(name).origin

    def _entry(self, name: str) -> TaskEntry:
        if name not in self._entries:
            raise unknown_name("task", name, self._entries)
        return self._entries[name]

    def get(self, name: str, options: Mapping[str, Any] | None = None) -> Task:
        """The task `name` with `options` applied (see harness.data.task_options); same object per options."""
        entry = self._entry(name)
        parsed = TaskOptions.parse(options, file=f"Task {name!r}")
        if name not in self._base:
            self._base[name] = CachedTask(entry.task)
        if not parsed.tag():
            return self._base[name]
        key = (name, parsed.tag())
        if key not in self._configured:
            self._configured[key] = ConfiguredTask(self._base[name], parsed)
        return self._configured[key]


def _task_where(task: Task, origin: str) -> str:
    path = getattr(task, "path", None)
    return str(path) if isinstance(path, Path) else f"{origin}, task {task.spec.name!r}"
