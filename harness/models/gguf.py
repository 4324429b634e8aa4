"""GGUF files: recognise them, and cache a de-quantised transformers copy keyed by the file's content hash.

transformers loads a GGUF file (`from_pretrained(folder, gguf_file=name)`) by de-quantising every tensor:
18-28 s for SmolLM2-135M on 2 cores (plus ~15 s to build the tokenizer from the GGUF vocabulary), on every
load. The harness pays that once per distinct file: the de-quantised fp32 model and its tokenizer are saved
under `<cache>/<sha256 of the .gguf>-<converter_tag()>/` (reload: ~0.3 s). The key is the file's content,
never its path, so a GGUF replaced in place is converted again and a copy elsewhere reuses the cache; and the
versions of the converting libraries, so an upgrade converts again. A model loaded from GGUF
cannot be `save_pretrained` directly (it carries a GGUF quantization_config), so the copy is a fresh model
built from the config without it, given the loaded state dict.

Cache folder: $HARNESS_MODEL_CACHE, else $XDG_CACHE_HOME/harness/gguf, else ~/.cache/harness/gguf.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

from harness.cache_dirs import harness_cache_root
from harness.data.signatures import package_version
from harness.digests import json_digest
from harness.errors import HarnessError
from harness.file_tree import walk_folder
from harness.models.base import ModelSpec
from harness.models.identity import DigestCache

GGUF_MAGIC = b"GGUF"
DAMAGED = (struct.error, OverflowError, IndexError)
_DIGESTS = DigestCache(None)


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def check_gguf(path: Path, model: str) -> None:
    """A clear error unless `path` is a readable GGUF file."""
    if not path.is_file():
        raise HarnessError(f'Model "{model}": GGUF file {path} does not exist (or is not a file).')
    if not is_gguf(path):
        with path.open("rb") as fh:
            head = fh.read(4)
        raise HarnessError(
            f'Model "{model}": {path} is not a GGUF file (it starts with {head!r}, a GGUF file starts with '
            f"{GGUF_MAGIC!r}). Point source at a .gguf file, or at a transformers model folder / hub id "
            "without options.gguf_file."
        )


def weight_files(spec: ModelSpec, resolved: Path) -> list[Path]:
    """Files an hf_causal_lm model reads (model identity): the GGUF file when it names one, else the source."""
    gguf_file = spec.options.get("gguf_file")
    if isinstance(gguf_file, str) and resolved.is_dir():
        return [resolved / gguf_file]
    if resolved.is_file():
        return [resolved]
    return list(walk_folder(resolved, hidden=False).files)  # through linked folders, as from_pretrained reads them


def file_sha256(path: Path) -> str:
    """The file's content digest (the model-identity digest, kept per process by path + size + mtime + inode + ctime)."""
    return _DIGESTS.digest(path.resolve())


def converter_tag() -> str:
    """The versions of the libraries that make a copy (gguf reads the file, transformers de-quantises it and
    builds the tokenizer from its vocabulary), as 8 hex digits: a job re-run after an upgrade (the model
    identity holds these versions) converts again instead of loading the copy the old versions made."""
    return json_digest({dist: package_version(dist) for dist in ("gguf", "transformers", "tokenizers")}, 8)


def cache_root() -> Path:
    explicit = os.environ.get("HARNESS_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return harness_cache_root() / "gguf"


def converted_copy(gguf_path: Path, model: str) -> Path:
    """The folder of a de-quantised transformers copy of `gguf_path` (converted now if not cached)."""
    check_gguf(gguf_path, model)
    target = cache_root() / f"{file_sha256(gguf_path)}-{converter_tag()}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        tokenizer, loaded = load_gguf(gguf_path, model)
        fresh = dequantised_model(loaded)
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE_GGUF").write_text(f"{gguf_path.name}\n{file_sha256(gguf_path)}\n")
        try:
            os.replace(tmp, target)  # atomic: a concurrent or killed conversion never leaves a half copy
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_gguf(gguf_path: Path, model: str) -> tuple[Any, Any]:
    """(tokenizer, model) straight from the GGUF file (the slow, de-quantising path)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_gguf(gguf_path, model)
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    except DAMAGED as err:  # the gguf reader on a file cut short, or a count or length past its end
        kind = "struct.error" if isinstance(err, struct.error) else type(err).__name__
        raise HarnessError(
            f'Could not load GGUF model "{model}" from {gguf_path}: the file is damaged or cut short ({kind}: {err}). '
            "Copy the .gguf file again."
        ) from err
    except (OSError, ValueError, RuntimeError, KeyError, ImportError) as err:
        if isinstance(err, ValueError) and "cannot reshape array" in str(err):  # a tensor's data cut short
            raise HarnessError(
                f'Could not load GGUF model "{model}" from {gguf_path}: the file is damaged or cut short (a tensor '
                f"holds fewer values than its shape: {err}). Copy the .gguf file again."
            ) from err
        raise HarnessError(
            f'Could not load GGUF model "{model}" from {gguf_path}: {type(err).__name__}: {err}. transformers '
            "reads GGUF files of the architectures it supports; it needs the `gguf` and `accelerate` packages "
            "(pip install -e '.[gguf]')."
        ) from err
    return tokenizer, loaded


def dequantised_model(loaded: Any) -> Any:
    """A plain (no quantization_config) copy of a model loaded from GGUF, which save_pretrained accepts."""
    from transformers import AutoModelForCausalLM

    config = loaded.config.__class__.from_dict(
        {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    )
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    return fresh.eval()
