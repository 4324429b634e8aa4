"""Tasks declared in a YAML file, no Python needed.

Schema (relative paths resolve from the YAML file's folder)::

    name: my-task                  # letters, digits, '-', '_', '.'
    version: "1"                   # bump when the data or splits change
    modality: text                 # text | image
    description: ...               # license, citation, homepage too
    metrics: [accuracy, macro_f1, mcc, {name: top_k_accuracy, params: {k: 3}}]
                                   # registered metric names or {name, params, id} (default: accuracy,
                                   # macro_f1, weighted_f1, macro_precision, macro_recall, f1, confusion_matrix)
    main_metric: mcc               # ranks and gates; one of metrics (default macro_f1 when listed)
    labels: [negative, positive]   # a value matches the label of its name, typed any way (1, "1", 1.0 are
                                   # the label "1"); an integer is a position (0 = first) only when no
                                   # declared label is an integer
    source:
      type: hf                     # hf | csv | jsonl | parquet | imagefolder | textfolder
      id: stanfordnlp/sst2         # hf: hub id (or a local dataset folder); config, revision, data_files;
                                   # a hub id is pinned by the commit its revision (default main) resolves
                                   # to, from the hub or the local hub cache (see docs/adding-a-task.md)
                                   # id: csv (json, parquet, ... a datasets builder) needs data_files: paths
                                   # or glob patterns from this file's folder (a local dataset folder's
                                   # own data_files are from that folder); every local file read is tracked
      # path: data/all.csv         # csv/jsonl/parquet: one file holding every row (split below);
                                   # imagefolder: root folder of <label>/<image> (or <split>/<label>/...),
                                   # no links to folders inside (datasets skips them: an error);
                                   # textfolder: root folder of <label>/<name>.txt, one example per file,
                                   # ids <label>/<name> (or <split>/<label>/...)
                                   # pkg://<package or distribution>/<path>: a file or folder shipped in an
                                   # installed Python package (as for model sources)
      # data_files: {train: a.csv, test: b.csv}   # local alternative to path: files per split
      # encoding: latin-1          # csv: the file's encoding; textfolder: the files' encoding (default
                                   # utf-8) or a list tried in order per file, e.g. [utf-8, latin-1]
    text_column: sentence          # default "text" (image tasks: image_column, default "image");
                                   # a row whose text is missing, empty or whitespace is an error
                                   # images load as uint8 the way viewers show them: EXIF orientation
                                   # applied; 16-bit images keep their top 8 bits; float images must hold
                                   # 0..1 (x 255); negative or >16-bit integers are refused
    label_column: label            # default "label"
    id_column: idx                 # optional; default ids are "<source split>-<row>"
    id_prefix: tweet               # optional, one source split only: ids "<id_prefix>-<row>"
    splits:                        # where each split comes from: an hf split name ("train[:5000]" works),
      train: train                 # a data_files key, a file path (csv/jsonl/parquet) or a subfolder
      test: validation             # of source.path (imagefolder, textfolder)
    split: {validation_size: 0.1, test_size: 0.2, seed: 0}
                                   # missing validation/test splits are carved from train, stratified,
                                   # keeping exact duplicates together; sizes are fractions of train
                                   # near_duplicate_threshold: 0.8 (text) also keeps texts with word-shingle
                                   # Jaccard >= 0.8 together
    dedupe: drop-test-leaks        # drop-test-leaks (default) | drop-duplicates | off: what to do with
                                   # exact duplicates between/within the given splits (a warning
                                   # reports them either way); non-default modes are added to version
    prompt_templates: ["This review is {label}."]
    label_verbalizers: {negative: bad}   # the word prompts and LMs use for a label (default: its name);
                                   # every label's word must be non-blank and its own
    lm_prompt: "Review: {text}\nSentiment:"   # causal LMs: {text} required, {labels} optional; the
                                   # scorer appends " " + verbalizer, so do not end with a space.
                                   # Placeholders are plain: no conversion or format spec ({text!r},
                                   # {text:>20}), here and in prompt_templates
"""

from __future__ import annotations

