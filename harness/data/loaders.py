"""Read raw examples (ids, inputs, raw label values) from HF datasets: a hub id, a local dataset
directory, or local csv/jsonl/parquet files and image folders through datasets' packaged builders.

Every problem a user can fix (missing file, missing column, empty split, unreachable hub) becomes a
DataError that names the source, the column and what is available.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import numpy as np

from harness.data.labels import encode_labels
from harness.errors import DataError, HarnessError, close_match
from harness.hub import SHA_RE, hub_commit
from harness.tasks import Modality, Split

FileFormat = Literal["csv", "json", "parquet"]
_T = TypeVar("_T")
DataFiles = str | Sequence[str] | Mapping[str, str | Sequence[str]]

_HUB_HINT = (
    "If no dataset hub is reachable from this machine, load it once where one is (datasets caches it "
    "under HF_DATASETS_CACHE) and set HF_DATASETS_OFFLINE=1, or declare the task on local files "
    "(source type csv, jsonl, parquet or imagefolder)."
)


@dataclass(frozen=True)
class Columns:
    """Which columns hold the input, the label and (optionally) the example id."""

    input: str
    label: str
    modality: Modality
    id: str | None = None


RowLocator = Callable[[Sequence[int]], Sequence[str]]  # row indices -> where they are ("line 22"), for messages


@dataclass(frozen=True, eq=False)
class RawExamples:
    """Examples as read, before labels are mapped to the task's declared label list.

    `inputs` is a list of str (text), a uint8 array (N, H, W, C), or a list of HxWxC uint8 arrays when
    image sizes differ. `class_names` names the integer values of a datasets ClassLabel column. `locate`
    says where rows are in the source (file line numbers) for error messages; without it rows are named
    by their ids.
    """

    ids: tuple[str, ...]
    inputs: Sequence[Any]
    labels: Sequence[Any]
    where: str
    label_column: str
    class_names: tuple[str, ...] | None = None
    locate: RowLocator | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def describe_rows(self, rows: Sequence[int]) -> Sequence[str]:
        return _describe_rows(rows, self.ids, self.locate)

    def encoded_labels(self, declared: Sequence[str]) -> np.ndarray:
        return encode_labels(
            self.labels,
            declared,
            where=f"{self.where}, column {self.label_column!r}",
            class_names=self.class_names,
            rows=self.describe_rows,
        )

    def to_split(self, name: str, declared: Sequence[str]) -> Split:
        return Split(name=name, ids=self.ids, inputs=self.inputs, labels=self.encoded_labels(declared))


def _describe_rows(rows: Sequence[int], ids: Sequence[str], locate: RowLocator | None) -> Sequence[str]:
    found = locate(rows) if locate is not None else None
    return found if found else [f"id {ids[i]!r}" for i in rows]


@dataclass(frozen=True)
class FileLines:
    """The 1-based line each row of local csv / json lines files starts on (the row of a parquet file; files
    concatenated in order), found only when a message asks: good data is not read twice."""

    file_format: FileFormat
    files: tuple[Path, ...]
    n_rows: int
    encoding: str | None = None
    known: tuple[tuple[int, int], ...] | None = None  # (file index, line) per row, when the reader knows them

    def __call__(self, rows: Sequence[int]) -> Sequence[str]:
        """'line 22' per row ('b.csv line 22' when there are several files; 'row 22' of a parquet file); []
        when the lines cannot be told (a file that no longer has the rows that were read)."""
        starts = self._starts()
        if starts is None:
            return []
        unit = "row" if self.file_format == "parquet" else "line"
        several = len(self.files) > 1
        return [f"{self.files[f].name} " * several + f"{unit} {n}" for f, n in (starts[i] for i in rows)]

    def _starts(self) -> Sequence[tuple[int, int]] | None:
        if self.known is not None:
            return self.known
        starts: list[tuple[int, int]] = []
        try:
            for f, path in enumerate(self.files):
                if self.file_format == "parquet":
                    import pyarrow.parquet as pq

                    numbers = list(range(1, pq.ParquetFile(path).metadata.num_rows + 1))
                else:
                    numbers = _csv_record_lines(path, self.encoding or "utf-8")
                starts += [(f, n) for n in numbers]
        except Exception:  # any failure to re-read: only a message asks, and rows are then named by their ids
            return None
        return starts if len(starts) == self.n_rows else None


def _csv_record_lines(path: Path, encoding: str) -> list[int]:
    """The line each data record of a CSV file starts on, skipping the header and blank lines as pandas does."""
    starts: list[int] = []
    header = True
    line = 1
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        for record in reader:
            if any(cell.strip() for cell in record) or len(record) > 1:
                if not header:
                    starts.append(line)
                header = False
            line = reader.line_num + 1
    return starts


_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # a JSON text holds no raw CR or LF, so each ends a line
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
_OBJECT_EXAMPLE = '{"text": "...", "label": "..."}'


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def _json_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON value (write null, a number or a quoted string)")


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, eq=False)
class _JsonRows:
    """The objects of JSON Lines files as columns, shaped like the part of a datasets.Dataset that
    dataset_to_examples reads (column_names, features, len, a column by name)."""

    rows: tuple[dict[str, Any], ...]
    column_names: tuple[str, ...]
    features: Mapping[str, Any]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list[Any]:
        return [row.get(column) for row in self.rows]


def _read_json_lines(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The objects of a JSON Lines file and the line each is on, values as written: numbers keep their
    text (1e3 stays "1e3", 0.10 stays "0.10"); blank lines are skipped. Anything else is a DataError naming
    the file and the line: text that is not UTF-8 or not JSON, a line that is not one object, a key given
    twice, a \\ud800 escape with no other half."""
    where = f"file {path}"
    raw = path.read_bytes()
    raw = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = len(_LINE_BREAK.findall(raw[: exc.start].decode("utf-8", "replace"))) + 1
        raise DataError(
            f"{where}, line {at}: not UTF-8 text (byte 0x{raw[exc.start]:02x}). A JSON Lines file is UTF-8: "
            "save it as UTF-8."
        ) from None
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    for n, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        here = f"{where}, line {n}"
        try:
            value = json.loads(
                line, parse_int=str, parse_float=str, parse_constant=_json_constant, object_pairs_hook=_json_object
            )
        except _RepeatedKey as exc:
            raise DataError(f"{here}: the object gives the key {exc.key!r} twice. Keep one.") from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{here}: not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one JSON object, "
                f"e.g. {_OBJECT_EXAMPLE}."
            ) from None
        except (ValueError, RecursionError) as exc:
            detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise DataError(f"{here}: not valid JSON ({detail}). Each line must be one JSON object.") from None
        if not isinstance(value, dict):
            number = isinstance(value, str) and not line.lstrip().startswith('"')  # parse_int/float give str
            kind = "a number" if number else _JSON_KINDS.get(type(value), "a number")
            whole = (
                " The file looks like one JSON array: write one object per line (JSON Lines) instead."
                if not rows and isinstance(value, list)
                else ""
            )
            raise DataError(
                f"{here} is {kind}, not an object: each line of a JSON Lines file must be one JSON object, "
                f"e.g. {_OBJECT_EXAMPLE}.{whole}"
            )
        if _SURROGATE_ESCAPE.search(line) and not _encodable(value):
            raise DataError(
                f"{here}: a \\u escape in the range \\ud800-\\udfff is half of a character whose other half "
                "does not follow it, so the text cannot be read. Fix or remove the escape."
            )
        rows.append(value)
        lines.append(n)
    return rows, lines


