"""Where an ONNX export keeps its files (graph, external data, tokenizer). Cheap: no onnxruntime import,
so model identity (harness.models.identity) can list them at plan time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.models import resolve_source
from harness.models.base import ModelSpec

if TYPE_CHECKING:
    import mmap


def locate_files(spec: ModelSpec, source: Path) -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for a source that is the .onnx file or its export folder.

    `options.tokenizer` (a path or pkg:// source of a tokenizer.json or its folder) names the tokenizer
    of a graph exported without one."""
    if source.is_file():
        model_path = source
    else:
        candidates = [source / "onnx" / "model.onnx", source / "model.onnx"]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise HarnessError(
                f'ONNX model "{spec.name}": no model.onnx under {source} (looked for '
                f"{', '.join(str(c) for c in candidates)}). Point source at the .onnx file or its export folder."
            )
        model_path = found[0]
    tokenizer = spec.options.get("tokenizer")
    if tokenizer is not None:  # as the options schema reads it (YAML 5 is the path "5"), never silently ignored
        tokenizer = str(tokenizer)
        path = Path(resolve_source(tokenizer))
        path = path / "tokenizer.json" if path.is_dir() else path
        if not path.is_file():
            raise HarnessError(f'ONNX model "{spec.name}": options.tokenizer {tokenizer!r} has no tokenizer.json ({path}).')
        return model_path, path
    tokenizer_dirs = [model_path.parent, model_path.parent.parent]
    if source.is_dir():
        tokenizer_dirs.insert(0, source)
    for folder in tokenizer_dirs:
        if (folder / "tokenizer.json").is_file():
            return model_path, folder / "tokenizer.json"
    raise HarnessError(
        f'ONNX model "{spec.name}": no tokenizer.json next to {model_path} or in '
        f"{', '.join(str(d) for d in tokenizer_dirs)}. Export the tokenizer with the model "
        "(tokenizer.save_pretrained) into that folder."
    )


def onnx_files(spec: ModelSpec, source: Path) -> list[Path]:
    """Every file the ONNX model reads: the graph, its external-data files (model.onnx_data, ..., and the files
    its tensors name, whatever their names) and the tokenizer."""
    model_path, tokenizer_path = locate_files(spec, source)
    named = {model_path.parent / location for location in external_data_locations(model_path)}
    external = {p for p in [*model_path.parent.glob(f"{model_path.name}?*"), *named] if p.is_file()}
    return [model_path, *sorted(external), tokenizer_path]


# Which length-delimited fields of which ONNX protobuf message hold the messages that can hold tensors
# (onnx.proto: ModelProto.graph; GraphProto.node, .initializer, .sparse_initializer; NodeProto.attribute;
# AttributeProto.t, .g, .tensors, .graphs, .sparse_tensor, .sparse_tensors; SparseTensorProto.values, .indices;
# TensorProto.external_data, a list of key/value entries).
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
}


def external_data_locations(model_path: Path) -> list[str]:
    """The `location` of every tensor the graph keeps outside the file (external data), read from the protobuf
    without the onnx package: only field headers are read, tensor bytes are skipped. [] for a graph that
    cannot be parsed (loading it fails the job, naming the file)."""
    import mmap

    found: list[str] = []
    try:
        with model_path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            _walk(buf, 0, len(buf), "model", found)
    except (OSError, ValueError, IndexError):
        return []
    return found


_MAX_DEPTH = 64  # subgraphs in subgraphs (If/Loop bodies) nest a few levels; a crafted file, thousands


def _walk(buf: mmap.mmap, pos: int, end: int, kind: str, found: list[str], depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError(f"messages nested deeper than {_MAX_DEPTH}")
    entry: dict[int, bytes] = {}
    while pos < end:
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            pos = _varint(buf, pos)[1]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("field runs past its message")
            if kind == "entry":
                entry[field] = buf[pos : pos + size]
            elif field in _CHILDREN.get(kind, {}):
                _walk(buf, pos, pos + size, _CHILDREN[kind][field], found, depth + 1)
            pos += size
        else:
            raise ValueError(f"wire type {wire}")
    if kind == "entry" and entry.get(1) == b"location" and 2 in entry:
        found.append(entry[2].decode("utf-8", "replace"))


def _varint(buf: mmap.mmap, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
