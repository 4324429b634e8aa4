"""Where an ONNX export keeps its files (graph, external data, tokenizer). Cheap: no onnxruntime import,
so model identity (harness.models.identity) can list them at plan time."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.models import resolve_source
from harness.models.base import ModelSpec


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
    """Every file the ONNX model reads: the graph, its external-data files (model.onnx_data, ...) and the tokenizer."""
    model_path, tokenizer_path = locate_files(spec, source)
    external = [p for p in model_path.parent.glob(f"{model_path.name}?*") if p.is_file()]
    return [model_path, *external, tokenizer_path]