def _load_json_lines(files: Sequence[Path], *, columns: Columns, where: str, id_prefix: str) -> RawExamples:
    rows: list[dict[str, Any]] = []
    known: list[tuple[int, int]] = []
    for f, path in enumerate(files):
        found, lines = _read_json_lines(path)
        rows += found
        known += [(f, n) for n in lines]
    names = tuple(dict.fromkeys(key for row in rows for key in row))
    table = _JsonRows(rows=tuple(rows), column_names=names, features={})
    locate = FileLines("json", tuple(files), len(rows), known=tuple(known))
    return dataset_to_examples(table, columns=columns, where=where, id_prefix=id_prefix, locate=locate)


def to_uint8_image(value: Any, *, where: str) -> np.ndarray:
    """An image as an HxWxC uint8 array, as image viewers show it: EXIF orientation applied; grayscale keeps
    one channel, every other mode becomes RGB. 16-bit images (PIL modes I;16*, and I holding 0..65535) keep
    their top 8 bits; float images (mode F) must hold 0..1 and are scaled by 255. Anything else that cannot
    be mapped to 0..255 without guessing (negative or 32-bit integers, floats outside 0..1) is a DataError."""
    from PIL import Image, ImageOps

    source = None
    try:
        if isinstance(value, Mapping) and ("bytes" in value or "path" in value):  # datasets Image(decode=False)
            source = value.get("path")
            value = Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else Image.open(value["path"])
        if isinstance(value, Image.Image):
            # As datasets' Image feature and image viewers do: a photo taken sideways is stored sideways
            # with an EXIF Orientation tag saying how to turn it.
            if value.getexif().get(_EXIF_ORIENTATION) is not None:
                value = ImageOps.exif_transpose(value)
            value = _pil_to_uint8(value, where=f"{where}: the image {source or '(in memory)'}")
    # PIL: unidentified, truncated or malformed image data; an image of more pixels than PIL decodes (a
    # decompression bomb: a 100 KB PNG of 30,000 x 30,000 pixels) raises its own error, not an OSError.
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        detail = " ".join(str(exc).split()).rstrip(".")
        raise DataError(
            f"{where}: cannot decode the image {source or '(in-memory bytes)'}: {detail}. Replace or remove the file."
        ) from None
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.dtype != np.uint8:
        raise DataError(
            f"{where}: expected images (PIL images or HxWxC uint8 arrays), got an array of shape "
            f"{arr.shape} and dtype {arr.dtype}."
        )
    return arr