import codecs
import encodings.aliases
import hashlib
import re
import secrets
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from harness.assets import PKG_SCHEME, resolve_package_path
from harness.data.assemble import group_aware_split
from harness.data.content_hash import content_keys
from harness.data.hygiene import DedupeMode, enforce_hygiene
from harness.data.loaders import (
    Columns,
    DataFiles,
    FileFormat,
    RawExamples,
    data_file_entries,
    has_glob,
    hub_dataset_commit,
    is_datasets_builder,
    load_file_split,
    load_hf_split,
    load_imagefolder_split,
    load_textfolder_split,
    matching_files,
)
from harness.data.signatures import package_version, signature
from harness.errors import ConfigError, DataError, close_match
from harness.seeding import check_seed
from harness.tasks import SPLIT_NAMES, Split, Task, TaskData, TaskSpec, template_fields
from harness.typed_config import NAME_RULE, bad_name, build, schema_error, shown
from harness.yaml_io import load_yaml

SourceType = Literal["hf", "csv", "jsonl", "parquet", "imagefolder", "textfolder"]
_FOLDER_TYPES = ("imagefolder", "textfolder")
DataFilesValue = str | tuple[str, ...] | Mapping[str, str | tuple[str, ...]]
_FILE_FORMAT: dict[str, FileFormat] = {"csv": "csv", "jsonl": "json", "parquet": "parquet"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
DEFAULT_DEDUPE: DedupeMode = "drop-test-leaks"
# The libraries that parse each source type (datasets' readers over pyarrow, pandas for CSV, Pillow decoding
# images): an upgrade can change what is read, so their versions are in the source's signature.
_READERS = {
    "hf": ("datasets", "pyarrow", "pandas", "pillow"),
    "csv": ("datasets", "pyarrow", "pandas"),
    "parquet": ("datasets", "pyarrow"),
    "imagefolder": ("datasets", "pyarrow", "pillow"),
}
# In the signature of a hub dataset whose commit is unknown: no stored fingerprint matches it, so its data is
# loaded and fingerprinted by content on every run.
_UNPINNED = secrets.token_hex(8)


@dataclass(frozen=True)
class SourceConfig:
    type: SourceType
    id: str | None = None
    path: str | None = None
    config: str | None = None
    revision: str | None = None
    data_files: DataFilesValue | None = None
    encoding: str | tuple[str, ...] | None = None


@dataclass(frozen=True)
class HfSource:
    """An hf source as datasets is given it: `path` a hub id, a builder name (csv, ...) or an absolute local
    folder; `data_files` with local entries absolute; `local` the local files and folders it reads; `hub` whether
    `path` is a hub dataset id."""

    path: str
    data_files: DataFiles | None
    local: tuple[Path, ...]
    hub: bool = False


@dataclass(frozen=True)
class SplitSources:
    train: str | None = None
    validation: str | None = None
    test: str | None = None

    def given(self) -> dict[str, str]:
        return {name: ref for name in SPLIT_NAMES if (ref := getattr(self, name)) is not None}


@dataclass(frozen=True)
class CarveConfig:
    validation_size: float = 0.1
    test_size: float = 0.2
    seed: int = 0
    near_duplicate_threshold: float | None = None

    def __post_init__(self) -> None:
        check_seed(self.seed)


@dataclass(frozen=True, kw_only=True)
class YamlTaskConfig(TaskSpec):
    """A task file: every TaskSpec key (so a new TaskSpec field is a task-file key too) plus where the data
    comes from. `source` is the data source here; the spec's `source` is its one-line text (`spec()`)."""

    source: SourceConfig  # type: ignore[assignment]
    text_column: str | None = None
    image_column: str | None = None
    label_column: str = "label"
    id_column: str | None = None
    id_prefix: str | None = None
    splits: SplitSources | None = None
    split: CarveConfig = field(default_factory=CarveConfig)
    dedupe: DedupeMode = DEFAULT_DEDUPE

    def spec(self, source: str) -> TaskSpec:
        """The TaskSpec this file declares; a non-default dedupe mode is part of its version."""
        values = {f.name: getattr(self, f.name) for f in fields(TaskSpec)}
        version = self.version if self.dedupe == DEFAULT_DEDUPE else f"{self.version}+dedupe-{self.dedupe}"
        return TaskSpec(**{**values, "version": version, "source": source})

    @property
    def input_column(self) -> str:
        if self.modality == "text":
            return self.text_column or "text"
        return self.image_column or "image"


def _check(config: YamlTaskConfig, file: Path) -> None:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"{file}: {message}")

    if not _NAME_RE.match(config.name):
        raise fail(
            f"key 'name' must start with a letter or digit and use only letters, digits, '-', '_', '.'; got {config.name!r}."
        )
    if bad_name(config.version):  # part of every job key and shown in every table's notes
        raise fail(f"key 'version' must be {NAME_RULE}, e.g. \"1\"; got {shown(config.version)}.")
    if not config.prompt_templates:
        raise fail("key 'prompt_templates' must list at least one template (zero-shot scores each label with them), e.g. [\"{label}\"].")
    if not config.labels:
        raise fail("key 'labels' must list at least one label.")
    if len(set(config.labels)) != len(config.labels):
        raise fail(f"key 'labels' lists a label twice: {list(config.labels)}.")
    for label in config.label_verbalizers:
        if label not in config.labels:
            raise fail(
                f"key 'label_verbalizers.{label}' is not one of the labels.{close_match(label, config.labels)} "
                f"Labels: {list(config.labels)}."
            )
    for i, template in enumerate(config.prompt_templates):
        try:
            fields = template_fields(template, ("label",))
        except ValueError as exc:
            raise fail(f"key 'prompt_templates[{i}]' {template!r} {exc}.") from None
        if "label" not in fields:  # ('{{label}}' is the literal text {label}: every label's prompt the same)
            raise fail(f"key 'prompt_templates[{i}]' {template!r} has no {{label}} placeholder.")
    other = "image_column" if config.modality == "text" else "text_column"
    if getattr(config, other) is not None:
        raise fail(
            f"key '{other}' does not apply to a {config.modality} task; use '{'text_column' if other == 'image_column' else 'image_column'}'."
        )

    src = config.source
    if src.type == "hf":
        if not src.id:
            raise fail("source type hf needs 'source.id' (a hub dataset id such as stanfordnlp/sst2).")
        if src.path:
            raise fail("key 'source.path' is for local sources; for hf use 'source.id'.")
    else:
        for key in ("id", "config", "revision"):
            if getattr(src, key) is not None:
                raise fail(f"key 'source.{key}' only applies to source type hf (this source is {src.type}).")
        if src.type in _FOLDER_TYPES:
            files = "<label>/<images>" if src.type == "imagefolder" else "<label>/<name>.txt files"
            if not src.path or src.data_files is not None:
                raise fail(f"source type {src.type} needs 'source.path' (a folder of {files}), and no data_files.")
        elif not src.path and src.data_files is None:
            raise fail(f"source type {src.type} needs 'source.path' (a file) or 'source.data_files'.")
        elif src.path and src.data_files is not None:
            raise fail("give either 'source.path' or 'source.data_files', not both.")
    _check_encoding(src, file, fail)
    if config.modality == "image" and src.type in ("csv", "jsonl", "textfolder"):
        raise fail(f"image tasks need source type hf, parquet or imagefolder, not {src.type}.")
    if config.modality == "text" and src.type == "imagefolder":
        raise fail("source type imagefolder holds images; set 'modality: image' (text files: textfolder).")
    if src.type == "textfolder":
        given = [k for k in ("text_column", "id_column", "id_prefix") if getattr(config, k) is not None]
        given += ["label_column"] if config.label_column != "label" else []
        if given:
            raise fail(
                f"key '{given[0]}' does not apply to source type textfolder: each file is one text, labelled "
                "by its folder, with id <label>/<file name>."
            )
    if config.id_prefix is not None and config.id_column is not None:
        raise fail("give either 'id_column' (ids from a column) or 'id_prefix' (numbered rows), not both.")
    if config.splits is not None and config.splits.train is None:
        raise fail(
            "key 'splits.train' is required when 'splits' is given (validation/test may be carved from it)."
        )
    carve = config.split
    for key in ("validation_size", "test_size"):
        if not 0.0 <= getattr(carve, key) < 1.0:
            raise fail(f"key 'split.{key}' must be a fraction between 0 and 1, got {getattr(carve, key)}.")
    if carve.validation_size + carve.test_size >= 1.0:
        raise fail("keys 'split.validation_size' + 'split.test_size' must add up to less than 1.")
    near = carve.near_duplicate_threshold
    if near is not None and not 0.0 < near <= 1.0:
        raise schema_error(file, "split.near_duplicate_threshold", "a word-shingle Jaccard similarity in (0, 1]", near)
    if near is not None and config.modality != "text":
        raise fail("key 'split.near_duplicate_threshold' applies to text tasks (images are grouped by exact pixels).")


