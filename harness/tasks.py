"""Task plugin API: a Task declares typed metadata (TaskSpec) and loads train/validation/test splits."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from harness.errors import DataError, FieldError

Modality = Literal["text", "image"]
SPLIT_NAMES = ("train", "validation", "test")

# Causal-LM prompt for tasks without `lm_prompt`. "{text}" is the input, "{labels}" the label words joined
# with ", " and " or ". The scorer appends " " + the label's verbalizer (the leading-space convention: the
# prompt must not end in whitespace; see harness/protocols/lm_loglik.py).
DEFAULT_LM_PROMPT = "Text: {text}\nQuestion: Which of these describes the text: {labels}?\nAnswer:"
LM_PROMPT_FIELDS = ("text", "labels")


def template_fields(template: str, allowed: Sequence[str]) -> list[str]:
    """The placeholders of a str.format prompt template, each one of `allowed` written plainly ({text}).

    ValueError (its message a phrase to follow the template's repr) for unbalanced braces, another name,
    or a conversion ({text!r}) or format spec ({text:>999999999}, {text:d}): refused before anything is
    formatted, since a width can allocate gigabytes and a type code fails only when a job renders it.
    """
    import string

    plain = " or ".join(f"{{{name}}}" for name in allowed)
    try:
        parsed = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
    for name, spec, conversion in parsed:
        if name not in allowed:
            raise ValueError(f"has unknown placeholder {{{name}}}; only {plain} may appear in braces")
        if spec or conversion:
            written = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(f"has {written}: only {plain} may appear in braces, with no conversion or format spec")
    return [name for name, _, _ in parsed]


def lm_prompt_problem(template: str) -> str | None:
    """Why `template` cannot be a causal-LM prompt, or None when it can."""
    try:
        fields = template_fields(template, LM_PROMPT_FIELDS)
    except ValueError as exc:
        return str(exc)
    if "text" not in fields:
        return "has no {text} placeholder: the input text must appear in the prompt"
    if template != template.rstrip():
        return 'ends in whitespace; the scorer adds one space before the label word (" positive"), so end the prompt with e.g. "Answer:"'
    return None


@dataclass(frozen=True)
class MetricRef:
    """A metric as a task declares it: a registered name, parameters, and the name its values are stored
    under (`id`, default: the metric's name; needed only to use one metric twice, e.g. top-1 and top-3)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "id": self.id}


@dataclass(frozen=True)
class TaskSpec:
    """Metadata every task carries; the leaderboard shows it and job keys include name + version."""

    name: str
    version: str
    modality: Modality
    labels: tuple[str, ...]
    description: str = ""
    source: str = ""
    license: str = ""
    citation: str = ""
    homepage: str = ""
    # Metric names (docs/adding-a-metric.md lists them) or MetricRefs; empty: the default
    # set. main_metric: ranks and gates; empty: macro-F1 when declared, else the first metric declared.
    metrics: tuple[str | MetricRef, ...] = ()
    main_metric: str = ""
    # Zero-shot prompt templates with a "{label}" placeholder; scores are averaged over templates.
    prompt_templates: tuple[str, ...] = ("{label}",)
    # Optional words used in prompts instead of the raw label names (label -> verbalizer).
    label_verbalizers: Mapping[str, str] = field(default_factory=dict)
    # Causal-LM prompt template ({text}, optional {labels}); None: DEFAULT_LM_PROMPT.
    lm_prompt: str | None = None

    def __post_init__(self) -> None:
        owner = f"Task {self.name!r}"
        for i, label in enumerate(self.labels):
            if not isinstance(label, str):
                raise FieldError(owner, f"labels[{i}]", f"is {type(label).__name__} {label!r}; labels are names (strings).")
            if label in self.labels[:i]:
                raise FieldError(owner, f"labels[{i}]", f"is {label!r} again: each label is listed once.")
        if self.lm_prompt is not None and (problem := lm_prompt_problem(self.lm_prompt)):
            raise FieldError(owner, "lm_prompt", f"{self.lm_prompt!r} {problem}.")
        for label, word in self.label_verbalizers.items():
            if not str(word).strip():
                raise FieldError(
                    owner,
                    f"label_verbalizers.{label}",
                    f"is {word!r}, which tokenises to nothing; give the word that names the label (e.g. positive).",
                )
        self._check_label_words(owner)

    def _check_label_words(self, owner: str) -> None:
        """Every label's word (its verbalizer, else its name: what zero-shot prompts and the causal-LM scorer
        use) is a word, and no two labels share one: they would score the same on every example."""
        named_by: dict[str, str] = {}  # word -> the first label it names
        for i, label in enumerate(self.labels):
            explicit = label in self.label_verbalizers
            word = self.verbalizer(label)
            key = f"label_verbalizers.{label}" if explicit else f"labels[{i}]"
            if not explicit and not label.strip():
                raise FieldError(
                    owner,
                    key,
                    f"is {label!r}: a label without a verbalizer is scored by its name, and this one tokenises to "
                    f'nothing. Name the label, or give it a word: label_verbalizers: {{"{label}": positive}}.',
                )
            other = named_by.setdefault(word, label)
            if other != label:  # (a label listed twice is the task file's own error)
                whose = f"label_verbalizers.{other}" if other in self.label_verbalizers else "its name"
                raise FieldError(
                    owner,
                    key,
                    f"gives label {label!r} the word {word!r}, the word of label {other!r} too ({whose}): "
                    "prompts and the causal-LM scorer could not tell the two apart (every example would score "
                    "the same for both). Give each label a word of its own in label_verbalizers.",
                )

    def verbalizer(self, label: str) -> str:
        return self.label_verbalizers.get(label, label)

    @property
    def lm_prompt_template(self) -> str:
        return self.lm_prompt if self.lm_prompt is not None else DEFAULT_LM_PROMPT

    def prompts_for(self, label: str) -> list[str]:
        word = self.label_verbalizers.get(label, label)
        return [t.format(label=word) for t in self.prompt_templates]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "modality": self.modality,
            "labels": list(self.labels),
            "description": self.description,
            "source": self.source,
            "license": self.license,
            "citation": self.citation,
            "homepage": self.homepage,
            "metrics": [m if isinstance(m, str) else m.as_dict() for m in self.metrics],
            "main_metric": self.main_metric,
            "prompt_templates": list(self.prompt_templates),
            "label_verbalizers": dict(self.label_verbalizers),
            "lm_prompt": self.lm_prompt,
        }


@dataclass(frozen=True, eq=False)
class Split:
    """One split. `inputs` is a list of str (text) or a uint8 array (N, H, W, C) (image)."""

    name: str
    ids: tuple[str, ...]
    inputs: Sequence[Any]
    labels: np.ndarray  # int64 indices into TaskSpec.labels

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.inputs) == len(self.labels)):
            raise DataError(
                f"Split {self.name!r}: ids ({len(self.ids)}), inputs ({len(self.inputs)}) and labels "
                f"({len(self.labels)}) must have the same length."
            )
        # A plugin task's repeated id was stored as "r.db cannot be written ... the file is damaged"; an int id
        # failed the fingerprint with "'int' object has no attribute 'encode'".
        not_text = next((i for i in self.ids if not isinstance(i, str)), None)
        if not_text is not None:
            raise DataError(f"Split {self.name!r}: example ids must be strings, got {type(not_text).__name__} {not_text!r}.")
        if len(set(self.ids)) != len(self.ids):
            repeated = [i for i, n in Counter(self.ids).items() if n > 1]
            raise DataError(
                f"Split {self.name!r}: example ids must be unique; {len(repeated)} repeat, e.g. "
                f"{', '.join(map(repr, repeated[:3]))}."
            )
        labels = np.asarray(self.labels)
        # Float labels were truncated to indices (0.5 -> 0) and label names failed with a numpy comparison error.
        if labels.size and (labels.ndim != 1 or labels.dtype.kind not in "iu"):
            shown = ", ".join(map(repr, labels.ravel()[:3].tolist()))
            raise DataError(
                f"Split {self.name!r}: labels must be a 1-D array of integer label indices (positions in the task's "
                f"labels), got {labels.dtype} of shape {labels.shape} ({shown}...)."
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> str:
        """sha256 over ids, labels and input contents: identical data gives the same fingerprint."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            h = hashlib.sha256()
            for i, x in zip(self.ids, self.inputs, strict=True):
                h.update(i.encode())
                h.update(b"\0")
                if isinstance(x, str):
                    h.update(x.encode("utf-8", "surrogatepass"))
                else:
                    arr = np.ascontiguousarray(x)
                    h.update(str(arr.shape).encode() + str(arr.dtype).encode())
                    h.update(arr.tobytes())
                h.update(b"\1")
            h.update(np.asarray(self.labels, dtype=np.int64).tobytes())
            cached = h.hexdigest()[:16]
            object.__setattr__(self, "_fingerprint", cached)
        return cached

    def subset(self, index: Sequence[int] | np.ndarray, name: str | None = None) -> Split:
        idx = np.asarray(index, dtype=np.int64)
        inputs: Sequence[Any] = (
            self.inputs[idx] if isinstance(self.inputs, np.ndarray) else [self.inputs[i] for i in idx]
        )
        return Split(
            name=name or self.name,
            ids=tuple(self.ids[i] for i in idx),
            inputs=inputs,
            labels=np.asarray(self.labels)[idx],
        )


@dataclass(frozen=True, eq=False)
class TaskData:
    spec: TaskSpec
    splits: Mapping[str, Split]

    def __post_init__(self) -> None:
        for name in SPLIT_NAMES:
            if name not in self.splits:
                raise DataError(f"Task {self.spec.name!r} has no {name!r} split.")
            if len(self.splits[name]) == 0:
                raise DataError(f"Task {self.spec.name!r}: the {name!r} split is empty.")
            labels = np.asarray(self.splits[name].labels)
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.spec.labels)):
                raise DataError(
                    f"Task {self.spec.name!r}, split {name!r}: label index outside the "
                    f"{len(self.spec.labels)} declared labels."
                )
            if self.spec.modality == "text":  # None or a number failed the hygiene check with a TypeError traceback
                inputs = self.splits[name].inputs
                bad = next((i for i, x in enumerate(inputs) if not isinstance(x, str)), None)
                if bad is not None:
                    raise DataError(
                        f"Task {self.spec.name!r}, split {name!r}: example {self.splits[name].ids[bad]!r} (position "
                        f"{bad}) has input {type(inputs[bad]).__name__} {repr(inputs[bad])[:40]}; a text task's inputs "
                        "are strings."
                    )

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def validation(self) -> Split:
        return self.splits["validation"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name in SPLIT_NAMES:
            h.update(f"{name}:{self.splits[name].fingerprint};".encode())
        return h.hexdigest()[:16]

    def sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in SPLIT_NAMES}


class Task(ABC):
    """A benchmark task. Subclasses set `spec` and implement `load()`.

    `source_signature()` must change whenever the loaded data could change (file stats, package
    version, options); the runner uses it to find a stored data fingerprint without loading data.
    """

    spec: TaskSpec

    @abstractmethod
    def load(self) -> TaskData: ...

    def source_signature(self) -> str:
        return hashlib.sha256(repr(sorted(self.spec.as_dict().items())).encode()).hexdigest()[:16]