_EXIF_ORIENTATION = 0x0112
_SAVE_AS = "Save it as an 8- or 16-bit image (or as floats in 0..1), or remove the file."


def _pil_to_uint8(image: Any, *, where: str) -> np.ndarray:
    """A PIL image's pixels as uint8 (HxW for grayscale, HxWx3 otherwise), scaled by its bit depth: PIL's own
    convert("L") clips 16-bit and float pixels to 0..255 (a 0..65535 gradient became 0 and 255, 0.5 became 0)."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return np.asarray(image)
    if mode.startswith("I;16") or mode == "I":
        pixels = np.asarray(image).astype(np.int64)
        low, high = (int(pixels.min()), int(pixels.max())) if pixels.size else (0, 0)
        if low < 0 or high > 65535:  # a 32-bit (or signed) integer image: no standard scale to 8 bits
            raise DataError(
                f"{where} holds integer pixel values from {low} to {high} (PIL mode {mode}); only 8-bit "
                f"(0..255) and 16-bit (0..65535) integer images have a standard brightness scale. {_SAVE_AS}"
            )
        return (pixels >> 8).astype(np.uint8)  # 16 -> 8 bits as scikit-image and torchvision do: keep the top byte
    if mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(pixels)
        if not finite.all() or (pixels.size and (pixels.min() < 0.0 or pixels.max() > 1.0)):
            shown = pixels[finite]
            span = f"from {shown.min():g} to {shown.max():g}" if shown.size else "no finite values"
            nan = f", and {int((~finite).sum())} NaN or infinite pixels" if not finite.all() else ""
            raise DataError(
                f"{where} is a float image with values {span}{nan} (PIL mode F); float images must hold "
                f"brightness in 0..1 (0 black, 1 white). {_SAVE_AS}"
            )
        return np.rint(pixels * 255.0).astype(np.uint8)
    return np.asarray(image.convert("L" if mode == "1" else "RGB"))


def stack_images(images: Sequence[np.ndarray]) -> Sequence[Any]:
    """One (N, H, W, C) array when all images share a shape, else the list as is.

    Typed as a Sequence like `Split.inputs` (a numpy array indexes like one).
    """
    if images and all(img.shape == images[0].shape for img in images):
        return cast("Sequence[Any]", np.stack(images))
    return list(images)


def _require_column(name: str, available: Sequence[str], *, where: str, setting: str) -> None:
    if name not in available:
        raise DataError(
            f"{where}: no column {name!r} (the task's {setting} setting).{close_match(name, available)} "
            f"Available columns: {', '.join(map(repr, available))}."
        )


def _class_names(dataset: Any, column: str) -> tuple[str, ...] | None:
    feature = dataset.features.get(column)
    names = getattr(feature, "names", None)
    return tuple(names) if names else None


def dataset_to_examples(
    dataset: Any, *, columns: Columns, where: str, id_prefix: str, locate: RowLocator | None = None
) -> RawExamples:
    """Turn one `datasets.Dataset` split into RawExamples, checking columns, emptiness and ids; `locate`
    says where rows are in the source files, for messages."""
    available = list(dataset.column_names)
    setting = "text_column" if columns.modality == "text" else "image_column"
    _require_column(columns.input, available, where=where, setting=setting)
    _require_column(columns.label, available, where=where, setting="label_column")
    if columns.id is not None:
        _require_column(columns.id, available, where=where, setting="id_column")
    if len(dataset) == 0:
        raise DataError(f"{where}: the split has no rows.")

    if columns.id is None:
        ids = tuple(f"{id_prefix}-{i}" for i in range(len(dataset)))
    else:
        ids = tuple(str(v) for v in dataset[columns.id])
        if len(set(ids)) != len(ids):
            repeated = [i for i, n in Counter(ids).items() if n > 1]
            raise DataError(
                f"{where}: column {columns.id!r} (id_column) has repeated ids, e.g. "
                f"{', '.join(map(repr, repeated[:5]))}. Ids must be unique; drop id_column to number rows."
            )

    if columns.modality == "image":  # decode ourselves, so a corrupt file is an error naming it
        import datasets

        if isinstance(dataset.features.get(columns.input), datasets.Image):
            dataset = dataset.cast_column(columns.input, datasets.Image(decode=False))
    raw_inputs = list(dataset[columns.input])
    inputs: Sequence[Any]
    if columns.modality == "text":
        # None (an empty CSV field), "" or only whitespace (JSON Lines, Parquet): nothing for a model to read.
        missing = [i for i, x in enumerate(raw_inputs) if x is None or (isinstance(x, str) and not x.strip())]
        if missing and len(missing) == len(raw_inputs):
            others = [c for c in available if c not in (columns.input, columns.label, columns.id)]
            elsewhere = (
                f", or point text_column at the column that holds them (other columns: {', '.join(map(repr, others))})"
                if others
                else ""
            )
            raise DataError(
                f"{where}: column {columns.input!r} (text_column) has no text in any of its {len(raw_inputs)} "
                f"rows (every value is empty, whitespace or missing). Fill in the texts{elsewhere}."
            )
        if missing:
            raise DataError(
                f"{where}: {len(missing)} of {len(raw_inputs)} rows have no text in column {columns.input!r} "
                f"(empty, whitespace or missing: {', '.join(_describe_rows(missing[:5], ids, locate))}"
                f"{', ...' if len(missing) > 5 else ''}). Remove them or fill them in."
            )
        # A number is text a reader typed (a CSV column of digits); a mapping or list is not text, and its
        # repr ("{'a': ...}") would be what the models read.
        nested = [i for i, x in enumerate(raw_inputs) if isinstance(x, (dict, list, tuple, bytes))]
        if nested:
            first = raw_inputs[nested[0]]
            raise DataError(
                f"{where}: column {columns.input!r} (text_column) holds {type(first).__name__} values, not text "
                f"({len(nested)} of {len(raw_inputs)} rows; the first, {_describe_rows(nested[:1], ids, locate)[0]}: "
                f"{repr(first)[:60]}). Point "
                "text_column at a column of strings, or flatten the data."
            )
        inputs = [x if isinstance(x, str) else str(x) for x in raw_inputs]
    else:
        inputs = stack_images(
            [to_uint8_image(x, where=f"{where}, column {columns.input!r}") for x in raw_inputs]
        )
    return RawExamples(
        ids=ids,
        inputs=inputs,
        labels=list(dataset[columns.label]),
        where=where,
        label_column=columns.label,
        class_names=_class_names(dataset, columns.label),
        locate=locate,
    )


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """No datasets progress bars, info logs or error lines ("Downloading data", "Generating train split",
    "Failed to read file") while loading: they read like network fetches for local files, break our own rich
    progress display, and a file that cannot be read is our one error paragraph (see _load_dataset)."""
    import datasets
    from datasets.utils import logging as datasets_logging

    bars_were_disabled = datasets.are_progress_bars_disabled()
    level = datasets_logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets_logging.set_verbosity(datasets_logging.CRITICAL)
    try:
        yield
    finally:
        datasets_logging.set_verbosity(level)
        if not bars_were_disabled:
            datasets.enable_progress_bars()


def _load_dataset(where: str, hint: str, *args: Any, **kwargs: Any) -> Any:
    import datasets

    def load() -> Any:
        with quiet_datasets():
            return datasets.load_dataset(*args, **kwargs)

    return _reading(where, hint, load)


def _reading(where: str, hint: str, read: Callable[[], _T]) -> _T:
    """`read()`, with any failure to read the source `where` as one DataError saying what went wrong."""
    try:
        return read()
    except HarnessError:
        raise
    except Exception as exc:  # datasets raises many unrelated types; all mean "cannot read this source"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "corresponds to no data" in message:  # datasets' wording for a split without rows
            raise DataError(f"{where}: the split has no rows.") from exc
        cause = _root_cause(exc)
        if isinstance(cause, UnicodeDecodeError):
            raise DataError(
                f"Could not load {where}: not UTF-8 text (byte 0x{cause.object[cause.start]:02x} at byte offset "
                f"{cause.start} of a block). Save the file as UTF-8."
            ) from exc
        if cause is not exc:  # "An error occurred while generating the dataset": say what it was
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            message = f"{message} ({type(cause).__name__}: {detail})" if detail else message
            if "utf8" in detail.lower().replace("-", ""):
                hint = f"The file is not UTF-8 text: save it as UTF-8. {hint}"
        raise DataError(f"Could not load {where}: {type(exc).__name__}: {message}. {hint}".strip()) from exc


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception `exc` was raised from (datasets wraps a parser's error in its own).

    An explicit cause (`raise ... from`) is always followed. An implicit context only from datasets' own
    errors: a parser's context is an earlier attempt it gave up on (datasets' JSON reader re-raises pyarrow's
    "Missing a comma ... in row 30" while handling pandas' "Trailing data at position 39", which points at
    the wrong place), not what went wrong."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__
        if inner is None and not exc.__suppress_context__ and type(exc).__module__.split(".")[0] == "datasets":
            inner = exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def is_datasets_builder(name: str) -> bool:
    """Whether `datasets.load_dataset(name)` means one of datasets' packaged builders (csv, json, parquet,
    imagefolder, ...), which read the data files they are given, rather than a hub id or a local folder.
    datasets itself tries these names first."""
    if "/" in name or "\\" in name:
        return False
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    return name in _PACKAGED_DATASETS_MODULES


def data_file_entries(files: DataFiles | None) -> list[str]:
    """Every path, url or glob pattern of a data_files value, in order."""
    if files is None:
        return []
    if isinstance(files, str):
        return [files]
    if isinstance(files, Mapping):
        return [e for v in files.values() for e in data_file_entries(v)]
    return list(files)


def has_glob(pattern: str) -> bool:
    """Whether a data_files entry is a glob pattern (datasets expands *, ?, [...] and **)."""
    return any(c in pattern for c in "*?[")


def matching_files(pattern: str) -> list[Path]:
    """The local files an absolute data_files glob pattern gives datasets, matched by datasets' own rules
    (hidden files and __pycache__ left out unless named); [] when none match."""
    from datasets.data_files import resolve_pattern

    try:
        return sorted(Path(p) for p in resolve_pattern(pattern, base_path=""))
    except FileNotFoundError:  # no match: loading says so, naming the pattern
        return []


def load_hf_split(
    dataset_id: str,
    *,
    split: str,
    columns: Columns,
    config: str | None = None,
    revision: str | None = None,
    data_files: DataFiles | None = None,
    cache_dir: str | None = None,
    id_prefix: str | None = None,
    commit: str | None = None,
) -> RawExamples:
    """One split of a dataset on the hub (or a local dataset directory) via `datasets.load_dataset`.
    Rows are numbered `<id_prefix or split>-<row>` unless `columns.id` names an id column. `commit`: the hub
    commit the task's signature holds (hub_dataset_commit); data datasets loaded from another commit is refused."""
    where = f"dataset {dataset_id!r}" + (f" (config {config!r})" if config else "") + f" split {split!r}"
    local = Path(dataset_id)
    if data_files is None and local.is_absolute() and local.is_dir():  # a local dataset folder, read whole
        refuse_linked_folders(local, f"dataset folder {local}")
    # datasets' csv builder reads with pandas, which types cells: as text, as a csv source reads them
    extra = _csv_as_text(_first_csv(data_files, where), None, where) if dataset_id == "csv" and data_files else {}
    dataset = _load_dataset(
        where,
        _HUB_HINT,
        dataset_id,
        name=config,
        revision=revision,
        data_files=data_files,
        split=split,
        cache_dir=cache_dir,
        **extra,
    )
    if commit is not None:
        _check_loaded_commit(dataset, commit, revision, where)
    if dataset_id == "json":
        _refuse_retyped_json_texts(dataset, columns, where)
    return dataset_to_examples(dataset, columns=columns, where=where, id_prefix=id_prefix or split)