def _check_encoding(src: SourceConfig, file: Path, fail: Callable[[str], ConfigError]) -> None:
    if src.encoding is None:
        return
    if src.type not in ("csv", "textfolder"):
        raise fail("key 'source.encoding' only applies to csv and textfolder sources.")
    names = (src.encoding,) if isinstance(src.encoding, str) else src.encoding
    if src.type == "csv" and not isinstance(src.encoding, str):
        raise fail("key 'source.encoding' of a csv source is one encoding (a list is for textfolder).")
    if not names:
        raise fail("key 'source.encoding' lists no encoding.")
    for i, name in enumerate(names):
        try:
            codecs.lookup(name)
        except LookupError:
            key = "source.encoding" if isinstance(src.encoding, str) else f"source.encoding[{i}]"
            aliases = {*encodings.aliases.aliases, *encodings.aliases.aliases.values()}
            known = sorted(aliases | {a.replace("_", "-") for a in aliases})  # utf-8 as well as utf_8
            raise schema_error(file, key, "a text encoding Python knows", name, close_match(name, known)) from None


SUITE_ONLY_KEYS = frozenset({"models", "protocols", "plugins", "tasks"})  # a suite's, never a task file's


def load_yaml_task_config(path: Path) -> YamlTaskConfig:
    if not path.is_file():
        raise ConfigError(f"Task file not found: {path}.")
    data = load_yaml(path, "Task file")
    if isinstance(data, dict) and (suite_keys := sorted(SUITE_ONLY_KEYS & data.keys())):
        raise ConfigError(
            f"{path} is read as a task file (a plugin), but it looks like a suite file: it has the keys "
            f"{', '.join(suite_keys)}, which no task file has. List task files (.yaml or .py) under a suite's "
            "plugins: or give them with --plugin, not a suite itself; run a suite with `harness run SUITE`."
        )
    config = build(YamlTaskConfig, data, file=path)
    _check(config, path)
    return config


