"""lm_loglik: classify with a causal LM by the log-likelihood of each label's continuation (lm-eval style).

For every test example and label: the summed log-probability of " " + the label's verbalizer after the
prompt. The prompt is the task's `lm_prompt` (or the protocol's `prompt`, or DEFAULT_LM_PROMPT), with
`{text}` the input and `{labels}` the label words ("a, b or c").

Conventions (documented in docs/causal-lm.md):
- Leading space: verbalizers are written without one; the scorer always scores " " + word (so
  `positive` is scored as the token(s) of " positive"); a prompt must not end in whitespace.
- Tokens: the prefix (demonstrations), the prompt and the continuation are tokenised separately and
  concatenated; the model's BOS (if its tokenizer adds one) goes in front of the first segment.
- normalize: none (sum of log-probs, lm-eval `acc`), token (per continuation token) or byte (per UTF-8
  byte of " " + word, lm-eval `acc_norm`). Each is a separate protocol variant in a suite; the raw
  log-likelihood matrix is cached, so a second variant costs no scoring pass.
- In-context k-shot: k demonstrations per class drawn from train with the run seed (`repeats` draws,
  mean and spread recorded; stored predictions are those of draw 0), shuffled, each rendered as
  prompt + " " + word + "\\n\\n", and shared by every test example (encoded once, reused from its cache).
- Truncation: the input text is cut to the model's `max_length` tokens (keeping the start: headline and
  lead), each demonstration's text to `demo_max_tokens`; if prefix + prompt + label still exceed the
  model's context, whole demonstrations are dropped from the front until it fits. Counts are recorded.
  A test prompt + label that does not fit even without demonstrations fails the job (check_context): the
  prompt is never cut, which would drop the task's instructions from what the model is asked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.errors import HarnessError, NotApplicable
from harness.models.base import ModelAdapter
from harness.models.language_model import LanguageModel
from harness.protocols.base import ProtocolContext, ProtocolOutput, confidence, repeat_metrics
from harness.protocols.limits import MAX_REPEATS
from harness.protocols.linear_probe import k_shot_indices
from harness.tasks import Split, TaskData, TaskSpec, lm_prompt_problem

Normalize = Literal["none", "token", "byte"]
DEMO_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class LMLoglikConfig:
    normalize: Normalize = "none"
    k_shot: int = 0  # in-context demonstrations per class (0: zero-shot)
    repeats: int = 1  # demonstration draws (k_shot > 0 only)
    demo_max_tokens: int = 64  # each demonstration's text is cut to this many tokens
    prompt: str | None = None  # overrides the task's lm_prompt

    def __post_init__(self) -> None:
        if self.k_shot < 0:
            raise ValueError(f"k_shot must be >= 0, got {self.k_shot}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.repeats > MAX_REPEATS:
            raise ValueError(f"repeats must be at most {MAX_REPEATS:,}, got {self.repeats}")
        if self.repeats > 1 and self.k_shot == 0:  # one scoring pass would be stored as several draws
            raise ValueError(
                f"repeats must be 1 without k_shot, got {self.repeats}: repeats are draws of in-context "
                "demonstrations, and a zero-shot prompt has none to draw (set k_shot)"
            )
        if self.demo_max_tokens < 1:
            raise ValueError(f"demo_max_tokens must be >= 1, got {self.demo_max_tokens}")
        if self.prompt is not None and (problem := lm_prompt_problem(self.prompt)):
            raise ValueError(f"prompt {self.prompt!r} {problem}")


@dataclass(frozen=True)
class PromptSet:
    """Everything token-level one scoring pass needs, built once per (model, task, config, draw)."""

    template: str
    words: tuple[str, ...]
    continuations: tuple[tuple[int, ...], ...]
    prefix: tuple[int, ...]
    demo_ids: tuple[str, ...]
    demos_dropped: int


def context_ids(model: LanguageModel, template: str, words: Sequence[str], text: str, max_tokens: int) -> list[int]:
    """The prompt for one input, its text cut to `max_tokens` tokens first."""
    return model.token_ids(render(template, model.truncate_text(text, max_tokens), words))


def label_list(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def render(template: str, text: str, words: Sequence[str]) -> str:
    return template.format(text=text, labels=label_list(words))


def continuation_ids(model: LanguageModel, spec: TaskSpec, words: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    out = []
    labels_of: dict[tuple[int, ...], tuple[str, str]] = {}  # tokens -> the first (label, word) they score
    for label, word in zip(spec.labels, words, strict=True):
        ids = tuple(model.token_ids(" " + word))
        if not ids:
            raise HarnessError(
                f"Task {spec.name!r}: the verbalizer of label {label!r} ({word!r}) tokenises to nothing for model "
                f"{model.spec.name!r}; set label_verbalizers.{label} to a word."
            )
        # The task refuses two labels with one word; two different words can still be one token sequence for
        # a tokenizer (one that lower-cases or normalises Unicode), which only the model's tokenizer can tell.
        other, other_word = labels_of.setdefault(ids, (label, word))
        if other != label:
            raise HarnessError(
                f"Task {spec.name!r}: labels {other!r} and {label!r} have the words {other_word!r} and {word!r}, "
                f"but model {model.spec.name!r}'s tokenizer turns both into the same tokens {list(ids)}, so every "
                "example would score the same for the two labels. Give them words this tokenizer tells apart "
                "(label_verbalizers)."
            )
        out.append(ids)
    return tuple(out)


def check_context(
    model: LanguageModel,
    spec: TaskSpec,
    template: str,
    words: Sequence[str],
    ids: Sequence[str],
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    max_tokens: int,
) -> None:
    """HarnessError unless every test prompt followed by every label fits in the model's context.

    The scorer feeds the model's leading tokens (BOS), the prompt and each continuation but its last token.
    A prompt that does not fit is not cut (see docs/causal-lm.md): it fails the job, saying what to change.
    """
    i = max(range(len(contexts)), key=lambda n: len(contexts[n]))
    j = max(range(len(continuations)), key=lambda n: len(continuations[n]))
    needed = model.leading_tokens + len(contexts[i]) + len(continuations[j]) - 1
    if needed <= model.context_limit:
        return
    bare = len(model.token_ids(render(template, "", words)))
    raise HarnessError(
        f"Model {model.spec.name!r} has a context of {model.context_limit} tokens, but the longest prompt of task "
        f"{spec.name!r} (test example {ids[i]!r}: {len(contexts[i])} tokens, its text cut to the model's max_length "
        f"{max_tokens}; {bare} tokens without the text) followed by the longest label word (label "
        f"{spec.labels[j]!r}: {len(continuations[j])} token{'' if len(continuations[j]) == 1 else 's'}) needs "
        f"{needed}. Shorten the prompt (the task's lm_prompt or the "
        "protocol's prompt), lower the model's max_length or use shorter label words: prompts are not cut to "
        "fit, which would score a different prompt than the one stored with the run."
    )


def build_prompts(
    model: LanguageModel, spec: TaskSpec, train: Split, config: LMLoglikConfig, rng: np.random.Generator, longest_context: int
) -> PromptSet:
    template = config.prompt or spec.lm_prompt_template
    words = tuple(spec.verbalizer(label) for label in spec.labels)
    conts = continuation_ids(model, spec, words)
    demos: list[list[int]] = []
    demo_ids: list[str] = []
    if config.k_shot:
        chosen = rng.permutation(k_shot_indices(np.asarray(train.labels), config.k_shot, rng, spec.labels))
        for i in chosen:
            text = model.truncate_text(str(train.inputs[i]), config.demo_max_tokens)
            word = words[int(train.labels[i])]
            demos.append(model.token_ids(render(template, text, words) + " " + word + DEMO_SEPARATOR))
            demo_ids.append(train.ids[i])
    budget = model.context_limit - longest_context - max(len(c) for c in conts)
    dropped = 0
    while demos and sum(len(d) for d in demos) > budget:
        demos.pop(0)
        demo_ids.pop(0)
        dropped += 1
    prefix = tuple(t for d in demos for t in d)
    return PromptSet(template, words, conts, prefix, tuple(demo_ids), dropped)


def normalised(scores: np.ndarray, prompts: PromptSet, normalize: Normalize) -> np.ndarray:
    if normalize == "token":
        return scores / np.array([len(c) for c in prompts.continuations], dtype=np.float64)
    if normalize == "byte":
        return scores / np.array([len((" " + w).encode("utf-8")) for w in prompts.words], dtype=np.float64)
    return scores


def _variant(prompts: PromptSet, max_tokens: int) -> str:
    """Feature-cache variant of a log-likelihood matrix: everything besides the model and split it depends on."""
    what = json.dumps([prompts.template, prompts.words, prompts.continuations, prompts.prefix, max_tokens])
    return f"loglik-{hashlib.sha256(what.encode()).hexdigest()[:16]}"


def run(adapter: ModelAdapter, data: TaskData, config: LMLoglikConfig, ctx: ProtocolContext) -> ProtocolOutput:
    if not isinstance(adapter, LanguageModel):
        raise NotApplicable(
            f"{adapter.spec.family} model {adapter.spec.name!r} is not a causal language model; lm_loglik scores "
            "label continuations with one (family hf_causal_lm)."
        )
    model: LanguageModel = adapter
    spec = data.spec
    model.check_modality(spec)
    max_tokens = model.spec.max_length
    test_texts = [str(t) for t in data.test.inputs]
    rng = np.random.default_rng(ctx.seed)
    draws = config.repeats if config.k_shot else 1
    template = config.prompt or spec.lm_prompt_template
    words = tuple(spec.verbalizer(label) for label in spec.labels)
    contexts = [context_ids(model, template, words, t, max_tokens) for t in test_texts]
    check_context(model, spec, template, words, data.test.ids, contexts, continuation_ids(model, spec, words), max_tokens)
    longest = max(len(c) for c in contexts)
    prompt_sets = [build_prompts(model, spec, data.train, config, rng, longest) for _ in range(draws)]
    cut = sum(1 for t in test_texts if model.truncate_text(t, max_tokens) != t)

    raw_by_draw: list[np.ndarray] = []
    scoring: dict[str, Any] = {}
    for prompts in prompt_sets:
        def compute(prompts: PromptSet = prompts) -> np.ndarray:
            scores, stats = model.loglikelihoods(prompts.prefix, contexts, prompts.continuations)
            scoring.update(
                examples=stats.examples,
                tokens=stats.tokens,
                seconds=round(stats.seconds, 3),
                tokens_per_s=round(stats.tokens_per_s, 1),
                batch_size=model.spec.batch_size,
            )
            return scores

        raw_by_draw.append(np.asarray(ctx.cached(model, data.test, compute, _variant(prompts, max_tokens))))

    scores_by_draw = [normalised(raw, p, config.normalize) for raw, p in zip(raw_by_draw, prompt_sets, strict=True)]
    scores = scores_by_draw[0]
    preds, conf = confidence(scores)
    n_labels = len(spec.labels)
    y = np.asarray(data.test.labels)
    extra = repeat_metrics(y, [s.argmax(axis=1) for s in scores_by_draw], n_labels) if draws > 1 else ()

    first = prompt_sets[0]

    def predict(inputs: Sequence[Any]) -> np.ndarray:
        """The whole path per call: truncate, render, tokenise, score every label from the shared prefix."""
        ctxs = [context_ids(model, first.template, first.words, str(t), max_tokens) for t in inputs]
        raw, _ = model.loglikelihoods(first.prefix, ctxs, first.continuations)
        return np.asarray(normalised(raw, first, config.normalize).argmax(axis=1))

    return ProtocolOutput(
        preds=np.asarray(preds, dtype=np.int64),
        scores=np.asarray(conf, dtype=np.float64),
        predict=predict,
        selected={
            "prompt": first.template,
            "label_words": list(first.words),
            "continuation_tokens": [list(c) for c in first.continuations],
            "normalize": config.normalize,
            "k_shot": config.k_shot,
            "demonstrations": [list(p.demo_ids) for p in prompt_sets],
            "prefix_tokens": [len(p.prefix) for p in prompt_sets],
            "demonstrations_dropped_to_fit": [p.demos_dropped for p in prompt_sets],
            "test_texts_truncated": cut,
            "max_text_tokens": max_tokens,
            "context_limit": model.context_limit,
            "scoring": scoring or {"cached": True},
        },
        extra_metrics=extra,
        class_scores=np.asarray(scores, dtype=np.float64),
        score_kind="log_likelihood",
    )