def hub_dataset_commit(
    repo_id: str, revision: str | None, *, config: str | None, data_files: DataFiles | None
) -> tuple[str | None, str | None]:
    """(commit, None) that a hub dataset's revision resolves to, or (None, why): as for hub models, asked of
    the hub, else read from the local hub cache (datasets records the revision it loads there when online).
    Offline with no revision named and no ref in the hub cache (only the datasets cache was copied here), the
    commit of the prepared copy datasets will load."""
    import datasets.config

    offline = bool(datasets.config.HF_HUB_OFFLINE)
    commit, why = hub_commit(repo_id, revision, offline=offline, repo_type="dataset")
    if commit is None and offline and revision is None and data_files is None:
        commit = _prepared_commit(repo_id, config)
    return (commit, None) if commit else (None, why)


def _prepared_commit(repo_id: str, config: str | None) -> str | None:
    """The commit of the prepared copy datasets loads offline (the newest), found by datasets' own look-up
    (a private function: if it moves or fails, the commit is unresolved and the data read every run)."""
    try:
        from datasets.packaged_modules.cache.cache import _find_hash_in_cache

        found = _find_hash_in_cache(
            dataset_name=repo_id, config_name=config, cache_dir=None, config_kwargs={}, custom_features=None
        )[2]
    except Exception:  # noqa: BLE001 - nothing prepared, or datasets changed: unresolved
        return None
    return found if SHA_RE.match(str(found)) else None