class YamlTask(Task):
    """A Task whose metadata, source and splits come from a YAML file (see the module docstring)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).resolve()
        self.config = load_yaml_task_config(self.path)
        self._file_digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.spec = self.config.spec(self._source_text())

    def __repr__(self) -> str:
        return f"YamlTask({str(self.path)!r})"

    def _source_text(self) -> str:
        s = self.config.source
        if s.type == "hf":
            return (
                f"hf:{s.id}"
                + (f" config={s.config}" if s.config else "")
                + (f"@{s.revision}" if s.revision else "")
            )
        return f"{s.type}:{s.path or s.data_files}"

    def _resolve(self, relative: str, key: str = "source.path") -> Path:
        """A path of the task file: pkg://... (an installed package's file), absolute, or relative to the file."""
        if relative.startswith(PKG_SCHEME):
            return Path(resolve_package_path(relative, what=f"{self.path}: key '{key}'"))
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.path.parent / p

    # -- where each split comes from -------------------------------------------------------------

    def _split_refs(self) -> dict[str, str]:
        c, s = self.config, self.config.source
        if c.splits is not None:
            return c.splits.given()
        if isinstance(s.data_files, Mapping) and s.type != "hf":
            unknown = [k for k in s.data_files if k not in SPLIT_NAMES]
            if unknown:
                raise ConfigError(
                    f"{self.path}: source.data_files has keys {unknown} that are not train/validation/test; "
                    "add a 'splits' section saying which key feeds which split."
                )
            return {k: k for k in SPLIT_NAMES if k in s.data_files}
        if s.type in _FOLDER_TYPES:
            root = self._resolve(s.path or ".")
            present = {k: k for k in SPLIT_NAMES if (root / k).is_dir()}
            if "train" in present:
                return present
        return {"train": "train" if s.type == "hf" else ""}  # "" = the whole local source

    def _local_files(self, ref: str) -> tuple[list[Path], str]:
        """Files for a split reference of a csv/jsonl/parquet source, and an id prefix."""
        s = self.config.source
        if ref == "":
            if s.path:
                path = self._resolve(s.path)
                return [path], path.stem
            files = s.data_files
            if isinstance(files, str):
                files = (files,)
            assert isinstance(files, tuple)
            return [self._resolve(f, "source.data_files") for f in files], "train"
        if isinstance(s.data_files, Mapping) and ref in s.data_files:
            entry = s.data_files[ref]
            files = (entry,) if isinstance(entry, str) else entry
            return [self._resolve(f, f"source.data_files.{ref}") for f in files], ref
        path = self._resolve(ref, "splits")
        return [path], path.stem

    def _hf_source(self) -> HfSource:
        """What `datasets.load_dataset` is given for an hf source, with every relative path resolved from the
        task file's folder (never from the current folder), and the local files that makes it read."""
        s = self.config.source
        assert s.id is not None
        if is_datasets_builder(s.id):  # csv, json, parquet, imagefolder, ...: reads exactly its data_files
            if s.data_files is None:
                raise ConfigError(
                    f"{self.path}: key 'source.id' {s.id!r} names datasets' {s.id} builder, which reads the files "
                    "in 'source.data_files'; none are given (datasets would read the current folder). Add "
                    "'source.data_files' (paths or glob patterns relative to the task file), or use source "
                    "type csv, jsonl or parquet with 'source.path'."
                )
            return self._hf_with_files(s.id, self.path.parent, folder=None)
        if s.id.startswith(PKG_SCHEME) or "://" not in s.id:
            local = self._resolve(s.id, "source.id")
            if local.is_dir():  # a dataset folder: its own data_files resolve from it, as datasets does
                return self._hf_with_files(str(local), local, folder=local)
            beside_cwd = Path(s.id).expanduser()
            if not beside_cwd.is_absolute() and beside_cwd.is_dir():
                raise ConfigError(
                    f"{self.path}: key 'source.id' {s.id!r} is not a folder beside the task file ({local} does not "
                    f"exist) but is one in the current folder ({beside_cwd.resolve()}), which datasets would read "
                    "in place of the hub dataset. Relative paths in a task file resolve from the task file's "
                    "folder: write the folder's path relative to the task file (or absolute), or run from "
                    "another folder to load the hub dataset."
                )
        hub = "://" not in s.id and not Path(s.id).expanduser().is_absolute()
        return HfSource(path=s.id, data_files=self._hf_data_files(None), local=(), hub=hub)

    @cached_property
    def hub_pin(self) -> tuple[str | None, str | None] | None:
        """(commit, None) a hub dataset source is pinned to, (None, why) when it cannot be resolved; None for
        other sources. Resolved once per task object: every plan and load of it uses the same commit."""
        s = self.config.source
        if s.type != "hf" or not self._hf_source().hub:
            return None
        assert s.id is not None
        commit, why = hub_dataset_commit(s.id, s.revision, config=s.config, data_files=s.data_files)
        if commit is None:
            warnings.warn(
                f"{self.path}: hub dataset {s.id!r}: {why}; its data is loaded and fingerprinted by content on "
                "every run instead of being pinned to a commit.",
                stacklevel=2,
            )
        return commit, why

    def _hf_with_files(self, path: str, base: Path, folder: Path | None) -> HfSource:
        data_files = self._hf_data_files(base)
        entries = data_file_entries(data_files)
        local = [folder] if folder is not None else []
        for entry in entries:
            if "://" not in entry:
                local += matching_files(entry) if has_glob(entry) else [Path(entry)]
        return HfSource(path=path, data_files=data_files, local=tuple(local))

    def _hf_data_files(self, base: Path | None) -> DataFiles | None:
        """source.data_files in datasets' shape; relative local entries made absolute from `base`."""

        def place(entry: str, key: str) -> str:
            if base is None or ("://" in entry and not entry.startswith(PKG_SCHEME)):
                return entry  # a hub dataset's own files, or a remote url
            if entry.startswith(PKG_SCHEME):
                return str(self._resolve(entry, key))
            p = Path(entry).expanduser()
            return str(p if p.is_absolute() else base / p)

        files = self.config.source.data_files
        if files is None:
            return None
        if isinstance(files, str):
            return place(files, "source.data_files")
        if isinstance(files, tuple):
            return [place(f, f"source.data_files[{i}]") for i, f in enumerate(files)]
        return {
            k: place(v, f"source.data_files.{k}")
            if isinstance(v, str)
            else [place(f, f"source.data_files.{k}[{i}]") for i, f in enumerate(v)]
            for k, v in files.items()
        }

    def read_raw(self, ref: str = "") -> RawExamples:
        """The examples of one split reference as read ("": the whole local source, before any carving)."""
        c, s = self.config, self.config.source
        columns = Columns(input=c.input_column, label=c.label_column, modality=c.modality, id=c.id_column)
        if s.type == "hf":
            hf = self._hf_source()
            return load_hf_split(
                hf.path,
                split=ref,
                columns=columns,
                config=s.config,
                revision=s.revision,
                data_files=hf.data_files,
                id_prefix=c.id_prefix,
                commit=self.hub_pin[0] if self.hub_pin else None,
            )
        if s.type in _FOLDER_TYPES:
            root = self._resolve(s.path or ".")
            directory = root / ref if ref else root
            if s.type == "textfolder":
                tried = (s.encoding,) if isinstance(s.encoding, str) else s.encoding or ("utf-8",)
                return load_textfolder_split(directory, labels=self.spec.labels, encodings=tried, id_prefix=ref)
            return load_imagefolder_split(
                directory, columns=columns, labels=self.spec.labels, id_prefix=c.id_prefix or ref or root.name
            )
        files, prefix = self._local_files(ref)
        assert not isinstance(s.encoding, tuple)  # _check: a csv source has one encoding
        return load_file_split(
            _FILE_FORMAT[s.type], files, columns=columns, id_prefix=c.id_prefix or prefix, encoding=s.encoding
        )

    def local_paths(self) -> list[Path]:
        """Local files and folders this task reads (their stats go into the source signature)."""
        s = self.config.source
        if s.type == "hf":
            return list(self._hf_source().local)
        if s.type in _FOLDER_TYPES:
            return [self._resolve(s.path or ".")]
        return [path for ref in self._split_refs().values() for path in self._local_files(ref)[0]]

    # -- Task API ---------------------------------------------------------------------------------

    def load(self) -> TaskData:
        c = self.config
        refs = self._split_refs()
        if c.id_prefix is not None and len(refs) > 1:
            raise ConfigError(
                f"{self.path}: key 'id_prefix' numbers the rows of one source, but {len(refs)} splits are read "
                f"({', '.join(refs)}), so their ids would repeat. Remove 'id_prefix' (ids are then "
                "<source split>-<row>) or name an 'id_column'."
            )
        labels = self.spec.labels
        splits: dict[str, Split] = {
            name: self.read_raw(ref).to_split(name, labels) for name, ref in refs.items()
        }
        missing = [name for name in ("validation", "test") if name not in splits]
        if missing:
            carved = group_aware_split(
                splits["train"],
                validation_size=c.split.validation_size if "validation" in missing else 0.0,
                test_size=c.split.test_size if "test" in missing else 0.0,
                seed=c.split.seed,
                near_threshold=c.split.near_duplicate_threshold,
            )
            for name in ("train", *missing):
                if name not in carved:
                    raise DataError(
                        f"{self.path}: carving {', '.join(missing)} from the {len(splits['train'])} train "
                        f"examples (split.validation_size {c.split.validation_size}, split.test_size "
                        f"{c.split.test_size}) left the {name!r} split empty.{_few_distinct(splits['train'])} "
                        "Provide more data, larger fractions, or the split itself under 'splits'."
                    )
            splits.update(carved)
        data = TaskData(spec=self.spec, splits=splits)
        return enforce_hygiene(data, c.dedupe, origin=str(self.path))

    def source_signature(self) -> str:
        # Near-duplicate groups (and so the carved splits) come from datasketch's MinHash.
        near = self.config.split.near_duplicate_threshold is not None
        return signature(
            self.spec.as_dict(),
            self._file_digest,
            *([package_version("datasketch")] if near else []),
            *self._reader_parts(),
            files=self.local_paths(),
        )

    def _reader_parts(self) -> list[Any]:
        """The versions of the libraries that parse the source; the commit of a hub dataset."""
        parts: list[Any] = [f"{name} {package_version(name)}" for name in _READERS.get(self.config.source.type, ())]
        if self.hub_pin is not None:
            parts.append({"hub_commit": self.hub_pin[0] or f"unresolved {_UNPINNED}"})
        return parts


def _few_distinct(pool: Split) -> str:
    """Why carving can leave a split empty with rows enough: identical examples stay in one split."""
    distinct = len(set(content_keys(pool.inputs)))
    if distinct == len(pool):
        return ""
    kind = "text" if isinstance(pool.inputs[0], str) else "image"
    plural = "" if distinct == 1 else "s"
    return (
        f" Identical examples stay in one split, and these {len(pool)} hold only {distinct} distinct "
        f"{kind}{plural}{' (ignoring case and whitespace)' if kind == 'text' else ''}."
    )
