"""Model families: the one table of what the harness knows about a family without importing its code.

The built-in rows are below; an installed package adds families through the entry-point group
"harness.models" (an entry point loads a Family or an iterable of them), e.g. in its pyproject.toml:

    [project.entry-points."harness.models"]
    my_family = "my_package.families:MY_FAMILY"

Code is named, not imported: the adapter class, the spec check and the weight-files function are
"module:attribute" strings, imported only when a model of that family is checked or built, so
`import harness.models` stays cheap (no torch, no transformers).
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from harness.entry_points import items, load_group
from harness.errors import ConfigError, unknown_name
from harness.tasks import Modality
from harness.typed_config import build

if TYPE_CHECKING:
    from harness.models.base import Accelerator, Inference, ModelAdapter, ModelSpec

ENTRY_POINT_GROUP = "harness.models"
BUILTIN_PREFIX = "harness.models."
MODALITIES: tuple[str, ...] = get_args(Modality)
# The ModelSpec keys a family may leave unread; every family reads the others (name, family, device, precision,
# batch_size, license, options).
SPEC_KEYS: tuple[str, ...] = ("source", "revision", "pooling", "normalize", "max_length", "trust_remote_code")


@dataclass(frozen=True)
class Family:
    name: str  # the `family:` of a suite's model
    modality: Modality  # known without importing the adapter: the runner pairs models with tasks of this modality
    adapter: str  # "package.module:Class", a harness.models.base.ModelAdapter subclass
    # Computed with numpy/scikit-learn/a lexicon on the CPU: a GPU device cannot be honoured (refused when the
    # suite is parsed, not silently run on the CPU), and a Ray worker asks for no GPU.
    cpu_only: bool = False
    # Computes in fp32 only (the CPU-only families, and ONNX Runtime, which runs the exported graph as stored):
    # a reduced precision is refused when the suite is parsed.
    fp32_only: bool = False
    # "module:function"(spec) raising a HarnessError for a spec the family can tell is unusable without weights
    # (e.g. "this GGUF source is not a GGUF file"); the runner calls it for every planned model before any job.
    spec_check: str | None = None
    # "module:function"(spec, resolved source path) -> the files the model reads, for families whose model is
    # not just "the source file or folder" (the model identity hashes them).
    weight_files: str | None = None
    # Distributions whose code computes the family's outputs: their versions are part of the model identity
    # (torch too for the families it runs: a torch upgrade can change their features).
    packages: tuple[str, ...] = ()
    # A source that is no file names weights the library ships (torchvision, timm): pinned by its version only.
    library_weights: bool = False
    # The SPEC_KEYS the family's code reads. A suite giving a model one its family does not read is refused when
    # parsed: the key would be ignored, yet it is part of the job key (and a source is hashed or looked up on the
    # hub as if it held the weights), so the same numbers would be stored under another key.
    spec_keys: tuple[str, ...] = SPEC_KEYS
    # "module:Class": the frozen dataclass of the family's `options:` (harness.models.options.parse_options);
    # the runner checks a suite's options against it before any job runs.
    options: str | None = None
    # "module:function"(spec, accelerator) -> models.base.Inference: the device kind and precision the family's
    # adapter will report (its `inference`) on the workers, whose models.base.Accelerator is given, worked out at
    # plan time without loading the model. Part of the job key of every family but the CPU-only ones (device: auto
    # and precision: bf16 run differently with a GPU); a worker that resolves otherwise fails the job. Default:
    # torch's rule (models.torch_adapter.TorchAdapter).
    inference: str = "harness.models.inference_plan:planned_inference"

    def __post_init__(self) -> None:
        """A malformed row fails where it is written (a plugin's: when its entry point is loaded, naming it)."""
        problems = []
        if self.modality not in MODALITIES:
            problems.append(f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        for key in ("adapter", "spec_check", "weight_files", "options", "inference"):
            ref = getattr(self, key)
            if ref is not None and (not isinstance(ref, str) or ":" not in ref):
                problems.append(f"{key} must be a 'package.module:attribute' string, got {ref!r}")
        unknown = [k for k in self.spec_keys if k not in SPEC_KEYS]
        if unknown:
            problems.append(f"spec_keys must be among {', '.join(SPEC_KEYS)}, got {', '.join(map(repr, unknown))}")
        if self.cpu_only and not self.fp32_only:
            problems.append("a CPU-only family computes in fp32 only: set fp32_only=True too")
        if problems:
            raise ValueError(f"model family {self.name!r}: {'; '.join(problems)}.")

    @property
    def gpu_capable(self) -> bool:
        return not self.cpu_only

    @property
    def implementation(self) -> str:
        """The adapter as listed by `harness models` (built-ins relative to harness.models)."""
        return self.adapter.removeprefix(BUILTIN_PREFIX)

    def adapter_class(self) -> type[ModelAdapter]:
        cls: type[ModelAdapter] = pkgutil.resolve_name(self.adapter)
        return cls

    def check_spec(self, spec: ModelSpec) -> None:
        if self.spec_check is not None:
            check: Callable[[ModelSpec], None] = pkgutil.resolve_name(self.spec_check)
            check(spec)

    def check_options(self, spec: ModelSpec, file: str, key: str) -> None:
        """`spec.options` checked by the schema engine: errors read `FILE: key 'KEY.options.x' must be ...`."""
        if self.options is not None:
            build(pkgutil.resolve_name(self.options), spec.options, file=file, at=f"{key}.options")

    def planned_inference(self, spec: ModelSpec, accelerator: Accelerator) -> Inference | None:
        """The job key's device kind and precision on the workers (`accelerator`); None for a CPU-only family
        (fp32 on the CPU everywhere)."""
        if self.cpu_only:
            return None
        planned: Callable[[ModelSpec, Accelerator], Inference] = pkgutil.resolve_name(self.inference)
        return planned(spec, accelerator)

    def files(self, spec: ModelSpec, resolved: Path) -> Iterable[Path] | None:
        """The files the model reads when the family declares them (weight_files), else None."""
        if self.weight_files is None:
            return None
        files: Callable[[ModelSpec, Path], Iterable[Path]] = pkgutil.resolve_name(self.weight_files)
        return files(spec, resolved)


FOLDER_SOURCE = "harness.models:check_folder_source"  # the transformers families that load a model folder
CODE_ONLY: tuple[str, ...] = ()  # TF-IDF, raw pixels, the VADER lexicon: computed by their code alone, no weights
# Image models: no tokens to cut or pool, no transformers code to trust; weights from a file or named by the
# library (pinned by its version), so no hub revision.
IMAGE_KEYS: tuple[str, ...] = ("source", "normalize")
BUILTIN_FAMILIES: tuple[Family, ...] = (
    Family("hf_text", "text", "harness.models.hf_text:HFTextEncoder", spec_check=FOLDER_SOURCE, packages=("transformers", "tokenizers", "torch")),
    Family(
        "sentence_transformers", "text", "harness.models.sentence_tf:SentenceTransformerEncoder", spec_check=FOLDER_SOURCE,
        packages=("sentence-transformers", "transformers", "tokenizers", "torch"),
        spec_keys=("source", "revision", "normalize", "max_length", "trust_remote_code"),  # its own pooling module
    ),
    Family(
        "onnx", "text", "harness.models.onnx_encoder:OnnxTextEncoder", options="harness.models.onnx_encoder:OnnxOptions", fp32_only=True,
        inference="harness.models.onnx_encoder:planned_inference",
        weight_files="harness.models.onnx_files:onnx_files", packages=("onnxruntime", "tokenizers"),
        spec_keys=("source", "pooling", "normalize", "max_length"),  # a local graph, no transformers code
    ),
    Family("hf_classifier", "text", "harness.models.hf_classifier:HFSequenceClassifier", options="harness.models.hf_classifier:ClassifierOptions", spec_check=FOLDER_SOURCE, packages=("transformers", "tokenizers", "torch")),
    Family(
        "efficientnet_lite", "image", "harness.models.efficientnet_lite:EfficientNetLite", options="harness.models.efficientnet_lite:EfficientNetLiteOptions",
        packages=("efficientnet-lite-pytorch", "torch"), spec_keys=IMAGE_KEYS,
    ),
    Family(
        "torchvision", "image", "harness.models.torchvision_models:TorchvisionClassifier", options="harness.models.torchvision_models:TorchvisionOptions",
        packages=("torchvision", "torch"), library_weights=True, spec_keys=IMAGE_KEYS,
    ),
    Family("timm", "image", "harness.models.timm_models:TimmModel", options="harness.models.timm_models:TimmOptions", packages=("timm", "torch"), library_weights=True, spec_keys=IMAGE_KEYS),
    Family("tfidf", "text", "harness.models.tfidf:TfidfFeaturizer", options="harness.models.tfidf:TfidfOptions", cpu_only=True, fp32_only=True, spec_keys=CODE_ONLY, packages=("scikit-learn",)),
    Family("pixels", "image", "harness.models.pixels:RawPixels", options="harness.models.pixels:PixelOptions", cpu_only=True, fp32_only=True, spec_keys=CODE_ONLY, packages=("scikit-learn",)),
    Family("vader", "text", "harness.models.vader:VaderSentiment", options="harness.models.vader:VaderOptions", cpu_only=True, fp32_only=True, spec_keys=CODE_ONLY, packages=("vaderSentiment",)),
    Family(
        "hf_causal_lm", "text", "harness.models.hf_causal_lm:HFCausalLM", options="harness.models.causal_lm_spec:CausalLMOptions",
        spec_check="harness.models.causal_lm_spec:check_spec", weight_files="harness.models.gguf:weight_files",
        packages=("transformers", "tokenizers", "gguf", "torch"),  # gguf de-quantises GGUF weights
    ),
)  # fmt: skip


def _checked(obj: Any, origin: str) -> Family:
    if not isinstance(obj, Family):
        raise ConfigError(
            f"{origin} (group {ENTRY_POINT_GROUP}): loads {type(obj).__name__}, expected a harness.models.Family "
            "or an iterable of them."
        )
    return obj


@cache
def _table() -> tuple[Mapping[str, Family], Mapping[str, str]]:
    rows = {f.name: f for f in BUILTIN_FAMILIES}
    origins = {f.name: "built-in" for f in BUILTIN_FAMILIES}
    for obj, origin in load_group(ENTRY_POINT_GROUP):
        for row in items(obj, Family):
            row = _checked(row, origin)
            if row.name in rows:
                raise ConfigError(
                    f'Two model families are named "{row.name}": one from {origins[row.name]}, one from {origin}. '
                    "Rename one of them (family names must be unique)."
                )
            rows[row.name], origins[row.name] = row, origin
    return rows, origins


def families() -> Mapping[str, Family]:
    """Family name -> Family: the built-ins and those installed packages add (read once per process)."""
    return _table()[0]


def family(name: str) -> Family:
    table = families()
    if name not in table:
        raise unknown_name("model family", name, table)
    return table[name]


def family_origin(name: str) -> str:
    """'built-in', or the entry point (and its package) that added the family."""
    return _table()[1][name]


def reload_families() -> None:
    """Read the entry points again (after a package is installed in this process)."""
    _table.cache_clear()