def _check_loaded_commit(dataset: Any, commit: str, revision: str | None, where: str) -> None:
    """datasets prepares a hub dataset under a folder named by its commit. Offline it loads the most recently
    prepared copy, whatever revision it is asked for, and online the revision may have moved since the plan:
    data of another commit than the one the task is keyed by is refused (it would be stored as `commit`'s)."""
    loaded = {Path(f["filename"]).parent.name for f in getattr(dataset, "cache_files", None) or []}
    other = sorted(c for c in loaded if SHA_RE.match(c) and c != commit)
    if other:
        asked = "the task pins" if revision == commit else f"{f'revision {revision!r}' if revision else 'main'} is"
        raise DataError(
            f"{where}: {asked} commit {commit}, but datasets loaded commit {other[0]} (offline, datasets "
            "loads the most recently prepared copy whatever revision it is asked for; online, the revision may "
            f"have moved since the run was planned). Run again; offline, set source.revision to {other[0]} to use "
            "that copy, load the dataset once with a hub reachable, or remove the other copies from the datasets "
            "cache (HF_DATASETS_CACHE)."
        )


def _refuse_retyped_json_texts(dataset: Any, columns: Columns, where: str) -> None:
    """datasets' json builder parses a JSON number in the text column as a float or integer: its written
    text is gone (1e3 becomes "1000.0", 0.10 "0.1"), unlike a jsonl source, which keeps it. Refused, naming
    the column. (JSON strings stay strings, and a number as a label maps by the label rule.)"""
    feature = getattr(dataset, "features", {}).get(columns.input)
    dtype = str(getattr(feature, "dtype", ""))
    if columns.modality == "text" and dtype.startswith(("int", "uint", "float", "double", "decimal")):
        raise DataError(
            f"{where}: column {columns.input!r} holds JSON numbers ({dtype}), which datasets' json reader "
            "re-types (1e3 read as 1000.0, 0.10 as 0.1), so the texts scored would not be the ones written. "
            "Write the texts as JSON strings, or use source type jsonl (one JSON object per line), which keeps "
            "each number's written text."
        )


def refuse_linked_folders(directory: Path, where: str) -> None:
    """datasets' folder readers (an image folder, a local dataset folder) do not enter a link to a folder
    inside the folder they read: the files behind it would be left out without a word. Refused, naming the
    link (names datasets ignores, starting with '.' or '__', aside; the folder itself may be a link)."""
    for top, dirs, _ in os.walk(directory):  # links to folders are listed, not entered
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for d in dirs:
            path = Path(top) / d
            if path.is_symlink():
                raise DataError(
                    f"{where}: {path} is a link to a folder ({path.resolve()}); the folder reader does not "
                    "follow links inside the folder it reads, so the files there would be left out. Put the "
                    "folder itself there (a link for the whole source folder is fine)."
                )


def _check_exists(paths: Sequence[Path], what: str) -> None:
    for path in paths:
        if not path.exists():
            raise DataError(
                f"{what} not found: {path}. Check the path (relative paths are resolved from the task file)."
            )


def load_file_split(
    file_format: FileFormat,
    files: Sequence[Path],
    *,
    columns: Columns,
    id_prefix: str,
    encoding: str | None = None,
    cache_dir: str | None = None,
) -> RawExamples:
    """Rows of local csv / JSON Lines / parquet files (concatenated): csv and parquet via datasets' packaged
    builders, JSON Lines by our own reader (values as written, errors at the line)."""
    if not files:
        raise DataError(f"No {file_format} files given.")
    _check_exists(files, "Data file")
    for path in files:
        if not path.is_file():  # datasets says "Unable to find" for a folder, a device or a pipe
            kind = "a folder" if path.is_dir() else "not a regular file (a device or a pipe)"
            raise DataError(
                f"Data file {path} is {kind}; give the path of the {file_format} file itself "
                "(relative paths are resolved from the task file)."
            )
    where = "file " + ", ".join(str(f) for f in files)
    if file_format == "json":
        return _load_json_lines(files, columns=columns, where=where, id_prefix=id_prefix)
    extra: dict[str, Any] = {}
    if file_format == "csv":
        for path in files:
            _check_csv_header(path, encoding)
        extra = _csv_as_text(files[0], encoding, where)
    dataset = _load_dataset(
        where,
        "",
        file_format,
        data_files={"train": [str(f) for f in files]},
        split="train",
        cache_dir=cache_dir,
        **extra,
    )
    locate = FileLines(file_format, tuple(files), len(dataset), encoding)
    return dataset_to_examples(dataset, columns=columns, where=where, id_prefix=id_prefix, locate=locate)


def _check_csv_header(path: Path, encoding: str | None) -> None:
    """A column name given twice is an error: pandas would read the second as 'name.1', and the task would
    silently use the first."""
    import pandas as pd

    where = f"file {path}"
    first = _reading(
        where,
        "",
        lambda: pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=encoding or "utf-8"),
    )
    names = [str(v) for v in first.iloc[0]] if len(first) else []
    for name, n in Counter(names).items():
        if n > 1 and name.strip():
            at = [str(i + 1) for i, other in enumerate(names) if other == name]
            raise DataError(
                f"{where}: the header names column {name!r} {n} times (columns {', '.join(at)} of "
                f"{len(names)}); a reader would take the first and rename the others. Give each column a "
                "different name, or remove the repeats."
            )


def _first_csv(data_files: DataFiles, where: str) -> str:
    """The data file whose header names the columns of an hf csv source (every file must have those): the
    first entry, or the first local file its glob pattern matches."""
    first = data_file_entries(data_files)[0]
    if not has_glob(first):
        return first
    if "://" in first:
        raise DataError(
            f"{where}: data file {first!r} is a remote glob pattern; the csv reader needs one file's header to "
            "read every cell as the text written in it. Name the remote files, or download them and use source "
            "type csv."
        )
    matched = matching_files(first)
    if not matched:
        raise DataError(f"{where}: no file matches the data_files pattern {first!r}.")
    return str(matched[0])


def _csv_as_text(path: Path | str, encoding: str | None, where: str) -> dict[str, Any]:
    """load_dataset settings that read every CSV cell as the text written there: pandas would otherwise
    make 007 the number 7.0 and 1e3 1000.0, read the texts NA, null and n/a as missing, and True/False as
    booleans. Only an empty cell is missing."""
    import datasets
    import pandas as pd

    header = _reading(where, "", lambda: pd.read_csv(path, nrows=0, encoding=encoding or "utf-8").columns)
    return {
        "features": datasets.Features({str(name): datasets.Value("string") for name in header}),
        "keep_default_na": False,
        "na_values": [""],
        **({"encoding": encoding} if encoding else {}),
    }


def load_imagefolder_split(
    directory: Path, *, columns: Columns, labels: Sequence[str], id_prefix: str, cache_dir: str | None = None
) -> RawExamples:
    """Images under `directory/<label>/...` via datasets' imagefolder builder (label = folder name); a folder
    that is not one of `labels` is an error naming it (the folder names are the labels, matched by name)."""
    _check_exists([directory], "Image folder")
    if not directory.is_dir():
        raise DataError(
            f"Image folder {directory} is not a directory (expected <dir>/<label>/<image files>)."
        )
    where = f"image folder {directory}"
    refuse_linked_folders(directory, where)
    dataset = _load_dataset(
        where, "", "imagefolder", data_dir=str(directory), split="train", cache_dir=cache_dir
    )
    _check_label_folders(where, _class_names(dataset, columns.label) or (), labels)
    return dataset_to_examples(dataset, columns=columns, where=where, id_prefix=id_prefix)


def _check_label_folders(where: str, folders: Sequence[str], labels: Sequence[str]) -> None:
    """Folder names are labels by name: one that is not a declared label (a stray folder, 'Cat' for 'cat')
    is an error naming it and the label it nearly is."""
    for name in folders:
        if name not in labels:
            raise DataError(
                f"{where}: folder {name!r} is not one of the task's labels.{close_match(name, labels)} "
                f"Labels: {', '.join(map(repr, labels))}. Expected one folder per label."
            )


def decode_text(raw: bytes, encodings: Sequence[str], *, where: str) -> str:
    """`raw` decoded with the first of `encodings` that fits; DataError naming the file when none does."""
    problem = "no encoding given"
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            problem = f"{exc.reason} at byte {exc.start}"
    raise DataError(
        f"{where}: not valid {' or '.join(encodings)} ({problem}). Set the task's source.encoding to the "
        "file's encoding, or to a list of encodings tried in order, e.g. [utf-8, latin-1]."
    )


def load_textfolder_split(
    directory: Path, *, labels: Sequence[str], encodings: Sequence[str], id_prefix: str
) -> RawExamples:
    """Text files `directory/<label>/*.txt`: one example per file, labelled by its folder, in sorted order.

    Ids are `<label>/<file stem>`, after `id_prefix + "/"` when a prefix is given (a split subfolder).
    """
    _check_exists([directory], "Text folder")
    where = f"text folder {directory}"
    if not directory.is_dir():
        raise DataError(f"Text folder {directory} is not a directory (expected <dir>/<label>/<name>.txt files).")
    folders = sorted(p.name for p in directory.iterdir() if p.is_dir())
    _check_label_folders(where, folders, labels)
    missing = [label for label in labels if label not in folders]
    if missing:
        raise DataError(
            f"{where}: no folder for label(s) {', '.join(map(repr, missing))}; expected one folder per label, "
            f"found {', '.join(map(repr, folders)) or 'none'}."
        )
    prefix = f"{id_prefix}/" if id_prefix else ""
    ids: list[str] = []
    texts: list[str] = []
    folder_labels: list[str] = []
    for label in folders:
        files = sorted((directory / label).glob("*.txt"))
        if not files:
            raise DataError(f"{where}: folder {label!r} has no .txt files.")
        for path in files:
            ids.append(f"{prefix}{label}/{path.stem}")
            texts.append(decode_text(path.read_bytes(), encodings, where=f"text file {path}"))
            folder_labels.append(label)
    return RawExamples(
        ids=tuple(ids), inputs=texts, labels=folder_labels, where=where, label_column="<label folder>"
    )
